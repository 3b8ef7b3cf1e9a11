"""A DataDist instance in its own process, driven by JSON lines on stdin (one reply line each on stdout).

Used by the two-process tests as the prompt side: it allocates caches filled with ``patterns.pattern``, removes
keys, checks bytes pushed to it, audits and finalizes on request.
"""

import json
import sys

import numpy as np

import llm_datadist as ld
from patterns import pattern, tensor_bytes


def main() -> None:
    engine = None
    caches = {}
    keys_bound = []
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            reply = {"ok": True}
            if op == "init":
                config = ld.LLMConfig()
                config.listen_ip_info = "127.0.0.1:0"
                config.mem_pool_cfg = json.dumps({"memory_size": 64 << 20})
                config.host_mem_pool_cfg = json.dumps({"memory_size": 16 << 20})
                config.sync_kv_timeout = 5000
                if request.get("remote_accessible"):
                    config.enable_remote_cache_accessible = True
                engine = ld.LLMDataDist(ld.LLMRole.PROMPT, request["cluster_id"])
                options = config.generate_options()
                options.update(request.get("options", {}))  # DataDist's own keys (llm.Transport, ...)
                engine.init(options)
                reply["port"] = engine.listen_port()
            elif op in ("alloc", "alloc_blocks"):
                manager = engine.cache_manager
                desc = ld.CacheDesc(request["num_tensors"], request["shape"], ld.DataType.DT_FLOAT16)
                if op == "alloc":
                    keys = [ld.CacheKey(cluster, req) for cluster, req in request.get("keys", [])]
                    cache = manager.allocate_cache(desc, keys)
                    keys_bound += keys
                else:
                    cache = manager.allocate_blocks_cache(desc, ld.BlocksCacheKey(request["cluster_id"], 0))
                for index, view in enumerate(cache.as_numpy()):
                    raw = tensor_bytes(view)
                    raw[:] = pattern(request["seed"], index, raw.size)
                caches[cache.cache_id] = cache
                reply["cache_id"] = cache.cache_id
                reply["tensor_addrs"] = cache.tensor_addrs
            elif op == "remove_key":
                engine.cache_manager.remove_cache_key(ld.CacheKey(request["cluster"], request["req"]))
            elif op == "check":
                cache = caches[request["cache_id"]]
                wanted = request["tensors"]
                reply["ok"] = all(
                    np.array_equal(tensor_bytes(view), pattern(request["seed"], source, tensor_bytes(view).size))
                    for view, source in zip([cache.as_numpy()[t] for t in wanted], request["sources"])
                )
            elif op == "check_blocks":
                cache = caches[request["cache_id"]]
                seed = request["seed"]
                good = True
                for index, view in enumerate(cache.as_numpy()):
                    for local, source in request["blocks"].items():
                        block = tensor_bytes(view[int(local)])
                        expected = pattern(seed, index, tensor_bytes(view).size)
                        start = source * block.size
                        good &= bool(np.array_equal(block, expected[start : start + block.size]))
                reply["ok"] = good
            elif op == "dealloc_all":
                manager = engine.cache_manager
                for key in keys_bound:  # the reference's pattern: remove every key (a no-op once pulled)
                    manager.remove_cache_key(key)
                keys_bound.clear()
                for cache in caches.values():
                    if cache.is_blocks_cache:
                        manager.deallocate_blocks_cache(cache)
                    else:
                        manager.deallocate_cache(cache)
                caches.clear()
            elif op == "audit":
                audit = engine.cache_manager.audit()
                reply.update(audit.__dict__)
            elif op == "finalize":
                engine.finalize()
                print(json.dumps(reply), flush=True)
                return
            else:
                reply = {"ok": False, "error": f"unknown op {op}"}
        except ld.LLMException as error:
            reply = {"ok": False, "status": error.status_code.name, "error": str(error)}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
