/// A refused request: a status code (the numbering of `LLMStatusCode`, which the link layer does not
/// interpret) and why.
package struct Refusal: Error, Sendable, Hashable, CustomStringConvertible {
    package var status: UInt32
    package var message: String

    package init(status: UInt32, message: String) {
        self.status = status
        self.message = message
    }

    package var description: String { message }

    package func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.u32(status)
        writer.string(message)
        return writer.bytes
    }

    package init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        status = try reader.u32()
        message = try reader.string()
        try reader.expectEnd()
    }
}
