#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The `file` destination: appends each message as one NDJSON line to `path`, and counts a batch
/// as acknowledged only once the file has been fsynced.
public final class FileDestination: Destination {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// Large batches: each costs an fsync of the file and a commit of the store, which dominate
    /// the time of small ones; 10,000 messages of a few hundred bytes are a few MB in memory.
    public var preferredBatchSize: Int? { 10_000 }

    public func deliver(_ batch: [OutboundMessage]) async throws -> [DeliveryResult] {
        guard !batch.isEmpty else { return [] }
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw AudienceSyncError(.delivery, "cannot create the output file's folder", file: folder, underlying: error)
            }
        }
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw failure("cannot open") }
        defer { closeDescriptor(descriptor) }
        var bytes: [UInt8] = []
        for message in batch {
            bytes.append(contentsOf: message.body.utf8)
            bytes.append(UInt8(ascii: "\n"))
        }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("cannot write")
            }
            written += count
        }
        guard fsync(descriptor) == 0 else { throw failure("cannot fsync") }
        return Array(repeating: .acknowledged, count: batch.count)
    }

    private func failure(_ what: String) -> AudienceSyncError {
        AudienceSyncError(.delivery, "\(what) the output file: \(String(cString: strerror(errno)))", file: path)
    }
}

/// The C library's `close`, which `Destination.close()` hides inside the class.
private func closeDescriptor(_ descriptor: Int32) {
    _ = close(descriptor)
}
