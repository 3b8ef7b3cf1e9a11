"""The byte pattern both sides of a two-process test derive: tensor ``t`` of a cache filled with ``seed``."""

import numpy as np


def pattern(seed: int, tensor: int, nbytes: int) -> np.ndarray:
    return ((np.arange(nbytes, dtype=np.int64) * 7 + tensor * 31 + seed * 13) % 251).astype(np.uint8)


def tensor_bytes(view: np.ndarray) -> np.ndarray:
    """A flat uint8 view of one tensor view (no copy)."""
    return view.reshape(-1).view(np.uint8)
