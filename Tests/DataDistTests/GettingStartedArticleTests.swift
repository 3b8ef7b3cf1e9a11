import DataDist
import Foundation
import Testing

/// The getting-started article of the DocC catalog: its code is `gettingStarted()`, which compiles and runs.
@Suite("GettingStarted.md", .timeLimit(.minutes(1)))
struct GettingStartedArticleTests {
    static let testsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let articleURL = testsFolder.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/DataDist/DataDist.docc/GettingStarted.md")
    static let snippetURL = testsFolder.appendingPathComponent("GettingStartedSnippet.swift")

    @Test("every Swift block of the article is, in order, a marked region of GettingStartedSnippet.swift")
    func articleMatchesSnippet() throws {
        let article = try Self.swiftBlocks(inMarkdown: String(contentsOf: Self.articleURL, encoding: .utf8))
        let snippet = try Self.markedRegions(inSwift: String(contentsOf: Self.snippetURL, encoding: .utf8))
        #expect(snippet.count == 7)
        #expect(article.count == snippet.count, "the article has \(article.count) blocks, the snippet \(snippet.count)")
        for (index, (inArticle, inSnippet)) in zip(article, snippet).enumerated() {
            #expect(inArticle == inSnippet, "block \(index + 1) differs:\n\(inArticle)\n---\n\(inSnippet)")
        }
    }

    @Test("the article's code pulls the bytes it wrote and leaves both instances clean")
    func articleCodeRuns() throws {
        let outcome = try gettingStarted()
        let expected: [Int32] = Array(1032...1047)
        #expect(outcome.pulled == expected)
        for audit in [outcome.promptAudit, outcome.decoderAudit] {
            #expect(audit.liveCaches == 0 && audit.boundKeys == 0 && audit.pagesInUse == 0, "\(audit)")
            #expect(audit.pinnedByPeers == 0 && audit.orphans == 0, "\(audit)")
        }
    }

    /// The contents of each ```` ```swift ```` fence.
    static func swiftBlocks(inMarkdown text: String) -> [String] {
        blocks(in: text, opening: { $0 == "```swift" }, closing: { $0 == "```" }, line: { $0 })
    }

    /// The lines between `// article: begin` and `// article: end`, with the function body's indentation removed.
    static func markedRegions(inSwift text: String) -> [String] {
        blocks(
            in: text, opening: { $0.trimmingCharacters(in: .whitespaces) == "// article: begin" },
            closing: { $0.trimmingCharacters(in: .whitespaces) == "// article: end" },
            line: { $0.hasPrefix("    ") ? String($0.dropFirst(4)) : $0 })
    }

    private static func blocks(
        in text: String, opening: (String) -> Bool, closing: (String) -> Bool, line: (String) -> String
    ) -> [String] {
        var blocks: [String] = []
        var current: [String]?
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if var lines = current {
                if closing(raw) {
                    blocks.append(lines.joined(separator: "\n"))
                    current = nil
                } else {
                    lines.append(line(raw))
                    current = lines
                }
            } else if opening(raw) {
                current = []
            }
        }
        return blocks
    }
}
