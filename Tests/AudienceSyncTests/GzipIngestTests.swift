import Foundation
import SharedTestSupport
import Testing

@testable import AudienceSync

/// Ingesting gzip files: the same as their text, and what was read before a broken stream is kept.
@Suite struct GzipIngestTests {
    static let demoPath = repositoryRoot + "/fixtures/demo/events.ndjson"

    struct Outcome: Equatable {
        var accepted: Int, duplicates: Int, rejected: Int, anonymous: Int, lines: Int
        var errors: [String]
        var messageIds: [String]
        var messages: [String]
    }

    /// What ingesting `path` stored, with the error lines' file names left out.
    private func outcome(of harness: IngestHarness, _ summary: IngestSummary) async throws -> Outcome {
        Outcome(
            accepted: summary.accepted, duplicates: summary.duplicates, rejected: summary.rejected,
            anonymous: summary.anonymous, lines: summary.lines,
            errors: summary.errors.map { "\($0.line) \($0.index.map(String.init) ?? "-") \($0.reason)" },
            messageIds: try await harness.messageIds(),
            messages: try await harness.rows("SELECT message FROM events ORDER BY seq").compactMap { $0[0].string })
    }

    /// A gzip copy whose name says nothing of gzip ingests exactly like the text it holds.
    @Test(arguments: ["events.ndjson", "events-2026-11-22.json.gz", "events"])
    func aGzipFileIngestsLikeItsText(name: String) async throws {
        let text = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.demoPath)))
        let plain = try await IngestHarness()
        let plainOutcome = try await outcome(of: plain, try plain.ingest(bytes: text))
        let zipped = try await IngestHarness()
        let path = try zipped.input(gzip(text), name: name)
        let summary = try await zipped.ingest(paths: [path], options: IngestOptions(now: ingestNow))
        await #expect(try outcome(of: zipped, summary) == plainOutcome)
        #expect(summary.errors.allSatisfy { $0.file == path })
        #expect(plainOutcome.accepted == 62)
    }

    /// The demo events split in three, as three gzip members in one file.
    @Test func aMultiMemberFileIngestsLikeItsText() async throws {
        let text = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.demoPath)))
        let plain = try await IngestHarness()
        let plainOutcome = try await outcome(of: plain, try plain.ingest(bytes: text))
        let thirds = [0, text.count / 3, 2 * text.count / 3, text.count]
        let members = (0..<3).flatMap { gzip(Array(text[thirds[$0]..<thirds[$0 + 1]])) }
        let zipped = try await IngestHarness()
        await #expect(try outcome(of: zipped, try zipped.ingest(bytes: members)) == plainOutcome)
    }

    /// The lines before the cut are stored as if the file had ended there; the error names the
    /// file and the last line read.
    @Test(arguments: [1, 100_000])
    func aTruncatedFileKeepsTheLinesBeforeTheCut(transactionSize: Int) async throws {
        let text = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.demoPath)))
        let compressed = gzip(text)
        let harness = try await IngestHarness()
        let path = try harness.input(Array(compressed[0..<(compressed.count / 2)]), name: "events.json.gz")
        var options = IngestOptions(now: ingestNow)
        options.transactionSize = transactionSize
        let errors = await errorLines { _ = try await harness.ingest(paths: [path], options: options) }
        let reached = try #require(errors.first.flatMap(Self.lineReached))
        #expect(errors == ["\(path): gzip stream truncated after line \(reached)"])
        #expect(reached > 10 && reached < 66)

        // Exactly what ingesting those lines as text stores.
        let lines = String(decoding: text, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let prefix = try await IngestHarness()
        _ = try await prefix.ingest(lines.prefix(reached).joined(separator: "\n") + "\n")
        await #expect(try harness.messageIds() == (try prefix.messageIds()))
        await #expect(try harness.messageIds().count > 0)
    }

    @Test func aCorruptFileKeepsTheLinesBeforeTheDamage() async throws {
        let text = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.demoPath)))
        var compressed = gzip(text)
        compressed[compressed.count - 8] ^= 0x01  // the CRC: every line decodes, the check fails
        let harness = try await IngestHarness()
        let path = try harness.input(compressed, name: "events.ndjson")
        let errors = await errorLines { _ = try await harness.ingest(paths: [path], options: IngestOptions(now: ingestNow)) }
        #expect(errors == ["\(path): gzip stream corrupt after line 66: incorrect data check"])
        let plain = try await IngestHarness()
        _ = try await plain.ingest(bytes: text)
        await #expect(try harness.messageIds() == (try plain.messageIds()))
    }

    /// Under --strict a broken stream is bad input like a bad line: nothing is stored.
    @Test func strictStoresNothingFromATruncatedFile() async throws {
        let harness = try await IngestHarness()
        let good = try harness.input(Array("{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\"}\n".utf8))
        // Valid lines only, so that nothing but the cut makes the input bad.
        let compressed = gzip(GzipLineReaderTests.sampleLines(50).joined(separator: "\n") + "\n")
        let cut = try harness.input(Array(compressed.dropLast(4)))
        let errors = await errorLines {
            _ = try await harness.ingest(paths: [good, cut], options: IngestOptions(strict: true, now: ingestNow))
        }
        #expect(errors.count == 1)
        #expect(errors.first?.contains("gzip stream truncated after line") == true)
        await #expect(try harness.messageIds().isEmpty)
    }

    /// `N` of "… gzip stream truncated after line N".
    static func lineReached(_ error: String) -> Int? {
        guard let range = error.range(of: "after line ") else { return nil }
        return Int(error[range.upperBound...].prefix { $0.isNumber })
    }
}
