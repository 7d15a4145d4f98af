import Foundation

/// Where a secret (a write key, an API key) is read from: `env:NAME` or `file:PATH`.
///
/// Only the reference is kept; the value is read on demand by `resolve()` and never stored here,
/// so a configuration can be loaded, validated and printed without the secret being present.
/// `description`, `debugDescription` and reflection all show `<redacted>`.
public struct Secret: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public enum Source: Hashable, Sendable {
        /// An environment variable's name.
        case environment(String)
        /// A file's path, resolved against the configuration's folder.
        case file(String)
    }

    /// Where the value is read from. It names a variable or file, not the value itself.
    public let source: Source

    public init(_ source: Source) { self.source = source }

    /// Parses `env:NAME` or `file:PATH` (`PATH` relative to `directory`); nil for anything else,
    /// which includes a secret written literally.
    public init?(reference: String, relativeTo directory: String) {
        if reference.hasPrefix("env:") {
            let name = String(reference.dropFirst(4))
            guard !name.isEmpty, !name.contains(where: { $0.isWhitespace || $0 == "=" }) else { return nil }
            source = .environment(name)
        } else if reference.hasPrefix("file:") {
            let path = String(reference.dropFirst(5))
            guard !path.isEmpty else { return nil }
            source = .file(Configuration.resolve(path, relativeTo: directory))
        } else {
            return nil
        }
    }

    /// Reads the value: the variable from `environment`, or the file with trailing whitespace
    /// (the newline editors add) removed. Throws a configuration error that names where it looked,
    /// never the value, when it is missing or empty.
    public func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        switch source {
        case .environment(let name):
            guard let value = environment[name], !value.isEmpty else {
                throw AudienceSyncError(
                    .configuration, "the environment variable \(name) is not set (it holds a secret)")
            }
            return value
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path),
                let text = String(data: data, encoding: .utf8)
            else {
                throw AudienceSyncError(.configuration, "cannot read the secret file", file: path)
            }
            let value = String(text.trimmingWhitespace)
            guard !value.isEmpty else {
                throw AudienceSyncError(.configuration, "the secret file is empty", file: path)
            }
            return value
        }
    }

    /// Where the secret comes from, safe to show: `env:SPRIG_API_KEY`, `file:/etc/keys/segment`.
    public var reference: String {
        switch source {
        case .environment(let name): return "env:\(name)"
        case .file(let path): return "file:\(path)"
        }
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
