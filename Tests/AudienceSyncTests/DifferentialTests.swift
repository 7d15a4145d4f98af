import Foundation
import Logging
import Testing

@testable import AudienceSync

/// The SQL engine against the oracle: random messages and definitions (`RandomCase`), ingested
/// with the real `Ingester`, every definition compared at three `now`s, on every store (SQLite and
/// PostgreSQL must both agree with the oracle, so they agree with each other).
@Suite struct DifferentialTests {
    static let seeds: UInt64 = 300
    /// The seeds are split into this many parallel chunks.
    static let chunks = 6
    /// At most this many mismatches are recorded per chunk: one is enough to start debugging.
    static let issuesPerChunk = 3

    @Test(arguments: StoreKind.allCases, 0..<chunks)
    func engineAgreesWithOracle(kind: StoreKind, chunk: Int) async throws {
        var issues = 0
        for seed in stride(from: UInt64(chunk), to: Self.seeds, by: Self.chunks) {
            let compared = try await kind.withStore { (store: any Store, directory: TemporaryDirectory) async throws -> Outcome in
                try await Self.compare(seed: seed, store: store, directory: directory)
            }
            guard let outcome = compared else { return }
            switch outcome {
            case .agreed: continue
            case .disagreed(let report):
                Issue.record(Comment(rawValue: report))
                issues += 1
                if issues >= Self.issuesPerChunk { return }
            }
        }
    }

    /// The generator reaches every construct of the definition language, and the oracle handles
    /// every case (this part needs no engine).
    @Test func generatorCoversTheLanguage() async throws {
        var heads: Set<String> = []
        var operators: Set<String> = []
        var ops: Set<String> = []
        var windows: Set<String> = []
        var withinPrevious = false
        var nonEmpty = 0
        var empty = 0
        func window(_ window: EventWindow) {
            switch window {
            case .allTime: windows.insert("all")
            case .within: windows.insert("within")
            case .betweenAgo: windows.insert("between_ago")
            case .between: windows.insert("between")
            }
        }
        func predicate(_ predicate: AudienceSync.Predicate) {
            predicate.comparisons.forEach { operators.insert($0.operator.rawValue) }
        }
        func walk(_ condition: Condition) {
            switch condition {
            case .all(let items):
                heads.insert("all")
                items.forEach(walk)
            case .any(let items):
                heads.insert("any")
                items.forEach(walk)
            case .not(let inner):
                heads.insert("not")
                walk(inner)
            case .performed(let event):
                heads.insert(event.kind.head)
                event.filters.forEach { predicate($0.predicate) }
                window(event.window)
            case .trait(_, let p):
                heads.insert("trait")
                predicate(p)
            case .computed(_, let p):
                heads.insert("computed")
                predicate(p)
            case .inAudience: heads.insert("in_audience")
            case .sequence(let steps, let w):
                heads.insert("sequence")
                window(w)
                if steps.contains(where: { $0.withinPrevious != nil }) { withinPrevious = true }
            }
        }
        for seed in 0..<Self.seeds {
            let random = try RandomCase(seed: seed)
            let oracle = ReferenceEvaluator(messages: random.messages, definitions: random.definitions)
            for definition in random.definitions.definitions {
                if let condition = definition.condition { walk(condition) }
                if let compute = definition.compute {
                    ops.insert(compute.op.rawValue)
                    window(compute.window)
                }
                for now in random.nows {
                    let size =
                        definition.kind == .audience
                        ? oracle.members(definition.key, now: now).count : oracle.values(definition.key, now: now).count
                    if size == 0 { empty += 1 } else { nonEmpty += 1 }
                }
            }
        }
        #expect(heads == Set(DefinitionParser.heads))
        #expect(operators == Set(AudienceSync.Predicate.Operator.allCases.map(\.rawValue)))
        #expect(ops == Set(ComputeSpec.Operation.allCases.map(\.rawValue)))
        #expect(windows == ["all", "within", "between_ago", "between"])
        #expect(withinPrevious)
        // Both outcomes are common, so a comparison tells something either way.
        #expect(nonEmpty > empty / 4 && empty > nonEmpty / 10, "non-empty \(nonEmpty), empty \(empty)")
    }

    /// The store's own identity queries (links, universe, traits) agree with the oracle's: a check
    /// of SPEC §3.2 on both sides that runs before the engine exists.
    @Test(arguments: StoreKind.allCases)
    func storeIdentityAgreesWithOracle(kind: StoreKind) async throws {
        for seed in stride(from: UInt64(0), to: Self.seeds, by: 3) {
            let compared = try await kind.withStore { (store: any Store, directory: TemporaryDirectory) async throws -> Bool in
                try await Self.compareIdentities(seed: seed, store: store, directory: directory)
                return true
            }
            guard compared != nil else { return }
        }
    }

    static func compareIdentities(seed: UInt64, store: any Store, directory: TemporaryDirectory) async throws {
            let random = try RandomCase(seed: seed)
            try await Self.ingest(random, into: store, directory: directory)
            let oracle = ReferenceEvaluator(messages: random.messages, definitions: random.definitions)
            for now in random.nows {
                let universe = oracle.universe(now: now)
                await #expect(Set(try store.users(now: now)) == universe, "seed \(seed), now \(Timestamp.format(now))")
                for id in RandomCase.anonymous {
                    await #expect(
                        try store.linkedUser(anonymousId: id, now: now) == oracle.linkedUser(id, now: now),
                        "seed \(seed), now \(Timestamp.format(now)), anonymous id \(id)")
                }
                for user in universe {
                    let expected = oracle.traits(user, now: now)
                    let actual = try await store.traits(userId: user, now: now) ?? .object([])
                    #expect(
                        Self.sameTraits(expected, actual),
                        "seed \(seed), now \(Timestamp.format(now)), traits of \(user): expected \(expected.jsonString), store says \(actual.jsonString)"
                    )
                }
            }
    }

    /// Equal trait objects: the same keys; scalars equal by the oracle's strict equality (the store
    /// may respell a number: 30.0 as 30.0 or 1e1 as 10.0), nulls equal, objects byte for byte.
    static func sameTraits(_ a: JSONValue, _ b: JSONValue) -> Bool {
        guard case .object(let left) = a, case .object(let right) = b, left.count == right.count else { return false }
        return left.allSatisfy { member in
            guard let other = b[member.key] else { return false }
            switch (member.value, other) {
            case (.null, .null): return true
            case (.object, _), (.array, _), (_, .object), (_, .array):
                return member.value.canonicalBytes == other.canonicalBytes
            default:
                return ReferenceEvaluator.Value(member.value).equals(ReferenceEvaluator.Value(other))
            }
        }
    }

    // MARK: One seed

    /// The case's messages ingested into a fresh `store` by the real `Ingester`.
    static func ingest(_ random: RandomCase, into store: any Store, directory: TemporaryDirectory) async throws {
        let events = try directory.write("events.ndjson", random.ndjson)
        let ingester = try Ingester(
            sink: store, options: IngestOptions(now: RandomCase.baseNow),
            logger: Logger(label: "differential-tests", factory: { _ in SwiftLogNoOpLogHandler() }))
        let summary = try await ingester.run([events])
        guard summary.accepted == random.messages.count, summary.rejected == 0 else {
            throw AudienceSyncError(
                .input,
                "seed \(random.seed): ingest accepted \(summary.accepted) of \(random.messages.count) messages: \(summary.errors)"
            )
        }
    }

    enum Outcome {
        case agreed
        case disagreed(String)
    }

    static func compare(seed: UInt64, store: any Store, directory: TemporaryDirectory) async throws -> Outcome {
        let random = try RandomCase(seed: seed)
        try await ingest(random, into: store, directory: directory)

        let oracle = ReferenceEvaluator(messages: random.messages, definitions: random.definitions)
        let engine = MembershipEngine(source: store, definitions: random.definitions)
        for now in random.nows {
            for definition in random.definitions.evaluationOrder {
                let key = definition.key
                do {
                    if definition.kind == .audience {
                        let actual = try await engine.members(key: key, now: now)
                        let expected = oracle.members(key, now: now)
                        // Sorted as SQLite sorts text: by UTF-8 bytes.
                        let sorted = actual.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
                        if actual != sorted || Set(actual.map { Array($0.utf8) }).count != actual.count {
                            return .disagreed(
                                report(seed, now, random, key, "members are not sorted and distinct: \(actual)"))
                        }
                        let wrong = expected.symmetricDifference(actual).sorted()
                        if let user = wrong.first {
                            return .disagreed(
                                report(
                                    seed, now, random, key,
                                    "user \(user): expected member \(expected.contains(user)), engine says \(!expected.contains(user)) (\(wrong.count) users differ: \(wrong.prefix(8).joined(separator: ", ")))",
                                    user: user, oracle: oracle))
                        }
                    } else {
                        let actual = try await engine.values(key: key, now: now)
                        let expected = oracle.values(key, now: now)
                        let users = Set(actual.keys).union(expected.keys).sorted()
                        let wrong = users.filter { !same(expected[$0], actual[$0]) }
                        if let user = wrong.first {
                            return .disagreed(
                                report(
                                    seed, now, random, key,
                                    "user \(user): expected \(expected[user]?.json ?? "no value"), engine says \(actual[user]?.json ?? "no value") (\(wrong.count) users differ)",
                                    user: user, oracle: oracle))
                        }
                    }
                } catch {
                    return .disagreed(report(seed, now, random, key, "the engine threw: \(error)"))
                }
            }
        }
        return .agreed
    }

    /// Equal values: numbers by value (an integer and a double may be equal), doubles within
    /// 1e-9 relative (absolute below 1), lists element by element, others exactly.
    static func same(_ a: Literal?, _ b: Literal?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case (let x?, let y?):
            if let p = x.doubleValue, let q = y.doubleValue {
                if case .integer(let i) = x, case .integer(let j) = y { return i == j }
                return abs(p - q) <= 1e-9 * max(1, abs(p), abs(q))
            }
            if case .list(let xs) = x, case .list(let ys) = y {
                return xs.count == ys.count && zip(xs, ys).allSatisfy { same($0, $1) }
            }
            if case .string(let s) = x, case .string(let t) = y { return s.utf8.elementsEqual(t.utf8) }
            return x == y
        default: return false
        }
    }

    /// Everything needed to debug a mismatch: the seed, the definitions involved, the user's messages.
    static func report(
        _ seed: UInt64, _ now: Int64, _ random: RandomCase, _ key: String, _ what: String, user: String? = nil,
        oracle: ReferenceEvaluator? = nil
    ) -> String {
        var text = "seed \(seed), now \(Timestamp.format(now)), definition \(key): \(what)\n"
        // The definition and every definition it refers to, transitively.
        var keys = [key]
        var index = 0
        while index < keys.count {
            for reference in random.definitions[key: keys[index]]?.references ?? [] where !keys.contains(reference.key)
            {
                keys.append(reference.key)
            }
            index += 1
        }
        for key in keys { text += "--- \(key).yml\n\(random.yaml(key))" }
        if let user, let oracle {
            text += "--- traits of \(user) at now: \(oracle.traits(user, now: now).jsonString)\n"
            text += "--- messages concerning \(user) (with their linked anonymous ids):\n"
            for message in oracle.messages(concerning: user) {
                let owner =
                    message.userId ?? message.anonymousId.flatMap { oracle.linkedUser($0, now: now) } ?? "nobody"
                text += "\(message.time > now ? "(after now) " : "")[for \(owner)] \(message.body.jsonString)\n"
            }
        }
        return text
    }
}
