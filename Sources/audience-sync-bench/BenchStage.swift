import Foundation
import ArgumentParser

/// A stage of the benchmark, in the order they run.
enum BenchStage: String, CaseIterable {
    case ingest, compute, diff, deliver

    /// Whether the stage is measured yet; the others are skipped with a note and null figures.
    var isImplemented: Bool { true }

    /// Whether the stage needs a database of generated events (made untimed when ingest is not a stage).
    /// Diff and deliver build a store of their own (`SyncRun`).
    var needsDatabase: Bool { self == .ingest || self == .compute }

    /// Whether the stage needs the sync state (snapshots, outbox, runs), which only the SQLite
    /// store keeps for now: these stages are refused with `--store`.
    var needsSyncState: Bool { self == .diff || self == .deliver }

    /// `ingest,compute` → the stages, in run order, without repeats.
    static func parseList(_ text: String) throws -> [BenchStage] {
        var chosen = Set<BenchStage>()
        for name in text.split(separator: ",") {
            let trimmed = name.trimmingCharacters(in: .whitespaces)
            guard let stage = BenchStage(rawValue: trimmed) else {
                let names = allCases.map(\.rawValue).joined(separator: ", ")
                throw ValidationError("--stages: unknown stage '\(trimmed)' (expected \(names)).")
            }
            chosen.insert(stage)
        }
        guard !chosen.isEmpty else { throw ValidationError("--stages: name at least one stage.") }
        return allCases.filter(chosen.contains)
    }
}
