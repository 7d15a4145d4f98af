import Foundation

@testable import AudienceSync

/// A fresh temporary folder for one test, removed when the test is done with it.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("audience-sync-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `text` to `name` inside the folder (creating subfolders) and returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = (path as NSString).appendingPathComponent(name)
        try FileManager.default.createDirectory(
            atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// `path/name`.
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

/// The repository root (for `fixtures/`), found from this file's path.
let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// The error lines of a thrown `AudienceSyncError` or `AudienceSyncErrors`; empty when nothing was thrown.
func errorLines(_ body: () throws -> Void) -> [String] {
    do {
        try body()
        return []
    } catch let error as AudienceSyncError {
        return [error.description]
    } catch let error as AudienceSyncErrors {
        return error.errors.map(\.description)
    } catch {
        return ["unexpected error: \(error)"]
    }
}

/// `errorLines` for a body that awaits.
func errorLines(_ body: () async throws -> Void) async -> [String] {
    do {
        try await body()
        return []
    } catch let error as AudienceSyncError {
        return [error.description]
    } catch let error as AudienceSyncErrors {
        return error.errors.map(\.description)
    } catch {
        return ["unexpected error: \(error)"]
    }
}

/// A report's `--format json` document, parsed.
func reportJSON<Report: Encodable>(_ report: Report) throws -> JSONValue {
    try JSONValue.parse(ReportJSON.encode(report))
}

extension JSONValue {
    /// The elements of an array.
    var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }
}
