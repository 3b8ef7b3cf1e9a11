"""The layer-wise asynchronous transfer API (``transfer_cache_async`` and its types).

Its Swift side is not in this library yet, so every entry point here raises ``LLMException`` with
``LLM_FEATURE_NOT_ENABLED``; this module is the one place to wire it once the library has it.
"""

from __future__ import annotations

from typing import Any, List, NoReturn, Optional

from .status import LLMException, LLMStatusCode

__all__ = ["LayerSynchronizer", "TransferConfig", "TransferWithCacheKeyConfig", "CacheTask"]


def not_enabled(name: str) -> NoReturn:
    raise LLMException(
        f"LLM_FEATURE_NOT_ENABLED: {name} is not available in this DataDist build (layer-wise async transfer)",
        LLMStatusCode.LLM_FEATURE_NOT_ENABLED,
    )


class LayerSynchronizer:
    """Subclass and implement ``synchronize_layer``; returning False aborts a transfer task."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        not_enabled("LayerSynchronizer")

    def synchronize_layer(self, layer_index: int, timeout_in_millis: Optional[int]) -> bool:
        not_enabled("LayerSynchronizer.synchronize_layer")


class TransferConfig:
    """``TransferConfig(dst_cluster_id, dst_addrs, src_layer_range=None, src_batch_index=0)``."""

    def __init__(
        self, dst_cluster_id: int, dst_addrs: List[int], src_layer_range: Optional[range] = None,
        src_batch_index: int = 0,
    ) -> None:
        not_enabled("TransferConfig")


class TransferWithCacheKeyConfig:
    """``TransferWithCacheKeyConfig(cache_key, src_layer_range, dst_layer_range, src_batch_index=0)``."""

    def __init__(self, cache_key: Any, src_layer_range: range, dst_layer_range: range, src_batch_index: int = 0) -> None:
        not_enabled("TransferWithCacheKeyConfig")


class CacheTask:
    """The handle of a running ``transfer_cache_async``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        not_enabled("CacheTask")

    def synchronize(self, timeout_in_millis: Optional[int] = None) -> LLMStatusCode:
        not_enabled("CacheTask.synchronize")

    def get_results(self, timeout_in_millis: Optional[int] = None) -> List[Optional[LLMStatusCode]]:
        not_enabled("CacheTask.get_results")


def transfer_cache_async(*args: Any, **kwargs: Any) -> CacheTask:
    not_enabled("transfer_cache_async")
