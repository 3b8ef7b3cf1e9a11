"""The C ABI (``libdatadist_c.so``, ``datadist.h``) through ctypes: its structs, its prototypes, and the one place
where a status code becomes an ``LLMException``.

ctypes releases the GIL for every call into a ``CDLL``, so blocking calls (link, pull, push) let other Python
threads run.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import POINTER, Structure, c_bool, c_char_p, c_int32, c_int64, c_size_t, c_uint16, c_uint32
from ctypes import c_uint64, c_void_p
from typing import Dict, List, Optional, Sequence, Tuple

from .status import LLMException, LLMStatusCode, code_2_status

__all__ = ["lib", "check", "option_keys", "library_path"]


class CacheDescC(Structure):
    _fields_ = [
        ("num_tensors", c_uint32),
        ("data_type", c_int32),
        ("placement", c_uint32),
        ("rank", c_uint32),
        ("shape", POINTER(c_int64)),
    ]


class CacheKeyC(Structure):
    _fields_ = [("cluster_id", c_uint64), ("req_id", c_uint64), ("model_id", c_uint64), ("prefix_id", c_uint64)]


class CacheKeyByIdC(Structure):
    _fields_ = [("cluster_id", c_uint64), ("cache_id", c_int64), ("batch_index", c_uint32)]


class BlocksCacheKeyC(Structure):
    _fields_ = [("cluster_id", c_uint64), ("model_id", c_uint64)]


class LayerRangeC(Structure):
    _fields_ = [
        ("src_start", c_int64),
        ("src_stop", c_int64),
        ("dst_start", c_int64),
        ("dst_stop", c_int64),
        ("tensors_per_layer", c_int64),
    ]


class IpInfoC(Structure):
    _fields_ = [("ip", c_char_p), ("port", c_uint16)]


class ClusterInfoC(Structure):
    _fields_ = [
        ("remote_cluster_id", c_uint64),
        ("remote_role_type", c_int32),
        ("local_ip_infos", POINTER(IpInfoC)),
        ("local_ip_info_count", c_size_t),
        ("remote_ip_infos", POINTER(IpInfoC)),
        ("remote_ip_info_count", c_size_t),
    ]


class TransferConfigC(Structure):
    _fields_ = [
        ("dst_cluster_id", c_uint64),
        ("dst_addrs", POINTER(c_uint64)),
        ("dst_addr_count", c_size_t),
        ("has_src_layers", c_bool),
        ("src_layer_start", c_int64),
        ("src_layer_stop", c_int64),
        ("src_batch_index", c_uint32),
    ]


TRANSFER_TO_SLOT = 0
TRANSFER_TO_BLOCKS = 1


class TransferKeyConfigC(Structure):
    _fields_ = [
        ("kind", c_int32),
        ("slot", CacheKeyByIdC),
        ("blocks", BlocksCacheKeyC),
        ("src_layer_start", c_int64),
        ("src_layer_stop", c_int64),
        ("dst_layer_start", c_int64),
        ("dst_layer_stop", c_int64),
        ("src_batch_index", c_uint32),
    ]


# datadist_layer_sync_fn and datadist_release_fn: ctypes takes the GIL for each call of a Python callback made
# from a library thread, and only for that call.
SYNC_FN = ctypes.CFUNCTYPE(c_bool, c_void_p, c_uint32, c_int64)
RELEASE_FN = ctypes.CFUNCTYPE(None, c_void_p)


class AuditC(Structure):
    _fields_ = [
        ("live_caches", c_int64),
        ("bound_keys", c_int64),
        ("pages_in_use", c_int64),
        ("pages_free", c_int64),
        ("pinned_by_peers", c_int64),
        ("orphans", c_int64),
        ("expired_keys", c_int64),
        ("is_clean", c_bool),
    ]


def library_path() -> str:
    """``DATADIST_C_LIBRARY`` if set, else the library shipped inside this package."""
    override = os.environ.get("DATADIST_C_LIBRARY")
    if override:
        return override
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lib", "libdatadist_c.so")


def _load() -> ctypes.CDLL:
    path = library_path()
    if not os.path.exists(path):
        raise ImportError(
            f"llm_datadist: {path} is missing; install the package with `pip install ./python` "
            "(it builds the Swift library) or run `make python`"
        )
    return ctypes.CDLL(path)


lib = _load()

_P = c_void_p
_PP = POINTER(c_void_p)
_STR_ARRAY = POINTER(c_char_p)
_I64_ARRAY = POINTER(c_int64)
_U64_ARRAY = POINTER(c_uint64)
_U32_ARRAY = POINTER(c_uint32)

_PROTOTYPES = {
    "datadist_last_error": (c_char_p, []),
    "datadist_status_name": (c_char_p, [c_uint32]),
    "datadist_option_keys": (c_char_p, []),
    "datadist_check_options": (c_uint32, [_STR_ARRAY, _STR_ARRAY, c_size_t]),
    "datadist_backend": (c_uint32, [POINTER(c_void_p)]),
    "datadist_free_string": (None, [c_void_p]),
    "datadist_engine_create": (c_uint32, [c_int32, c_uint64, _PP]),
    "datadist_engine_destroy": (c_uint32, [_P]),
    "datadist_engine_init": (c_uint32, [_P, _STR_ARRAY, _STR_ARRAY, c_size_t]),
    "datadist_engine_finalize": (c_uint32, [_P]),
    "datadist_engine_is_initialized": (c_uint32, [_P, POINTER(c_bool)]),
    "datadist_engine_listen_port": (c_uint32, [_P, POINTER(c_uint16)]),
    "datadist_engine_metrics": (c_uint32, [_P, POINTER(c_void_p)]),
    "datadist_engine_link_clusters": (
        c_uint32,
        [_P, POINTER(ClusterInfoC), c_size_t, c_int32, _U32_ARRAY, POINTER(c_size_t)],
    ),
    "datadist_engine_unlink_clusters": (
        c_uint32,
        [_P, POINTER(ClusterInfoC), c_size_t, c_int32, c_bool, _U32_ARRAY, POINTER(c_size_t)],
    ),
    "datadist_engine_switch_role": (c_uint32, [_P, c_int32, c_char_p]),
    "datadist_engine_link_transport": (c_uint32, [_P, c_uint64, POINTER(c_char_p)]),
    "datadist_engine_cache_manager": (c_uint32, [_P, _PP]),
    "datadist_cache_manager_release": (c_uint32, [_P]),
    "datadist_cache_release": (c_uint32, [_P]),
    "datadist_cache_id": (c_uint32, [_P, POINTER(c_int64)]),
    "datadist_cache_is_blocks": (c_uint32, [_P, POINTER(c_bool)]),
    "datadist_cache_num_tensors": (c_uint32, [_P, POINTER(c_uint32)]),
    "datadist_cache_tensor_addrs": (c_uint32, [_P, _U64_ARRAY, c_size_t]),
    "datadist_create_cpu_cache": (c_uint32, [POINTER(CacheDescC), _U64_ARRAY, c_size_t, _PP]),
    "datadist_allocate_cache": (c_uint32, [_P, POINTER(CacheDescC), POINTER(CacheKeyC), c_size_t, _PP]),
    "datadist_deallocate_cache": (c_uint32, [_P, _P]),
    "datadist_remove_cache_key": (c_uint32, [_P, POINTER(CacheKeyC)]),
    "datadist_copy_cache": (c_uint32, [_P, _P, _P, c_uint32, c_uint32, c_uint64, c_int64]),
    "datadist_pull_cache": (c_uint32, [_P, POINTER(CacheKeyC), _P, c_uint32, c_int64, POINTER(LayerRangeC)]),
    "datadist_pull_cache_by_id": (
        c_uint32,
        [_P, POINTER(CacheKeyByIdC), _P, c_uint32, c_int64, POINTER(LayerRangeC)],
    ),
    "datadist_push_cache": (c_uint32, [_P, POINTER(CacheKeyByIdC), _P, c_uint32, POINTER(LayerRangeC), c_int64]),
    "datadist_allocate_blocks_cache": (c_uint32, [_P, POINTER(CacheDescC), POINTER(BlocksCacheKeyC), _PP]),
    "datadist_deallocate_blocks_cache": (c_uint32, [_P, _P]),
    "datadist_pull_blocks": (
        c_uint32,
        [_P, POINTER(BlocksCacheKeyC), _P, _I64_ARRAY, c_size_t, _I64_ARRAY, c_size_t, POINTER(LayerRangeC)],
    ),
    "datadist_push_blocks": (
        c_uint32,
        [_P, POINTER(BlocksCacheKeyC), _P, _I64_ARRAY, c_size_t, _I64_ARRAY, c_size_t, POINTER(LayerRangeC)],
    ),
    "datadist_copy_blocks": (c_uint32, [_P, _P, _I64_ARRAY, _I64_ARRAY, c_size_t]),
    "datadist_swap_blocks": (c_uint32, [_P, _P, _P, _I64_ARRAY, _I64_ARRAY, c_size_t]),
    "datadist_register_cache": (
        c_uint32,
        [_P, POINTER(CacheDescC), _U64_ARRAY, c_size_t, POINTER(CacheKeyC), c_size_t, c_int32, _PP],
    ),
    "datadist_register_blocks_cache": (
        c_uint32,
        [_P, POINTER(CacheDescC), _U64_ARRAY, c_size_t, POINTER(BlocksCacheKeyC), c_int32, _PP],
    ),
    "datadist_unregister_cache": (c_uint32, [_P, c_int64]),
    "datadist_audit_cache_manager": (c_uint32, [_P, POINTER(AuditC)]),
    "datadist_transfer_cache_async": (
        c_uint32,
        [_P, _P, SYNC_FN, RELEASE_FN, c_void_p, POINTER(TransferConfigC), c_size_t, _I64_ARRAY, c_size_t,
         _I64_ARRAY, c_size_t, c_uint64, _PP],
    ),
    "datadist_transfer_cache_async_by_key": (
        c_uint32,
        [_P, _P, SYNC_FN, RELEASE_FN, c_void_p, POINTER(TransferKeyConfigC), c_size_t, _I64_ARRAY, c_size_t,
         _I64_ARRAY, c_size_t, _PP],
    ),
    "datadist_cache_task_synchronize": (c_uint32, [_P, c_int64, POINTER(c_uint32)]),
    "datadist_cache_task_results": (
        c_uint32,
        [_P, c_int64, _U32_ARRAY, POINTER(c_bool), c_size_t, POINTER(c_size_t)],
    ),
    "datadist_cache_task_is_done": (c_uint32, [_P, POINTER(c_bool)]),
    "datadist_cache_task_release": (c_uint32, [_P]),
}

for _name, (_restype, _argtypes) in _PROTOTYPES.items():
    _function = getattr(lib, _name)
    _function.restype = _restype
    _function.argtypes = _argtypes


# The hot calls again, without argtypes: ctypes then converts nothing, and the caller passes arguments already in
# their C form (pointers, c_int64 for 64-bit integers, ints below 2^31 for 32-bit ones). Measured on the 16 KiB
# pull path: about 0.5 us less per call than the argtypes conversion of its six arguments.
fast = ctypes.CDLL(library_path())
fast.datadist_pull_cache.restype = c_uint32


def last_error() -> str:
    message = lib.datadist_last_error()
    return message.decode("utf-8", "replace") if message else ""


def check(status: int) -> None:
    """Raises ``LLMException`` for a non-zero status, with the call's message (read on the same thread)."""
    if status != 0:
        raise LLMException(f"{lib.datadist_status_name(status).decode()}: {last_error()}", code_2_status(status))


def status_of(code: int) -> LLMStatusCode:
    """The status for a code a call returned (unknown codes: LLM_FAILED)."""
    return code_2_status(code)


def option_keys() -> Dict[str, str]:
    """The option keys the Swift ``LLMConfig(options:)`` reads, by their ``LLMOptionKey`` member name."""
    text = lib.datadist_option_keys().decode()
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def string_arrays(options: Dict[str, str]) -> Tuple[ctypes.Array, ctypes.Array, int]:
    items = list(options.items())
    keys = (c_char_p * len(items))(*[key.encode() for key, _ in items])
    values = (c_char_p * len(items))(*[value.encode() for _, value in items])
    return keys, values, len(items)


def check_options(options: Dict[str, str]) -> None:
    """Raises ``LLMException`` unless Swift's ``LLMConfig(options:)`` accepts ``options``."""
    keys, values, count = string_arrays(options)
    check(lib.datadist_check_options(keys, values, count))


def backend() -> Tuple[str, str]:
    """The device backend an engine would select now, and why."""
    out = c_void_p()
    check(lib.datadist_backend(ctypes.byref(out)))
    try:
        text = ctypes.string_at(out.value).decode()
    finally:
        lib.datadist_free_string(out)
    name, _, reason = text.partition("\n")
    return name, reason


def engine_metrics(handle: c_void_p) -> str:
    """The engine's metrics as DataDist's JSON text."""
    out = c_void_p()
    check(lib.datadist_engine_metrics(handle, ctypes.byref(out)))
    try:
        return ctypes.string_at(out.value).decode()
    finally:
        lib.datadist_free_string(out)


def int64_array(values: Sequence[int]) -> Optional[ctypes.Array]:
    return (c_int64 * len(values))(*values) if values else None


def uint64_array(values: Sequence[int]) -> Optional[ctypes.Array]:
    return (c_uint64 * len(values))(*values) if values else None


def ip_infos(pairs: List[Tuple[str, int]]) -> Tuple[Optional[ctypes.Array], int]:
    if not pairs:
        return None, 0
    return (IpInfoC * len(pairs))(*[IpInfoC(ip.encode(), port) for ip, port in pairs]), len(pairs)
