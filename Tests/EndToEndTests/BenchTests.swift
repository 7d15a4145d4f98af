import Foundation
import Testing

/// The benchmark harness at a tiny size, so that it keeps building and running.
@Suite struct BenchTests {
    @Test func ingestStagePrintsOneJSONObjectOfFigures() throws {
        let (status, output, errors) = try Self.run(["--events", "20000", "--stages", "ingest"])
        #expect(status == 0, "stderr: \(errors)")

        let object = try JSONSerialization.jsonObject(with: output) as? [String: Any]
        let figures = try #require(object, "stdout is not one JSON object: \(String(decoding: output, as: UTF8.self))")
        #expect(figures["events"] as? Int == 20000)
        #expect(figures["users"] as? Int == 1000)
        #expect((figures["ingest_events_per_s"] as? Double ?? 0) > 0)
        #expect((figures["db_bytes"] as? Int ?? 0) > 0)
        #expect((figures["peak_rss_mb"] as? Double ?? 0) > 0)
        #expect((figures["sqlite_version"] as? String)?.hasPrefix("3.") == true)
        for notYetMeasured in [
            "compute_s", "baseline_sql_s", "diff_s", "deliver_file_msgs_per_s", "deliver_http_msgs_per_s",
        ] {
            #expect(figures[notYetMeasured] is NSNull, "\(notYetMeasured) should be null until its stage exists")
        }
        let ingest = figures["ingest"] as? [String: Any]
        #expect(ingest?["accepted"] as? Int == 20000)
        #expect(ingest?["rejected"] as? Int == 0)
    }

    @Test func unknownStageIsAUsageError() throws {
        let (status, output, errors) = try Self.run(["--events", "10", "--stages", "ingest,nonsense"])
        #expect(status == 64)
        #expect(output.isEmpty)
        #expect(errors.contains("unknown stage 'nonsense'"))
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

    /// Runs `audience-sync-bench` with `arguments`: its exit status, standard output and standard error.
    static func run(_ arguments: [String]) throws -> (status: Int32, output: Data, errors: String) {
        let process = Process()
        process.executableURL = productsDirectory.appendingPathComponent("audience-sync-bench")
        process.arguments = arguments
        // Standard error goes to a file, so that neither stream can fill a pipe and block the child.
        let errorsPath = (NSTemporaryDirectory() as NSString)
            .appendingPathComponent("audience-sync-bench-stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errorsPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errorsPath) }
        let errors = try FileHandle(forWritingTo: URL(fileURLWithPath: errorsPath))
        defer { try? errors.close() }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errorText = (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? ""
        return (process.terminationStatus, outputData, errorText)
    }
}
