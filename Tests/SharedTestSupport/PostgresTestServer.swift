import AudienceSync
import Foundation
import NIOConcurrencyHelpers

/// The PostgreSQL server the tests use, for every test target: `AUDIENCE_SYNC_TEST_POSTGRES_URL`
/// and `AUDIENCE_SYNC_TEST_POSTGRES_PASSWORD` (set by `scripts/postgres-test-server.sh`). Without
/// them a PostgreSQL test is skipped with a printed reason — unless
/// `AUDIENCE_SYNC_TEST_POSTGRES_REQUIRED=1` (CI), where that is a failure.
///
/// A library target, not a test target, so that several test targets can depend on it; hence it
/// uses only the public API of `AudienceSync` and does not import `Testing` (a caller records the
/// failure).
public enum PostgresTestServer {
    public static let urlVariable = "AUDIENCE_SYNC_TEST_POSTGRES_URL"
    public static let passwordVariable = "AUDIENCE_SYNC_TEST_POSTGRES_PASSWORD"
    public static let requiredVariable = "AUDIENCE_SYNC_TEST_POSTGRES_REQUIRED"

    /// The server's URL (without the password); nil when there is none, after printing why once
    /// per process — or, when a server is required, after calling `fail` with why.
    public static func url(fail: (String) -> Void) -> String? {
        let environment = ProcessInfo.processInfo.environment
        if let url = environment[urlVariable], !url.isEmpty { return url }
        let reason =
            "no PostgreSQL server: \(urlVariable) is not set (run the tests under scripts/postgres-test-server.sh run -- swift test)"
        if environment[requiredVariable] == "1" {
            fail(reason)
        } else {
            skipped(reason)
        }
        return nil
    }

    /// A new schema's name, `test_` and 32 hex digits: every test has a store of its own.
    public static func newSchema() -> String {
        "test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }

    /// A location in a new schema of the test database; nil when there is no server (see `url`).
    public static func newLocation(fail: (String) -> Void) throws -> PostgresLocation? {
        guard let url = url(fail: fail) else { return nil }
        return try PostgresLocation(url: url, password: Secret(.environment(passwordVariable)), schema: newSchema())
    }

    private static let printed = NIOLockedValueBox(false)

    /// Prints the reason for skipping once per test process.
    public static func skipped(_ reason: String) {
        let first = printed.withLockedValue { done in
            defer { done = true }
            return !done
        }
        if first { print("skipping the PostgreSQL tests: \(reason)") }
    }
}
