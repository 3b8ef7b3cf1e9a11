"""LLMDataDist: one DataDist instance (a prompt or decoder cluster)."""

from __future__ import annotations

import atexit
import ctypes
import json
import weakref
from typing import Any, Dict, List, Optional, Tuple, Union

from . import _native
from ._check import check_int32, check_isinstance, check_uint64, fail, raise_if_false
from .cache_manager import CacheManager
from .enums import ROLE_NAMES, LLMRole, RegisterMemStatus
from .status import LLMStatusCode
from .types import LLMClusterInfo

__all__ = ["LLMDataDist"]

_live: "weakref.WeakSet[LLMDataDist]" = weakref.WeakSet()


def _finalize_all() -> None:
    for engine in list(_live):
        try:
            engine.finalize()
        except Exception:  # at exit, only report
            pass


atexit.register(_finalize_all)


class LLMDataDist:
    """``LLMDataDist(role, cluster_id)``; ``init(options)`` before anything else, ``finalize()`` at the end.

    Unlike the reference, several instances may be initialised in one process (each has its own pools)."""

    def __init__(self, role: LLMRole, cluster_id: int) -> None:
        check_isinstance("role", role, LLMRole)
        check_uint64("cluster_id", cluster_id)
        self._role = role
        self._cluster_id = cluster_id
        self._handle = ctypes.c_void_p()
        _native.check(_native.lib.datadist_engine_create(role.value, cluster_id, ctypes.byref(self._handle)))
        self._cache_manager: Optional[CacheManager] = None
        self._options: Dict[str, str] = {}
        self._epoch = 0

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value and _native is not None and _native.lib is not None:
            try:
                _native.lib.datadist_engine_destroy(handle)
            except Exception:
                pass

    @property
    def cluster_id(self) -> int:
        return self._cluster_id

    def _require_init(self) -> None:
        if self._cache_manager is None:
            raise RuntimeError("llm datadist is not initialized")

    def init(self, options: Dict[str, str]) -> None:
        """Initialises from option strings (``LLMConfig.generate_options()``); returns at once if initialised."""
        if self._cache_manager is not None:
            return
        check_isinstance("options", options, dict)
        flow = options.get("ge.flowGraphMemMaxSize")
        if flow is not None:
            check_isinstance("ge.flowGraphMemMaxSize", flow, str)
            raise_if_false("," not in flow, f"ge.flowGraphMemMaxSize = {flow!r} must be one size")
            raise_if_false(flow.isdigit(), f"ge.flowGraphMemMaxSize = {flow!r} must be digits only")
        full = dict(options)
        full["llm.Role"] = ROLE_NAMES[self._role]
        if "llm.TransferBackend" in full:
            raise_if_false(
                full.get("llm.EnableCacheManager") == "1" or "llm.LocalCommRes" in full,
                "llm.TransferBackend needs llm.EnableCacheManager = \"1\"",
            )
            raise_if_false(
                full.setdefault("llm.EnableRemoteCacheAccessible", "1") == "1",
                "llm.TransferBackend needs llm.EnableRemoteCacheAccessible = \"1\"",
            )
            raise_if_false("llm.listenIpInfo" in full, "llm.TransferBackend needs llm.listenIpInfo")
        for key, value in full.items():
            check_isinstance("options key", key, str)
            check_isinstance(f"options[{key!r}]", value, str)
        keys, values, count = _native.string_arrays(full)
        _native.check(_native.lib.datadist_engine_init(self._handle, keys, values, count))
        manager = ctypes.c_void_p()
        _native.check(_native.lib.datadist_engine_cache_manager(self._handle, ctypes.byref(manager)))
        self._epoch += 1
        self._options = full
        self._cache_manager = CacheManager(self, manager.value, self._epoch, full)
        _live.add(self)

    def finalize(self) -> None:
        """Unlinks every cluster, frees every cache and pool; a no-op if not initialised."""
        if self._cache_manager is None:
            return
        # The old manager object (and its native handle) lives on with its callers and answers ENGINE_FINALIZED.
        self._cache_manager = None
        self._epoch += 1
        _native.check(_native.lib.datadist_engine_finalize(self._handle))
        _live.discard(self)

    @property
    def cache_manager(self) -> CacheManager:
        self._require_init()
        assert self._cache_manager is not None
        return self._cache_manager

    def listen_port(self) -> int:
        """The port this instance listens on (0 if none); useful with ``listen_ip_info`` port 0."""
        self._require_init()
        port = ctypes.c_uint16()
        _native.check(_native.lib.datadist_engine_listen_port(self._handle, ctypes.byref(port)))
        return port.value

    def metrics(self) -> Dict[str, Any]:
        """DataDist's own (the reference has none): the figures this instance reports through swift-metrics, as
        Swift's ``LLMDataDist.metrics()`` gives them. Keys: ``clusterID``; ``links``, one dict per peer cluster
        and transport (``peerClusterID``, ``transport``, ``transfersStarted``, ``transfersSucceeded``,
        ``transfersFailed`` by status name, ``bytes``, ``transfers`` and ``roundTrips`` as ``count`` and
        ``seconds``, ``linksEstablished``, ``linksClosed``, and as owner ``grantsServed`` and ``refusalsServed``
        by status name); ``pools`` (``pool``, ``pageSize``, ``pagesInUse``, ``pagesFree``,
        ``allocationFailures``); ``linksOpen``, ``pinnedByPeers``, ``keysBound``, ``auditOrphans``. Works before
        ``init`` and after ``finalize`` (then without pools)."""
        return json.loads(_native.engine_metrics(self._handle))

    def link_transport(self, cluster_id: int) -> str:
        """The data plane of the link to ``cluster_id`` (DataDist's own): ``"shm"`` (the peer's pool mapped on this
        host) or ``"ucx"``; ``LLMException(LLM_NOT_YET_LINK)`` without a link. Pick one with the options key
        ``llm.Transport`` (``auto``, ``shm``, ``ucx``) in the dict given to ``init``."""
        self._require_init()
        check_uint64("cluster_id", cluster_id)
        name = ctypes.c_char_p()
        _native.check(_native.lib.datadist_engine_link_transport(self._handle, cluster_id, ctypes.byref(name)))
        return (name.value or b"").decode()

    def _clusters(self, clusters: Union[List[LLMClusterInfo], Tuple[LLMClusterInfo, ...]], timeout: int):
        self._require_init()
        check_isinstance("clusters", clusters, (list, tuple))
        for index, cluster in enumerate(clusters):
            check_isinstance(f"clusters[{index}]", cluster, LLMClusterInfo)
        check_int32("timeout", timeout)
        raise_if_false(timeout > 0, f"timeout = {timeout} must be > 0")
        keep = []
        infos = (_native.ClusterInfoC * max(len(clusters), 1))()
        for index, cluster in enumerate(clusters):
            if cluster.remote_cluster_id is None:
                raise TypeError(f"clusters[{index}].remote_cluster_id must be int, got None")
            local, remote = cluster._c_parts()
            local_array, local_count = _native.ip_infos(local)
            remote_array, remote_count = _native.ip_infos(remote)
            keep += [local_array, remote_array]
            role = cluster.remote_role_type
            infos[index] = _native.ClusterInfoC(
                cluster.remote_cluster_id,
                role.value if isinstance(role, LLMRole) else 0,
                local_array,
                local_count,
                remote_array,
                remote_count,
            )
        return infos, keep

    def _statuses(self, overall: int, rets, written: ctypes.c_size_t) -> Tuple[LLMStatusCode, List[LLMStatusCode]]:
        return _native.status_of(overall), [_native.status_of(rets[i]) for i in range(written.value)]

    def link_clusters(
        self, clusters: Union[List[LLMClusterInfo], Tuple[LLMClusterInfo, ...]], timeout: int = 3000
    ) -> Tuple[LLMStatusCode, List[LLMStatusCode]]:
        """Links to each cluster (in parallel); returns the overall code and one code per cluster."""
        infos, _keep = self._clusters(clusters, timeout)
        if "llm.LocalCommRes" not in self._options:
            for index, cluster in enumerate(clusters):
                raise_if_false(
                    bool(cluster.local_ip_info_list),
                    f"clusters[{index}].local_ip_info_list is empty; it is required without local_comm_res",
                )
        rets = (ctypes.c_uint32 * max(len(clusters), 1))()
        written = ctypes.c_size_t()
        overall = _native.lib.datadist_engine_link_clusters(
            self._handle, infos, len(clusters), timeout, rets, ctypes.byref(written)
        )
        return self._statuses(overall, rets, written)

    def unlink_clusters(
        self,
        clusters: Union[List[LLMClusterInfo], Tuple[LLMClusterInfo, ...]],
        timeout: int = 3000,
        force: bool = False,
    ) -> Tuple[LLMStatusCode, List[LLMStatusCode]]:
        """Unlinks each cluster (``force``: only this side)."""
        check_isinstance("force", force, bool)
        infos, _keep = self._clusters(clusters, timeout)
        rets = (ctypes.c_uint32 * max(len(clusters), 1))()
        written = ctypes.c_size_t()
        overall = _native.lib.datadist_engine_unlink_clusters(
            self._handle, infos, len(clusters), timeout, force, rets, ctypes.byref(written)
        )
        return self._statuses(overall, rets, written)

    def switch_role(self, role: LLMRole, switch_options: Optional[Dict[str, str]] = None) -> None:
        """Changes the role; ``llm.listenIpInfo`` in ``switch_options`` starts or moves the listener, its
        absence stops it. ``LLM_EXIST_LINK`` while links exist."""
        self._require_init()
        check_isinstance("role", role, LLMRole)
        check_isinstance("switch_options", switch_options, dict, allow_none=True)
        listen = (switch_options or {}).get("llm.listenIpInfo")
        check_isinstance("switch_options['llm.listenIpInfo']", listen, str, allow_none=True)
        _native.check(
            _native.lib.datadist_engine_switch_role(
                self._handle, role.value, listen.encode() if listen is not None else None
            )
        )
        self._role = role

    # HCCL communicator-domain linking (link / unlink / query_register_mem_status) has no DataDist transport: the
    # arguments are checked as the reference checks them, then link is refused, and no communicator id exists.

    def link(self, comm_name: str, cluster_rank_info: Dict[int, int], rank_table: str) -> int:
        self._require_init()
        check_isinstance("comm_name", comm_name, str)
        check_isinstance("cluster_rank_info", cluster_rank_info, dict)
        for cluster, rank in cluster_rank_info.items():
            check_isinstance("cluster_rank_info key", cluster, int)
            check_isinstance(f"cluster_rank_info[{cluster}]", rank, int)
        check_isinstance("rank_table", rank_table, str)
        raise_if_false(0 < len(comm_name) < 128, f"comm_name length {len(comm_name)} must be in [1, 127]")
        raise_if_false(
            1 < len(cluster_rank_info) <= 4, f"cluster_rank_info has {len(cluster_rank_info)} entries; give 2 to 4"
        )
        ranks = list(cluster_rank_info.values())
        raise_if_false(ranks == sorted(ranks), f"cluster_rank_info ranks {ranks} must ascend")
        fail("link (HCCL communicator domains) is not available in DataDist", LLMStatusCode.LLM_FEATURE_NOT_ENABLED)

    def unlink(self, comm_id: int) -> None:
        self._require_init()
        check_uint64("comm_id", comm_id)
        fail(f"no communicator {comm_id} (link is not available in DataDist)", LLMStatusCode.LLM_NOT_YET_LINK)

    def query_register_mem_status(self, comm_id: int) -> RegisterMemStatus:
        self._require_init()
        check_uint64("comm_id", comm_id)
        fail(f"no communicator {comm_id} (link is not available in DataDist)", LLMStatusCode.LLM_NOT_YET_LINK)

    @property
    def kv_cache_manager(self) -> None:
        """Legacy (v1) only: refused in CacheManager mode."""
        self._require_init()
        fail("kv_cache_manager is legacy (v1); use cache_manager", LLMStatusCode.LLM_FEATURE_NOT_ENABLED)

    def check_link_status(self, remote_cluster_id: int) -> None:
        """Legacy (v1) only: refused in CacheManager mode."""
        self._require_init()
        fail("check_link_status is legacy (v1)", LLMStatusCode.LLM_FEATURE_NOT_ENABLED)
