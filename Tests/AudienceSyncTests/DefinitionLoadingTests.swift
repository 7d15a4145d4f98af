import Foundation
import Testing

@testable import AudienceSync

@Suite struct DefinitionLoadingTests {
    /// A configuration with destinations `outbox`, `segment`, `sprig`, as in the demo.
    static func configuration(schedule: Duration = .hours(2)) -> Configuration {
        Configuration(
            file: "audience-sync.yml", directory: "", databasePath: "audiences.db", definitionsPath: "audiences",
            schedule: schedule, spaceID: "spa_test",
            destinations: [
                DestinationConfiguration(name: "outbox", kind: .file, path: "out/identify.ndjson"),
                DestinationConfiguration(
                    name: "segment", kind: .segment, secret: Secret(.environment("SEGMENT_WRITE_KEY"))),
                DestinationConfiguration(name: "sprig", kind: .sprig, secret: Secret(.environment("SPRIG_API_KEY"))),
            ])
    }

    /// Loads `files` (name → text) from a fresh folder; error lines use the file names alone.
    static func load(_ files: [String: String], schedule: Duration = .hours(2)) throws -> DefinitionSet {
        let directory = try TemporaryDirectory()
        for (name, text) in files { try directory.write(name, text) }
        do {
            return try DefinitionSet.load(directory: directory.path, configuration: configuration(schedule: schedule))
        } catch let error as AudienceSyncError {
            throw AudienceSyncErrors([relative(error, to: directory.path)])
        } catch let error as AudienceSyncErrors {
            throw AudienceSyncErrors(error.errors.map { relative($0, to: directory.path) })
        }
    }

    static func relative(_ error: AudienceSyncError, to directory: String) -> AudienceSyncError {
        var error = error
        error.file = error.file.map { $0.replacingOccurrences(of: directory + "/", with: "") }
        error.message = error.message.replacingOccurrences(of: directory + "/", with: "")
        return error
    }

    static func errors(_ files: [String: String]) -> [String] {
        errorLines { _ = try load(files) }
    }

    // MARK: The demo

    @Test func demoDefinitionsLoad() async throws {
        let configuration = try Configuration.load(file: repositoryRoot + "/fixtures/demo/audience-sync.yml")
        let set = try DefinitionSet.load(directory: configuration.definitionsPath, configuration: configuration)
        #expect(
            set.definitions.map(\.key) == [
                "engaged_non_buyers", "nps_detractors", "order_completed_last_30days", "signup_to_order_7d",
                "total_spent_90_days",
            ])
        #expect(
            Set(set.definitions.map(\.key)) == [
                "nps_detractors", "order_completed_last_30days", "total_spent_90_days", "engaged_non_buyers",
                "signup_to_order_7d",
            ])
        let order = set.evaluationOrder.map(\.key)
        #expect(order.firstIndex(of: "order_completed_last_30days")! < order.firstIndex(of: "engaged_non_buyers")!)
        #expect(set[key: "total_spent_90_days"]?.kind == .computedTrait)
        #expect(set[key: "nps_detractors"]?.destinations == ["sprig", "outbox"])
        #expect(set[key: "engaged_non_buyers"]?.destinations == ["outbox", "segment", "sprig"])
        #expect(set.definitions.allSatisfy { $0.schedule == .hours(2) && $0.enabled })
        #expect(set[key: "nps_detractors"]?.file == repositoryRoot + "/fixtures/demo/audiences/nps_detractors.yml")

        let nps = try #require(set[key: "nps_detractors"]?.condition)
        #expect(
            nps
                == .performed(
                    EventCondition(
                        kind: .track, name: "SDK - Submitted - Survey Response",
                        filters: [
                            PropertyFilter(
                                path: PropertyPath(["properties", "question"]),
                                predicate: .equals(.string("How likely are you to recommend us?"))),
                            PropertyFilter(
                                path: PropertyPath(["properties", "response"]),
                                predicate: Predicate([.lte(.integer(6))])),
                        ],
                        window: .within(.days(90)))))

        let total = try #require(set[key: "total_spent_90_days"]?.compute)
        #expect(
            total
                == ComputeSpec(
                    op: .sum, event: "Order Completed", property: PropertyPath(["properties", "total"]),
                    filters: [
                        PropertyFilter(
                            path: PropertyPath(["properties", "currency"]), predicate: .equals(.string("USD")))
                    ],
                    window: .within(.days(90))))

        #expect(
            set[key: "engaged_non_buyers"]?.condition
                == .all([
                    .performed(EventCondition(kind: .page, name: "Pricing", window: .within(.days(14)))),
                    .not(.inAudience(key: "order_completed_last_30days")),
                ]))
        #expect(
            set[key: "signup_to_order_7d"]?.condition
                == .sequence(
                    steps: [
                        SequenceStep(kind: .track, name: "Signed Up"),
                        SequenceStep(kind: .track, name: "Order Completed", withinPrevious: .days(7)),
                    ],
                    window: .within(.days(30))))
    }

    @Test func badFixturesGiveExpectedErrors() async throws {
        let expectedFile = repositoryRoot + "/fixtures/definitions/bad/EXPECTED.md"
        let markdown = try String(contentsOfFile: expectedFile, encoding: .utf8)
        let expected = markdown.split(separator: "\n").map(String.init).filter {
            $0.hasPrefix("fixtures/definitions/bad/")
        }
        #expect(expected.count > 20)
        let configuration = Self.configuration()
        let lines = errorLines {
            _ = try DefinitionSet.load(
                directory: repositoryRoot + "/fixtures/definitions/bad", configuration: configuration)
        }.map { $0.replacingOccurrences(of: repositoryRoot + "/", with: "") }
        #expect(lines == expected)
        // Every bad file but the valid helpers is named by at least one error.
        let files = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/fixtures/definitions/bad")
            .filter {
                $0.hasSuffix(".yml") && !$0.hasPrefix("helper_") && !$0.hasSuffix("_1.yml") && $0 != "cycle_a.yml"
            }
        for file in files {
            #expect(lines.contains { $0.hasPrefix("fixtures/definitions/bad/\(file):") }, "\(file) gives no error")
        }
    }

    // MARK: Fields and defaults

    @Test func defaultsAndExplicitFields() async throws {
        let set = try Self.load(
            [
                "a.yml": """
                name: Big Spenders
                key: big_spenders_v2
                description: Spent a lot
                schedule: 3h
                destinations: [segment]
                condition:
                  computed: lifetime_value
                  gte: 1000
                """,
                "b.yaml": """
                name: Lifetime Value
                kind: computed_trait
                destinations: []
                compute:
                  op: most_frequent
                  event: Order Completed
                  property: properties.category
                  min_frequency: 2
                """,
                "c.yml": "name: Off\nenabled: false\ncondition: {performed: X}\n",
                "notes.txt": "not a definition",
            ], schedule: .minutes(90))
        #expect(set.definitions.map(\.key) == ["big_spenders_v2", "lifetime_value"])
        #expect(set.disabled.map(\.key) == ["off"])
        let big = try #require(set[key: "big_spenders_v2"])
        #expect(big.schedule == .hours(3))
        #expect(big.destinations == ["segment"])
        #expect(big.description == "Spent a lot")
        #expect(big.condition == .computed(key: "lifetime_value", Predicate([.gte(.integer(1000))])))
        let value = try #require(set[key: "lifetime_value"])
        #expect(value.schedule == .minutes(90))
        #expect(value.destinations.isEmpty)
        #expect(value.compute?.minFrequency == 2)
        #expect(set.evaluationOrder.map(\.key) == ["lifetime_value", "big_spenders_v2"])
    }

    /// Quoted "5" is a string, 5 an integer, 5.0 a double, true a boolean; yes/no/on/off, 007 and
    /// dates stay strings.
    @Test func yamlTypesMapToJSONTypes() async throws {
        let set = try Self.load([
            "t.yml": """
            name: Types
            condition:
              performed: E
              where:
                properties.a: "5"
                properties.b: 5
                properties.c: 5.0
                properties.d: true
                properties.e: yes
                properties.f: 007
                properties.g: 2026-01-01
                properties.h: 'true'
                properties.i: -3
                properties.j: 1e3
                properties.k: { in: [1, "1", true, x], exists: true, ne: off }
                properties.l: { gt: 2026-01-01T00:00:00Z, starts_with: "1" }
            """
        ])
        guard case .performed(let event)? = set.definitions.first?.condition else {
            Issue.record("not a performed condition")
            return
        }
        let predicates = event.filters.map(\.predicate)
        #expect(
            predicates == [
                .equals(.string("5")), .equals(.integer(5)), .equals(.double(5)), .equals(.bool(true)),
                .equals(.string("yes")), .equals(.string("007")), .equals(.string("2026-01-01")),
                .equals(.string("true")),
                .equals(.integer(-3)), .equals(.double(1000)),
                Predicate([
                    .in([.integer(1), .string("1"), .bool(true), .string("x")]), .exists(true), .ne(.string("off")),
                ]),
                Predicate([.gt(.string("2026-01-01T00:00:00Z")), .startsWith("1")]),
            ])
    }

    @Test func windowsAndCounts() async throws {
        let set = try Self.load([
            "w.yml": """
            name: Windows
            condition:
              any:
                - performed_screen: Home
                  between_ago: [30d, 90d]
                  count: { gte: 2, lte: 5 }
                - performed: Order Completed
                  between: [2026-01-01, 2026-02-01T00:00:00Z]
                  count: 0
                - trait: address."zip code"
                  exists: false
            """
        ])
        let jan1 = Timestamp.parse("2026-01-01T00:00:00Z")!
        let feb1 = Timestamp.parse("2026-02-01T00:00:00Z")!
        #expect(
            set.definitions.first?.condition
                == .any([
                    .performed(
                        EventCondition(
                            kind: .screen, name: "Home", count: Predicate([.gte(.integer(2)), .lte(.integer(5))]),
                            window: .betweenAgo(near: .days(30), far: .days(90)))),
                    .performed(
                        EventCondition(
                            kind: .track, name: "Order Completed", count: .equals(.integer(0)),
                            window: .between(startMillis: jan1, endMillis: feb1))),
                    .trait(PropertyPath(["address", "zip code"]), Predicate([.exists(false)])),
                ]))
        // Bounds are (after, through], capped at now.
        #expect(EventWindow.within(.days(1)).bounds(now: 100_000_000) == (13_600_000, 100_000_000))
        #expect(
            EventWindow.betweenAgo(near: .minutes(1), far: .minutes(2)).bounds(now: 1_000_000) == (880_000, 940_000))
        #expect(EventWindow.between(startMillis: jan1, endMillis: feb1).bounds(now: feb1 + 5) == (jan1 - 1, feb1 - 1))
        #expect(EventWindow.between(startMillis: jan1, endMillis: feb1).bounds(now: jan1 + 5) == (jan1 - 1, jan1 + 5))
        #expect(EventWindow.allTime.bounds(now: 7) == (nil, 7))
    }

    // MARK: Errors

    /// One file per mistake, with the exact location and message.
    static let mistakes: [(String, String, [String])] = [
        (
            "unknown field", "nmae: X\ncondition: {performed: E}\n",
            [
                "a.yml:1:1: unknown field 'nmae' (expected one of name, key, kind, description, condition, compute, destinations, schedule, enabled)",
                "a.yml:1:1: missing field 'name'",
            ]
        ),
        (
            "unknown operator", "name: A\ncondition:\n  performed: E\n  where:\n    properties.x: { lessThan: 7 }\n",
            [
                "a.yml:5:21: unknown operator 'lessThan' (expected one of eq, ne, gt, gte, lt, lte, in, not_in, contains, not_contains, starts_with, ends_with, exists)"
            ]
        ),
        (
            "unknown trait operator", "name: A\ncondition:\n  trait: plan\n  equals: pro\n",
            [
                "a.yml:4:3: unknown operator 'equals' (expected one of eq, ne, gt, gte, lt, lte, in, not_in, contains, not_contains, starts_with, ends_with, exists)"
            ]
        ),
        (
            "bad duration", "name: A\ncondition:\n  performed: E\n  within: 3 days\n",
            [
                "a.yml:4:11: expected a duration like 30d, 12h, 1d12h (got '3 days')"
            ]
        ),
        (
            "number as duration", "name: A\nschedule: 30\ncondition: {performed: E}\n",
            [
                "a.yml:2:11: expected a duration like 30d, 12h, 1d12h (got '30')"
            ]
        ),
        (
            "zero window", "name: A\ncondition: {performed: E, within: 0d}\n",
            [
                "a.yml:2:35: expected a duration longer than zero (got '0d')"
            ]
        ),
        ("missing name", "condition: {performed: E}\n", ["a.yml:1:1: missing field 'name'"]),
        ("empty name", "name: ''\ncondition: {performed: E}\n", ["a.yml:1:7: expected a name (got an empty string)"]),
        ("missing condition", "name: A\n", ["a.yml:1:1: missing field 'condition' (an audience needs a condition)"]),
        (
            "missing compute", "name: A\nkind: computed_trait\n",
            [
                "a.yml:1:1: missing field 'compute' (a computed trait needs a compute)"
            ]
        ),
        (
            "condition on a computed trait",
            "name: A\nkind: computed_trait\ncondition: {performed: E}\ncompute: {op: count, event: E}\n",
            [
                "a.yml:3:1: a computed trait takes compute:, not condition:"
            ]
        ),
        (
            "no head", "name: A\ncondition:\n  within: 30d\n",
            [
                "a.yml:3:3: a condition needs one of all, any, not, performed, performed_page, performed_screen, trait, computed, in_audience, sequence (got none)"
            ]
        ),
        (
            "misspelt head", "name: A\ncondition:\n  perfomed: E\n",
            [
                "a.yml:3:3: unknown condition 'perfomed' (expected one of all, any, not, performed, performed_page, performed_screen, trait, computed, in_audience, sequence)"
            ]
        ),
        (
            "two heads", "name: A\ncondition:\n  performed: E\n  in_audience: b\n",
            [
                "a.yml:4:3: a condition has exactly one of all, any, not, performed, performed_page, performed_screen, trait, computed, in_audience, sequence; got 'performed' and 'in_audience' (combine them under all: or any:)"
            ]
        ),
        ("empty all", "name: A\ncondition:\n  all: []\n", ["a.yml:3:8: all needs at least one condition"]),
        ("empty any", "name: A\ncondition:\n  any: []\n", ["a.yml:3:8: any needs at least one condition"]),
        (
            "all of a mapping", "name: A\ncondition:\n  all: {performed: E}\n",
            [
                "a.yml:3:8: expected a list of conditions (got a mapping)"
            ]
        ),
        (
            "modifier of another head", "name: A\ncondition:\n  in_audience: b\n  within: 30d\n",
            [
                "a.yml:4:3: unknown field 'within' (expected in_audience)"
            ]
        ),
        (
            "invalid key", "name: A\nkey: Order-Completed\ncondition: {performed: E}\n",
            [
                "a.yml:2:6: invalid key 'Order-Completed' (expected lowercase letters, digits and _, like order_completed_30d)"
            ]
        ),
        (
            "empty key", "name: '%%%'\ncondition: {performed: E}\n",
            [
                "a.yml:1:7: the name '%%%' gives an empty key (it has no ASCII letter or digit); add a key: field"
            ]
        ),
        (
            "unknown destination", "name: A\ncondition: {performed: E}\ndestinations: [outbox, braze]\n",
            [
                "a.yml:3:24: unknown destination 'braze' (expected one of outbox, segment, sprig)"
            ]
        ),
        (
            "destination twice", "name: A\ncondition: {performed: E}\ndestinations: [outbox, outbox]\n",
            [
                "a.yml:3:24: destination 'outbox' is listed twice"
            ]
        ),
        (
            "within and between",
            "name: A\ncondition:\n  performed: E\n  within: 30d\n  between: [2026-01-01, 2026-02-01]\n",
            [
                "a.yml:5:3: give only one of within, between_ago, between (got within and between)"
            ]
        ),
        (
            "between_ago near > far", "name: A\ncondition:\n  performed: E\n  between_ago: [90d, 30d]\n",
            [
                "a.yml:4:16: between_ago needs NEAR before FAR: [30d, 90d] means between 30 and 90 days ago (got [90d, 30d])"
            ]
        ),
        (
            "between reversed", "name: A\ncondition:\n  performed: E\n  between: [2026-02-01, 2026-01-01]\n",
            [
                "a.yml:4:12: between needs START before END (got 2026-02-01T00:00:00.000Z and 2026-01-01T00:00:00.000Z)"
            ]
        ),
        (
            "between not instants", "name: A\ncondition:\n  performed: E\n  between: [yesterday, 2026-01-01]\n",
            [
                "a.yml:4:13: expected an ISO-8601 instant like 2026-01-01T00:00:00Z (got 'yesterday')"
            ]
        ),
        (
            "within_previous outside a sequence", "name: A\ncondition:\n  performed: E\n  within_previous: 7d\n",
            [
                "a.yml:4:3: within_previous applies only to a step of a sequence (use within: for a window)"
            ]
        ),
        (
            "within_previous on the first step",
            "name: A\ncondition:\n  sequence:\n    - performed: A\n      within_previous: 1d\n    - performed: B\n",
            [
                "a.yml:5:7: within_previous does not apply to the first step (there is no previous one)"
            ]
        ),
        (
            "count in a step", "name: A\ncondition:\n  sequence:\n    - performed: A\n      count: 2\n",
            [
                "a.yml:5:7: unknown field 'count' (expected one of performed, where, within_previous)"
            ]
        ),
        (
            "trait without a predicate", "name: A\ncondition:\n  trait: plan\n",
            [
                "a.yml:3:3: trait needs a predicate beside it: one or more of eq, ne, gt, gte, lt, lte, in, not_in, contains, not_contains, starts_with, ends_with, exists (like trait: plan, eq: pro)"
            ]
        ),
        (
            "trait as a step", "name: A\ncondition:\n  sequence:\n    - trait: plan\n      eq: pro\n",
            [
                "a.yml:4:7: a sequence step is one of performed, performed_page, performed_screen (got 'trait')"
            ]
        ),
        (
            "eq null", "name: A\ncondition:\n  performed: E\n  where: {properties.x: null}\n",
            [
                "a.yml:4:25: eq cannot compare with null (use exists: false for a missing or null value)"
            ]
        ),
        (
            "list as a value", "name: A\ncondition:\n  performed: E\n  where: {properties.x: [a, b]}\n",
            [
                "a.yml:4:25: expected a value or a mapping of operators like {gte: 1} (got a list; for one of several values use {in: [...]})"
            ]
        ),
        (
            "contains a number", "name: A\ncondition:\n  performed: E\n  where: {properties.x: {contains: 5}}\n",
            [
                "a.yml:4:36: contains compares with a string (got 5; quote it to make it one)"
            ]
        ),
        (
            "gt a boolean", "name: A\ncondition:\n  trait: vip\n  gt: true\n",
            [
                "a.yml:4:7: gt compares with a number or a string (got true)"
            ]
        ),
        (
            "count of strings", "name: A\ncondition:\n  performed: E\n  count: {gte: two}\n",
            [
                "a.yml:4:10: count compares with numbers (got \"two\")"
            ]
        ),
        (
            "exists not a boolean", "name: A\ncondition:\n  trait: plan\n  exists: 1\n",
            [
                "a.yml:4:11: expected exists: true or false (got 1)"
            ]
        ),
        (
            "path with a quote", "name: A\ncondition:\n  performed: E\n  where:\n    'properties.a\"b': 1\n",
            [
                "a.yml:5:5: a key may not contain '\"' in path 'properties.a\"b' (expected keys separated by dots, like properties.total or properties.\"Plan Name\")"
            ]
        ),
        (
            "unknown kind", "name: A\nkind: trait\n",
            ["a.yml:2:7: unknown kind 'trait' (expected one of audience, computed_trait)"]
        ),
        (
            "unknown op", "name: A\nkind: computed_trait\ncompute: {op: median, event: E, property: properties.x}\n",
            [
                "a.yml:3:15: unknown op 'median' (expected one of count, sum, avg, min, max, first, last, most_frequent, unique_list, unique_count)"
            ]
        ),
        (
            "property on count",
            "name: A\nkind: computed_trait\ncompute: {op: count, event: E, property: properties.x}\n",
            [
                "a.yml:3:32: count counts events and takes no property (filter with where: instead)"
            ]
        ),
        (
            "missing property", "name: A\nkind: computed_trait\ncompute: {op: avg, event: E}\n",
            [
                "a.yml:3:10: missing field 'property' (avg needs the value to read, like properties.total)"
            ]
        ),
        (
            "min_frequency on sum",
            "name: A\nkind: computed_trait\ncompute: {op: sum, event: E, property: properties.x, min_frequency: 2}\n",
            [
                "a.yml:3:54: min_frequency applies only to op: most_frequent"
            ]
        ),
        (
            "yaml syntax", "name: A\ncondition:\n  performed: E\n   within: 3d\n",
            [
                "a.yml:4:10: YAML syntax error: mapping values are not allowed in this context"
            ]
        ),
        (
            "duplicate field", "name: A\nname: B\ncondition: {performed: E}\n",
            ["a.yml:1:1: duplicate field 'name' in one mapping"]
        ),
        ("empty file", "", ["a.yml:1:1: the file is empty (expected a definition with name and condition)"]),
        (
            "enabled not a boolean", "name: A\nenabled: no\ncondition: {performed: E}\n",
            [
                "a.yml:2:10: expected enabled: true or false (got 'no')"
            ]
        ),
    ]

    @Test(arguments: mistakes)
    func reportsMistake(_ what: String, text: String, expected: [String]) {
        #expect(Self.errors(["a.yml": text]) == expected, "\(what)")
    }

    // MARK: Across files

    @Test func referencesMustExistAndHaveTheRightKind() {
        let lines = Self.errors([
            "a.yml":
                "name: A\ncondition:\n  all:\n    - in_audience: nobody\n    - in_audience: t\n    - computed: b\n      gt: 1\n",
            "b.yml": "name: B\ncondition: {computed: nothing, gt: 1}\n",
            "t.yml": "name: T\nkind: computed_trait\ncompute: {op: count, event: E}\n",
            "z.yml": "name: Z\nenabled: false\ncondition: {performed: E}\n",
            "y.yml": "name: Y\ncondition: {in_audience: z}\n",
        ])
        #expect(
            lines == [
                "a.yml:4:20: in_audience 'nobody' refers to no audience (expected one of a, b, y)",
                "a.yml:5:20: in_audience 't' refers to a computed trait (t.yml); use computed: t with a predicate",
                "a.yml:6:17: computed 'b' refers to an audience (b.yml); use in_audience: b",
                "b.yml:2:23: computed 'nothing' refers to no computed trait (expected one of t)",
                "y.yml:2:26: in_audience 'z' refers to a disabled definition (z.yml)",
            ])
    }

    @Test func cyclesAreNamed() {
        let lines = Self.errors([
            "a.yml": "name: A\ncondition: {in_audience: b}\n",
            "b.yml": "name: B\ncondition: {not: {in_audience: c}}\n",
            "c.yml": "name: C\ncondition: {any: [{performed: E}, {in_audience: a}]}\n",
            "s.yml": "name: S\ncondition: {in_audience: s}\n",
        ])
        #expect(
            lines == [
                "c.yml:2:49: circular reference: a -> b -> c -> a",
                "s.yml:2:26: circular reference: s -> s",
            ])
    }

    @Test func duplicatesNameBothFiles() {
        let lines = Self.errors([
            "a.yml": "name: Same\ncondition: {performed: E}\n",
            "b.yml": "name: Same\nkey: other\ncondition: {performed: E}\n",
            "c.yml": "name: C\nkey: same\ncondition: {performed: E}\n",
            "d.yml": "name: Same\nenabled: false\ncondition: {performed: E}\n",
        ])
        #expect(
            lines == [
                "b.yml:1:7: duplicate name 'Same' (also in a.yml:1:7)",
                "c.yml:2:6: duplicate key 'same' (also the key of a.yml:1:7)",
            ])
    }

    @Test func everyErrorOfEveryFileIsReportedAtOnce() {
        let lines = Self.errors([
            "a.yml": "nmae: A\ncondition: {performed: E, within: 3 days}\n",
            "b.yml": "name: B\ncondition: {trait: plan, lessThan: 3}\ndestinations: [nowhere]\n",
            "c.yml": "name: C\ncondition: {in_audience: missing}\n",
            "d.yml": "name: D\ncondition: {performed: E\n",
        ])
        #expect(
            lines.map { String($0.prefix(while: { $0 != ":" })) } == [
                "a.yml", "a.yml", "a.yml", "b.yml", "b.yml", "c.yml", "d.yml",
            ])
        #expect(lines[4] == "b.yml:3:16: unknown destination 'nowhere' (expected one of outbox, segment, sprig)")
    }

    @Test func missingFolderIsAnError() {
        let lines = errorLines {
            _ = try DefinitionSet.load(directory: "/nonexistent/audiences", configuration: Self.configuration())
        }
        #expect(lines == ["/nonexistent/audiences: cannot read the definitions folder"])
    }
}
