import Foundation
import Testing

@testable import AudienceSync

/// The oracle itself, checked against the hand-computed demo results (`fixtures/demo/EVENTS.md`)
/// and against small hand-made cases for each operator and condition head.
@Suite struct ReferenceEvaluatorTests {
    static let demoNow = Timestamp.parse("2026-11-22T12:00:00Z")!
    static let day: Int64 = 86_400_000

    static func demo() throws -> ReferenceEvaluator {
        let folder = repositoryRoot + "/fixtures/demo"
        let configuration = try Configuration.load(file: folder + "/audience-sync.yml")
        let definitions = try DefinitionSet.load(directory: configuration.definitionsPath, configuration: configuration)
        let text = try String(contentsOfFile: folder + "/events.ndjson", encoding: .utf8)
        return ReferenceEvaluator(messages: ReferenceEvaluator.messages(ndjson: text), definitions: definitions)
    }

    // MARK: The demo (EVENTS.md)

    @Test func demoInput() async throws {
        let oracle = try Self.demo()
        // 63 valid messages, one of them a duplicate.
        #expect(oracle.messages.count == 62)
        #expect(
            oracle.universe(now: Self.demoNow).sorted() == [
                "u_ada", "u_ben", "u_cleo", "u_dev", "u_eli", "u_fay", "u_gus", "u_hana", "u_ivan", "u_jade", "u_kai",
                "u_lea",
            ])
        #expect(oracle.linkedUser("1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d08", now: Self.demoNow) == "u_hana")
        #expect(oracle.linkedUser("2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e09", now: Self.demoNow) == "u_ivan")
        #expect(oracle.linkedUser("9e7d3c2b-4f1a-4b8c-8d6e-5a4b3c2d1e0f", now: Self.demoNow) == nil)
        #expect(oracle.traits("u_jade", now: Self.demoNow)["plan"] == .string("pro"))
        #expect(oracle.traits("u_jade", now: Timestamp.parse("2026-11-19T15:59:59.999Z")!)["plan"] == .string("free"))
    }

    @Test func demoAudiences() async throws {
        let oracle = try Self.demo()
        let now = Self.demoNow
        #expect(oracle.members("nps_detractors", now: now) == ["u_ben", "u_dev", "u_hana"])
        #expect(
            oracle.members("order_completed_last_30days", now: now)
                == ["u_ada", "u_cleo", "u_dev", "u_gus", "u_hana", "u_ivan", "u_kai"])
        #expect(oracle.members("engaged_non_buyers", now: now) == ["u_ben", "u_eli", "u_fay", "u_jade"])
        #expect(oracle.members("signup_to_order_7d", now: now) == ["u_cleo", "u_ivan"])
    }

    @Test func demoComputedTrait() async throws {
        let values = try Self.demo().values("total_spent_90_days", now: Self.demoNow)
        let expected: [String: Double] = [
            "u_ada": 200.5, "u_ben": 19.99, "u_cleo": 49, "u_dev": 150, "u_eli": 75, "u_fay": 60, "u_gus": 35,
            "u_hana": 89.9, "u_ivan": 210,
        ]
        #expect(Set(values.keys) == Set(expected.keys))
        for (user, value) in expected {
            #expect(values[user].flatMap(\.doubleValue).map { abs($0 - value) < 1e-9 } == true, "\(user)")
        }
    }

    /// EVENTS.md, "Two and a half hours later": both files ingested, now = 14:30.
    @Test func demoLater() async throws {
        let folder = repositoryRoot + "/fixtures/demo"
        let text =
            try String(contentsOfFile: folder + "/events.ndjson", encoding: .utf8) + "\n"
            + String(contentsOfFile: folder + "/events-later.ndjson", encoding: .utf8)
        let base = try Self.demo()
        let oracle = ReferenceEvaluator(
            messages: ReferenceEvaluator.messages(ndjson: text), definitions: base.definitions)
        let now = Timestamp.parse("2026-11-22T14:30:00Z")!
        #expect(oracle.members("nps_detractors", now: now) == ["u_ben", "u_dev", "u_hana", "u_kai", "u_lea"])
        #expect(
            oracle.members("order_completed_last_30days", now: now)
                == ["u_ada", "u_ben", "u_cleo", "u_dev", "u_gus", "u_hana", "u_ivan", "u_kai"])
        #expect(oracle.members("engaged_non_buyers", now: now) == ["u_eli", "u_fay", "u_jade", "u_max"])
        #expect(oracle.members("signup_to_order_7d", now: now) == ["u_cleo", "u_ivan"])
        let values = oracle.values("total_spent_90_days", now: now)
        #expect(values["u_ben"].flatMap(\.doubleValue).map { abs($0 - 78.99) < 1e-9 } == true)
        #expect(values["u_cleo"].flatMap(\.doubleValue).map { abs($0 - 64.5) < 1e-9 } == true)
        #expect(values["u_dev"].flatMap(\.doubleValue) == 150)
    }
}

// MARK: Hand-made cases

/// Builds small oracles from messages written as JSON and definitions written as YAML.
struct ReferenceCase {
    static let now = Timestamp.parse("2026-11-22T12:00:00Z")!
    static let day: Int64 = 86_400_000
    static let configuration = Configuration(
        file: "audience-sync.yml", directory: "", databasePath: "audiences.db", definitionsPath: "audiences")

    var messages: [JSONValue] = []
    var definitions: [String] = []
    private var counter = 0

    /// A message at `now + offset` milliseconds; `fields` is the rest of the object as JSON
    /// members (`"userId":"u1","event":"E"`).
    mutating func add(_ type: String, at offset: Int64, _ fields: String, id: String? = nil) {
        counter += 1
        let messageId = id ?? String(format: "m%03d", counter)
        let text =
            "{\"type\":\"\(type)\",\"messageId\":\"\(messageId)\",\"timestamp\":\"\(Timestamp.format(Self.now + offset))\""
            + (fields.isEmpty ? "" : ",\(fields)") + "}"
        messages.append(try! JSONValue.parse(text))
    }

    /// A definition file; `key` is given explicitly as the file's `key:`.
    mutating func define(_ key: String, _ yaml: String) {
        definitions.append("name: \(key)\nkey: \(key)\n" + yaml)
    }

    func oracle() throws -> ReferenceEvaluator {
        let files = definitions.enumerated().map { (path: "d\($0.offset).yml", text: $0.element) }
        let set = try DefinitionSet.parse(files: files, configuration: Self.configuration)
        return ReferenceEvaluator(messages: messages, definitions: set)
    }

    /// The SQL engine over the same messages and definitions, through the real ingest.
    func engine() async throws -> (MembershipEngine, TemporaryDirectory) {
        let directory = try TemporaryDirectory()
        let input = try directory.write("events.ndjson", messages.map(\.jsonString).joined(separator: "\n") + "\n")
        let store = try await SQLiteStore(path: directory.file("audiences.db"))
        _ = try await Ingester(sink: store, options: IngestOptions(now: Self.now), logger: silentLogger).run([input])
        let files = definitions.enumerated().map { (path: "d\($0.offset).yml", text: $0.element) }
        let set = try DefinitionSet.parse(files: files, configuration: Self.configuration)
        return (MembershipEngine(source: store, definitions: set), directory)
    }

    /// The oracle's members — after checking that the SQL engine gives the same.
    func members(_ key: String, now: Int64 = ReferenceCase.now, sourceLocation: SourceLocation = #_sourceLocation)
        async throws -> [String]
    {
        let expected = try oracle().members(key, now: now).sorted()
        let (engine, directory) = try await engine()
        await #expect(try engine.members(key: key, now: now) == expected, "the SQL engine", sourceLocation: sourceLocation)
        _ = directory
        return expected
    }

    /// The oracle's values — after checking that the SQL engine gives the same.
    func values(_ key: String, now: Int64 = ReferenceCase.now, sourceLocation: SourceLocation = #_sourceLocation)
        async throws -> [String: Literal]
    {
        let expected = try oracle().values(key, now: now)
        let (engine, directory) = try await engine()
        let actual = try await engine.values(key: key, now: now)
        #expect(actual.keys.sorted() == expected.keys.sorted(), "the SQL engine", sourceLocation: sourceLocation)
        for (user, value) in expected {
            #expect(
                ReferenceCase.same(actual[user], value), "the SQL engine: \(user) \(actual[user]?.json ?? "none") vs \(value.json)",
                sourceLocation: sourceLocation)
        }
        _ = directory
        return expected
    }

    /// Equal literals; numbers by value (integer or decimal), within 1e-9 relative.
    static func same(_ a: Literal?, _ b: Literal) -> Bool {
        guard let a else { return false }
        if let x = a.doubleValue, let y = b.doubleValue, a.isNumber, b.isNumber {
            return abs(x - y) <= 1e-9 * max(1, abs(x), abs(y))
        }
        if case .list(let xs) = a, case .list(let ys) = b {
            return xs.count == ys.count && zip(xs, ys).allSatisfy { same($0, $1) }
        }
        return a == b
    }
}

@Suite struct ReferencePredicateTests {
    /// (predicate as YAML, the value of `properties.v` as JSON or nil for missing, whether it holds).
    static let cases: [(String, String?, Bool)] = [
        ("5", "5", true), ("5", "5.0", true), ("5", "\"5\"", false), ("\"5\"", "5", false), ("\"5\"", "\"5\"", true),
        ("5.0", "5", true), ("1e1", "10", true),
        ("true", "true", true), ("true", "false", false), ("1", "true", false), ("true", "1", false),
        ("0", "false", false), ("{ne: 1}", "true", true), ("{ne: true}", "1", true),
        ("{eq: 5}", nil, false), ("{eq: 5}", "null", false), ("{ne: 5}", nil, true), ("{ne: 5}", "null", true),
        ("{ne: 5}", "5.0", false), ("{eq: 5}", "{\"a\":5}", false), ("{ne: 5}", "[5]", true),
        ("{gt: 4}", "5", true), ("{gt: 4}", "\"5\"", false), ("{gt: \"4\"}", "\"5\"", true),
        ("{gt: \"4\"}", "5", false),
        ("{gt: 4}", "4", false), ("{gte: 5}", "5.0", true), ("{lt: 5.5}", "5", true), ("{lte: 5}", "5.000001", false),
        ("{gt: 1}", "true", false), ("{lt: 5}", nil, false), ("{gte: 1, lt: 5}", "3", true),
        ("{gte: 1, lt: 5}", "5", false),
        ("{gt: \"10\"}", "\"9\"", true),  // strings compare as strings
        ("{gt: \"Z\"}", "\"a\"", true),  // by bytes: upper case before lower case
        ("{gt: \"e\\u0301\"}", "\"\\u00e9\"", true),  // decomposed é sorts before the precomposed one
        ("\"e\\u0301\"", "\"\\u00e9\"", false),  // and they are different strings
        ("{lt: \"\\U0001F600\"}", "\"\\uff5e\"", true),  // code point order, not UTF-16 order
        ("{gt: \"2026-01-01\"}", "\"2026-01-01T00:00:00Z\"", true),
        ("{in: [1, a]}", "1.0", true), ("{in: [1, a]}", "\"1\"", false), ("{in: [1, a]}", "\"a\"", true),
        ("{in: [true]}", "1", false), ("{in: []}", "1", false), ("{in: [1]}", nil, false),
        ("{not_in: [1]}", nil, true), ("{not_in: [1]}", "1", false), ("{not_in: [1]}", "\"1\"", true),
        ("{contains: b}", "\"abc\"", true), ("{contains: B}", "\"abc\"", false), ("{contains: \"1\"}", "123", false),
        ("{contains: \"\"}", "\"abc\"", true), ("{contains: b}", "[\"b\"]", false),
        ("{not_contains: \"1\"}", "123", true), ("{not_contains: b}", nil, true),
        ("{not_contains: b}", "\"abc\"", false),
        ("{starts_with: ab}", "\"abc\"", true), ("{starts_with: Ab}", "\"abc\"", false),
        ("{starts_with: a}", nil, false),
        ("{ends_with: bc}", "\"abc\"", true), ("{ends_with: \"c\"}", "[\"c\"]", false),
        ("{ends_with: \"3\"}", "123", false),
        ("{exists: true}", "null", false), ("{exists: true}", nil, false), ("{exists: true}", "false", true),
        ("{exists: true}", "{}", true), ("{exists: false}", "null", true), ("{exists: false}", nil, true),
        ("{exists: false}", "0", false),
    ]

    @Test(arguments: cases)
    func predicate(_ predicate: String, _ value: String?, _ holds: Bool) async throws {
        var test = ReferenceCase()
        test.add(
            "track", at: -1, "\"userId\":\"u1\",\"event\":\"E\",\"properties\":{\(value.map { "\"v\":\($0)" } ?? "")}")
        test.define("a", "condition:\n  performed: E\n  where:\n    properties.v: \(predicate)\n")
        await #expect(try test.members("a") == (holds ? ["u1"] : []))
        // The same predicate on a trait.
        var traits = ReferenceCase()
        traits.add("identify", at: -1, "\"userId\":\"u1\",\"traits\":{\(value.map { "\"v\":\($0)" } ?? "")}")
        let inline = predicate.hasPrefix("{") ? String(predicate.dropFirst().dropLast()) : "eq: \(predicate)"
        traits.define("t", "condition: {trait: v, \(inline)}\n")
        await #expect(try traits.members("t") == (holds ? ["u1"] : []))
    }

    /// Paths from the message root, with quoted keys; nested objects; non-objects on the way.
    @Test func paths() async throws {
        var test = ReferenceCase()
        test.add(
            "track", at: -1,
            "\"userId\":\"u1\",\"event\":\"E\",\"properties\":{\"Plan Name\":\"pro\",\"a.b\":1,\"a\":{\"b\":2},\"s\":\"x\"},\"context\":{\"page\":{\"path\":\"/p\"}}"
        )
        func check(_ where: String, _ expected: Bool) async throws {
            var copy = test
            copy.define("a", "condition:\n  performed: E\n  where: { \(`where`) }\n")
            await #expect(try copy.members("a") == (expected ? ["u1"] : []), "\(`where`)")
        }
        try await check("'properties.\"Plan Name\"': pro", true)
        try await check("'properties.\"a.b\"': 1", true)
        try await check("properties.a.b: 2", true)
        try await check("context.page.path: /p", true)
        try await check("event: E", true)
        try await check("properties.s.length: {exists: false}", true)
        try await check("properties.missing.deeper: {ne: 1}", true)
        try await check("properties.missing.deeper: {exists: true}", false)
    }
}

@Suite struct ReferenceConditionTests {
    static let now = ReferenceCase.now
    static let day = ReferenceCase.day

    @Test func withinWindowEdges() async throws {
        var test = ReferenceCase()
        test.add("track", at: -7 * Self.day, "\"userId\":\"edge\",\"event\":\"E\"")
        test.add("track", at: -7 * Self.day + 1, "\"userId\":\"inside\",\"event\":\"E\"")
        test.add("track", at: 0, "\"userId\":\"now\",\"event\":\"E\"")
        test.add("track", at: 1, "\"userId\":\"later\",\"event\":\"E\"")
        test.add("track", at: -7 * Self.day - 1, "\"userId\":\"older\",\"event\":\"E\"")
        test.define("w", "condition: {performed: E, within: 7d}\n")
        await #expect(try test.members("w") == ["inside", "now"])
        test.define("all", "condition: {performed: E}\n")
        await #expect(try test.members("all") == ["edge", "inside", "now", "older"])
        // One millisecond later `later` exists and `inside` is on the edge.
        await #expect(try test.members("w", now: Self.now + 1) == ["later", "now"])
        #expect(try test.oracle().universe(now: Self.now).sorted() == ["edge", "inside", "now", "older"])
    }

    @Test func betweenAgoEdges() async throws {
        var test = ReferenceCase()
        for (name, offset) in [
            ("far", -7 * Self.day), ("farIn", -7 * Self.day + 1), ("near", -Self.day), ("nearOut", -Self.day + 1),
        ] {
            test.add("track", at: offset, "\"userId\":\"\(name)\",\"event\":\"E\"")
        }
        test.define("b", "condition: {performed: E, between_ago: [1d, 7d]}\n")
        await #expect(try test.members("b") == ["farIn", "near"])
    }

    @Test func betweenEdges() async throws {
        var test = ReferenceCase()
        let start = Self.now - 2 * Self.day
        for (name, time) in [
            ("start", start), ("before", start - 1), ("end", Self.now - Self.day), ("last", Self.now - Self.day - 1),
        ] {
            test.add("track", at: time - Self.now, "\"userId\":\"\(name)\",\"event\":\"E\"")
        }
        test.define(
            "b",
            "condition: {performed: E, between: [\(Timestamp.format(start)), \(Timestamp.format(Self.now - Self.day))]}\n"
        )
        await #expect(try test.members("b") == ["last", "start"])
        // Capped at now: the window reaches past now but later events do not exist yet.
        await #expect(try test.members("b", now: start) == ["start"])
        await #expect(try test.members("b", now: start - 1) == [])
    }

    @Test func countIncludesZero() async throws {
        var test = ReferenceCase()
        test.add("track", at: -1, "\"userId\":\"one\",\"event\":\"E\"")
        test.add("track", at: -2, "\"userId\":\"two\",\"event\":\"E\"")
        test.add("track", at: -3, "\"userId\":\"two\",\"event\":\"E\"")
        test.add("track", at: -4, "\"userId\":\"zero\",\"event\":\"Other\"")
        test.add("track", at: 5, "\"userId\":\"future\",\"event\":\"E\"")
        test.define("le1", "condition: {performed: E, count: {lte: 1}}\n")
        test.define("eq0", "condition: {performed: E, count: {eq: 0}}\n")
        test.define("two", "condition: {performed: E, count: 2}\n")
        test.define("notin", "condition: {performed: E, count: {not_in: [1, 2]}}\n")
        await #expect(try test.members("le1") == ["one", "zero"])
        await #expect(try test.members("eq0") == ["zero"])
        await #expect(try test.members("two") == ["two"])
        await #expect(try test.members("notin") == ["zero"])
        // At now + 5 `future` exists, with one event.
        await #expect(try test.members("eq0", now: Self.now + 5) == ["zero"])
        await #expect(try test.members("le1", now: Self.now + 5) == ["future", "one", "zero"])
    }

    @Test func pagesAndScreensByName() async throws {
        var test = ReferenceCase()
        test.add("page", at: -1, "\"userId\":\"p\",\"name\":\"Pricing\"")
        test.add("screen", at: -1, "\"userId\":\"s\",\"name\":\"Pricing\"")
        test.add("track", at: -1, "\"userId\":\"t\",\"event\":\"Pricing\"")
        test.add("page", at: -1, "\"userId\":\"x\",\"properties\":{\"name\":\"Pricing\"}")
        test.define("page", "condition: {performed_page: Pricing}\n")
        test.define("screen", "condition: {performed_screen: Pricing}\n")
        test.define("track", "condition: {performed: Pricing}\n")
        await #expect(try test.members("page") == ["p"])
        await #expect(try test.members("screen") == ["s"])
        await #expect(try test.members("track") == ["t"])
    }

    @Test func allAnyNotInAudience() async throws {
        var test = ReferenceCase()
        test.add("track", at: -1, "\"userId\":\"a\",\"event\":\"A\"")
        test.add("track", at: -1, "\"userId\":\"ab\",\"event\":\"A\"")
        test.add("track", at: -1, "\"userId\":\"ab\",\"event\":\"B\"")
        test.add("identify", at: -1, "\"userId\":\"none\"")
        test.define("a", "condition: {performed: A}\n")
        test.define("both", "condition:\n  all:\n    - in_audience: a\n    - performed: B\n")
        test.define("either", "condition:\n  any:\n    - in_audience: a\n    - performed: B\n")
        test.define("nota", "condition:\n  not:\n    in_audience: a\n")
        await #expect(try test.members("both") == ["ab"])
        await #expect(try test.members("either") == ["a", "ab"])
        await #expect(try test.members("nota") == ["none"])
    }

    @Test func computedReferences() async throws {
        var test = ReferenceCase()
        test.add("track", at: -1, "\"userId\":\"a\",\"event\":\"O\",\"properties\":{\"t\":5}")
        test.add("track", at: -2, "\"userId\":\"b\",\"event\":\"O\",\"properties\":{\"t\":\"5\"}")
        test.add("identify", at: -1, "\"userId\":\"c\"")
        test.define("total", "kind: computed_trait\ncompute: {op: sum, event: O, property: properties.t}\n")
        test.define("n", "kind: computed_trait\ncompute: {op: count, event: O}\n")
        test.define("big", "condition: {computed: total, gte: 5}\n")
        test.define("nobig", "condition: {computed: total, ne: 5}\n")
        test.define("once", "condition: {computed: n, eq: 1}\n")
        await #expect(try test.values("total") == ["a": .integer(5)])  // "5" is not a number
        await #expect(try test.values("n") == ["a": .integer(1), "b": .integer(1)])  // no 0 for c
        await #expect(try test.members("big") == ["a"])
        await #expect(try test.members("nobig") == ["b", "c"])
        await #expect(try test.members("once") == ["a", "b"])
    }

    @Test func sequences() async throws {
        var test = ReferenceCase()
        let hour: Int64 = 3_600_000
        // ok: signup then order 2 h later. same: both at one instant (not strictly later).
        // late: order 7 d + 1 ms after. edge: exactly 7 d after. reverse: order first.
        // old: signup outside the 30 d window, order inside.
        let steps: [(String, Int64, Int64)] = [
            ("ok", -10 * Self.day, -10 * Self.day + 2 * hour), ("same", -5 * Self.day, -5 * Self.day),
            ("late", -20 * Self.day, -13 * Self.day + 1), ("edge", -20 * Self.day, -13 * Self.day),
            ("reverse", -3 * Self.day, -4 * Self.day), ("old", -30 * Self.day, -29 * Self.day),
        ]
        for (user, signup, order) in steps {
            test.add("track", at: signup, "\"userId\":\"\(user)\",\"event\":\"Signed Up\"")
            test.add("track", at: order, "\"userId\":\"\(user)\",\"event\":\"Order Completed\"")
        }
        // chain: needs the second signup (the first order is too early for it).
        test.add("track", at: -9 * Self.day, "\"userId\":\"chain\",\"event\":\"Signed Up\"")
        test.add("track", at: -8 * Self.day, "\"userId\":\"chain\",\"event\":\"Signed Up\"")
        test.add("track", at: -1 * Self.day, "\"userId\":\"chain\",\"event\":\"Order Completed\"")
        test.define(
            "funnel",
            """
            condition:
              sequence:
                - performed: Signed Up
                - performed: Order Completed
                  within_previous: 7d
              within: 30d

            """)
        await #expect(try test.members("funnel") == ["chain", "edge", "ok"])
        test.define("open", "condition:\n  sequence:\n    - performed: Signed Up\n    - performed: Order Completed\n")
        await #expect(try test.members("open") == ["chain", "edge", "late", "ok", "old"])
        // A step repeated needs two distinct, strictly later events.
        test.define("twice", "condition:\n  sequence:\n    - performed: Signed Up\n    - performed: Signed Up\n")
        await #expect(try test.members("twice") == ["chain"])
        // The window holds the first step only; the later step may fall after the window's end.
        test.define(
            "ago",
            "condition:\n  sequence:\n    - performed: Signed Up\n    - performed: Order Completed\n  between_ago: [6d, 12d]\n"
        )
        await #expect(try test.members("ago") == ["chain", "ok"])
    }

    @Test func identity() async throws {
        var test = ReferenceCase()
        // anon1: event before its link, linked to u1 then (later) to u2: u1 wins.
        test.add("track", at: -5 * Self.day, "\"anonymousId\":\"anon1\",\"event\":\"E\"")
        test.add("identify", at: -4 * Self.day, "\"userId\":\"u1\",\"anonymousId\":\"anon1\"")
        test.add("track", at: -3 * Self.day, "\"userId\":\"u2\",\"anonymousId\":\"anon1\",\"event\":\"F\"")
        // anon2: aliased to u3 in the future only.
        test.add("track", at: -5 * Self.day, "\"anonymousId\":\"anon2\",\"event\":\"E\"")
        test.add("alias", at: Self.day, "\"userId\":\"u3\",\"previousId\":\"anon2\"")
        // anon3: an alias's own anonymousId links too.
        test.add("track", at: -5 * Self.day, "\"anonymousId\":\"anon3\",\"event\":\"E\"")
        test.add("alias", at: -1, "\"userId\":\"u4\",\"previousId\":\"p4\",\"anonymousId\":\"anon3\"")
        // anon4: two links at the same instant: the smaller messageId wins.
        test.add("track", at: -5 * Self.day, "\"anonymousId\":\"anon4\",\"event\":\"E\"")
        test.add("identify", at: -2, "\"userId\":\"u6\",\"anonymousId\":\"anon4\"", id: "b")
        test.add("identify", at: -2, "\"userId\":\"u5\",\"anonymousId\":\"anon4\"", id: "c")
        test.define("e", "condition: {performed: E}\n")
        test.define("f", "condition: {performed: F}\n")
        let oracle = try test.oracle()
        #expect(oracle.members("e", now: Self.now).sorted() == ["u1", "u4", "u6"])
        #expect(oracle.members("f", now: Self.now).sorted() == ["u2"])  // its own userId
        #expect(oracle.members("e", now: Self.now + Self.day).sorted() == ["u1", "u3", "u4", "u6"])
        #expect(oracle.members("e", now: -4 * Self.day + Self.now - 1).sorted() == [])
        #expect(oracle.universe(now: Self.now).sorted() == ["u1", "u2", "u4", "u5", "u6"])
    }

    @Test func traits() async throws {
        var test = ReferenceCase()
        test.add(
            "identify", at: -9,
            "\"userId\":\"u1\",\"traits\":{\"plan\":\"free\",\"address\":{\"city\":\"Oslo\",\"zip\":\"1\"}}")
        // Anonymous identify, linked to u1 later: counts.
        test.add("identify", at: -8, "\"anonymousId\":\"x\",\"traits\":{\"age\":30}")
        test.add(
            "identify", at: -7, "\"userId\":\"u1\",\"anonymousId\":\"x\",\"traits\":{\"address\":{\"city\":\"Rome\"}}")
        // Two identifies at one instant: messageId order, so z1 comes after a1 and its plan wins.
        test.add("identify", at: -5, "\"userId\":\"u1\",\"traits\":{\"plan\":\"pro\"}", id: "z1")
        test.add("identify", at: -5, "\"userId\":\"u1\",\"traits\":{\"plan\":\"team\"}", id: "a1")
        // Another user's identify carrying anonymous id x: not u1's.
        test.add("identify", at: -4, "\"userId\":\"u2\",\"anonymousId\":\"x\",\"traits\":{\"age\":99}")
        // In the future: does not exist yet.
        test.add("identify", at: 1, "\"userId\":\"u1\",\"traits\":{\"plan\":\"gone\"}")
        test.define("pro", "condition: {trait: plan, eq: pro}\n")
        test.define("rome", "condition: {trait: address.city, eq: Rome}\n")
        test.define("nozip", "condition: {trait: address.zip, exists: false}\n")
        test.define("age", "condition: {trait: age, eq: 30}\n")
        await #expect(try test.members("pro") == ["u1"])
        await #expect(try test.members("rome") == ["u1"])
        await #expect(try test.members("nozip") == ["u1", "u2"])
        await #expect(try test.members("age") == ["u1"])
        await #expect(try test.members("pro", now: Self.now + 1) == [])
    }

    @Test func computedOperations() async throws {
        var test = ReferenceCase()
        let values = ["3", "1.5", "\"7\"", "true", "null", "\"b\"", "3", "\"a\"", "false", "-2"]
        for (index, value) in values.enumerated() {
            test.add(
                "track", at: Int64(index) - 100,
                "\"userId\":\"u\",\"event\":\"O\",\"properties\":{\"v\":\(value),\"c\":\"USD\"}")
        }
        test.add("track", at: -1, "\"userId\":\"u\",\"event\":\"O\",\"properties\":{\"c\":\"EUR\",\"v\":100}")
        test.add("track", at: -1, "\"userId\":\"w\",\"event\":\"O\",\"properties\":{\"v\":\"only text\"}")
        func value(_ op: String, _ extra: String = "") async throws -> [String: Literal] {
            var copy = test
            copy.define(
                "x",
                "kind: computed_trait\ncompute: {op: \(op), event: O, where: {properties.c: USD}\(op == "count" ? "" : ", property: properties.v")\(extra)}\n"
            )
            return try await copy.values("x")
        }
        await #expect(try value("count") == ["u": .integer(10)])
        await #expect(try value("sum") == ["u": .double(5.5)])
        await #expect(try value("avg") == ["u": .double(5.5 / 4)])
        await #expect(try value("min") == ["u": .integer(-2)])
        await #expect(try value("max") == ["u": .integer(3)])
        await #expect(try value("first") == ["u": .integer(3)])
        await #expect(try value("last") == ["u": .integer(-2)])
        await #expect(try value("most_frequent") == ["u": .integer(3)])
        await #expect(try value("most_frequent", ", min_frequency: 3") == [:])
        await #expect(
            try value("unique_list")
                == [
                    "u": .list([
                        .bool(false), .bool(true), .integer(-2), .double(1.5), .integer(3), .string("7"), .string("a"),
                        .string("b"),
                    ])
                ])
        await #expect(try value("unique_count") == ["u": .integer(8)])
        // Without the filter, w's only value is a string: first has one, sum has none.
        var plain = test
        plain.define("s", "kind: computed_trait\ncompute: {op: sum, event: O, property: properties.v}\n")
        plain.define("f", "kind: computed_trait\ncompute: {op: first, event: O, property: properties.v}\n")
        await #expect(try plain.values("s")["w"] == nil)
        await #expect(try plain.values("f")["w"] == .string("only text"))
    }

    @Test func computedTies() async throws {
        var test = ReferenceCase()
        // first/last at one instant go by messageId; most_frequent ties go to the smallest value.
        test.add("track", at: -1, "\"userId\":\"u\",\"event\":\"O\",\"properties\":{\"v\":\"b\"}", id: "k2")
        test.add("track", at: -1, "\"userId\":\"u\",\"event\":\"O\",\"properties\":{\"v\":\"a\"}", id: "k1")
        test.add("track", at: -1, "\"userId\":\"u\",\"event\":\"O\",\"properties\":{\"v\":10}", id: "k3")
        test.add("track", at: -2, "\"userId\":\"u\",\"event\":\"O\",\"properties\":{\"v\":10.0}", id: "k4")
        test.add("track", at: -3, "\"userId\":\"u\",\"event\":\"O\",\"properties\":{\"v\":\"a\"}", id: "k5")
        test.define("first", "kind: computed_trait\ncompute: {op: first, event: O, property: properties.v}\n")
        test.define("last", "kind: computed_trait\ncompute: {op: last, event: O, property: properties.v}\n")
        test.define("top", "kind: computed_trait\ncompute: {op: most_frequent, event: O, property: properties.v}\n")
        test.define("distinct", "kind: computed_trait\ncompute: {op: unique_count, event: O, property: properties.v}\n")
        await #expect(try test.values("first") == ["u": .string("a")])  // k5 at -3
        await #expect(try test.values("last") == ["u": .integer(10)])  // k1, k2, k3 at -1: k3 last
        // 10 and 10.0 are one value occurring twice, as "a": the number is smaller.
        await #expect(try test.values("top")["u"].flatMap(\.doubleValue) == 10)
        await #expect(try test.values("distinct") == ["u": .integer(3)])
    }
}
