import Foundation
import Testing

@testable import AudienceSync

@Suite struct ConfigurationTests {
    @Test func loadsTheDemoConfiguration() async throws {
        let file = repositoryRoot + "/fixtures/demo/audience-sync.yml"
        let configuration = try Configuration.load(file: file)
        #expect(configuration.databasePath == repositoryRoot + "/fixtures/demo/audiences.db")
        #expect(configuration.definitionsPath == repositoryRoot + "/fixtures/demo/audiences")
        #expect(configuration.schedule == .hours(2))
        #expect(configuration.spaceID == "spa_demo")
        #expect(configuration.destinations.map(\.name) == ["outbox", "segment", "sprig"])
        let outbox = try #require(configuration.destination(named: "outbox"))
        #expect(outbox.kind == .file)
        #expect(outbox.path == repositoryRoot + "/fixtures/demo/out/identify.ndjson")
        let segment = try #require(configuration.destination(named: "segment"))
        #expect(segment.secret?.source == .environment("SEGMENT_WRITE_KEY"))
        #expect(segment.endpoint?.absoluteString == "https://api.segment.io/v1/batch")
        #expect(segment.sendAs == .identify)
        #expect(segment.timeout == DestinationConfiguration.defaultTimeout)
        #expect(configuration.destination(named: "sprig")?.endpoint?.absoluteString == "https://api.sprig.com/v2/users")
    }

    @Test func emptyFileMeansDefaults() async throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("audience-sync.yml", "# nothing yet\n")
        let configuration = try Configuration.load(file: file)
        #expect(configuration.databasePath == directory.file("audiences.db"))
        #expect(configuration.definitionsPath == directory.file("audiences"))
        #expect(configuration.schedule == .hours(2))
        #expect(configuration.destinations.isEmpty)
    }

    @Test func readsEveryDestinationSetting() async throws {
        let configuration = try Configuration.parse(
            """
            schedule: 3h
            destinations:
              - name: local
                type: segment
                write_key: file:keys/segment
                endpoint: http://127.0.0.1:8080/v1/batch
                timeout: 2.5
                max_retries: 0
                concurrency: 8
                rate_limit: 100
                send_as: track
            """, file: "conf/audience-sync.yml")
        let destination = try #require(configuration.destinations.first)
        #expect(configuration.schedule == .hours(3))
        #expect(destination.secret?.source == .file("conf/keys/segment"))
        #expect(destination.endpoint?.absoluteString == "http://127.0.0.1:8080/v1/batch")
        #expect(destination.timeout == 2.5)
        #expect(destination.maxRetries == 0)
        #expect(destination.concurrency == 8)
        #expect(destination.rateLimit == 100)
        #expect(destination.sendAs == .track)
    }

    static let loopback = ["http://localhost/x", "http://127.0.0.1:9/x", "http://127.255.3.4/x", "http://[::1]:8080/x"]

    @Test(arguments: loopback)
    func plainHTTPToLoopbackIsAllowed(endpoint: String) async throws {
        let text = "destinations:\n  - {name: s, type: segment, write_key: 'env:K', endpoint: '\(endpoint)'}\n"
        let configuration = try Configuration.parse(text, file: "c.yml")
        #expect(configuration.destinations.first?.endpoint?.absoluteString == endpoint)
    }

    static let notLoopback = [
        "http://example.com/x", "http://128.0.0.1/x", "http://127.0.0.1.example.com/x", "http://10.0.0.1/x",
        "http://[::2]/x",
    ]

    @Test(arguments: notLoopback)
    func plainHTTPElsewhereIsRefused(endpoint: String) {
        let text = "destinations:\n  - {name: s, type: segment, write_key: 'env:K', endpoint: '\(endpoint)'}\n"
        let lines = errorLines { _ = try Configuration.parse(text, file: "c.yml") }
        #expect(lines.count == 1)
        #expect(lines.first?.hasPrefix("c.yml:2:") == true)
        #expect(lines.first?.contains("plain http is refused") == true)
    }

    /// Each configuration mistake with its exact location and message.
    static let mistakes: [(String, String, String)] = [
        (
            "unknown top-level field", "database: a.db\ndefinitons: audiences\n",
            "c.yml:2:1: unknown field 'definitons' (expected one of database, database_password, database_schema, definitions, schedule, space_id, destinations, server)"
        ),
        ("bad schedule", "schedule: 2 hours\n", "c.yml:1:11: expected a duration like 30d, 12h, 1d12h (got '2 hours')"),
        (
            "unknown destination type", "destinations:\n  - name: x\n    type: braze\n",
            "c.yml:3:11: unknown destination type 'braze' (expected one of segment, sprig, file)"
        ),
        (
            "field of another type",
            "destinations:\n  - name: x\n    type: sprig\n    api_key: env:K\n    write_key: env:W\n",
            "c.yml:5:5: unknown field 'write_key' (expected one of name, type, api_key, endpoint, timeout, max_retries, concurrency, rate_limit, send_as)"
        ),
        (
            "missing secret", "destinations:\n  - name: x\n    type: segment\n",
            "c.yml:2:5: missing field 'write_key' in a segment destination (give env:NAME or file:PATH)"
        ),
        (
            "missing path", "destinations:\n  - name: x\n    type: file\n",
            "c.yml:2:5: missing field 'path' in a file destination"
        ),
        (
            "bad send_as", "destinations:\n  - {name: x, type: file, path: o.ndjson, send_as: alias}\n",
            "c.yml:2:52: unknown send_as 'alias' (expected one of identify, track)"
        ),
        (
            "bad concurrency", "destinations:\n  - {name: x, type: sprig, api_key: 'env:K', concurrency: 0}\n",
            "c.yml:2:59: expected concurrency: an integer from 1 to 256 (got 0)"
        ),
        (
            "not a mapping", "- database\n",
            "c.yml:1:1: expected a mapping of settings (database, definitions, …) (got a list)"
        ),
        (
            "syntax error", "database: [a\n",
            "c.yml:2:1: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 1, column 11)"
        ),
        ("duplicate field", "database: a.db\ndatabase: b.db\n", "c.yml:1:1: duplicate field 'database' in one mapping"),
    ]

    @Test(arguments: mistakes)
    func reportsMistake(_ what: String, text: String, expected: String) {
        #expect(errorLines { _ = try Configuration.parse(text, file: "c.yml") } == [expected], "\(what)")
    }

    @Test func reportsEveryErrorAtOnce() {
        let text = """
            schedul: 2h
            destinations:
              - name: outbox
                type: file
                path: out.ndjson
              - name: outbox
                type: file
                path: other.ndjson
              - name: sprig
                type: sprig
                api_key: sk_live_1234567890
                endpoint: http://api.example.com/users
            """
        let lines = errorLines { _ = try Configuration.parse(text, file: "c.yml") }
        #expect(
            lines == [
                "c.yml:1:1: unknown field 'schedul' (expected one of database, database_password, database_schema, definitions, schedule, space_id, destinations, server)",
                "c.yml:6:11: duplicate destination name 'outbox' (first at line 3)",
                "c.yml:11:14: api_key must be env:NAME or file:PATH; a secret written into the configuration is refused (value not shown)",
                "c.yml:12:15: plain http is refused for host 'api.example.com': use https (http is allowed only to loopback: 127.0.0.0/8, ::1, localhost)",
            ])
        #expect(!lines.joined().contains("sk_live"))
    }

    @Test func credentialsInTheEndpointAreRefusedWithoutEcho() {
        let text =
            "destinations:\n  - {name: s, type: segment, write_key: 'env:K', endpoint: 'https://secretkey:x@api.segment.io/v1/batch'}\n"
        let lines = errorLines { _ = try Configuration.parse(text, file: "c.yml") }
        #expect(lines.count == 1)
        #expect(!lines.joined().contains("secretkey"))
    }

    @Test func secretsResolveOnDemandAndNeverPrint() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("keys/sprig", "sprig-secret-value\n")
        let file = try directory.write(
            "audience-sync.yml",
            """
            destinations:
              - {name: segment, type: segment, write_key: "env:AUDIENCE_SYNC_TEST_WRITE_KEY"}
              - {name: sprig, type: sprig, api_key: "file:keys/sprig"}
            """)
        // Loading works without the variable being set: nothing is read yet.
        let configuration = try Configuration.load(file: file)
        let segment = try #require(configuration.destinations[0].secret)
        let sprig = try #require(configuration.destinations[1].secret)

        #expect(
            try segment.resolve(environment: ["AUDIENCE_SYNC_TEST_WRITE_KEY": "wk-secret-value"]) == "wk-secret-value")
        #expect(try sprig.resolve() == "sprig-secret-value")
        let missing = errorLines { _ = try segment.resolve(environment: [:]) }
        #expect(missing == ["the environment variable AUDIENCE_SYNC_TEST_WRITE_KEY is not set (it holds a secret)"])

        for secret in [segment, sprig] {
            #expect(secret.description == "<redacted>")
            #expect(secret.debugDescription == "<redacted>")
            #expect("\(secret)" == "<redacted>")
            var dumped = ""
            dump(secret, to: &dumped)
            #expect(!dumped.contains("secret-value"))
        }
        let printed = "\(configuration) \(String(reflecting: configuration)) \(configuration.destinations)"
        #expect(!printed.contains("secret-value"))
        #expect(printed.contains("<redacted>"))
    }

    @Test(arguments: ["env:", "file:", "ENV:X", "literal", "env:A B"])
    func malformedSecretReferencesAreRefused(reference: String) {
        #expect(Secret(reference: reference, relativeTo: "") == nil)
    }
}
