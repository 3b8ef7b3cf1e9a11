"""LLMConfig: the reference's configuration properties and the option strings they emit.

The option keys come from the Swift library (``datadist_option_keys``), so the strings emitted here are the ones
Swift's ``LLMConfig(options:)`` reads.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Union

from . import _native
from ._check import (
    INT32_MAX,
    UINT32_MAX,
    check_int32,
    check_isinstance,
    check_uint32,

    raise_if_false,
)

__all__ = ["LLMConfig", "LlmConfig"]

KEYS = _native.option_keys()

_UNSET: Any = object()


class LLMConfig:
    """Configuration of an LLMDataDist; ``generate_options()`` gives the ``init`` options. The options dict is
    cumulative, as the reference's: values from an earlier call persist."""

    def __init__(self) -> None:
        self._options: Dict[str, str] = {}
        self._ge_options: Dict[str, str] = {}
        self._device_id: Optional[Union[int, List[int], Tuple[int, ...]]] = None
        self._sync_kv_timeout: Optional[Union[int, str]] = None
        self._listen_ip_info = ""
        self._enable_cache_manager: Any = _UNSET
        self._enable_remote_cache_accessible: Any = _UNSET
        self._mem_pool_cfg = ""
        self._host_mem_pool_cfg = ""
        self._rdma_traffic_class: Optional[int] = None
        self._rdma_service_level: Optional[int] = None
        self._local_comm_res: Any = _UNSET
        self._link_total_time: Any = _UNSET
        self._link_retry_count: Any = _UNSET
        self._transfer_backend: Any = _UNSET
        self._global_resource_config: Any = _UNSET
        self._enable_switch_role = False
        self._mem_utilization = 0.95
        self._buf_pool_cfg = ""
        self._deploy_res_path = ""
        self._cluster_info = ""
        self._output_max_size: Optional[int] = None

    # -- properties, in the reference's order --------------------------------------------------------------

    @property
    def ge_options(self) -> Dict[str, str]:
        return dict(self._ge_options)

    @ge_options.setter
    def ge_options(self, value: Dict[str, str]) -> None:
        check_isinstance("ge_options", value, dict)
        for key, item in value.items():
            check_isinstance("ge_options key", key, str)
            check_isinstance(f"ge_options[{key!r}]", item, str)
        self._ge_options = dict(value)

    @property
    def device_id(self) -> Optional[Union[int, List[int], Tuple[int, ...]]]:
        return self._device_id

    @device_id.setter
    def device_id(self, value: Optional[Union[int, List[int], Tuple[int, ...]]]) -> None:
        if value is not None:
            check_isinstance("device_id", value, (int, list, tuple))
            for index, item in enumerate(value if isinstance(value, (list, tuple)) else [value]):
                name = "device_id" if isinstance(value, int) else f"device_id[{index}]"
                check_isinstance(name, item, int)
                raise_if_false(item >= 0, f"{name} = {item} must be >= 0")
                check_int32(name, item)
        self._device_id = value

    @property
    def sync_kv_timeout(self) -> Optional[Union[int, str]]:
        return self._sync_kv_timeout

    @sync_kv_timeout.setter
    def sync_kv_timeout(self, value: Optional[Union[int, str]]) -> None:
        if value is not None:
            check_isinstance("sync_kv_timeout", value, (int, str))
            if isinstance(value, str):
                raise_if_false(value.isdigit(), f"sync_kv_timeout = {value!r} must be all digits")
                number = int(value)
            else:
                number = value
            raise_if_false(number > 0, f"sync_kv_timeout = {value!r} must be > 0")
            if number > INT32_MAX:
                raise ValueError(f"sync_kv_timeout = {value!r} is out of range [1, {INT32_MAX}]")
        self._sync_kv_timeout = value

    @property
    def listen_ip_info(self) -> str:
        return self._listen_ip_info

    @listen_ip_info.setter
    def listen_ip_info(self, value: str) -> None:
        check_isinstance("listen_ip_info", value, str, allow_none=True)
        self._listen_ip_info = value or ""

    @property
    def enable_cache_manager(self) -> bool:
        return False if self._enable_cache_manager is _UNSET else bool(self._enable_cache_manager)

    @enable_cache_manager.setter
    def enable_cache_manager(self, value: bool) -> None:
        check_isinstance("enable_cache_manager", value, bool, allow_none=True)
        self._enable_cache_manager = _UNSET if value is None else value

    @property
    def enable_remote_cache_accessible(self) -> bool:
        value = self._enable_remote_cache_accessible
        return False if value is _UNSET else bool(value)

    @enable_remote_cache_accessible.setter
    def enable_remote_cache_accessible(self, value: bool) -> None:
        check_isinstance("enable_remote_cache_accessible", value, bool, allow_none=True)
        self._enable_remote_cache_accessible = _UNSET if value is None else value

    @property
    def mem_pool_cfg(self) -> str:
        return self._mem_pool_cfg

    @mem_pool_cfg.setter
    def mem_pool_cfg(self, value: str) -> None:
        check_isinstance("mem_pool_cfg", value, str, allow_none=True)
        self._mem_pool_cfg = value or ""

    @property
    def host_mem_pool_cfg(self) -> str:
        return self._host_mem_pool_cfg

    @host_mem_pool_cfg.setter
    def host_mem_pool_cfg(self, value: str) -> None:
        check_isinstance("host_mem_pool_cfg", value, str, allow_none=True)
        self._host_mem_pool_cfg = value or ""

    @property
    def rdma_traffic_class(self) -> Optional[int]:
        return self._rdma_traffic_class

    @rdma_traffic_class.setter
    def rdma_traffic_class(self, value: Optional[int]) -> None:
        check_uint32("rdma_traffic_class", value, allow_none=True)
        self._rdma_traffic_class = value

    @property
    def rdma_service_level(self) -> Optional[int]:
        return self._rdma_service_level

    @rdma_service_level.setter
    def rdma_service_level(self, value: Optional[int]) -> None:
        check_uint32("rdma_service_level", value, allow_none=True)
        self._rdma_service_level = value

    @property
    def local_comm_res(self) -> str:
        return "" if self._local_comm_res is _UNSET else self._local_comm_res

    @local_comm_res.setter
    def local_comm_res(self, value: str) -> None:
        check_isinstance("local_comm_res", value, str, allow_none=True)
        self._local_comm_res = _UNSET if value is None else value

    @property
    def link_total_time(self) -> int:
        return 0 if self._link_total_time is _UNSET else self._link_total_time

    @link_total_time.setter
    def link_total_time(self, value: int) -> None:
        check_isinstance("link_total_time", value, int)
        raise_if_false(0 <= value <= UINT32_MAX, f"link_total_time = {value} must be in [0, {UINT32_MAX}]")
        self._link_total_time = value

    @property
    def link_retry_count(self) -> int:
        return 1 if self._link_retry_count is _UNSET else self._link_retry_count

    @link_retry_count.setter
    def link_retry_count(self, value: int) -> None:
        check_isinstance("link_retry_count", value, int)
        raise_if_false(1 <= value <= 100, f"link_retry_count = {value} must be in [1, 100]")
        self._link_retry_count = value

    @property
    def transfer_backend(self) -> str:
        return "" if self._transfer_backend is _UNSET else self._transfer_backend

    @transfer_backend.setter
    def transfer_backend(self, value: str) -> None:
        check_isinstance("transfer_backend", value, str)
        self._transfer_backend = value

    @property
    def global_resource_config(self) -> str:
        return "" if self._global_resource_config is _UNSET else self._global_resource_config

    @global_resource_config.setter
    def global_resource_config(self, value: str) -> None:
        check_isinstance("global_resource_config", value, str)
        self._global_resource_config = value

    @property
    def enable_switch_role(self) -> bool:
        return self._enable_switch_role

    @enable_switch_role.setter
    def enable_switch_role(self, value: bool) -> None:
        check_isinstance("enable_switch_role", value, bool)
        self._enable_switch_role = value

    @property
    def mem_utilization(self) -> float:
        return self._mem_utilization

    @mem_utilization.setter
    def mem_utilization(self, value: float) -> None:
        check_isinstance("mem_utilization", value, float)
        raise_if_false(0.0 <= value <= 1.0, f"mem_utilization = {value} must be in [0.0, 1.0]")
        self._mem_utilization = value

    @property
    def buf_pool_cfg(self) -> str:
        return self._buf_pool_cfg

    @buf_pool_cfg.setter
    def buf_pool_cfg(self, value: str) -> None:
        check_isinstance("buf_pool_cfg", value, str, allow_none=True)
        self._buf_pool_cfg = value or ""

    @property
    def deploy_res_path(self) -> str:
        return self._deploy_res_path

    @deploy_res_path.setter
    def deploy_res_path(self, value: str) -> None:
        check_isinstance("deploy_res_path", value, str, allow_none=True)
        self._deploy_res_path = value or ""

    @property
    def cluster_info(self) -> str:
        return self._cluster_info

    @cluster_info.setter
    def cluster_info(self, value: str) -> None:
        check_isinstance("cluster_info", value, str, allow_none=True)
        self._cluster_info = value or ""

    @property
    def output_max_size(self) -> Optional[int]:
        return self._output_max_size

    @output_max_size.setter
    def output_max_size(self, value: Optional[int]) -> None:
        check_isinstance("output_max_size", value, int, allow_none=True)
        self._output_max_size = value

    # -- options ---------------------------------------------------------------------------------------------

    def generate_options(self) -> Dict[str, str]:
        """The ``init`` options for the properties set so far (cumulative: earlier values persist)."""
        options = self._options
        options.update(self._ge_options)
        if isinstance(self._device_id, int):
            options[KEYS["deviceID"]] = str(self._device_id)
            options[KEYS["sessionDeviceID"]] = str(self._device_id)
        elif self._device_id:
            options[KEYS["deviceID"]] = ";".join(str(item) for item in self._device_id)
            options[KEYS["sessionDeviceID"]] = str(self._device_id[0])
        if self._sync_kv_timeout is not None:
            options[KEYS["syncKVTimeout"]] = str(self._sync_kv_timeout)
        if self._listen_ip_info:
            options[KEYS["listenIPInfo"]] = self._listen_ip_info
        if self._enable_cache_manager is not _UNSET:
            options[KEYS["enableCacheManager"]] = "1" if self._enable_cache_manager else "0"
        if self._enable_remote_cache_accessible is not _UNSET:
            options[KEYS["enableRemoteCacheAccessible"]] = "1" if self._enable_remote_cache_accessible else "0"
        if self._mem_pool_cfg:
            options[KEYS["memoryPool"]] = self._mem_pool_cfg
        if self._host_mem_pool_cfg:
            options[KEYS["hostMemoryPool"]] = self._host_mem_pool_cfg
        if self._rdma_traffic_class is not None:
            options[KEYS["rdmaTrafficClass"]] = str(self._rdma_traffic_class)
        if self._rdma_service_level is not None:
            options[KEYS["rdmaServiceLevel"]] = str(self._rdma_service_level)
        if self._local_comm_res is not _UNSET:
            options[KEYS["localCommRes"]] = self._local_comm_res
        if self._link_total_time is not _UNSET:
            options[KEYS["linkTotalTime"]] = str(self._link_total_time)
        if self._link_retry_count is not _UNSET:
            options[KEYS["linkRetryCount"]] = str(self._link_retry_count)
        if self._transfer_backend is not _UNSET:
            options[KEYS["transferBackend"]] = self._transfer_backend
        if self._global_resource_config is not _UNSET:
            options[KEYS["globalResourceConfig"]] = self._global_resource_config
        if self._enable_switch_role:
            options[KEYS["enableSwitchRole"]] = "1"
        options[KEYS["memoryUtilization"]] = str(self._mem_utilization)
        if self._buf_pool_cfg:
            options[KEYS["bufferPoolConfig"]] = self._buf_pool_cfg
        if self._deploy_res_path:
            options[KEYS["deployResPath"]] = self._deploy_res_path
        if self._cluster_info:
            options[KEYS["clusterInfo"]] = self._cluster_info
        if self._output_max_size is not None:
            options[KEYS["outputMaxSize"]] = str(self._output_max_size)
        return dict(options)

    gen_options = generate_options


LlmConfig = LLMConfig


