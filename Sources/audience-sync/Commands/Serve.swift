import ArgumentParser
import AudienceSync
import Foundation

extension AudienceSyncCommand {
    /// `audience-sync serve`: the HTTP collection endpoint (SPEC §11).
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Collect events over HTTP, as Segment's Tracking API takes them, into the store.",
            discussion: """
                Listens on the configuration's server.listen (or --listen) for Segment's routes \
                (/v1/batch, /v1/track, … and their short forms /v1/b, /v1/t, …; /v1/import; \
                /v1/webhook for Segment's Webhooks destination), /health and /metrics. Each request \
                is authenticated by a source's write key (HTTP Basic user name, or writeKey in the \
                body), its messages validated as ingest validates them, and answered 200 only once \
                they are committed. Runs beside 'ingest' and the cron 'sync' on the same store.

                SIGTERM or SIGINT: stop accepting connections, commit and answer what was accepted, \
                exit 0. Exit 2 for a configuration problem (no server section or sources, a bad \
                listen address, a missing secret); exit 1 when the address is in use or the store \
                cannot be opened.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Listen here instead of the configuration's server.listen.", valueName: "host:port"))
        var listen: String?

        func validate() throws {
            if let listen, ListenAddress(listen) == nil {
                throw ValidationError("--listen: expected HOST:PORT like 127.0.0.1:8088 (got '\(listen)')")
            }
        }

        func run() async throws {
            guard let configuration = try global.loadConfiguration(required: true) else { return }
            let logger = global.makeLogger()
            let location = try global.storeLocation(configuration)
            try await location.withStore(access: .readWrite, logger: logger) { store in
                let server = try CollectorServer(
                    configuration: configuration, listen: listen.flatMap(ListenAddress.init), store: store, logger: logger)
                try await server.run { address in
                    if !global.quiet { Console.error("listening on \(address)") }
                }
            }
        }
    }
}
