import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A Segment-compatible collector on 127.0.0.1 (an ephemeral port) for the deliver stage: it
/// answers 200 to `POST /v1/batch` (404 to anything else) and counts the messages of each batch
/// (the `"messageId"` keys of its body; every identify message has exactly one).
final class BenchReceiver: @unchecked Sendable {
    private let lock = NSLock()
    private var messageCount = 0
    private var requestCount = 0
    private var server: Channel?

    var port: Int { server?.localAddress?.port ?? 0 }
    var messages: Int { lock.withLock { messageCount } }
    var requests: Int { lock.withLock { requestCount } }

    func start() async throws {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
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
        try? await server?.close()
    }

    fileprivate func received(messages: Int) {
        lock.withLock {
            messageCount += messages
            requestCount += 1
        }
    }

    /// Occurrences of `"messageId"` in `bytes`.
    static func countMessageIds(_ bytes: ByteBufferView) -> Int {
        let needle = Array(#""messageId""#.utf8)
        var count = 0
        var matched = 0
        for byte in bytes {
            if byte == needle[matched] {
                matched += 1
                if matched == needle.count {
                    count += 1
                    matched = 0
                }
            } else {
                matched = byte == needle[0] ? 1 : 0
            }
        }
        return count
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let receiver: BenchReceiver
        var head: HTTPRequestHead?
        var body = ByteBuffer()

        init(receiver: BenchReceiver) { self.receiver = receiver }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body.clear()
            case .body(var buffer):
                body.writeBuffer(&buffer)
            case .end:
                guard let head else { return }
                let accepted = head.method == .POST && head.uri == "/v1/batch"
                if accepted { receiver.received(messages: BenchReceiver.countMessageIds(body.readableBytesView)) }
                let text = accepted ? #"{"success":true}"# : #"{"error":"not found"}"#
                var fields = HTTPHeaders()
                fields.add(name: "Content-Length", value: String(text.utf8.count))
                fields.add(name: "Content-Type", value: "application/json")
                if !head.isKeepAlive { fields.add(name: "Connection", value: "close") }
                let response = HTTPResponseHead(version: .http1_1, status: accepted ? .ok : .notFound, headers: fields)
                context.write(wrapOutboundOut(.head(response)), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                if !head.isKeepAlive { context.close(promise: nil) }
                self.head = nil
            }
        }
    }
}
