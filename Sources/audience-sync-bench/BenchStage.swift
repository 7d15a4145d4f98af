import Foundation
import ArgumentParser

/// A stage of the benchmark, in the order they run.
enum BenchStage: String, CaseIterable {
    case ingest, compute, diff, deliver, serve

    /// What `--stages` runs when not given: every stage but `serve`, which needs the built
    /// `audience-sync` executable beside the benchmark's.
    static let defaultStages: [BenchStage] = [.ingest, .compute, .diff, .deliver]

    /// Whether the stage is measured yet; the others are skipped with a note and null figures.
    var isImplemented: Bool { true }

    /// Whether the stage needs a database of generated events (made untimed when ingest is not a stage).
    /// Diff, deliver and serve build a store of their own (`SyncRun`, `ServeRun`).
    var needsDatabase: Bool { self == .ingest || self == .compute }

    /// Whether the stage runs on SQLite only, and is refused with `--store`: `serve` runs the
    /// `audience-sync` executable as a child process on an SQLite sync store of the work folder,
    /// and reads that file to check what it stored. (Diff and deliver build their sync store on
    /// either kind of store.)
    var isSQLiteOnly: Bool { self == .serve }

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
