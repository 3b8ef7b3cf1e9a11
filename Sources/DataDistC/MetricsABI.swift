import CDataDist
import DataDist

@_cdecl("datadist_engine_metrics")
public func datadistEngineMetrics(
    _ engine: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        let json = try Handles.lookup(engine, EngineHandle.self, "engine").engine.metrics().json
        guard let text = mallocCString(json) else {
            throw LLMError(.failed, "out of memory copying \(json.utf8.count) bytes of metrics")
        }
        out.pointee = text
    }
}
