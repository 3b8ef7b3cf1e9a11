/*
 * datadist.h: the C ABI of DataDist (libdatadist_c.so).
 *
 * Every function returns a status code with the values of the reference's LLMStatusCode (DATADIST_SUCCESS = 0,
 * DATADIST_PARAM_INVALID = 0x5010B005, ...); on failure, datadist_last_error() gives a message naming what was
 * wrong. Nothing throws or aborts across this boundary: a NULL or stale handle, a NULL array with a non-zero
 * length, a length beyond DATADIST_MAX_ITEMS or a string that is not UTF-8 gives DATADIST_PARAM_INVALID with a
 * message naming the argument. Output arguments are written only on success.
 *
 * Handles are opaque: an engine (one LLMDataDist instance), a cache manager (the engine's, for one
 * initialisation: after datadist_engine_finalize every call on it returns DATADIST_ENGINE_FINALIZED), a cache
 * (the value a cache manager returned) and a cache task (a running or ended transfer_cache_async). Each handle
 * is freed with its own *_release / *_destroy call; a freed handle is refused, not dereferenced. Releasing a cache
 * handle frees only the handle, never the cache's memory (that is datadist_deallocate_cache's job).
 *
 * Thread safety: every call may be made from any thread, and calls on one engine or cache manager from many
 * threads at once are safe. Blocking calls (link, unlink, pull, push) block only the calling thread.
 */
#ifndef DATADIST_DATADIST_H
#define DATADIST_DATADIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: the reference's LLMStatusCode values (llm_error_codes.h). */
typedef uint32_t datadist_status;
#define DATADIST_SUCCESS ((datadist_status)0x0u)
#define DATADIST_FAILED ((datadist_status)0xFFFFFFFFu)
#define DATADIST_WAIT_PROCESS_TIMEOUT ((datadist_status)0x5010B001u)
#define DATADIST_KV_CACHE_NOT_EXIST ((datadist_status)0x5010B002u)
#define DATADIST_REPEAT_REQUEST ((datadist_status)0x5010B003u)
#define DATADIST_REQUEST_ALREADY_COMPLETED ((datadist_status)0x5010B004u)
#define DATADIST_PARAM_INVALID ((datadist_status)0x5010B005u)
#define DATADIST_ENGINE_FINALIZED ((datadist_status)0x5010B006u)
#define DATADIST_NOT_YET_LINK ((datadist_status)0x5010B007u)
#define DATADIST_ALREADY_LINK ((datadist_status)0x5010B008u)
#define DATADIST_LINK_FAILED ((datadist_status)0x5010B009u)
#define DATADIST_UNLINK_FAILED ((datadist_status)0x5010B00Au)
#define DATADIST_NOTIFY_PROMPT_UNLINK_FAILED ((datadist_status)0x5010B00Bu)
#define DATADIST_CLUSTER_NUM_EXCEED_LIMIT ((datadist_status)0x5010B00Cu)
#define DATADIST_PROCESSING_LINK ((datadist_status)0x5010B00Du)
#define DATADIST_DEVICE_OUT_OF_MEMORY ((datadist_status)0x5010B00Eu)
#define DATADIST_PREFIX_ALREADY_EXIST ((datadist_status)0x5010B00Fu)
#define DATADIST_PREFIX_NOT_EXIST ((datadist_status)0x5010B010u)
#define DATADIST_SEQ_LEN_OVER_LIMIT ((datadist_status)0x5010B011u)
#define DATADIST_NO_FREE_BLOCK ((datadist_status)0x5010B012u)
#define DATADIST_BLOCKS_OUT_OF_MEMORY ((datadist_status)0x5010B013u)
#define DATADIST_CACHE_INCOMPATIBLE ((datadist_status)0x5010B014u)
#define DATADIST_CACHE_KEY_ALREADY_EXIST ((datadist_status)0x5010B015u)
#define DATADIST_COPY_CACHE_FAILED ((datadist_status)0x5010B016u)
#define DATADIST_CACHE_ID_ALREADY_EXIST ((datadist_status)0x5010B017u)
#define DATADIST_EXIST_LINK ((datadist_status)0x5010B018u)
#define DATADIST_FEATURE_NOT_ENABLED ((datadist_status)0x5010B019u)
#define DATADIST_TIMEOUT ((datadist_status)0x5010B01Au)
#define DATADIST_LINK_BUSY ((datadist_status)0x5010B01Bu)
#define DATADIST_OUT_OF_MEMORY ((datadist_status)0x5010B01Cu)
#define DATADIST_DEVICE_MEM_ERROR ((datadist_status)507053u)
#define DATADIST_SUSPECT_REMOTE_ERROR ((datadist_status)507057u)

/* The largest length any array argument may have. */
#define DATADIST_MAX_ITEMS ((size_t)1 << 24)

/* Roles, placements and data types: the reference's numeric values. */
#define DATADIST_ROLE_PROMPT 1
#define DATADIST_ROLE_DECODER 2
#define DATADIST_ROLE_MIX 3
#define DATADIST_PLACEMENT_HOST 0u
#define DATADIST_PLACEMENT_DEVICE 1u
#define DATADIST_DT_FLOAT 0
#define DATADIST_DT_FLOAT16 1
#define DATADIST_DT_INT8 2
#define DATADIST_DT_INT32 3
#define DATADIST_DT_UINT8 4
#define DATADIST_DT_INT16 6
#define DATADIST_DT_UINT16 7
#define DATADIST_DT_UINT32 8
#define DATADIST_DT_INT64 9
#define DATADIST_DT_UINT64 10
#define DATADIST_DT_DOUBLE 11
#define DATADIST_DT_BOOL 12
#define DATADIST_DT_BF16 27

typedef struct datadist_engine datadist_engine;
typedef struct datadist_cache_manager datadist_cache_manager;
typedef struct datadist_cache datadist_cache;

/* A cache's shape: num_tensors tensors, each of `rank` dimensions `shape[0..rank)` of `data_type` elements. */
typedef struct datadist_cache_desc {
    uint32_t num_tensors;
    int32_t data_type;  /* DATADIST_DT_* */
    uint32_t placement; /* DATADIST_PLACEMENT_* */
    uint32_t rank;      /* 1...31 */
    const int64_t *shape;
} datadist_cache_desc;

/* A request's key: prefix_id UINT64_MAX for a request key, req_id UINT64_MAX for a prefix key (both: a
 * placeholder, an empty slot at allocation). */
typedef struct datadist_cache_key {
    uint64_t cluster_id;
    uint64_t req_id;
    uint64_t model_id;
    uint64_t prefix_id;
} datadist_cache_key;

/* Slot batch_index of cache cache_id on cluster cluster_id. */
typedef struct datadist_cache_key_by_id {
    uint64_t cluster_id;
    int64_t cache_id;
    uint32_t batch_index;
} datadist_cache_key_by_id;

/* The blocks cache of model model_id on cluster cluster_id. */
typedef struct datadist_blocks_cache_key {
    uint64_t cluster_id;
    uint64_t model_id;
} datadist_blocks_cache_key;

/* Layers [src_start, src_stop) of the source onto layers [dst_start, dst_stop) of the destination; a layer is
 * tensors_per_layer consecutive tensors. Both ranges must have the same length, 0 <= start <= stop. */
typedef struct datadist_layer_range {
    int64_t src_start;
    int64_t src_stop;
    int64_t dst_start;
    int64_t dst_stop;
    int64_t tensors_per_layer;
} datadist_layer_range;

/* A numeric IPv4 or IPv6 address and a port. */
typedef struct datadist_ip_info {
    const char *ip;
    uint16_t port;
} datadist_ip_info;

/* A peer to link with or unlink from. remote_role_type 0 means "not given". */
typedef struct datadist_cluster_info {
    uint64_t remote_cluster_id;
    int32_t remote_role_type;
    const datadist_ip_info *local_ip_infos;
    size_t local_ip_info_count;
    const datadist_ip_info *remote_ip_infos;
    size_t remote_ip_info_count;
} datadist_cluster_info;

/* A cache manager's consistency snapshot (orphans must always be 0). */
typedef struct datadist_audit {
    int64_t live_caches;
    int64_t bound_keys;
    int64_t pages_in_use;
    int64_t pages_free;
    int64_t pinned_by_peers;
    int64_t orphans;
    int64_t expired_keys;
    bool is_clean;
} datadist_audit;

/* The message of the last call on this thread that failed ("" if none); valid until the next failing call on
 * this thread. Successful calls leave it unchanged. */
const char *datadist_last_error(void);

/* The name of a status code, e.g. "LLM_PARAM_INVALID" (unknown codes: "LLM_FAILED"); a static string. */
const char *datadist_status_name(datadist_status status);

/* The option keys LLMConfig(options:) understands, as static text: one "name=key" line per key, where name is
 * the Swift LLMOptionKey member (e.g. "syncKVTimeout=llm.SyncKvCacheWaitTime"). */
const char *datadist_option_keys(void);

/* Checks option strings as datadist_engine_init reads them, without an engine. */
datadist_status datadist_check_options(const char *const *keys, const char *const *values, size_t count);

/* The device backend initialize would select now ("emulator" or "acl") and why, as "backend\nreason"; a
 * malloc'ed string the caller frees with datadist_free_string. */
datadist_status datadist_backend(char **out);
void datadist_free_string(char *string);

/* Engines. */
datadist_status datadist_engine_create(int32_t role, uint64_t cluster_id, datadist_engine **out);
/* Finalizes the engine if needed and frees the handle. */
datadist_status datadist_engine_destroy(datadist_engine *engine);
/* Initializes from option strings (the reference's "llm.*" / "ge.*" keys); a second call returns at once. */
datadist_status datadist_engine_init(
    datadist_engine *engine, const char *const *keys, const char *const *values, size_t count);
/* Unlinks, stops listening, frees every cache and pool. Idempotent. */
datadist_status datadist_engine_finalize(datadist_engine *engine);
datadist_status datadist_engine_is_initialized(datadist_engine *engine, bool *out);
/* The port this engine listens on (0 when it does not listen). */
datadist_status datadist_engine_listen_port(datadist_engine *engine, uint16_t *out);
/* rets has room for count codes; the return value is the overall code (the last failing one), and rets are
 * written whenever the per-cluster phase ran (rets_written tells how many: count or 0). */
datadist_status datadist_engine_link_clusters(
    datadist_engine *engine, const datadist_cluster_info *clusters, size_t count, int32_t timeout_ms,
    datadist_status *rets, size_t *rets_written);
datadist_status datadist_engine_unlink_clusters(
    datadist_engine *engine, const datadist_cluster_info *clusters, size_t count, int32_t timeout_ms, bool force,
    datadist_status *rets, size_t *rets_written);
/* The data plane of the link to cluster_id: "shm" (the memfd mapping) or "ucx", a static string;
 * DATADIST_NOT_YET_LINK when there is no such link. */
datadist_status datadist_engine_link_transport(datadist_engine *engine, uint64_t cluster_id, const char **out);
/* The engine's metrics (LLMDataDist.metrics(): transfers per peer cluster and transport, pool pages, keys bound,
 * pins held for peers, the audit's orphans) as one JSON object; a malloc'ed string the caller frees with
 * datadist_free_string. Any state of the engine: before init it has the transfer figures only. */
datadist_status datadist_engine_metrics(datadist_engine *engine, char **out);
/* listen_ip_info "ip:port" or NULL (stop listening). */
datadist_status datadist_engine_switch_role(datadist_engine *engine, int32_t role, const char *listen_ip_info);
/* The engine's cache manager for this initialisation; release it with datadist_cache_manager_release. */
datadist_status datadist_engine_cache_manager(datadist_engine *engine, datadist_cache_manager **out);
datadist_status datadist_cache_manager_release(datadist_cache_manager *manager);

/* Caches. */
datadist_status datadist_cache_release(datadist_cache *cache);
datadist_status datadist_cache_id(const datadist_cache *cache, int64_t *out);
datadist_status datadist_cache_is_blocks(const datadist_cache *cache, bool *out);
datadist_status datadist_cache_num_tensors(const datadist_cache *cache, uint32_t *out);
/* Writes the first min(capacity, num_tensors) tensor addresses. */
datadist_status datadist_cache_tensor_addrs(const datadist_cache *cache, uint64_t *addrs, size_t capacity);
/* A host blocks cache over caller memory, only for datadist_swap_blocks (id -1). */
datadist_status datadist_create_cpu_cache(
    const datadist_cache_desc *desc, const uint64_t *addrs, size_t addr_count, datadist_cache **out);

/* Cache manager operations (the reference's CacheManager methods; see DataDist's CacheManager for details).
 * `layers` may be NULL (all layers); `size` -1 means one whole slot. */
datadist_status datadist_allocate_cache(
    datadist_cache_manager *manager, const datadist_cache_desc *desc, const datadist_cache_key *keys,
    size_t key_count, datadist_cache **out);
datadist_status datadist_deallocate_cache(datadist_cache_manager *manager, const datadist_cache *cache);
datadist_status datadist_remove_cache_key(datadist_cache_manager *manager, const datadist_cache_key *key);
datadist_status datadist_copy_cache(
    datadist_cache_manager *manager, const datadist_cache *dst, const datadist_cache *src, uint32_t dst_batch_index,
    uint32_t src_batch_index, uint64_t offset, int64_t size);
datadist_status datadist_pull_cache(
    datadist_cache_manager *manager, const datadist_cache_key *key, const datadist_cache *cache,
    uint32_t batch_index, int64_t size, const datadist_layer_range *layers);
datadist_status datadist_pull_cache_by_id(
    datadist_cache_manager *manager, const datadist_cache_key_by_id *key, const datadist_cache *cache,
    uint32_t batch_index, int64_t size, const datadist_layer_range *layers);
datadist_status datadist_push_cache(
    datadist_cache_manager *manager, const datadist_cache_key_by_id *key, const datadist_cache *cache,
    uint32_t src_batch_index, const datadist_layer_range *layers, int64_t size);
datadist_status datadist_allocate_blocks_cache(
    datadist_cache_manager *manager, const datadist_cache_desc *desc, const datadist_blocks_cache_key *key,
    datadist_cache **out);
datadist_status datadist_deallocate_blocks_cache(datadist_cache_manager *manager, const datadist_cache *cache);
datadist_status datadist_pull_blocks(
    datadist_cache_manager *manager, const datadist_blocks_cache_key *key, const datadist_cache *cache,
    const int64_t *src_blocks, size_t src_count, const int64_t *dst_blocks, size_t dst_count,
    const datadist_layer_range *layers);
datadist_status datadist_push_blocks(
    datadist_cache_manager *manager, const datadist_blocks_cache_key *key, const datadist_cache *cache,
    const int64_t *src_blocks, size_t src_count, const int64_t *dst_blocks, size_t dst_count,
    const datadist_layer_range *layers);
/* Copies block src[i] to block dst[i] of the same blocks cache. */
datadist_status datadist_copy_blocks(
    datadist_cache_manager *manager, const datadist_cache *cache, const int64_t *src, const int64_t *dst,
    size_t count);
/* Swaps block src[i] of src_cache with block dst[i] of dst_cache (host <-> device); src indices distinct. */
datadist_status datadist_swap_blocks(
    datadist_cache_manager *manager, const datadist_cache *src_cache, const datadist_cache *dst_cache,
    const int64_t *src, const int64_t *dst, size_t count);
/* remote_accessible: -1 default, 0 no, 1 yes. key may be NULL for the blocks variant. */
datadist_status datadist_register_cache(
    datadist_cache_manager *manager, const datadist_cache_desc *desc, const uint64_t *addrs, size_t addr_count,
    const datadist_cache_key *keys, size_t key_count, int32_t remote_accessible, datadist_cache **out);
datadist_status datadist_register_blocks_cache(
    datadist_cache_manager *manager, const datadist_cache_desc *desc, const uint64_t *addrs, size_t addr_count,
    const datadist_blocks_cache_key *key, int32_t remote_accessible, datadist_cache **out);
datadist_status datadist_unregister_cache(datadist_cache_manager *manager, int64_t cache_id);
datadist_status datadist_audit_cache_manager(datadist_cache_manager *manager, datadist_audit *out);

/* Layer-wise asynchronous push (the reference's transfer_cache_async; needs enable_remote_cache_accessible on
 * both sides). A task handle reports the outcome; release it with datadist_cache_task_release (the task goes on
 * running without its handle). */
typedef struct datadist_cache_task datadist_cache_task;

/* Returns when layer layer_index of the source may be sent: true to send it, false to abort the task (its
 * configs covering that layer get DATADIST_PARAM_INVALID). timeout_ms is how long the task waits for the answer
 * (-1: no limit); a later answer is ignored. Called from a thread of the library's, never the caller's, one call
 * at a time per task, in ascending layer order. It must not throw or longjmp. */
typedef bool (*datadist_layer_sync_fn)(void *user_data, uint32_t layer_index, int64_t timeout_ms);
/* Called exactly once per datadist_transfer_cache_async* call (when not NULL), on any thread, once the library
 * will not call synchronize with user_data again: before an error return, or once the task has ended and no
 * synchronize call is running. user_data must stay valid until then. */
typedef void (*datadist_release_fn)(void *user_data);

/* To raw addresses: 2 per layer sent (K, V), in layer order. Layers [src_layer_start, src_layer_stop) of the
 * source, or every layer when has_src_layers is false. */
typedef struct datadist_transfer_config {
    uint64_t dst_cluster_id;
    const uint64_t *dst_addrs;
    size_t dst_addr_count;
    bool has_src_layers;
    int64_t src_layer_start;
    int64_t src_layer_stop;
    uint32_t src_batch_index;
} datadist_transfer_config;

#define DATADIST_TRANSFER_TO_SLOT 0   /* slot: a remote cache's slot (contiguous sources) */
#define DATADIST_TRANSFER_TO_BLOCKS 1 /* blocks: a remote model's blocks cache (blocks sources) */

/* To a remote cache named by key: source layer src_layer_start + i goes to destination layer
 * dst_layer_start + i; both ranges non-empty and of one length. */
typedef struct datadist_transfer_key_config {
    int32_t kind; /* DATADIST_TRANSFER_TO_* */
    datadist_cache_key_by_id slot;
    datadist_blocks_cache_key blocks;
    int64_t src_layer_start;
    int64_t src_layer_stop;
    int64_t dst_layer_start;
    int64_t dst_layer_stop;
    uint32_t src_batch_index; /* slot destinations only */
} datadist_transfer_key_config;

/* Checks everything that needs no peer (errors are returned here), then pushes in the background. Block lists:
 * count 0 means none; dst_block_bytes 0 means none (for a contiguous source with dst_blocks). */
datadist_status datadist_transfer_cache_async(
    datadist_cache_manager *manager, const datadist_cache *src_cache, datadist_layer_sync_fn synchronize,
    datadist_release_fn release, void *user_data, const datadist_transfer_config *configs, size_t config_count,
    const int64_t *src_blocks, size_t src_block_count, const int64_t *dst_blocks, size_t dst_block_count,
    uint64_t dst_block_bytes, datadist_cache_task **out);
datadist_status datadist_transfer_cache_async_by_key(
    datadist_cache_manager *manager, const datadist_cache *src_cache, datadist_layer_sync_fn synchronize,
    datadist_release_fn release, void *user_data, const datadist_transfer_key_config *configs, size_t config_count,
    const int64_t *src_blocks, size_t src_block_count, const int64_t *dst_blocks, size_t dst_block_count,
    datadist_cache_task **out);
/* Waits up to timeout_ms (-1: until done) and writes the task's overall status to *out: DATADIST_TIMEOUT if it
 * is still running (it goes on), else the first result that is neither success nor missing, else success. */
datadist_status datadist_cache_task_synchronize(datadist_cache_task *task, int64_t timeout_ms, datadist_status *out);
/* Waits as datadist_cache_task_synchronize does, then writes one result per config, in order, to the first
 * min(capacity, count) entries of codes and sent (sent[i] false: config i's last layer was never sent; while
 * still running every code is DATADIST_TIMEOUT); *count is the number of configs. */
datadist_status datadist_cache_task_results(
    datadist_cache_task *task, int64_t timeout_ms, datadist_status *codes, bool *sent, size_t capacity,
    size_t *count);
/* Whether the task has ended (its results are final; synchronize is not called for any further layer). */
datadist_status datadist_cache_task_is_done(datadist_cache_task *task, bool *out);
datadist_status datadist_cache_task_release(datadist_cache_task *task);

#ifdef __cplusplus
}
#endif

#endif /* DATADIST_DATADIST_H */
