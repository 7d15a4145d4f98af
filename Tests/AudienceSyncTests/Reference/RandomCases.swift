@testable import AudienceSync

/// The library's SplitMix64 with the picks the case generator needs; seedable, so a failing seed
/// can be replayed exactly.
struct ReferenceRandom {
    var generator: SplitMix64

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    mutating func next() -> UInt64 { generator.next() }

    /// A number in `0..<count`.
    mutating func int(_ count: Int) -> Int { Int(next() % UInt64(count)) }

    /// True with probability `p`.
    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }

    mutating func pick<T>(_ items: [T]) -> T { items[int(items.count)] }

    /// `count` distinct items of `items` in their order.
    mutating func some<T>(_ items: [T], count: Int) -> [T] {
        var indexes = Array(items.indices)
        var chosen: [Int] = []
        for _ in 0..<min(count, items.count) { chosen.append(indexes.remove(at: int(indexes.count))) }
        return chosen.sorted().map { items[$0] }
    }
}

/// One random test case: messages over a small vocabulary and definitions over every construct of
/// SPEC §4, with the `now`s to evaluate them at. Equal seeds give equal cases.
struct RandomCase {
    static let baseNow = Timestamp.parse("2026-11-22T12:00:00Z")!
    static let minute: Int64 = 60_000
    static let hour: Int64 = 3_600_000
    static let day: Int64 = 86_400_000
    /// Absolute instants for `between:` windows; event times cluster around them too.
    static let instants: [Int64] = [baseNow - 10 * day, baseNow - 2 * day, baseNow - 7 * day, baseNow + day]

    let seed: UInt64
    let nows: [Int64]
    let messages: [JSONValue]
    /// The definition files, `key.yml` → YAML text.
    let files: [(path: String, text: String)]
    let definitions: DefinitionSet

    var ndjson: String { messages.map(\.jsonString).joined(separator: "\n") + "\n" }

    func yaml(_ key: String) -> String { files.first { $0.path == "\(key).yml" }?.text ?? "" }

    init(seed: UInt64) throws {
        self.seed = seed
        var random = ReferenceRandom(seed: seed &* 0x2545_F491_4F6C_DD1D &+ 1)
        let nows = [Self.baseNow, Self.baseNow - Self.day - 1, Self.baseNow + 3 * Self.day + Self.hour]
        self.nows = nows
        messages = Self.messages(&random, nows: nows)
        var generator = DefinitionGenerator(random: random)
        files = generator.files()
        definitions = try DefinitionSet.parse(files: files, configuration: ReferenceCase.configuration)
    }

    // MARK: Messages

    static let users = ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u\u{E9}"]
    static let anonymous = ["a1", "a2", "a3", "a4", "a5", "a6"]
    static let events = ["Order Completed", "Signed Up", "Viewed"]
    static let pages = ["Pricing", "Docs"]
    static let screens = ["Home", "Pricing"]

    /// JSON numbers as written: integers, doubles (one of them integral, one an exponent).
    static let numbers = ["-3", "0", "1", "2", "5", "10", "1.5", "5.0", "6.5", "-0.5", "1e1", "2.25"]
    /// Strings that look like numbers or differ only in case, normalization or UTF-16 order.
    static let strings = [
        "5", "10", "1.5", "true", "a", "b", "Abc", "abc", "\u{E9}", "e\u{301}", "\u{1F600}", "\u{FF5E}", "",
        "USD", "pro",
    ]

    static func scalar(_ random: inout ReferenceRandom) -> JSONValue {
        switch random.int(10) {
        case 0...3: return .number(random.pick(numbers))
        case 4...6: return .string(random.pick(strings))
        case 7, 8: return .bool(random.chance(0.5))
        default: return .null
        }
    }

    static func properties(_ random: inout ReferenceRandom) -> JSONValue {
        var members: [JSONValue.Member] = []
        func maybe(_ key: String, _ value: @autoclosure () -> JSONValue) {
            if random.chance(0.55) { members.append(JSONValue.Member(key, value())) }
        }
        maybe("total", scalar(&random))
        maybe("n", .number(random.pick(["0", "1", "2", "3", "2.0"])))
        maybe("label", random.chance(0.8) ? .string(random.pick(strings)) : scalar(&random))
        maybe("Plan Name", random.pick([.string("pro"), .string("Pro"), .string("free"), .null, .number("1")]))
        maybe("a.b", scalar(&random))
        maybe("currency", random.pick([.string("USD"), .string("EUR"), .string("usd"), .null]))
        if random.chance(0.5) {
            let meta: JSONValue =
                random.chance(0.8)
                ? .object([JSONValue.Member("tier", scalar(&random)), JSONValue.Member("x y", scalar(&random))])
                : scalar(&random)
            members.append(JSONValue.Member("meta", meta))
        }
        return .object(members)
    }

    static func traits(_ random: inout ReferenceRandom) -> JSONValue {
        var members: [JSONValue.Member] = []
        func maybe(_ key: String, _ value: @autoclosure () -> JSONValue) {
            if random.chance(0.5) { members.append(JSONValue.Member(key, value())) }
        }
        maybe("plan", random.pick([.string("pro"), .string("free"), .string("Pro"), .number("1"), .null]))
        maybe("age", random.pick([.number("30"), .number("30.0"), .string("30"), .number("41.5"), .number("7")]))
        maybe("vip", random.pick([.bool(true), .bool(false), .number("1"), .number("0"), .string("true")]))
        maybe("first name", .string(random.pick(strings)))
        maybe(
            "address",
            random.chance(0.7)
                ? .object([JSONValue.Member("city", random.pick([.string("Oslo"), .string("Rome"), .number("5")]))])
                : random.pick([.string("Oslo"), .null]))
        return .object(members)
    }

    /// Event times: mostly on or next to the window edges of every `now`, some at random, some after.
    static func time(_ random: inout ReferenceRandom, nows: [Int64]) -> Int64 {
        let now = random.pick(nows)
        switch random.int(10) {
        case 0...4:
            let edge = random.pick([
                0, Self.day, 3 * Self.day, 7 * Self.day, 30 * Self.day, 90 * Self.minute, 36 * Self.hour,
            ])
            return now - edge + random.pick([-1, 0, 0, 1])
        case 5:
            return random.pick(instants) + random.pick([-1, 0, 1])
        case 6:
            return now + random.pick([1, Self.hour, 2 * Self.day])
        default:
            return Self.baseNow - 40 * Self.day + Int64(random.int(45 * 24 * 60)) * Self.minute
        }
    }

    static func messages(_ random: inout ReferenceRandom, nows: [Int64]) -> [JSONValue] {
        var result: [JSONValue] = []
        let count = 25 + random.int(30)
        for index in 0..<count {
            var members: [JSONValue.Member] = []
            let type: String
            switch random.int(20) {
            case 0...10: type = "track"
            case 11, 12: type = "page"
            case 13: type = "screen"
            case 14...17: type = "identify"
            case 18: type = "group"
            default: type = "alias"
            }
            members.append(JSONValue.Member("type", .string(type)))
            // Message ids are not in time order, so ties at one instant are broken by them.
            members.append(JSONValue.Member("messageId", .string("m\(random.int(1000))-\(index)")))
            members.append(JSONValue.Member("timestamp", .string(Timestamp.format(time(&random, nows: nows)))))
            let user = random.pick(users)
            let anonymousId = random.pick(anonymous)
            if type == "alias" {
                members.append(JSONValue.Member("userId", .string(user)))
                members.append(JSONValue.Member("previousId", .string(anonymousId)))
                if random.chance(0.3) {
                    members.append(JSONValue.Member("anonymousId", .string(random.pick(anonymous))))
                }
            } else {
                switch random.int(20) {
                case 0...8: members.append(JSONValue.Member("userId", .string(user)))
                case 9...13:
                    members.append(JSONValue.Member("userId", .string(user)))
                    members.append(JSONValue.Member("anonymousId", .string(anonymousId)))
                default:
                    members.append(JSONValue.Member("anonymousId", .string(anonymousId)))
                    // Real clients send a null userId beside an anonymous id.
                    if random.chance(0.2) { members.append(JSONValue.Member("userId", .null)) }
                }
            }
            switch type {
            case "track":
                members.append(JSONValue.Member("event", .string(random.pick(events))))
                members.append(JSONValue.Member("properties", properties(&random)))
            case "page", "screen":
                if random.chance(0.9) {
                    members.append(JSONValue.Member("name", .string(random.pick(type == "page" ? pages : screens))))
                }
                members.append(JSONValue.Member("properties", properties(&random)))
            case "identify":
                if random.chance(0.9) { members.append(JSONValue.Member("traits", traits(&random))) }
            default:
                break
            }
            if random.chance(0.3) {
                let path = random.pick(["/pricing", "/docs", "/Pricing"])
                members.append(
                    JSONValue.Member(
                        "context",
                        .object([JSONValue.Member("page", .object([JSONValue.Member("path", .string(path))]))])))
            }
            result.append(.object(members))
        }
        return result
    }
}

/// Random definitions as YAML text (flow style), so that the real parser reads them.
struct DefinitionGenerator {
    var random: ReferenceRandom
    private var audiences: [String] = []
    private var computed: [String] = []

    init(random: ReferenceRandom) { self.random = random }

    /// Two computed traits and four audiences; each refers only to definitions made before it.
    mutating func files() -> [(path: String, text: String)] {
        var files: [(path: String, text: String)] = []
        for index in 0..<2 {
            let key = "c\(index)"
            files.append(
                ("\(key).yml", "name: Trait \(index)\nkey: \(key)\nkind: computed_trait\ncompute: \(compute())\n"))
            computed.append(key)
        }
        for index in 0..<4 {
            let key = "a\(index)"
            files.append(("\(key).yml", "name: Audience \(index)\nkey: \(key)\ncondition: \(condition(depth: 0))\n"))
            audiences.append(key)
        }
        return files
    }

    // MARK: Pieces

    static let durations = ["1d", "3d", "7d", "30d", "90m", "1d12h", "2h"]

    mutating func window() -> String? {
        switch random.int(10) {
        case 0...3: return nil
        case 4...6: return "within: \(random.pick(Self.durations))"
        case 7, 8: return "between_ago: \(random.pick(["[1d, 7d]", "[3d, 30d]", "[90m, 3d]", "[2h, 1d12h]"]))"
        default:
            let pairs = [(0, 1), (2, 1), (2, 3), (0, 3)]
            let (start, end) = random.pick(pairs)
            return
                "between: [\"\(Timestamp.format(RandomCase.instants[start]))\", \"\(Timestamp.format(RandomCase.instants[end]))\"]"
        }
    }

    static let eventPaths = [
        "properties.total", "properties.n", "properties.label", "properties.\"Plan Name\"", "properties.\"a.b\"",
        "properties.meta", "properties.meta.tier", "properties.meta.\"x y\"", "properties.currency",
        "context.page.path", "properties.missing",
    ]
    static let traitPaths = ["plan", "age", "vip", "\"first name\"", "address.city", "address", "missing"]
    /// Paths of scalar values only, for `compute.property`.
    static let computePaths = [
        "properties.total", "properties.n", "properties.label", "properties.\"Plan Name\"", "properties.\"a.b\"",
        "properties.meta.tier", "properties.currency", "properties.missing",
    ]

    /// A YAML single-quoted scalar (paths contain double quotes).
    static func single(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }

    mutating func literal(numbersOnly: Bool = false) -> String {
        if numbersOnly || random.chance(0.45) { return random.pick(RandomCase.numbers) }
        if random.chance(0.2) { return random.chance(0.5) ? "true" : "false" }
        return Literal.quote(random.pick(RandomCase.strings))
    }

    mutating func ordered(numbersOnly: Bool = false) -> String {
        numbersOnly || random.chance(0.55)
            ? random.pick(RandomCase.numbers) : Literal.quote(random.pick(RandomCase.strings))
    }

    /// One to two operators as `op: operand` entries.
    mutating func operators(numbersOnly: Bool = false) -> [String] {
        let all = [
            "eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "not_contains", "starts_with",
            "ends_with", "exists",
        ]
        return random.some(all, count: 1 + random.int(2)).map { op in
            switch op {
            case "eq", "ne": return "\(op): \(literal(numbersOnly: numbersOnly))"
            case "gt", "gte", "lt", "lte": return "\(op): \(ordered(numbersOnly: numbersOnly))"
            case "in", "not_in":
                let items = (0..<random.int(4)).map { _ in literal(numbersOnly: numbersOnly) }
                return "\(op): [\(items.joined(separator: ", "))]"
            case "exists": return "exists: \(random.chance(0.5))"
            default:
                let needle = random.pick(["a", "b", "A", "", "5", "\u{E9}", "e", "US", "D", "/p", "ro"])
                return "\(op): \(Literal.quote(needle))"
            }
        }
    }

    /// A scalar (meaning eq) or a mapping of operators.
    mutating func predicate() -> String {
        random.chance(0.3) ? literal() : "{\(operators().joined(separator: ", "))}"
    }

    mutating func filters(max: Int) -> String? {
        let count = random.int(max + 1)
        guard count > 0 else { return nil }
        let paths = random.some(Self.eventPaths, count: count)
        return "where: {" + paths.map { "\(Self.single($0)): \(predicate())" }.joined(separator: ", ") + "}"
    }

    static let counts = [
        "{gte: 1}", "{gte: 2}", "{lte: 1}", "{lte: 2}", "{eq: 0}", "{eq: 1}", "2", "{ne: 1}", "{gt: 0, lt: 3}",
        "{in: [0, 2]}", "{not_in: [1]}", "{lte: 0}", "{gte: 1.5}",
    ]

    mutating func eventHead() -> String {
        switch random.int(10) {
        case 0...6:
            return "performed: \(Literal.quote(random.pick(RandomCase.events + (random.chance(0.1) ? ["Nope"] : []))))"
        case 7, 8: return "performed_page: \(Literal.quote(random.pick(RandomCase.pages)))"
        default: return "performed_screen: \(Literal.quote(random.pick(RandomCase.screens)))"
        }
    }

    mutating func condition(depth: Int) -> String {
        while true {
            switch random.int(20) {
            case 0...5:
                var parts = [eventHead()]
                if let filters = filters(max: 2) { parts.append(filters) }
                if random.chance(0.4) { parts.append("count: \(random.pick(Self.counts))") }
                if let window = window() { parts.append(window) }
                return "{\(parts.joined(separator: ", "))}"
            case 6, 7:
                return "{trait: \(Self.single(random.pick(Self.traitPaths))), \(operators().joined(separator: ", "))}"
            case 8, 9:
                guard !computed.isEmpty else { continue }
                return
                    "{computed: \(random.pick(computed)), \(operators(numbersOnly: random.chance(0.7)).joined(separator: ", "))}"
            case 10:
                guard !audiences.isEmpty else { continue }
                return "{in_audience: \(random.pick(audiences))}"
            case 11, 12:
                var steps: [String] = []
                for index in 0..<(2 + random.int(2)) {
                    var parts = [eventHead()]
                    if let filters = filters(max: 1) { parts.append(filters) }
                    if index > 0, random.chance(0.6) {
                        parts.append("within_previous: \(random.pick(["1d", "3d", "7d", "2h", "36h"]))")
                    }
                    steps.append("{\(parts.joined(separator: ", "))}")
                }
                let window = window().map { ", \($0)" } ?? ""
                return "{sequence: [\(steps.joined(separator: ", "))]\(window)}"
            case 13...16:
                guard depth < 2 else { continue }
                let parts = (0..<(1 + random.int(3))).map { _ in condition(depth: depth + 1) }
                return "{\(random.chance(0.5) ? "all" : "any"): [\(parts.joined(separator: ", "))]}"
            default:
                guard depth < 2 else { continue }
                return "{not: \(condition(depth: depth + 1))}"
            }
        }
    }

    mutating func compute() -> String {
        let op = random.pick(ComputeSpec.Operation.allCases)
        var parts = ["op: \(op.rawValue)", "event: \(Literal.quote(random.pick(RandomCase.events)))"]
        if op != .count { parts.append("property: \(Self.single(random.pick(Self.computePaths)))") }
        if let filters = filters(max: 1) { parts.append(filters) }
        if let window = window() { parts.append(window) }
        if op == .mostFrequent, random.chance(0.5) { parts.append("min_frequency: \(1 + random.int(3))") }
        return "{\(parts.joined(separator: ", "))}"
    }
}
