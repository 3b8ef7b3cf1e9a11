"""Zero-copy views: NumPy arrays (and torch tensors, when torch is installed) over a cache's own memory."""

import gc
import weakref

import numpy as np
import pytest

import llm_datadist as ld
from patterns import pattern, tensor_bytes


def test_numpy_views_are_the_cache_memory_shaped_and_typed_from_the_desc(engine):
    manager = engine.cache_manager
    desc = ld.CacheDesc(3, [2, 4, 16], ld.DataType.DT_FLOAT16)
    cache = manager.allocate_cache(desc)
    views = cache.as_numpy()
    assert [v.ctypes.data for v in views] == cache.tensor_addrs
    assert all(v.shape == (2, 4, 16) and v.dtype == np.float16 and v.flags.writeable for v in views)
    assert all(not v.flags.owndata for v in views)
    # Written through one view, copied by the engine, read through another cache's views: no copy on our side.
    for index, view in enumerate(views):
        raw = tensor_bytes(view)
        raw[:] = pattern(1, index, raw.size)
    other = manager.allocate_cache(desc)
    manager.copy_cache(other, cache, dst_batch_index=1, src_batch_index=0)
    for index, view in enumerate(other.as_numpy()):
        slot = tensor_bytes(view[0]).size
        assert np.array_equal(tensor_bytes(view[1]), pattern(1, index, 2 * slot)[:slot])
    manager.deallocate_cache(other)
    manager.deallocate_cache(cache)
    with pytest.raises(ld.LLMException) as error:
        cache.as_numpy()
    assert error.value.status_code == ld.LLMStatusCode.LLM_PARAM_INVALID


def test_a_view_keeps_its_cache_object_referenced(engine):
    manager = engine.cache_manager
    cache = manager.allocate_cache(ld.CacheDesc(1, [8], ld.DataType.DT_INT32))
    addrs = cache.tensor_addrs
    view = cache.as_numpy()[0]
    alive = weakref.ref(cache)
    del cache
    gc.collect()
    assert alive() is not None
    view[:] = np.arange(8, dtype=np.int32)
    assert view.ctypes.data == addrs[0]
    manager.deallocate_cache(alive())
    del view
    gc.collect()
    assert alive() is None


def test_dtypes_map_to_numpy(engine):
    manager = engine.cache_manager
    for data_type, dtype in (
        (ld.DataType.DT_FLOAT, np.float32),
        (ld.DataType.DT_INT64, np.int64),
        (ld.DataType.DT_BF16, np.uint16),
        (ld.DataType.DT_BOOL, np.bool_),
    ):
        cache = manager.allocate_cache(ld.CacheDesc(1, [4], data_type))
        assert cache.as_numpy()[0].dtype == dtype
        manager.deallocate_cache(cache)


def test_torch_views_when_torch_is_installed(engine):
    torch = pytest.importorskip("torch")
    manager = engine.cache_manager
    cache = manager.allocate_cache(ld.CacheDesc(2, [4, 8], ld.DataType.DT_BF16))
    tensors = cache.as_torch()
    assert [t.data_ptr() for t in tensors] == cache.tensor_addrs
    assert tensors[0].dtype == torch.bfloat16 and tuple(tensors[0].shape) == (4, 8)
    # Both kinds of view are the same memory: bf16 1.0 and -2.0 written through torch are the 16-bit patterns
    # 0x3F80 and 0xC000 through NumPy (which has no bf16), and a NumPy write shows through torch.
    before = cache.as_numpy()[0].copy()
    tensors[1].fill_(1.0)
    tensors[1][3, 7] = -2.0
    raw = cache.as_numpy()[1]
    assert int(raw[0, 0]) == 0x3F80 and int(raw[3, 7]) == 0xC000
    assert int((raw == 0x3F80).sum()) == 4 * 8 - 1
    raw[2, 5] = 0x4040  # bf16 3.0
    assert float(tensors[1][2, 5]) == 3.0
    assert (cache.as_numpy()[0] == before).all()  # tensor 0 untouched by the writes to tensor 1
    manager.deallocate_cache(cache)
