"""CacheManager: the reference's v2 cache API (§6 of the API reference) over the C ABI."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

from . import _native, transfer
from ._check import (
    INT64_MAX,
    UINT64_MAX,
    check_int64,
    check_int_list,
    check_isinstance,
    check_range,
    check_uint32,
    check_uint64,
    fail,
    raise_if_false,
)
from .enums import Placement
from .status import LLMStatusCode
from .types import BlocksCacheKey, Cache, CacheDesc, CacheKey, CacheKeyByIdAndIndex, MemInfo

__all__ = ["CacheManager", "CacheAudit"]

_LAYER_KWARGS = ("src_layer_range", "dst_layer_range", "tensor_num_per_layer")
_pull_cache = _native.fast.datadist_pull_cache  # no argtypes: the fast path passes C values
_byref = ctypes.byref
_WHOLE_SLOT = ctypes.c_int64(-1)


@dataclass(frozen=True)
class CacheAudit:
    """A consistent snapshot of the manager's caches, keys and pages; ``orphans`` must always be 0."""

    live_caches: int
    bound_keys: int
    pages_in_use: int
    pages_free: int
    pinned_by_peers: int
    orphans: int
    expired_keys: int
    is_clean: bool


class CacheManager:
    """Obtained from ``LLMDataDist.cache_manager``. After ``finalize()`` every method raises
    ``LLMException(LLM_ENGINE_FINALIZED)``."""

    def __init__(self, engine: Any, handle: int, epoch: int, options: Dict[str, str]) -> None:
        self._engine = engine
        self._handle = ctypes.c_void_p(handle)
        self._epoch = epoch
        self._remote_accessible = options.get("llm.EnableRemoteCacheAccessible") == "1"
        self._pools = {
            Placement.DEVICE: bool(options.get("llm.MemPoolConfig")),
            Placement.HOST: bool(options.get("llm.HostMemPoolConfig")),
        }

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value and _native is not None and _native.lib is not None:
            try:
                _native.lib.datadist_cache_manager_release(handle)
            except Exception:
                pass

    def _live(self) -> ctypes.c_void_p:
        if self._engine._epoch != self._epoch:
            fail("this CacheManager's LLMDataDist was finalized", LLMStatusCode.LLM_ENGINE_FINALIZED)
        return self._handle

    def _require_pool(self, cache_desc: CacheDesc) -> None:
        placement = cache_desc.placement
        option = "mem_pool_cfg" if placement == Placement.DEVICE else "host_mem_pool_cfg"
        raise_if_false(self._pools[placement], f"a {placement.name} cache needs LLMConfig.{option}")

    def _cache(self, handle: int, desc: CacheDesc) -> Cache:
        return Cache(handle, desc, self)

    # -- contiguous caches -------------------------------------------------------------------------------

    def allocate_cache(
        self, cache_desc: CacheDesc, cache_keys: Union[List[CacheKey], Tuple[CacheKey, ...]] = ()
    ) -> Cache:
        """Allocates ``num_tensors`` tensors from the pool of ``cache_desc.placement``; ``cache_keys[i]`` binds
        batch slot ``i``."""
        handle = self._live()
        check_isinstance("cache_desc", cache_desc, CacheDesc)
        check_isinstance("cache_keys", cache_keys, (list, tuple))
        for index, key in enumerate(cache_keys):
            check_isinstance(f"cache_keys[{index}]", key, CacheKey)
        raise_if_false(cache_desc.num_tensors > 0, f"num_tensors = {cache_desc.num_tensors} must be > 0")
        self._require_pool(cache_desc)
        desc, _shape = cache_desc._to_c()
        keys = (_native.CacheKeyC * len(cache_keys))(*[key._to_c() for key in cache_keys]) if cache_keys else None
        out = ctypes.c_void_p()
        _native.check(
            _native.lib.datadist_allocate_cache(handle, ctypes.byref(desc), keys, len(cache_keys), ctypes.byref(out))
        )
        return self._cache(out.value, cache_desc)

    def deallocate_cache(self, cache: Cache) -> None:
        """Drops the cache's id reference; its memory goes when no key holds it. Twice is a no-op."""
        handle = self._live()
        check_isinstance("cache", cache, Cache)
        raise_if_false(not cache.is_blocks_cache, "deallocate_cache got a blocks cache; use deallocate_blocks_cache")
        _native.check(_native.lib.datadist_deallocate_cache(handle, cache._handle))
        cache._invalidate()

    def remove_cache_key(self, cache_key: CacheKey) -> None:
        """Unbinds ``cache_key`` (a no-op if absent or already pulled)."""
        handle = self._live()
        check_isinstance("cache_key", cache_key, CacheKey)
        key = cache_key._to_c()
        _native.check(_native.lib.datadist_remove_cache_key(handle, ctypes.byref(key)))

    def copy_cache(
        self,
        dst: Cache,
        src: Cache,
        dst_batch_index: int = 0,
        src_batch_index: int = 0,
        offset: int = 0,
        size: int = -1,
        req_id: Optional[int] = None,
    ) -> None:
        """Copies slot ``src_batch_index`` of ``src`` into slot ``dst_batch_index`` of ``dst`` (from ``offset``,
        ``size`` bytes, -1: the rest of the slot)."""
        handle = self._live()
        check_isinstance("dst", dst, Cache)
        check_isinstance("src", src, Cache)
        check_uint32("dst_batch_index", dst_batch_index)
        check_uint32("src_batch_index", src_batch_index)
        check_uint64("offset", offset)
        check_int64("size", size)
        check_uint64("req_id", req_id, allow_none=True)
        raise_if_false(not dst.is_blocks_cache and not src.is_blocks_cache, "copy_cache does not take blocks caches")
        raise_if_false(size == -1 or size > 0, f"size = {size} must be -1 or > 0")
        _native.check(
            _native.lib.datadist_copy_cache(
                handle, dst._handle, src._handle, dst_batch_index, src_batch_index, offset, size
            )
        )

    @staticmethod
    def check_cache_key(cache_key: CacheKey) -> None:
        """Exactly one of ``req_id`` and ``prefix_id`` must be set (LLMException otherwise)."""
        raise_if_false(
            (cache_key.req_id != UINT64_MAX) != (cache_key.prefix_id != UINT64_MAX),
            f"{cache_key!r} needs exactly one of req_id and prefix_id",
        )

    @staticmethod
    def _layer_kwargs(kwargs: Dict[str, Any]) -> Tuple[Optional[range], Optional[range], int]:
        for name in kwargs:
            if name not in _LAYER_KWARGS:
                fail(f"Unsupported param: {name}")
        src = kwargs.get("src_layer_range")
        dst = kwargs.get("dst_layer_range")
        per_layer = kwargs.get("tensor_num_per_layer", 2)
        return src, dst, per_layer

    @staticmethod
    def _check_layers(src: Optional[range], dst: Optional[range], per_layer: Any) -> None:
        check_uint32("tensor_num_per_layer", per_layer)
        raise_if_false(per_layer > 0, f"tensor_num_per_layer = {per_layer} must be > 0")
        if src is not None:
            check_range("src_layer_range", src)
        if dst is not None:
            check_range("dst_layer_range", dst)

    @staticmethod
    def _check_whole_layers(cache: Cache, per_layer: int) -> None:
        """A push moves whole layers: the cache's tensors must split into layers of ``per_layer``."""
        tensors = cache.cache_desc.num_tensors
        raise_if_false(
            tensors % per_layer == 0, f"num_tensors = {tensors} is not a multiple of tensor_num_per_layer = {per_layer}"
        )

    @staticmethod
    def _layers_for_pull(
        cache: Cache, src: Optional[range], dst: Optional[range], per_layer: int
    ) -> Optional[_native.LayerRangeC]:
        """Without ranges: NULL (whole slots). A source range alone lands on every local layer (so it must cover
        them all); a destination range alone reads the same layers of the source."""
        if src is None and dst is None:
            return None
        if dst is None:
            dst = range(0, cache.cache_desc.num_tensors // per_layer)
        if src is None:
            src = dst
        return _native.LayerRangeC(src.start, src.stop, dst.start, dst.stop, per_layer)

    @staticmethod
    def _layers_for_push(
        cache: Cache, src: Optional[range], dst: Optional[range], per_layer: int
    ) -> Optional[_native.LayerRangeC]:
        """A missing range is every layer of ``cache``; equal lengths are required."""
        if src is None and dst is None:
            return None
        every = range(0, cache.cache_desc.num_tensors // per_layer)
        src = every if src is None else src
        dst = every if dst is None else dst
        raise_if_false(len(src) == len(dst), f"src_layer_range {src!r} and dst_layer_range {dst!r} differ in length")
        return _native.LayerRangeC(src.start, src.stop, dst.start, dst.stop, per_layer)

    def pull_cache(
        self,
        cache_key: Union[CacheKey, CacheKeyByIdAndIndex],
        cache: Cache,
        batch_index: int = 0,
        size: int = -1,
        **kwargs: Any,
    ) -> None:
        """Pulls the remote slot ``cache_key`` names into slot ``batch_index`` of ``cache`` (``size`` -1: one
        local slot). kwargs: ``src_layer_range``, ``dst_layer_range`` (``range``), ``tensor_num_per_layer`` (2)."""
        # The common call, checked inline (same rules as below, without the general path's function calls).
        if (
            not kwargs
            and type(cache_key) is CacheKey
            and type(cache) is Cache
            and type(batch_index) is int
            and size == -1
            and type(size) is int
            and 0 <= batch_index <= 0x7FFFFFFF  # passed as a C int
            and cache_key._pullable
            and not cache._is_blocks
            and not self._remote_accessible
            and self._engine._epoch == self._epoch
        ):
            status = _pull_cache(self._handle, _byref(cache_key._c), cache._handle, batch_index, _WHOLE_SLOT, None)
            if status:
                _native.check(status)
            return
        handle = self._live()
        if self._remote_accessible:
            check_isinstance("cache_key", cache_key, CacheKeyByIdAndIndex)
        else:
            check_isinstance("cache_key", cache_key, (CacheKey, CacheKeyByIdAndIndex))
        check_isinstance("cache", cache, Cache)
        check_uint32("batch_index", batch_index)
        check_int64("size", size)
        raise_if_false(not cache.is_blocks_cache, "pull_cache needs a contiguous cache; use pull_blocks")
        raise_if_false(size == -1 or size > 0, f"size = {size} must be -1 or > 0")
        src, dst, per_layer = self._layer_kwargs(kwargs)
        self._check_layers(src, dst, per_layer)
        layers = self._layers_for_pull(cache, src, dst, per_layer)
        layers_ref = ctypes.byref(layers) if layers is not None else None
        if isinstance(cache_key, CacheKey):
            self.check_cache_key(cache_key)
            key = cache_key._to_c()
            status = _native.lib.datadist_pull_cache(handle, ctypes.byref(key), cache._handle, batch_index, size, layers_ref)
        else:
            key_by_id = cache_key._to_c()
            status = _native.lib.datadist_pull_cache_by_id(
                handle, ctypes.byref(key_by_id), cache._handle, batch_index, size, layers_ref
            )
        _native.check(status)

    def push_cache(
        self,
        dst_cache_key: CacheKeyByIdAndIndex,
        src_cache: Cache,
        src_batch_index: int = 0,
        src_layer_range: Optional[range] = None,
        dst_layer_range: Optional[range] = None,
        size: int = -1,
        tensor_num_per_layer: int = 2,
    ) -> None:
        """Writes slot ``src_batch_index`` of ``src_cache`` into the remote slot ``dst_cache_key`` (remote
        cache accessible mode only)."""
        handle = self._live()
        check_isinstance("dst_cache_key", dst_cache_key, CacheKeyByIdAndIndex)
        check_isinstance("src_cache", src_cache, Cache)
        check_uint32("src_batch_index", src_batch_index)
        raise_if_false(not src_cache.is_blocks_cache, "push_cache needs a contiguous cache; use push_blocks")
        self._check_layers(src_layer_range, dst_layer_range, tensor_num_per_layer)
        check_int64("size", size)
        raise_if_false(size == -1, f"size = {size}: push_cache only takes -1")
        self._check_whole_layers(src_cache, tensor_num_per_layer)
        layers = self._layers_for_push(src_cache, src_layer_range, dst_layer_range, tensor_num_per_layer)
        key = dst_cache_key._to_c()
        _native.check(
            _native.lib.datadist_push_cache(
                handle,
                ctypes.byref(key),
                src_cache._handle,
                src_batch_index,
                ctypes.byref(layers) if layers is not None else None,
                size,
            )
        )

    # -- blocks caches -----------------------------------------------------------------------------------

    def allocate_blocks_cache(self, cache_desc: CacheDesc, blocks_cache_key: Optional[BlocksCacheKey] = None) -> Cache:
        """Allocates a blocks (PagedAttention) cache of ``shape[0]`` blocks, optionally bound to a key."""
        handle = self._live()
        check_isinstance("cache_desc", cache_desc, CacheDesc)
        check_isinstance("blocks_cache_key", blocks_cache_key, BlocksCacheKey, allow_none=True)
        raise_if_false(cache_desc.num_tensors > 0, f"num_tensors = {cache_desc.num_tensors} must be > 0")
        self._require_pool(cache_desc)
        desc, _shape = cache_desc._to_c()
        key = blocks_cache_key._to_c() if blocks_cache_key is not None else None
        out = ctypes.c_void_p()
        _native.check(
            _native.lib.datadist_allocate_blocks_cache(
                handle, ctypes.byref(desc), ctypes.byref(key) if key is not None else None, ctypes.byref(out)
            )
        )
        cache_desc._is_blocks = True
        return self._cache(out.value, cache_desc)

    def deallocate_blocks_cache(self, cache: Cache) -> None:
        """Frees a blocks cache and its key at once."""
        handle = self._live()
        check_isinstance("cache", cache, Cache)
        raise_if_false(cache.is_blocks_cache, "deallocate_blocks_cache needs a blocks cache")
        _native.check(_native.lib.datadist_deallocate_blocks_cache(handle, cache._handle))
        cache._invalidate()

    def _blocks_transfer(
        self, name: str, key: BlocksCacheKey, cache: Cache, src_blocks: Any, dst_blocks: Any, layers: Any, push: bool
    ) -> None:
        handle = self._live()
        src = _native.int64_array(src_blocks)
        dst = _native.int64_array(dst_blocks)
        layers_ref = ctypes.byref(layers) if layers is not None else None
        function = _native.lib.datadist_push_blocks if push else _native.lib.datadist_pull_blocks
        c_key = key._to_c()
        _native.check(
            function(handle, ctypes.byref(c_key), cache._handle, src, len(src_blocks), dst, len(dst_blocks), layers_ref)
        )

    def pull_blocks(
        self,
        src_cache_key: Union[CacheKey, CacheKeyByIdAndIndex, BlocksCacheKey],
        dst_cache: Cache,
        src_blocks: Union[List[int], Tuple[int, ...]] = (),
        dst_blocks: Union[List[int], Tuple[int, ...]] = (),
        **kwargs: Any,
    ) -> None:
        """Pulls remote blocks ``src_blocks[i]`` into local blocks ``dst_blocks[i]`` of ``dst_cache``."""
        self._live()
        check_isinstance("src_cache_key", src_cache_key, (CacheKey, CacheKeyByIdAndIndex, BlocksCacheKey))
        check_isinstance("dst_cache", dst_cache, Cache)
        check_int_list("src_blocks", src_blocks, check_int64)
        check_int_list("dst_blocks", dst_blocks, check_int64)
        raise_if_false(dst_cache.is_blocks_cache, "pull_blocks needs a blocks dst_cache")
        raise_if_false(len(dst_blocks) > 0, "dst_blocks is empty")
        src, dst, per_layer = self._layer_kwargs(kwargs)
        self._check_layers(src, dst, per_layer)
        if not isinstance(src_cache_key, BlocksCacheKey):
            raise_if_false(len(src_blocks) == 0, "src_blocks must be empty when pulling from a contiguous cache")
            if isinstance(src_cache_key, CacheKey):
                self.check_cache_key(src_cache_key)
            fail(
                "pull_blocks from a contiguous remote cache (CacheKey / CacheKeyByIdAndIndex) is not available in "
                "DataDist; pull from a blocks cache with a BlocksCacheKey",
                LLMStatusCode.LLM_FEATURE_NOT_ENABLED,
            )
        raise_if_false(len(src_blocks) > 0, "src_blocks is empty")
        layers = self._layers_for_pull(dst_cache, src, dst, per_layer)
        self._blocks_transfer("pull_blocks", src_cache_key, dst_cache, src_blocks, dst_blocks, layers, push=False)

    def push_blocks(
        self,
        dst_cache_key: BlocksCacheKey,
        src_cache: Cache,
        src_blocks: Union[List[int], Tuple[int, ...]] = (),
        dst_blocks: Union[List[int], Tuple[int, ...]] = (),
        src_layer_range: Optional[range] = None,
        dst_layer_range: Optional[range] = None,
        tensor_num_per_layer: int = 2,
    ) -> None:
        """Writes local blocks ``src_blocks[i]`` into remote blocks ``dst_blocks[i]`` (remote cache accessible
        mode only)."""
        self._live()
        check_isinstance("dst_cache_key", dst_cache_key, BlocksCacheKey)
        check_isinstance("src_cache", src_cache, Cache)
        check_int_list("src_blocks", src_blocks, check_int64)
        check_int_list("dst_blocks", dst_blocks, check_int64)
        raise_if_false(src_cache.is_blocks_cache, "push_blocks needs a blocks src_cache")
        raise_if_false(len(dst_blocks) > 0, "dst_blocks is empty")
        self._check_layers(src_layer_range, dst_layer_range, tensor_num_per_layer)
        self._check_whole_layers(src_cache, tensor_num_per_layer)
        layers = self._layers_for_push(src_cache, src_layer_range, dst_layer_range, tensor_num_per_layer)
        self._blocks_transfer("push_blocks", dst_cache_key, src_cache, src_blocks, dst_blocks, layers, push=True)

    def copy_blocks(self, cache: Cache, copy_block_info: Dict[int, List[int]]) -> None:
        """Copies block ``src`` to each block of ``copy_block_info[src]`` within ``cache``."""
        handle = self._live()
        check_isinstance("cache", cache, Cache)
        raise_if_false(cache.is_blocks_cache, "copy_blocks needs a blocks cache")
        check_isinstance("copy_block_info", copy_block_info, dict)
        sources: List[int] = []
        destinations: List[int] = []
        for src, dsts in copy_block_info.items():
            check_int64("copy_block_info key", src)
            check_int_list(f"copy_block_info[{src}]", dsts, check_int64)
            sources += [src] * len(dsts)
            destinations += list(dsts)
        _native.check(
            _native.lib.datadist_copy_blocks(
                handle, cache._handle, _native.int64_array(sources), _native.int64_array(destinations), len(sources)
            )
        )

    def swap_blocks(self, src_cache: Cache, dst_cache: Cache, src_to_dst: Dict[int, int]) -> None:
        """Copies block ``s`` of ``src_cache`` to block ``src_to_dst[s]`` of ``dst_cache`` (host <-> device)."""
        handle = self._live()
        check_isinstance("src_cache", src_cache, Cache)
        check_isinstance("dst_cache", dst_cache, Cache)
        raise_if_false(src_cache.is_blocks_cache and dst_cache.is_blocks_cache, "swap_blocks needs two blocks caches")
        check_isinstance("src_to_dst", src_to_dst, dict)
        for src, dst in src_to_dst.items():
            check_int64("src_to_dst key", src)
            check_int64(f"src_to_dst[{src}]", dst)
        sources = list(src_to_dst.keys())
        destinations = list(src_to_dst.values())
        _native.check(
            _native.lib.datadist_swap_blocks(
                handle,
                src_cache._handle,
                dst_cache._handle,
                _native.int64_array(sources),
                _native.int64_array(destinations),
                len(sources),
            )
        )

    # -- caller memory -----------------------------------------------------------------------------------

    @staticmethod
    def _check_register(cache_desc: CacheDesc, addrs: Any, remote_accessible: Any) -> None:
        check_isinstance("cache_desc", cache_desc, CacheDesc)
        check_int_list("addrs", addrs, check_uint64)
        check_isinstance("remote_accessible", remote_accessible, bool, allow_none=True)
        raise_if_false(len(addrs) > 0, "addrs is empty")

    @staticmethod
    def _remote_flag(remote_accessible: Optional[bool]) -> int:
        return -1 if remote_accessible is None else int(remote_accessible)

    def register_cache(
        self,
        cache_desc: CacheDesc,
        addrs: List[int],
        cache_keys: Union[List[CacheKey], Tuple[CacheKey, ...]] = (),
        remote_accessible: Optional[bool] = None,
    ) -> Cache:
        """Registers caller memory (one address per tensor) as a cache; ``cache_keys[i]`` binds slot ``i``."""
        handle = self._live()
        self._check_register(cache_desc, addrs, remote_accessible)
        check_isinstance("cache_keys", cache_keys, (list, tuple))
        for index, key in enumerate(cache_keys):
            check_isinstance(f"cache_keys[{index}]", key, CacheKey)
        raise_if_false(
            len(addrs) == cache_desc.num_tensors,
            f"len(addrs) = {len(addrs)} must equal num_tensors = {cache_desc.num_tensors}",
        )
        raise_if_false(all(addr != 0 for addr in addrs), "addrs contains 0")
        desc, _shape = cache_desc._to_c()
        keys = (_native.CacheKeyC * len(cache_keys))(*[key._to_c() for key in cache_keys]) if cache_keys else None
        out = ctypes.c_void_p()
        _native.check(
            _native.lib.datadist_register_cache(
                handle,
                ctypes.byref(desc),
                _native.uint64_array(addrs),
                len(addrs),
                keys,
                len(cache_keys),
                self._remote_flag(remote_accessible),
                ctypes.byref(out),
            )
        )
        return self._cache(out.value, cache_desc)

    def register_blocks_cache(
        self,
        cache_desc: CacheDesc,
        addrs: List[int],
        blocks_cache_key: Optional[BlocksCacheKey] = None,
        remote_accessible: Optional[bool] = None,
    ) -> Cache:
        """Registers caller memory as a blocks cache, optionally bound to ``blocks_cache_key``."""
        handle = self._live()
        self._check_register(cache_desc, addrs, remote_accessible)
        check_isinstance("blocks_cache_key", blocks_cache_key, BlocksCacheKey, allow_none=True)
        desc, _shape = cache_desc._to_c()
        key = blocks_cache_key._to_c() if blocks_cache_key is not None else None
        out = ctypes.c_void_p()
        _native.check(
            _native.lib.datadist_register_blocks_cache(
                handle,
                ctypes.byref(desc),
                _native.uint64_array(addrs),
                len(addrs),
                ctypes.byref(key) if key is not None else None,
                self._remote_flag(remote_accessible),
                ctypes.byref(out),
            )
        )
        cache_desc._is_blocks = True
        return self._cache(out.value, cache_desc)

    def unregister_cache(self, cache_id: int) -> None:
        """Drops cache ``cache_id`` and its keys (unknown ids: success)."""
        handle = self._live()
        check_int64("cache_id", cache_id)
        _native.check(_native.lib.datadist_unregister_cache(handle, cache_id))

    def remap_registered_memory(self, mem_infos: Union[MemInfo, List[MemInfo]]) -> None:
        """Reserved in the reference; not available in DataDist."""
        self._live()
        fail("remap_registered_memory is not available in DataDist", LLMStatusCode.LLM_FEATURE_NOT_ENABLED)

    def transfer_cache_async(
        self,
        src_cache: Cache,
        layer_synchronizer: "transfer.LayerSynchronizer",
        transfer_configs: Union[
            List["transfer.TransferConfig"], Tuple["transfer.TransferConfig", ...],
            List["transfer.TransferWithCacheKeyConfig"], Tuple["transfer.TransferWithCacheKeyConfig", ...],
        ],
        src_block_indices: Optional[List[int]] = None,
        dst_block_indices: Optional[List[int]] = None,
        dst_block_memory_size: Optional[int] = None,
    ) -> "transfer.CacheTask":
        """Pushes ``src_cache`` layer by layer as ``layer_synchronizer`` releases each layer, in the background, to
        every config's destination (raw addresses: ``TransferConfig``; remote caches by key:
        ``TransferWithCacheKeyConfig``). Block lists: ``src_block_indices[i]`` → ``dst_block_indices[i]`` for a
        blocks source; for a contiguous source, ``dst_block_indices`` with ``dst_block_memory_size`` cut the slot
        into blocks. Needs ``enable_remote_cache_accessible`` on both sides."""
        handle = self._live()
        check_isinstance("src_cache", src_cache, Cache)
        check_isinstance("layer_synchronizer", layer_synchronizer, transfer.LayerSynchronizer)
        check_isinstance("transfer_configs", transfer_configs, (list, tuple))
        raise_if_false(
            src_cache.cache_desc.placement != Placement.HOST,
            f"src_cache {src_cache.cache_id} is a HOST cache; transfer_cache_async sends from device caches",
        )
        for name, indices in (("src_block_indices", src_block_indices), ("dst_block_indices", dst_block_indices)):
            if indices is not None:
                check_int_list(name, indices, check_uint64)
                for index, value in enumerate(indices):
                    raise_if_false(value <= INT64_MAX, f"{name}[{index}] = {value} exceeds int64")
        check_uint64("dst_block_memory_size", dst_block_memory_size, allow_none=True)
        src_blocks = list(src_block_indices or ())
        dst_blocks = list(dst_block_indices or ())
        block_bytes = dst_block_memory_size or 0
        if src_blocks:
            raise_if_false(bool(dst_blocks), "src_block_indices need dst_block_indices: blocks → cache is unsupported")
            raise_if_false(
                len(src_blocks) == len(dst_blocks),
                f"len(src_block_indices) = {len(src_blocks)} differs from len(dst_block_indices) = {len(dst_blocks)}",
            )
        if not src_cache.is_blocks_cache and dst_blocks:
            raise_if_false(block_bytes > 0, "dst_block_indices to a contiguous src_cache need dst_block_memory_size")
        raise_if_false(
            block_bytes == 0 or bool(dst_blocks), f"dst_block_memory_size = {block_bytes} needs dst_block_indices"
        )
        raise_if_false(
            src_cache.cache_desc.num_tensors % 2 == 0,
            f"num_tensors = {src_cache.cache_desc.num_tensors} of src_cache must be even (2 tensors per layer)",
        )
        # The reference takes key configs only in remote-cache-accessible mode, raw addresses otherwise; DataDist
        # needs that mode for both (a push writes the peer's pool), so there either kind goes, one kind per call.
        allowed: Any = (
            (transfer.TransferConfig, transfer.TransferWithCacheKeyConfig)
            if self._remote_accessible
            else transfer.TransferConfig
        )
        by_key = bool(transfer_configs) and isinstance(transfer_configs[0], transfer.TransferWithCacheKeyConfig)
        for index, config in enumerate(transfer_configs):
            check_isinstance(f"transfer_configs[{index}]", config, allowed)
            if isinstance(config, transfer.TransferWithCacheKeyConfig) != by_key:
                raise TypeError(f"transfer_configs[{index}] is a {type(config).__name__}; one call takes one kind")
        raise_if_false(len(transfer_configs) > 0, "transfer_configs is empty")
        layers = src_cache.cache_desc.num_tensors // 2
        for index, config in enumerate(transfer_configs):
            name = f"transfer_configs[{index}]"
            source = config.src_layer_range if config.src_layer_range is not None else range(0, layers)
            raise_if_false(source.stop <= layers, f"{name}.src_layer_range {source!r} exceeds the {layers} layers")
            if isinstance(config, transfer.TransferConfig):
                raise_if_false(
                    len(config.dst_addrs) == 2 * len(source),
                    f"{name}.dst_addrs has {len(config.dst_addrs)} addresses; {len(source)} layers need "
                    f"{2 * len(source)}",
                )
            if src_blocks:
                raise_if_false(config.src_batch_index == 0, f"{name}.src_batch_index must be 0 with src blocks")
        return transfer.start(
            handle, src_cache._handle, layer_synchronizer, list(transfer_configs), by_key, src_blocks, dst_blocks,
            block_bytes,
        )

    # -- diagnostics -------------------------------------------------------------------------------------

    def audit(self) -> CacheAudit:
        """DataDist's consistency snapshot (not in the reference)."""
        handle = self._live()
        raw = _native.AuditC()
        _native.check(_native.lib.datadist_audit_cache_manager(handle, ctypes.byref(raw)))
        return CacheAudit(
            raw.live_caches,
            raw.bound_keys,
            raw.pages_in_use,
            raw.pages_free,
            raw.pinned_by_peers,
            raw.orphans,
            raw.expired_keys,
            bool(raw.is_clean),
        )
