#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads one input of an ingest — a file, or standard input — and stages its lines in batches
/// (`LineStager`), on a thread of its own: the reads block, and the parsing is half of an ingest's
/// work, done here while the store writes the batch before.
actor InputReader {
    private let executor = ThreadExecutor()
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private var stager: LineStager
    private var reader: LineReader
    private let descriptor: Int32
    /// The input as messages name it (`stdin` for `-`).
    let name: String

    /// Opens `path` (`-`: standard input); the stager carries the identity numbering and the
    /// `--strict` state from the inputs before.
    init(path: String, stager: LineStager) throws {
        if path == "-" {
            descriptor = 0
            name = "stdin"
        } else {
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                throw AudienceSyncError(.io, "cannot open: \(String(cString: strerror(errno)))", file: path)
            }
            name = path
        }
        var stager = stager
        stager.startInput()
        self.stager = stager
        reader = LineReader(descriptor: descriptor)
    }

    isolated deinit {
        reader.deallocate()
        if descriptor != 0 { close(descriptor) }
    }

    /// The next batch (`LineStager.nextBatch`); nil after the last.
    func next() -> StagedBatch? {
        stager.nextBatch(from: &reader, file: name)
    }

    /// The stager, for the next input of the same ingest.
    func finish() -> LineStager { stager }
}
