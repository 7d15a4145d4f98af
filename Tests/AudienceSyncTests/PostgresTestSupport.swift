import Foundation
import PostgresNIO
import SharedTestSupport
import Testing

@testable import AudienceSync

/// The PostgreSQL server the tests use: `AUDIENCE_SYNC_TEST_POSTGRES_URL` and
/// `AUDIENCE_SYNC_TEST_POSTGRES_PASSWORD` (set by `scripts/postgres-test-server.sh run -- …`).
/// Without them a PostgreSQL test is skipped with a printed reason — unless
/// `AUDIENCE_SYNC_TEST_POSTGRES_REQUIRED=1` (CI), where that is a failure.
enum TestPostgres {
    /// A location in a new schema of the test database; nil (after recording why) when there is no server.
    static func newLocation() throws -> PostgresLocation? {
        try PostgresTestServer.newLocation { Issue.record(Comment(rawValue: $0)) }
    }

    /// Runs `body` with a store in a new schema, dropped afterwards; nil when there is no server.
    static func withStore<T>(access: StoreAccess = .readWrite, _ body: (PostgresStore) async throws -> T) async throws -> T? {
        guard let location = try newLocation() else { return nil }
        return try await withStore(location, body)
    }

    /// Runs `body` with a store at `location`, whose schema is dropped afterwards.
    static func withStore<T>(_ location: PostgresLocation, _ body: (PostgresStore) async throws -> T) async throws -> T {
        try await PostgresStore.withStore(location) { store in
            do {
                let result = try await body(store)
                try await drop(store)
                return result
            } catch {
                try? await drop(store)
                throw error
            }
        }
    }

    static func drop(_ store: PostgresStore) async throws {
        _ = try await store.withConnection { connection in
            try await connection.query(
                PostgresQuery(unsafeSQL: "DROP SCHEMA \(PostgresStore.quoted(store.target.schema)) CASCADE"),
                logger: store.logger)
        }
    }
}
