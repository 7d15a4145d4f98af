import Yams

/// The `server:` section of `audience-sync.yml`: how `audience-sync serve` collects events
/// (SPEC §11).
public struct ServerConfiguration: Sendable {
    /// A sending application: its name is stored with every message it sends.
    public struct Source: Sendable {
        public var name: String
        public var writeKey: Secret
    }

    /// Where to listen (`HOST:PORT`).
    public var listen: ListenAddress
    public var sources: [Source]
    /// Enables `POST /v1/webhook`, whose bodies are signed with it.
    public var webhookSecret: Secret?
    /// Origins whose browsers may post (`*`: any); none by default.
    public var corsOrigins: [String]
    /// A message larger than this is refused on its own (Segment's 32 KB).
    public var maxMessageBytes: Int
    /// A request larger than this after decompression is refused (Segment's 500 KB).
    public var maxRequestBytes: Int
    /// Accepted but not yet committed, in bytes: past it, requests are answered 503.
    public var maxQueuedBytes: Int

    public static let fields = [
        "listen", "sources", "webhook_secret", "cors_origins", "max_message_bytes", "max_request_bytes",
        "max_queued_bytes",
    ]
    public static let defaultListen = ListenAddress(host: "127.0.0.1", port: 8088)

    public init(
        listen: ListenAddress = defaultListen, sources: [Source] = [], webhookSecret: Secret? = nil,
        corsOrigins: [String] = [], maxMessageBytes: Int = 32_768, maxRequestBytes: Int = 512_000,
        maxQueuedBytes: Int = 64 << 20
    ) {
        self.listen = listen
        self.sources = sources
        self.webhookSecret = webhookSecret
        self.corsOrigins = corsOrigins
        self.maxMessageBytes = maxMessageBytes
        self.maxRequestBytes = maxRequestBytes
        self.maxQueuedBytes = maxQueuedBytes
    }

    /// Reads the section, reporting problems through `reader` (file:line:col).
    static func parse(_ node: Node, reader: YAMLReader, directory: String) -> ServerConfiguration? {
        guard let fields = reader.fields(node, allowed: fields, what: "the server settings (listen, sources, …)")
        else { return nil }
        var server = ServerConfiguration()
        if let value = fields["listen"], let text = reader.string(value, what: "HOST:PORT") {
            if let address = ListenAddress(text) {
                server.listen = address
            } else {
                reader.fail("expected HOST:PORT like 127.0.0.1:8088 or 0.0.0.0:8088 (got '\(text)')", at: value)
            }
        }
        func secret(_ value: Node, field: String) -> Secret? {
            if case .scalar(let scalar) = value, value.tagName != .null {
                if let secret = Secret(reference: scalar.string, relativeTo: directory) { return secret }
                // Never echo the text: it may be the secret itself.
                reader.fail(
                    "\(field) must be env:NAME or file:PATH; a secret written into the configuration is refused (value not shown)",
                    at: value)
            } else {
                reader.fail("expected \(field): env:NAME or file:PATH (got \(YAMLReader.describe(value)))", at: value)
            }
            return nil
        }
        if let value = fields["sources"], let items = reader.list(value, what: "a list of sources (name and write_key)") {
            var seen: [String: Node] = [:]
            for item in items {
                guard let source = reader.fields(item, allowed: ["name", "write_key"], what: "a source (name and write_key)")
                else { continue }
                var name: String?
                if let node = source["name"] {
                    name = reader.string(node, what: "a source name")
                    if let name, let first = seen[name] {
                        reader.fail("duplicate source name '\(name)' (first at line \(first.mark?.line ?? 0))", at: node)
                    } else if let name {
                        seen[name] = node
                    }
                } else {
                    reader.fail("missing field 'name' in a source", at: item)
                }
                var writeKey: Secret?
                if let node = source["write_key"] {
                    writeKey = secret(node, field: "write_key")
                } else {
                    reader.fail("missing field 'write_key' in a source (give env:NAME or file:PATH)", at: item)
                }
                if let name, let writeKey { server.sources.append(Source(name: name, writeKey: writeKey)) }
            }
        }
        if let value = fields["webhook_secret"], value.tagName != .null {
            server.webhookSecret = secret(value, field: "webhook_secret")
        }
        if let value = fields["cors_origins"], value.tagName != .null,
            let items = reader.list(value, what: "a list of origins, like [https://app.example.com]")
        {
            server.corsOrigins = items.compactMap { reader.string($0, what: "an origin like https://app.example.com") }
        }
        if let value = fields["max_message_bytes"],
            let bytes = reader.integer(value, what: "max_message_bytes", in: 1...(64 << 20))
        {
            server.maxMessageBytes = Int(bytes)
        }
        if let value = fields["max_request_bytes"],
            let bytes = reader.integer(value, what: "max_request_bytes", in: 1...(1 << 30))
        {
            server.maxRequestBytes = Int(bytes)
        }
        if let value = fields["max_queued_bytes"],
            let bytes = reader.integer(value, what: "max_queued_bytes", in: 1...(1 << 40))
        {
            server.maxQueuedBytes = Int(bytes)
        }
        return server
    }
}

/// A host and port to listen on.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `HOST:PORT` (`[::1]:8088` for an IPv6 host); nil when it is not one (a port of 0 asks the
    /// system for a free one).
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }) else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
