import Foundation

/// Copies an ingest's committed WAL frames into the database file on a thread of its own.
///
/// SQLite checkpoints automatically in the connection that commits, right after the commit: at 2M
/// events that was 1.3 s of CPU, plus waiting for the database file's fsyncs, on the thread that
/// stores events — the ingest's bottleneck — while the other core had time to spare. So while an
/// ingest runs, its connection does not checkpoint; after each commit this thread runs a passive
/// checkpoint through a connection of its own, which never blocks the writer or any reader.
///
/// The WAL starts over from its beginning only when everything in it was copied before the next
/// write transaction starts, which a checkpoint running beside that transaction never achieves. So
/// once the WAL has grown past `walLimitBytes`, the writer waits for the checkpoint of its last
/// commit before it begins the next transaction (`waitIfWALIsLarge`), and the WAL stays bounded.
/// The writer tells the WAL's size at each commit (SQLite's WAL hook reports it), so whether it
/// waits depends on what it wrote, never on how far this thread has got.
final class WALCheckpointer: @unchecked Sendable {
    // All mutable state is guarded by `condition`, except `connection`, which only the thread uses.
    private let condition = NSCondition()
    private var requested = 0
    private var completed = 0
    private var stopping = false
    /// The WAL's size at the writer's last commit.
    private var walFrames = 0
    private var finished = false
    private var connection: Database?
    private let pageSize: Int
    private let walLimitBytes: Int

    /// WAL size past which the writer waits for a checkpoint before its next transaction.
    static let defaultWALLimitBytes = 512 << 20

    /// Starts the thread with its own connection to the database at `path`, or returns nil when that
    /// connection cannot be opened (then the writer should keep SQLite's automatic checkpoints).
    init?(path: String, pageSize: Int, walLimitBytes: Int = WALCheckpointer.defaultWALLimitBytes) {
        guard let connection = try? Database(path: path, mode: .readWrite) else { return nil }
        self.connection = connection
        self.pageSize = pageSize
        self.walLimitBytes = walLimitBytes
        let thread = Thread { [self] in run() }
        thread.name = "audience-sync checkpoint"
        thread.start()
    }

    /// The writer committed, leaving `walFrames` frames in the WAL: copy what it committed.
    func committed(walFrames: Int) {
        condition.lock()
        self.walFrames = walFrames
        requested += 1
        condition.broadcast()
        condition.unlock()
    }

    /// Before the writer's next transaction: when the WAL has grown past the limit, waits until the
    /// checkpoint of the last commit is done, so that the transaction starts the WAL over.
    func waitIfWALIsLarge() {
        condition.lock()
        defer { condition.unlock() }
        guard walFrames * pageSize > walLimitBytes else { return }
        while completed < requested && !finished { condition.wait() }
    }

    /// Waits for the checkpoint of the last commit, then ends the thread and closes its connection.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    private func run() {
        condition.lock()
        while true {
            while completed == requested && !stopping { condition.wait() }
            if completed == requested { break }
            let target = requested
            condition.unlock()
            // A checkpoint that cannot copy everything (a reader still needs old frames, another
            // connection is checkpointing) copies what it can; the next one continues.
            _ = try? connection?.checkpointPassively()
            condition.lock()
            completed = target
            condition.broadcast()
        }
        connection = nil
        finished = true
        condition.broadcast()
        condition.unlock()
    }
}
