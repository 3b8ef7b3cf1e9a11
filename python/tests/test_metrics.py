"""``LLMDataDist.metrics()``: the figures the Swift library reports through swift-metrics, as a dict, after a known
sequence of pulls from a prompt in another process."""

import llm_datadist as ld
from conftest import Peer, cluster_info, make_engine, settled

S = ld.LLMStatusCode
SHAPE = [1, 8, 64]  # 1 KiB per tensor of float16


def test_metrics_count_two_pulls_and_one_refusal_exactly():
    prompt = Peer(61)
    decoder = make_engine(62)
    try:
        before = decoder.metrics()
        assert before["clusterID"] == 62 and before["links"] == [] and before["auditOrphans"] == 0
        assert [pool["pool"] for pool in before["pools"]] == ["device", "host"]

        info = cluster_info(61, prompt.port)
        assert decoder.link_clusters([info], timeout=5000) == (S.LLM_SUCCESS, [S.LLM_SUCCESS])
        prompt.call("alloc", num_tensors=2, shape=SHAPE, keys=[[61, 1]], seed=3)
        prompt.call("alloc", num_tensors=2, shape=SHAPE, keys=[[61, 2]], seed=4)
        manager = decoder.cache_manager
        destination = manager.allocate_cache(ld.CacheDesc(2, SHAPE, ld.DataType.DT_FLOAT16))
        manager.pull_cache(ld.CacheKey(61, 1), destination)
        manager.pull_cache(ld.CacheKey(61, 2), destination)
        try:
            manager.pull_cache(ld.CacheKey(61, 99), destination)
            raise AssertionError("a pull of an unbound key succeeded")
        except ld.LLMException as refused:
            assert refused.status_code == S.LLM_KV_CACHE_NOT_EXIST

        figures = decoder.metrics()
        (link,) = figures["links"]
        assert link["peerClusterID"] == 61 and link["transport"] == "shm"
        assert link["transfersStarted"] == 3 and link["transfersSucceeded"] == 2
        assert link["transfersFailed"] == {"LLM_KV_CACHE_NOT_EXIST": 1}
        assert link["bytes"] == 2 * 2 * 8 * 64 * 2
        assert link["transfers"]["count"] == 3 and link["roundTrips"]["count"] == 3
        assert link["transfers"]["seconds"] > 0 and link["linksEstablished"] == 1 and link["linksClosed"] == 0
        assert link["grantsServed"] == 0 and link["refusalsServed"] == {}, "the decoder served nothing"
        assert figures["linksOpen"] == 1 and figures["auditOrphans"] == 0
        device = next(pool for pool in figures["pools"] if pool["pool"] == "device")
        assert device["pagesInUse"] > 0 and device["allocationFailures"] == 0

        manager.deallocate_cache(destination)
        assert decoder.unlink_clusters([info], timeout=5000) == (S.LLM_SUCCESS, [S.LLM_SUCCESS])
        assert settled(lambda: prompt.call("audit"))["orphans"] == 0
        after = decoder.metrics()
        assert after["links"][0]["linksClosed"] == 1 and after["linksOpen"] == 0
    finally:
        prompt.close()
        decoder.finalize()
    assert decoder.metrics()["pools"] == []
