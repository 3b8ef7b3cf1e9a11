"""Zero-copy views of a cache's tensors as NumPy arrays or torch CPU tensors.

A view is **borrowed**: it points into the cache's memory and is valid while that cache is allocated (until
``deallocate_cache`` / ``deallocate_blocks_cache`` / ``unregister_cache`` / ``finalize``); using it afterwards
reads or writes freed pool memory. Each view holds a reference to its ``Cache`` object, but that does not keep
the memory allocated. NumPy and torch are optional: each function imports its library when called.

On the emulator backend every address is host memory (DEVICE placement included). With the ACL backend, DEVICE
addresses are NPU memory, which the CPU cannot read: view only HOST caches there.
"""

from __future__ import annotations

import ctypes
from typing import Any, List


from ._check import raise_if_false
from .enums import DataType

__all__ = ["numpy_views", "torch_views"]

_NUMPY_DTYPES = {
    DataType.DT_FLOAT: "float32",
    DataType.DT_FLOAT16: "float16",
    DataType.DT_INT8: "int8",
    DataType.DT_INT32: "int32",
    DataType.DT_UINT8: "uint8",
    DataType.DT_INT16: "int16",
    DataType.DT_UINT16: "uint16",
    DataType.DT_UINT32: "uint32",
    DataType.DT_INT64: "int64",
    DataType.DT_UINT64: "uint64",
    DataType.DT_DOUBLE: "float64",
    DataType.DT_BOOL: "bool",
    DataType.DT_BF16: "uint16",  # NumPy has no bfloat16: the raw 16-bit patterns
}

_TORCH_DTYPES = {
    DataType.DT_FLOAT: "float32",
    DataType.DT_FLOAT16: "float16",
    DataType.DT_INT8: "int8",
    DataType.DT_INT32: "int32",
    DataType.DT_UINT8: "uint8",
    DataType.DT_INT16: "int16",
    DataType.DT_INT64: "int64",
    DataType.DT_DOUBLE: "float64",
    DataType.DT_BOOL: "bool",
    DataType.DT_BF16: "bfloat16",
}


def _buffers(cache: Any) -> List[Any]:
    """One ctypes byte array per tensor over the cache's memory, each keeping ``cache`` referenced."""
    addrs = cache.tensor_addrs
    raise_if_false(bool(addrs), f"cache {cache.cache_id} has no tensors to view (deallocated?)")
    desc = cache.cache_desc
    size = desc.size
    result = []
    for address in addrs:
        buffer = (ctypes.c_uint8 * size).from_address(address)
        buffer._datadist_cache = cache  # type: ignore[attr-defined]
        result.append(buffer)
    return result


def numpy_views(cache: Any) -> List[Any]:
    """Each tensor of ``cache`` as a writable ``numpy.ndarray`` shaped ``cache_desc.shape``, without copying."""
    import numpy

    desc = cache.cache_desc
    raise_if_false(desc.data_type in _NUMPY_DTYPES, f"{desc.data_type} has no NumPy dtype")
    dtype = numpy.dtype(_NUMPY_DTYPES[desc.data_type])
    return [
        numpy.frombuffer(buffer, dtype=dtype).reshape(desc.shape) for buffer in _buffers(cache)
    ]


def torch_views(cache: Any) -> List[Any]:
    """Each tensor of ``cache`` as a torch CPU tensor shaped ``cache_desc.shape``, without copying."""
    import torch

    desc = cache.cache_desc
    raise_if_false(desc.data_type in _TORCH_DTYPES, f"{desc.data_type} has no torch dtype")
    dtype = getattr(torch, _TORCH_DTYPES[desc.data_type])
    return [torch.frombuffer(buffer, dtype=dtype).reshape(desc.shape) for buffer in _buffers(cache)]


