import DataDist
import Testing

@Suite("ByteSize: the byte-size grammar through the public API")
struct ByteSizeTests {
    @Test(
        "reads what DATADIST_EMULATE_DEVICE_MEMORY and --sizes take",
        arguments: [("4096", 4096), ("16KiB", 16 << 10), ("64 MiB", 64 << 20), ("2G", 2 << 30), ("8B", 8)])
    func reads(_ text: String, _ bytes: Int) throws {
        #expect(try #require(ByteSize(text)).bytes == bytes)
    }

    @Test("refuses other text", arguments: ["", "16KB", "-8", "1.5MiB", "9223372036854775808", "8388608TiB"])
    func refuses(_ text: String) {
        #expect(ByteSize(text) == nil)
    }

    @Test("prints the largest exact unit and orders by bytes")
    func prints() {
        #expect(ByteSize(bytes: 16 << 10).description == "16 KiB")
        #expect(ByteSize(bytes: 4100).description == "4100 B")
        #expect(ByteSize(bytes: 1 << 20) > ByteSize(bytes: 1023 << 10))
        #expect(ByteSize.grammar.contains("KiB"))
    }
}
