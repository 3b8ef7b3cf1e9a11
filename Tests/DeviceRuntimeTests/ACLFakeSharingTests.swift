import DeviceRuntime
import Foundation
import Testing

/// The fake library's IPC entry points at the C level: the argument checks and codes of the vendor's contract.
@Suite("Fake ACL library: IPC entry points", .serialized)
struct ACLFakeSharingTests {
    private typealias ExportKey =
        @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeMutablePointer<CChar>?, Int, UInt64) -> Int32
    private typealias SetPid = @convention(c) (UnsafePointer<CChar>?, UnsafeMutablePointer<Int32>?, Int) -> Int32
    private typealias Import =
        @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafePointer<CChar>?, UInt64) -> Int32
    private typealias Close = @convention(c) (UnsafePointer<CChar>?) -> Int32

    private func function<F>(_ fake: FakeInstance, _ symbol: String, _ type: F.Type) -> F {
        unsafeBitCast(fake.library.lookup(symbol: symbol)!, to: F.self)
    }

    @Test("export keys: 65-byte buffers only, flags 0 or 1, NULLs 100000, no device 107002, no IPC 207000")
    func exportArguments() throws {
        let fake = try FakeACL.instance()
        let export = function(fake, "aclrtIpcMemGetExportKey", ExportKey.self)
        var key = [CChar](repeating: 0, count: 65)
        #expect(export(nil, 4096, &key, 65, 0) == ACLCode.uninitialized)
        #expect(fake.acl.initialize() == ACLCode.success)
        let noDevice = onNewThread { () -> Int32 in
            var buffer = [CChar](repeating: 0, count: 65)
            return export(nil, 4096, &buffer, 65, 0)
        }
        #expect(noDevice == ACLCode.contextNull)
        #expect(fake.acl.setDevice(0) == ACLCode.success)
        let (code, address) = fake.acl.malloc(8192)
        try #require(code == ACLCode.success)
        let pointer = try #require(UnsafeMutableRawPointer(bitPattern: address))
        let unaligned = pointer + 4096 + 32
        let secondPage = pointer + 4096
        #expect(export(nil, 4096, &key, 65, 0) == ACLCode.invalidParam)
        #expect(export(pointer, 4096, nil, 65, 0) == ACLCode.invalidParam)
        #expect(export(pointer, 0, &key, 65, 0) == ACLCode.runtimeParamInvalid)
        #expect(export(pointer, 4096, &key, 64, 0) == ACLCode.runtimeParamInvalid)
        #expect(export(pointer, 4096, &key, 65, 2) == ACLCode.runtimeParamInvalid)
        #expect(export(unaligned, 64, &key, 65, 0) == ACLCode.addressUnaligned)
        #expect(fake.configure("FAKE_ACL_IPC", "0") == 0)
        #expect(export(pointer, 4096, &key, 65, 0) == ACLCode.featureNotSupported)
        #expect(fake.configure("FAKE_ACL_IPC", nil) == 0)
        #expect(export(secondPage, 4096, &key, 65, 1) == ACLCode.success)
        let text = key.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        #expect(!text.isEmpty && text.utf8.count < 65)

        var pid = Int32(getpid())
        let setPid = function(fake, "aclrtIpcMemSetImportPid", SetPid.self)
        #expect(setPid(text, &pid, 0) == ACLCode.runtimeParamInvalid)
        #expect(setPid(text, nil, 1) == ACLCode.invalidParam)
        #expect(setPid("unknown", &pid, 1) == ACLCode.runtimeParamInvalid)
        #expect(setPid(text, &pid, 1) == ACLCode.success)

        let importKey = function(fake, "aclrtIpcMemImportByKey", Import.self)
        var imported: UnsafeMutableRawPointer?
        #expect(importKey(&imported, text, 2) == ACLCode.runtimeParamInvalid)
        #expect(importKey(nil, text, 0) == ACLCode.invalidParam)
        #expect(importKey(&imported, "fakeacl:1:1:0000000000000000", 0) != ACLCode.success)
        let close = function(fake, "aclrtIpcMemClose", Close.self)
        #expect(close(nil) == ACLCode.invalidParam)
        #expect(close("unknown") == ACLCode.runtimeParamInvalid)
        #expect(fake.acl.free(address) == ACLCode.memoryFree)  // still exported
        #expect(close(text) == ACLCode.success)
        #expect(fake.acl.free(address) == ACLCode.success)
        #expect(fake.count("aclrtIpcMemGetExportKey") == 10)
        #expect(fake.count("aclrtIpcMemClose") == 3)
    }
}
