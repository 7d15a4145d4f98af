import AudienceSync
import Foundation

/// The folder for generated files: one the user named (kept), or a fresh temporary one
/// (removed by `finish()` unless `keep`).
struct WorkFolder {
    let path: String
    private let removeAtEnd: Bool

    init(path: String?, keep: Bool) throws {
        if let path {
            self.path = path
            removeAtEnd = false
        } else {
            self.path = (NSTemporaryDirectory() as NSString)
                .appendingPathComponent("audience-sync-bench-\(UUID().uuidString)")
            removeAtEnd = !keep
        }
        do {
            try FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: true)
        } catch {
            throw AudienceSyncError(.io, "cannot create the work folder", file: self.path, underlying: error)
        }
        if !removeAtEnd { Progress.note("work folder \(self.path) (kept)") }
    }

    /// `path/name`.
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    func finish() {
        if removeAtEnd { try? FileManager.default.removeItem(atPath: path) }
    }
}
