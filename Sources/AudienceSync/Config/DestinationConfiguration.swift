import Foundation

/// One entry of `destinations:` in `audience-sync.yml` (SPEC §5, §6.2).
public struct DestinationConfiguration: Hashable, Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        /// The Segment HTTP Tracking API (or any compatible collector).
        case segment
        /// Sprig's user API.
        case sprig
        /// NDJSON appended to a local file.
        case file
    }

    /// How membership changes are sent.
    public enum SendAs: String, CaseIterable, Sendable {
        /// `identify` with `{key: true|false}` traits (the default).
        case identify
        /// Engage's `Audience Entered` / `Audience Exited` track events (computed traits are
        /// still sent as identify).
        case track
    }

    /// Unique among destinations; what definitions and `--destination` name.
    public var name: String
    public var kind: Kind
    /// `write_key` (segment) or `api_key` (sprig); nil for `file`.
    public var secret: Secret?
    /// The URL requests go to: `endpoint:`, else the service's default; nil for `file`.
    public var endpoint: URL?
    /// The output file of a `file` destination, resolved against the configuration's folder.
    public var path: String?
    /// Seconds before a request is abandoned (and retried).
    public var timeout: Double
    /// Retries of a retryable failure before the batch counts as failed.
    public var maxRetries: Int
    /// Requests in flight at once.
    public var concurrency: Int
    /// Requests started per second at most.
    public var rateLimit: Double
    public var sendAs: SendAs

    public static let defaultTimeout: Double = 30
    public static let defaultMaxRetries = 5
    public static let defaultConcurrency = 4
    public static let defaultRateLimit: Double = 20

    public init(
        name: String, kind: Kind, secret: Secret? = nil, endpoint: URL? = nil, path: String? = nil,
        timeout: Double = defaultTimeout, maxRetries: Int = defaultMaxRetries,
        concurrency: Int = defaultConcurrency, rateLimit: Double = defaultRateLimit, sendAs: SendAs = .identify
    ) {
        self.name = name
        self.kind = kind
        self.secret = secret
        self.endpoint = endpoint ?? kind.defaultEndpoint
        self.path = path
        self.timeout = timeout
        self.maxRetries = maxRetries
        self.concurrency = concurrency
        self.rateLimit = rateLimit
        self.sendAs = sendAs
    }
}

extension DestinationConfiguration.Kind {
    /// The service's own URL; nil for `file`.
    public var defaultEndpoint: URL? {
        switch self {
        case .segment: return URL(string: "https://api.segment.io/v1/batch")
        case .sprig: return URL(string: "https://api.sprig.com/v2/users")
        case .file: return nil
        }
    }

    /// The field holding this kind's secret: `write_key`, `api_key`; nil for `file`.
    public var secretField: String? {
        switch self {
        case .segment: return "write_key"
        case .sprig: return "api_key"
        case .file: return nil
        }
    }

    /// The fields a destination of this kind accepts.
    var fields: [String] {
        switch self {
        case .segment, .sprig:
            return [
                "name", "type", secretField!, "endpoint", "timeout", "max_retries", "concurrency", "rate_limit",
                "send_as",
            ]
        case .file:
            return ["name", "type", "path", "send_as"]
        }
    }
}

extension DestinationConfiguration {
    /// Whether `host` (as a URL gives it) is loopback: `localhost`, 127.0.0.0/8 or `::1`.
    public static func isLoopback(host: String) -> Bool {
        var host = host.lowercased()
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "localhost" || host == "localhost." || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isASCII) && part.allSatisfy(\.isNumber)
                && Int(part)! <= 255
        }
    }
}
