# The prompt: allocate a keyed KV cache, fill it, serve it until the decoder says it is done.
import llm_datadist as ld

config = ld.LLMConfig()
config.listen_ip_info = "127.0.0.1:26000"
config.mem_pool_cfg = '{"memory_size": 67108864}'   # 64 MiB device pool
engine = ld.LLMDataDist(ld.LLMRole.PROMPT, 1)
engine.init(config.generate_options())
manager = engine.cache_manager

desc = ld.CacheDesc(4, [1, 256, 128], ld.DataType.DT_FLOAT16)   # 2 layers of K, V for one request
key = ld.CacheKey(1, 100)                                     # cluster 1, request 100
cache = manager.allocate_cache(desc, [key])
for index, tensor in enumerate(cache.as_numpy()):             # zero-copy views of the cache's memory
    tensor[:] = index + 1
input("serving request 100; press Enter once the decoder has pulled it\n")
manager.remove_cache_key(key)       # a no-op once pulled
manager.deallocate_cache(cache)
print(manager.audit())
engine.finalize()
