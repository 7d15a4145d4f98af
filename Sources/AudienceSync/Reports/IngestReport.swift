/// One rejected line (or message of a batch envelope).
public struct IngestError: Sendable, Equatable, Encodable {
    /// The input file as the user named it (`-` is shown as `stdin`).
    public var file: String
    /// 1-based line number.
    public var line: Int
    /// For a message of a batch envelope: its 0-based index in `batch`.
    public var index: Int?
    public var reason: String

    public init(file: String, line: Int, index: Int? = nil, reason: String) {
        self.file = file
        self.line = line
        self.index = index
        self.reason = reason
    }

    /// `events.ndjson:12: reason` or `events.ndjson:12 [batch 3]: reason`.
    public var description: String {
        "\(file):\(line)" + (index.map { " [batch \($0)]" } ?? "") + ": \(reason)"
    }

    /// The record of the rejects file (`ingest --rejects`): the rejection and its `input` as read.
    /// Written with `JSONValue`, not an encoder, so that the input's numbers keep their text.
    func rejectsRecord(input: JSONValue) -> JSONValue {
        var members: [JSONValue.Member] = [.init("file", .string(file)), .init("line", .int(line))]
        if let index { members.append(.init("index", .int(index))) }
        members.append(.init("reason", .string(reason)))
        members.append(.init("input", input))
        return .object(members)
    }
}

/// What an ingest did (SPEC §10 `ingest`).
public struct IngestSummary: Sendable, Encodable {
    /// Messages newly stored.
    public var accepted = 0
    /// Valid messages whose `messageId` was already stored.
    public var duplicates = 0
    /// Rejected lines and batch messages.
    public var rejected = 0
    /// Newly stored messages without a `userId` (anonymous only).
    public var anonymous = 0
    /// Non-blank lines read.
    public var lines = 0
    public var bytes = 0
    /// The first rejections (at most `IngestOptions.maximumErrorsKept`); all go to the rejects file.
    public var errors: [IngestError] = []
    /// False when `--strict` refused the input: then nothing was stored.
    public var stored = true
    public var seconds = 0.0

    public var errorsOmitted: Int { rejected - errors.count }

    enum CodingKeys: String, CodingKey {
        case accepted, duplicates, rejected, anonymous, errors, errorsOmitted = "errors_omitted", stored, lines
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(accepted, forKey: .accepted)
        try container.encode(duplicates, forKey: .duplicates)
        try container.encode(rejected, forKey: .rejected)
        try container.encode(anonymous, forKey: .anonymous)
        try container.encode(errors, forKey: .errors)
        if errorsOmitted > 0 { try container.encode(errorsOmitted, forKey: .errorsOmitted) }
        try container.encode(stored, forKey: .stored)
        try container.encode(lines, forKey: .lines)
    }
}
