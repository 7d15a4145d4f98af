import Foundation
import Logging

/// Makes the destinations a run delivers to from their configuration (SPEC §5, §6.2): the file
/// destination, and the HTTP ones with their secret resolved here, once per run. A missing secret
/// is a configuration error that names the destination and where the secret was looked for, never
/// a value.
public struct DestinationFactory: Sendable {
    /// Makes the destination for a configuration; nil when this version cannot deliver to it.
    public typealias Make = @Sendable (DestinationConfiguration) throws -> (any Destination)?

    let make: Make

    public init(_ make: @escaping Make) {
        self.make = make
    }

    /// The standard destinations: `file`, `segment` and `sprig`.
    public static func standard(
        logger: Logger, hooks: HTTPDeliveryHooks = .live,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> DestinationFactory {
        DestinationFactory { try standardDestination($0, logger: logger, hooks: hooks, environment: environment) }
    }

    /// The destination for a configuration: `file`, `segment` or `sprig`.
    public static func standardDestination(
        _ configuration: DestinationConfiguration, logger: Logger, hooks: HTTPDeliveryHooks = .live,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> (any Destination)? {
        switch configuration.kind {
        case .file:
            guard let path = configuration.path else { return nil }
            return FileDestination(path: path)
        case .segment:
            let writeKey = try resolveSecret(of: configuration, environment: environment)
            return try SegmentDestination(configuration: configuration, writeKey: writeKey, hooks: hooks, logger: logger)
        case .sprig:
            let apiKey = try resolveSecret(of: configuration, environment: environment)
            return try SprigDestination(configuration: configuration, apiKey: apiKey, hooks: hooks, logger: logger)
        }
    }

    private static func resolveSecret(of configuration: DestinationConfiguration, environment: [String: String]) throws
        -> String
    {
        let field = configuration.kind.secretField ?? "secret"
        guard let secret = configuration.secret else {
            throw AudienceSyncError(.configuration, "destination '\(configuration.name)' has no \(field)")
        }
        do {
            return try secret.resolve(environment: environment)
        } catch var error as AudienceSyncError {
            error.message = "destination '\(configuration.name)': \(field): \(error.message)"
            throw error
        }
    }

    /// Opens the destinations named `names` that the configuration has, runs `body` with them,
    /// and closes them all however `body` ends. Every one is made before `body` starts, so a
    /// missing secret stops a run before anything is sent.
    public func withDestinations<T>(
        _ names: [String], configuration: Configuration, _ body: (OpenDestinations) async throws -> T
    ) async throws -> T {
        var opened: [String: any Destination] = [:]
        do {
            for name in Set(names).sorted() {
                if let destinationConfiguration = configuration.destination(named: name),
                    let destination = try make(destinationConfiguration)
                {
                    opened[name] = destination
                }
            }
        } catch {
            for destination in opened.values { await destination.close() }
            throw error
        }
        let destinations = OpenDestinations(byName: opened)
        do {
            let result = try await body(destinations)
            for destination in opened.values { await destination.close() }
            return result
        } catch {
            for destination in opened.values { await destination.close() }
            throw error
        }
    }
}

/// The destinations of one run, by name.
public struct OpenDestinations: Sendable {
    let byName: [String: any Destination]

    /// The destination named `name`, or nil when it is not configured or cannot be delivered to.
    public subscript(name: String) -> (any Destination)? { byName[name] }
}
