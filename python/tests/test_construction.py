"""§15.1-§15.3 construction and lifecycle cases, and the TypeError / ValueError / LLMException split."""

import ctypes

import numpy as np
import pytest

import llm_datadist as ld
from conftest import POOL, cluster_info, make_engine

S = ld.LLMStatusCode
F16 = ld.DataType.DT_FLOAT16


def status_of(call, *args, **kwargs):
    with pytest.raises(ld.LLMException) as error:
        call(*args, **kwargs)
    return error.value.status_code


def test_import_reports_the_emulator_backend():
    name, reason = ld.backend()
    assert name in ("emulator", "acl") and reason


def test_status_codes_have_the_reference_values():
    assert ld.LLMStatusCode.LLM_PARAM_INVALID.value == 0x5010B005
    assert ld.LLMStatusCode.LLM_OUT_OF_MEMORY.value == 1343270940
    assert ld.LLMStatusCode.LLM_DEVICE_MEM_ERROR.value == 507053
    assert len(ld.LLMStatusCode) == 33
    assert issubclass(ld.LLMException, RuntimeError)
    assert ld.LLMException().status_code == S.LLM_SUCCESS
    assert ld.DataType.DT_BF16.value == 27 and ld.Placement.DEVICE.value == 1
    assert ld.RegisterMemStatus.FAILED.value == 2 and ld.LLMRole.MIX.value == 3


def test_a07_a08_cache_desc():
    with pytest.raises(ValueError):
        ld.CacheDesc(-1, [2, 4], ld.DataType.DT_INT8, ld.Placement.DEVICE)
    assert status_of(ld.CacheDesc, 1, [2, 4], ld.DataType.DT_INT8, batch_dim_index=2) == S.LLM_PARAM_INVALID
    assert status_of(ld.CacheDesc, 1, [2, 4], ld.DataType.DT_INT8, seq_len_dim_index=5) == S.LLM_PARAM_INVALID
    with pytest.raises(ValueError):
        ld.CacheDesc(1, [2, 4], ld.DataType.DT_INT8, seq_len_dim_index=2**64 - 1)
    with pytest.raises(TypeError, match="data_type"):
        ld.CacheDesc(1, [2, 4], 1)
    with pytest.raises(TypeError, match="shape"):
        ld.CacheDesc(1, "24", F16)
    desc = ld.CacheDesc(2, [4, 8], F16)
    assert (desc.size, desc.batch_size, desc.placement) == (64, 4, ld.Placement.DEVICE)


def test_a09_a10_cache_key():
    with pytest.raises(ld.LLMException, match="cluster_id is required"):
        ld.CacheKey(req_id=1, model_id=1, prefix_id=1)
    with pytest.raises(ld.LLMException, match="req_id is required"):
        ld.CacheKey(cluster_id=1, model_id=1, prefix_id=1)
    with pytest.raises(ld.LLMException, match="Unsupported param"):
        ld.CacheKey(cluster_id=1, req_id=1, prefix_id1=1)
    with pytest.raises(ld.LLMException):
        ld.CacheKey(1, 1, 1, 1, 1)
    key = ld.CacheKey(1, 1, 1, 1)
    assert (key.cluster_id, key.req_id, key.model_id, key.prefix_id) == (1, 1, 1, 1)
    alias = ld.CacheKey(prompt_cluster_id=1, req_id=1, model_id=1, prefix_id=1)
    assert (alias.prompt_cluster_id, alias.prefix_id) == (1, 1)
    with pytest.raises(ValueError):
        ld.CacheKey(cluster_id=-1, req_id=1)
    assert ld.CacheKey(1, 2).prefix_id == 2**64 - 1


def test_a11_blocks_cache_key_and_key_by_id():
    with pytest.raises(TypeError):
        ld.BlocksCacheKey("aa")
    with pytest.raises(ld.LLMException):
        ld.BlocksCacheKey(model_id=1)
    key = ld.BlocksCacheKey(1, 1)
    assert (key.cluster_id, key.model_id) == (1, 1)
    with pytest.raises(ValueError):
        ld.CacheKeyByIdAndIndex(1, 1, -1)
    with pytest.raises(TypeError, match="cache_id"):
        ld.CacheKeyByIdAndIndex(1, "1")


def test_a14_create_cpu_cache():
    assert status_of(ld.Cache.create_cpu_cache, ld.CacheDesc(2, [4, 8], F16), [1, 2]) == S.LLM_PARAM_INVALID
    host = ld.CacheDesc(2, [4, 8], F16, ld.Placement.HOST)
    assert status_of(ld.Cache.create_cpu_cache, host, [1, 2, 3]) == S.LLM_PARAM_INVALID
    with pytest.raises(TypeError, match="addrs"):
        ld.Cache.create_cpu_cache(host, ["1", "2"])
    buffers = [np.zeros(32, dtype=np.float16) for _ in range(2)]
    cache = ld.Cache.create_cpu_cache(host, [b.ctypes.data for b in buffers])
    assert (cache.cache_id, cache.is_blocks_cache) == (-1, True)


def test_cluster_info():
    info = ld.LLMClusterInfo()
    info.remote_cluster_id = 5
    info.append_local_ip_info("127.0.0.1", 26000)
    info.append_remote_ip_info(0x0100007F, 26001)
    assert info.local_ip_info_list == [(0x0100007F, 26000)]
    assert info.remote_ip_info_list == [(0x0100007F, 26001)]
    with pytest.raises(ValueError):
        info.append_remote_ip_info("127.0.0.1", 70000)
    with pytest.raises(TypeError):
        info.append_remote_ip_info(1.5, 1)
    with pytest.raises(RuntimeError):
        info.append_remote_ip_info("not an ip", 1)
    with pytest.raises(ValueError):
        info.remote_cluster_id = -1


def test_engine_construction_and_b01_b03_b07_b08():
    with pytest.raises(TypeError, match="role"):
        ld.LLMDataDist("prompt", 1)
    with pytest.raises(ValueError):
        ld.LLMDataDist(ld.LLMRole.PROMPT, -1)
    engine = ld.LLMDataDist(ld.LLMRole.PROMPT, 31)
    engine.finalize()  # B07: never initialised, no-op
    with pytest.raises(RuntimeError, match="not initialized"):
        engine.cache_manager
    with pytest.raises(RuntimeError):
        engine.link("x", {1: 0, 2: 1}, "{}")
    with pytest.raises(RuntimeError):
        engine.link_clusters([])
    with pytest.raises(TypeError, match="options"):
        engine.init([("llm.MemPoolConfig", POOL)])
    with pytest.raises(TypeError):
        engine.init({"ge.flowGraphMemMaxSize": 123})
    for bad in ("1024,2048", "1.23", "-1"):
        with pytest.raises(ld.LLMException):
            engine.init({"ge.flowGraphMemMaxSize": bad})
    assert status_of(engine.init, {"llm.NoSuchOption": "1"}) == S.LLM_PARAM_INVALID
    engine.init({"llm.MemPoolConfig": POOL})
    manager = engine.cache_manager
    engine.init({"llm.MemPoolConfig": "not even json"})  # B01: a second init returns silently
    assert engine.cache_manager is manager
    engine.finalize()


def test_b04_b06_transfer_backend_rules():
    engine = ld.LLMDataDist(ld.LLMRole.PROMPT, 32)
    with pytest.raises(ld.LLMException, match="EnableCacheManager"):
        engine.init({"llm.TransferBackend": "hixl"})
    with pytest.raises(ld.LLMException, match="listenIpInfo"):
        engine.init({"llm.TransferBackend": "hixl", "llm.EnableCacheManager": "1"})
    with pytest.raises(ld.LLMException, match="EnableRemoteCacheAccessible"):
        engine.init(
            {
                "llm.TransferBackend": "hixl",
                "llm.EnableCacheManager": "1",
                "llm.EnableRemoteCacheAccessible": "0",
                "llm.listenIpInfo": "127.0.0.1:0",
            }
        )


def test_b12_b14_b19_b22_link_arguments_and_switch_role(engine):
    info = cluster_info(77, 1)
    assert status_of(engine.link_clusters, [info], 0) == S.LLM_PARAM_INVALID
    assert status_of(engine.unlink_clusters, [info], 0) == S.LLM_PARAM_INVALID
    with pytest.raises(TypeError, match="clusters"):
        engine.link_clusters("x", 5000)
    with pytest.raises(TypeError, match="force"):
        engine.unlink_clusters([info], 5000, force="x")
    with pytest.raises(ValueError):
        engine.link_clusters([info], 1 << 31)
    bare = ld.LLMClusterInfo()
    bare.remote_cluster_id = 77
    bare.append_remote_ip_info("127.0.0.1", 1)
    with pytest.raises(ld.LLMException, match="local_ip_info_list is empty"):
        engine.link_clusters([bare])
    assert engine.link_clusters([]) == (S.LLM_PARAM_INVALID, [])
    # B19: nobody listens on port 1.
    assert engine.link_clusters([info], timeout=2000) == (S.LLM_LINK_FAILED, [S.LLM_LINK_FAILED])
    with pytest.raises(TypeError, match="role"):
        engine.switch_role("x")
    with pytest.raises(TypeError, match="switch_options"):
        engine.switch_role(ld.LLMRole.DECODER, "x")
    engine.switch_role(ld.LLMRole.DECODER)
    engine.switch_role(ld.LLMRole.PROMPT, {"llm.listenIpInfo": "127.0.0.1:0"})
    assert engine.listen_port() != 0
    engine.switch_role(ld.LLMRole.DECODER)
    assert engine.listen_port() == 0


def test_b16_switch_role_with_a_link_is_exist_link():
    prompt = make_engine(41, ld.LLMRole.PROMPT, listen_ip_info="127.0.0.1:0")
    decoder = make_engine(42)
    try:
        assert decoder.link_clusters([cluster_info(41, prompt.listen_port())])[0] == S.LLM_SUCCESS
        assert status_of(decoder.switch_role, ld.LLMRole.PROMPT) == S.LLM_EXIST_LINK
    finally:
        decoder.finalize()
        prompt.finalize()


def test_c11_c13_c15_c16_allocation_rules(engine):
    manager = engine.cache_manager
    no_pool = ld.LLMDataDist(ld.LLMRole.PROMPT, 50)
    no_pool.init({})
    try:
        desc = ld.CacheDesc(1, [2, 8], F16)
        assert status_of(no_pool.cache_manager.allocate_cache, desc) == S.LLM_PARAM_INVALID
    finally:
        no_pool.finalize()
    desc = ld.CacheDesc(1, [2, 8], F16)
    keys = [ld.CacheKey(1, 1), ld.CacheKey(1, 2), ld.CacheKey(1, 3)]
    assert status_of(manager.allocate_cache, desc, keys) == S.LLM_PARAM_INVALID
    assert status_of(manager.allocate_cache, desc, [ld.CacheKey(1, 1), ld.CacheKey(1, 1)]) == S.LLM_PARAM_INVALID
    manager.remove_cache_key(ld.CacheKey(1, 999))
    cache = manager.allocate_cache(desc)
    manager.deallocate_cache(cache)
    manager.deallocate_cache(cache)
    with pytest.raises(TypeError, match="cache_keys"):
        manager.allocate_cache(desc, [1])
    with pytest.raises(TypeError, match="cache_desc"):
        manager.allocate_cache("desc")
    assert status_of(manager.allocate_cache, ld.CacheDesc(1, [1 << 40], F16)) == S.LLM_OUT_OF_MEMORY
    assert manager.audit().is_clean


def test_c17_c20_c21_register_caller_memory(engine):
    manager = engine.cache_manager
    buffers = [np.zeros([2, 8], dtype=np.float16) for _ in range(2)]
    addrs = [b.ctypes.data for b in buffers]
    desc = ld.CacheDesc(2, [2, 8], F16)
    assert status_of(manager.register_cache, desc, addrs[:1]) == S.LLM_PARAM_INVALID
    assert status_of(manager.register_cache, desc, [0, addrs[1]]) == S.LLM_PARAM_INVALID
    with pytest.raises(TypeError, match="remote_accessible"):
        manager.register_cache(desc, addrs, remote_accessible="yes")
    first = manager.register_cache(desc, addrs, [ld.CacheKey(1, 5)])
    second = manager.register_blocks_cache(ld.CacheDesc(2, [2, 8], F16), addrs, ld.BlocksCacheKey(1, 100))
    assert second.cache_id > first.cache_id and second.is_blocks_cache
    assert first.tensor_addrs == addrs
    manager.unregister_cache(first.cache_id)
    manager.unregister_cache(second.cache_id)
    manager.unregister_cache(12345)  # unknown: success
    with pytest.raises(ValueError):
        manager.unregister_cache(1 << 63)


def test_type_value_exception_split_on_every_method(engine):
    manager = engine.cache_manager
    contiguous = manager.allocate_cache(ld.CacheDesc(2, [1, 8], F16))
    blocks = manager.allocate_blocks_cache(ld.CacheDesc(2, [4, 8], F16))
    key = ld.CacheKey(2, 1)
    with pytest.raises(TypeError, match="cache_key"):
        manager.pull_cache("key", contiguous)
    with pytest.raises(TypeError, match="cache"):
        manager.pull_cache(key, "cache")
    with pytest.raises(ValueError):
        manager.pull_cache(key, contiguous, batch_index=-1)
    with pytest.raises(TypeError, match="src_layer_range"):
        manager.pull_cache(key, contiguous, src_layer_range=[0, 1])
    with pytest.raises(TypeError, match="tensor_num_per_layer"):
        manager.pull_cache(key, contiguous, tensor_num_per_layer=1.5)
    with pytest.raises(ValueError):
        manager.pull_cache(key, contiguous, tensor_num_per_layer=-1)
    assert status_of(manager.pull_cache, key, contiguous, tensor_num_per_layer=0) == S.LLM_PARAM_INVALID
    assert status_of(manager.pull_cache, key, contiguous, src_layer_range=range(0, 4, 2)) == S.LLM_PARAM_INVALID
    assert status_of(manager.pull_cache, key, contiguous, size=0) == S.LLM_PARAM_INVALID
    assert status_of(manager.pull_cache, key, blocks) == S.LLM_PARAM_INVALID
    assert status_of(manager.pull_cache, ld.CacheKey(2, 2**64 - 1), contiguous) == S.LLM_PARAM_INVALID
    assert status_of(manager.pull_cache, key, contiguous, bogus=1) == S.LLM_PARAM_INVALID
    assert status_of(manager.pull_cache, key, contiguous) == S.LLM_NOT_YET_LINK
    with pytest.raises(TypeError, match="src_blocks"):
        manager.pull_blocks(ld.BlocksCacheKey(2), blocks, "01", [0])
    assert status_of(manager.pull_blocks, ld.BlocksCacheKey(2), blocks, [0], []) == S.LLM_PARAM_INVALID
    assert status_of(manager.pull_blocks, ld.BlocksCacheKey(2), contiguous, [0], [0]) == S.LLM_PARAM_INVALID
    assert status_of(manager.pull_blocks, key, blocks, [], [0]) == S.LLM_FEATURE_NOT_ENABLED
    with pytest.raises(TypeError, match="dst_cache_key"):
        manager.push_cache(key, contiguous)
    assert status_of(manager.push_cache, ld.CacheKeyByIdAndIndex(2, 1), contiguous, size=5) == S.LLM_PARAM_INVALID
    with pytest.raises(TypeError, match="dst_cache_key"):
        manager.push_blocks(key, blocks, [0], [0])
    with pytest.raises(TypeError, match="copy_block_info"):
        manager.copy_blocks(blocks, [(0, 1)])
    with pytest.raises(TypeError):
        manager.copy_blocks(blocks, {0: 1})
    assert status_of(manager.copy_blocks, contiguous, {0: [1]}) == S.LLM_PARAM_INVALID
    assert status_of(manager.copy_blocks, blocks, {0: [9]}) == S.LLM_PARAM_INVALID
    with pytest.raises(TypeError, match="src_to_dst"):
        manager.swap_blocks(blocks, blocks, [(0, 1)])
    assert status_of(manager.swap_blocks, contiguous, blocks, {0: 1}) == S.LLM_PARAM_INVALID
    with pytest.raises(ValueError):
        manager.copy_cache(contiguous, contiguous, dst_batch_index=-1)
    with pytest.raises(TypeError, match="dst"):
        manager.copy_cache(None, contiguous)
    assert status_of(manager.copy_cache, contiguous, contiguous, size=0) == S.LLM_PARAM_INVALID
    assert status_of(manager.copy_cache, contiguous, blocks) == S.LLM_PARAM_INVALID
    with pytest.raises(TypeError, match="cache_key"):
        manager.remove_cache_key(ld.BlocksCacheKey(1))
    assert status_of(manager.deallocate_cache, blocks) == S.LLM_PARAM_INVALID
    assert status_of(manager.deallocate_blocks_cache, contiguous) == S.LLM_PARAM_INVALID
    assert status_of(manager.remap_registered_memory, []) == S.LLM_FEATURE_NOT_ENABLED
    # Nothing above changed anything.
    audit = manager.audit()
    assert (audit.live_caches, audit.bound_keys, audit.orphans) == (2, 0, 0)
    manager.copy_blocks(blocks, {0: [1, 2]})
    manager.deallocate_cache(contiguous)
    manager.deallocate_blocks_cache(blocks)


class NeverCalled(ld.LayerSynchronizer):
    def synchronize_layer(self, layer_index, timeout_in_millis):
        raise AssertionError("a refused transfer_cache_async must not ask its synchronizer")


def test_e17_e19_transfer_cache_async_validation():
    engine = make_engine(70, enable_remote_cache_accessible=True)
    manager = engine.cache_manager
    sync = NeverCalled()
    cache = manager.allocate_cache(ld.CacheDesc(6, [1, 8], F16))  # 3 layers
    odd = manager.allocate_cache(ld.CacheDesc(3, [1, 8], F16))
    blocks = manager.allocate_blocks_cache(ld.CacheDesc(2, [4, 8], F16))
    host = manager.allocate_cache(ld.CacheDesc(2, [1, 8], F16, ld.Placement.HOST))
    good = ld.TransferConfig(71, [1] * 6)
    keyed = ld.TransferWithCacheKeyConfig(ld.CacheKeyByIdAndIndex(71, 1), range(0, 1), range(0, 1))
    for args in ((None, None, [good]), ("cache", None, [good]), (cache, None, [good])):  # E17
        with pytest.raises(TypeError):
            manager.transfer_cache_async(*args)
    with pytest.raises(TypeError, match="transfer_configs"):
        manager.transfer_cache_async(cache, sync, good)
    with pytest.raises(TypeError, match=r"transfer_configs\[1\]"):
        manager.transfer_cache_async(cache, sync, [good, 5])
    with pytest.raises(TypeError, match="one kind"):
        manager.transfer_cache_async(cache, sync, [keyed, good])
    with pytest.raises(TypeError, match="src_block_indices"):
        manager.transfer_cache_async(blocks, sync, [good], src_block_indices="0")
    with pytest.raises(ValueError, match="dst_block_indices"):
        manager.transfer_cache_async(blocks, sync, [good], [0], [-1])
    with pytest.raises(ValueError, match="dst_block_memory_size"):
        manager.transfer_cache_async(cache, sync, [good], None, [0], -1)
    refused = {
        "E19 three tensors": (odd, sync, [ld.TransferConfig(71, [1] * 2, range(0, 1))]),
        "E19 4 addresses for 3 layers": (cache, sync, [ld.TransferConfig(71, [1] * 4)]),
        "host source": (host, sync, [ld.TransferConfig(71, [1, 2])]),
        "range past the layers": (cache, sync, [ld.TransferConfig(71, [1] * 4, range(2, 4))]),
        "empty configs": (cache, sync, []),
        "blocks to a cache": (blocks, sync, [good], [0], None),
        "block list lengths": (blocks, sync, [good], [0, 1], [0]),
        "contiguous to blocks without a size": (cache, sync, [good], None, [0]),
        "a size without blocks": (cache, sync, [good], None, None, 64),
        "blocks with a batch index": (blocks, sync, [ld.TransferConfig(71, [1, 2], None, 1)], [0], [0]),
        "unequal ranges": (cache, sync, [keyed], None, None),
    }
    keyed.dst_layer_range = range(0, 2)  # each setter checks its value; the pair is checked when a task starts
    for name, args in refused.items():
        assert status_of(manager.transfer_cache_async, *args) == S.LLM_PARAM_INVALID, name
    keyed.dst_layer_range = range(0, 1)
    assert status_of(manager.transfer_cache_async, cache, sync, [good]) == S.LLM_NOT_YET_LINK
    assert status_of(manager.transfer_cache_async, cache, sync, [keyed]) == S.LLM_NOT_YET_LINK
    # Nothing above started a task or changed the manager.
    audit = manager.audit()
    assert (audit.live_caches, audit.bound_keys, audit.orphans, audit.pinned_by_peers) == (4, 0, 0, 0)
    for item in (cache, odd, host):
        manager.deallocate_cache(item)
    manager.deallocate_blocks_cache(blocks)
    assert manager.audit().is_clean
    engine.finalize()


def test_transfer_cache_async_needs_remote_cache_access(engine):
    manager = engine.cache_manager
    cache = manager.allocate_cache(ld.CacheDesc(2, [1, 8], F16))
    keyed = ld.TransferWithCacheKeyConfig(ld.BlocksCacheKey(5), range(0, 1), range(0, 1))
    with pytest.raises(TypeError, match=r"transfer_configs\[0\]"):  # key configs: remote-accessible mode only
        manager.transfer_cache_async(cache, NeverCalled(), [keyed])
    status = status_of(manager.transfer_cache_async, cache, NeverCalled(), [ld.TransferConfig(5, [1, 2])])
    assert status == S.LLM_PARAM_INVALID  # DataDist pushes need that mode for raw addresses too
    manager.deallocate_cache(cache)


def test_transfer_config_types_check_each_argument():
    with pytest.raises(NotImplementedError):
        ld.LayerSynchronizer().synchronize_layer(0, None)
    config = ld.TransferConfig(1, (10, 20), range(1, 2), 3)
    assert (config.dst_cluster_id, config.dst_addrs, config.src_layer_range, config.src_batch_index) == (
        1, [10, 20], range(1, 2), 3)
    assert config.dst_layer_range is None
    with pytest.raises(TypeError, match="dst_cluster_id"):
        ld.TransferConfig("1", [1, 2])
    with pytest.raises(ValueError, match="dst_cluster_id"):
        ld.TransferConfig(-1, [1, 2])
    with pytest.raises(TypeError, match="dst_addrs"):
        ld.TransferConfig(1, 5)
    with pytest.raises(ValueError, match=r"dst_addrs\[1\]"):
        ld.TransferConfig(1, [1, 1 << 64])
    with pytest.raises(TypeError, match="src_layer_range"):
        ld.TransferConfig(1, [1, 2], [0, 1])
    for bad in (range(2, 1), range(1, 1), range(0, 4, 2)):
        assert status_of(ld.TransferConfig, 1, [1, 2], bad) == S.LLM_PARAM_INVALID, bad
    with pytest.raises(ValueError, match="src_batch_index"):
        ld.TransferConfig(1, [1, 2], None, -1)
    with pytest.raises(TypeError, match="dst_addrs"):
        config.dst_addrs = None
    assert config.dst_addrs == [10, 20]

    key = ld.CacheKeyByIdAndIndex(7, 3, 1)
    keyed = ld.TransferWithCacheKeyConfig(key, range(2, 4), range(0, 2), 1)
    assert (keyed.cache_key, keyed.src_layer_range, keyed.dst_layer_range, keyed.src_batch_index) == (
        key, range(2, 4), range(0, 2), 1)
    assert keyed.dst_cluster_id == 7
    for args in ((None, range(0, 1), range(0, 1)), (ld.CacheKey(7, 1), range(0, 1), range(0, 1)),
                 (key, None, range(0, 1)), (key, range(0, 1), None)):
        with pytest.raises(TypeError):
            ld.TransferWithCacheKeyConfig(*args)
    assert status_of(ld.TransferWithCacheKeyConfig, key, range(0, 2), range(0, 1)) == S.LLM_PARAM_INVALID
    assert status_of(ld.TransferWithCacheKeyConfig, key, range(-1, 1), range(0, 2)) == S.LLM_PARAM_INVALID
    assert status_of(ld.TransferWithCacheKeyConfig, ld.BlocksCacheKey(7), range(0, 1), range(0, 1), 1) == (
        S.LLM_PARAM_INVALID)
    with pytest.raises(ValueError, match="src_batch_index"):
        keyed.src_batch_index = 1 << 32
    keyed.cache_key = ld.BlocksCacheKey(8)
    assert keyed.dst_cluster_id == 8


def test_every_method_of_a_finalized_cache_manager_is_engine_finalized():
    engine = make_engine(60)
    manager = engine.cache_manager
    cache = manager.allocate_cache(ld.CacheDesc(2, [1, 8], F16))
    engine.finalize()
    desc = ld.CacheDesc(2, [1, 8], F16)
    calls = {
        "allocate_cache": (desc,),
        "deallocate_cache": (cache,),
        "remove_cache_key": (ld.CacheKey(1, 1),),
        "copy_cache": (cache, cache),
        "pull_cache": (ld.CacheKey(1, 1), cache),
        "pull_blocks": (ld.BlocksCacheKey(1), cache, [0], [0]),
        "push_cache": (ld.CacheKeyByIdAndIndex(1, 1), cache),
        "push_blocks": (ld.BlocksCacheKey(1), cache, [0], [0]),
        "allocate_blocks_cache": (desc,),
        "deallocate_blocks_cache": (cache,),
        "copy_blocks": (cache, {0: [1]}),
        "swap_blocks": (cache, cache, {0: 1}),
        "register_cache": (desc, [1, 2]),
        "register_blocks_cache": (desc, [1, 2]),
        "unregister_cache": (1,),
        "remap_registered_memory": ([],),
        "transfer_cache_async": (cache, None, []),  # finalized comes before the type checks
        "audit": (),
    }
    public = {name for name in dir(ld.CacheManager) if not name.startswith("_") and name != "check_cache_key"}
    assert public == set(calls)
    for name, args in calls.items():
        assert status_of(getattr(manager, name), *args) == S.LLM_ENGINE_FINALIZED, name
    # The native handle says the same when reached directly.
    raw = ld._native.AuditC()
    assert ld._native.lib.datadist_audit_cache_manager(manager._handle, ctypes.byref(raw)) == 0x5010B006


def test_b08_b11_b18_communicator_links(engine):
    uninitialised = ld.LLMDataDist(ld.LLMRole.DECODER, 61)
    with pytest.raises(RuntimeError):
        uninitialised.unlink(1)
    for args in (("", {3: 0, 2: 1}, "{}"), ("x" * 128, {3: 0, 2: 1}, "{}"), ("n", {i: i for i in range(5)}, "{}"),
                 ("n", {3: 0}, "{}"), ("n", {3: 1, 2: 0}, "{}")):
        assert status_of(engine.link, *args) == S.LLM_PARAM_INVALID, args
    with pytest.raises(TypeError, match="cluster_rank_info"):
        engine.link("link", [3, 2], "{}")
    with pytest.raises(TypeError, match="rank_table"):
        engine.link("link", {3: 0, 2: 1}, 123)
    with pytest.raises(TypeError, match="comm_id"):
        engine.unlink("x")
    assert status_of(engine.link, "link", {3: 0, 2: 1}, "{}") == S.LLM_FEATURE_NOT_ENABLED
    assert status_of(engine.unlink, 999) == S.LLM_NOT_YET_LINK
    assert status_of(engine.query_register_mem_status, 999) == S.LLM_NOT_YET_LINK
    with pytest.raises(ld.LLMException):  # B09: legacy-only API in CacheManager mode
        engine.kv_cache_manager
    with pytest.raises(ld.LLMException):
        engine.check_link_status(1)


def test_b23_peers_disagreeing_on_remote_cache_access_do_not_link():
    prompt = make_engine(81, ld.LLMRole.PROMPT, listen_ip_info="127.0.0.1:0", enable_remote_cache_accessible=True)
    decoder = make_engine(82)
    try:
        ret, rets = decoder.link_clusters([cluster_info(81, prompt.listen_port())])
        assert (ret, rets) == (S.LLM_PARAM_INVALID, [S.LLM_PARAM_INVALID])
    finally:
        decoder.finalize()
        prompt.finalize()


def test_c01_c02_bad_pool_configs_fail_init():
    for pool in ("{}", "{memory_size}", '{"memory_size": 18446744073709551615}',
                 '{"memory_size": 1048576, "page_shift": 9}', '{"memory_size": 65535, "page_shift": 16}',
                 '{"memory_size": 1048576, "page_shift": 31}'):
        engine = ld.LLMDataDist(ld.LLMRole.PROMPT, 83)
        assert status_of(engine.init, {"llm.MemPoolConfig": pool}) == S.LLM_PARAM_INVALID, pool
    for shift in (10, 20):
        engine = ld.LLMDataDist(ld.LLMRole.PROMPT, 84)
        engine.init({"llm.MemPoolConfig": '{"memory_size": 1048576, "page_shift": %d}' % shift})
        engine.finalize()


def test_c12_c14_placement_without_its_pool_and_a_key_bound_twice():
    engine = ld.LLMDataDist(ld.LLMRole.PROMPT, 85)
    engine.init({"llm.MemPoolConfig": POOL})
    try:
        manager = engine.cache_manager
        host = ld.CacheDesc(1, [2, 8], F16, ld.Placement.HOST)
        assert status_of(manager.allocate_cache, host) == S.LLM_PARAM_INVALID
        desc = ld.CacheDesc(1, [2, 8], F16)
        cache = manager.allocate_cache(desc, [ld.CacheKey(1, 7)])
        assert status_of(manager.allocate_cache, desc, [ld.CacheKey(1, 7)]) == S.LLM_PARAM_INVALID
        manager.remove_cache_key(ld.CacheKey(1, 7))
        manager.deallocate_cache(cache)
        assert manager.audit().is_clean
    finally:
        engine.finalize()


def test_d08_e08_e10_e13_e16_layer_and_key_rules():
    engine = make_engine(86)
    remote = make_engine(87, enable_remote_cache_accessible=True)
    try:
        manager = engine.cache_manager
        device_a = manager.allocate_blocks_cache(ld.CacheDesc(2, [4, 8], F16))
        device_b = manager.allocate_blocks_cache(ld.CacheDesc(2, [4, 8], F16))
        assert status_of(manager.swap_blocks, device_a, device_b, {0: 1}) == S.LLM_PARAM_INVALID  # D08
        one = manager.allocate_cache(ld.CacheDesc(1, [1, 8], F16))
        e08 = status_of(manager.pull_cache, ld.CacheKey(2, 1), one, 0, 4, src_layer_range=range(1),
                        dst_layer_range=range(1))
        assert e08 == S.LLM_PARAM_INVALID
        for bad in (ld.CacheKey(2, 5, 0, 7), ld.CacheKey(2, 2**64 - 1)):  # E16
            assert status_of(manager.pull_cache, bad, one) == S.LLM_PARAM_INVALID
        ten = manager.allocate_cache(ld.CacheDesc(10, [1, 8], F16))
        # E14: pushes need remote cache access, which this instance has off.
        assert status_of(manager.push_cache, ld.CacheKeyByIdAndIndex(2, 1), ten, tensor_num_per_layer=2) == (
            S.LLM_PARAM_INVALID
        )
        assert status_of(manager.push_blocks, ld.BlocksCacheKey(2), device_a, [0], [0]) == S.LLM_PARAM_INVALID
        # E10: 10 tensors do not split into layers of 3 (refused before the missing link is noticed).
        remote_ten = remote.cache_manager.allocate_cache(ld.CacheDesc(10, [1, 8], F16))
        key = ld.CacheKeyByIdAndIndex(2, 1)
        assert status_of(remote.cache_manager.push_cache, key, remote_ten, tensor_num_per_layer=3) == (
            S.LLM_PARAM_INVALID
        )
        assert status_of(remote.cache_manager.push_cache, key, remote_ten) == S.LLM_NOT_YET_LINK
        remote.cache_manager.deallocate_cache(remote_ten)
        # E13: remote-cache-accessible mode pulls only by id and index.
        target = remote.cache_manager.allocate_cache(ld.CacheDesc(2, [1, 8], F16))
        with pytest.raises(TypeError, match="cache_key"):
            remote.cache_manager.pull_cache(ld.CacheKey(1, 1), target)
        for cache in (device_a, device_b):
            manager.deallocate_blocks_cache(cache)
        manager.deallocate_cache(one)
        manager.deallocate_cache(ten)
        remote.cache_manager.deallocate_cache(target)
    finally:
        engine.finalize()
        remote.finalize()


def test_e09_e15_tensor_num_per_layer_and_block_lists(engine):
    manager = engine.cache_manager
    contiguous = manager.allocate_cache(ld.CacheDesc(2, [1, 8], F16))
    blocks = manager.allocate_blocks_cache(ld.CacheDesc(2, [4, 8], F16))
    for call in (
        lambda n: manager.pull_cache(ld.CacheKey(2, 1), contiguous, tensor_num_per_layer=n),
        lambda n: manager.pull_blocks(ld.BlocksCacheKey(2), blocks, [0], [0], tensor_num_per_layer=n),
    ):
        with pytest.raises(ValueError):
            call(-1)
        assert status_of(call, 0) == S.LLM_PARAM_INVALID
        for bad in (1.0, "x"):
            with pytest.raises(TypeError):
                call(bad)
    assert status_of(manager.pull_blocks, ld.BlocksCacheKey(2), blocks, [], [0]) == S.LLM_PARAM_INVALID
    assert status_of(manager.pull_blocks, ld.CacheKey(2, 0), blocks, [0], [0]) == S.LLM_PARAM_INVALID
    assert status_of(manager.pull_blocks, ld.BlocksCacheKey(2), blocks, [0], []) == S.LLM_PARAM_INVALID
    manager.deallocate_cache(contiguous)
    manager.deallocate_blocks_cache(blocks)
