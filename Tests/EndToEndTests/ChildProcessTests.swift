#if canImport(Glibc)
import Glibc
import Foundation
import NIOConcurrencyHelpers
import SharedTestSupport
import Testing

/// The tests' process launcher (`ChildProcess`, on `posix_spawn`): how a child ended, what it gets,
/// that a pipe's reader sees the end of the file when the child exits, and that every child is reaped.
@Suite struct ChildProcessTests {
    private static func shell(
        _ script: String, environment: [String: String] = [:], in directory: String? = nil,
        stdin: ChildProcess.Stream = .null, stdout: ChildProcess.Stream = .null,
        onExit: (@Sendable (ChildProcess.Termination) -> Void)? = nil
    ) throws -> ChildProcess {
        try ChildProcess(
            "/bin/sh", ["-c", script], environment: environment, in: directory, stdin: stdin, stdout: stdout,
            onExit: onExit)
    }

    @Test func exitStatus() throws {
        let child = try Self.shell("exit 3")
        #expect(child.waitUntilExit() == ChildProcess.Termination(reason: .exit, status: 3))
        #expect(!child.isRunning)
        #expect(child.terminationStatus == 3)
        #expect(child.terminationReason == .exit)
        #expect(try Self.shell("true").waitUntilExit() == ChildProcess.Termination(reason: .exit, status: 0))
    }

    @Test func signalDeath() throws {
        let child = try Self.shell("kill -KILL $$")
        #expect(child.waitUntilExit() == ChildProcess.Termination(reason: .uncaughtSignal, status: SIGKILL))
    }

    /// A child blocked on its standard input, ended by `signal`; no signal once it is reaped.
    @Test func signalSent() throws {
        let input = try ChildProcess.Pipe()
        let child = try Self.shell("read line", stdin: .pipe(input))
        #expect(child.isRunning)
        #expect(child.signal(SIGTERM))
        #expect(child.waitUntilExit() == ChildProcess.Termination(reason: .uncaughtSignal, status: SIGTERM))
        #expect(!child.signal(SIGKILL))
    }

    /// Exactly the environment given (nothing of this process's), and the working directory given.
    @Test func environmentAndDirectory() throws {
        let scratch = try ScratchDirectory()
        let output = try ChildProcess.Pipe()
        let child = try Self.shell(
            #"printf '%s|%s|%s' "$GREETING" "${HOME-unset}" "$(pwd -P)""#, environment: ["GREETING": "hello there"],
            in: scratch.path, stdout: .pipe(output))
        let printed = String(decoding: try output.readToEnd(), as: UTF8.self)
        #expect(child.waitUntilExit() == ChildProcess.Termination(reason: .exit, status: 0))
        let directory = URL(fileURLWithPath: scratch.path).resolvingSymlinksInPath().path
        #expect(printed == "hello there|unset|\(directory)")
    }

    /// A file as standard output; standard input from a file.
    @Test func files() throws {
        let scratch = try ScratchDirectory()
        let source = try scratch.write("in.txt", "from a file\n")
        let child = try ChildProcess(
            "/bin/sh", ["-c", "cat; echo done >&2"], environment: [:], stdin: .file(source),
            stdout: .file(scratch.file("out.txt")), stderr: .file(scratch.file("err.txt")))
        #expect(child.waitUntilExit().status == 0)
        #expect(try String(contentsOfFile: scratch.file("out.txt"), encoding: .utf8) == "from a file\n")
        #expect(try String(contentsOfFile: scratch.file("err.txt"), encoding: .utf8) == "done\n")
    }

    /// A reader of a child's standard output sees the end of the file when that child exits, even
    /// while another child, started after the pipe was made, still runs (no write end leaked into it,
    /// nor kept in this process).
    @Test func pipeEndsAtExit() throws {
        let output = try ChildProcess.Pipe()
        let holdInput = try ChildProcess.Pipe()
        let bystander = try Self.shell("read line", stdin: .pipe(holdInput))
        let writer = try Self.shell("echo out", stdout: .pipe(output))
        #expect(output.writeEnd == nil)
        #expect(try output.readToEnd() == Array("out\n".utf8))
        #expect(writer.waitUntilExit().status == 0)
        #expect(bystander.isRunning)
        holdInput.closeWriteEnd()
        #expect(bystander.waitUntilExit().reason == .exit)
    }

    /// What is written to a pipe as standard input reaches the child, up to its end.
    @Test func pipeInput() throws {
        let input = try ChildProcess.Pipe()
        let output = try ChildProcess.Pipe()
        let child = try Self.shell("cat", stdin: .pipe(input), stdout: .pipe(output))
        try input.write(Array("to the child".utf8))
        input.closeWriteEnd()
        #expect(String(decoding: try output.readToEnd(), as: UTF8.self) == "to the child")
        #expect(child.waitUntilExit().status == 0)
    }

    @Test func missingExecutable() throws {
        do {
            _ = try ChildProcess("/nonexistent/audience-sync-binary", environment: [:])
            Issue.record("a missing executable started")
        } catch let error as ChildProcessError {
            #expect(error.description.contains("/nonexistent/audience-sync-binary"))
            #expect(error.code == ENOENT)
        }
    }

    /// 200 children of `/bin/true` from 8 tasks at once: every one exits 0, its `onExit` runs once,
    /// and it is reaped.
    @Test func concurrentSpawns() async throws {
        let exits = NIOLockedValueBox(0)
        let onExit: @Sendable (ChildProcess.Termination) -> Void = { (_: ChildProcess.Termination) -> Void in
            exits.withLockedValue { $0 += 1 }
        }
        let terminations = try await withThrowingTaskGroup(of: [(pid_t, ChildProcess.Termination)].self) {
            (group: inout ThrowingTaskGroup<[(pid_t, ChildProcess.Termination)], any Error>) async throws
                -> [(pid_t, ChildProcess.Termination)] in
            for _ in 0..<8 {
                group.addTask { () async throws -> [(pid_t, ChildProcess.Termination)] in
                    let children = try (0..<25).map { (_: Int) throws -> ChildProcess in
                        try ChildProcess("/bin/true", environment: [:], onExit: onExit)
                    }
                    return children.map { (child: ChildProcess) -> (pid_t, ChildProcess.Termination) in
                        (child.processIdentifier, child.waitUntilExit())
                    }
                }
            }
            var all: [(pid_t, ChildProcess.Termination)] = []
            for try await some in group { all += some }
            return all
        }
        #expect(terminations.count == 200)
        #expect(Set(terminations.map(\.0)).count == 200)
        #expect(terminations.allSatisfy { $0.1 == ChildProcess.Termination(reason: .exit, status: 0) })
        #expect(exits.withLockedValue { $0 } == 200)
        // Reaped: none is a child of this process any more.
        for (pid, _) in terminations {
            var status: Int32 = 0
            #expect(waitpid(pid, &status, WNOHANG) == -1 && errno == ECHILD)
        }
    }

    @Test func statusDecoding() {
        #expect(ChildProcess.decode(0) == ChildProcess.Termination(reason: .exit, status: 0))
        #expect(ChildProcess.decode(3 << 8) == ChildProcess.Termination(reason: .exit, status: 3))
        #expect(ChildProcess.decode(SIGKILL) == ChildProcess.Termination(reason: .uncaughtSignal, status: SIGKILL))
        // A core dump's flag (0x80) beside the signal.
        #expect(ChildProcess.decode(0x80 | SIGSEGV) == ChildProcess.Termination(reason: .uncaughtSignal, status: SIGSEGV))
    }
}
#endif
