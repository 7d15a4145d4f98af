import Foundation
import Yams

/// The project configuration, `audience-sync.yml` (SPEC §5).
///
/// Paths in the file are relative to the file's own folder; they are resolved here once.
/// Secrets are references (`env:NAME`, `file:PATH`) resolved only when a destination needs them.
public struct Configuration: Sendable {
    /// The configuration file as the user named it (used in error messages).
    public var file: String
    /// The folder of `file`; relative paths in the file are resolved against it.
    public var directory: String
    /// The store (`database:`, default `audiences.db`): an SQLite file, resolved, or a PostgreSQL URL as written.
    public var databasePath: String
    /// The PostgreSQL store's password (`database_password:`, a secret); nil: `$PGPASSWORD`, if set.
    public var databasePassword: Secret?
    /// The schema of the PostgreSQL store (`database_schema:`, default `audience_sync`).
    public var databaseSchema: String = PostgresLocation.defaultSchema
    /// The folder of definition files, resolved (`definitions:`, default `audiences`).
    public var definitionsPath: String
    /// The default minimum time between syncs of a pair (`schedule:`, default 2h).
    public var schedule: Duration
    /// Engage's space id, sent in `context.personas` (`space_id:`).
    public var spaceID: String?
    /// The destinations, in the order written; names are unique.
    public var destinations: [DestinationConfiguration]
    /// How `serve` collects events (`server:`); nil when the file has no such section.
    public var server: ServerConfiguration?

    /// The fields `audience-sync.yml` accepts.
    public static let fields = [
        "database", "database_password", "database_schema", "definitions", "schedule", "space_id", "destinations", "server",
    ]
    public static let defaultSchedule = Duration.hours(2)

    public init(
        file: String, directory: String, databasePath: String, definitionsPath: String,
        schedule: Duration = defaultSchedule, spaceID: String? = nil, destinations: [DestinationConfiguration] = []
    ) {
        self.file = file
        self.directory = directory
        self.databasePath = databasePath
        self.definitionsPath = definitionsPath
        self.schedule = schedule
        self.spaceID = spaceID
        self.destinations = destinations
    }

    /// The destination named `name`.
    public func destination(named name: String) -> DestinationConfiguration? {
        destinations.first { $0.name == name }
    }

    /// Loads and checks the configuration file at `file`.
    ///
    /// Throws one `AudienceSyncError` when there is one problem, `AudienceSyncErrors` with all of
    /// them when there are several. Secrets are not read.
    public static func load(file: String) throws -> Configuration {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw AudienceSyncError(.configuration, "cannot read the configuration file", file: file)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw AudienceSyncError(.configuration, "the configuration file is not UTF-8 text", file: file)
        }
        return try parse(text, file: file)
    }

    /// Checks configuration text as if read from `file` (which decides the folder paths are relative to).
    public static func parse(_ text: String, file: String) throws -> Configuration {
        let reader = YAMLReader(file: file, code: .configuration)
        let directory = (file as NSString).deletingLastPathComponent
        var configuration = Configuration(
            file: file, directory: directory,
            databasePath: resolve("audiences.db", relativeTo: directory),
            definitionsPath: resolve("audiences", relativeTo: directory))
        if let node = reader.compose(text), node.tagName != .null,
            let fields = reader.fields(node, allowed: fields, what: "a mapping of settings (database, definitions, …)")
        {
            if let value = fields["database"], let path = reader.string(value, what: "a file path or a postgres:// URL") {
                configuration.databasePath = PostgresLocation.isURL(path) ? path : resolve(path, relativeTo: directory)
            }
            if let value = fields["database_password"],
                let reference = reader.string(value, what: "a secret reference (env:NAME or file:PATH)")
            {
                configuration.databasePassword = Secret(reference: reference, relativeTo: directory)
                if configuration.databasePassword == nil {
                    // Never echo the text: it may be the password itself.
                    reader.fail(
                        "database_password must be env:NAME or file:PATH; a password written into the configuration is refused (value not shown)",
                        at: value)
                }
            }
            if let value = fields["database_schema"], let schema = reader.string(value, what: "a schema name") {
                do {
                    try PostgresLocation.validate(schema: schema)
                    configuration.databaseSchema = schema
                } catch let error as AudienceSyncError {
                    reader.fail(error.message, at: value)
                } catch {}
            }
            let isPostgres = PostgresLocation.isURL(configuration.databasePath)
            if let value = fields["database"], isPostgres {
                do {
                    _ = try PostgresLocation(url: configuration.databasePath)
                } catch let error as AudienceSyncError {
                    reader.fail(error.message, at: value)
                } catch {}
            }
            for name in ["database_password", "database_schema"] where !isPostgres {
                if let value = fields[name] {
                    reader.fail("\(name) applies only to a PostgreSQL database (database: postgres://…)", at: value)
                }
            }
            if let value = fields["definitions"], let path = reader.string(value, what: "a folder path") {
                configuration.definitionsPath = resolve(path, relativeTo: directory)
            }
            if let value = fields["schedule"], let schedule = reader.duration(value) {
                configuration.schedule = schedule
            }
            if let value = fields["space_id"], let spaceID = reader.string(value, what: "a space id") {
                configuration.spaceID = spaceID
            }
            if let value = fields["destinations"], value.tagName != .null,
                let items = reader.list(value, what: "a list of destinations")
            {
                var seen: [String: Node] = [:]
                for item in items {
                    guard let destination = parseDestination(item, reader: reader, directory: directory) else {
                        continue
                    }
                    if let first = seen[destination.name.value] {
                        reader.fail(
                            "duplicate destination name '\(destination.name.value)' (first at line \(first.mark?.line ?? 0))",
                            at: destination.name.node)
                        continue
                    }
                    seen[destination.name.value] = destination.name.node
                    configuration.destinations.append(destination.configuration)
                }
            }
            if let value = fields["server"], value.tagName != .null {
                configuration.server = ServerConfiguration.parse(value, reader: reader, directory: directory)
            }
        }
        let errors = reader.errors.enumerated().sorted {
            ($0.element.line ?? 0, $0.element.column ?? 0, $0.offset) < (
                $1.element.line ?? 0, $1.element.column ?? 0, $1.offset
            )
        }.map(\.element)
        switch errors.count {
        case 0: return configuration
        case 1: throw errors[0]
        default: throw AudienceSyncErrors(errors)
        }
    }

    private static func parseDestination(
        _ node: Node, reader: YAMLReader, directory: String
    ) -> (configuration: DestinationConfiguration, name: (value: String, node: Node))? {
        guard let mapping = reader.mapping(node, what: "a destination (a mapping with name and type)") else {
            return nil
        }
        let allTypes = DestinationConfiguration.Kind.allCases.map(\.rawValue)
        let typeNode = mapping["type"]
        let kind: DestinationConfiguration.Kind?
        if let typeNode {
            if case .scalar(let scalar) = typeNode, let value = DestinationConfiguration.Kind(rawValue: scalar.string) {
                kind = value
            } else {
                let got = (typeNode.scalar?.string).map { "'\($0)'" } ?? YAMLReader.describe(typeNode)
                reader.fail(
                    "unknown destination type \(got) (expected one of \(allTypes.joined(separator: ", ")))",
                    at: typeNode)
                kind = nil
            }
        } else {
            reader.fail("missing field 'type' (expected one of \(allTypes.joined(separator: ", ")))", at: node)
            kind = nil
        }
        // Without a known type, check the fields any destination may have.
        let allowed =
            kind?.fields
            ?? [
                "name", "type", "write_key", "api_key", "endpoint", "path", "timeout", "max_retries", "concurrency",
                "rate_limit", "send_as",
            ]
        let what = kind.map { "a \($0.rawValue) destination" } ?? "a destination"
        guard let fields = reader.fields(node, allowed: allowed, what: what) else { return nil }

        var name: String?
        if let value = fields["name"] {
            name = reader.string(value, what: "a destination name")
        } else {
            reader.fail("missing field 'name' in a destination", at: node)
        }
        var secret: Secret?
        if let kind, let field = kind.secretField {
            if let value = fields[field] {
                if case .scalar(let scalar) = value, value.tagName != .null {
                    secret = Secret(reference: scalar.string, relativeTo: directory)
                    if secret == nil {
                        // Never echo the text: it may be the secret itself.
                        reader.fail(
                            "\(field) must be env:NAME or file:PATH; a secret written into the configuration is refused (value not shown)",
                            at: value)
                    }
                } else {
                    reader.fail(
                        "expected \(field): env:NAME or file:PATH (got \(YAMLReader.describe(value)))", at: value)
                }
            } else {
                reader.fail("missing field '\(field)' in \(what) (give env:NAME or file:PATH)", at: node)
            }
        }
        var endpoint: URL?
        if let value = fields["endpoint"], let text = reader.string(value, what: "a URL") {
            endpoint = checkEndpoint(text, node: value, reader: reader)
        }
        var path: String?
        if kind == .file {
            if let value = fields["path"] {
                path = reader.string(value, what: "a file path").map { resolve($0, relativeTo: directory) }
            } else {
                reader.fail("missing field 'path' in a file destination", at: node)
            }
        }
        var destination = DestinationConfiguration(name: name ?? "", kind: kind ?? .file, secret: secret, path: path)
        if let endpoint { destination.endpoint = endpoint }
        if let value = fields["timeout"],
            let timeout = reader.number(value, what: "timeout in seconds", in: 0.001...3600)
        {
            destination.timeout = timeout
        }
        if let value = fields["max_retries"], let retries = reader.integer(value, what: "max_retries", in: 0...100) {
            destination.maxRetries = Int(retries)
        }
        if let value = fields["concurrency"], let concurrency = reader.integer(value, what: "concurrency", in: 1...256)
        {
            destination.concurrency = Int(concurrency)
        }
        if let value = fields["rate_limit"],
            let limit = reader.number(value, what: "rate_limit in requests per second", in: 0.001...100_000)
        {
            destination.rateLimit = limit
        }
        if let value = fields["send_as"] {
            let options = DestinationConfiguration.SendAs.allCases.map(\.rawValue)
            if case .scalar(let scalar) = value, let sendAs = DestinationConfiguration.SendAs(rawValue: scalar.string) {
                destination.sendAs = sendAs
                if kind == .sprig && sendAs == .track {
                    // Sprig's user API takes attributes, not events: sending attributes anyway would
                    // quietly ignore what the user asked for.
                    reader.fail(
                        "send_as: track is not available for a sprig destination: Sprig's user API takes attributes, not events (remove send_as or use identify)",
                        at: value)
                }
            } else {
                let got = (value.scalar?.string).map { "'\($0)'" } ?? YAMLReader.describe(value)
                reader.fail("unknown send_as \(got) (expected one of \(options.joined(separator: ", ")))", at: value)
            }
        }
        guard let name, kind != nil, let nameNode = fields["name"] else { return nil }
        return (destination, (name, nameNode))
    }

    /// The endpoint URL if it is http(s) with a host, and plain http only to a loopback host.
    private static func checkEndpoint(_ text: String, node: Node, reader: YAMLReader) -> URL? {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty, let url = components.url
        else {
            reader.fail("expected an http(s) URL like https://api.segment.io/v1/batch (got '\(text)')", at: node)
            return nil
        }
        guard components.user == nil, components.password == nil else {
            // Not echoed: the user part may hold a key. Keys go in write_key/api_key.
            reader.fail("an endpoint may not carry credentials (user:password@); use write_key or api_key", at: node)
            return nil
        }
        switch scheme {
        case "https": return url
        case "http":
            guard DestinationConfiguration.isLoopback(host: host) else {
                reader.fail(
                    "plain http is refused for host '\(host)': use https (http is allowed only to loopback: 127.0.0.0/8, ::1, localhost)",
                    at: node)
                return nil
            }
            return url
        default:
            reader.fail("expected an http or https URL (got scheme '\(scheme)')", at: node)
            return nil
        }
    }

    /// `path` if absolute, else `path` inside `directory`.
    public static func resolve(_ path: String, relativeTo directory: String) -> String {
        if path.hasPrefix("/") || directory.isEmpty { return path }
        return (directory as NSString).appendingPathComponent(path)
    }
}
