#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a file descriptor line by line in large chunks; memory is bounded by the chunk size
/// and the longest line, never by the size of the input.
struct LineReader {
    /// Lines longer than this are reported as too long and skipped, not buffered.
    static let maximumLineLength = 64 << 20

    /// This reader's limit: `maximumLineLength` unless a test asks for a smaller one.
    private let lineLimit: Int

    private let descriptor: Int32
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    private var atEndOfInput = false
    /// 1-based number of the line most recently returned.
    private(set) var lineNumber = 0
    /// Bytes consumed so far.
    private(set) var bytesRead = 0

    init(descriptor: Int32, chunkSize: Int = 4 << 20, maximumLineLength: Int = LineReader.maximumLineLength) {
        self.descriptor = descriptor
        lineLimit = maximumLineLength
        buffer = .allocate(byteCount: chunkSize, alignment: 16)
    }

    func deallocate() { buffer.deallocate() }

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
            let count = read(descriptor, buffer.baseAddress! + end, buffer.count - end)
            if count < 0 {
                if errno == EINTR { continue }
                throw AudienceSyncError(.io, "read failed: \(String(cString: strerror(errno)))")
            }
            if count == 0 { atEndOfInput = true }
            end += count
            bytesRead += count
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
