"""Shared fixtures: a prompt peer in another process, and helpers to build and link instances."""

import json
import os
import subprocess
import sys
from typing import Any, Dict, Optional

import pytest

import llm_datadist as ld

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

POOL = json.dumps({"memory_size": 64 << 20})
HOST_POOL = json.dumps({"memory_size": 16 << 20})


class Peer:
    """A ``peer.py`` process: ``call(op, **arguments)`` returns its JSON reply."""

    def __init__(
        self, cluster_id: int, remote_accessible: bool = False, options: Optional[Dict[str, str]] = None,
        environment: Optional[Dict[str, str]] = None,
    ) -> None:
        environment = dict(
            os.environ, **(environment or {}), PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", "")
        )
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "peer.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )
        self.cluster_id = cluster_id
        reply = self.call("init", cluster_id=cluster_id, remote_accessible=remote_accessible, options=options or {})
        assert reply["ok"], reply
        self.port = reply["port"]

    def call(self, op: str, **arguments: Any) -> Dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(dict(arguments, op=op)) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"peer {self.cluster_id} exited with {self.process.poll()}"
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.call("finalize")
            finally:
                self.process.wait(timeout=30)


def cluster_info(cluster_id: int, port: int) -> ld.LLMClusterInfo:
    info = ld.LLMClusterInfo()
    info.remote_cluster_id = cluster_id
    info.append_local_ip_info("127.0.0.1", 0)
    info.append_remote_ip_info("127.0.0.1", port)
    return info


def make_engine(
    cluster_id: int, role: ld.LLMRole = ld.LLMRole.DECODER, options: Optional[Dict[str, str]] = None, **settings: Any
) -> ld.LLMDataDist:
    config = ld.LLMConfig()
    config.mem_pool_cfg = POOL
    config.host_mem_pool_cfg = HOST_POOL
    config.sync_kv_timeout = 5000
    for name, value in settings.items():
        setattr(config, name, value)
    engine = ld.LLMDataDist(role, cluster_id)
    engine.init(dict(config.generate_options(), **(options or {})))
    return engine


@pytest.fixture
def engine():
    """An initialised decoder with device and host pools, finalized (with a clean audit) afterwards."""
    instance = make_engine(900)
    yield instance
    if instance._cache_manager is not None:
        audit = instance.cache_manager.audit()
        assert audit.orphans == 0
        instance.finalize()


def settled(audit_once, seconds: float = 10.0):
    """The first audit with no peer pins left, polling up to ``seconds``: a pull posts its release without
    waiting, so the owner may still be settling the last one when the decoder returns."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        audit = audit_once()
        pinned = audit["pinned_by_peers"] if isinstance(audit, dict) else audit.pinned_by_peers
        if pinned == 0 or time.monotonic() > deadline:
            return audit
        time.sleep(0.01)
