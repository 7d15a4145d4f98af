import Foundation
import Logging
import Testing

@testable import AudienceSync

/// The fixed "now" of the ingest tests: 2026-11-22T12:00:00Z, the demo time.
let ingestNow: Int64 = 1_795_348_800_000

/// A logger that drops everything, so tests print nothing.
let silentLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// Milliseconds of an ISO-8601 time written in a test; fails the test when it does not parse.
func millis(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> Int64 {
    guard let value = Timestamp.parse(text) else {
        Issue.record("not a time: \(text)", sourceLocation: sourceLocation)
        return 0
    }
    return value
}

/// A temporary folder with an event store in it, and shortcuts to ingest text and query rows.
final class IngestHarness {
    let directory: TemporaryDirectory
    let databasePath: String
    let store: SQLiteStore
    private var inputs = 0

    init() async throws {
        directory = try TemporaryDirectory()
        databasePath = directory.file("audiences.db")
        store = try await SQLiteStore(path: databasePath)
    }

    /// Ingests the given files with one `Ingester` (as one `ingest` command does).
    func ingest(paths: [String], options: IngestOptions) async throws -> IngestSummary {
        try await Ingester(sink: store, options: options, logger: silentLogger).run(paths)
    }

    /// Writes `bytes` to a new input file in the folder and returns its path.
    func input(_ bytes: [UInt8], name: String? = nil) throws -> String {
        inputs += 1
        let path = directory.file(name ?? "input-\(inputs).ndjson")
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw AudienceSyncError(.io, "cannot write the test input", file: path)
        }
        return path
    }

    /// Ingests `text` as one file (written as is: the caller chooses the line ends).
    func ingest(
        _ text: String, strict: Bool = false, rejects: String? = nil, now: Int64 = ingestNow,
        transactionSize: Int? = nil
    ) async throws -> IngestSummary {
        try await ingest(
            bytes: Array(text.utf8), strict: strict, rejects: rejects, now: now, transactionSize: transactionSize)
    }

    func ingest(
        bytes: [UInt8], strict: Bool = false, rejects: String? = nil, now: Int64 = ingestNow,
        transactionSize: Int? = nil
    ) async throws -> IngestSummary {
        var options = IngestOptions(strict: strict, rejectsPath: rejects, now: now)
        if let transactionSize { options.transactionSize = transactionSize }
        return try await ingest(paths: [try input(bytes)], options: options)
    }

    /// Ingests `lines`, each followed by a newline.
    func ingest(lines: [String], strict: Bool = false, now: Int64 = ingestNow) async throws -> IngestSummary {
        try await ingest(lines.map { $0 + "\n" }.joined(), strict: strict, now: now)
    }

    func execute(_ sql: String) async throws {
        try await store.connection.run { try $0.execute(sql) }
    }

    func scalar(_ sql: String, _ values: [SQLiteValue] = []) async throws -> SQLiteValue? {
        try await store.connection.run { try $0.prepare(sql).scalar(values) }
    }

    func rows(_ sql: String, _ values: [SQLiteValue] = []) async throws -> [[SQLiteValue]] {
        try await store.connection.run { try $0.prepare(sql).rows(values) }
    }

    /// The stored message JSON of `messageId`, parsed; nil when it is not stored.
    func message(_ messageId: String) async throws -> JSONValue? {
        guard let text = try await scalar("SELECT message FROM events WHERE message_id = ?", [.text(messageId)])?.string
        else { return nil }
        return try JSONValue.parse(text)
    }

    /// The event time (`ts`, epoch ms UTC) stored for `messageId`.
    func eventTime(_ messageId: String) async throws -> Int64? {
        try await scalar("SELECT ts FROM events WHERE message_id = ?", [.text(messageId)])?.int64
    }

    /// Every stored message id, sorted.
    func messageIds() async throws -> [String] {
        try await rows("SELECT message_id FROM events ORDER BY message_id").compactMap { $0[0].string }
    }

    /// The bytes of the database file and its write-ahead log, to search for what must never be stored.
    func databaseBytes() throws -> [UInt8] {
        var bytes: [UInt8] = []
        for suffix in ["", "-wal"] {
            if let data = FileManager.default.contents(atPath: databasePath + suffix) { bytes += data }
        }
        return bytes
    }
}

extension Array where Element == UInt8 {
    /// Whether `needle`'s UTF-8 bytes occur anywhere in these bytes.
    func containsBytes(of needle: String) -> Bool {
        let pattern = Array(needle.utf8)
        guard !pattern.isEmpty, pattern.count <= count else { return false }
        return (0...(count - pattern.count)).contains { start in
            self[start] == pattern[0] && Array(self[start..<(start + pattern.count)]) == pattern
        }
    }
}
