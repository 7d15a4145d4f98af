#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SharedTestSupport

/// Runs a built executable of this package and captures what it printed.
struct Binary {
    let path: String

    /// The executable `name` in the build's products folder (next to the test bundle).
    init(_ name: String) {
        var url = Bundle.main.bundleURL
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            url = bundle.bundleURL.deletingLastPathComponent()
        }
        var candidate = url.appendingPathComponent(name).path
        if !FileManager.default.isExecutableFile(atPath: candidate) {
            // swift-testing runs from a helper executable in the products folder itself.
            candidate = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent(name).path
        }
        path = candidate
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the executable with `arguments` in `directory`, with `stdin` (or `stdinBytes`) as its
    /// standard input.
    func run(
        _ arguments: [String], in directory: String? = nil, stdin: String? = nil, stdinBytes: [UInt8]? = nil,
        environment: [String: String] = [:]
    ) throws -> Result {
        var env = ProcessInfo.processInfo.environment
        env["AUDIENCE_SYNC_CONFIG"] = nil
        for (key, value) in environment { env[key] = value }
        let output = try ChildProcess.Pipe()
        let errors = try ChildProcess.Pipe()
        let input = try ChildProcess.Pipe()
        let process = try ChildProcess(
            path, arguments, environment: env, in: directory, stdin: .pipe(input), stdout: .pipe(output),
            stderr: .pipe(errors))
        if let stdin { try input.write(Array(stdin.utf8)) }
        if let stdinBytes { try input.write(stdinBytes) }
        input.closeWriteEnd()
        // Read both pipes to the end before waiting, so a chatty child never blocks on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var errorData: [UInt8] = []
        group.enter()
        DispatchQueue.global().async {
            errorData = (try? errors.readToEnd()) ?? []
            group.leave()
        }
        let outputData = try output.readToEnd()
        group.wait()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: outputData, as: UTF8.self),
            stderr: String(decoding: errorData, as: UTF8.self))
    }
}

/// The repository root (for `fixtures/`), found from this file's path.
let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// A fresh temporary folder, removed when released.
final class ScratchDirectory {
    let path: String

    init() throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("audience-sync-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = self.file(name)
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// Copies the demo project (`fixtures/demo`) into this folder.
    func copyDemo() throws {
        let demo = (repositoryRoot as NSString).appendingPathComponent("fixtures/demo")
        for item in try FileManager.default.contentsOfDirectory(atPath: demo) {
            try FileManager.default.copyItem(atPath: (demo as NSString).appendingPathComponent(item), toPath: file(item))
        }
    }
}

/// Parses a JSON document printed by the binary.
func parseJSON(_ text: String) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw CocoaError(.coderReadCorrupt)
    }
    return object
}

/// A running binary, with its output in files (so that it never blocks on a full pipe).
final class Launched {
    let process: ChildProcess
    let folder: ScratchDirectory

    /// Starts the binary; `environment` adds to (or overrides) this process's environment, and
    /// `onExit` is called once the binary has exited, however it exited.
    init(
        _ binary: Binary, _ arguments: [String], in directory: String, environment extra: [String: String] = [:],
        onExit: (@Sendable () -> Void)? = nil
    ) throws {
        folder = try ScratchDirectory()
        var environment = ProcessInfo.processInfo.environment
        environment["AUDIENCE_SYNC_CONFIG"] = nil
        for (key, value) in extra { environment[key] = value }
        var handler: (@Sendable (ChildProcess.Termination) -> Void)?
        if let onExit { handler = { (_: ChildProcess.Termination) -> Void in onExit() } }
        process = try ChildProcess(
            binary.path, arguments, environment: environment, in: directory, stdin: .null,
            stdout: .file(folder.file("stdout")), stderr: .file(folder.file("stderr")), onExit: handler)
    }

    var isRunning: Bool { process.isRunning }
    var status: Int32 { process.terminationStatus }
    var stdout: String { (try? String(contentsOfFile: folder.file("stdout"), encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: folder.file("stderr"), encoding: .utf8)) ?? "" }

    /// SIGKILL, if it still runs.
    func killNow() { process.signal(SIGKILL) }
}
