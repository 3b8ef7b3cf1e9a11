import CDataDist
import DataDist
import FoundationEssentials
import Synchronization

// The engine functions of datadist.h: create, init, finalize, link, unlink, switch role, the cache manager.

@_cdecl("datadist_engine_create")
public func datadistEngineCreate(_ role: Int32, _ clusterID: UInt64, _ out: UnsafeMutablePointer<OpaquePointer?>?)
    -> UInt32
{
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        let role = try CValues.role(role, "role")
        out.pointee = Handles.register(EngineHandle(LLMDataDist(role: role, clusterID: clusterID)))
    }
}

@_cdecl("datadist_engine_destroy")
public func datadistEngineDestroy(_ engine: OpaquePointer?) -> UInt32 {
    abiCall { () throws(LLMError) in
        let handle = try Handles.release(engine, EngineHandle.self, "engine")
        finalize(handle)
    }
}

@_cdecl("datadist_engine_init")
public func datadistEngineInit(
    _ engine: OpaquePointer?, _ keys: UnsafePointer<UnsafePointer<CChar>?>?,
    _ values: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let handle = try Handles.lookup(engine, EngineHandle.self, "engine")
        let config = try LLMConfig(options: try CValues.options(keys, values, count))
        try handle.engine.initialize(config, environment: ProcessInfo.processInfo.environment)
    }
}

@_cdecl("datadist_engine_finalize")
public func datadistEngineFinalize(_ engine: OpaquePointer?) -> UInt32 {
    abiCall { () throws(LLMError) in finalize(try Handles.lookup(engine, EngineHandle.self, "engine")) }
}

/// Advances the epoch first, so a cache manager handle used meanwhile reports `.engineFinalized`.
private func finalize(_ handle: EngineHandle) {
    guard handle.engine.isInitialized else { return }
    handle.epoch.add(1, ordering: .releasing)
    handle.engine.finalize()
}

@_cdecl("datadist_engine_is_initialized")
public func datadistEngineIsInitialized(_ engine: OpaquePointer?, _ out: UnsafeMutablePointer<Bool>?) -> UInt32 {
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        out.pointee = try Handles.lookup(engine, EngineHandle.self, "engine").engine.isInitialized
    }
}

@_cdecl("datadist_engine_listen_port")
public func datadistEngineListenPort(_ engine: OpaquePointer?, _ out: UnsafeMutablePointer<UInt16>?) -> UInt32 {
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        out.pointee = try Handles.lookup(engine, EngineHandle.self, "engine").engine.listenEndpoint?.port ?? 0
    }
}

@_cdecl("datadist_engine_link_clusters")
public func datadistEngineLinkClusters(
    _ engine: OpaquePointer?, _ clusters: UnsafePointer<datadist_cluster_info>?, _ count: Int, _ timeoutMS: Int32,
    _ rets: UnsafeMutablePointer<UInt32>?, _ retsWritten: UnsafeMutablePointer<Int>?
) -> UInt32 {
    linkOrUnlink(engine, clusters, count, timeoutMS, rets, retsWritten) { engine, clusters, timeout in
        engine.linkClusters(clusters, timeout: timeout)
    }
}

@_cdecl("datadist_engine_unlink_clusters")
public func datadistEngineUnlinkClusters(
    _ engine: OpaquePointer?, _ clusters: UnsafePointer<datadist_cluster_info>?, _ count: Int, _ timeoutMS: Int32,
    _ force: Bool, _ rets: UnsafeMutablePointer<UInt32>?, _ retsWritten: UnsafeMutablePointer<Int>?
) -> UInt32 {
    linkOrUnlink(engine, clusters, count, timeoutMS, rets, retsWritten) { engine, clusters, timeout in
        engine.unlinkClusters(clusters, timeout: timeout, force: force)
    }
}

/// Checks the arguments, runs `operation`, writes the per-cluster codes and returns the overall one (with its
/// last error set when it is not a success).
private func linkOrUnlink(
    _ engine: OpaquePointer?, _ clusters: UnsafePointer<datadist_cluster_info>?, _ count: Int, _ timeoutMS: Int32,
    _ rets: UnsafeMutablePointer<UInt32>?, _ retsWritten: UnsafeMutablePointer<Int>?,
    _ operation: (LLMDataDist, [LLMClusterInfo], Duration) -> (LLMStatusCode, [LLMStatusCode])
) -> UInt32 {
    var result: (status: LLMStatusCode, perCluster: Bool) = (.success, false)
    let status = abiCall { () throws(LLMError) in
        let handle = try Handles.lookup(engine, EngineHandle.self, "engine")
        let written = try requireOutput(retsWritten, "rets_written")
        guard timeoutMS > 0 else { throw LLMError(.paramInvalid, "timeout_ms \(timeoutMS) must be > 0") }
        let infos = try CValues.clusters(clusters, count)
        if count > 0, rets == nil { throw LLMError(.paramInvalid, "rets is NULL with count \(count)") }
        let (overall, codes) = operation(handle.engine, infos, .milliseconds(timeoutMS))
        if let rets, codes.count == count, count > 0 {
            for (index, code) in codes.enumerated() { rets[index] = code.rawValue }
            written.pointee = count
        } else {
            written.pointee = 0
        }
        result = (overall, written.pointee > 0)
    }
    guard status == LLMStatusCode.success.rawValue else { return status }
    if result.status != .success {
        setLastError(
            result.perCluster
                ? "\(result.status.name): at least one cluster failed; see the per-cluster codes"
                : "\(result.status.name) before any cluster was tried (count \(count))")
    }
    return result.status.rawValue
}

/// "shm" and "ucx", NUL-terminated, made once and never freed or written.
nonisolated(unsafe) private let transportNames: [TransportPreference: UnsafeMutablePointer<CChar>] = [
    .sharedMemory: copyCString(TransportPreference.sharedMemory.rawValue),
    .ucx: copyCString(TransportPreference.ucx.rawValue),
]

@_cdecl("datadist_engine_link_transport")
public func datadistEngineLinkTransport(
    _ engine: OpaquePointer?, _ clusterID: UInt64, _ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        let handle = try Handles.lookup(engine, EngineHandle.self, "engine")
        guard let transport = handle.engine.linkTransport(toCluster: clusterID), let name = transportNames[transport]
        else {
            throw LLMError(.notYetLink, "cluster_id \(clusterID) is not linked")
        }
        out.pointee = UnsafePointer(name)
    }
}

@_cdecl("datadist_engine_switch_role")
public func datadistEngineSwitchRole(_ engine: OpaquePointer?, _ role: Int32, _ listen: UnsafePointer<CChar>?)
    -> UInt32
{
    abiCall { () throws(LLMError) in
        let handle = try Handles.lookup(engine, EngineHandle.self, "engine")
        let role = try CValues.role(role, "role")
        var endpoint: IPEndpoint?
        if listen != nil {
            let text = try CValues.string(listen, "listen_ip_info")
            guard let parsed = IPEndpoint(text) else {
                throw LLMError(.paramInvalid, "listen_ip_info \"\(text)\" is not \"ip:port\" or \"[ipv6]:port\"")
            }
            endpoint = parsed
        }
        try handle.engine.switchRole(role, listenAddress: endpoint)
    }
}

@_cdecl("datadist_engine_cache_manager")
public func datadistEngineCacheManager(_ engine: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?)
    -> UInt32
{
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        let handle = try Handles.lookup(engine, EngineHandle.self, "engine")
        let epoch = handle.epoch.load(ordering: .acquiring)
        let manager = try handle.engine.cacheManager
        out.pointee = Handles.register(ManagerHandle(owner: handle, manager: manager, epoch: epoch))
    }
}

@_cdecl("datadist_cache_manager_release")
public func datadistCacheManagerRelease(_ manager: OpaquePointer?) -> UInt32 {
    abiCall { () throws(LLMError) in try Handles.release(manager, ManagerHandle.self, "manager") }
}
