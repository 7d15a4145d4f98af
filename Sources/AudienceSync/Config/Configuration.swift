import Foundation
import Yams

/// The project configuration, `audience-sync.yml` (SPEC §5).
///
/// Paths in the file are relative to the file's own folder; they are resolved here once.
public struct Configuration: Sendable {
    /// The configuration file as the user named it (used in error messages).
    public var file: String
    /// The folder of `file`; relative paths in the file are resolved against it.
    public var directory: String
    /// The SQLite store, resolved (`database:`, default `audiences.db`).
    public var databasePath: String
    /// The folder of definition files, resolved (`definitions:`, default `audiences`).
    public var definitionsPath: String

    public init(file: String, directory: String, databasePath: String, definitionsPath: String) {
        self.file = file
        self.directory = directory
        self.databasePath = databasePath
        self.definitionsPath = definitionsPath
    }

    /// Loads and checks the configuration file at `file`.
    public static func load(file: String) throws -> Configuration {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw AudienceSyncError(.configuration, "cannot read the configuration file", file: file)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw AudienceSyncError(.configuration, "the configuration file is not UTF-8 text", file: file)
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw AudienceSyncError(.configuration, "malformed YAML: \(error)", file: file)
        }
        let directory = (file as NSString).deletingLastPathComponent
        var database = "audiences.db"
        var definitions = "audiences"
        if let node {
            guard let mapping = node.mapping else {
                throw AudienceSyncError(
                    .configuration, "expected a mapping of settings", file: file, line: node.mark?.line,
                    column: node.mark?.column)
            }
            if let value = mapping["database"]?.string { database = value }
            if let value = mapping["definitions"]?.string { definitions = value }
        }
        return Configuration(
            file: file, directory: directory,
            databasePath: resolve(database, relativeTo: directory),
            definitionsPath: resolve(definitions, relativeTo: directory))
    }

    /// `path` if absolute, else `path` inside `directory`.
    public static func resolve(_ path: String, relativeTo directory: String) -> String {
        if path.hasPrefix("/") || directory.isEmpty { return path }
        return (directory as NSString).appendingPathComponent(path)
    }
}
