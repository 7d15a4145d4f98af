import AudienceSync
import Foundation

/// The compute stage: every enabled definition computed by the real `MembershipEngine` at now,
/// then the hand-written baseline SQL of each definition that has one (`Baseline`), timed the
/// same way and checked to give exactly the engine's result.
///
/// Timing: each query runs once untimed (to warm the page caches), then three times; the figure
/// is the fastest of the three. A run includes stepping every row and building the Swift result.
struct ComputeRun {
    /// The definitions folder and the configuration naming the destinations they may use.
    var definitionsPath: String
    var configurationPath: String
    /// The store: an SQLite file, or a PostgreSQL schema (`--store`).
    var location: StoreLocation
    /// Evaluation time, epoch milliseconds.
    var now: Int64
    /// Print the SQL and query plan of the engine and of the baseline for every definition on standard error.
    var showQueryPlans: Bool

    static let timedRuns = 3

    func measure(into report: inout BenchReport) async throws {
        report.peakResidentBeforeComputeMebibytes = ProcessFigures.peakResidentMebibytes()
        let configuration = try Configuration.load(file: configurationPath)
        let definitions = try DefinitionSet.load(directory: definitionsPath, configuration: configuration)
        try await location.withStore(access: .readOnly, logger: SQLiteStore.silentLogger) { store in
            try await measure(definitions, on: store, into: &report)
        }
    }

    private func measure(
        _ definitions: DefinitionSet, on store: any MembershipSource, into report: inout BenchReport
    ) async throws {
        let engine = MembershipEngine(source: store, definitions: definitions)
        Progress.note(
            "compute: \(definitions.definitions.count) definitions from \(definitionsPath), "
                + "best of \(Self.timedRuns) runs after a warm-up")

        var computeSeconds: [(key: String, seconds: Double)] = []
        var baselineSeconds: [(key: String, seconds: Double)] = []
        var rows: [(key: String, count: Int)] = []
        for definition in definitions.definitions {
            let key = definition.key
            let (seconds, result) = try await Self.bestOfRuns {
                switch definition.kind {
                case .audience: return ComputeResult.members(try await engine.members(key: key, now: now))
                case .computedTrait: return ComputeResult.values(try await engine.values(key: key, now: now))
                }
            }
            computeSeconds.append((key, seconds))
            rows.append((key, result.count))
            var line = "compute: \(key): \(result.count) \(result.noun) in \(format(seconds)) s"
            defer { Progress.note(line) }

            guard let baseline = Baseline.forKey(key) else {
                line += " (no baseline SQL for this key)"
                continue
            }
            guard baseline.kind == definition.kind else {
                throw mismatch(
                    key, "the baseline is a \(baseline.kind.rawValue), the definition a \(definition.kind.rawValue)")
            }
            let (baselineTime, expected) = try await Self.bestOfRuns { try await run(baseline, on: store) }
            baselineSeconds.append((key, baselineTime))
            line += "; baseline SQL \(format(baselineTime)) s"
            if let difference = result.difference(from: expected) {
                throw mismatch(key, difference)
            }
            if showQueryPlans {
                let engineQuery = try engine.statement(key: key, now: now)
                let baselineQuery = baseline.query(now: now, dialect: store.dialect)
                for (whose, query) in [("the engine", engineQuery), ("the baseline", baselineQuery)] {
                    Progress.note("\(key), SQL of \(whose):\n\(query.sql)\nquery plan:\n" + (try await store.plan(query)))
                }
            }
        }
        report.computeSeconds = computeSeconds
        report.computeRows = rows
        report.baselineSQLSeconds = baselineSeconds.isEmpty ? nil : baselineSeconds
        report.baselineMatches = baselineSeconds.isEmpty ? nil : true
    }

    /// The fastest of `timedRuns` runs of `body` after one untimed run, and the last result.
    static func bestOfRuns(_ body: () async throws -> ComputeResult) async throws -> (seconds: Double, result: ComputeResult) {
        var result = try await body()
        var best = Double.infinity
        let clock = ContinuousClock()
        for _ in 0..<timedRuns {
            let started = clock.now
            result = try await body()
            best = min(best, started.duration(to: clock.now).inSeconds)
        }
        return (best, result)
    }

    /// Runs a baseline query into the same shape as the engine's result.
    private func run(_ baseline: Baseline, on store: any MembershipSource) async throws -> ComputeResult {
        let query = baseline.query(now: now, dialect: store.dialect)
        switch baseline.kind {
        case .audience:
            return .members(try await store.memberIDs(query))
        case .computedTrait:
            var values: [String: Literal] = [:]
            for row in try await store.rows(query) {
                guard let uid = row.first?.string else { continue }
                switch row[1] {
                case .integer(let value): values[uid] = .integer(value)
                case .real(let value): values[uid] = .double(value)
                case .text(let value): values[uid] = .string(value)
                case .null, .boolean: values[uid] = .null
                }
            }
            return .values(values)
        }
    }

    private func mismatch(_ key: String, _ detail: String) -> AudienceSyncError {
        AudienceSyncError(
            .input,
            "the baseline SQL for '\(key)' does not give the engine's result at now = \(now), so the comparison "
                + "would mean nothing: \(detail); fix the baseline (Sources/audience-sync-bench/Baseline.swift) "
                + "or the engine")
    }

    private func format(_ seconds: Double) -> String { String(format: "%.3f", seconds) }
}

/// An audience's sorted members, or a computed trait's values by user.
enum ComputeResult {
    case members([String])
    case values([String: Literal])

    var count: Int {
        switch self {
        case .members(let members): return members.count
        case .values(let values): return values.count
        }
    }

    var noun: String {
        switch self {
        case .members: return "members"
        case .values: return "values"
        }
    }

    /// Nil when `expected` holds the same members, or the same users with the same values; else
    /// what differs. Numbers are equal when they agree to 12 significant digits: the engine hands
    /// values over as JSON text (15 significant digits; on PostgreSQL a whole sum is written as an
    /// integer), and a sum of doubles depends on the order SQLite adds them in.
    func difference(from expected: ComputeResult) -> String? {
        switch (self, expected) {
        case (.members(let engine), .members(let baseline)):
            guard engine != baseline else { return nil }
            let onlyEngine = Set(engine).subtracting(baseline).sorted()
            let onlyBaseline = Set(baseline).subtracting(engine).sorted()
            return "the engine has \(engine.count) members, the baseline \(baseline.count); "
                + "only the engine's: \(Self.sample(onlyEngine)); only the baseline's: \(Self.sample(onlyBaseline))"
        case (.values(let engine), .values(let baseline)):
            let onlyEngine = Set(engine.keys).subtracting(baseline.keys).sorted()
            let onlyBaseline = Set(baseline.keys).subtracting(engine.keys).sorted()
            let differing = engine.keys.filter { uid in
                baseline[uid].map { !Self.same(engine[uid]!, $0) } ?? false
            }.sorted()
            guard !onlyEngine.isEmpty || !onlyBaseline.isEmpty || !differing.isEmpty else { return nil }
            let values = differing.prefix(5).map { "\($0): engine \(engine[$0]!), baseline \(baseline[$0]!)" }
            return "the engine has values for \(engine.count) users, the baseline for \(baseline.count); "
                + "only the engine's: \(Self.sample(onlyEngine)); only the baseline's: \(Self.sample(onlyBaseline)); "
                + "\(differing.count) differ\(values.isEmpty ? "" : " (" + values.joined(separator: "; ") + ")")"
        default:
            return "one gives members, the other values"
        }
    }

    private static func same(_ a: Literal, _ b: Literal) -> Bool {
        switch (a, b) {
        case (.double(let x), .double(let y)):
            return x == y || abs(x - y) <= 1e-12 * max(abs(x), abs(y))
        case (.integer(let x), .double), (.double, .integer(let x)):
            return same(.double(Double(x)), a == .integer(x) ? b : a)
        default:
            return a == b
        }
    }

    /// Up to five user ids and how many more.
    private static func sample(_ uids: [String]) -> String {
        guard !uids.isEmpty else { return "none" }
        let more = uids.count > 5 ? " and \(uids.count - 5) more" : ""
        return uids.prefix(5).joined(separator: ", ") + more
    }
}
