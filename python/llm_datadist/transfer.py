"""The layer-wise asynchronous transfer API: ``LayerSynchronizer``, ``TransferConfig``,
``TransferWithCacheKeyConfig``, ``CacheTask`` (spec §5.8-§5.11) and the machinery behind
``CacheManager.transfer_cache_async`` (the C ABI's ``datadist_transfer_cache_async*``).

A task's synchronizer is called from a library thread; ctypes takes the GIL for that call only. The library
reaches it through a token (its ``user_data``) that this module holds until the task has ended.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import threading
from typing import Any, Dict, List, Optional, Union

from . import _native
from ._check import check_int_list, check_isinstance, check_uint32, check_uint64, raise_if_false
from .status import LLMStatusCode
from .types import BlocksCacheKey, CacheKeyByIdAndIndex

__all__ = ["LayerSynchronizer", "TransferConfig", "TransferWithCacheKeyConfig", "CacheTask"]

_logger = logging.getLogger("llm_datadist")


class LayerSynchronizer:
    """Subclass and implement ``synchronize_layer``: it returns once layer ``layer_index`` of the source may be sent
    (typically when the prefill computed it); False (or an exception) aborts the task. DataDist calls it from a
    thread of its own, once per layer that a config covers, in ascending order; ``timeout_in_millis`` is how long
    the task waits for the answer (the instance's ``sync_kv_timeout``)."""

    def synchronize_layer(self, layer_index: int, timeout_in_millis: Optional[int]) -> bool:
        raise NotImplementedError("LayerSynchronizer.synchronize_layer must be implemented by a subclass")


def _check_layer_range(name: str, value: Any) -> None:
    """``range`` (TypeError) with step 1 and ``0 <= start < stop`` (LLMException)."""
    check_isinstance(name, value, range)
    raise_if_false(value.step == 1, f"{name} = {value!r} must have step 1")
    raise_if_false(0 <= value.start < value.stop <= 0xFFFFFFFF, f"{name} = {value!r} needs 0 <= start < stop")


class TransferConfig:
    """To raw addresses of ``dst_cluster_id``: ``dst_addrs`` holds 2 addresses (K, V) per layer transferred."""

    def __init__(
        self, dst_cluster_id: int, dst_addrs: List[int], src_layer_range: Optional[range] = None,
        src_batch_index: int = 0,
    ) -> None:
        self.dst_cluster_id = dst_cluster_id
        self.dst_addrs = dst_addrs
        self.src_layer_range = src_layer_range
        self.src_batch_index = src_batch_index

    @property
    def dst_cluster_id(self) -> int:
        return self._dst_cluster_id

    @dst_cluster_id.setter
    def dst_cluster_id(self, value: int) -> None:
        check_uint64("dst_cluster_id", value)
        self._dst_cluster_id = value

    @property
    def dst_addrs(self) -> List[int]:
        return list(self._dst_addrs)

    @dst_addrs.setter
    def dst_addrs(self, value: List[int]) -> None:
        check_int_list("dst_addrs", value, check_uint64)
        self._dst_addrs = list(value)

    @property
    def src_layer_range(self) -> Optional[range]:
        return self._src_layer_range

    @src_layer_range.setter
    def src_layer_range(self, value: Optional[range]) -> None:
        if value is not None:
            _check_layer_range("src_layer_range", value)
        self._src_layer_range = value

    @property
    def src_batch_index(self) -> int:
        return self._src_batch_index

    @src_batch_index.setter
    def src_batch_index(self, value: int) -> None:
        check_uint32("src_batch_index", value)
        self._src_batch_index = value

    @property
    def dst_layer_range(self) -> None:
        return None

    def _to_c(self, keep: List[Any]) -> _native.TransferConfigC:
        addrs = _native.uint64_array(self._dst_addrs)
        keep.append(addrs)
        layers = self._src_layer_range
        return _native.TransferConfigC(
            self._dst_cluster_id, addrs, len(self._dst_addrs), layers is not None,
            layers.start if layers is not None else 0, layers.stop if layers is not None else 0,
            self._src_batch_index,
        )


class TransferWithCacheKeyConfig:
    """To a remote cache named by ``cache_key`` (remote-cache-accessible mode): source layer
    ``src_layer_range.start + i`` goes to destination layer ``dst_layer_range.start + i``."""

    def __init__(
        self, cache_key: Union[CacheKeyByIdAndIndex, BlocksCacheKey], src_layer_range: range,
        dst_layer_range: range, src_batch_index: int = 0,
    ) -> None:
        check_isinstance("cache_key", cache_key, (BlocksCacheKey, CacheKeyByIdAndIndex))
        _check_layer_range("src_layer_range", src_layer_range)
        _check_layer_range("dst_layer_range", dst_layer_range)
        check_uint32("src_batch_index", src_batch_index)
        self._cache_key = cache_key
        self._src_layer_range = src_layer_range
        self._dst_layer_range = dst_layer_range
        self._src_batch_index = src_batch_index
        self._check()

    def _check(self) -> None:
        raise_if_false(
            len(self._src_layer_range) == len(self._dst_layer_range),
            f"src_layer_range {self._src_layer_range!r} and dst_layer_range {self._dst_layer_range!r} differ in length",
        )
        raise_if_false(
            not (isinstance(self._cache_key, BlocksCacheKey) and self._src_batch_index != 0),
            f"src_batch_index = {self._src_batch_index} must be 0 with a BlocksCacheKey",
        )

    @property
    def cache_key(self) -> Union[CacheKeyByIdAndIndex, BlocksCacheKey]:
        return self._cache_key

    @cache_key.setter
    def cache_key(self, value: Union[CacheKeyByIdAndIndex, BlocksCacheKey]) -> None:
        check_isinstance("cache_key", value, (BlocksCacheKey, CacheKeyByIdAndIndex))
        self._cache_key = value

    @property
    def src_layer_range(self) -> range:
        return self._src_layer_range

    @src_layer_range.setter
    def src_layer_range(self, value: range) -> None:
        _check_layer_range("src_layer_range", value)
        self._src_layer_range = value

    @property
    def dst_layer_range(self) -> range:
        return self._dst_layer_range

    @dst_layer_range.setter
    def dst_layer_range(self, value: range) -> None:
        _check_layer_range("dst_layer_range", value)
        self._dst_layer_range = value

    @property
    def src_batch_index(self) -> int:
        return self._src_batch_index

    @src_batch_index.setter
    def src_batch_index(self, value: int) -> None:
        check_uint32("src_batch_index", value)
        self._src_batch_index = value

    @property
    def dst_cluster_id(self) -> int:
        return self._cache_key.cluster_id

    def _to_c(self, keep: List[Any]) -> _native.TransferKeyConfigC:
        self._check()  # the setters check one value each; the pair rules are checked when the task starts
        key = self._cache_key
        src, dst = self._src_layer_range, self._dst_layer_range
        if isinstance(key, BlocksCacheKey):
            kind, slot, blocks = _native.TRANSFER_TO_BLOCKS, _native.CacheKeyByIdC(), key._to_c()
        else:
            kind, slot, blocks = _native.TRANSFER_TO_SLOT, key._to_c(), _native.BlocksCacheKeyC()
        return _native.TransferKeyConfigC(
            kind, slot, blocks, src.start, src.stop, dst.start, dst.stop, self._src_batch_index
        )


def _status(code: int) -> LLMStatusCode:
    return _native.status_of(code)


def _timeout(timeout_in_millis: Optional[int]) -> int:
    check_uint32("timeout_in_millis", timeout_in_millis, allow_none=True)
    return -1 if timeout_in_millis is None else timeout_in_millis


class _Run:
    """One started task as this module tracks it: its native handle and, while the task may still ask for layers,
    its synchronizer (looked up by token from the library's threads)."""

    __slots__ = ("token", "handle", "synchronizer", "orphaned")

    def __init__(self, token: int, synchronizer: LayerSynchronizer) -> None:
        self.token = token
        self.handle = ctypes.c_void_p()
        self.synchronizer: Optional[LayerSynchronizer] = synchronizer
        self.orphaned = False


# Started tasks by token (the C ABI's user_data). A run leaves once its task has ended: the library asks for no
# layer after that, and a late lookup finds nothing and answers False. No release callback is passed, so a
# library thread calls into Python only to ask for a layer (a call arriving while the interpreter shuts down
# would end a library thread from inside Python).
_runs: Dict[int, _Run] = {}
_runs_lock = threading.Lock()
_tokens = itertools.count(1)


def _ended(run: _Run) -> bool:
    done = ctypes.c_bool()
    return _native.lib.datadist_cache_task_is_done(run.handle, ctypes.byref(done)) != 0 or done.value


def _settle(run: _Run) -> None:
    """Forgets ``run`` once its task ended (and frees its handle if its CacheTask is gone)."""
    with _runs_lock:
        _runs.pop(run.token, None)
    run.synchronizer = None
    if run.orphaned and run.handle.value:
        _native.lib.datadist_cache_task_release(run.handle)
        run.handle = ctypes.c_void_p()


def _sweep() -> None:
    """Settles the runs whose CacheTask is gone and whose task has ended."""
    with _runs_lock:
        orphans = [run for run in _runs.values() if run.orphaned]
    for run in orphans:
        if _ended(run):
            _settle(run)


class CacheTask:
    """A running or ended ``transfer_cache_async``. Results are kept per destination cluster, so two configs to
    one cluster share one result. Dropping the task object does not stop the task."""

    def __init__(self, run: _Run, config_count: int) -> None:
        self._run = run
        self._count = config_count

    def __del__(self) -> None:
        run = getattr(self, "_run", None)
        if run is None or _native is None or _native.lib is None:
            return
        try:
            run.orphaned = True
            if _ended(run):
                _settle(run)
        except Exception:  # interpreter shutdown
            pass

    def synchronize(self, timeout_in_millis: Optional[int] = None) -> LLMStatusCode:
        """Waits up to ``timeout_in_millis`` (None: until done): ``LLM_TIMEOUT`` if still running (it goes on),
        else the first result that is neither success nor missing, else ``LLM_SUCCESS``."""
        timeout = _timeout(timeout_in_millis)
        out = ctypes.c_uint32()
        _native.check(_native.lib.datadist_cache_task_synchronize(self._run.handle, timeout, ctypes.byref(out)))
        if _ended(self._run):
            _settle(self._run)
        return _status(out.value)

    def get_results(self, timeout_in_millis: Optional[int] = None) -> List[Optional[LLMStatusCode]]:
        """One result per transfer config, in order: ``LLM_TIMEOUT`` for all while still running, None for a
        config whose last layer was never transferred."""
        timeout = _timeout(timeout_in_millis)
        codes = (ctypes.c_uint32 * max(self._count, 1))()
        sent = (ctypes.c_bool * max(self._count, 1))()
        count = ctypes.c_size_t()
        _native.check(
            _native.lib.datadist_cache_task_results(
                self._run.handle, timeout, codes, sent, self._count, ctypes.byref(count)
            )
        )
        if _ended(self._run):
            _settle(self._run)
        return [_status(codes[i]) if sent[i] else None for i in range(min(count.value, self._count))]


def _synchronize(user_data: Optional[int], layer_index: int, timeout_ms: int) -> bool:
    with _runs_lock:
        run = _runs.get(user_data or 0)
    synchronizer = run.synchronizer if run is not None else None
    if synchronizer is None:
        return False
    try:
        return bool(synchronizer.synchronize_layer(layer_index, None if timeout_ms < 0 else timeout_ms))
    except BaseException:  # nothing may cross the C boundary: an exception aborts the task, as False does
        _logger.exception("LayerSynchronizer.synchronize_layer(%d) raised; the transfer task is aborted", layer_index)
        return False


_SYNC_CALLBACK = _native.SYNC_FN(_synchronize)
_NO_RELEASE = _native.RELEASE_FN()  # NULL


def start(
    manager_handle: ctypes.c_void_p, cache_handle: ctypes.c_void_p, synchronizer: LayerSynchronizer,
    configs: List[Any], by_key: bool, src_blocks: List[int], dst_blocks: List[int], dst_block_bytes: int,
) -> CacheTask:
    """Starts a task over the C ABI (the caller checked the arguments' types)."""
    _sweep()
    keep: List[Any] = []
    if by_key:
        array = (_native.TransferKeyConfigC * len(configs))(*[config._to_c(keep) for config in configs])
    else:
        array = (_native.TransferConfigC * len(configs))(*[config._to_c(keep) for config in configs])
    src = _native.int64_array(src_blocks)
    dst = _native.int64_array(dst_blocks)
    out = ctypes.c_void_p()
    run = _Run(next(_tokens), synchronizer)
    with _runs_lock:
        _runs[run.token] = run  # before the call: the library may ask for the first layer before it returns
    if by_key:
        status = _native.lib.datadist_transfer_cache_async_by_key(
            manager_handle, cache_handle, _SYNC_CALLBACK, _NO_RELEASE, run.token, array, len(configs), src,
            len(src_blocks), dst, len(dst_blocks), ctypes.byref(out),
        )
    else:
        status = _native.lib.datadist_transfer_cache_async(
            manager_handle, cache_handle, _SYNC_CALLBACK, _NO_RELEASE, run.token, array, len(configs), src,
            len(src_blocks), dst, len(dst_blocks), dst_block_bytes, ctypes.byref(out),
        )
    if status != 0:
        with _runs_lock:
            _runs.pop(run.token, None)
        _native.check(status)
    run.handle = ctypes.c_void_p(out.value)
    return CacheTask(run, len(configs))
