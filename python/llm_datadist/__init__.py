"""llm_datadist: a drop-in for the reference's ``llm_datadist`` Python module (CacheManager mode), on DataDist.

The engine is the Swift library ``libdatadist_c.so`` shipped inside this package, reached through its C ABI with
ctypes. ``backend()`` tells which device runtime it selects (``emulator`` without CANN).
"""

from __future__ import annotations

from typing import Tuple

from . import _native
from .cache_manager import CacheAudit, CacheManager
from .config import LlmConfig, LLMConfig
from .datadist import LLMDataDist
from .enums import DataType, LLMRole, Memtype, Placement, RegisterMemStatus
from .status import LLMException, LLMStatusCode, Status
from .transfer import CacheTask, LayerSynchronizer, TransferConfig, TransferWithCacheKeyConfig
from .types import BlocksCacheKey, Cache, CacheDesc, CacheKey, CacheKeyByIdAndIndex, LLMClusterInfo, MemInfo

__all__ = [
    "BlocksCacheKey",
    "Cache",
    "CacheAudit",
    "CacheDesc",
    "CacheKey",
    "CacheKeyByIdAndIndex",
    "CacheManager",
    "CacheTask",
    "DataType",
    "LLMClusterInfo",
    "LLMConfig",
    "LLMDataDist",
    "LLMException",
    "LLMRole",
    "LLMStatusCode",
    "LayerSynchronizer",
    "LlmConfig",
    "MemInfo",
    "Memtype",
    "Placement",
    "RegisterMemStatus",
    "Status",
    "TransferConfig",
    "TransferWithCacheKeyConfig",
    "backend",
]


def backend() -> Tuple[str, str]:
    """The device runtime an ``init`` would select now (``"emulator"`` or ``"acl"``) and why."""
    return _native.backend()
