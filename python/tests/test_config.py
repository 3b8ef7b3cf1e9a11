"""§15.1 configuration cases: LLMConfig's validation and the exact option strings, which Swift's
LLMConfig(options:) must accept (checked through the C ABI)."""

import pytest

import llm_datadist as ld
from llm_datadist import _native

S = ld.LLMStatusCode


def options(**settings):
    config = ld.LLMConfig()
    for name, value in settings.items():
        setattr(config, name, value)
    return config.generate_options()


def test_a01_device_id_list_and_int():
    generated = options(device_id=[0, 1])
    assert generated["ge.exec.deviceId"] == "0;1" and generated["ge.session_device_id"] == "0"
    generated = options(device_id=3)
    assert generated["ge.exec.deviceId"] == "3" and generated["ge.session_device_id"] == "3"
    with pytest.raises(ld.LLMException):
        options(device_id=-1)
    with pytest.raises(ValueError):
        options(device_id=1 << 31)
    with pytest.raises(TypeError, match="device_id"):
        options(device_id="0")


def test_a02_mem_utilization_range_and_default():
    for bad in (1.5, -0.1):
        with pytest.raises(ld.LLMException) as error:
            options(mem_utilization=bad)
        assert error.value.status_code == S.LLM_PARAM_INVALID
    for good in (0.0, 1.0, 0.5):
        assert options(mem_utilization=good)["llm.MemoryUtilization"] == str(good)
    assert ld.LLMConfig().generate_options() == {"llm.MemoryUtilization": "0.95"}


def test_a03_global_resource_config():
    assert "llm.GlobalResourceConfig" not in options()
    assert options(global_resource_config="")["llm.GlobalResourceConfig"] == ""
    for bad in (123, {"k": "v"}):
        with pytest.raises(TypeError, match="global_resource_config"):
            options(global_resource_config=bad)


def test_a04_remote_cache_accessible_only_when_set():
    config = ld.LLMConfig()
    config.enable_cache_manager = True
    assert "llm.EnableRemoteCacheAccessible" not in config.generate_options()
    config.enable_remote_cache_accessible = False
    assert config.generate_options()["llm.EnableRemoteCacheAccessible"] == "0"
    config.enable_remote_cache_accessible = True
    assert config.generate_options()["llm.EnableRemoteCacheAccessible"] == "1"
    assert config.generate_options()["llm.EnableCacheManager"] == "1"


def test_a05_link_retry_and_total_time():
    for name, value in (("link_retry_count", 0), ("link_retry_count", 101), ("link_total_time", -1)):
        with pytest.raises(ld.LLMException):
            options(**{name: value})
    config = ld.LLMConfig()
    assert (config.link_retry_count, config.link_total_time) == (1, 0)
    assert "llm.LinkRetryCount" not in config.generate_options()
    assert options(link_retry_count=5, link_total_time=7)["llm.LinkRetryCount"] == "5"


def test_a06_sync_kv_timeout():
    for bad in ("abc", 0):
        with pytest.raises(ld.LLMException):
            options(sync_kv_timeout=bad)
    with pytest.raises(ValueError):
        options(sync_kv_timeout=1 << 31)
    assert options(sync_kv_timeout="3000")["llm.SyncKvCacheWaitTime"] == "3000"


def test_options_are_cumulative_as_the_reference():
    config = ld.LLMConfig()
    config.listen_ip_info = "127.0.0.1:26000"
    config.generate_options()
    config.listen_ip_info = ""
    assert config.gen_options()["llm.listenIpInfo"] == "127.0.0.1:26000"


def test_every_property_emits_a_string_swift_accepts():
    config = ld.LLMConfig()
    config.ge_options = {"ge.flowGraphMemMaxSize": "1024", "ge.graphRunMode": "0"}
    config.device_id = 0
    config.sync_kv_timeout = 1500
    config.listen_ip_info = "127.0.0.1:26000"
    config.enable_cache_manager = True
    config.enable_remote_cache_accessible = False
    config.mem_pool_cfg = '{"memory_size": 1048576, "page_shift": 16}'
    config.host_mem_pool_cfg = '{"memory_size": 1048576}'
    config.rdma_traffic_class = 132
    config.rdma_service_level = 4
    config.local_comm_res = '{"version": "1.3"}'
    config.link_total_time = 10
    config.link_retry_count = 3
    config.global_resource_config = "{}"
    config.enable_switch_role = True
    config.mem_utilization = 0.9
    config.buf_pool_cfg = "{}"
    config.deploy_res_path = "/tmp"
    config.cluster_info = "{}"
    config.output_max_size = 1024
    generated = config.generate_options()
    assert generated == {
        "ge.flowGraphMemMaxSize": "1024",
        "ge.graphRunMode": "0",
        "ge.exec.deviceId": "0",
        "ge.session_device_id": "0",
        "llm.SyncKvCacheWaitTime": "1500",
        "llm.listenIpInfo": "127.0.0.1:26000",
        "llm.EnableCacheManager": "1",
        "llm.EnableRemoteCacheAccessible": "0",
        "llm.MemPoolConfig": '{"memory_size": 1048576, "page_shift": 16}',
        "llm.HostMemPoolConfig": '{"memory_size": 1048576}',
        "llm.RdmaTrafficClass": "132",
        "llm.RdmaServiceLevel": "4",
        "llm.LocalCommRes": '{"version": "1.3"}',
        "llm.LinkTotalTime": "10",
        "llm.LinkRetryCount": "3",
        "llm.GlobalResourceConfig": "{}",
        "llm.EnableSwitchRole": "1",
        "llm.MemoryUtilization": "0.9",
        "llm.BufPoolCfg": "{}",
        "llm.deployResPath": "/tmp",
        "llm.ClusterInfo": "{}",
        "llm.OutputMaxSize": "1024",
    }
    _native.check_options(generated)  # Swift's LLMConfig(options:) reads every one of them
    config.transfer_backend = "hixl"
    with pytest.raises(ld.LLMException, match="EnableRemoteCacheAccessible"):
        _native.check_options(config.generate_options())  # Swift's own rule for the hixl backend
    config.enable_remote_cache_accessible = True
    _native.check_options(config.generate_options())


def test_swift_refuses_what_it_does_not_know():
    with pytest.raises(ld.LLMException) as error:
        _native.check_options({"llm.SyncKvCacheWaitTim": "10"})
    assert error.value.status_code == S.LLM_PARAM_INVALID
    assert "llm.SyncKvCacheWaitTime" in str(error.value)


def test_wrong_types_name_the_property():
    for name, value in (
        ("listen_ip_info", 5),
        ("enable_cache_manager", "yes"),
        ("mem_pool_cfg", {}),
        ("ge_options", []),
        ("ge_options", {"a": 1}),
        ("rdma_traffic_class", "1"),
        ("mem_utilization", 1),
    ):
        with pytest.raises(TypeError, match=name):
            options(**{name: value})
    with pytest.raises(ValueError):
        options(rdma_service_level=-1)
