import Crypto
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// `audience-sync serve` (SPEC §11): a Segment-compatible collection endpoint writing through the
/// store's event sink, until SIGTERM or SIGINT.
///
/// On a signal the server stops accepting connections, answers the requests it has (each once its
/// messages are committed), lets the committer commit what is queued, and returns.
public struct CollectorServer {
    let server: ServerConfiguration
    let store: any Store
    let logger: Logger
    let clock: @Sendable () -> Int64
    let sources: [CollectorResponder.Source]
    let webhookSecret: SymmetricKey?

    /// Checks the configuration and resolves its secrets, so that a problem with them is a
    /// configuration error before anything listens.
    public init(
        configuration: Configuration, listen: ListenAddress? = nil, store: any Store, logger: Logger,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        clock: @escaping @Sendable () -> Int64 = Timestamp.now
    ) throws {
        guard var server = configuration.server else {
            throw AudienceSyncError(
                .configuration, "no server section: serve needs server: with at least one source", file: configuration.file)
        }
        guard !server.sources.isEmpty else {
            throw AudienceSyncError(
                .configuration, "server: no sources: give at least one source with a name and a write_key",
                file: configuration.file)
        }
        if let listen { server.listen = listen }
        var sources: [CollectorResponder.Source] = []
        for source in server.sources {
            let key: String
            do {
                key = try source.writeKey.resolve(environment: environment)
            } catch var error as AudienceSyncError {
                error.message = "server source '\(source.name)': write_key: \(error.message)"
                throw error
            }
            sources.append(CollectorResponder.Source(name: source.name, keyDigest: CollectorResponder.digest(ofWriteKey: key)))
        }
        if let secret = server.webhookSecret {
            do {
                webhookSecret = SymmetricKey(data: Array(try secret.resolve(environment: environment).utf8))
            } catch var error as AudienceSyncError {
                error.message = "server: webhook_secret: \(error.message)"
                throw error
            }
        } else {
            webhookSecret = nil
        }
        self.server = server
        self.sources = sources
        self.store = store
        self.logger = logger
        self.clock = clock
    }

    /// Serves until SIGTERM or SIGINT; `onListening` is told the address once the server listens
    /// (with the port the system chose when the configured one is 0).
    public func run(onListening: @escaping @Sendable (ListenAddress) async -> Void = { _ in }) async throws {
        let metrics = CollectorMetrics()
        let committer = Committer(maxQueuedBytes: server.maxQueuedBytes, logger: logger, metrics: metrics)
        let responder = makeResponder(committer: committer, metrics: metrics)
        let host = server.listen.host
        let app = Application(
            responder: responder,
            configuration: .init(address: .hostname(host, port: server.listen.port), serverName: nil),
            services: [CommitterService(store: store, committer: committer)],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                await onListening(ListenAddress(host: host, port: port))
            },
            logger: logger.deferringMetadata)
        logger.notice("serving", metadata: ["listen": "\(server.listen)", "sources": "\(sources.count)"])
        do {
            try await app.runService()
        } catch let error as AudienceSyncError {
            throw error
        } catch {
            throw AudienceSyncError(.io, "cannot serve on \(server.listen): \(error)")
        }
        logger.notice("stopped")
    }

    func makeResponder(committer: Committer, metrics: CollectorMetrics) -> CollectorResponder {
        CollectorResponder(
            sources: sources, webhookSecret: webhookSecret, corsOrigins: server.corsOrigins,
            maxRequestBytes: server.maxRequestBytes, stager: RequestStager(maxMessageBytes: server.maxMessageBytes, textLimits: store.textLimits),
            committer: committer, metrics: metrics, logger: logger, clock: clock)
    }
}

/// Runs the committer with a writer on the store; on graceful shutdown (after the HTTP server has
/// answered its requests) it commits what is queued and ends.
struct CommitterService: Service {
    let store: any Store
    let committer: Committer

    func run() async throws {
        try await store.withEventWriter(EventWriterOptions(transactionSize: nil)) { writer in
            await withGracefulShutdownHandler {
                await committer.run(writer: writer)
            } onGracefulShutdown: {
                committer.stop()
            }
        }
    }
}
