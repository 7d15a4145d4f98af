import AudienceSync
import Foundation

/// Figures about this process and the machine it runs on.
enum ProcessFigures {
    /// The peak resident set of the whole process so far, in MiB (`ru_maxrss`: KiB on Linux, bytes on macOS).
    static func peakResidentMebibytes() -> Double {
        var usage = rusage()
        #if os(Linux)
            getrusage(RUSAGE_SELF.rawValue, &usage)
            return Double(usage.ru_maxrss) / 1024
        #else
            getrusage(RUSAGE_SELF, &usage)
            return Double(usage.ru_maxrss) / (1024 * 1024)
        #endif
    }

    /// `{"cpus": n, "cpu_model": "…", "memory_mb": n}`; a field is null where it cannot be read.
    static var machine: JSONValue {
        .object([
            "cpus": .int(ProcessInfo.processInfo.activeProcessorCount),
            "cpu_model": .string(procField("/proc/cpuinfo", "model name")),
            "memory_mb": procField("/proc/meminfo", "MemTotal")
                .flatMap { Int($0.split(separator: " ").first ?? "") }
                .map { JSONValue.int($0 / 1024) } ?? .null,
        ])
    }

    /// The value after `name:` on the first matching line of a `/proc` file.
    private static func procField(_ path: String, _ name: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                return parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }
}

/// Sizes of a SQLite database on disk.
enum DatabaseFiles {
    /// The database file plus its `-wal` if present, in bytes.
    static func size(of path: String) -> Int {
        [path, path + "-wal"].reduce(0) { total, file in
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? nil
            return total + (size ?? 0)
        }
    }
}

/// Progress lines on standard error.
enum Progress {
    static func note(_ text: String) {
        FileHandle.standardError.write(Data(("audience-sync-bench: " + text + "\n").utf8))
    }
}
