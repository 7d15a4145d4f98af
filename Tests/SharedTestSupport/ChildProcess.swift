#if canImport(Glibc)
import CSpawnShim
import Dispatch
import Foundation
import Glibc
import NIOConcurrencyHelpers

/// A child process started with `posix_spawn`, for the tests in place of Foundation's `Process`:
/// on Linux, `Process.run()` of swift-corelibs-foundation (before swiftlang/swift-corelibs-foundation
/// PR #5472, in no 6.3.x release) copies whole 256-byte `d_name`s while it lists `/proc/self/fd`
/// and now and then reads past glibc's buffer into an unmapped page (SIGSEGV in the test runner).
///
/// The child gets the executable path as given (no `PATH` search), exactly the arguments and the
/// environment given, the working directory and standard streams given, default signal
/// dispositions and an empty signal mask; every descriptor above the standard three is closed in it,
/// so no pipe end of this process leaks into it. A thread of its own waits for it and reaps it.
public final class ChildProcess: Sendable {
    /// How the child ended.
    public struct Termination: Sendable, Equatable, CustomStringConvertible {
        public enum Reason: Sendable { case exit, uncaughtSignal }
        public var reason: Reason
        /// The exit status, or the signal's number when `reason` is `.uncaughtSignal` (as
        /// Foundation's `terminationStatus`).
        public var status: Int32

        public init(reason: Reason, status: Int32) {
            self.reason = reason
            self.status = status
        }

        public var description: String { reason == .exit ? "exit \(status)" : "signal \(status)" }
    }

    /// Where one of the child's standard streams comes from or goes to.
    public enum Stream: Sendable {
        /// This process's own.
        case inherit
        /// `/dev/null`.
        case null
        /// The file at this path: opened for reading as standard input; otherwise created (or
        /// truncated) and opened for writing.
        case file(String)
        /// A pipe: its read end as standard input, its write end otherwise. This process's copy of
        /// that end is closed once the child runs (so that a reader sees the end of the file when
        /// the child exits).
        case pipe(Pipe)
    }

    public let executable: String
    public let processIdentifier: pid_t
    /// nil while the child runs (not yet reaped). `signal` sends under this lock, and the reaper
    /// reaps under it, so a signal never reaches another process that got the same pid.
    private let state: NIOLockedValueBox<Termination?>
    /// Left once the child is reaped and `onExit` has returned.
    private let exited: DispatchGroup

    /// Starts `executable` with `arguments` (`argv[0]` is `executable`) and exactly `environment`,
    /// in `directory` (this process's own when nil). `onExit` is called on the reaper's thread once
    /// the child has ended, however it ended (it must not wait for this child's exit itself).
    public init(
        _ executable: String, _ arguments: [String] = [], environment: [String: String], in directory: String? = nil,
        stdin: Stream = .null, stdout: Stream = .null, stderr: Stream = .null,
        onExit: (@Sendable (Termination) -> Void)? = nil
    ) throws {
        self.executable = executable
        processIdentifier = try Self.spawn(
            executable, arguments, environment: environment, in: directory, streams: [stdin, stdout, stderr])
        for (stream, isInput) in [(stdin, true), (stdout, false), (stderr, false)] {
            if case .pipe(let pipe) = stream { isInput ? pipe.closeReadEnd() : pipe.closeWriteEnd() }
        }
        let state = NIOLockedValueBox<Termination?>(nil)
        let exited = DispatchGroup()
        self.state = state
        self.exited = exited
        let pid = processIdentifier
        exited.enter()
        let reaper = Thread {
            let termination = Self.reap(pid, into: state)
            onExit?(termination)
            exited.leave()
        }
        reaper.name = "reaper of \(pid)"
        reaper.start()
    }

    /// How the child ended; nil while it runs.
    public var termination: Termination? { state.withLockedValue { $0 } }

    public var isRunning: Bool { termination == nil }

    /// Waits until the child has ended (and `onExit` has returned).
    @discardableResult
    public func waitUntilExit() -> Termination {
        exited.wait()
        return state.withLockedValue { $0! }
    }

    /// The exit status or the signal's number; waits for the exit.
    public var terminationStatus: Int32 { waitUntilExit().status }

    /// Whether the child exited or was ended by a signal; waits for the exit.
    public var terminationReason: Termination.Reason { waitUntilExit().reason }

    /// Sends `number` (SIGTERM, SIGKILL, …) if the child has not been reaped yet; whether it was sent.
    @discardableResult
    public func signal(_ number: Int32) -> Bool {
        state.withLockedValue { termination in
            termination == nil && kill(processIdentifier, number) == 0
        }
    }

    // MARK: Spawning

    private static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String], in directory: String?,
        streams: [Stream]
    ) throws -> pid_t {
        func check(_ result: Int32, _ operation: String) throws {
            guard result == 0 else { throw ChildProcessError(executable: executable, operation: operation, code: result) }
        }
        var actions = posix_spawn_file_actions_t()
        try check(posix_spawn_file_actions_init(&actions), "posix_spawn_file_actions_init")
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        try check(posix_spawnattr_init(&attributes), "posix_spawnattr_init")
        defer { posix_spawnattr_destroy(&attributes) }

        for (target, stream) in zip([STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO], streams) {
            let isInput = target == STDIN_FILENO
            switch stream {
            case .inherit:
                break
            case .null:
                try check(
                    posix_spawn_file_actions_addopen(&actions, target, "/dev/null", isInput ? O_RDONLY : O_WRONLY, 0),
                    "posix_spawn_file_actions_addopen(/dev/null)")
            case .file(let path):
                let flags = isInput ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC
                try check(
                    posix_spawn_file_actions_addopen(&actions, target, path, flags, 0o644),
                    "posix_spawn_file_actions_addopen(\(path))")
            case .pipe(let pipe):
                guard let end = isInput ? pipe.readEnd : pipe.writeEnd else {
                    throw ChildProcessError(executable: executable, operation: "a pipe end for fd \(target)", code: EBADF)
                }
                try check(posix_spawn_file_actions_adddup2(&actions, end, target), "posix_spawn_file_actions_adddup2")
            }
        }
        if let directory {
            try check(cspawnshim_addchdir(&actions, directory), "posix_spawn_file_actions_addchdir_np")
        }
        try check(cspawnshim_addclosefrom(&actions, 3), "posix_spawn_file_actions_addclosefrom_np")

        // As Foundation's `Process`: no signal blocked, every signal at its default (this process
        // ignores SIGPIPE, for one, and an ignored signal stays ignored across exec).
        var signals = sigset_t()
        sigemptyset(&signals)
        try check(posix_spawnattr_setsigmask(&attributes, &signals), "posix_spawnattr_setsigmask")
        sigfillset(&signals)
        try check(posix_spawnattr_setsigdefault(&attributes, &signals), "posix_spawnattr_setsigdefault")
        try check(
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)),
            "posix_spawnattr_setflags")

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for variable in envp { free(variable) } }
        var pid: pid_t = 0
        try check(posix_spawn(&pid, executable, &actions, &attributes, argv, envp), "posix_spawn")
        return pid
    }

    // MARK: Reaping

    /// Waits (blocking) until the child `pid` has ended, then reaps it and records how it ended,
    /// both under `state`'s lock.
    private static func reap(_ pid: pid_t, into state: NIOLockedValueBox<Termination?>) -> Termination {
        // Wait without reaping first: until the child is reaped its pid cannot be reused, so
        // `signal` (which sends under the lock) is safe right up to the reaping below.
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
        return state.withLockedValue { termination in
            var status: Int32 = 0
            var result: pid_t
            repeat { result = waitpid(pid, &status, 0) } while result < 0 && errno == EINTR
            let ended: Termination
            if result == pid {
                ended = decode(status)
            } else {
                // Reaped by someone else (nothing in the tests does that): no status to report.
                let reason = String(cString: strerror(errno))
                FileHandle.standardError.write(Data("ChildProcess: waitpid(\(pid)) failed: \(reason)\n".utf8))
                ended = Termination(reason: .exit, status: -1)
            }
            termination = ended
            return ended
        }
    }

    /// A `waitpid` status as the POSIX macros read it: WIFEXITED (no signal bits) → WEXITSTATUS;
    /// otherwise WTERMSIG (the low seven bits).
    public static func decode(_ status: Int32) -> Termination {
        let signal = status & 0x7f
        if signal == 0 { return Termination(reason: .exit, status: (status >> 8) & 0xff) }
        return Termination(reason: .uncaughtSignal, status: signal)
    }
}

extension ChildProcess {
    /// A pipe whose ends are close-on-exec from their creation (`pipe2(O_CLOEXEC)`), so that no
    /// child spawned at the same time elsewhere in this process inherits them. Each end is closed
    /// once, at the latest when the pipe is released.
    public final class Pipe: Sendable {
        private struct Ends: Sendable {
            var read: Int32?
            var write: Int32?
        }

        private let ends: NIOLockedValueBox<Ends>

        public init() throws {
            var descriptors: [Int32] = [-1, -1]
            guard cspawnshim_pipe2(&descriptors, O_CLOEXEC) == 0 else {
                throw ChildProcessError(executable: nil, operation: "pipe2", code: errno)
            }
            ends = NIOLockedValueBox(Ends(read: descriptors[0], write: descriptors[1]))
        }

        deinit {
            closeReadEnd()
            closeWriteEnd()
        }

        /// The read end's descriptor; nil once closed.
        public var readEnd: Int32? { ends.withLockedValue { $0.read } }
        /// The write end's descriptor; nil once closed.
        public var writeEnd: Int32? { ends.withLockedValue { $0.write } }

        public func closeReadEnd() {
            if let descriptor = ends.withLockedValue({ ends in defer { ends.read = nil }; return ends.read }) {
                close(descriptor)
            }
        }

        public func closeWriteEnd() {
            if let descriptor = ends.withLockedValue({ ends in defer { ends.write = nil }; return ends.write }) {
                close(descriptor)
            }
        }

        /// Reads the read end until the end of the file (every write end closed).
        public func readToEnd() throws -> [UInt8] {
            guard let descriptor = readEnd else { throw ChildProcessError(executable: nil, operation: "read", code: EBADF) }
            var data: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count >= 0 else { throw ChildProcessError(executable: nil, operation: "read", code: errno) }
                if count == 0 { return data }
                data.append(contentsOf: buffer[0..<count])
            }
        }

        /// Writes all of `bytes` to the write end.
        public func write(_ bytes: [UInt8]) throws {
            guard let descriptor = writeEnd else { throw ChildProcessError(executable: nil, operation: "write", code: EBADF) }
            var offset = 0
            while offset < bytes.count {
                let count = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
                if count < 0 && errno == EINTR { continue }
                guard count >= 0 else { throw ChildProcessError(executable: nil, operation: "write", code: errno) }
                offset += count
            }
        }
    }
}

/// A failed system call while starting a child (naming its executable) or using a pipe.
public struct ChildProcessError: Error, CustomStringConvertible {
    /// nil for a pipe's.
    public var executable: String?
    public var operation: String
    public var code: Int32

    public var description: String {
        let failure = "\(operation) failed: \(String(cString: strerror(code))) (errno \(code))"
        guard let executable else { return failure }
        return "could not start \(executable): \(failure)"
    }
}
#endif
