import AudienceSync
import Foundation
import SharedTestSupport
import Testing

/// The benchmark harness at a tiny size, so that it keeps building and running.
@Suite struct BenchTests {
    /// The demo definitions the compute stage computes, and their baselines.
    static let demoKeys = [
        "engaged_non_buyers", "nps_detractors", "order_completed_last_30days", "signup_to_order_7d",
        "total_spent_90_days",
    ]

    @Test func anInputFileReportsTheUsersItNames() async throws {
        let directory = try ScratchDirectory()
        let input = try directory.write(
            "events.ndjson",
            (0..<30).map { index in
                #"{"type":"track","userId":"u\#(index % 7)","event":"E","messageId":"m\#(index)","timestamp":"2026-11-20T10:00:00Z"}"#
            }.joined(separator: "\n") + "\n")
        let (status, output, errors) = try Self.run([
            "--input", input, "--stages", "ingest", "--work-dir", directory.file("work"),
        ])
        #expect(status == 0, "stderr: \(errors)")
        let figures = try JSONSerialization.jsonObject(with: output) as? [String: Any]
        #expect(figures?["users"] as? Int == 7)
    }

    @Test func ingestAndComputeStagesPrintOneJSONObjectOfFigures() async throws {
        let definitions = (repositoryRoot as NSString).appendingPathComponent("fixtures/demo/audiences")
        let (status, output, errors) = try Self.run([
            "--events", "20000", "--stages", "ingest,compute", "--definitions", definitions,
        ])
        #expect(status == 0, "stderr: \(errors)")

        let object = try JSONSerialization.jsonObject(with: output) as? [String: Any]
        let figures = try #require(object, "stdout is not one JSON object: \(String(decoding: output, as: UTF8.self))")
        #expect(figures["events"] as? Int == 20000)
        #expect(figures["users"] as? Int == 1000)
        #expect((figures["ingest_events_per_s"] as? Double ?? 0) > 0)
        #expect((figures["db_bytes"] as? Int ?? 0) > 0)
        #expect((figures["peak_rss_mb"] as? Double ?? 0) > 0)
        #expect((figures["sqlite_version"] as? String)?.hasPrefix("3.") == true)
        for notYetMeasured in ["diff_s", "deliver_file_msgs_per_s", "deliver_http_msgs_per_s"] {
            #expect(figures[notYetMeasured] is NSNull, "\(notYetMeasured) should be null when its stage does not run")
        }
        let ingest = figures["ingest"] as? [String: Any]
        #expect(ingest?["accepted"] as? Int == 20000)
        #expect(ingest?["rejected"] as? Int == 0)

        for timings in ["compute_s", "baseline_sql_s"] {
            let seconds = figures[timings] as? [String: Any]
            for key in Self.demoKeys + ["total"] {
                #expect(seconds?[key] is Double, "\(timings) has no figure for \(key)")
            }
        }
        let rows = figures["compute_rows"] as? [String: Any]
        #expect(Set(rows?.keys.map { $0 } ?? []) == Set(Self.demoKeys))
        #expect((rows?["order_completed_last_30days"] as? Int ?? 0) > 0)
        #expect(figures["baseline_matches"] as? Bool == true)
        #expect((figures["compute_vs_baseline"] as? Double ?? 0) > 0)
    }

    /// The diff and deliver stages at a tiny size: the pair diff, then a real sync to the file
    /// destination and to the harness's loopback Segment receiver.
    @Test func diffAndDeliverStagesReportTheirFigures() async throws {
        let (status, output, errors) = try Self.run([
            "--stages", "diff,deliver", "--diff-members", "20000", "--deliver-messages", "20000",
        ])
        #expect(status == 0, "stderr: \(errors)")
        let object = try JSONSerialization.jsonObject(with: output) as? [String: Any]
        let figures = try #require(object, "stdout is not one JSON object: \(String(decoding: output, as: UTF8.self))")
        #expect((figures["diff_s"] as? Double ?? 0) > 0)
        #expect((figures["deliver_file_msgs_per_s"] as? Double ?? 0) > 0)
        #expect((figures["deliver_http_msgs_per_s"] as? Double ?? 0) > 0)
        #expect((figures["peak_rss_mb"] as? Double ?? 0) > 0)
        let deliver = figures["deliver"] as? [String: Any]
        #expect((deliver?["http_sync_s"] as? Double ?? 0) > 0)
        #expect((deliver?["http_sync_parts_s"] as? [String: Any])?["delivery"] is Double)
        #expect(errors.contains("diff: 20000 members against a snapshot of 20000: 1000 entered, 1000 exited"))
        #expect(errors.contains("the receiver counted 20000 messages"))
    }

    /// The serve stage at a tiny size: `audience-sync serve` as a child process, every phase of
    /// load, a small first sync beside it, and every message answered 200 found in the store.
    @Test func serveStageReportsItsFiguresAndStoresEveryMessage() async throws {
        let (status, output, errors) = try Self.run([
            "--stages", "serve", "--serve-batch-connections", "2,4", "--serve-batch-requests", "10",
            "--serve-batch-size", "10", "--serve-track-connections", "4", "--serve-track-requests", "100",
            "--serve-steady-rate", "100", "--serve-steady-seconds", "1", "--serve-steady-connections", "4",
            "--serve-sync-members", "2000", "--serve-sync-rate", "100",
        ])
        #expect(status == 0, "stderr: \(errors)")
        let object = try JSONSerialization.jsonObject(with: output) as? [String: Any]
        let figures = try #require(object, "stdout is not one JSON object: \(String(decoding: output, as: UTF8.self))")
        for key in [
            "serve_batch_events_per_s", "serve_track_requests_per_s", "serve_p99_ms_at_2000_rps",
            "serve_during_sync_p99_ms", "serve_peak_rss_mb",
        ] {
            #expect((figures[key] as? Double ?? 0) > 0, "\(key) should be a positive number")
        }
        #expect(figures["serve_during_sync_refused"] is Int)
        for other in ["ingest_events_per_s", "diff_s", "deliver_file_msgs_per_s"] {
            #expect(figures[other] is NSNull, "\(other) should be null when its stage does not run")
        }
        let serve = try #require(figures["serve"] as? [String: Any])
        let batch = serve["batch"] as? [[String: Any]]
        #expect(batch?.map { $0["connections"] as? Int } == [2, 4])
        #expect(batch?.first?["requests"] as? Int == 10)
        #expect((serve["track"] as? [String: Any])?["requests"] as? Int == 100)
        #expect((serve["steady"] as? [String: Any])?["requests"] as? Int == 100)
        #expect((serve["during_sync"] as? [String: Any])?["sync_members"] as? Int == 2000)
        // Warm-ups included: 2 × 2 + 2 × 4 batches of 10, 8 tracks before each of the three other runs.
        let posted = serve["posted_messages"] as? Int ?? 0
        #expect(posted >= 2 * 10 * 10 + 12 * 10 + 100 + 100 + 3 * 8)
        #expect(serve["stored_messages"] as? Int == posted)
        #expect(errors.contains("serve: the store holds all \(posted) messages answered 200"))
        #expect(errors.contains("the concurrent first sync sent 2000 messages"))
    }

    /// A definition changed so that its baseline no longer says the same thing stops the run.
    @Test func baselineThatDisagreesWithTheEngineFailsTheRun() async throws {
        let scratch = try ScratchDirectory()
        try scratch.copyDemo()
        try scratch.write(
            "audiences/nps_detractors.yml",
            """
            name: NPS Detractors
            condition:
              performed: SDK - Submitted - Survey Response
              where:
                properties.question: How likely are you to recommend us?
                properties.response: { lte: 5 }
              within: 90d
            """)
        let (status, output, errors) = try Self.run([
            "--events", "20000", "--stages", "compute", "--definitions", scratch.file("audiences"),
        ])
        #expect(status == 1)
        #expect(output.isEmpty)
        #expect(errors.contains("the baseline SQL for 'nps_detractors' does not give the engine's result"))
    }

    /// `--store`: ingest and compute on PostgreSQL, the baseline in PostgreSQL's SQL checked against
    /// the engine, in a schema of the test server (`AUDIENCE_SYNC_TEST_POSTGRES_URL`) dropped afterwards.
    /// Skipped with a printed reason without a server, unless `AUDIENCE_SYNC_TEST_POSTGRES_REQUIRED=1`.
    @Test func ingestAndComputeStagesRunOnPostgreSQL() async throws {
        guard let (url, password) = Self.testServer("the benchmark on PostgreSQL") else { return }
        let schema = "bench_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let location = try PostgresLocation(
            url: url, password: Secret(.environment("AUDIENCE_SYNC_TEST_POSTGRES_PASSWORD")), schema: schema)
        let definitions = (repositoryRoot as NSString).appendingPathComponent("fixtures/demo/audiences")
        let arguments = [
            "--store", url, "--store-schema", schema, "--events", "20000", "--stages", "ingest,compute",
            "--definitions", definitions,
        ]
        let (status, output, errors) = try Self.run(arguments, environment: ["PGPASSWORD": password])
        try await PostgresStore.withStore(location) { store in
            _ = try await store.rows(CompiledQuery(sql: "DROP SCHEMA \"\(schema)\" CASCADE", binds: []))
        }
        #expect(status == 0, "stderr: \(errors)")
        let object = try JSONSerialization.jsonObject(with: output) as? [String: Any]
        let figures = try #require(object, "stdout is not one JSON object: \(String(decoding: output, as: UTF8.self))")
        #expect(figures["store"] as? String == "postgresql")
        #expect((figures["ingest_events_per_s"] as? Double ?? 0) > 0)
        #expect((figures["ingest"] as? [String: Any])?["accepted"] as? Int == 20000)
        #expect((figures["db_bytes"] as? Int ?? 0) > 0)
        #expect((figures["peak_rss_mb"] as? Double ?? 0) > 0)
        #expect((figures["postgres_settings"] as? [String: Any])?["shared_buffers"] is String)
        for timings in ["compute_s", "baseline_sql_s"] {
            let seconds = figures[timings] as? [String: Any]
            for key in Self.demoKeys + ["total"] {
                #expect(seconds?[key] is Double, "\(timings) has no figure for \(key)")
            }
        }
        #expect(((figures["compute_rows"] as? [String: Any])?["order_completed_last_30days"] as? Int ?? 0) > 0)
        #expect(figures["baseline_matches"] as? Bool == true)
    }

    /// `--store` with the diff and deliver stages: their sync store in the schema `<schema>_sync` of
    /// the test server, the same syncer as on SQLite; both schemas dropped afterwards.
    @Test func diffAndDeliverStagesRunOnPostgreSQL() async throws {
        guard let (url, password) = Self.testServer("the benchmark's sync stages on PostgreSQL") else { return }
        let schema = "bench_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let (status, output, errors) = try Self.run(
            [
                "--store", url, "--store-schema", schema, "--stages", "diff,deliver", "--diff-members", "2000",
                "--deliver-messages", "2000",
            ], environment: ["PGPASSWORD": password])
        let location = try PostgresLocation(
            url: url, password: Secret(.environment("AUDIENCE_SYNC_TEST_POSTGRES_PASSWORD")), schema: schema)
        try await PostgresStore.withStore(location) { store in
            _ = try await store.rows(CompiledQuery(sql: "DROP SCHEMA IF EXISTS \"\(schema)_sync\" CASCADE", binds: []))
            _ = try await store.rows(CompiledQuery(sql: "DROP SCHEMA IF EXISTS \"\(schema)\" CASCADE", binds: []))
        }
        #expect(status == 0, "stderr: \(errors)")
        let object = try JSONSerialization.jsonObject(with: output) as? [String: Any]
        let figures = try #require(object, "stdout is not one JSON object: \(String(decoding: output, as: UTF8.self))")
        #expect(figures["store"] as? String == "postgresql")
        #expect((figures["postgres_settings"] as? [String: Any])?["shared_buffers"] is String)
        #expect((figures["diff_s"] as? Double ?? 0) > 0)
        #expect((figures["deliver_file_msgs_per_s"] as? Double ?? 0) > 0)
        #expect((figures["deliver_http_msgs_per_s"] as? Double ?? 0) > 0)
        let deliver = figures["deliver"] as? [String: Any]
        #expect((deliver?["file_sync_s"] as? Double ?? 0) > 0)
        #expect((deliver?["file_sync_parts_s"] as? [String: Any])?["outbox"] is Double)
        #expect(errors.contains("diff: 2000 members against a snapshot of 2000: 100 entered, 100 exited"))
        #expect(errors.contains("the receiver counted 2000 messages"))
    }

    /// The serve stage runs on SQLite only: with --store it is refused, with its reason, before anything runs.
    @Test func serveOnPostgreSQLIsAUsageError() async throws {
        let (status, output, errors) = try Self.run([
            "--store", "postgres://bench@127.0.0.1:1/bench", "--stages", "ingest,diff,serve",
        ])
        #expect(status == 64)
        #expect(output.isEmpty)
        #expect(errors.contains("the serve stage runs on SQLite only"))
    }

    @Test func computeWithoutItsDefinitionsIsAUsageError() async throws {
        let (status, output, errors) = try Self.run([
            "--events", "10", "--stages", "compute", "--definitions", "/nonexistent/audiences",
        ])
        #expect(status == 64)
        #expect(output.isEmpty)
        #expect(errors.contains("--definitions '/nonexistent/audiences' is not a folder"))
    }

    @Test func unknownStageIsAUsageError() async throws {
        let (status, output, errors) = try Self.run(["--events", "10", "--stages", "ingest,nonsense"])
        #expect(status == 64)
        #expect(output.isEmpty)
        #expect(errors.contains("unknown stage 'nonsense'"))
    }

    /// The test server's URL and password (`AUDIENCE_SYNC_TEST_POSTGRES_URL`, `…_PASSWORD`); nil, with
    /// `what` skipped and the reason printed, without them — or an issue recorded when
    /// `AUDIENCE_SYNC_TEST_POSTGRES_REQUIRED=1`.
    static func testServer(_ what: String) -> (url: String, password: String)? {
        let environment = ProcessInfo.processInfo.environment
        guard let url = environment["AUDIENCE_SYNC_TEST_POSTGRES_URL"], !url.isEmpty else {
            let reason = "no PostgreSQL server: AUDIENCE_SYNC_TEST_POSTGRES_URL is not set "
                + "(run the tests under scripts/postgres-test-server.sh run -- swift test)"
            if environment["AUDIENCE_SYNC_TEST_POSTGRES_REQUIRED"] == "1" {
                Issue.record(Comment(rawValue: reason))
            } else {
                print("skipping \(what): \(reason)")
            }
            return nil
        }
        return (url, environment["AUDIENCE_SYNC_TEST_POSTGRES_PASSWORD"] ?? "")
    }

    // MARK: Running the built binary

    /// The folder holding the built products (the test bundle and the executables).
    static var productsDirectory: URL {
        #if os(macOS)
            for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
                return bundle.bundleURL.deletingLastPathComponent()
            }
            fatalError("cannot find the products directory")
        #else
            return Bundle.main.bundleURL
        #endif
    }

    /// Runs `audience-sync-bench` with `arguments` (and `environment` over this process's): its exit
    /// status, standard output and standard error.
    static func run(
        _ arguments: [String], environment: [String: String] = [:]
    ) throws -> (status: Int32, output: Data, errors: String) {
        // Standard error goes to a file, so that neither stream can fill a pipe and block the child.
        let errorsPath = (NSTemporaryDirectory() as NSString)
            .appendingPathComponent("audience-sync-bench-stderr-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: errorsPath) }
        let output = try ChildProcess.Pipe()
        let process = try ChildProcess(
            productsDirectory.appendingPathComponent("audience-sync-bench").path, arguments,
            environment: ProcessInfo.processInfo.environment.merging(environment) { _, new in new },
            stdin: .null, stdout: .pipe(output), stderr: .file(errorsPath))
        let outputData = Data(try output.readToEnd())
        process.waitUntilExit()
        let errorText = (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? ""
        return (process.terminationStatus, outputData, errorText)
    }
}
