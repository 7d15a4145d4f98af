import Foundation
import NIOSSL
import PostgresNIO

/// A PostgreSQL store as the configuration names it (SPEC §12): `database: postgres://…`, the
/// password as a secret (`database_password:`; else `$PGPASSWORD`, as libpq reads it) and the
/// schema the store's tables live in (`database_schema:`, default `audience_sync`).
///
/// The URL is `postgres://USER@HOST[:PORT]/DATABASE[?PARAMETERS]` (or `postgresql://`). Its
/// parameters: `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`; default
/// `disable` on a loopback host and `require` elsewhere), `sslrootcert` (a CA file for the
/// `verify-` modes), `connect_timeout` (seconds, default 10) and `pool_size` (connections, default 8).
/// A password written into the URL is refused, so that it is never printed with the URL.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var schema: String
    public var password: Secret?
    public var sslMode: SSLMode
    public var rootCertificate: String?
    public var connectTimeoutSeconds: Int
    public var poolSize: Int

    public enum SSLMode: String, Sendable, CaseIterable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public static let defaultSchema = "audience_sync"
    static let parameters = ["sslmode", "sslrootcert", "connect_timeout", "pool_size"]

    /// Whether `text` names a PostgreSQL database rather than an SQLite file.
    public static func isURL(_ text: String) -> Bool {
        let lowered = text.lowercased()
        return lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://")
    }

    /// Parses the URL; throws a configuration error naming what is wrong (never a password).
    public init(url text: String, password: Secret? = nil, schema: String = PostgresLocation.defaultSchema) throws {
        func invalid(_ why: String) -> AudienceSyncError {
            AudienceSyncError(.configuration, "database: \(why) (expected postgres://USER@HOST[:PORT]/DATABASE[?sslmode=…])")
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "postgres" || scheme == "postgresql"
        else {
            throw invalid("not a PostgreSQL URL")
        }
        guard components.password == nil else {
            throw AudienceSyncError(
                .configuration,
                "database: the URL holds a password, which is refused; give it as database_password: env:NAME or file:PATH (value not shown)"
            )
        }
        guard let host = components.host, !host.isEmpty else { throw invalid("no host") }
        guard let user = components.user, !user.isEmpty else { throw invalid("no user") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else { throw invalid("no database name after the host") }
        self.host = host
        port = components.port ?? 5432
        self.user = user
        self.database = database
        self.password = password
        try Self.validate(schema: schema)
        self.schema = schema
        var values: [String: String] = [:]
        for item in components.queryItems ?? [] {
            guard Self.parameters.contains(item.name) else {
                throw invalid("unknown parameter '\(item.name)' (known: \(Self.parameters.joined(separator: ", ")))")
            }
            values[item.name] = item.value ?? ""
        }
        if let mode = values["sslmode"] {
            guard let parsed = SSLMode(rawValue: mode) else {
                throw invalid(
                    "sslmode must be one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", ")), not '\(mode)'")
            }
            sslMode = parsed
        } else {
            sslMode = Self.isLoopback(host) ? .disable : .require
        }
        rootCertificate = values["sslrootcert"]
        connectTimeoutSeconds = 10
        if let text = values["connect_timeout"] {
            guard let seconds = Int(text), seconds > 0 else { throw invalid("connect_timeout must be a number of seconds") }
            connectTimeoutSeconds = seconds
        }
        poolSize = 8
        if let text = values["pool_size"] {
            guard let size = Int(text), (2...100).contains(size) else { throw invalid("pool_size must be 2 to 100") }
            poolSize = size
        }
    }

    /// A schema name is written into SQL (`CREATE SCHEMA`, the search path), so it must be a plain
    /// lower-case identifier: a letter or `_`, then letters, digits or `_`, at most 63 bytes.
    public static func validate(schema: String) throws {
        let bytes = Array(schema.utf8)
        let valid =
            !bytes.isEmpty && bytes.count <= 63
            && bytes.enumerated().allSatisfy { index, byte in
                (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || (index > 0 && byte >= 0x30 && byte <= 0x39)
            }
        guard valid else {
            throw AudienceSyncError(
                .configuration,
                "database_schema: '\(schema)' is not a plain schema name (lower-case letters, digits and _, starting with a letter or _, at most 63)"
            )
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// `postgres://user@host:port/database (schema s)`: where the store is, safe to print.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database) (schema \(schema))" }

    /// The client's configuration: TLS per `sslmode`, the search path set to the store's schema on
    /// every connection, the pool's size and timeouts. Reads the password (from the secret, else
    /// `$PGPASSWORD`).
    func clientConfiguration(environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> PostgresClient.Configuration
    {
        let tls = tlsConfiguration()
        let mode: PostgresClient.Configuration.TLS
        switch sslMode {
        case .disable: mode = .disable
        case .prefer: mode = .prefer(tls)
        case .require, .verifyCA, .verifyFull: mode = .require(tls)
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: user, password: try password(environment), database: database, tls: mode)
        configuration.options.connectTimeout = Swift.Duration.seconds(connectTimeoutSeconds)
        configuration.options.maximumConnections = poolSize
        configuration.options.minimumConnections = 0
        configuration.options.keepAliveBehavior = nil
        configuration.options.additionalStartupParameters = startupParameters(environment)
        return configuration
    }

    /// The same settings for one connection of its own (the store's first, whose failure is the
    /// server's own error, reported at once, where the pool would keep trying).
    func connectionConfiguration(environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> PostgresConnection.Configuration
    {
        let mode: PostgresConnection.Configuration.TLS
        switch sslMode {
        case .disable: mode = .disable
        case .prefer: mode = .prefer(try NIOSSLContext(configuration: tlsConfiguration()))
        case .require, .verifyCA, .verifyFull: mode = .require(try NIOSSLContext(configuration: tlsConfiguration()))
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: try password(environment), database: database, tls: mode)
        configuration.options.connectTimeout = .seconds(Int64(connectTimeoutSeconds))
        configuration.options.additionalStartupParameters = startupParameters(environment)
        return configuration
    }

    /// Every statement finds the store's tables (and nothing else) by their plain names; every
    /// connection is listed in `pg_stat_activity` as `application_name` `audience-sync`, or as
    /// `$PGAPPNAME` says (as libpq reads it), so that an administrator can tell jobs apart; and JIT
    /// compilation is off: the planner's estimate of an audience's index scan passes
    /// `jit_above_cost` at a few hundred thousand events, and compiling the statement then costs
    /// more than it saves (BENCHMARKS.md, "PostgreSQL": 2.73 s with JIT, 1.60 s without, for one
    /// audience at 2M events).
    private func startupParameters(_ environment: [String: String]) -> [(String, String)] {
        let name = environment["PGAPPNAME"].flatMap { $0.isEmpty ? nil : $0 } ?? "audience-sync"
        return [("search_path", schema), ("application_name", name), ("jit", "off")]
    }

    /// The password: the secret's, else `$PGPASSWORD` (as libpq), else none.
    private func password(_ environment: [String: String]) throws -> String? {
        if let secret = password { return try secret.resolve(environment: environment) }
        return environment["PGPASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
    }

    private func tlsConfiguration() -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch sslMode {
        case .disable, .prefer, .require:
            // As libpq: these modes encrypt but do not check the server's certificate.
            tls.certificateVerification = .none
        case .verifyCA:
            tls.certificateVerification = .noHostnameVerification
        case .verifyFull:
            tls.certificateVerification = .fullVerification
        }
        if let rootCertificate { tls.trustRoots = .file(rootCertificate) }
        return tls
    }
}
