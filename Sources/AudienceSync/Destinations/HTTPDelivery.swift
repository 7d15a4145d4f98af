import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// What an HTTP destination takes from its surroundings: how to sleep, draw jitter and read the
/// clocks. Tests pass their own, so retries and rate limiting run without real waits.
public struct HTTPDeliveryHooks: Sendable {
    /// Waits this many seconds (throws when the task is cancelled).
    public var sleep: @Sendable (Double) async throws -> Void
    /// A uniform draw in `[0, 1)`, for backoff jitter.
    public var random: @Sendable () -> Double
    /// Seconds on a monotonic scale, for the rate limiter.
    public var monotonic: @Sendable () -> Double
    /// The wall clock, for `Retry-After` given as an HTTP date.
    public var wallClock: @Sendable () -> Date

    public init(
        sleep: @escaping @Sendable (Double) async throws -> Void,
        random: @escaping @Sendable () -> Double,
        monotonic: @escaping @Sendable () -> Double,
        wallClock: @escaping @Sendable () -> Date
    ) {
        self.sleep = sleep
        self.random = random
        self.monotonic = monotonic
        self.wallClock = wallClock
    }

    /// Real time and system randomness.
    public static let live = HTTPDeliveryHooks(
        sleep: { seconds in
            guard seconds > 0 else { return }
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
        },
        random: { Double.random(in: 0..<1) },
        monotonic: { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 },
        wallClock: { Date() })
}

/// The outcome of one request after its retries.
enum HTTPOutcome: Sendable, Equatable {
    /// A 2xx answer.
    case delivered
    /// A final refusal (4xx other than 408/429, 501, 505, 3xx): the status and a body excerpt.
    case refused(reason: String)
    /// Still failing after every retry (or told to come back much later): try again next run.
    case gaveUp(reason: String)
}

/// The HTTP delivery rules both HTTP destinations share (SPEC §6.2): one keep-alive client, a
/// per-request timeout, retries with backoff and `Retry-After`, `concurrency` requests in flight
/// and `rate_limit` request starts per second.
///
/// Headers are fixed at creation (they carry the secret, resolved once per run). Nothing here logs
/// or reports a header, and reasons have any occurrence of a secret form cut out.
final class HTTPDelivery: Sendable {
    let destinationName: String
    let url: URL
    let timeout: Double
    let concurrency: Int
    let policy: HTTPRetryPolicy
    let hooks: HTTPDeliveryHooks
    let logger: Logger
    private let client: HTTPClient
    private let limiter: RateLimiter
    private let headers: HTTPHeaders
    /// Texts never to show (the secret and its encodings).
    private let redactions: [String]

    /// Throws a configuration error unless `url` is https, or plain http to a loopback host, and
    /// carries no credentials (the rule `Configuration` applies to `endpoint:`, checked again here
    /// for destinations built in code).
    init(
        configuration: DestinationConfiguration, url: URL, headers: [(String, String)], redactions: [String],
        hooks: HTTPDeliveryHooks, logger: Logger
    ) throws {
        try Self.check(url, destination: configuration.name)
        destinationName = configuration.name
        self.url = url
        timeout = configuration.timeout
        concurrency = max(1, configuration.concurrency)
        policy = HTTPRetryPolicy(maxRetries: configuration.maxRetries)
        self.hooks = hooks
        self.logger = logger
        limiter = RateLimiter(rate: configuration.rateLimit, clock: hooks.monotonic)
        var all = HTTPHeaders()
        all.add(name: "Content-Type", value: "application/json")
        all.add(name: "Accept", value: "application/json")
        all.add(name: "User-Agent", value: "\(AudienceSyncVersion.name)/\(AudienceSyncVersion.version)")
        for (name, value) in headers { all.replaceOrAdd(name: name, value: value) }
        self.headers = all
        self.redactions = redactions.filter { !$0.isEmpty }
        let amount = Self.timeAmount(configuration.timeout)
        let clientConfiguration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: amount, read: amount),
            connectionPool: .init(
                idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, configuration.concurrency)))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
    }

    static func check(_ url: URL, destination: String) throws {
        guard let components = URLComponents(url: url, resolvingAgainstBaseURL: false),
            let host = components.host, !host.isEmpty
        else {
            throw AudienceSyncError(.configuration, "destination '\(destination)': the endpoint has no host")
        }
        guard components.user == nil, components.password == nil else {
            throw AudienceSyncError(
                .configuration, "destination '\(destination)': an endpoint may not carry credentials (user:password@)")
        }
        switch components.scheme?.lowercased() {
        case "https": return
        case "http" where DestinationConfiguration.isLoopback(host: host): return
        case "http":
            throw AudienceSyncError(
                .configuration,
                "destination '\(destination)': plain http is refused for host '\(host)': use https (http is allowed only to loopback: 127.0.0.0/8, ::1, localhost)"
            )
        default:
            throw AudienceSyncError(.configuration, "destination '\(destination)': the endpoint must be an http(s) URL")
        }
    }

    /// The URL as it may be shown: scheme, host, port and path (no query, which might hold a key).
    var displayURL: String { Self.displayURL(url) }

    static func displayURL(_ url: URL) -> String {
        guard var components = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return "<endpoint>" }
        components.user = nil
        components.password = nil
        components.query = nil
        components.fragment = nil
        return components.string ?? "<endpoint>"
    }

    /// Closes the connections; the delivery cannot be used afterwards.
    func shutdown() async {
        do {
            try await client.shutdown()
        } catch {
            logger.debug("closing the HTTP client failed", metadata: ["destination": "\(destinationName)"])
        }
    }

    /// Sends `count` requests, `concurrency` at a time, `body(i)` being the i-th request's body.
    /// Once one request gives up, the ones not yet started are not sent (they give up too): the
    /// destination is down, and retrying each of them in turn would only keep the run waiting.
    func sendAll(count: Int, body: @escaping @Sendable (Int) -> [UInt8]) async -> [HTTPOutcome] {
        var outcomes = [HTTPOutcome?](repeating: nil, count: count)
        await withTaskGroup(of: (Int, HTTPOutcome).self) { group in
            var next = 0
            var stopped: String?
            func startNext() {
                guard next < count else { return }
                let index = next
                next += 1
                group.addTask { (index, await self.send(body(index))) }
            }
            for _ in 0..<min(concurrency, count) { startNext() }
            while let (index, outcome) = await group.next() {
                outcomes[index] = outcome
                if case .gaveUp(let reason) = outcome, stopped == nil { stopped = reason }
                if stopped == nil { startNext() }
            }
            if let stopped {
                for index in next..<count {
                    outcomes[index] = .gaveUp(reason: "not sent: an earlier request gave up (\(stopped))")
                }
            }
        }
        return outcomes.map { $0 ?? .gaveUp(reason: "not sent") }
    }

    /// Sends one request body, retrying as the policy says.
    func send(_ body: [UInt8]) async -> HTTPOutcome {
        var retry = 0
        while true {
            let wait = await limiter.reserve()
            if wait > 0 {
                do { try await hooks.sleep(wait) } catch { return .gaveUp(reason: "cancelled") }
            }
            let attempt = await attemptOnce(body)
            let reason: String
            let retryAfter: Double?
            switch attempt {
            case .delivered: return .delivered
            case .refused(let why): return .refused(reason: why)
            case .retryable(let why, let after):
                reason = why
                retryAfter = after
            }
            guard retry < policy.maxRetries else {
                let attempts = retry + 1
                return .gaveUp(reason: "\(reason) (\(attempts) attempt\(attempts == 1 ? "" : "s"))")
            }
            if let retryAfter, retryAfter > policy.maximumRetryAfter {
                return .gaveUp(reason: "\(reason); the server asks to retry after \(Int(retryAfter)) s")
            }
            let delay = retryAfter ?? policy.backoff(retry: retry, unit: hooks.random())
            logger.warning(
                "request failed; retrying",
                metadata: [
                    "destination": "\(destinationName)", "url": "\(displayURL)", "reason": "\(reason)",
                    "retry": "\(retry + 1)/\(policy.maxRetries)", "delay_s": "\(String(format: "%.3f", delay))",
                ])
            do { try await hooks.sleep(delay) } catch { return .gaveUp(reason: "\(reason); cancelled") }
            retry += 1
        }
    }

    private enum Attempt {
        case delivered
        case refused(String)
        case retryable(String, retryAfter: Double?)
    }

    private func attemptOnce(_ body: [UInt8]) async -> Attempt {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        request.headers = headers
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: Self.timeAmount(timeout), logger: logger)
            let excerpt = try await Self.excerpt(of: response.body)
            let status = Int(response.status.code)
            logger.debug(
                "request answered",
                metadata: ["destination": "\(destinationName)", "status": "\(status)", "bytes": "\(body.count)"])
            if (200...299).contains(status) { return .delivered }
            let reason = "HTTP \(status) \(response.status.reasonPhrase)" + (excerpt.isEmpty ? "" : ": \(redact(excerpt))")
            if HTTPRetryPolicy.isRetryable(status: status) {
                let after = response.headers.first(name: "Retry-After").flatMap {
                    HTTPRetryPolicy.retryAfter($0, now: hooks.wallClock())
                }
                return .retryable(reason, retryAfter: after)
            }
            return .refused(reason)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            return .retryable("no answer within the timeout of \(Self.seconds(timeout)) s", retryAfter: nil)
        } catch {
            return .retryable("network error: \(redact(String(describing: error)))", retryAfter: nil)
        }
    }

    /// The first 300 characters of a response body on one line; the rest is read and dropped so
    /// the connection can be reused.
    private static func excerpt(of body: HTTPClientResponse.Body) async throws -> String {
        var kept: [UInt8] = []
        for try await chunk in body where kept.count < 2048 {
            kept.append(contentsOf: chunk.readableBytesView.prefix(2048 - kept.count))
        }
        let text = String(decoding: kept, as: UTF8.self)
            .map { $0.isNewline || $0 == "\t" ? " " : $0 }
            .filter { !($0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? false) }
        let trimmed = String(text).trimmingCharacters(in: .whitespaces)
        return trimmed.count > 300 ? String(trimmed.prefix(300)) + "…" : trimmed
    }

    private func redact(_ text: String) -> String {
        var text = text
        for secret in redactions { text = text.replacingOccurrences(of: secret, with: "<redacted>") }
        return text
    }

    private static func timeAmount(_ seconds: Double) -> TimeAmount {
        .nanoseconds(Int64(max(0.001, seconds) * 1e9))
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
