import Foundation
import Logging

public struct IngestOptions: Sendable {
    /// Store nothing when any line is bad.
    public var strict = false
    /// Write rejected lines with their reasons here, as NDJSON.
    public var rejectsPath: String?
    /// Event time for messages without any timestamp; also recorded as `received_at`.
    public var now: Int64
    /// Messages per transaction (outside `strict`, where there is one transaction).
    public var transactionSize = 100_000
    /// Distinct user ids (or links) numbered before the numbering starts over (`IdentityNumbers`).
    var identityNumberLimit = 1 << 20
    /// SQLite: WAL size past which a transaction waits for the checkpoint of the last commit (the
    /// store's default when nil).
    var walLimitBytes: Int?
    public static let maximumErrorsKept = 1000

    public init(strict: Bool = false, rejectsPath: String? = nil, now: Int64) {
        self.strict = strict
        self.rejectsPath = rejectsPath
        self.now = now
    }
}

/// Progress of a long ingest, reported about every 100,000 lines.
public struct IngestProgress: Sendable {
    public var lines: Int
    public var bytes: Int
    public var accepted: Int
    public var seconds: Double
}

/// Streams NDJSON into an event sink (SPEC §3.1): validates each line, stores the valid messages
/// in large transactions, and counts duplicates and rejections.
///
/// Two actors share the work, each on a thread of its own: an `InputReader` reads and validates
/// lines into batches while the sink's writer stores the batch before, so parsing runs on one
/// core while the database runs on the other. One `Ingester` per command: `run` with its inputs.
public final class Ingester {
    private let sink: any EventSink
    private let options: IngestOptions
    private let logger: Logger
    private let progress: ((IngestProgress) -> Void)?
    private var summary = IngestSummary()
    private let started = Date()
    /// Parses the inputs; carries the identity numbering from one input to the next.
    private var stager: LineStager
    private var rejects: FileHandle?
    private var lastProgressLines = 0

    public init(
        sink: any EventSink, options: IngestOptions, logger: Logger, progress: ((IngestProgress) -> Void)? = nil
    ) throws {
        self.sink = sink
        self.options = options
        self.logger = logger
        self.progress = progress
        stager = LineStager(
            validator: MessageValidator(ingestTime: options.now, textLimits: sink.textLimits), strict: options.strict,
            identities: IdentityNumbers(limit: options.identityNumberLimit))
        if let path = options.rejectsPath {
            guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path)
            else {
                throw AudienceSyncError(.io, "cannot write the rejects file", file: path)
            }
            rejects = handle
        }
    }

    /// Ingests `paths` in order (`-` is standard input) and returns the summary. Transactions
    /// committed before a failure stay; what was not committed is rolled back. A read failure ends
    /// the ingest after storing what was read before it (nothing under `--strict`).
    public func run(_ paths: [String]) async throws -> IngestSummary {
        var writerOptions = EventWriterOptions(transactionSize: options.strict ? nil : options.transactionSize)
        writerOptions.walLimitBytes = options.walLimitBytes
        do {
            try await sink.withEventWriter(writerOptions) { writer in
                for path in paths { try await ingest(path, into: writer) }
                if summary.stored { try await writer.commit() }
            }
        } catch {
            do {
                try closeRejects()
            } catch let closing {
                logger.warning("cannot finish the rejects file", metadata: ["error": "\(closing)"])
            }
            throw error
        }
        try closeRejects()
        summary.seconds = Date().timeIntervalSince(started)
        logger.info(
            "ingest finished",
            metadata: [
                "accepted": "\(summary.accepted)", "duplicates": "\(summary.duplicates)",
                "rejected": "\(summary.rejected)", "anonymous": "\(summary.anonymous)",
                "seconds": "\(summary.seconds)",
            ])
        return summary
    }

    private func closeRejects() throws {
        guard let rejects else { return }
        self.rejects = nil
        try rejects.synchronize()
        try rejects.close()
    }

    /// Reads one input, storing each batch while the reader stages the next.
    private func ingest(_ path: String, into writer: any EventWriter) async throws {
        let reader = try InputReader(path: path, stager: stager)
        let bytesBefore = summary.bytes
        var next = await reader.next()
        while let batch = next {
            async let following = reader.next()
            try await store(batch, into: writer)
            summary.bytes = bytesBefore + batch.bytes
            if var failure = batch.failure {
                // What was read before the failure is kept, like any valid line; under --strict a
                // broken input is bad input, and nothing is stored.
                if summary.stored && !options.strict { try await writer.commit() }
                if var error = failure as? AudienceSyncError, error.file == nil {
                    error.file = reader.name
                    failure = error
                }
                throw failure
            }
            if summary.lines - lastProgressLines >= 100_000 {
                lastProgressLines = summary.lines
                progress?(
                    IngestProgress(
                        lines: summary.lines, bytes: summary.bytes, accepted: summary.accepted,
                        seconds: Date().timeIntervalSince(started)))
            }
            next = await following
        }
        stager = await reader.finish()
    }

    private func store(_ batch: StagedBatch, into writer: any EventWriter) async throws {
        summary.lines += batch.lines
        for rejected in batch.rejected { try await reject(rejected, writer: writer) }
        guard summary.stored else { return }
        let counts = try await writer.write(batch)
        summary.accepted += counts.accepted
        summary.duplicates += counts.duplicates
        summary.anonymous += counts.anonymous
    }

    // MARK: Rejections

    private func reject(_ rejected: StagedBatch.Rejected, writer: any EventWriter) async throws {
        let error = rejected.error
        summary.rejected += 1
        if summary.errors.count < IngestOptions.maximumErrorsKept { summary.errors.append(error) }
        logger.debug("rejected", metadata: ["where": "\(error.file):\(error.line)", "reason": "\(error.reason)"])
        if options.strict && summary.stored {
            // Nothing may be stored: undo this run's work; the stager stops staging messages.
            await writer.rollback()
            summary.stored = false
            summary.accepted = 0
            summary.duplicates = 0
            summary.anonymous = 0
        }
        if let rejects {
            var bytes: [UInt8] = []
            error.rejectsRecord(input: rejected.input).write(into: &bytes, sortedKeys: false)
            bytes.append(0x0A)
            try rejects.write(contentsOf: bytes)
        }
    }

    /// The rejected input as it will be written to the rejects file: the JSON value when it parses
    /// (without any `writeKey`, also those of the messages of a batch), else the text — unless it may
    /// hold a write key, which is never written anywhere.
    static func rejectedInput(_ input: UnsafeBufferPointer<UInt8>?) -> JSONValue {
        guard let input else { return .null }
        if let value = try? JSONValue.parse(input) { return withoutWriteKeys(value) }
        let text = String(decoding: input, as: UTF8.self)
        if text.contains("writeKey") { return .string("(withheld: the line may contain a write key)") }
        return .string(text)
    }

    /// `value` with every `writeKey` member removed, at any depth (nesting is bounded by the scanner).
    private static func withoutWriteKeys(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let members):
            return .object(members.filter { $0.key != "writeKey" }.map { .init($0.key, withoutWriteKeys($0.value)) })
        case .array(let elements): return .array(elements.map(withoutWriteKeys))
        default: return value
        }
    }
}
