import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A Segment-compatible collector on 127.0.0.1 (an ephemeral port), for the tests and the
/// benchmark: a real HTTP/1.1 server that answers each request as its `Plan` says (a status,
/// possibly late; a stall; a status line with the body held back; a dropped connection) and
/// records what arrived.
///
/// A message counts as *acknowledged* only once the receiver has written a 2xx status line for
/// its request, on a connection that was still open: that is what a destination "has" and what a
/// sync's snapshot may claim. A request the client gave up on (its timeout closed the connection
/// during a stall or a slow answer) is never acknowledged afterwards.
public final class LoopbackReceiver: Sendable {
    public let recording: Recording
    let plan: Plan

    /// What the event loops record, behind one lock.
    private struct State {
        var recorded: [Request] = []
        /// Indices of the acknowledged requests, in the order they were acknowledged.
        var acknowledgedOrder: [Int] = []
        var attempts: [String: Int] = [:]
        var requestTotal = 0
        var acknowledgedTotal = 0
        var inFlight = 0
        var peak = 0
        var children: [Channel] = []
        /// Requests held unanswered (`.stall`, `.headThenStall`), by index: how to release each.
        var held: [Int: @Sendable (Reply) -> Void] = [:]
        var server: Channel?
    }

    private let state = NIOLockedValueBox(State())

    public init(plan: Plan = .alwaysOK, recording: Recording = .everything) {
        self.plan = plan
        self.recording = recording
    }

    /// Answers the scripted `replies` in arrival order, then `fallback` for every later request.
    public convenience init(replies: [Reply], fallback: @escaping @Sendable (Request) -> Reply = { _ in .ok }) {
        self.init(plan: .scripted(replies, then: fallback))
    }

    public var port: Int { state.withLockedValue { $0.server }?.localAddress?.port ?? 0 }
    public func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)\(path)")! }

    /// Every request so far, in arrival order (empty when recording counts only).
    public var requests: [Request] { state.withLockedValue { $0.recorded } }
    /// The acknowledged requests, in the order they were acknowledged (empty when recording counts only).
    public var acknowledgedRequests: [Request] {
        state.withLockedValue { state in state.acknowledgedOrder.map { state.recorded[$0] } }
    }
    /// The messages of every acknowledged request, in the order they were acknowledged.
    public var acknowledgedMessages: [Message] { acknowledgedRequests.flatMap(\.messages) }
    public var requestCount: Int { state.withLockedValue { $0.requestTotal } }
    public var acknowledgedMessageCount: Int { state.withLockedValue { $0.acknowledgedTotal } }
    /// The most requests that were being answered at once.
    public var maxInFlight: Int { state.withLockedValue { $0.peak } }
    /// Requests held unanswered now.
    public var stalledCount: Int { state.withLockedValue { $0.held.count } }

    public func start() async throws {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(receiver: self))
                }
            }
        let server = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        state.withLockedValue { $0.server = server }
    }

    /// Closes every connection (held requests go unanswered) and the listening socket.
    public func stop() async {
        let (open, server) = state.withLockedValue { ($0.children, $0.server) }
        for child in open { try? await child.close() }
        try? await server?.close()
    }

    /// Runs `body` with a started receiver, and stops it afterwards whatever happens.
    public static func with<T>(
        plan: Plan, recording: Recording = .everything, _ body: (LoopbackReceiver) async throws -> T
    ) async throws -> T {
        let receiver = LoopbackReceiver(plan: plan, recording: recording)
        try await receiver.start()
        do {
            let result = try await body(receiver)
            await receiver.stop()
            return result
        } catch {
            await receiver.stop()
            throw error
        }
    }

    /// `with(plan:)` for scripted replies, then `fallback` (by default 200 to everything).
    public static func with<T>(
        replies: [Reply] = [], fallback: @escaping @Sendable (Request) -> Reply = { _ in .ok },
        _ body: (LoopbackReceiver) async throws -> T
    ) async throws -> T {
        try await with(plan: .scripted(replies, then: fallback), body)
    }

    /// Answers the held requests with `reply` (a request whose status line is out gets its body);
    /// returns how many there were. Requests whose client has gone are not answered.
    @discardableResult
    public func releaseStalled(with reply: Reply = .ok) -> Int {
        let releases = state.withLockedValue { state in
            let all = state.held.values
            state.held = [:]
            return Array(all)
        }
        for release in releases { release(reply) }
        return releases.count
    }

    // MARK: The handler's bookkeeping

    fileprivate func opened(_ channel: Channel) { state.withLockedValue { $0.children.append(channel) } }

    fileprivate func closed(_ channel: Channel) {
        state.withLockedValue { $0.children.removeAll { $0 === channel } }
    }

    fileprivate func arrived(_ head: HTTPRequestHead, body: [UInt8]) -> Request {
        let everything = recording == .everything
        let messages = everything ? BatchBody.messages(body) ?? [] : []
        let count = everything ? messages.count : BatchBody.messageRanges(body)?.count ?? 0
        var request = Request(
            index: 0, method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) },
            body: everything ? body : [], messages: messages, messageCount: count, attempt: 0, status: nil)
        return state.withLockedValue { state in
            request.index = state.requestTotal
            state.requestTotal += 1
            state.inFlight += 1
            state.peak = max(state.peak, state.inFlight)
            if everything {
                let key = request.contentKey
                request.attempt = state.attempts[key, default: 0]
                state.attempts[key] = request.attempt + 1
                state.recorded.append(request)
            }
            return request
        }
    }

    /// A status line for `request` is about to be written on an open connection.
    fileprivate func answered(_ request: Request, status: Int) {
        let everything = recording == .everything
        state.withLockedValue { state in
            if everything { state.recorded[request.index].status = status }
            if (200..<300).contains(status) {
                if everything { state.acknowledgedOrder.append(request.index) }
                state.acknowledgedTotal += request.messageCount
            }
        }
    }

    fileprivate func hold(_ request: Request, release: @escaping @Sendable (Reply) -> Void) {
        state.withLockedValue { $0.held[request.index] = release }
    }

    /// The request is no longer being answered (answered in full, dropped, or its connection closed).
    fileprivate func finished(_ request: Request) {
        state.withLockedValue { state in
            state.held[request.index] = nil
            state.inFlight -= 1
        }
    }

    // MARK: The channel handler

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let receiver: LoopbackReceiver
        var head: HTTPRequestHead?
        var body = ByteBuffer()
        /// The request being answered late or held; nil once it is answered or dropped.
        var waiting: Request?
        /// The held request's status line is out; its body is not.
        var headSent = false
        var keepAlive = true

        init(receiver: LoopbackReceiver) { self.receiver = receiver }

        func channelActive(context: ChannelHandlerContext) {
            receiver.opened(context.channel)
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            if let request = waiting {
                waiting = nil
                receiver.finished(request)
            }
            receiver.closed(context.channel)
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body.clear()
            case .body(var buffer):
                body.writeBuffer(&buffer)
            case .end:
                guard let head else { return }
                self.head = nil
                keepAlive = head.isKeepAlive
                let request = receiver.arrived(head, body: Array(body.readableBytesView))
                body.clear()
                perform(receiver.plan.decide(request), for: request, context: context)
            }
        }

        func perform(_ reply: Reply, for request: Request, context: ChannelHandlerContext) {
            switch reply {
            case .drop:
                waiting = nil
                receiver.finished(request)
                context.close(promise: nil)
            case .stall:
                waiting = request
                holdUntilReleased(request, context: context)
            case .headThenStall(let status, let headers):
                waiting = request
                headSent = true
                receiver.answered(request, status: status)
                context.writeAndFlush(
                    wrapOutboundOut(
                        .head(responseHead(status: status, headers: headers, bodyBytes: Self.heldBody.utf8.count))),
                    promise: nil)
                holdUntilReleased(request, context: context)
            case .status(let status, let headers, let text, let delay):
                guard delay > 0 else {
                    answer(request, status: status, headers: headers, body: text, context: context)
                    return
                }
                waiting = request
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) {
                    // Still waiting means the connection is still open: the client has not given up.
                    guard handler.value.waiting?.index == request.index else { return }
                    handler.value.answer(request, status: status, headers: headers, body: text, context: bound.value)
                }
            }
        }

        /// Registers how to release the held `request`: on the event loop, and only while its
        /// connection is still open.
        func holdUntilReleased(_ request: Request, context: ChannelHandlerContext) {
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            receiver.hold(request) { reply in
                eventLoop.execute {
                    let current = handler.value
                    guard current.waiting?.index == request.index else { return }
                    if current.headSent {
                        current.finishHeldBody(request, context: bound.value)
                    } else {
                        current.waiting = nil
                        current.perform(reply, for: request, context: bound.value)
                    }
                }
            }
        }

        func answer(
            _ request: Request, status: Int, headers: [(String, String)], body text: String,
            context: ChannelHandlerContext
        ) {
            waiting = nil
            receiver.answered(request, status: status)
            context.write(
                wrapOutboundOut(.head(responseHead(status: status, headers: headers, bodyBytes: text.utf8.count))),
                promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            receiver.finished(request)
            if !keepAlive { context.close(promise: nil) }
        }

        func finishHeldBody(_ request: Request, context: ChannelHandlerContext) {
            waiting = nil
            headSent = false
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: Self.heldBody)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            receiver.finished(request)
            if !keepAlive { context.close(promise: nil) }
        }

        /// The body of a `.headThenStall` answer, sent on release.
        static let heldBody = #"{"success":true}"#

        func responseHead(status: Int, headers: [(String, String)], bodyBytes: Int) -> HTTPResponseHead {
            var fields = HTTPHeaders(headers)
            fields.replaceOrAdd(name: "Content-Length", value: String(bodyBytes))
            fields.replaceOrAdd(name: "Content-Type", value: "application/json")
            if !keepAlive { fields.replaceOrAdd(name: "Connection", value: "close") }
            return HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: fields)
        }
    }
}
