# The decoder: link to the prompt, pull request 100 by its key, check it, unlink.
import llm_datadist as ld

config = ld.LLMConfig()
config.mem_pool_cfg = '{"memory_size": 67108864}'
engine = ld.LLMDataDist(ld.LLMRole.DECODER, 2)
engine.init(config.generate_options())
manager = engine.cache_manager

prompt = ld.LLMClusterInfo()
prompt.remote_cluster_id = 1
prompt.append_local_ip_info("127.0.0.1", 0)
prompt.append_remote_ip_info("127.0.0.1", 26000)
ret, rets = engine.link_clusters([prompt], timeout=3000)
assert ret == ld.LLMStatusCode.LLM_SUCCESS, rets

cache = manager.allocate_cache(ld.CacheDesc(4, [1, 256, 128], ld.DataType.DT_FLOAT16))
manager.pull_cache(ld.CacheKey(1, 100), cache, batch_index=0)
assert all((tensor == index + 1).all() for index, tensor in enumerate(cache.as_numpy()))
try:
    manager.pull_cache(ld.CacheKey(1, 100), cache)            # a pulled key is consumed
except ld.LLMException as error:
    print("second pull:", error.status_code)                  # LLM_KV_CACHE_NOT_EXIST
engine.unlink_clusters([prompt])
manager.deallocate_cache(cache)
engine.finalize()
print("pulled and verified request 100")
