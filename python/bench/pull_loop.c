/* bench_pull.py's in-process reference: the same pull_cache calls as its Python loops, made from C through
 * datadist.h in the same process, on the same link, rings and destination caches. bench_pull.py builds this file
 * into a shared library in a temporary directory and calls it with ctypes (one call per burst),
 * so the ratio of the two loops is what the Python layer and ctypes cost per pull. */
#include <datadist/datadist.h>

#include <stdint.h>
#include <time.h>

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Pulls keys[(first + i) % slots] into slot (first + i) % slots of cache until `nanos` have passed; returns the
 * pulls made (-status on a failure), *elapsed_ns their time. */
int64_t bench_pull_ring(void *manager, const datadist_cache_key *keys, void *cache, int64_t slots, int64_t first,
                        int64_t nanos, int64_t *elapsed_ns) {
    int64_t start = now_ns(), now = start, count = 0;
    while (now - start < nanos) {
        int64_t slot = (first + count) % slots;
        uint32_t status = datadist_pull_cache(manager, &keys[slot], cache, (uint32_t)slot, -1, 0);
        if (status != 0) return -(int64_t)status;
        count++;
        now = now_ns();
    }
    *elapsed_ns = now - start;
    return count;
}

/* Pulls keys[i] into slot slots[i] for i < count, timing each whole call into samples_ns[i]; 0 or the status of
 * the first failure. */
uint32_t bench_pull_each(void *manager, const datadist_cache_key *keys, void *cache, const uint32_t *slots,
                         int64_t count, int64_t *samples_ns) {
    for (int64_t i = 0; i < count; i++) {
        int64_t start = now_ns();
        uint32_t status = datadist_pull_cache(manager, &keys[i], cache, slots[i], -1, 0);
        samples_ns[i] = now_ns() - start;
        if (status != 0) return status;
    }
    return 0;
}
