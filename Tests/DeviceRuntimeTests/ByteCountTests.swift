import DeviceRuntime
import Testing

@Suite("ByteCount: the one byte-size grammar")
struct ByteCountTests {
    static let good: [(String, Int)] = [
        ("0", 0), ("1024", 1024), ("9B", 9), ("3K", 3 << 10), ("5KiB", 5 << 10), ("7M", 7 << 20),
        ("64MiB", 64 << 20), ("2G", 2 << 30), ("64GiB", 64 << 30), ("1T", 1 << 40), ("1TiB", 1 << 40),
        ("64 MiB", 64 << 20), (" \t16KiB\t ", 16 << 10), ("16 \t KiB", 16 << 10), ("007K", 7 << 10),
        ("9223372036854775807", Int.max), ("9223372036854775807B", Int.max),
        ("8388607T", 8_388_607 << 40), ("8589934591G", 8_589_934_591 << 30),
    ]

    @Test("reads digits with an optional binary unit", arguments: good)
    func reads(_ text: String, _ bytes: Int) throws {
        #expect(try #require(ByteCount(text)).bytes == bytes)
    }

    static let bad = [
        "", " ", "B", "KiB", "abc", "-5", "+5", "1.5GiB", "1e3", "0x10", "64gib", "64kib", "16KB", "16kB",
        "16 K iB", "16KiB B", "1 2", "16KiB,32KiB", "16Ki", "16i", "１６",
        // Above Int.max, by digits or by the unit: refused, never trapping.
        "9223372036854775808", "99999999999999999999", "99999999999999999999999999999999999999K",
        "8388608T", "8388608TiB", "8589934592G", "9007199254740992K", "9000000TiB",
    ]

    @Test("refuses anything else", arguments: bad)
    func refuses(_ text: String) {
        #expect(ByteCount(text) == nil)
    }

    @Test(
        "prints the largest exact unit, and reads it back",
        arguments: [
            (0, "0 B"), (4100, "4100 B"), (16 << 10, "16 KiB"), (1 << 20, "1 MiB"), (1536 << 10, "1536 KiB"),
            (3 << 30, "3 GiB"), (2 << 40, "2 TiB"), (Int.max, "9223372036854775807 B"),
        ])
    func prints(_ bytes: Int, _ text: String) throws {
        #expect(ByteCount(bytes: bytes).description == text)
        #expect(ByteCount(text) == ByteCount(bytes: bytes))
    }

    @Test("a negative count traps")
    func negativeTraps() async {
        await #expect(processExitsWith: .failure) { _ = ByteCount(bytes: -1) }
    }
}
