/// An error a user can act on: what went wrong, where (file, line, column), and what was expected.
///
/// `description` reads as one sentence, prefixed by the location when there is one:
/// `audiences/nps.yml:7:5: unknown operator 'lessThan' (expected one of eq, ne, gt, …)`.
public struct AudienceSyncError: Error, CustomStringConvertible, Sendable {
    /// The class of failure (the command line turns it into an exit status, SPEC §8).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case usage, configuration, definition, input, store, io, locked, delivery
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// Bad command-line usage.
        public static let usage = Code(.usage)
        /// `audience-sync.yml` is missing or malformed.
        public static let configuration = Code(.configuration)
        /// A definition file is malformed.
        public static let definition = Code(.definition)
        /// Input data (events) could not be read or is malformed as a whole.
        public static let input = Code(.input)
        /// The store (the database) failed or refused.
        public static let store = Code(.store)
        /// A file could not be read or written.
        public static let io = Code(.io)
        /// Another process holds the sync lock, or the store stayed locked by another writer.
        public static let locked = Code(.locked)
        /// A destination refused or could not be reached.
        public static let delivery = Code(.delivery)

        /// Whether nothing was done because of how the program was called or configured
        /// (usage, configuration, definitions): SPEC §8's "nothing was done".
        public var isUsage: Bool { value == .usage || value == .configuration || value == .definition }

        public var description: String { "\(value)" }
    }

    public var code: Code
    public var message: String
    /// The file the error is about, as the user named it.
    public var file: String?
    /// 1-based line in `file`.
    public var line: Int?
    /// 1-based column in `file` (YAML).
    public var column: Int?
    /// The error that caused this one, if any.
    public var underlying: (any Error & Sendable)?

    public init(
        _ code: Code, _ message: String, file: String? = nil, line: Int? = nil, column: Int? = nil,
        underlying: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.underlying = underlying
    }

    /// `file:line:col: ` (as much of it as is known), or empty.
    public var location: String {
        guard let file else { return "" }
        var text = file
        if let line {
            text += ":\(line)"
            if let column { text += ":\(column)" }
        }
        return text + ": "
    }

    public var description: String {
        var text = location + message
        if let underlying { text += " (\(underlying))" }
        return text
    }
}

/// Several errors found in one pass (for example every bad definition file), reported together.
public struct AudienceSyncErrors: Error, CustomStringConvertible, Sendable {
    public var errors: [AudienceSyncError]
    public init(_ errors: [AudienceSyncError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
