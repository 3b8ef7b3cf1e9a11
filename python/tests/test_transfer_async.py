"""``transfer_cache_async`` between this process and a prompt process (both remote-cache accessible): layers
pushed as the Python synchronizer releases them, by key, by address and blocks to blocks; a synchronizer that
returns False or raises. Every byte is checked on the receiving side through its NumPy views."""

import logging
import threading

import pytest

import llm_datadist as ld
from conftest import Peer, cluster_info, make_engine, settled
from patterns import pattern, tensor_bytes

S = ld.LLMStatusCode
F16 = ld.DataType.DT_FLOAT16
SHAPE = [1, 64, 128]  # one slot of 16 KiB per tensor
PEER_SEED = 40  # what the peer fills its own caches with
SEED = 41  # what the synchronizer writes into the source, layer by layer


@pytest.fixture(scope="module")
def pair():
    prompt = Peer(31, remote_accessible=True)
    decoder = make_engine(32, enable_remote_cache_accessible=True)
    assert decoder.link_clusters([cluster_info(31, prompt.port)], timeout=5000) == (S.LLM_SUCCESS, [S.LLM_SUCCESS])
    yield prompt, decoder
    assert decoder.unlink_clusters([cluster_info(31, prompt.port)], timeout=5000)[0] == S.LLM_SUCCESS
    assert prompt.call("dealloc_all")["ok"]
    audit = settled(lambda: prompt.call("audit"))
    assert audit["is_clean"] and audit["orphans"] == 0, audit
    prompt.close()
    assert decoder.cache_manager.audit().is_clean
    decoder.finalize()


class ComputeLayers(ld.LayerSynchronizer):
    """Stands in for the prefill: "computes" layer l (writes its K and V into the zeroed source) when asked for it,
    so bytes sent before their layer was released would arrive as zeros. Records the order and the threads."""

    def __init__(self, cache, refuse=None, raise_at=None, gate=None):
        self.views = cache.as_numpy()
        for view in self.views:
            tensor_bytes(view)[:] = 0
        self.layers, self.threads, self.timeouts = [], set(), []
        self.refuse, self.raise_at, self.gate = refuse, raise_at, gate

    def synchronize_layer(self, layer_index, timeout_in_millis):
        self.layers.append(layer_index)
        self.threads.add(threading.get_ident())
        self.timeouts.append(timeout_in_millis)
        if self.gate is not None:
            assert self.gate.wait(30)
        if layer_index == self.raise_at:
            raise RuntimeError(f"prefill failed at layer {layer_index}")
        if layer_index == self.refuse:
            return False
        for tensor in (2 * layer_index, 2 * layer_index + 1):
            raw = tensor_bytes(self.views[tensor])
            raw[:] = pattern(SEED, tensor, raw.size)
        return True


def check(prompt, remote, tensors, sources, seed):
    reply = prompt.call("check", cache_id=remote["cache_id"], tensors=tensors, sources=sources, seed=seed)
    return reply["ok"]


def test_layers_go_by_key_and_by_address_as_the_synchronizer_releases_them(pair):
    prompt, decoder = pair
    manager = decoder.cache_manager
    source = manager.allocate_cache(ld.CacheDesc(8, SHAPE, F16))  # 4 layers
    by_key = prompt.call("alloc", num_tensors=8, shape=SHAPE, seed=PEER_SEED)
    by_address = prompt.call("alloc", num_tensors=4, shape=SHAPE, seed=PEER_SEED)
    gate = threading.Event()
    sync = ComputeLayers(source, gate=gate)
    configs = [ld.TransferWithCacheKeyConfig(ld.CacheKeyByIdAndIndex(31, by_key["cache_id"]), range(1, 4), range(0, 3))]
    task = manager.transfer_cache_async(source, sync, configs)
    # Held at layer 1 by the gate: still running.
    assert task.synchronize(timeout_in_millis=0) == S.LLM_TIMEOUT
    assert task.get_results(0) == [S.LLM_TIMEOUT]
    gate.set()
    assert task.synchronize() == S.LLM_SUCCESS
    assert task.get_results() == [S.LLM_SUCCESS]
    assert sync.layers == [1, 2, 3]
    assert threading.get_ident() not in sync.threads
    assert sync.timeouts == [5000] * 3  # the instance's sync_kv_timeout
    assert check(prompt, by_key, list(range(6)), list(range(2, 8)), SEED)  # source layers 1-3 → remote 0-2
    assert check(prompt, by_key, [6, 7], [6, 7], PEER_SEED)  # remote layer 3 untouched

    sync = ComputeLayers(source)
    task = manager.transfer_cache_async(source, sync, [ld.TransferConfig(31, by_address["tensor_addrs"], range(2, 4))])
    assert task.synchronize() == S.LLM_SUCCESS
    assert task.get_results() == [S.LLM_SUCCESS]
    assert sync.layers == [2, 3]
    assert check(prompt, by_address, [0, 1, 2, 3], [4, 5, 6, 7], SEED)
    manager.deallocate_cache(source)
    assert settled(lambda: prompt.call("audit"))["pinned_by_peers"] == 0


def test_e18_blocks_to_blocks_by_key(pair):
    prompt, decoder = pair
    manager = decoder.cache_manager
    shape = [4, 16, 64]  # 4 blocks of 2 KiB
    remote = prompt.call("alloc_blocks", num_tensors=2, shape=shape, cluster_id=31, seed=PEER_SEED)
    source = manager.allocate_blocks_cache(ld.CacheDesc(2, shape, F16))
    sync = ComputeLayers(source)
    configs = [ld.TransferWithCacheKeyConfig(ld.BlocksCacheKey(31, 0), range(0, 1), range(0, 1))]
    task = manager.transfer_cache_async(source, sync, configs, src_block_indices=[0, 3], dst_block_indices=[2, 1])
    assert task.synchronize() == S.LLM_SUCCESS
    # check_blocks compares remote block b with block blocks[b] of pattern(seed, tensor).
    assert prompt.call("check_blocks", cache_id=remote["cache_id"], blocks={"2": 0, "1": 3}, seed=SEED)["ok"]
    assert prompt.call("check_blocks", cache_id=remote["cache_id"], blocks={"0": 0, "3": 3}, seed=PEER_SEED)["ok"]
    manager.deallocate_blocks_cache(source)


def test_a_synchronizer_returning_false_fails_the_layer_and_ends_the_task(pair):
    prompt, decoder = pair
    manager = decoder.cache_manager
    source = manager.allocate_cache(ld.CacheDesc(6, SHAPE, F16))
    remote = prompt.call("alloc", num_tensors=6, shape=SHAPE, seed=PEER_SEED)
    sync = ComputeLayers(source, refuse=1)
    key = ld.CacheKeyByIdAndIndex(31, remote["cache_id"])
    task = manager.transfer_cache_async(source, sync, [ld.TransferWithCacheKeyConfig(key, range(0, 3), range(0, 3))])
    assert task.synchronize() == S.LLM_PARAM_INVALID
    assert task.get_results() == [S.LLM_PARAM_INVALID]
    assert sync.layers == [0, 1]  # never asked about layer 2
    assert check(prompt, remote, [0, 1], [0, 1], SEED)  # layer 0 had been released: it went
    assert check(prompt, remote, [2, 3, 4, 5], [2, 3, 4, 5], PEER_SEED)
    manager.deallocate_cache(source)


def test_a_synchronizer_that_raises_counts_as_false(pair, caplog):
    prompt, decoder = pair
    manager = decoder.cache_manager
    source = manager.allocate_cache(ld.CacheDesc(4, SHAPE, F16))
    remote = prompt.call("alloc", num_tensors=4, shape=SHAPE, seed=PEER_SEED)
    sync = ComputeLayers(source, raise_at=0)
    config = ld.TransferConfig(31, remote["tensor_addrs"])
    with caplog.at_level(logging.ERROR, logger="llm_datadist"):
        task = manager.transfer_cache_async(source, sync, [config])
        assert task.synchronize() == S.LLM_PARAM_INVALID
    assert task.get_results() == [S.LLM_PARAM_INVALID]
    assert sync.layers == [0]
    assert any("synchronize_layer(0) raised" in record.getMessage() and record.exc_info for record in caplog.records)
    assert check(prompt, remote, [0, 1, 2, 3], [0, 1, 2, 3], PEER_SEED)  # nothing was sent
    manager.deallocate_cache(source)
    assert manager.audit().is_clean


def test_a_dropped_task_goes_on_and_is_forgotten_once_it_ended(pair):
    import gc
    import time

    from llm_datadist import transfer

    prompt, decoder = pair
    manager = decoder.cache_manager
    source = manager.allocate_cache(ld.CacheDesc(4, SHAPE, F16))
    remote = prompt.call("alloc", num_tensors=4, shape=SHAPE, seed=PEER_SEED)
    gate = threading.Event()
    sync = ComputeLayers(source, gate=gate)
    task = manager.transfer_cache_async(source, sync, [ld.TransferConfig(31, remote["tensor_addrs"])])
    del task
    gc.collect()
    gate.set()  # released after the task object is gone: the layers still go
    deadline = time.monotonic() + 10
    while not check(prompt, remote, [0, 1, 2, 3], [0, 1, 2, 3], SEED) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert check(prompt, remote, [0, 1, 2, 3], [0, 1, 2, 3], SEED)
    assert sync.layers == [0, 1]
    # The next start sweeps the ended orphan; a waited-for task is forgotten by its wait.
    later = manager.transfer_cache_async(source, ComputeLayers(source), [ld.TransferConfig(31, remote["tensor_addrs"])])
    assert later.synchronize() == S.LLM_SUCCESS
    while transfer._runs and time.monotonic() < deadline:  # the orphan's task may end just after the sweep
        transfer._sweep()
        time.sleep(0.01)
    assert transfer._runs == {}
    manager.deallocate_cache(source)
