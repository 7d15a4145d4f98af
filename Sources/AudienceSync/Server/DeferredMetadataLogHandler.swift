import Logging

/// A log handler that writes exactly what the handler it wraps writes, but only renders the
/// logger's metadata when a line is written.
///
/// Hummingbird gives every request a logger with its own `hb.request.id`; swift-log's
/// `StreamLogHandler` renders its metadata (the id's text, sorted, joined) each time metadata is
/// set, so that was done for every request although nothing is logged at the default level: about
/// a tenth of the cooperative pool's CPU for single-message requests. Here setting metadata only
/// stores it; the wrapped handler gets it when it writes a line.
struct DeferredMetadataLogHandler: LogHandler {
    private var wrapped: any LogHandler
    var metadata: Logger.Metadata

    init(wrapping handler: any LogHandler) {
        wrapped = handler
        metadata = handler.metadata
    }

    var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var handler = wrapped
        handler.metadata = metadata
        handler.log(event: event)
    }
}

extension Logger {
    /// This logger, with its metadata rendered only when a line is written
    /// (`DeferredMetadataLogHandler`).
    var deferringMetadata: Logger {
        var logger = self
        logger.handler = DeferredMetadataLogHandler(wrapping: handler)
        return logger
    }
}
