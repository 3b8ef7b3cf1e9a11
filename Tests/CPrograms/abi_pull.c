/* Links two engines through datadist.h alone, pulls a keyed cache and verifies every byte; checks that bad
 * arguments give DATADIST_PARAM_INVALID. Prints "ok <bytes>" and exits 0, or names the failing step and exits 1.
 * Built and run by Tests/DataDistCTests/CProgramTests.swift. */
#include <datadist/datadist.h>

#include <stdio.h>
#include <string.h>

#define CHECK(call)                                                                                                \
    do {                                                                                                           \
        datadist_status status_ = (call);                                                                          \
        if (status_ != DATADIST_SUCCESS) {                                                                         \
            fprintf(stderr, "%s:%d %s -> %s: %s\n", __FILE__, __LINE__, #call, datadist_status_name(status_),      \
                    datadist_last_error());                                                                        \
            return 1;                                                                                              \
        }                                                                                                          \
    } while (0)

#define EXPECT(condition)                                                                                          \
    do {                                                                                                           \
        if (!(condition)) {                                                                                        \
            fprintf(stderr, "%s:%d expected %s (last error: %s)\n", __FILE__, __LINE__, #condition,              \
                    datadist_last_error());                                                                        \
            return 1;                                                                                              \
        }                                                                                                          \
    } while (0)

static unsigned char pattern(int tensor, size_t offset) { return (unsigned char)(tensor * 31 + offset * 7 + 3); }

int main(void) {
    const char *keys[] = {"llm.MemPoolConfig", "llm.listenIpInfo"};
    const char *values[] = {"{\"memory_size\": 16777216}", "127.0.0.1:0"};
    datadist_engine *prompt = NULL, *decoder = NULL;
    CHECK(datadist_engine_create(DATADIST_ROLE_PROMPT, 1, &prompt));
    CHECK(datadist_engine_create(DATADIST_ROLE_DECODER, 2, &decoder));
    CHECK(datadist_engine_init(prompt, keys, values, 2));
    CHECK(datadist_engine_init(decoder, keys, values, 1));
    uint16_t port = 0;
    CHECK(datadist_engine_listen_port(prompt, &port));
    EXPECT(port != 0);

    datadist_cache_manager *prompt_manager = NULL, *decoder_manager = NULL;
    CHECK(datadist_engine_cache_manager(prompt, &prompt_manager));
    CHECK(datadist_engine_cache_manager(decoder, &decoder_manager));

    /* 4 tensors (2 layers of K, V) of [1, 64, 128] float16: 16 KiB each. */
    const int64_t shape[] = {1, 64, 128};
    const size_t tensor_bytes = 64 * 128 * 2;
    datadist_cache_desc desc = {4, DATADIST_DT_FLOAT16, DATADIST_PLACEMENT_DEVICE, 3, shape};
    datadist_cache_key key = {1, 42, 0, UINT64_MAX};
    datadist_cache *source = NULL, *destination = NULL;
    CHECK(datadist_allocate_cache(prompt_manager, &desc, &key, 1, &source));
    CHECK(datadist_allocate_cache(decoder_manager, &desc, NULL, 0, &destination));
    uint64_t source_addrs[4], destination_addrs[4];
    CHECK(datadist_cache_tensor_addrs(source, source_addrs, 4));
    CHECK(datadist_cache_tensor_addrs(destination, destination_addrs, 4));
    for (int t = 0; t < 4; t++) {
        unsigned char *bytes = (unsigned char *)(uintptr_t)source_addrs[t];
        for (size_t i = 0; i < tensor_bytes; i++) bytes[i] = pattern(t, i);
        memset((void *)(uintptr_t)destination_addrs[t], 0, tensor_bytes);
    }

    datadist_ip_info remote = {"127.0.0.1", port};
    datadist_cluster_info cluster = {1, DATADIST_ROLE_PROMPT, NULL, 0, &remote, 1};
    datadist_status rets[1] = {DATADIST_FAILED};
    size_t written = 0;
    CHECK(datadist_engine_link_clusters(decoder, &cluster, 1, 3000, rets, &written));
    EXPECT(written == 1 && rets[0] == DATADIST_SUCCESS);

    CHECK(datadist_pull_cache(decoder_manager, &key, destination, 0, -1, NULL));
    for (int t = 0; t < 4; t++) {
        const unsigned char *bytes = (const unsigned char *)(uintptr_t)destination_addrs[t];
        for (size_t i = 0; i < tensor_bytes; i++) EXPECT(bytes[i] == pattern(t, i));
    }
    /* The key was consumed: a second pull finds nothing. */
    EXPECT(datadist_pull_cache(decoder_manager, &key, destination, 0, -1, NULL) == DATADIST_KV_CACHE_NOT_EXIST);

    /* Bad arguments: refused by name, nothing changed. */
    EXPECT(datadist_pull_cache(decoder_manager, NULL, destination, 0, -1, NULL) == DATADIST_PARAM_INVALID);
    EXPECT(strstr(datadist_last_error(), "key") != NULL);
    EXPECT(datadist_pull_cache(NULL, &key, destination, 0, -1, NULL) == DATADIST_PARAM_INVALID);
    EXPECT(datadist_cache_tensor_addrs(destination, NULL, 4) == DATADIST_PARAM_INVALID);

    CHECK(datadist_engine_unlink_clusters(decoder, &cluster, 1, 3000, false, rets, &written));
    CHECK(datadist_deallocate_cache(prompt_manager, source));
    CHECK(datadist_deallocate_cache(decoder_manager, destination));
    datadist_audit audit;
    CHECK(datadist_audit_cache_manager(prompt_manager, &audit));
    EXPECT(audit.is_clean && audit.live_caches == 0 && audit.orphans == 0);
    CHECK(datadist_audit_cache_manager(decoder_manager, &audit));
    EXPECT(audit.is_clean && audit.live_caches == 0 && audit.orphans == 0);

    CHECK(datadist_cache_release(source));
    CHECK(datadist_cache_release(destination));
    CHECK(datadist_engine_finalize(decoder));
    EXPECT(datadist_audit_cache_manager(decoder_manager, &audit) == DATADIST_ENGINE_FINALIZED);
    CHECK(datadist_cache_manager_release(prompt_manager));
    CHECK(datadist_cache_manager_release(decoder_manager));
    CHECK(datadist_engine_destroy(prompt));
    CHECK(datadist_engine_destroy(decoder));
    EXPECT(datadist_engine_destroy(decoder) == DATADIST_PARAM_INVALID);
    printf("ok %zu\n", 4 * tensor_bytes);
    return 0;
}
