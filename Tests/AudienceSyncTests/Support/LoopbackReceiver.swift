import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A real HTTP/1.1 server on 127.0.0.1 (an ephemeral port) for the HTTP destination tests: it
/// records every request and answers as the test scripts it — a status after an optional delay,
/// a stall (no answer until the client gives up), or a dropped connection.
final class LoopbackReceiver: @unchecked Sendable {
    struct Request: Sendable {
        var method: String
        var uri: String
        var headers: [(String, String)]
        var body: [UInt8]

        func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    enum Reply: Sendable {
        /// Answers `status` with `headers` and `body`, after `delay` seconds.
        case status(Int, headers: [(String, String)] = [], body: String = "", delay: Double = 0)
        /// Never answers; the connection stays open until the client closes it.
        case stall
        /// Closes the connection without answering.
        case drop

        static let ok = Reply.status(200, body: #"{"success":true}"#)
    }

    private let lock = NSLock()
    private var recorded: [Request] = []
    private var inFlight = 0
    private var peak = 0
    private var children: [Channel] = []
    private var replies: [Reply]
    private let fallback: @Sendable (Request) -> Reply
    private var server: Channel?

    /// Answers the scripted `replies` in order, then `fallback` for every later request.
    init(replies: [Reply] = [], fallback: @escaping @Sendable (Request) -> Reply = { _ in .ok }) {
        self.replies = replies
        self.fallback = fallback
    }

    var port: Int { server?.localAddress?.port ?? 0 }
    func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)\(path)")! }

    var requests: [Request] { lock.withLock { recorded } }
    /// The most requests that were being answered at once.
    var maxInFlight: Int { lock.withLock { peak } }

    func start() async throws {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(receiver: self))
                }
            }
        server = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
    }

    func stop() async {
        let open = lock.withLock { children }
        for child in open { try? await child.close() }
        try? await server?.close()
    }

    /// Runs `body` with a started receiver, and stops it afterwards whatever happens.
    static func with<T>(
        replies: [Reply] = [], fallback: @escaping @Sendable (Request) -> Reply = { _ in .ok },
        _ body: (LoopbackReceiver) async throws -> T
    ) async throws -> T {
        let receiver = LoopbackReceiver(replies: replies, fallback: fallback)
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

    fileprivate func opened(_ channel: Channel) { lock.withLock { children.append(channel) } }

    fileprivate func received(_ request: Request) -> Reply {
        lock.withLock {
            recorded.append(request)
            inFlight += 1
            peak = max(peak, inFlight)
            return replies.isEmpty ? nil : replies.removeFirst()
        } ?? fallback(request)
    }

    fileprivate func answered() { lock.withLock { inFlight -= 1 } }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let receiver: LoopbackReceiver
        var head: HTTPRequestHead?
        var body: [UInt8] = []
        /// A request was received and not answered yet (a stall).
        var waiting = false

        init(receiver: LoopbackReceiver) { self.receiver = receiver }

        func channelActive(context: ChannelHandlerContext) {
            receiver.opened(context.channel)
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            if waiting {
                waiting = false
                receiver.answered()
            }
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(var buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                guard let head else { return }
                let request = Request(
                    method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) },
                    body: body)
                let reply = receiver.received(request)
                switch reply {
                case .stall:
                    waiting = true
                case .drop:
                    receiver.answered()
                    context.close(promise: nil)
                case .status(let status, let headers, let text, let delay):
                    let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                    let receiver = receiver
                    let keepAlive = head.isKeepAlive
                    let send: @Sendable () -> Void = {
                        Self.respond(
                            bound.value, status: status, headers: headers, body: text, keepAlive: keepAlive)
                        receiver.answered()
                    }
                    if delay > 0 {
                        context.eventLoop.scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) { send() }
                    } else {
                        send()
                    }
                }
            }
        }

        static func respond(
            _ context: ChannelHandlerContext, status: Int, headers: [(String, String)], body: String, keepAlive: Bool
        ) {
            var fields = HTTPHeaders(headers)
            fields.replaceOrAdd(name: "Content-Length", value: String(body.utf8.count))
            fields.replaceOrAdd(name: "Content-Type", value: "application/json")
            if !keepAlive { fields.replaceOrAdd(name: "Connection", value: "close") }
            let head = HTTPResponseHead(
                version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: fields)
            context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
            if !keepAlive { context.close(promise: nil) }
        }
    }
}
