"""A prompt process and this (decoder) process: link, pull by key and by id+index, layer ranges, blocks, push,
swap to a CPU cache, remove keys, unlink, finalize. Every byte is checked through NumPy views."""

import numpy as np
import pytest

import llm_datadist as ld
from conftest import Peer, cluster_info, make_engine, settled
from patterns import pattern, tensor_bytes

SHAPE = [2, 64, 128]  # batch 2, 16 KiB per slot of float16
S = ld.LLMStatusCode


@pytest.fixture(scope="module")
def pair():
    prompt = Peer(1)
    decoder = make_engine(2)
    ret, rets = decoder.link_clusters([cluster_info(1, prompt.port)], timeout=5000)
    assert (ret, rets) == (S.LLM_SUCCESS, [S.LLM_SUCCESS])
    yield prompt, decoder
    ret, rets = decoder.unlink_clusters([cluster_info(1, prompt.port)], timeout=5000)
    assert (ret, rets) == (S.LLM_SUCCESS, [S.LLM_SUCCESS])
    assert prompt.call("dealloc_all")["ok"]
    audit = settled(lambda: prompt.call("audit"))
    assert audit["is_clean"] and audit["orphans"] == 0, audit
    prompt.close()
    assert decoder.cache_manager.audit().is_clean
    decoder.finalize()


def slot_bytes(view: np.ndarray, slot: int) -> np.ndarray:
    return tensor_bytes(view[slot])


def expected_slot(seed: int, tensor: int, slot: int, slot_size: int, slots: int = 2) -> np.ndarray:
    return pattern(seed, tensor, slot_size * slots)[slot * slot_size : (slot + 1) * slot_size]


def test_pull_by_key_then_by_id_and_index_every_byte(pair):
    prompt, decoder = pair
    manager = decoder.cache_manager
    keyed = prompt.call("alloc", num_tensors=4, shape=SHAPE, keys=[[1, 101], [1, 102]], seed=1)
    plain = prompt.call("alloc", num_tensors=4, shape=SHAPE, keys=[[1, 401], [1, 402]], seed=2)
    destination = manager.allocate_cache(ld.CacheDesc(4, SHAPE, ld.DataType.DT_FLOAT16))
    views = destination.as_numpy()
    for view in views:
        tensor_bytes(view)[:] = 0
    manager.pull_cache(ld.CacheKey(1, 102), destination, batch_index=0)
    manager.pull_cache(ld.CacheKeyByIdAndIndex(1, plain["cache_id"], 1), destination, batch_index=1)
    slot = tensor_bytes(views[0]).size // 2
    for tensor, view in enumerate(views):
        assert np.array_equal(slot_bytes(view, 0), expected_slot(1, tensor, 1, slot))
        assert np.array_equal(slot_bytes(view, 1), expected_slot(2, tensor, 1, slot))
    with pytest.raises(ld.LLMException) as again:
        manager.pull_cache(ld.CacheKey(1, 102), destination)
    assert again.value.status_code == S.LLM_KV_CACHE_NOT_EXIST
    # By id and index consumes the key bound to that slot: req 101 sits in slot 0 of the keyed cache.
    manager.pull_cache(ld.CacheKeyByIdAndIndex(1, keyed["cache_id"], 0), destination, batch_index=1)
    assert np.array_equal(slot_bytes(views[3], 1), expected_slot(1, 3, 0, slot))
    with pytest.raises(ld.LLMException) as consumed:
        manager.pull_cache(ld.CacheKey(1, 101), destination)
    assert consumed.value.status_code == S.LLM_KV_CACHE_NOT_EXIST
    manager.deallocate_cache(destination)
    assert destination.tensor_addrs == []


def test_layer_ranges_move_only_the_named_layers(pair):
    prompt, decoder = pair
    manager = decoder.cache_manager
    shape = [1, 32, 64]
    prompt.call("alloc", num_tensors=8, shape=shape, keys=[[1, 201]], seed=3)  # 4 layers of K, V
    destination = manager.allocate_cache(ld.CacheDesc(4, shape, ld.DataType.DT_FLOAT16))  # 2 layers
    views = destination.as_numpy()
    for view in views:
        tensor_bytes(view)[:] = 0
    manager.pull_cache(
        ld.CacheKey(1, 201), destination, src_layer_range=range(1, 3), dst_layer_range=range(0, 2),
        tensor_num_per_layer=2,
    )
    for local, view in enumerate(views):
        raw = tensor_bytes(view)
        assert np.array_equal(raw, pattern(3, local + 2, raw.size)), f"tensor {local}"
    manager.deallocate_cache(destination)


def test_removed_key_is_not_pulled(pair):
    prompt, decoder = pair
    manager = decoder.cache_manager
    prompt.call("alloc", num_tensors=2, shape=[1, 8, 8], keys=[[1, 301]], seed=4)
    assert prompt.call("remove_key", cluster=1, req=301)["ok"]
    destination = manager.allocate_cache(ld.CacheDesc(2, [1, 8, 8], ld.DataType.DT_FLOAT16))
    with pytest.raises(ld.LLMException) as error:
        manager.pull_cache(ld.CacheKey(1, 301), destination)
    assert error.value.status_code == S.LLM_KV_CACHE_NOT_EXIST
    manager.deallocate_cache(destination)


def test_pull_blocks_every_byte(pair):
    prompt, decoder = pair
    manager = decoder.cache_manager
    shape = [8, 16, 64]  # 8 blocks of 2 KiB
    prompt.call("alloc_blocks", num_tensors=4, shape=shape, cluster_id=1, seed=5)
    destination = manager.allocate_blocks_cache(ld.CacheDesc(4, shape, ld.DataType.DT_FLOAT16))
    views = destination.as_numpy()
    for view in views:
        tensor_bytes(view)[:] = 0
    manager.pull_blocks(ld.BlocksCacheKey(1), destination, src_blocks=[1, 3, 4], dst_blocks=[0, 2, 5])
    block = tensor_bytes(views[0][0]).size
    for tensor, view in enumerate(views):
        source = pattern(5, tensor, tensor_bytes(view).size)
        for src, dst in [(1, 0), (3, 2), (4, 5)]:
            assert np.array_equal(tensor_bytes(view[dst]), source[src * block : (src + 1) * block])
        assert not tensor_bytes(view[1]).any()
    manager.deallocate_blocks_cache(destination)


def test_push_blocks_and_push_cache_land_in_the_peer():
    prompt = Peer(11, remote_accessible=True)
    decoder = make_engine(12, enable_remote_cache_accessible=True)
    manager = decoder.cache_manager
    try:
        assert decoder.link_clusters([cluster_info(11, prompt.port)])[0] == S.LLM_SUCCESS
        shape = [8, 16, 64]
        remote = prompt.call("alloc_blocks", num_tensors=2, shape=shape, cluster_id=11, seed=0)
        source = manager.allocate_blocks_cache(ld.CacheDesc(2, shape, ld.DataType.DT_FLOAT16))
        for index, view in enumerate(source.as_numpy()):
            raw = tensor_bytes(view)
            raw[:] = pattern(6, index, raw.size)
        manager.push_blocks(ld.BlocksCacheKey(11), source, src_blocks=[0, 1], dst_blocks=[6, 7])
        reply = prompt.call("check_blocks", cache_id=remote["cache_id"], blocks={"6": 0, "7": 1}, seed=6)
        assert reply["ok"], reply

        remote_cache = prompt.call("alloc", num_tensors=2, shape=[1, 16, 64], seed=0)
        contiguous = manager.allocate_cache(ld.CacheDesc(2, [1, 16, 64], ld.DataType.DT_FLOAT16))
        for index, view in enumerate(contiguous.as_numpy()):
            raw = tensor_bytes(view)
            raw[:] = pattern(7, index, raw.size)
        manager.push_cache(ld.CacheKeyByIdAndIndex(11, remote_cache["cache_id"], 0), contiguous)
        reply = prompt.call("check", cache_id=remote_cache["cache_id"], tensors=[0, 1], sources=[0, 1], seed=7)
        assert reply["ok"], reply
        manager.deallocate_blocks_cache(source)
        manager.deallocate_cache(contiguous)
        assert decoder.unlink_clusters([cluster_info(11, prompt.port)])[0] == S.LLM_SUCCESS
        assert prompt.call("dealloc_all")["ok"]
        assert settled(lambda: prompt.call("audit"))["is_clean"]
        assert manager.audit().is_clean
    finally:
        prompt.close()
        decoder.finalize()


def test_swap_blocks_to_a_cpu_cache_and_back(engine):
    manager = engine.cache_manager
    shape = [4, 8, 32]
    device = manager.allocate_blocks_cache(ld.CacheDesc(2, shape, ld.DataType.DT_FLOAT16))
    for index, view in enumerate(device.as_numpy()):
        raw = tensor_bytes(view)
        raw[:] = pattern(8, index, raw.size)
    host_buffers = [np.zeros(shape, dtype=np.float16) for _ in range(2)]
    host = ld.Cache.create_cpu_cache(
        ld.CacheDesc(2, shape, ld.DataType.DT_FLOAT16, ld.Placement.HOST),
        [buffer.ctypes.data for buffer in host_buffers],
    )
    manager.swap_blocks(device, host, {1: 0, 3: 2})
    block = tensor_bytes(host_buffers[0][0]).size
    for index, buffer in enumerate(host_buffers):
        source = pattern(8, index, block * 4)
        assert np.array_equal(tensor_bytes(buffer[0]), source[block : 2 * block])
        assert np.array_equal(tensor_bytes(buffer[2]), source[3 * block : 4 * block])
        assert not tensor_bytes(buffer[1]).any()
    for buffer in host_buffers:
        buffer[0] = 0
        tensor_bytes(buffer[0])[:] = 9
    manager.swap_blocks(host, device, {0: 2})
    for view in device.as_numpy():
        assert (tensor_bytes(view[2]) == 9).all()
    manager.deallocate_blocks_cache(device)


def test_unlink_then_finalize_then_every_method_is_finalized():
    prompt = Peer(21)
    decoder = make_engine(22)
    try:
        info = cluster_info(21, prompt.port)
        assert decoder.link_clusters([info]) == (S.LLM_SUCCESS, [S.LLM_SUCCESS])
        assert decoder.link_clusters([info]) == (S.LLM_ALREADY_LINK, [S.LLM_ALREADY_LINK])
        prompt.call("alloc", num_tensors=2, shape=[1, 8, 8], keys=[[21, 1]], seed=9)
        manager = decoder.cache_manager
        destination = manager.allocate_cache(ld.CacheDesc(2, [1, 8, 8], ld.DataType.DT_FLOAT16))
        assert decoder.unlink_clusters([info], timeout=3000) == (S.LLM_SUCCESS, [S.LLM_SUCCESS])
        with pytest.raises(ld.LLMException) as unlinked:
            manager.pull_cache(ld.CacheKey(21, 1), destination)
        assert unlinked.value.status_code == S.LLM_NOT_YET_LINK
        manager.deallocate_cache(destination)
        assert manager.audit().is_clean
        decoder.finalize()
        decoder.finalize()  # idempotent
        with pytest.raises(ld.LLMException) as finalized:
            manager.audit()
        assert finalized.value.status_code == S.LLM_ENGINE_FINALIZED
        with pytest.raises(RuntimeError):
            decoder.cache_manager
        assert prompt.call("remove_key", cluster=21, req=1)["ok"]
        assert prompt.call("dealloc_all")["ok"]
        assert settled(lambda: prompt.call("audit"))["is_clean"]
    finally:
        prompt.close()
        decoder.finalize()
