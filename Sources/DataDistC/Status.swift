import CDataDist
import DataDist

/// Runs one C ABI call: `.success` (0), or the error's status with its message stored as this thread's last error.
/// Nothing thrown inside leaves the call.
@inline(__always)
func abiCall(_ body: () throws(LLMError) -> Void) -> UInt32 {
    do {
        try body()
        return LLMStatusCode.success.rawValue
    } catch {
        setLastError(error.message)
        return error.status.rawValue
    }
}

func setLastError(_ message: String) {
    var message = message
    message.withUTF8 { bytes in
        bytes.withMemoryRebound(to: CChar.self) { chars in
            datadist_support_set_last_error(chars.baseAddress, chars.count)
        }
    }
}

/// Writes `value` through `pointer` (checked to be non-NULL first by `requireOutput`).
@inline(__always)
func requireOutput<T>(_ pointer: UnsafeMutablePointer<T>?, _ argument: String) throws(LLMError)
    -> UnsafeMutablePointer<T>
{
    guard let pointer else { throw LLMError(.paramInvalid, "\(argument) is NULL") }
    return pointer
}
