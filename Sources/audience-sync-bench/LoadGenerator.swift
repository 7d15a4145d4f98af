import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP request of the serve stage's load, encoded before any clock starts.
struct LoadRequest: Sendable {
    var method: HTTPMethod = .POST
    var path: String
    var headers: HTTPHeaders
    var body: ByteBuffer
    /// Messages in the body (what a 200 stores).
    var messages: Int
    /// The same request for AsyncHTTPClient, when that is the client (built once, like the body).
    var prepared: HTTPClient.Request?
}

/// The client side of the load: keep-alive HTTP/1.1 connections to one server, driven from one
/// event loop. Every method is called on `loop`, and every future completes there.
protocol LoadTransport: AnyObject, Sendable {
    var loop: any EventLoop { get }
    var name: String { get }
    /// Opens the connections (the pool opens them as requests need them).
    func connect() -> EventLoopFuture<Void>
    /// Sends `request` (queued while every connection is busy); the future gives the status.
    func send(_ request: LoadRequest) -> EventLoopFuture<UInt>
    func close() async
}

enum LoadClientKind: String, CaseIterable, Sendable {
    /// Plain SwiftNIO HTTP/1.1 channels, one request at a time each, written as head, body, end.
    case nio
    /// AsyncHTTPClient with a pool of that many HTTP/1.1 connections.
    case ahc

    func makeTransport(loop: any EventLoop, host: String, port: Int, connections: Int) -> any LoadTransport {
        switch self {
        case .nio: return NIOLoadTransport(loop: loop, host: host, port: port, connections: connections)
        case .ahc: return AHCLoadTransport(loop: loop, connections: connections)
        }
    }
}

struct LoadFailure: Error, CustomStringConvertible {
    var description: String
}

// MARK: SwiftNIO

/// `connections` channels; a request goes to an idle one, or waits in a queue for the next one
/// that finishes (that wait is part of its latency).
final class NIOLoadTransport: LoadTransport, @unchecked Sendable {
    let loop: any EventLoop
    let host: String
    let port: Int
    let connections: Int
    var name: String { "SwiftNIO HTTP/1.1 channels" }

    // Confined to `loop`.
    private var idle: [NIOLoadConnection] = []
    private var channels: [any Channel] = []
    private var queued = CircularBuffer<(LoadRequest, EventLoopPromise<UInt>)>()

    init(loop: any EventLoop, host: String, port: Int, connections: Int) {
        self.loop = loop
        self.host = host
        self.port = port
        self.connections = connections
    }

    func connect() -> EventLoopFuture<Void> {
        let opened = (0..<connections).map { _ in
            ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(NIOLoadConnection())
                    }
                }
                .connect(host: host, port: port)
        }
        return EventLoopFuture.whenAllSucceed(opened, on: loop).flatMapThrowing { channels in
            self.loop.preconditionInEventLoop()
            self.channels = channels
            for channel in channels {
                let connection = try channel.pipeline.syncOperations.handler(type: NIOLoadConnection.self)
                connection.finished = { [unowned self] connection in self.finished(connection) }
                self.idle.append(connection)
            }
        }
    }

    func send(_ request: LoadRequest) -> EventLoopFuture<UInt> {
        loop.preconditionInEventLoop()
        let promise = loop.makePromise(of: UInt.self)
        if let connection = idle.popLast() {
            connection.send(request, promise: promise)
        } else {
            queued.append((request, promise))
        }
        return promise.futureResult
    }

    /// A connection answered its request: it takes the next queued one, or waits.
    private func finished(_ connection: NIOLoadConnection) {
        guard connection.isOpen else { return }
        if let (request, promise) = queued.popFirst() {
            connection.send(request, promise: promise)
        } else {
            idle.append(connection)
        }
    }

    func close() async {
        let channels = try? await loop.submit { () -> [any Channel] in
            let channels = self.channels
            self.channels = []
            self.idle = []
            while let (_, promise) = self.queued.popFirst() { promise.fail(LoadFailure(description: "closed")) }
            return channels
        }.get()
        for channel in channels ?? [] { try? await channel.close() }
    }
}

/// One keep-alive connection: sends a request, reads the answer's status, hands itself back.
final class NIOLoadConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private var context: ChannelHandlerContext?
    private var pending: EventLoopPromise<UInt>?
    private var status: UInt = 0
    private(set) var isOpen = true
    var finished: ((NIOLoadConnection) -> Void)?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func send(_ request: LoadRequest, promise: EventLoopPromise<UInt>) {
        guard let context, isOpen else {
            promise.fail(LoadFailure(description: "the connection is closed"))
            return
        }
        pending = promise
        var headers = request.headers
        headers.replaceOrAdd(name: "Content-Length", value: String(request.body.readableBytes))
        let head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.path, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if request.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(request.body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status.code
        case .body:
            break
        case .end:
            let promise = pending
            pending = nil
            finished?(self)
            promise?.succeed(status)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(LoadFailure(description: "\(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(LoadFailure(description: "the server closed the connection"))
        context.fireChannelInactive()
    }

    private func fail(_ error: LoadFailure) {
        isOpen = false
        let promise = pending
        pending = nil
        promise?.fail(error)
    }
}

// MARK: AsyncHTTPClient

/// AsyncHTTPClient's pool, limited to `connections` HTTP/1.1 connections on the one loop; it
/// queues a request while they are all busy.
final class AHCLoadTransport: LoadTransport, @unchecked Sendable {
    let loop: any EventLoop
    let client: HTTPClient
    var name: String { "AsyncHTTPClient" }

    init(loop: any EventLoop, connections: Int) {
        self.loop = loop
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(
            idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
        configuration.httpVersion = .http1Only
        configuration.decompression = .disabled
        client = HTTPClient(eventLoopGroup: loop, configuration: configuration)
    }

    func connect() -> EventLoopFuture<Void> { loop.makeSucceededVoidFuture() }

    func send(_ request: LoadRequest) -> EventLoopFuture<UInt> {
        guard let prepared = request.prepared else {
            return loop.makeFailedFuture(LoadFailure(description: "the request was not prepared for AsyncHTTPClient"))
        }
        // `.indifferent`: the group has this one loop anyway, and a request that *requires* a loop
        // (`.delegateAndChannel(on:)`) may open a connection past the pool's limit whenever none is
        // idle there, which turned the load into thousands of short-lived connections.
        return client.execute(request: prepared, eventLoop: .indifferent).hop(to: loop).map { UInt($0.status.code) }
    }

    func close() async { try? await client.shutdown() }
}

// MARK: Driving the load

/// What one phase of load saw: every request's latency, the statuses, the span.
struct LoadOutcome: Sendable {
    /// Latencies in nanoseconds of the requests that got an answer (any status).
    var latencies: [UInt64] = []
    /// When each answered request was sent or scheduled (uptime nanoseconds), beside `latencies`.
    var startTimes: [UInt64] = []
    /// How late the client sent each request after its scheduled time (open loop only), in nanoseconds.
    var sendLags: [UInt64] = []
    var statuses: [UInt: Int] = [:]
    /// Requests that got no answer (the connection failed).
    var failures = 0
    var firstFailure: String?
    /// Messages of the requests answered 200.
    var storedMessages = 0
    var sent = 0
    /// From the first send (or the first scheduled time) to the last answer, in seconds.
    var seconds = 0.0

    var answered: Int { statuses.values.reduce(0, +) }
    var ok: Int { statuses[200] ?? 0 }

    /// The `fraction` percentile (nearest rank) in milliseconds; nil without samples.
    func latencyMilliseconds(_ fraction: Double) -> Double? { Self.percentile(latencies, fraction) }
    func sendLagMilliseconds(_ fraction: Double) -> Double? { Self.percentile(sendLags, fraction) }

    /// The latencies of the requests sent or scheduled in `window` (uptime nanoseconds).
    func latencies(in window: Range<UInt64>) -> [UInt64] {
        zip(startTimes, latencies).filter { window.contains($0.0) }.map(\.1)
    }

    static func percentile(_ samples: [UInt64], _ fraction: Double) -> Double? {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        let rank = min(sorted.count, max(1, Int((fraction * Double(sorted.count)).rounded(.up))))
        return Double(sorted[rank - 1]) / 1e6
    }

    /// `{"200": n, "503": m}` for notes.
    var statusSummary: String {
        var parts = statuses.keys.sorted().map { "\($0): \(statuses[$0]!)" }
        if failures > 0 { parts.append("no answer: \(failures)") }
        return parts.joined(separator: ", ")
    }
}

/// Runs load over a transport, on its loop. All state is confined to that loop.
final class LoadDriver: @unchecked Sendable {
    let transport: any LoadTransport
    var loop: any EventLoop { transport.loop }

    private var outcome = LoadOutcome()
    private var startedAt: UInt64 = 0
    private var lastAnswerAt: UInt64 = 0
    private var inFlight = 0
    private var next = 0
    private var stopRequested = false
    private var done: EventLoopPromise<LoadOutcome>?
    private var timeLimit: Scheduled<Void>?

    init(transport: any LoadTransport) { self.transport = transport }

    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    /// Sends every request of `requests`, keeping `concurrency` in flight: each one's latency is
    /// from its send to its answer. Fails after `limit`.
    func closedLoop(_ requests: [LoadRequest], concurrency: Int, limit: TimeAmount) async throws -> LoadOutcome {
        try await loop.flatSubmit { () -> EventLoopFuture<LoadOutcome> in
            let promise = self.begin(limit: limit)
            self.startedAt = Self.now()
            if requests.isEmpty { self.finish() }
            for _ in 0..<min(concurrency, requests.count) { self.sendNextClosed(requests) }
            return promise.futureResult
        }.get()
    }

    private func sendNextClosed(_ requests: [LoadRequest]) {
        guard next < requests.count, done != nil else { return }
        let request = requests[next]
        next += 1
        inFlight += 1
        outcome.sent += 1
        let sentAt = Self.now()
        transport.send(request).whenComplete { result in
            self.record(result, messages: request.messages, since: sentAt)
            if self.next < requests.count {
                self.sendNextClosed(requests)
            } else if self.inFlight == 0 {
                self.finish()
            }
        }
    }

    /// Sends request `i` at `start + i / rate` (open loop), whatever the answers do, until
    /// `request(i)` gives nil or `stop()`: each latency is from the scheduled time, so a stall
    /// of the server counts for every request that should have gone out during it.
    func openLoop(rate: Double, limit: TimeAmount, request: @escaping @Sendable (Int) -> LoadRequest?) async throws -> LoadOutcome {
        try await loop.flatSubmit { () -> EventLoopFuture<LoadOutcome> in
            let promise = self.begin(limit: limit)
            self.startedAt = Self.now() + 5_000_000
            self.tick(rate: rate, request: request)
            return promise.futureResult
        }.get()
    }

    /// Stops an open loop: no request is sent after this; the outcome comes once the ones in
    /// flight are answered.
    func stop() {
        loop.execute {
            self.stopRequested = true
            if self.inFlight == 0 { self.finish() }
        }
    }

    private func tick(rate: Double, request: @escaping @Sendable (Int) -> LoadRequest?) {
        guard done != nil else { return }
        let interval = 1e9 / rate
        let now = Self.now()
        while !stopRequested {
            let scheduled = startedAt + UInt64(Double(next) * interval)
            if scheduled > now {
                loop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(scheduled)) {
                    self.tick(rate: rate, request: request)
                }
                return
            }
            guard let prepared = request(next) else { break }
            next += 1
            inFlight += 1
            outcome.sent += 1
            outcome.sendLags.append(now - scheduled)
            transport.send(prepared).whenComplete { result in
                self.record(result, messages: prepared.messages, since: scheduled)
                if self.stopRequested && self.inFlight == 0 { self.finish() }
            }
        }
        stopRequested = true
        if inFlight == 0 { finish() }
    }

    private func begin(limit: TimeAmount) -> EventLoopPromise<LoadOutcome> {
        let promise = loop.makePromise(of: LoadOutcome.self)
        done = promise
        outcome = LoadOutcome()
        lastAnswerAt = 0
        next = 0
        inFlight = 0
        stopRequested = false
        timeLimit = loop.scheduleTask(in: limit) {
            guard let done = self.done else { return }
            self.done = nil
            done.fail(
                LoadFailure(
                    description: "the load did not finish within \(limit.nanoseconds / 1_000_000_000) s "
                        + "(\(self.outcome.answered) of \(self.outcome.sent) requests answered)"))
        }
        return promise
    }

    private func record(_ result: Result<UInt, any Error>, messages: Int, since: UInt64) {
        inFlight -= 1
        let now = Self.now()
        lastAnswerAt = max(lastAnswerAt, now)
        switch result {
        case .success(let status):
            outcome.latencies.append(now &- since)
            outcome.startTimes.append(since)
            outcome.statuses[status, default: 0] += 1
            if status == 200 { outcome.storedMessages += messages }
        case .failure(let error):
            outcome.failures += 1
            if outcome.firstFailure == nil { outcome.firstFailure = "\(error)" }
        }
    }

    private func finish() {
        guard let done else { return }
        self.done = nil
        timeLimit?.cancel()
        outcome.seconds = Double(max(lastAnswerAt, startedAt) - startedAt) / 1e9
        done.succeed(outcome)
    }
}
