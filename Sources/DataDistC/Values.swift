import CDataDist
import DataDist

/// Reading C arguments into DataDist values. Every length, pointer and enum value is checked before it is used, so
/// a bad argument becomes `.paramInvalid` naming it, never a trap.
enum CValues {
    static let maxItems = 1 << 24

    /// The `count` elements at `pointer`; NULL is allowed only when `count` is 0.
    static func array<T>(_ pointer: UnsafePointer<T>?, _ count: Int, _ argument: String) throws(LLMError) -> [T] {
        guard count >= 0, count <= maxItems else {
            throw LLMError(.paramInvalid, "\(argument) count \(count) is not in 0...\(maxItems)")
        }
        if count == 0 { return [] }
        guard let pointer else { throw LLMError(.paramInvalid, "\(argument) is NULL with count \(count)") }
        return Array(UnsafeBufferPointer(start: pointer, count: count))
    }

    static func count(_ value: Int, _ argument: String) throws(LLMError) -> Int {
        guard value >= 0, value <= maxItems else {
            throw LLMError(.paramInvalid, "\(argument) \(value) is not in 0...\(maxItems)")
        }
        return value
    }

    static func string(_ pointer: UnsafePointer<CChar>?, _ argument: String) throws(LLMError) -> String {
        guard let pointer else { throw LLMError(.paramInvalid, "\(argument) is NULL") }
        guard let text = String(validatingCString: pointer) else {
            throw LLMError(.paramInvalid, "\(argument) is not valid UTF-8")
        }
        return text
    }

    static func role(_ value: Int32, _ argument: String) throws(LLMError) -> LLMRole {
        guard let role = LLMRole(rawValue: value) else {
            throw LLMError(.paramInvalid, "\(argument) \(value) is not a role (1 prompt, 2 decoder, 3 mix)")
        }
        return role
    }

    static func desc(_ pointer: UnsafePointer<datadist_cache_desc>?, _ argument: String) throws(LLMError)
        -> CacheDesc
    {
        guard let raw = pointer?.pointee else { throw LLMError(.paramInvalid, "\(argument) is NULL") }
        guard let dataType = DataType(rawValue: raw.data_type) else {
            throw LLMError(.paramInvalid, "\(argument).data_type \(raw.data_type) is not a DataType value")
        }
        guard let placement = Placement(rawValue: raw.placement) else {
            throw LLMError(.paramInvalid, "\(argument).placement \(raw.placement) is not 0 (host) or 1 (device)")
        }
        guard raw.rank <= 31 else {
            throw LLMError(.paramInvalid, "\(argument).rank \(raw.rank) is not in 1...31")
        }
        let shape = try array(raw.shape, Int(raw.rank), "\(argument).shape")
        return CacheDesc(numTensors: Int(raw.num_tensors), shape: shape, dataType: dataType, placement: placement)
    }

    static func key(_ raw: datadist_cache_key) -> CacheKey {
        CacheKey(promptClusterID: raw.cluster_id, reqID: raw.req_id, modelID: raw.model_id, prefixID: raw.prefix_id)
    }

    static func key(_ pointer: UnsafePointer<datadist_cache_key>?, _ argument: String) throws(LLMError) -> CacheKey {
        guard let raw = pointer?.pointee else { throw LLMError(.paramInvalid, "\(argument) is NULL") }
        return key(raw)
    }

    static func keyByID(_ pointer: UnsafePointer<datadist_cache_key_by_id>?, _ argument: String) throws(LLMError)
        -> CacheKeyByIdAndIndex
    {
        guard let raw = pointer?.pointee else { throw LLMError(.paramInvalid, "\(argument) is NULL") }
        return CacheKeyByIdAndIndex(clusterID: raw.cluster_id, cacheID: raw.cache_id, batchIndex: raw.batch_index)
    }

    static func blocksKey(_ pointer: UnsafePointer<datadist_blocks_cache_key>?, _ argument: String)
        throws(LLMError) -> BlocksCacheKey
    {
        guard let raw = pointer?.pointee else { throw LLMError(.paramInvalid, "\(argument) is NULL") }
        return BlocksCacheKey(clusterID: raw.cluster_id, modelID: raw.model_id)
    }

    /// nil for a NULL pointer (every layer).
    static func layers(_ pointer: UnsafePointer<datadist_layer_range>?, _ argument: String) throws(LLMError)
        -> LayerRange?
    {
        guard let raw = pointer?.pointee else { return nil }
        let limit = Int64(Int32.max)
        func range(_ start: Int64, _ stop: Int64, _ name: String) throws(LLMError) -> Range<Int> {
            guard start >= 0, start <= stop, stop <= limit else {
                throw LLMError(
                    .paramInvalid, "\(argument) \(name) range [\(start), \(stop)) needs 0 <= start <= stop <= \(limit)")
            }
            return Int(start)..<Int(stop)
        }
        guard raw.tensors_per_layer > 0, raw.tensors_per_layer <= limit else {
            throw LLMError(.paramInvalid, "\(argument).tensors_per_layer \(raw.tensors_per_layer) must be > 0")
        }
        return LayerRange(
            source: try range(raw.src_start, raw.src_stop, "source"),
            destination: try range(raw.dst_start, raw.dst_stop, "destination"),
            tensorsPerLayer: Int(raw.tensors_per_layer))
    }

    static func blocks(_ pointer: UnsafePointer<Int64>?, _ count: Int, _ argument: String) throws(LLMError) -> [Int] {
        try array(pointer, count, argument).map { Int($0) }
    }

    static func addresses(_ pointer: UnsafePointer<UInt64>?, _ count: Int, _ argument: String) throws(LLMError)
        -> [UInt]
    {
        try array(pointer, count, argument).map { UInt($0) }
    }

    static func endpoints(_ pointer: UnsafePointer<datadist_ip_info>?, _ count: Int, _ argument: String)
        throws(LLMError) -> [IPEndpoint]
    {
        var result: [IPEndpoint] = []
        for (index, info) in try array(pointer, count, argument).enumerated() {
            let host = try string(info.ip, "\(argument)[\(index)].ip")
            guard !host.isEmpty else { throw LLMError(.paramInvalid, "\(argument)[\(index)].ip is empty") }
            result.append(IPEndpoint(host: host, port: info.port))
        }
        return result
    }

    static func clusters(_ pointer: UnsafePointer<datadist_cluster_info>?, _ count: Int) throws(LLMError)
        -> [LLMClusterInfo]
    {
        var result: [LLMClusterInfo] = []
        for (index, raw) in try array(pointer, count, "clusters").enumerated() {
            let name = "clusters[\(index)]"
            let role = raw.remote_role_type == 0 ? nil : try Self.role(raw.remote_role_type, "\(name).remote_role_type")
            result.append(
                LLMClusterInfo(
                    remoteClusterID: raw.remote_cluster_id, remoteRoleType: role,
                    localIPInfos: try endpoints(raw.local_ip_infos, raw.local_ip_info_count, "\(name).local_ip_infos"),
                    remoteIPInfos: try endpoints(
                        raw.remote_ip_infos, raw.remote_ip_info_count, "\(name).remote_ip_infos")))
        }
        return result
    }

    /// `count` option strings; repeated keys are refused.
    static func options(
        _ keys: UnsafePointer<UnsafePointer<CChar>?>?, _ values: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int
    ) throws(LLMError) -> [String: String] {
        let keyPointers = try array(keys, count, "keys")
        let valuePointers = try array(values, count, "values")
        var result: [String: String] = [:]
        for index in 0..<count {
            let key = try string(keyPointers[index], "keys[\(index)]")
            let value = try string(valuePointers[index], "values[\(index)]")
            guard result.updateValue(value, forKey: key) == nil else {
                throw LLMError(.paramInvalid, "keys[\(index)] \"\(key)\" is given twice")
            }
        }
        return result
    }
}
