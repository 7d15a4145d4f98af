/// A test on one value: one or more comparisons, all of which must hold (SPEC §4.2).
///
/// Written as a scalar (`USD`, meaning `eq: USD`) or a mapping of operators
/// (`{gte: 10, lt: 100}`). Comparisons are strictly typed: a value of another type than the
/// operand, or a missing value, makes the positive operators false, and `ne`, `not_in`,
/// `not_contains` are exactly their negations.
public struct Predicate: Hashable, Sendable, CustomStringConvertible {
    /// The comparisons, in the order written; never empty.
    public var comparisons: [Comparison]

    public init(_ comparisons: [Comparison]) { self.comparisons = comparisons }

    /// `eq: value`.
    public static func equals(_ value: Literal) -> Predicate { Predicate([.eq(value)]) }

    /// The default `count` of `performed`: at least one matching event.
    public static let atLeastOne = Predicate([.gte(.integer(1))])

    /// The operator names, as written in definition files.
    public enum Operator: String, CaseIterable, Sendable {
        case eq, ne, gt, gte, lt, lte
        case `in` = "in"
        case notIn = "not_in"
        case contains
        case notContains = "not_contains"
        case startsWith = "starts_with"
        case endsWith = "ends_with"
        case exists
    }

    /// One operator with its operand. Operands are checked when parsed:
    /// - `eq`/`ne`: a string, number or boolean (never null: `exists` tests for null);
    /// - `gt`/`gte`/`lt`/`lte`: a string or a number;
    /// - `in`/`not_in`: strings, numbers or booleans (possibly mixed, possibly none);
    /// - `contains`/`not_contains`/`starts_with`/`ends_with`: a string, matched case-sensitively;
    /// - `exists`: `true` (present and not null) or `false` (missing or null).
    public enum Comparison: Hashable, Sendable {
        case eq(Literal)
        case ne(Literal)
        case gt(Literal)
        case gte(Literal)
        case lt(Literal)
        case lte(Literal)
        case `in`([Literal])
        case notIn([Literal])
        case contains(String)
        case notContains(String)
        case startsWith(String)
        case endsWith(String)
        case exists(Bool)

        public var `operator`: Operator {
            switch self {
            case .eq: return .eq
            case .ne: return .ne
            case .gt: return .gt
            case .gte: return .gte
            case .lt: return .lt
            case .lte: return .lte
            case .in: return .in
            case .notIn: return .notIn
            case .contains: return .contains
            case .notContains: return .notContains
            case .startsWith: return .startsWith
            case .endsWith: return .endsWith
            case .exists: return .exists
            }
        }

        /// The operand as a JSON value (a list for `in`/`not_in`, a string or boolean otherwise).
        public var operand: Literal {
            switch self {
            case .eq(let value), .ne(let value), .gt(let value), .gte(let value), .lt(let value), .lte(let value):
                return value
            case .in(let values), .notIn(let values): return .list(values)
            case .contains(let text), .notContains(let text), .startsWith(let text), .endsWith(let text):
                return .string(text)
            case .exists(let flag): return .bool(flag)
            }
        }

        /// Whether this is a negation (`ne`, `not_in`, `not_contains`, `exists: false`), which holds
        /// for a missing value.
        public var isNegative: Bool {
            switch self {
            case .ne, .notIn, .notContains: return true
            case .exists(let flag): return !flag
            default: return false
            }
        }
    }

    /// `{gte: 1, lt: 5}` in the definition language.
    public var description: String {
        "{" + comparisons.map { "\($0.operator.rawValue): \($0.operand.json)" }.joined(separator: ", ") + "}"
    }
}
