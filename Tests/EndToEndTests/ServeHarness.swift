#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AsyncHTTPClient
import AudienceSync
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import SharedTestSupport

// What the end-to-end tests of `audience-sync serve` share: a project folder with a `server:`
// section, the built binary running as a child process on a port the system chose, an HTTP client
// over keep-alive connections, and read-only looks into the store.

/// A project folder for `audience-sync serve`: a configuration whose secrets are `env:` references,
/// an empty definitions folder, and the store the server writes.
struct ServeProject {
    static let webKey = "wk_web_0f1e2d3c4b5a"
    static let sprigKey = "wk_sprig_a1b2c3d4e5"
    static let webhookSecret = "whsec_9z8y7x6w5v"
    static let allowedOrigin = "https://app.example.com"

    let scratch: ScratchDirectory
    /// The secrets the configuration names, as the server's environment gives them.
    var environment: [String: String] = [
        "E2E_WEB_WRITE_KEY": ServeProject.webKey, "E2E_SPRIG_WRITE_KEY": ServeProject.sprigKey,
        "E2E_WEBHOOK_SECRET": ServeProject.webhookSecret,
    ]

    /// A project whose `server:` section has two sources (`web`, `sprig`), the webhook secret, one
    /// allowed origin and `limits` (`max_request_bytes: 100000`, …) beyond the defaults.
    init(limits: [String: Int] = [:]) throws {
        scratch = try ScratchDirectory()
        let limitLines = limits.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value)\n" }.joined()
        try writeConfiguration(
            """
            database: store.db
            definitions: audiences
            server:
              listen: 127.0.0.1:8088
              sources:
                - name: web
                  write_key: env:E2E_WEB_WRITE_KEY
                - name: sprig
                  write_key: env:E2E_SPRIG_WRITE_KEY
              webhook_secret: env:E2E_WEBHOOK_SECRET
              cors_origins: [\(Self.allowedOrigin)]

            """ + limitLines)
    }

    /// Replaces the configuration file.
    func writeConfiguration(_ text: String) throws {
        try scratch.write("audience-sync.yml", text)
        try FileManager.default.createDirectory(atPath: scratch.file("audiences"), withIntermediateDirectories: true)
    }

    var storePath: String { scratch.file("store.db") }

    /// Starts `audience-sync serve --listen 127.0.0.1:0` in the folder and waits for its address.
    func start(arguments: [String] = []) async throws -> ServerProcess {
        let server = try ServerProcess(
            ["serve", "--listen", "127.0.0.1:0"] + arguments, in: scratch.path, environment: environment)
        try await server.waitUntilListening()
        return server
    }

    /// Runs the binary to its end (a command that must exit by itself, within `timeout`).
    func run(_ arguments: [String], environment extra: [String: String] = [:], timeout: Swift.Duration = .seconds(60))
        async throws -> ServerProcess.Exit
    {
        var environment = self.environment
        for (key, value) in extra { environment[key] = value }
        let process = try ServerProcess(arguments, in: scratch.path, environment: environment)
        return try await process.waitForExit(atMost: timeout)
    }

    // MARK: The store, read-only

    /// The rows of `sql` on a read-only connection of its own.
    func rows(_ sql: String, _ values: [SQLiteValue] = []) throws -> [[SQLiteValue]] {
        let database = try Database(path: storePath, mode: .readOnly)
        return try database.prepare(sql).rows(values)
    }

    /// The stored events by messageId.
    func storedEvents() throws -> [String: StoredEvent] {
        var events: [String: StoredEvent] = [:]
        for row in try rows("SELECT message_id, type, user_id, ts, received_at, source, message FROM events") {
            let event = StoredEvent(
                messageId: row[0].string ?? "", type: row[1].string ?? "", userId: row[2].string, time: row[3].int64 ?? 0,
                receivedAt: row[4].int64 ?? 0, source: row[5].string, message: row[6].string ?? "")
            events[event.messageId] = event
        }
        return events
    }

    /// How many events are stored.
    func eventCount() throws -> Int { Int(try rows("SELECT count(*) FROM events")[0][0].int64 ?? -1) }
}

/// One row of `events`.
struct StoredEvent {
    var messageId: String
    var type: String
    var userId: String?
    /// Event time, epoch milliseconds.
    var time: Int64
    var receivedAt: Int64
    var source: String?
    /// The stored message text.
    var message: String

    var json: [String: Any] { (try? parseJSON(message)) ?? [:] }
}

/// The store's write lock, held by the test as a `sync` writing its outbox holds it: an immediate
/// transaction on a connection of its own, until `release`.
final class WriteLock {
    private let database: Database

    init(_ path: String) throws {
        database = try Database(path: path, mode: .readWrite, busyTimeoutMilliseconds: 10_000)
        try database.execute("BEGIN IMMEDIATE TRANSACTION")
    }

    func release() throws {
        if database.isInTransaction { try database.execute("ROLLBACK TRANSACTION") }
    }

    deinit { database.rollbackQuietly() }
}

// MARK: - The server process

/// `audience-sync` running as a child process: its standard error is read as it comes, so that a
/// test can wait for a line (`listening on …`) or for the exit, each with a bound.
final class ServerProcess {
    struct Exit: Sendable {
        var status: Int32
        /// Ended by a signal (`status` is then the signal's number).
        var signaled: Bool
        var stderr: String
    }

    struct Output: Sendable {
        var stderr = ""
        var exit: (status: Int32, signaled: Bool)?
        var stderrClosed = false
    }

    let process: ChildProcess
    let output: Watched<Output>
    /// The port it listens on, once `waitUntilListening` has returned.
    private(set) var port = 0

    init(_ arguments: [String], in directory: String, environment extra: [String: String]) throws {
        let binary = Binary("audience-sync")
        var environment = ProcessInfo.processInfo.environment
        environment["AUDIENCE_SYNC_CONFIG"] = nil
        for (key, value) in extra { environment[key] = value }
        let errors = try ChildProcess.Pipe()
        let output = Watched(Output())
        self.output = output
        // The launcher closes this process's write end once the child runs; the reader sees the
        // end of the file when the child exits.
        process = try ChildProcess(
            binary.path, arguments, environment: environment, in: directory, stdin: .null, stdout: .null,
            stderr: .pipe(errors),
            onExit: { (termination: ChildProcess.Termination) -> Void in
                output.update { $0.exit = (termination.status, termination.reason == .uncaughtSignal) }
            })
        let reader = Thread {
            // The thread holds the pipe, so its read end stays open until the thread is done with it.
            let descriptor = errors.readEnd ?? -1
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                let text = String(decoding: buffer[0..<count], as: UTF8.self)
                output.update { $0.stderr += text }
            }
            output.update { $0.stderrClosed = true }
        }
        reader.start()
    }

    var stderr: String { output.value.stderr }
    var isRunning: Bool { output.value.exit == nil }

    /// Waits for `listening on HOST:PORT` and notes the port; fails if the process exits first or
    /// nothing is printed within `timeout`.
    func waitUntilListening(atMost timeout: Swift.Duration = .seconds(60)) async throws {
        let printed = await output.wait(atMost: timeout) { $0.exit != nil || Self.listeningPort(in: $0.stderr) != nil }
        guard printed, let port = Self.listeningPort(in: stderr) else {
            signal(SIGKILL)
            throw HarnessError("the server did not print its address (exit: \(String(describing: output.value.exit))): \(stderr)")
        }
        self.port = port
    }

    static func listeningPort(in text: String) -> Int? {
        guard let start = text.range(of: "listening on ") else { return nil }
        guard let end = text[start.upperBound...].firstIndex(of: "\n") else { return nil }
        return ListenAddress(String(text[start.upperBound..<end]))?.port
    }

    /// Sends `signal` (SIGTERM, SIGKILL) if the process still runs.
    func signal(_ number: Int32) {
        process.signal(number)
    }

    /// Waits for the exit (and the end of standard error); SIGKILLs it and throws after `timeout`.
    @discardableResult
    func waitForExit(atMost timeout: Swift.Duration = .seconds(60)) async throws -> Exit {
        let ended = await output.wait(atMost: timeout) { $0.exit != nil && $0.stderrClosed }
        guard ended, let exit = output.value.exit else {
            signal(SIGKILL)
            throw HarnessError("the process did not exit within \(timeout): \(stderr)")
        }
        return Exit(status: exit.status, signaled: exit.signaled, stderr: stderr)
    }

    /// SIGTERM, then the exit.
    @discardableResult
    func stop(atMost timeout: Swift.Duration = .seconds(60)) async throws -> Exit {
        signal(SIGTERM)
        return try await waitForExit(atMost: timeout)
    }

    deinit {
        // A test that failed half-way leaves no server behind.
        process.signal(SIGKILL)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A value that changes, with waits for a condition on it that end when the condition holds or
/// when their bound runs out.
final class Watched<Value: Sendable>: Sendable {
    private struct Waiter {
        var test: @Sendable (Value) -> Bool
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var value: Value
        var waiters: [Int: Waiter] = [:]
        /// Waits whose bound ran out before they were registered.
        var expired: Set<Int> = []
        var nextId = 0
    }

    private let state: NIOLockedValueBox<State>

    init(_ value: Value) { state = NIOLockedValueBox(State(value: value)) }

    var value: Value { state.withLockedValue { $0.value } }

    func update(_ change: (inout Value) -> Void) {
        let ready = state.withLockedValue { state in
            change(&state.value)
            var ready: [CheckedContinuation<Bool, Never>] = []
            for (id, waiter) in state.waiters where waiter.test(state.value) {
                ready.append(waiter.continuation)
                state.waiters[id] = nil
            }
            return ready
        }
        for continuation in ready { continuation.resume(returning: true) }
    }

    /// Whether `test` came to hold within `timeout`.
    func wait(atMost timeout: Swift.Duration, until test: @escaping @Sendable (Value) -> Bool) async -> Bool {
        let id = state.withLockedValue { state in
            defer { state.nextId += 1 }
            return state.nextId
        }
        return await withTaskGroup(of: Bool?.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let now: Bool? = self.state.withLockedValue { state in
                        if state.expired.remove(id) != nil { return false }
                        if test(state.value) { return true }
                        state.waiters[id] = Waiter(test: test, continuation: continuation)
                        return nil
                    }
                    if let now { continuation.resume(returning: now) }
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                if Task.isCancelled { return nil }
                let waiting = self.state.withLockedValue { state -> CheckedContinuation<Bool, Never>? in
                    if let waiter = state.waiters.removeValue(forKey: id) { return waiter.continuation }
                    state.expired.insert(id)
                    return nil
                }
                waiting?.resume(returning: false)
                return nil
            }
            var result = false
            for await outcome in group {
                if let outcome {
                    result = outcome
                    group.cancelAll()
                }
            }
            return result
        }
    }
}

// MARK: - The HTTP client

/// Posts to a running server through AsyncHTTPClient (keep-alive connections, as Segment's
/// libraries keep them).
struct Collector: Sendable {
    let client: HTTPClient
    let port: Int

    /// An answer: its status, headers and body text.
    struct Answer: Sendable, CustomStringConvertible {
        var status: Int
        var headers: HTTPHeaders
        var body: String

        /// The body as a JSON object (empty when it is not one).
        var json: [String: Any] { (try? parseJSON(body)) ?? [:] }
        var accepted: Int? { json["accepted"] as? Int }
        var duplicates: Int? { json["duplicates"] as? Int }
        /// `rejected` as (index, reason).
        var rejected: [(index: Int, reason: String)] {
            (json["rejected"] as? [[String: Any]] ?? []).map { ($0["index"] as? Int ?? -1, $0["reason"] as? String ?? "") }
        }
        var error: String? { json["error"] as? String }

        var description: String { "\(status) \(body)" }
    }

    enum Auth: Sendable {
        /// HTTP Basic with the write key as the user name and an empty password.
        case basic(String)
        /// None in the headers (`writeKey` in the body, or no key at all).
        case none
    }

    func request(
        _ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, headers extra: [(String, String)] = []
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    /// POSTs `body` to `path` as JSON (or `contentType`), authenticated by `auth`.
    func post(
        _ path: String, _ body: [UInt8], auth: Auth = .basic(ServeProject.webKey),
        contentType: String = "application/json", headers: [(String, String)] = []
    ) async throws -> Answer {
        var all = [("Content-Type", contentType)]
        if case .basic(let key) = auth {
            all.append(("Authorization", "Basic " + Data("\(key):".utf8).base64EncodedString()))
        }
        return try await request(.POST, path, body: body, headers: all + headers)
    }

    func post(
        _ path: String, _ text: String, auth: Auth = .basic(ServeProject.webKey),
        contentType: String = "application/json", headers: [(String, String)] = []
    ) async throws -> Answer {
        try await post(path, Array(text.utf8), auth: auth, contentType: contentType, headers: headers)
    }

    /// POSTs a batch envelope `{"batch": messages}`.
    func postBatch(_ messages: [[String: Any]], path: String = "/v1/batch", auth: Auth = .basic(ServeProject.webKey))
        async throws -> Answer
    {
        try await post(path, jsonText(["batch": messages]), auth: auth)
    }

    /// POSTs to `/v1/webhook` signed with `secret` (Segment's Webhooks destination: the hex HMAC-SHA1
    /// of the raw body).
    func postWebhook(_ body: [UInt8], secret: String = ServeProject.webhookSecret) async throws -> Answer {
        try await request(
            .POST, "/v1/webhook", body: body,
            headers: [("Content-Type", "application/json"), ("X-Signature", signature(of: body, secret: secret))])
    }

    func get(_ path: String) async throws -> Answer { try await request(.GET, path) }

    /// `GET /health` as a JSON object.
    func health() async throws -> [String: Any] { try await get("/health").json }

    /// Polls `/health` until `queued_messages` is `count`; false if it was not within `timeout`.
    func waitUntilQueued(_ count: Int, atMost timeout: Swift.Duration = .seconds(30)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await health()["queued_messages"] as? Int == count { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return false
    }
}

/// The hex HMAC-SHA1 of `body` with `secret`.
func signature(of body: [UInt8], secret: String) -> String {
    let code = HMAC<Insecure.SHA1>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.utf8)))
    return code.map { String(format: "%02x", $0) }.joined()
}

/// Runs `body` with an HTTP client over keep-alive connections to 127.0.0.1:`port`, and shuts the
/// client down afterwards whatever happened.
func withCollector<T>(port: Int, _ body: (Collector) async throws -> T) async throws -> T {
    let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
    do {
        let result = try await body(Collector(client: client, port: port))
        try await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}

/// `object` as compact JSON text (keys sorted, so a message posted twice has the same bytes).
func jsonText(_ object: Any) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
        ?? Data()
    return String(decoding: data, as: UTF8.self)
}

/// A `track` message.
func track(_ messageId: String?, user: String = "u_1", event: String = "Signed Up", _ extra: [String: Any] = [:])
    -> [String: Any]
{
    var message: [String: Any] = ["type": "track", "userId": user, "event": event]
    if let messageId { message["messageId"] = messageId }
    for (key, value) in extra { message[key] = value }
    return message
}
