import NIOPosix

/// The serial executor of an actor that owns blocking resources — an SQLite connection, a file
/// being read: its jobs run one at a time, in order, on a thread of their own (a one-thread
/// `NIOThreadPool`), never on Swift's cooperative pool, so a statement that runs for seconds or a
/// read that waits on the disk holds up no other task. An actor using it serialises every use of
/// what it owns, as GRDB's `SerializedDatabase` does with a dispatch queue.
final class ThreadExecutor: SerialExecutor {
    private let pool: NIOThreadPool

    init() {
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    deinit {
        pool.shutdownGracefully { _ in }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        pool.submit { _ in
            // After a shutdown the pool hands work back as cancelled; the job still has to run to
            // end its task, and no other job of this executor runs any more.
            job.runSynchronously(on: executor)
        }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }
}
