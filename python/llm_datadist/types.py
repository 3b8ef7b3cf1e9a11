"""Value types: CacheDesc, Cache, the three key kinds, LLMClusterInfo, MemInfo."""

from __future__ import annotations

import ctypes
import socket
import struct
from typing import Any, List, Optional, Sequence, Tuple, Union

from . import _native
from ._check import (
    UINT64_MAX,
    check_int32,
    check_int64,
    check_int_list,
    check_isinstance,
    check_uint16,
    check_uint32,
    check_uint64,
    fail,
    raise_if_false,
)
from .enums import ELEMENT_SIZE, DataType, LLMRole, Memtype, Placement

__all__ = [
    "CacheDesc",
    "Cache",
    "CacheKey",
    "CacheKeyByIdAndIndex",
    "BlocksCacheKey",
    "LLMClusterInfo",
    "MemInfo",
]


class CacheDesc:
    """A cache's shape: ``num_tensors`` tensors of ``shape`` elements of ``data_type`` at ``placement``."""

    def __init__(
        self,
        num_tensors: int,
        shape: Union[List[int], Tuple[int, ...]],
        data_type: DataType,
        placement: Placement = Placement.DEVICE,
        batch_dim_index: int = 0,
        seq_len_dim_index: int = -1,
        kv_tensor_format: Optional[str] = None,
    ) -> None:
        check_uint32("num_tensors", num_tensors)
        check_int_list("shape", shape, check_int64)
        check_isinstance("data_type", data_type, DataType)
        check_isinstance("placement", placement, Placement)
        check_isinstance("batch_dim_index", batch_dim_index, int)
        raise_if_false(
            0 <= batch_dim_index < max(len(shape), 1),
            f"batch_dim_index = {batch_dim_index} must be in [0, {len(shape)})",
        )
        check_int32("seq_len_dim_index", seq_len_dim_index)
        raise_if_false(
            seq_len_dim_index == -1 or 0 <= seq_len_dim_index < len(shape),
            f"seq_len_dim_index = {seq_len_dim_index} must be -1 or in [0, {len(shape)})",
        )
        check_isinstance("kv_tensor_format", kv_tensor_format, str, allow_none=True)
        self._num_tensors = num_tensors
        self._shape = list(shape)
        self._data_type = data_type
        self._placement = placement
        self._batch_dim_index = batch_dim_index
        self._seq_len_dim_index = seq_len_dim_index
        self._kv_tensor_format = kv_tensor_format
        self._is_blocks = False

    @property
    def num_tensors(self) -> int:
        return self._num_tensors

    @property
    def shape(self) -> List[int]:
        return list(self._shape)

    @property
    def data_type(self) -> DataType:
        return self._data_type

    @property
    def placement(self) -> Placement:
        return self._placement

    @property
    def batch_dim(self) -> int:
        return self._batch_dim_index

    @property
    def batch_size(self) -> int:
        return self._shape[self._batch_dim_index] if self._shape else 0

    @property
    def seq_len_dim_index(self) -> int:
        return self._seq_len_dim_index

    @property
    def kv_tensor_format(self) -> Optional[str]:
        return self._kv_tensor_format

    @property
    def size(self) -> int:
        """Bytes of one tensor; LLMException if no dimension list gives a positive size."""
        total = ELEMENT_SIZE[self._data_type]
        raise_if_false(bool(self._shape), "shape is empty: the tensor size is not computable")
        for dim in self._shape:
            raise_if_false(dim > 0, f"shape {self._shape} has dimension {dim}: the tensor size is not computable")
            total *= dim
        raise_if_false(total < (1 << 63), f"shape {self._shape} overflows int64 bytes")
        return total

    def _to_c(self) -> Tuple[_native.CacheDescC, Any]:
        shape = (ctypes.c_int64 * len(self._shape))(*self._shape)
        desc = _native.CacheDescC(
            self._num_tensors, self._data_type.value, self._placement.value, len(self._shape), shape
        )
        return desc, shape

    def __repr__(self) -> str:
        return (
            f"CacheDesc(num_tensors={self._num_tensors}, shape={self._shape}, data_type={self._data_type}, "
            f"placement={self._placement})"
        )


class Cache:
    """A cache returned by a CacheManager (or ``Cache.create_cpu_cache``): ``cache_id``, ``cache_desc``,
    ``tensor_addrs`` (one address per tensor, emptied by deallocation) and ``is_blocks_cache``.

    ``as_numpy()`` / ``as_torch()`` give zero-copy views of its tensors (see ``llm_datadist.views``).
    """

    def __init__(self, handle: int, cache_desc: CacheDesc, manager: Any = None) -> None:
        self._handle = ctypes.c_void_p(handle)
        self._desc = cache_desc
        self._manager = manager
        cache_id = ctypes.c_int64()
        _native.check(_native.lib.datadist_cache_id(self._handle, ctypes.byref(cache_id)))
        is_blocks = ctypes.c_bool()
        _native.check(_native.lib.datadist_cache_is_blocks(self._handle, ctypes.byref(is_blocks)))
        addrs = (ctypes.c_uint64 * max(cache_desc.num_tensors, 1))()
        _native.check(_native.lib.datadist_cache_tensor_addrs(self._handle, addrs, cache_desc.num_tensors))
        self._cache_id = cache_id.value
        self._is_blocks = is_blocks.value
        self._tensor_addrs = list(addrs[: cache_desc.num_tensors])
        self._valid = True

    def __del__(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is not None and _native is not None and _native.lib is not None:
            try:
                _native.lib.datadist_cache_release(handle)
            except Exception:  # interpreter shutdown
                pass

    @property
    def cache_id(self) -> int:
        return self._cache_id

    @property
    def cache_desc(self) -> CacheDesc:
        return self._desc

    @property
    def tensor_addrs(self) -> List[int]:
        return list(self._tensor_addrs)

    @property
    def is_blocks_cache(self) -> bool:
        return self._is_blocks

    @classmethod
    def create_cpu_cache(cls, cache_desc: CacheDesc, addrs: List[int]) -> "Cache":
        """A host blocks cache over caller memory (id -1), only for ``swap_blocks``."""
        check_isinstance("cache_desc", cache_desc, CacheDesc)
        check_int_list("addrs", addrs, check_uint64)
        raise_if_false(cache_desc.placement == Placement.HOST, "create_cpu_cache needs placement HOST")
        raise_if_false(
            len(addrs) == cache_desc.num_tensors,
            f"len(addrs) = {len(addrs)} must equal num_tensors = {cache_desc.num_tensors}",
        )
        desc, _shape = cache_desc._to_c()
        out = ctypes.c_void_p()
        _native.check(
            _native.lib.datadist_create_cpu_cache(
                ctypes.byref(desc), _native.uint64_array(addrs), len(addrs), ctypes.byref(out)
            )
        )
        return cls(out.value, cache_desc)

    def as_numpy(self) -> List[Any]:
        """Each tensor as a NumPy array over the cache's memory (no copy); see ``llm_datadist.views``."""
        from .views import numpy_views

        return numpy_views(self)

    def as_torch(self) -> List[Any]:
        """Each tensor as a torch CPU tensor over the cache's memory (no copy); see ``llm_datadist.views``."""
        from .views import torch_views

        return torch_views(self)

    def _invalidate(self) -> None:
        self._tensor_addrs = []
        self._valid = False

    def __repr__(self) -> str:
        return f"Cache(cache_id={self._cache_id}, is_blocks_cache={self._is_blocks}, desc={self._desc})"


def _key_params(
    args: Tuple[Any, ...], kwargs: dict, names: Sequence[str], defaults: dict, kind: str
) -> dict:
    raise_if_false(len(args) + len(kwargs) <= len(names), f"{kind} takes at most {len(names)} params")
    values = dict(zip(names, args))
    for name, value in kwargs.items():
        key = "cluster_id" if name == "prompt_cluster_id" else name
        if key not in names:
            fail(f"Unsupported param: {name}")
        raise_if_false(key not in values, f"{kind} got {key} twice")
        values[key] = value
    raise_if_false("cluster_id" in values, f"{kind}: cluster_id is required")
    for name, value in defaults.items():
        values.setdefault(name, value)
    return values


class CacheKey:
    """A request's key: ``CacheKey(cluster_id, req_id, model_id=0, prefix_id=2**64-1)``."""

    __slots__ = ("_cluster_id", "_req_id", "_model_id", "_prefix_id", "_c", "_pullable")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = ("cluster_id", "req_id", "model_id", "prefix_id")
        if not kwargs and 2 <= len(args) <= 4 and all(type(a) is int and 0 <= a <= UINT64_MAX for a in args):
            values = dict(zip(names, args))  # the common call, already valid: skip the general checks
            values.setdefault("model_id", 0)
            values.setdefault("prefix_id", UINT64_MAX)
        else:
            values = _key_params(args, kwargs, names, {"model_id": 0, "prefix_id": UINT64_MAX}, "CacheKey")
            raise_if_false("req_id" in values, "CacheKey: req_id is required")
            for name in names:
                check_uint64(name, values[name])
        self._cluster_id = values["cluster_id"]
        self._req_id = values["req_id"]
        self._model_id = values["model_id"]
        self._prefix_id = values["prefix_id"]
        # Keys are immutable, so their C form and the pull rule (exactly one of req_id and prefix_id) are kept.
        self._c = _native.CacheKeyC(self._cluster_id, self._req_id, self._model_id, self._prefix_id)
        self._pullable = (self._req_id != UINT64_MAX) != (self._prefix_id != UINT64_MAX)

    @property
    def cluster_id(self) -> int:
        return self._cluster_id

    @property
    def prompt_cluster_id(self) -> int:
        return self._cluster_id

    @property
    def req_id(self) -> int:
        return self._req_id

    @property
    def model_id(self) -> int:
        return self._model_id

    @property
    def prefix_id(self) -> int:
        return self._prefix_id

    def _to_c(self) -> _native.CacheKeyC:
        return self._c

    def __repr__(self) -> str:
        return f"CacheKey(cluster_id={self._cluster_id}, req_id={self._req_id}, model_id={self._model_id})"


class CacheKeyByIdAndIndex:
    """Slot ``batch_index`` of cache ``cache_id`` on cluster ``cluster_id``."""

    def __init__(self, cluster_id: int, cache_id: int, batch_index: int = 0) -> None:
        check_uint64("cluster_id", cluster_id)
        check_int64("cache_id", cache_id)
        check_uint32("batch_index", batch_index)
        self._cluster_id = cluster_id
        self._cache_id = cache_id
        self._batch_index = batch_index

    @property
    def cluster_id(self) -> int:
        return self._cluster_id

    @property
    def cache_id(self) -> int:
        return self._cache_id

    @property
    def batch_index(self) -> int:
        return self._batch_index

    def _to_c(self) -> _native.CacheKeyByIdC:
        return _native.CacheKeyByIdC(self._cluster_id, self._cache_id, self._batch_index)


class BlocksCacheKey:
    """The blocks cache of ``model_id`` on cluster ``cluster_id``: ``BlocksCacheKey(cluster_id, model_id=0)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values = _key_params(args, kwargs, ("cluster_id", "model_id"), {"model_id": 0}, "BlocksCacheKey")
        check_uint64("cluster_id", values["cluster_id"])
        check_uint64("model_id", values["model_id"])
        self._cluster_id = values["cluster_id"]
        self._model_id = values["model_id"]

    @property
    def cluster_id(self) -> int:
        return self._cluster_id

    @property
    def prompt_cluster_id(self) -> int:
        return self._cluster_id

    @property
    def model_id(self) -> int:
        return self._model_id

    def _to_c(self) -> _native.BlocksCacheKeyC:
        return _native.BlocksCacheKeyC(self._cluster_id, self._model_id)


def _ip_to_int(ip: Union[str, int]) -> int:
    check_isinstance("ip", ip, (str, int))
    if isinstance(ip, int):
        check_uint64("ip", ip)
        return ip
    try:
        packed = socket.inet_aton(ip)
    except OSError as error:
        raise RuntimeError(f"ip {ip!r} is not an IPv4 address: {error}") from None
    return struct.unpack("<I", packed)[0]


def _int_to_ip(value: int) -> str:
    return socket.inet_ntoa(struct.pack("<I", value & 0xFFFFFFFF))


class LLMClusterInfo:
    """A peer to link with: ``remote_cluster_id``, ``remote_role_type``, and its ip infos."""

    def __init__(self) -> None:
        self._remote_cluster_id: Optional[int] = None
        self._remote_role_type: Optional[Union[LLMRole, int]] = None
        self._local: List[Tuple[int, int]] = []
        self._remote: List[Tuple[int, int]] = []

    @property
    def remote_cluster_id(self) -> Optional[int]:
        return self._remote_cluster_id

    @remote_cluster_id.setter
    def remote_cluster_id(self, value: int) -> None:
        check_uint64("remote_cluster_id", value)
        self._remote_cluster_id = value

    @property
    def remote_role_type(self) -> Optional[Union[LLMRole, int]]:
        return self._remote_role_type

    @remote_role_type.setter
    def remote_role_type(self, value: Union[LLMRole, int]) -> None:
        check_isinstance("remote_role_type", value, (LLMRole, int))
        self._remote_role_type = value

    def append_local_ip_info(self, ip: Union[str, int], port: int) -> None:
        address = _ip_to_int(ip)
        check_uint16("port", port)
        self._local.append((address, port))

    def append_remote_ip_info(self, ip: Union[str, int], port: int) -> None:
        address = _ip_to_int(ip)
        check_uint16("port", port)
        self._remote.append((address, port))

    @property
    def local_ip_info_list(self) -> List[Tuple[int, int]]:
        return list(self._local)

    @property
    def remote_ip_info_list(self) -> List[Tuple[int, int]]:
        return list(self._remote)

    def _c_parts(self) -> Tuple[List[Tuple[str, int]], List[Tuple[str, int]]]:
        return [(_int_to_ip(a), p) for a, p in self._local], [(_int_to_ip(a), p) for a, p in self._remote]


class MemInfo:
    """A registered memory range (for ``remap_registered_memory``)."""

    def __init__(self, mem_type: Memtype, addr: int, size: int) -> None:
        check_isinstance("mem_type", mem_type, Memtype)
        check_isinstance("addr", addr, int)
        check_isinstance("size", size, int)
        self._mem_type = mem_type
        self._addr = addr
        self._size = size

    @property
    def mem_type(self) -> Memtype:
        return self._mem_type

    @property
    def addr(self) -> int:
        return self._addr

    @property
    def size(self) -> int:
        return self._size


