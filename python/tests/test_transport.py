"""The transport option from Python: DataDist's own key ``llm.Transport`` goes in the ``init`` options (the
reference's LLMConfig has no such property). Two Python processes link over UCX (TCP only) and pull."""

import numpy as np
import pytest

import llm_datadist as ld
from conftest import Peer, cluster_info, make_engine, settled
from patterns import pattern, tensor_bytes

S = ld.LLMStatusCode
SHAPE = [2, 64, 128]  # batch 2, 16 KiB per slot of float16


def test_two_processes_link_over_ucx_on_tcp_and_pull_every_byte(monkeypatch):
    monkeypatch.setenv("UCX_TLS", "tcp")  # read by UCX in this process when the engine makes its UCX context
    ucx = {"llm.Transport": "ucx"}
    prompt = Peer(51, options=ucx, environment={"UCX_TLS": "tcp"})
    decoder = make_engine(52, options=ucx)
    try:
        info = cluster_info(51, prompt.port)
        assert decoder.link_clusters([info], timeout=10000) == (S.LLM_SUCCESS, [S.LLM_SUCCESS])
        assert decoder.link_transport(51) == "ucx"
        prompt.call("alloc", num_tensors=4, shape=SHAPE, keys=[[51, 1], [51, 2]], seed=12)
        manager = decoder.cache_manager
        destination = manager.allocate_cache(ld.CacheDesc(4, SHAPE, ld.DataType.DT_FLOAT16))
        views = destination.as_numpy()
        for view in views:
            tensor_bytes(view)[:] = 0
        manager.pull_cache(ld.CacheKey(51, 2), destination, batch_index=0)
        manager.pull_cache(ld.CacheKey(51, 1), destination, batch_index=1)
        slot = tensor_bytes(views[0]).size // 2
        for tensor, view in enumerate(views):
            source = pattern(12, tensor, 2 * slot)
            assert np.array_equal(tensor_bytes(view[0]), source[slot:]), f"tensor {tensor} slot 0"
            assert np.array_equal(tensor_bytes(view[1]), source[:slot]), f"tensor {tensor} slot 1"
        with pytest.raises(ld.LLMException) as again:
            manager.pull_cache(ld.CacheKey(51, 2), destination)
        assert again.value.status_code == S.LLM_KV_CACHE_NOT_EXIST
        assert decoder.unlink_clusters([info], timeout=5000) == (S.LLM_SUCCESS, [S.LLM_SUCCESS])
        with pytest.raises(ld.LLMException) as unlinked:
            decoder.link_transport(51)
        assert unlinked.value.status_code == S.LLM_NOT_YET_LINK
        manager.deallocate_cache(destination)
        assert manager.audit().is_clean
        assert prompt.call("dealloc_all")["ok"]
        audit = settled(lambda: prompt.call("audit"))
        assert audit["is_clean"] and audit["orphans"] == 0, audit
    finally:
        prompt.close()
        decoder.finalize()


def test_the_transport_key_is_checked_and_shm_is_the_same_host_default():
    engine = ld.LLMDataDist(ld.LLMRole.DECODER, 53)
    with pytest.raises(ld.LLMException) as bad:
        engine.init({"llm.Transport": "tcp"})
    assert bad.value.status_code == S.LLM_PARAM_INVALID
    assert "llm.Transport" in str(bad.value)
    prompt = Peer(54)
    decoder = make_engine(55)
    try:
        assert decoder.link_clusters([cluster_info(54, prompt.port)])[0] == S.LLM_SUCCESS
        assert decoder.link_transport(54) == "shm"
        with pytest.raises(ValueError, match="cluster_id"):
            decoder.link_transport(-1)
        assert decoder.unlink_clusters([cluster_info(54, prompt.port)])[0] == S.LLM_SUCCESS
    finally:
        prompt.close()
        decoder.finalize()
