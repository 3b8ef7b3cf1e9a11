import DeviceRuntime
import Testing

@testable import DataDist

/// How device runtime errors become `LLMError`s at the DataDist boundary.
@Suite("Runtime error mapping")
struct RuntimeErrorMappingTests {
    @Test("a missing device-sharing feature (.notSupported, or ACL's 207000) is .featureNotEnabled naming the cause")
    func featureNotEnabled() {
        let missing = LLMError(
            runtimeError: DeviceError(.notSupported, "exportRegion: device sharing not available: aclrtIpcMemClose"),
            while: "exporting a pool")
        #expect(missing.status == .featureNotEnabled)
        #expect(missing.message.contains("aclrtIpcMemClose"))
        let chip = LLMError(runtimeError: DeviceError(.acl(ACLCode.featureNotSupported), "no IPC"), while: "exporting")
        #expect(chip.status == .featureNotEnabled)
        let other = LLMError(runtimeError: DeviceError(.acl(ACLCode.driverInternal), "refused"), while: "importing")
        #expect(other.status == .failed)
    }
}
