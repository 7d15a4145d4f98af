import AsyncHTTPClient
import AudienceSync
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The serve stage's settings (`--serve-*`).
struct ServeOptions {
    var client: LoadClientKind = .nio
    /// The batch phase runs once per count; the best rate is the figure.
    var batchConnections: [Int] = [8, 16, 32]
    var batchRequests = 2_000
    var batchSize = 100
    var trackConnections = 64
    var trackRequests = 30_000
    var steadyRate = 2_000.0
    var steadySeconds = 10.0
    var steadyConnections = 64
    /// Members of the audience the concurrent first sync delivers; 0 skips that phase.
    var syncMembers = 1_000_000
    var syncRate = 1_000.0
    /// The `audience-sync` executable run as the server.
    var binary: String
}

/// The serve stage: `audience-sync serve` as a child process on a store of the diff/deliver kind
/// (`SyncRun.prepare`, with `--serve-sync-members` `Bench Deliver` events), loaded by this process
/// over keep-alive HTTP/1.1 connections on 127.0.0.1.
///
/// Phases, in order: `/v1/batch` of `batchSize` messages, closed loop, once per connection count;
/// `/v1/track`, closed loop; `/v1/track` at a steady rate (open loop); the same at `syncRate`
/// while a first sync of `syncMembers` members to a file destination runs in this process on the
/// same store. Then the server is stopped (SIGTERM) and every message answered 200 must be in the
/// store.
struct ServeRun {
    var workFolder: WorkFolder
    var now: Int64
    var options: ServeOptions

    static let writeKey = "bench-serve-write-key"
    static let eventName = "Bench Serve"
    /// No phase may take longer than this (the load stops and the run fails).
    static let phaseLimit = TimeAmount.seconds(600)

    func measure(into report: inout BenchReport) async throws {
        guard FileManager.default.isExecutableFile(atPath: options.binary) else {
            throw AudienceSyncError(
                .usage,
                "serve: the server executable '\(options.binary)' is missing: build it first "
                    + "(swift build -c release), or name it with --serve-binary")
        }
        // The store: the deliver stage's, with its `Bench Deliver` events, plus a server section.
        let syncRun = try SyncRun(
            workFolder: workFolder, now: now, diffMembers: 20, deliverMessages: max(1, options.syncMembers),
            httpConcurrency: 4)
        let configurationPath = try await syncRun.prepare(diff: false, deliver: options.syncMembers > 0, port: 9)
        let keyFile = workFolder.file("serve-write-key")
        try "\(Self.writeKey)\n".write(toFile: keyFile, atomically: true, encoding: .utf8)
        let configuration = try String(contentsOfFile: configurationPath, encoding: .utf8) + """

            server:
              listen: 127.0.0.1:0
              sources:
                - name: bench
                  write_key: file:\(keyFile)

            """
        try configuration.write(toFile: configurationPath, atomically: true, encoding: .utf8)

        let server = try ServerProcess.start(
            binary: options.binary, configurationPath: configurationPath, folder: workFolder)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        var detail = ServeDetail(options: options, clientName: "")
        do {
            try await runPhases(server: server, loop: loop, configurationPath: configurationPath, detail: &detail)
            detail.peakResidentMebibytes = server.peakResidentMebibytes()
            try server.stop()
        } catch {
            server.kill()
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()

        // Every message answered 200 is in the store, once.
        let store = try await SQLiteStore(path: SyncRun.sqlitePath(workFolder), access: .readOnly)
        let rows = try await store.rows(
            CompiledQuery(sql: "SELECT count(*) FROM events WHERE event = ?1", binds: [.text(Self.eventName)]))
        let stored: Int
        if case .integer(let count)? = rows.first?.first { stored = Int(count) } else { stored = -1 }
        detail.storedMessages = stored
        guard stored == detail.postedMessages else {
            throw AudienceSyncError(
                .usage,
                "serve: \(detail.postedMessages) messages were answered 200 but the store holds \(stored) "
                    + "'\(Self.eventName)' events")
        }
        Progress.note(
            "serve: the store holds all \(stored) messages answered 200; the server's peak RSS (VmHWM) "
                + "\(format(detail.peakResidentMebibytes ?? .nan, 1)) MiB")
        detail.fill(&report)
    }

    private func runPhases(
        server: ServerProcess, loop: any EventLoop, configurationPath: String, detail: inout ServeDetail
    ) async throws {
        let bodies = LoadBodies(port: server.port, client: options.client, writeKey: Self.writeKey, now: now)
        let metrics = MetricsReader(loop: loop, port: server.port)
        defer { metrics.close() }

        // /v1/batch, closed loop, once per connection count. The tag, part of every messageId, is
        // the run's position: a count given twice must post new messages, not duplicates.
        for (position, connections) in options.batchConnections.enumerated() {
            let tag = "b\(position)-\(connections)"
            let requests = (0..<options.batchRequests).map { bodies.batch(tag: tag, index: $0, size: options.batchSize) }
            let phase = try await closedLoopPhase(
                "batch", connections: connections, requests: requests, bodies: bodies, tag: tag, loop: loop,
                server: server, metrics: metrics, detail: &detail)
            detail.batch.append(phase)
        }
        // /v1/track, closed loop.
        do {
            let requests = (0..<options.trackRequests).map { bodies.track(tag: "t", index: $0) }
            detail.track = try await closedLoopPhase(
                "track", connections: options.trackConnections, requests: requests, bodies: bodies, tag: "t",
                loop: loop, server: server, metrics: metrics, detail: &detail)
        }
        // /v1/track at a steady rate.
        do {
            let count = Int(options.steadyRate * options.steadySeconds)
            let requests = (0..<count).map { bodies.track(tag: "s", index: $0) }
            detail.steady = try await openLoopPhase(
                "steady", rate: options.steadyRate, connections: options.steadyConnections, bodies: bodies,
                warmUpTag: "ws", loop: loop, server: server, metrics: metrics, detail: &detail,
                request: { $0 < requests.count ? requests[$0] : nil }, during: nil)
        }
        // The same, while a first sync of a large audience writes to the store.
        if options.syncMembers > 0 {
            let members = options.syncMembers
            let client = options.client
            let port = server.port
            let now = now
            // Built as they are sent (a few microseconds each): the phase lasts as long as the sync.
            let tracks = LoadBodies(port: port, client: client, writeKey: Self.writeKey, now: now)
            var timeline = SyncTimeline()
            var during = try await openLoopPhase(
                "during sync", rate: options.syncRate, connections: options.steadyConnections, bodies: bodies,
                warmUpTag: "wy", loop: loop, server: server, metrics: metrics, detail: &detail,
                request: { tracks.track(tag: "y", index: $0) },
                during: {
                    timeline = try await runSync(configurationPath: configurationPath, members: members)
                })
            during.syncSeconds = timeline.seconds
            during.syncMembers = members
            during.syncTimeline = timeline
            Progress.note("serve: during sync: \(during.windowSummary)")
            detail.duringSync = during
        }
    }

    /// Warms up (two requests per connection, not measured), then sends `requests` keeping every
    /// connection busy.
    private func closedLoopPhase(
        _ name: String, connections: Int, requests: [LoadRequest], bodies: LoadBodies, tag: String,
        loop: any EventLoop, server: ServerProcess, metrics: MetricsReader, detail: inout ServeDetail
    ) async throws -> ServePhase {
        let transport = options.client.makeTransport(
            loop: loop, host: "127.0.0.1", port: server.port, connections: connections)
        let driver = LoadDriver(transport: transport)
        do {
            try await loop.flatSubmit { transport.connect() }.get()
            detail.clientName = transport.name
            let warmUp = (0..<(2 * connections)).map { index in
                requests.first!.messages > 1
                    ? bodies.batch(tag: "w" + tag, index: index, size: requests.first!.messages)
                    : bodies.track(tag: "w" + tag, index: index)
            }
            let warm = try await driver.closedLoop(warmUp, concurrency: connections, limit: Self.phaseLimit)
            detail.postedMessages += warm.storedMessages
            let before = PhaseCounters(server: server, metrics: await metrics.read())
            let outcome = try await driver.closedLoop(requests, concurrency: connections, limit: Self.phaseLimit)
            let after = PhaseCounters(server: server, metrics: await metrics.read())
            await transport.close()
            detail.postedMessages += outcome.storedMessages
            let phase = ServePhase(
                name: name, connections: connections, outcome: outcome, before: before, after: after,
                messagesPerRequest: requests.first?.messages ?? 0)
            Progress.note("serve: \(phase.summary)")
            try phase.requireAllOK()
            return phase
        } catch {
            await transport.close()
            throw error
        }
    }

    /// Warms up, then sends `request(i)` at `rate` per second until it gives nil, or, with
    /// `during`, until `during` has run (starting half a second into the load).
    private func openLoopPhase(
        _ name: String, rate: Double, connections: Int, bodies: LoadBodies, warmUpTag: String, loop: any EventLoop,
        server: ServerProcess, metrics: MetricsReader, detail: inout ServeDetail,
        request: @escaping @Sendable (Int) -> LoadRequest?, during: (() async throws -> Void)?
    ) async throws -> ServePhase {
        let transport = options.client.makeTransport(
            loop: loop, host: "127.0.0.1", port: server.port, connections: connections)
        let driver = LoadDriver(transport: transport)
        do {
            try await loop.flatSubmit { transport.connect() }.get()
            let warmUp = (0..<(2 * connections)).map { bodies.track(tag: warmUpTag, index: $0) }
            let warm = try await driver.closedLoop(warmUp, concurrency: connections, limit: Self.phaseLimit)
            detail.postedMessages += warm.storedMessages
            let before = PhaseCounters(server: server, metrics: await metrics.read())
            let outcome: LoadOutcome
            if let during {
                async let load = driver.openLoop(rate: rate, limit: Self.phaseLimit, request: request)
                do {
                    try await Task.sleep(for: .milliseconds(500))
                    try await during()
                } catch {
                    driver.stop()
                    _ = try? await load
                    throw error
                }
                driver.stop()
                outcome = try await load
            } else {
                outcome = try await driver.openLoop(rate: rate, limit: Self.phaseLimit, request: request)
            }
            let after = PhaseCounters(server: server, metrics: await metrics.read())
            await transport.close()
            detail.postedMessages += outcome.storedMessages
            var phase = ServePhase(
                name: name, connections: connections, outcome: outcome, before: before, after: after,
                messagesPerRequest: 1)
            phase.rate = rate
            Progress.note("serve: \(phase.summary)")
            if during == nil { try phase.requireAllOK() }
            return phase
        } catch {
            await transport.close()
            throw error
        }
    }

    /// A first sync of `bench_deliver` to the file destination (`--force`), as the deliver stage
    /// runs it; when it started, began delivering and ended.
    private func runSync(configurationPath: String, members: Int) async throws -> SyncTimeline {
        let configuration = try Configuration.load(file: configurationPath)
        let definitions = try DefinitionSet.load(directory: workFolder.file("sync-audiences"), configuration: configuration)
        let store = try await SQLiteStore(path: SyncRun.sqlitePath(workFolder))
        let sync = try await TimedSync.run(
            on: store, definitions: definitions, configuration: configuration, destination: "deliver_file", now: now)
        let result = sync.result
        let deliveringAt = sync.deliveringAt ?? sync.startedAt
        let timeline = SyncTimeline(
            startedAt: sync.startedAt, diffedAt: min(sync.diffedAt ?? sync.startedAt, deliveringAt),
            deliveringAt: deliveringAt, deliveredAt: sync.deliveredAt ?? sync.endedAt, endedAt: sync.endedAt,
            seconds: Double(sync.endedAt - sync.startedAt) / 1e9)
        guard let pair = result.pairs.first, pair.sent == members, pair.failed == 0 else {
            throw AudienceSyncError(
                .delivery, "serve: the concurrent sync did not send its \(members) messages: \(ReportJSON.encode(result))")
        }
        Progress.note(
            "serve: the concurrent first sync sent \(pair.sent) messages to the file in \(format(timeline.seconds, 3)) s "
                + "(diff \(format(Double(timeline.diffedAt - timeline.startedAt) / 1e9, 3)) s, outbox written in one "
                + "transaction \(format(Double(timeline.deliveringAt - timeline.diffedAt) / 1e9, 3)) s, delivery "
                + "\(format(Double(timeline.deliveredAt - timeline.deliveringAt) / 1e9, 3)) s, then "
                + "\(format(Double(timeline.endedAt - timeline.deliveredAt) / 1e9, 3)) s to the end)")
        try? FileManager.default.removeItem(atPath: workFolder.file("deliver.ndjson"))
        return timeline
    }
}

func format(_ value: Double, _ places: Int) -> String { String(format: "%.\(places)f", value) }

/// When the concurrent sync started, had diffed, began delivering (its outbox written) and ended,
/// in uptime nanoseconds (`LoadDriver.now()`).
struct SyncTimeline {
    var startedAt: UInt64 = 0
    var diffedAt: UInt64 = 0
    var deliveringAt: UInt64 = 0
    var deliveredAt: UInt64 = 0
    var endedAt: UInt64 = 0
    var seconds = 0.0
}

/// Drops every log line of a sync but marks when it says "pair diffed" (the end of its diff).
struct DiffMarkLogHandler: LogHandler {
    let marks: DeliveryMarks
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        if event.message.description == "pair diffed" { marks.mark() }
    }
}

/// Times a sync's events: the first and last progress calls (its outbox is written and delivery
/// starts; the last batch is recorded; what follows is the run's bookkeeping), or its diff's end.
final class DeliveryMarks: @unchecked Sendable {
    private let lock = NSLock()
    private var first: UInt64?
    private var last: UInt64?

    func mark() {
        lock.lock()
        let now = LoadDriver.now()
        if first == nil { first = now }
        last = now
        lock.unlock()
    }

    var marks: (first: UInt64?, last: UInt64?) {
        lock.lock()
        defer { lock.unlock() }
        return (first, last)
    }
}

// MARK: Bodies

/// Segment-spec request bodies, each message with a messageId of its own (`tag-request-index`),
/// so that every message posted is new to the store.
struct LoadBodies: Sendable {
    let port: Int
    let client: LoadClientKind
    let headers: HTTPHeaders
    /// The messages' event time: a minute before the bench's `--now`.
    let timestamp: String

    init(port: Int, client: LoadClientKind, writeKey: String, now: Int64) {
        self.port = port
        self.client = client
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "127.0.0.1:\(port)")
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "User-Agent", value: "audience-sync-bench")
        headers.add(name: "Authorization", value: "Basic " + Data((writeKey + ":").utf8).base64EncodedString())
        self.headers = headers
        timestamp = Timestamp.format(now - 60_000)
    }

    /// `/v1/batch` with `size` track messages and the envelope's context and sentAt.
    func batch(tag: String, index: Int, size: Int) -> LoadRequest {
        var text = #"{"batch":["#
        text.reserveCapacity(size * 240 + 200)
        for position in 0..<size {
            if position > 0 { text += "," }
            text += message(id: "\(tag)-\(index)-\(position)", number: index &* size &+ position, withType: true)
        }
        text += #"],"context":{"library":{"name":"analytics-node","version":"6.2.0"}},"sentAt":""#
        text += timestamp + #""}"#
        return request(path: "/v1/batch", text: text, messages: size)
    }

    /// `/v1/track` with one message (its type given by the route).
    func track(tag: String, index: Int) -> LoadRequest {
        var text = message(id: "\(tag)-\(index)", number: index, withType: false)
        text.removeLast()
        text += #","context":{"library":{"name":"analytics.js","version":"2.11.1"},"#
            + #""page":{"path":"/pricing","url":"https://example.com/pricing"}}}"#
        return request(path: "/v1/track", text: text, messages: 1)
    }

    /// One track message of user `number % 200,000`; every fourth also names an anonymous id
    /// (so the store links them, as it does for analytics.js's calls after an identify).
    private func message(id: String, number: Int, withType: Bool) -> String {
        let user = Self.padded(number % 200_000)
        var text = withType ? #"{"type":"track","messageId":""# : #"{"messageId":""#
        text += id + #"","userId":"u"# + user + #"","#
        if number % 4 == 0 { text += #""anonymousId":"anon-"# + user + #"","# }
        text += #""event":""# + ServeRun.eventName + #"","timestamp":""# + timestamp + #"","#
        text += #""properties":{"plan":"pro","amount":"# + String(number % 500) + #".5,"path":"/checkout","step":"#
        text += String(number % 7) + "}}"
        return text
    }

    private static func padded(_ value: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    private func request(path: String, text: String, messages: Int) -> LoadRequest {
        let body = ByteBuffer(string: text)
        var request = LoadRequest(path: path, headers: headers, body: body, messages: messages)
        if client == .ahc {
            var headers = headers
            headers.remove(name: "Host")
            request.prepared = try? HTTPClient.Request(
                url: "http://127.0.0.1:\(port)\(path)", method: .POST, headers: headers, body: .byteBuffer(body))
        }
        return request
    }
}

// MARK: The server process

/// `audience-sync serve --listen 127.0.0.1:0` as a child process; its standard error goes to
/// `serve.log` in the work folder.
final class ServerProcess: @unchecked Sendable {
    let process: Process
    let port: Int
    let logPath: String

    private init(process: Process, port: Int, logPath: String) {
        self.process = process
        self.port = port
        self.logPath = logPath
    }

    var pid: Int32 { process.processIdentifier }

    static func start(binary: String, configurationPath: String, folder: WorkFolder) throws -> ServerProcess {
        let logPath = folder.file("serve.log")
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--config", configurationPath, "--listen", "127.0.0.1:0"]
        process.currentDirectoryURL = URL(fileURLWithPath: folder.path)
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        var environment = ProcessInfo.processInfo.environment
        environment["AUDIENCE_SYNC_CONFIG"] = nil
        process.environment = environment
        try process.run()
        try? log.close()
        // It prints "listening on 127.0.0.1:PORT" once the socket is bound.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains("listening on ") }),
                let colon = line.lastIndex(of: ":"), let port = Int(line[line.index(after: colon)...])
            {
                Progress.note("serve: \(binary) serve (pid \(process.processIdentifier)) listening on 127.0.0.1:\(port)")
                return ServerProcess(process: process, port: port, logPath: logPath)
            }
            guard process.isRunning else {
                throw AudienceSyncError(
                    .usage, "serve: the server exited with status \(process.terminationStatus) before listening: \(text)")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.terminate()
        throw AudienceSyncError(.usage, "serve: the server did not listen within 60 s (its log: \(logPath))")
    }

    /// SIGTERM, then waits for a clean exit (status 0); SIGKILL after 60 s.
    func stop() throws {
        process.terminate()
        let deadline = ContinuousClock.now + .seconds(60)
        while process.isRunning, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            kill()
            throw AudienceSyncError(.usage, "serve: the server did not stop within 60 s of SIGTERM")
        }
        guard process.terminationStatus == 0 else {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw AudienceSyncError(
                .usage, "serve: the server exited with status \(process.terminationStatus): \(text.suffix(2000))")
        }
    }

    func kill() {
        guard process.isRunning else { return }
        _ = Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// `VmHWM` of `/proc/PID/status`: the peak resident set so far, in MiB.
    func peakResidentMebibytes() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kib = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        return kib / 1024
    }

    /// User plus system CPU seconds of the server so far (`/proc/PID/stat`).
    func cpuSeconds() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the name: state is field 3, utime 14 and stime 15.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// This process's user plus system CPU seconds.
func ownCPUSeconds() -> Double {
    var usage = rusage()
    #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
        getrusage(RUSAGE_SELF, &usage)
    #endif
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

// MARK: The server's own figures

/// Reads the commit histogram's count and sum from the server's `GET /metrics`.
final class MetricsReader: Sendable {
    let client: HTTPClient
    let url: String

    init(loop: any EventLoop, port: Int) {
        client = HTTPClient(eventLoopGroup: loop)
        url = "http://127.0.0.1:\(port)/metrics"
    }

    struct Commits: Sendable {
        var count: Double
        var seconds: Double
    }

    func read() async -> Commits? {
        guard let response = try? await client.get(url: url).get(), var body = response.body,
            let text = body.readString(length: body.readableBytes)
        else { return nil }
        var commits = Commits(count: 0, seconds: 0)
        for line in text.split(separator: "\n") where line.hasPrefix("audience_sync_commit_seconds_") {
            let parts = line.split(separator: " ")
            guard parts.count >= 2, let value = Double(parts[1]) else { continue }
            if parts[0] == "audience_sync_commit_seconds_count" { commits.count = value }
            if parts[0] == "audience_sync_commit_seconds_sum" { commits.seconds = value }
        }
        return commits
    }

    func close() { try? client.syncShutdown() }
}

/// The server's and this process's counters at one moment.
struct PhaseCounters {
    var serverCPU: Double?
    var clientCPU: Double
    var commits: MetricsReader.Commits?

    init(server: ServerProcess, metrics: MetricsReader.Commits?) {
        serverCPU = server.cpuSeconds()
        clientCPU = ownCPUSeconds()
        commits = metrics
    }
}

// MARK: Figures

/// One phase's figures.
struct ServePhase {
    var name: String
    var connections: Int
    var outcome: LoadOutcome
    var before: PhaseCounters
    var after: PhaseCounters
    var messagesPerRequest: Int
    /// The scheduled rate (open loop); nil for a closed loop.
    var rate: Double?
    var syncSeconds: Double?
    var syncMembers: Int?
    var syncTimeline: SyncTimeline?

    /// The requests scheduled before the sync, while it computed its diff (reading only), while it
    /// wrote its outbox (one transaction: the store's write lock held throughout; then it counts the
    /// pending rows, reading, before its first progress call), while it delivered (a short
    /// transaction per batch), and after (the run's bookkeeping, then no sync): how many, p99 and
    /// max latency of each.
    var windows: [(name: String, window: Range<UInt64>)] {
        guard let timeline = syncTimeline else { return [] }
        return [
            ("before_sync", 0..<timeline.startedAt),
            ("diff", timeline.startedAt..<max(timeline.startedAt, timeline.diffedAt)),
            (
                "outbox_write",
                max(timeline.startedAt, timeline.diffedAt)..<max(timeline.diffedAt, timeline.deliveringAt)
            ),
            ("delivery", max(timeline.startedAt, timeline.deliveringAt)..<max(timeline.deliveringAt, timeline.deliveredAt)),
            ("after_delivery", max(timeline.deliveringAt, timeline.deliveredAt)..<UInt64.max),
        ]
    }

    var windowSummary: String {
        windows.map { name, window in
            let samples = outcome.latencies(in: window)
            return "\(name.replacingOccurrences(of: "_", with: " ")): \(samples.count) requests, p99 "
                + "\(format(LoadOutcome.percentile(samples, 0.99) ?? .nan, 1)) ms, max "
                + "\(format(LoadOutcome.percentile(samples, 1) ?? .nan, 1)) ms"
        }.joined(separator: "; ")
    }

    var requestsPerSecond: Double { outcome.seconds > 0 ? Double(outcome.ok) / outcome.seconds : 0 }
    var messagesPerSecond: Double { outcome.seconds > 0 ? Double(outcome.storedMessages) / outcome.seconds : 0 }
    var serverCPU: Double? { after.serverCPU.flatMap { a in before.serverCPU.map { a - $0 } } }
    var clientCPU: Double { after.clientCPU - before.clientCPU }
    var commits: Double? { after.commits.flatMap { a in before.commits.map { a.count - $0.count } } }
    var commitSeconds: Double? { after.commits.flatMap { a in before.commits.map { a.seconds - $0.seconds } } }
    var refused: Int { outcome.statuses[503] ?? 0 }
    /// The part of the phase the server's committer spent writing and committing (1: always busy,
    /// so the single writer is what limits the rate).
    var commitBusy: Double? { commitSeconds.map { outcome.seconds > 0 ? $0 / outcome.seconds : 0 } }

    func requireAllOK() throws {
        guard outcome.ok == outcome.sent else {
            throw AudienceSyncError(
                .usage,
                "serve: \(name): \(outcome.sent) requests sent, \(outcome.ok) answered 200 (\(outcome.statusSummary))"
                    + (outcome.firstFailure.map { "; first failure: \($0)" } ?? ""))
        }
    }

    var summary: String {
        let ms = { (fraction: Double) in format(outcome.latencyMilliseconds(fraction) ?? .nan, 1) }
        var line = "\(name): \(outcome.sent) requests over \(connections) connections in \(format(outcome.seconds, 3)) s"
        if let rate { line += " (scheduled \(Int(rate))/s)" }
        line += ": \(Int(requestsPerSecond)) requests/s"
        if messagesPerRequest > 1 { line += ", \(Int(messagesPerSecond)) events/s" }
        line += "; latency p50 \(ms(0.5)) ms, p99 \(ms(0.99)) ms, max \(ms(1)) ms"
        if rate != nil { line += "; send lag p99 \(format(outcome.sendLagMilliseconds(0.99) ?? .nan, 1)) ms" }
        line += "; statuses \(outcome.statusSummary)"
        if let commits, let commitSeconds, commits > 0 {
            line += "; \(Int(commits)) commits (\(format(Double(outcome.answered) / commits, 1)) requests each, "
                + "\(format(commitSeconds / commits * 1000, 2)) ms each, the committer busy "
                + "\(Int((commitBusy ?? 0) * 100))% of the time)"
        }
        line += "; CPU s: server \(format(serverCPU ?? .nan, 2)), client \(format(clientCPU, 2))"
        if let syncSeconds { line += "; the sync took \(format(syncSeconds, 3)) s" }
        return line
    }

    var json: JSONValue {
        func ms(_ fraction: Double) -> JSONValue {
            outcome.latencyMilliseconds(fraction).map { .double(($0 * 100).rounded() / 100) } ?? .null
        }
        func number(_ value: Double?, _ places: Double = 1000) -> JSONValue {
            value.map { .double(($0 * places).rounded() / places) } ?? .null
        }
        var members: [JSONValue.Member] = [
            JSONValue.Member("connections", .int(connections)),
            JSONValue.Member("rate", number(rate)),
            JSONValue.Member("requests", .int(outcome.sent)),
            JSONValue.Member("messages_per_request", .int(messagesPerRequest)),
            JSONValue.Member("seconds", number(outcome.seconds)),
            JSONValue.Member("requests_per_s", number(requestsPerSecond, 1)),
            JSONValue.Member("events_per_s", number(messagesPerSecond, 1)),
            JSONValue.Member("p50_ms", ms(0.5)),
            JSONValue.Member("p90_ms", ms(0.9)),
            JSONValue.Member("p99_ms", ms(0.99)),
            JSONValue.Member("p999_ms", ms(0.999)),
            JSONValue.Member("max_ms", ms(1)),
            JSONValue.Member(
                "send_lag_p99_ms", rate == nil ? .null : number(outcome.sendLagMilliseconds(0.99), 100)),
            JSONValue.Member(
                "statuses",
                .object(outcome.statuses.keys.sorted().map { JSONValue.Member(String($0), .int(outcome.statuses[$0]!)) })),
            JSONValue.Member("no_answer", .int(outcome.failures)),
            JSONValue.Member("commits", commits.map { .int(Int($0)) } ?? .null),
            JSONValue.Member("commit_ms_mean", number(commits.flatMap { c in commitSeconds.map { c > 0 ? $0 / c * 1000 : 0 } })),
            JSONValue.Member("commit_busy", number(commitBusy, 100)),
            JSONValue.Member("server_cpu_s", number(serverCPU)),
            JSONValue.Member("client_cpu_s", number(clientCPU)),
        ]
        if let syncMembers {
            members.append(JSONValue.Member("sync_members", .int(syncMembers)))
            members.append(JSONValue.Member("sync_s", number(syncSeconds)))
            if let timeline = syncTimeline {
                members.append(
                    JSONValue.Member("sync_diff_s", number(Double(timeline.diffedAt - timeline.startedAt) / 1e9)))
                members.append(
                    JSONValue.Member(
                        "sync_outbox_write_s", number(Double(timeline.deliveringAt - timeline.diffedAt) / 1e9)))
                members.append(
                    JSONValue.Member(
                        "sync_delivery_s", number(Double(timeline.deliveredAt - timeline.deliveringAt) / 1e9)))
                members.append(
                    JSONValue.Member("sync_finish_s", number(Double(timeline.endedAt - timeline.deliveredAt) / 1e9)))
            }
            for (name, window) in windows {
                let samples = outcome.latencies(in: window)
                members.append(
                    JSONValue.Member(
                        name,
                        .object([
                            "requests": .int(samples.count),
                            "p99_ms": number(LoadOutcome.percentile(samples, 0.99), 100),
                            "max_ms": number(LoadOutcome.percentile(samples, 1), 100),
                        ])))
            }
        }
        return .object(members)
    }
}

/// Everything the serve stage measured, and how it reaches the report.
struct ServeDetail {
    var options: ServeOptions
    var clientName: String
    var batch: [ServePhase] = []
    var track: ServePhase?
    var steady: ServePhase?
    var duringSync: ServePhase?
    var postedMessages = 0
    var storedMessages = 0
    var peakResidentMebibytes: Double?

    func fill(_ report: inout BenchReport) {
        let best = batch.max { $0.messagesPerSecond < $1.messagesPerSecond }
        report.serveBatchEventsPerSecond = best?.messagesPerSecond
        report.serveTrackRequestsPerSecond = track?.requestsPerSecond
        report.serveSteadyP99Milliseconds = steady?.outcome.latencyMilliseconds(0.99)
        report.serveDuringSyncP99Milliseconds = duringSync?.outcome.latencyMilliseconds(0.99)
        report.serveDuringSyncRefused = duringSync?.refused
        report.servePeakResidentMebibytes = peakResidentMebibytes
        report.serveDetail = .object([
            "server": .string("audience-sync serve, a child process"),
            "client": .string("\(options.client.rawValue): \(clientName), one event loop thread in the bench process"),
            "batch_connections": best.map { .int($0.connections) } ?? .null,
            "batch": .array(batch.map(\.json)),
            "track": track?.json ?? .null,
            "steady": steady?.json ?? .null,
            "during_sync": duringSync?.json ?? .null,
            "posted_messages": .int(postedMessages),
            "stored_messages": .int(storedMessages),
        ])
    }
}
