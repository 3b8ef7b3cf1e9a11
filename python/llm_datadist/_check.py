"""The reference's argument checks: a wrong type is a TypeError naming the parameter, an integer outside its C
width a ValueError, a semantic rule an LLMException (LLM_PARAM_INVALID unless said otherwise)."""

from __future__ import annotations

from typing import Any, NoReturn, Tuple, Type, Union

from .status import LLMException, LLMStatusCode

UINT16_MAX = (1 << 16) - 1
UINT32_MAX = (1 << 32) - 1
UINT64_MAX = (1 << 64) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

TypeSpec = Union[Type[Any], Tuple[Type[Any], ...]]


def _names(types: TypeSpec) -> str:
    if isinstance(types, tuple):
        return " or ".join(t.__name__ for t in types)
    return types.__name__


def check_isinstance(name: str, value: Any, types: TypeSpec, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, types):
        raise TypeError(f"{name} must be {_names(types)}, got {type(value).__name__} ({value!r})")


def check_int_range(name: str, value: Any, low: int, high: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    check_isinstance(name, value, int)
    if not low <= value <= high:
        raise ValueError(f"{name} = {value} is out of range [{low}, {high}]")


def check_uint16(name: str, value: Any, allow_none: bool = False) -> None:
    check_int_range(name, value, 0, UINT16_MAX, allow_none)


def check_uint32(name: str, value: Any, allow_none: bool = False) -> None:
    check_int_range(name, value, 0, UINT32_MAX, allow_none)


def check_uint64(name: str, value: Any, allow_none: bool = False) -> None:
    check_int_range(name, value, 0, UINT64_MAX, allow_none)


def check_int32(name: str, value: Any, allow_none: bool = False) -> None:
    check_int_range(name, value, INT32_MIN, INT32_MAX, allow_none)


def check_int64(name: str, value: Any, allow_none: bool = False) -> None:
    check_int_range(name, value, INT64_MIN, INT64_MAX, allow_none)


def check_int_list(name: str, value: Any, checker: Any = check_int64) -> None:
    """A list or tuple of ints, each passing ``checker``."""
    check_isinstance(name, value, (list, tuple))
    for index, item in enumerate(value):
        checker(f"{name}[{index}]", item)


def fail(message: str, status: LLMStatusCode = LLMStatusCode.LLM_PARAM_INVALID) -> NoReturn:
    raise LLMException(message, status)


def raise_if_false(condition: bool, message: str, status: LLMStatusCode = LLMStatusCode.LLM_PARAM_INVALID) -> None:
    if not condition:
        fail(message, status)


def check_range(name: str, value: Any) -> None:
    """A layer range: ``range`` (TypeError), step 1, 0 <= start <= stop <= uint32 (LLMException)."""
    check_isinstance(name, value, range)
    raise_if_false(value.step == 1, f"{name} = {value!r} must have step 1")
    raise_if_false(0 <= value.start <= value.stop <= UINT32_MAX, f"{name} = {value!r} needs 0 <= start <= stop")
