import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Answers the collection endpoint's requests (SPEC §11): the routes, both forms of
/// authentication, the body (JSON or text, gzip or not, sizes checked while it is read), CORS, and
/// the answers of §11.2. Messages go to the `Committer`; a 200 is sent once they are committed.
struct CollectorResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    /// A configured source with its resolved write key, kept as a digest for comparing.
    struct Source: Sendable {
        var name: String
        var keyDigest: SHA256Digest
    }

    let sources: [Source]
    /// The webhook secret, resolved; nil: `/v1/webhook` is not enabled (404).
    let webhookSecret: SymmetricKey?
    let corsOrigins: [String]
    let maxRequestBytes: Int
    let stager: RequestStager
    let committer: Committer
    let metrics: CollectorMetrics
    let logger: Logger
    let clock: @Sendable () -> Int64

    /// The source whose write key is `key`: every source is compared, in constant time, whatever
    /// the key (digests of equal length, no early exit).
    func source(writeKey key: String) -> String? {
        let digest = Self.digest(ofWriteKey: key)
        var found: String?
        digest.withUnsafeBytes { digest in
            for source in sources {
                var difference: UInt8 = 0
                source.keyDigest.withUnsafeBytes { expected in
                    for (a, b) in zip(digest, expected) { difference |= a ^ b }
                }
                if difference == 0 && found == nil { found = source.name }
            }
        }
        return found
    }

    /// The key's SHA-256, hashed from its UTF-8 in place (no copies into arrays for each request).
    static func digest(ofWriteKey key: String) -> SHA256Digest {
        var key = key
        return key.withUTF8 { bytes in
            var hasher = SHA256()
            hasher.update(bufferPointer: UnsafeRawBufferPointer(bytes))
            return hasher.finalize()
        }
    }

    func respond(to request: Request, context: Context) async throws -> Response {
        let started = ContinuousClock.now
        guard let route = CollectorRoute(path: request.uri.path) else {
            return finish(
                answer(.notFound, error: "no such route: \(request.uri.path.prefix(100))", request: request),
                route: "unknown", started: started)
        }
        let response: Response
        switch (route, request.method) {
        case (.health, .get), (.health, .head):
            response = await health(request)
        case (.metrics, .get), (.metrics, .head):
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            response = Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: metrics.text())))
        case (_, .options) where route.takesMessages:
            response = preflight(request)
        case (_, .post) where route.takesMessages:
            response = await post(request, route: route)
        default:
            var answered = answer(
                .methodNotAllowed, error: "\(request.method) is not allowed on \(request.uri.path)", request: request)
            answered.headers[.allow] = route.takesMessages ? "POST, OPTIONS" : "GET, HEAD"
            response = answered
        }
        return finish(response, route: route.name, started: started)
    }

    private func finish(_ response: Response, route: String, started: ContinuousClock.Instant) -> Response {
        metrics.request(route: route, status: Int(response.status.code))
        logger.debug(
            "request",
            metadata: [
                "route": "\(route)", "status": "\(response.status.code)",
                "ms": "\(Int(Committer.seconds(ContinuousClock.now - started) * 1000))",
            ])
        return response
    }

    // MARK: Messages

    private func post(_ request: Request, route: CollectorRoute) async -> Response {
        // Bodies are JSON, sent as application/json or (analytics.js) text/plain; a client that
        // says otherwise (curl's form type) is read as JSON all the same.
        let gzip: Bool
        switch request.headers.value(of: .contentEncoding)?.trimmingCharacters(in: .whitespaces).lowercased() {
        case nil, "", "identity": gzip = false
        case "gzip": gzip = true
        case let other?:
            return answer(
                .unsupportedMediaType, error: "Content-Encoding must be gzip or identity (got \(other.prefix(40)))",
                request: request)
        }
        let body: RequestBodyReader.Body
        do {
            body = try await RequestBodyReader.read(request.body, gzip: gzip, limit: maxRequestBytes)
        } catch {
            switch error as? RequestBodyReader.Failure ?? .read("\(error)") {
            case .tooLarge:
                return answer(
                    .contentTooLarge, error: "the request is over the limit of \(maxRequestBytes) bytes", request: request)
            case .gzip(let failure):
                return answer(.unsupportedMediaType, error: "the gzip body is not readable: \(failure)", request: request)
            case .read(let reason):
                return answer(.badRequest, error: "the body could not be read: \(reason)", request: request)
            }
        }
        metrics.received(bytes: body.received.count)

        // Who sends: the webhook's signature, else the write key (Basic auth, or in the body).
        let sourceName: String
        if route == .webhook {
            guard let webhookSecret else {
                return answer(.notFound, error: "the webhook is not enabled (no webhook_secret)", request: request)
            }
            guard let signature = request.headers[HTTPField.Name("X-Signature")!],
                Self.signatureMatches(signature, body: body.received, key: webhookSecret)
            else {
                return answer(.unauthorized, error: "missing or wrong X-Signature", request: request)
            }
            sourceName = "webhook"
        } else {
            guard let key = Self.basicUser(request.headers.value(of: .authorization)) ?? RequestStager.writeKey(in: body.text)
            else {
                return answer(
                    .unauthorized, error: "no write key: give it as the user name of HTTP Basic auth or as writeKey",
                    request: request)
            }
            guard let name = source(writeKey: key) else {
                return answer(.unauthorized, error: "unknown write key", request: request)
            }
            sourceName = name
        }

        let staged: StagedRequest
        do {
            staged = try stager.stage(body.text, route: route, receivedAt: clock(), source: sourceName)
        } catch {
            return answer(.badRequest, error: error.reason, request: request)
        }
        let rejected = staged.rejected.map { Rejected(index: $0.index, reason: $0.reason) }
        guard !staged.batch.messages.isEmpty else {
            metrics.messages(accepted: 0, duplicates: 0, rejected: rejected.count)
            return answer(
                .badRequest,
                error: route == .batch || staged.messageCount > 1
                    ? "every message was rejected" : rejected.first?.reason ?? "the message was rejected",
                rejected: rejected, request: request)
        }
        do {
            let counts = try await committer.store(staged.batch, bytes: staged.bytes)
            metrics.messages(accepted: counts.accepted, duplicates: counts.duplicates, rejected: rejected.count)
            let accepted = Accepted(accepted: counts.accepted, duplicates: counts.duplicates, rejected: rejected)
            return respond(.ok, text: accepted.text, request: request)
        } catch Committer.Refusal.queueFull {
            return unavailable("too much is waiting to be stored; retry shortly", retryAfter: 1, request: request)
        } catch Committer.Refusal.stopping {
            return unavailable("the server is shutting down; retry shortly", retryAfter: 1, request: request)
        } catch {
            return unavailable("the store could not commit; retry shortly", retryAfter: 5, request: request)
        }
    }

    /// The user name of `Basic` credentials (the write key; the password is empty): the text before
    /// the first colon of the base64 (with its padding) after `Basic `, when that is UTF-8.
    ///
    /// Read from the header's bytes: through `Data(base64Encoded:)`, `String` and `split` it was 4%
    /// of the server's CPU for single-message requests.
    static func basicUser(_ header: String?) -> String? {
        guard var header else { return nil }
        return header.withUTF8 { bytes -> String? in
            guard bytes.count > 6, bytes[5] == 0x20 else { return nil }
            for (index, letter) in "basic".utf8.enumerated() where bytes[index] | 0x20 != letter { return nil }
            func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
            var start = 6
            var end = bytes.count
            while start < end, isSpace(bytes[start]) { start += 1 }
            while end > start, isSpace(bytes[end - 1]) { end -= 1 }
            guard let decoded = Base64.decode(UnsafeBufferPointer(rebasing: bytes[start..<end])) else { return nil }
            let user = decoded.prefix { $0 != UInt8(ascii: ":") }
            guard !user.isEmpty, String(validating: decoded, as: UTF8.self) != nil else { return nil }
            return String(decoding: user, as: UTF8.self)
        }
    }

    /// Whether `signature` is the hex HMAC-SHA1 of `body` with `key` (Segment's Webhooks destination).
    static func signatureMatches(_ signature: String, body: [UInt8], key: SymmetricKey) -> Bool {
        let expected = Array(HMAC<Insecure.SHA1>.authenticationCode(for: body, using: key))
        guard let given = Hex.bytes(signature.trimmingCharacters(in: .whitespaces)), given.count == expected.count else {
            return false
        }
        var difference: UInt8 = 0
        for (a, b) in zip(given, expected) { difference |= a ^ b }
        return difference == 0
    }

    // MARK: Health and CORS

    private func health(_ request: Request) async -> Response {
        let queued = committer.queued
        let lastCommit = await committer.lastCommitAt
        return respond(
            .ok,
            Health(
                status: "ok", queuedMessages: queued.messages, queuedBytes: queued.bytes,
                lastCommitAt: lastCommit.map(Timestamp.format)), request: request)
    }

    private func preflight(_ request: Request) -> Response {
        var headers = HTTPFields()
        if let origin = allowedOrigin(request) {
            headers[.accessControlAllowOrigin] = origin
            headers[.accessControlAllowMethods] = "POST, OPTIONS"
            headers[.accessControlAllowHeaders] = "Content-Type, Authorization, X-Retry-Count"
            headers[.accessControlMaxAge] = "86400"
            if origin != "*" { headers[.vary] = "Origin" }
        }
        return Response(status: .noContent, headers: headers)
    }

    /// The `Access-Control-Allow-Origin` for the request's origin, if it is allowed.
    private func allowedOrigin(_ request: Request) -> String? {
        guard let origin = request.headers.value(of: .origin) else { return nil }
        if corsOrigins.contains("*") { return "*" }
        return corsOrigins.contains(origin) ? origin : nil
    }

    // MARK: Answers

    struct Rejected: Encodable, Sendable {
        var index: Int
        var reason: String
    }

    struct Accepted: Encodable {
        var success = true
        var accepted: Int
        var duplicates: Int
        var rejected: [Rejected]

        /// The answer's JSON, as `ReportJSON` writes it (keys sorted). Written by hand when nothing
        /// was rejected, the answer to nearly every request: `JSONEncoder` was 4% of the server's
        /// CPU for single-message requests.
        var text: String {
            guard rejected.isEmpty else { return ReportJSON.encode(self) }
            return #"{"accepted":"# + String(accepted) + #","duplicates":"# + String(duplicates)
                + #","rejected":[],"success":true}"#
        }
    }

    struct Failure: Encodable {
        var success = false
        var error: String
        var rejected: [Rejected]?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(success, forKey: .success)
            try container.encode(error, forKey: .error)
            try container.encodeIfPresent(rejected, forKey: .rejected)
        }

        enum CodingKeys: String, CodingKey { case success, error, rejected }
    }

    struct Health: Encodable {
        var status: String
        var queuedMessages: Int
        var queuedBytes: Int
        var lastCommitAt: String?

        enum CodingKeys: String, CodingKey {
            case status, queuedMessages = "queued_messages", queuedBytes = "queued_bytes", lastCommitAt = "last_commit_at"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(status, forKey: .status)
            try container.encode(queuedMessages, forKey: .queuedMessages)
            try container.encode(queuedBytes, forKey: .queuedBytes)
            try container.encode(lastCommitAt, forKey: .lastCommitAt)
        }
    }

    private func respond(_ status: HTTPResponse.Status, _ body: some Encodable, request: Request) -> Response {
        respond(status, text: ReportJSON.encode(body), request: request)
    }

    private func respond(_ status: HTTPResponse.Status, text: String, request: Request) -> Response {
        // Appended, not set: the fields are new, and setting one searches for the name first.
        var headers = HTTPFields()
        headers.append(HTTPField(name: .contentType, value: "application/json"))
        if let origin = allowedOrigin(request) {
            headers.append(HTTPField(name: .accessControlAllowOrigin, value: origin))
            if origin != "*" { headers.append(HTTPField(name: .vary, value: "Origin")) }
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private func answer(
        _ status: HTTPResponse.Status, error: String, rejected: [Rejected]? = nil, request: Request
    ) -> Response {
        if status.code >= 400 && status != .notFound {
            logger.debug("request refused", metadata: ["status": "\(status.code)", "reason": "\(error)"])
        }
        return respond(status, Failure(error: error, rejected: status == .badRequest ? (rejected ?? []) : nil), request: request)
    }

    private func unavailable(_ error: String, retryAfter seconds: Int, request: Request) -> Response {
        logger.warning("answered 503", metadata: ["reason": "\(error)"])
        var response = answer(.serviceUnavailable, error: error, request: request)
        response.headers[.retryAfter] = String(seconds)
        return response
    }
}

/// Reads a request body whole, inflating gzip as it arrives, never holding more than the limit.
enum RequestBodyReader {
    struct Body {
        /// The bytes as they came (the webhook's signature covers these).
        var received: [UInt8]
        /// The JSON text (`received`, inflated when it was gzip).
        var text: [UInt8]
    }

    enum Failure: Error {
        case tooLarge
        case gzip(GzipInflater.Failure)
        case read(String)
    }

    /// Throws a `Failure`.
    static func read(_ body: RequestBody, gzip: Bool, limit: Int) async throws -> Body {
        var received: [UInt8] = []
        var text: [UInt8] = []
        do {
            let inflater = gzip ? try GzipInflater(firstBytes: [], capacity: 64 << 10) : nil
            for try await chunk in body {
                guard received.count + chunk.readableBytes <= limit else { throw Failure.tooLarge }
                chunk.withUnsafeReadableBytes { received.append(contentsOf: $0) }
                if let inflater {
                    try chunk.withUnsafeReadableBytes { try inflater.append($0, to: &text, limit: limit) }
                }
            }
            if let inflater {
                try [UInt8]().withUnsafeBytes { try inflater.append($0, to: &text, limit: limit, end: true) }
            } else {
                text = received
            }
        } catch let failure as Failure {
            throw failure
        } catch GzipInflater.PushFailure.tooLarge {
            throw Failure.tooLarge
        } catch GzipInflater.PushFailure.gzip(let reason) {
            throw Failure.gzip(reason)
        } catch {
            throw Failure.read("\(error)")
        }
        return Body(received: received, text: text)
    }
}

extension HTTPFields {
    /// `self[name]` (every value of the field, joined with ", "; not for `Cookie`) without the
    /// generic lazy join, which cost more than the rest of a header's lookup.
    func value(of name: HTTPField.Name) -> String? {
        var value: String?
        for field in self where field.name == name {
            value = value.map { $0 + ", " + field.value } ?? field.value
        }
        return value
    }
}
