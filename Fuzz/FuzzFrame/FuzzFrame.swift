import LinkLayer

/// libFuzzer entry point: `Frame.decode` on arbitrary bytes, at the start of an array and inside a slice.
/// A decoded frame must re-encode to exactly the bytes it consumed; only a possibly valid prefix is incomplete.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrame(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    check(bytes[...])
    if !bytes.isEmpty { check(bytes[1...]) }
    return 0
}

private func check(_ bytes: ArraySlice<UInt8>) {
    switch Frame.decode(bytes) {
    case .frame(let frame, let consumed):
        precondition(consumed == Frame.headerSize + frame.payload.count, "consumed \(consumed)")
        precondition(consumed <= bytes.count, "consumed \(consumed) of \(bytes.count)")
        precondition(frame.encoded()[...] == bytes.prefix(consumed), "re-encoding differs")
    case .incomplete:
        precondition(bytes.count < Frame.headerSize + Frame.maxPayload, "incomplete at \(bytes.count) bytes")
    case .invalid(let reason):
        precondition(!reason.isEmpty, "an invalid frame without a reason")
    }
}
