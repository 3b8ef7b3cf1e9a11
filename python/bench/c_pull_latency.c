/* 16 KiB pull_cache latency through datadist.h from a C process: the C ABI without Python, beside which
 * bench_pull.py's Python rows and `datadist bench`'s Swift rows can be read. Speaks `datadist bench-serve`'s stdin
 * protocol on stdout and reads its replies on stdin; c_pull_latency.py wires the two and builds this file. */
#include <datadist/datadist.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { SLOT = 16 << 10, SLOTS = 1024, GENERATIONS = 6, DESTINATION_SLOTS = 8192 };

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int ascending(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int fail(const char *what) {
    fprintf(stderr, "%s: %s\n", what, datadist_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) return fprintf(stderr, "usage: c_pull_latency PORT\n"), 2;
    const char *keys[] = {"llm.MemPoolConfig", "llm.SyncKvCacheWaitTime"};
    const char *values[] = {"{\"memory_size\": 268435456}", "30000"};
    datadist_engine *engine = NULL;
    datadist_cache_manager *manager = NULL;
    if (datadist_engine_create(DATADIST_ROLE_DECODER, 2, &engine) || datadist_engine_init(engine, keys, values, 2) ||
        datadist_engine_cache_manager(engine, &manager))
        return fail("init");
    datadist_ip_info remote = {"127.0.0.1", (uint16_t)atoi(argv[1])};
    datadist_cluster_info cluster = {1, 0, NULL, 0, &remote, 1};
    datadist_status rets[1];
    size_t written = 0;
    if (datadist_engine_link_clusters(engine, &cluster, 1, 3000, rets, &written)) return fail("link");
    const int64_t shape[2] = {DESTINATION_SLOTS, SLOT / 2};
    datadist_cache_desc desc = {1, DATADIST_DT_FLOAT16, DATADIST_PLACEMENT_DEVICE, 2, shape};
    datadist_cache *destination = NULL;
    if (datadist_allocate_cache(manager, &desc, NULL, 0, &destination)) return fail("allocate");
    static double samples[SLOTS * GENERATIONS];
    int count = 0;
    uint64_t base = 1;
    char reply[4096];
    for (int generation = 0; generation < GENERATIONS; generation++) {
        base += SLOTS;
        printf("cache latency %d %d request %llu pattern\n", SLOT, SLOTS, (unsigned long long)base);
        fflush(stdout);
        if (!fgets(reply, sizeof reply, stdin)) return 1;
        for (int slot = 0; slot < SLOTS; slot++) {
            datadist_cache_key key = {1, base + slot, 0, UINT64_MAX};
            double start = now_us();
            if (datadist_pull_cache(manager, &key, destination, slot % DESTINATION_SLOTS, -1, NULL)) return fail("pull");
            double elapsed = now_us() - start;
            if (generation > 0) samples[count++] = elapsed; /* generation 0 warms up, as datadist bench */
        }
        printf("free latency\n");
        fflush(stdout);
        if (!fgets(reply, sizeof reply, stdin)) return 1;
    }
    qsort(samples, count, sizeof samples[0], ascending);
    fprintf(stderr, "C ABI pull_cache 16 KiB: p50 %.2f us, p99 %.2f us (%d pulls)\n", samples[count / 2],
            samples[count * 99 / 100], count);
    datadist_deallocate_cache(manager, destination);
    datadist_cache_release(destination);
    datadist_cache_manager_release(manager);
    return datadist_engine_destroy(engine) != DATADIST_SUCCESS;
}
