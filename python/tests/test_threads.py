"""Threads: the GIL is released during blocking calls, and 8 Python threads drive one pair of engines at once."""

import socket
import threading
import time

import numpy as np

import llm_datadist as ld
from conftest import cluster_info, make_engine, settled
from patterns import pattern, tensor_bytes

S = ld.LLMStatusCode


def test_a_blocking_link_releases_the_gil(engine):
    # A listener that accepts and never answers the hello: link_clusters waits in the C call for up to 20 s.
    # Only if the call released the GIL can this thread accept and close the connection meanwhile, which makes
    # the link fail at once; with the GIL held, the link would end only at its 20 s timeout.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    result = {}

    def link() -> None:
        began = time.monotonic()
        result["ret"] = engine.link_clusters([cluster_info(99, port)], timeout=20000)
        result["seconds"] = time.monotonic() - began

    linker = threading.Thread(target=link)
    linker.start()
    connection, _ = server.accept()
    connection.close()
    server.close()
    linker.join(timeout=60)
    assert result["ret"][0] == S.LLM_LINK_FAILED
    assert result["seconds"] < 10, f"the link ended after {result['seconds']:.1f} s: the GIL was held"


def test_eight_threads_pull_allocate_and_copy_at_once():
    prompt = make_engine(71, ld.LLMRole.PROMPT, listen_ip_info="127.0.0.1:0")
    decoder = make_engine(72)
    threads, rounds, shape = 8, 12, [1, 16, 64]
    source_manager = prompt.cache_manager
    sources = []
    for thread in range(threads):
        for round_ in range(rounds):
            cache = source_manager.allocate_cache(
                ld.CacheDesc(2, shape, ld.DataType.DT_FLOAT16), [ld.CacheKey(71, thread * 1000 + round_)]
            )
            for index, view in enumerate(cache.as_numpy()):
                raw = tensor_bytes(view)
                raw[:] = pattern(thread * 1000 + round_, index, raw.size)
            sources.append(cache)
    assert decoder.link_clusters([cluster_info(71, prompt.listen_port())])[0] == S.LLM_SUCCESS
    manager = decoder.cache_manager
    start = threading.Barrier(threads)
    failures = []

    def work(thread: int) -> None:
        try:
            start.wait()
            for round_ in range(rounds):
                destination = manager.allocate_cache(ld.CacheDesc(2, shape, ld.DataType.DT_FLOAT16))
                seed = thread * 1000 + round_
                manager.pull_cache(ld.CacheKey(71, seed), destination)
                copy = manager.allocate_cache(ld.CacheDesc(2, shape, ld.DataType.DT_FLOAT16))
                manager.copy_cache(copy, destination)
                for index, view in enumerate(copy.as_numpy()):
                    raw = tensor_bytes(view)
                    if not np.array_equal(raw, pattern(seed, index, raw.size)):
                        failures.append(f"thread {thread} round {round_} tensor {index}")
                manager.deallocate_cache(copy)
                manager.deallocate_cache(destination)
        except Exception as error:  # reported below
            failures.append(f"thread {thread}: {error!r}")

    workers = [threading.Thread(target=work, args=(thread,)) for thread in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    try:
        assert not failures, failures
        assert manager.audit().is_clean
        for cache in sources:
            source_manager.deallocate_cache(cache)
        assert settled(source_manager.audit).is_clean  # every key was consumed exactly once
    finally:
        decoder.finalize()
        prompt.finalize()
