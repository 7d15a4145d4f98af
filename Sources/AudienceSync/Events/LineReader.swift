#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CZlib

/// Reads a file descriptor line by line in large chunks; memory is bounded by the chunk size
/// and the longest line, never by the size of the input.
///
/// An input whose first two bytes are gzip's magic (`1f 8b`) is inflated while it is read,
/// whatever its name (SPEC §3.1); members written one after another (`cat a.gz b.gz`) are one
/// stream, as gzip reads them. A truncated or corrupt stream is an `.input` error naming the last
/// line returned; the lines before it have all been returned.
struct LineReader {
    /// Lines longer than this are reported as too long and skipped, not buffered.
    static let maximumLineLength = 64 << 20

    /// This reader's limit: `maximumLineLength` unless a test asks for a smaller one.
    private let lineLimit: Int

    private let descriptor: Int32
    private let chunkSize: Int
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    private var atEndOfInput = false
    private var source = Source.undecided
    /// 1-based number of the line most recently returned.
    private(set) var lineNumber = 0
    /// Bytes read from the descriptor so far: for gzip input the compressed bytes, so that progress
    /// is measured against the size of the file.
    private(set) var bytesRead = 0

    init(descriptor: Int32, chunkSize: Int = 4 << 20, maximumLineLength: Int = LineReader.maximumLineLength) {
        self.descriptor = descriptor
        self.chunkSize = chunkSize
        lineLimit = maximumLineLength
        buffer = .allocate(byteCount: chunkSize, alignment: 16)
    }

    func deallocate() { buffer.deallocate() }

    /// What the bytes of the descriptor are, known once its first two bytes have been read.
    private enum Source {
        case undecided
        /// Text as it is; `head` holds the bytes read to decide, not handed out yet.
        case plain(head: [UInt8])
        case gzip(GzipInflater)
    }

    enum Line {
        case text(UnsafeBufferPointer<UInt8>)
        case tooLong
    }

    /// The next line without its line end (`\n` or `\r\n`), or nil at the end of input.
    /// The bytes are valid until the next call.
    mutating func next() throws -> Line? {
        var skipping = false
        var searchFrom = start
        while true {
            let available = UnsafeRawBufferPointer(rebasing: buffer[searchFrom..<end])
            if let base = available.baseAddress, let found = memchr(base, 0x0A, available.count) {
                let newline = searchFrom + (UnsafeRawPointer(found) - base)
                let lineStart = start
                start = newline + 1
                // The buffer may hold a whole line somewhat over the limit before it is found to be.
                if skipping || newline - lineStart > lineLimit {
                    lineNumber += 1
                    return .tooLong
                }
                return .text(line(lineStart, newline))
            }
            if atEndOfInput {
                // A line being skipped as too long has no bytes left, but is still a line to report.
                guard start < end || skipping else { return nil }
                let lineStart = start
                start = end
                if skipping || end - lineStart > lineLimit {
                    lineNumber += 1
                    return .tooLong
                }
                return .text(line(lineStart, end))
            }
            // Make room: move the partial line to the front, grow for long lines, or skip them.
            if end - start > lineLimit {
                skipping = true
                start = end
            }
            if start > 0 {
                let pending = end - start
                if pending > 0 {
                    buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: pending)
                }
                end = pending
                start = 0
            } else if end == buffer.count {
                let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 16)
                bigger.baseAddress!.copyMemory(from: buffer.baseAddress!, byteCount: end)
                buffer.deallocate()
                buffer = bigger
            }
            searchFrom = end
            // Every complete line in the buffer has been returned: an error here is after `lineNumber`.
            let count: Int
            do {
                count = try fill(buffer.baseAddress! + end, count: buffer.count - end)
            } catch let failure as GzipInflater.Failure {
                throw failure.error(afterLine: lineNumber)
            }
            if count == 0 { atEndOfInput = true }
            end += count
        }
    }

    /// Reads the next bytes of the input, inflated if it is gzip, into `destination`; 0 at its end.
    private mutating func fill(_ destination: UnsafeMutableRawPointer, count: Int) throws -> Int {
        switch source {
        case .undecided:
            // A pipe may hand out one byte at a time: read until two are known or the input ends.
            var head = [UInt8](repeating: 0, count: 2)
            var known = 0
            while known < 2 {
                let got = try head.withUnsafeMutableBytes {
                    try LineReader.readBytes(descriptor, into: $0.baseAddress! + known, count: 2 - known)
                }
                if got == 0 { break }
                known += got
            }
            bytesRead += known
            head.removeLast(2 - known)
            if head == [0x1F, 0x8B] {
                source = .gzip(try GzipInflater(firstBytes: head, capacity: chunkSize))
            } else {
                source = .plain(head: head)
            }
            return try fill(destination, count: count)
        case .plain(var head) where !head.isEmpty:
            let count = min(count, head.count)
            destination.copyMemory(from: head, byteCount: count)
            head.removeFirst(count)
            source = .plain(head: head)
            return count
        case .plain:
            let count = try LineReader.readBytes(descriptor, into: destination, count: count)
            bytesRead += count
            return count
        case .gzip(let inflater):
            let descriptor = self.descriptor
            var read = 0
            defer { bytesRead += read }
            return try inflater.inflate(into: destination, count: count) { buffer -> Int? in
                let count = try LineReader.readBytes(descriptor, into: buffer.baseAddress!, count: buffer.count)
                read += count
                return count
            }
        }
    }

    /// `read(2)` of at most `count` bytes, retried when interrupted; 0 at the end of input.
    static func readBytes(_ descriptor: Int32, into destination: UnsafeMutableRawPointer, count: Int)
        throws -> Int
    {
        while true {
            let count = read(descriptor, destination, count)
            if count >= 0 { return count }
            if errno != EINTR { throw AudienceSyncError(.io, "read failed: \(String(cString: strerror(errno)))") }
        }
    }

    private mutating func line(_ from: Int, _ to: Int) -> UnsafeBufferPointer<UInt8> {
        lineNumber += 1
        var to = to
        if to > from, buffer[to - 1] == 0x0D { to -= 1 }
        var from = from
        // A UTF-8 byte order mark at the very start of the input is not part of the first line.
        if lineNumber == 1, to - from >= 3, buffer[from] == 0xEF, buffer[from + 1] == 0xBB, buffer[from + 2] == 0xBF {
            from += 3
        }
        let raw = UnsafeRawBufferPointer(rebasing: buffer[from..<to])
        return raw.bindMemory(to: UInt8.self)
    }
}
