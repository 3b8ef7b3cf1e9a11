"""Status codes and the exception every engine failure raises (the reference's ``LLMStatusCode`` values)."""

from __future__ import annotations

import enum

__all__ = ["LLMStatusCode", "LLMException", "Status", "code_2_status"]


class LLMStatusCode(enum.Enum):
    """Every status code of the reference, with the same numeric values."""

    LLM_SUCCESS = 0x0
    LLM_FAILED = 0xFFFFFFFF
    LLM_WAIT_PROCESS_TIMEOUT = 0x5010B001
    LLM_KV_CACHE_NOT_EXIST = 0x5010B002
    LLM_REPEAT_REQUEST = 0x5010B003
    LLM_REQUEST_ALREADY_COMPLETED = 0x5010B004
    LLM_PARAM_INVALID = 0x5010B005
    LLM_ENGINE_FINALIZED = 0x5010B006
    LLM_NOT_YET_LINK = 0x5010B007
    LLM_ALREADY_LINK = 0x5010B008
    LLM_LINK_FAILED = 0x5010B009
    LLM_UNLINK_FAILED = 0x5010B00A
    LLM_NOTIFY_PROMPT_UNLINK_FAILED = 0x5010B00B
    LLM_CLUSTER_NUM_EXCEED_LIMIT = 0x5010B00C
    LLM_PROCESSING_LINK = 0x5010B00D
    LLM_DEVICE_OUT_OF_MEMORY = 0x5010B00E
    LLM_PREFIX_ALREADY_EXIST = 0x5010B00F
    LLM_PREFIX_NOT_EXIST = 0x5010B010
    LLM_SEQ_LENOVERLIMIT = 0x5010B011
    LLM_NO_FREE_BLOCK = 0x5010B012
    LLM_BLOCKS_OUT_OF_MEMORY = 0x5010B013
    LLM_CACHE_INCOMPATIBLE = 0x5010B014
    LLM_CACHE_KEY_ALREADY_EXIST = 0x5010B015
    LLM_COPY_CACHE_FAILED = 0x5010B016
    LLM_CACHE_ID_ALREADY_EXIST = 0x5010B017
    LLM_EXIST_LINK = 0x5010B018
    LLM_FEATURE_NOT_ENABLED = 0x5010B019
    LLM_TIMEOUT = 0x5010B01A
    LLM_LINK_BUSY = 0x5010B01B
    LLM_OUT_OF_MEMORY = 0x5010B01C
    LLM_DEVICE_MEM_ERROR = 507053
    LLM_SUSPECT_REMOTE_ERROR = 507057
    LLM_UNKNOWN_ERROR = -1


_BY_VALUE = {member.value: member for member in LLMStatusCode}


def code_2_status(code: int) -> LLMStatusCode:
    """The status for an engine code; codes the reference does not name become ``LLM_FAILED``."""
    return _BY_VALUE.get(code, LLMStatusCode.LLM_FAILED)


class LLMException(RuntimeError):
    """An engine failure (a ``RuntimeError``) carrying its ``status_code``."""

    def __init__(self, message: str = "", status_code: LLMStatusCode = LLMStatusCode.LLM_SUCCESS) -> None:
        super().__init__(message)
        self._status_code = status_code

    @property
    def status_code(self) -> LLMStatusCode:
        return self._status_code


class Status:
    """A status code with ``is_ok()``."""

    def __init__(self, status_code: LLMStatusCode = LLMStatusCode.LLM_SUCCESS) -> None:
        self._status_code = status_code

    @property
    def status_code(self) -> LLMStatusCode:
        return self._status_code

    def is_ok(self) -> bool:
        return self._status_code == LLMStatusCode.LLM_SUCCESS
