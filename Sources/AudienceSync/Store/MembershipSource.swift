/// Runs the statements the query compiler makes (SPEC §4): a definition's statement returns its
/// rows in the byte order of user ids, in one set-based statement inside the database.
public protocol MembershipSource: Sendable {
    /// How this store's engine spells what engines spell differently.
    var dialect: any SQLDialect { get }

    /// The user ids of an audience statement's rows (`uid`), in the statement's order.
    func memberIDs(_ query: CompiledQuery) async throws -> [String]

    /// The `(uid, value)` rows of a computed trait's statement, the value as JSON text, in order.
    func memberValues(_ query: CompiledQuery) async throws -> [MemberValue]

    /// Every row of a small query (explain's per-user checks, counts).
    func rows(_ query: CompiledQuery) async throws -> [[SQLValue]]

    /// The engine's plan for a query, as text (for the benchmark's verbose output).
    func plan(_ query: CompiledQuery) async throws -> String
}

/// A user's value of a computed trait, as JSON text.
public struct MemberValue: Sendable, Equatable {
    public var userId: String
    public var value: String

    public init(userId: String, value: String) {
        self.userId = userId
        self.value = value
    }
}
