import Foundation
import SharedTestSupport
import Testing

/// `audience-sync ingest` run as a user runs it, on the demo project and small inputs.
@Suite struct IngestCommandTests {
    let binary = Binary("audience-sync")
    static let now = "2026-11-22T12:00:00Z"

    @Test func ingestsTheDemoAndReportsEachBadLine() async throws {
        let scratch = try ScratchDirectory()
        try scratch.copyDemo()
        let first = try binary.run(["ingest", "events.ndjson", "--now", Self.now, "--format", "json"], in: scratch.path)
        #expect(first.status == 1, "rejected lines make a partial failure")
        let report = try parseJSON(first.stdout)
        #expect(report["accepted"] as? Int == 62)
        #expect(report["duplicates"] as? Int == 1)
        #expect(report["rejected"] as? Int == 5)
        #expect(report["anonymous"] as? Int == 7)
        let errors = report["errors"] as? [[String: Any]] ?? []
        #expect(errors.map { $0["line"] as? Int } == [7, 17, 28, 44, 56])
        #expect(errors.allSatisfy { $0["file"] as? String == "events.ndjson" && !(($0["reason"] as? String) ?? "").isEmpty })
        #expect(FileManager.default.fileExists(atPath: scratch.file("audiences.db")), "database: is relative to the config")

        // The same file again stores nothing new.
        let second = try binary.run(["ingest", "events.ndjson", "--now", Self.now, "--format", "json"], in: scratch.path)
        let again = try parseJSON(second.stdout)
        #expect(again["accepted"] as? Int == 0)
        #expect(again["duplicates"] as? Int == 63)
        #expect(again["rejected"] as? Int == 5)
    }

    @Test func textReportNamesFileLineAndReasonOnStandardError() async throws {
        let scratch = try ScratchDirectory()
        try scratch.write("in.ndjson", "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"A\",\"messageId\":\"m1\"}\nnot json\n")
        let result = try binary.run(["ingest", "--db", "s.db", "in.ndjson", "--now", Self.now], in: scratch.path)
        #expect(result.status == 1)
        #expect(result.stderr.contains("in.ndjson:2: not valid JSON"))
        #expect(result.stdout.contains("accepted    1"))
    }

    @Test func cleanInputExitsZeroAndReadsStandardInput() async throws {
        let scratch = try ScratchDirectory()
        let line = "{\"type\":\"identify\",\"userId\":\"u1\",\"traits\":{\"plan\":\"pro\"},\"timestamp\":\"2026-11-01T00:00:00Z\"}\n"
        let result = try binary.run(["ingest", "--db", "s.db", "-", "--format", "json"], in: scratch.path, stdin: line)
        #expect(result.status == 0)
        #expect(try parseJSON(result.stdout)["accepted"] as? Int == 1)
    }

    @Test func strictStoresNothingWhenALineIsBad() async throws {
        let scratch = try ScratchDirectory()
        try scratch.write(
            "in.ndjson",
            "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"A\",\"messageId\":\"m1\"}\n{\"type\":\"track\",\"userId\":\"u1\"}\n")
        let result = try binary.run(
            ["ingest", "--db", "s.db", "in.ndjson", "--strict", "--rejects", "rejects.ndjson", "--format", "json"],
            in: scratch.path)
        #expect(result.status == 1)
        let report = try parseJSON(result.stdout)
        #expect(report["accepted"] as? Int == 0)
        #expect(report["stored"] as? Bool == false)
        let rejects = try String(contentsOfFile: scratch.file("rejects.ndjson"), encoding: .utf8)
        #expect(rejects.split(separator: "\n").count == 1)
        #expect(rejects.contains("\"line\":2"))
        // Nothing was stored: a non-strict run afterwards stores the good line as new.
        let after = try binary.run(["ingest", "--db", "s.db", "in.ndjson", "--format", "json"], in: scratch.path)
        #expect(try parseJSON(after.stdout)["accepted"] as? Int == 1)
    }

    @Test func usageAndConfigurationErrorsExitTwoAndStoreNothing() async throws {
        let scratch = try ScratchDirectory()
        let missingFile = try binary.run(["ingest", "--db", "s.db", "missing.ndjson"], in: scratch.path)
        #expect(missingFile.status == 2)
        #expect(missingFile.stderr.contains("missing.ndjson"))
        #expect(!FileManager.default.fileExists(atPath: scratch.file("s.db")), "nothing is created on a usage error")

        let noConfig = try binary.run(["ingest", "-"], in: scratch.path, stdin: "")
        #expect(noConfig.status == 2)
        #expect(noConfig.stderr.contains("audience-sync.yml"))

        try scratch.write("audience-sync.yml", "database: [unclosed\n")
        let badConfig = try binary.run(["ingest", "-"], in: scratch.path, stdin: "")
        #expect(badConfig.status == 2)
        #expect(badConfig.stderr.contains("audience-sync.yml:"))

        let badOption = try binary.run(["ingest", "--now", "yesterday", "x"], in: scratch.path)
        #expect(badOption.status == 2)
    }

    /// A gzip copy of the demo events, named as gzip or not, or piped to standard input, gives the
    /// plain file's summary (its errors name the file read).
    @Test func gzipInputGivesThePlainFilesSummary() async throws {
        let scratch = try ScratchDirectory()
        try scratch.copyDemo()
        let text = try [UInt8](Data(contentsOf: URL(fileURLWithPath: scratch.file("events.ndjson"))))
        let compressed = gzip(text)
        for name in ["events-copy.ndjson", "events-2026-11-22.json.gz"] {
            #expect(FileManager.default.createFile(atPath: scratch.file(name), contents: Data(compressed)))
        }
        /// The summary with each error's file left out, and the files the errors named.
        func summary(_ result: Binary.Result) throws -> (String, Set<String>) {
            #expect(result.status == 1, "the demo has rejected lines")
            var report = try parseJSON(result.stdout)
            let errors = report["errors"] as? [[String: Any]] ?? []
            report["errors"] = errors.map { $0.filter { $0.key != "file" } }
            let files = Set(errors.compactMap { $0["file"] as? String })
            let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
            return (String(decoding: json, as: UTF8.self), files)
        }
        let arguments = ["ingest", "--now", Self.now, "--format", "json"]
        let plain = try summary(try binary.run(arguments + ["--db", "plain.db", "events.ndjson"], in: scratch.path))
        #expect(plain.0.contains(#""accepted":62"#))
        for name in ["events-copy.ndjson", "events-2026-11-22.json.gz"] {
            let zipped = try summary(try binary.run(arguments + ["--db", "\(name).db", name], in: scratch.path))
            #expect(zipped.0 == plain.0, "\(name)")
            #expect(zipped.1 == [name])
        }
        let piped = try summary(
            try binary.run(arguments + ["--db", "stdin.db", "-"], in: scratch.path, stdinBytes: compressed))
        #expect(piped.0 == plain.0)
        #expect(piped.1 == ["stdin"])
    }

    /// A truncated gzip file: the error names it and the line reached, the exit status is 1, and
    /// the lines before the cut are stored (ingesting the whole file later finds them duplicates).
    @Test func aTruncatedGzipFileIsAnErrorAndKeepsWhatWasRead() async throws {
        let scratch = try ScratchDirectory()
        try scratch.copyDemo()
        let text = try [UInt8](Data(contentsOf: URL(fileURLWithPath: scratch.file("events.ndjson"))))
        let compressed = gzip(text)
        #expect(
            FileManager.default.createFile(
                atPath: scratch.file("events.json.gz"), contents: Data(compressed[0..<(compressed.count / 2)])))
        let cut = try binary.run(["ingest", "events.json.gz", "--now", Self.now], in: scratch.path)
        #expect(cut.status == 1)
        let message = cut.stderr.split(separator: "\n").first { $0.hasPrefix("error: ") }.map(String.init) ?? ""
        #expect(message.hasPrefix("error: events.json.gz: gzip stream truncated after line "), "\(cut.stderr)")
        let reached = Int(message.split(separator: " ").last ?? "") ?? 0
        #expect(reached > 10 && reached < 66)

        // The lines before the cut, as text in a store of their own, store this many messages.
        let lines = String(decoding: text, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        try scratch.write("before.ndjson", lines.prefix(reached).joined(separator: "\n") + "\n")
        let before = try binary.run(
            ["ingest", "--db", "before.db", "before.ndjson", "--now", Self.now, "--format", "json"], in: scratch.path)
        let storedBefore = try #require(try parseJSON(before.stdout)["accepted"] as? Int)
        #expect(storedBefore > 0)

        let whole = try binary.run(["ingest", "events.ndjson", "--now", Self.now, "--format", "json"], in: scratch.path)
        let report = try parseJSON(whole.stdout)
        #expect(report["accepted"] as? Int == 62 - storedBefore, "the lines before the cut were stored")
    }

    @Test func configFromTheEnvironment() async throws {
        let scratch = try ScratchDirectory()
        try scratch.copyDemo()
        let result = try binary.run(
            ["ingest", "events.ndjson", "--now", Self.now, "--quiet"], in: scratch.path,
            environment: ["AUDIENCE_SYNC_CONFIG": scratch.file("audience-sync.yml")])
        #expect(result.status == 1)
        #expect(FileManager.default.fileExists(atPath: scratch.file("audiences.db")))
    }
}
