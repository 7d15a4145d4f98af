import CZlib

/// Inflates a gzip stream, member after member (members written one after another are one stream,
/// as gzip reads them), with zlib: no whole-input buffering, memory is the input chunk and zlib's
/// 32 KiB window. The input is pulled from a reader (`ingest`, `LineReader`) or pushed chunk by
/// chunk (a request body, `append(_:to:limit:)`).
final class GzipInflater {
    enum Failure: Error {
        /// The input ended inside a member.
        case truncated
        /// zlib refused the data (its message: a bad header, invalid codes, a CRC or length mismatch).
        case corrupt(String)

        func error(afterLine line: Int) -> AudienceSyncError {
            let position = line == 0 ? "before its first line" : "after line \(line)"
            switch self {
            case .truncated: return AudienceSyncError(.input, "gzip stream truncated \(position)")
            case .corrupt(let reason): return AudienceSyncError(.input, "gzip stream corrupt \(position): \(reason)")
            }
        }
    }

    /// zlib keeps pointers into its stream: it must not move, so it is allocated, not a property.
    private let stream: UnsafeMutablePointer<z_stream>
    /// Compressed bytes read and not yet inflated.
    private let input: UnsafeMutableRawBufferPointer
    private var inputEnded = false
    /// A member has just ended: the input may end here, or the next member starts.
    private var atMemberEnd = false
    /// zlib found the data corrupt in a call that also inflated some bytes: those are handed out
    /// first, so that every line before the damage is read, and this is thrown on the next call.
    private var failure: Failure?

    /// An inflater whose input starts with `firstBytes`, already read from the descriptor.
    init(firstBytes: [UInt8], capacity: Int) throws {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = audience_sync_inflate_init_gzip(stream)
        guard status == Z_OK else {
            stream.deallocate()
            throw AudienceSyncError(.io, "zlib could not start inflating (error \(status))")
        }
        self.stream = stream
        input = .allocate(byteCount: max(capacity, firstBytes.count), alignment: 16)
        input.copyBytes(from: firstBytes)
        stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_in = UInt32(firstBytes.count)
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
        input.deallocate()
    }

    /// Inflates at most `count` bytes into `destination`, calling `read` for more input when zlib
    /// needs it (`read` fills the buffer it is given and returns how much: 0 at the end of input,
    /// nil when there is none yet); 0 once the input has ended right after a member, or when `read`
    /// has none yet.
    func inflate(
        into destination: UnsafeMutableRawPointer, count: Int, read: (UnsafeMutableRawBufferPointer) throws -> Int?
    ) throws -> Int {
        if let failure { throw failure }
        let room = min(count, Int(UInt32.max))
        while true {
            if stream.pointee.avail_in == 0 && !inputEnded {
                guard let count = try read(input) else { return 0 }
                inputEnded = count == 0
                stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_in = UInt32(count)
            }
            if stream.pointee.avail_in == 0 && inputEnded {
                if atMemberEnd { return 0 }
                throw Failure.truncated
            }
            if atMemberEnd {
                // More bytes after a member: gzip reads them as the next member.
                inflateReset(stream)
                atMemberEnd = false
            }
            stream.pointee.next_out = destination.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = UInt32(room)
            let status = CZlib.inflate(stream, Z_NO_FLUSH)
            let produced = room - Int(stream.pointee.avail_out)
            switch status {
            case Z_STREAM_END: atMemberEnd = true
            // Z_BUF_ERROR: no progress without more input, read just above on the next turn.
            case Z_OK, Z_BUF_ERROR: break
            default:
                let failure = Failure.corrupt(stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)")
                guard produced > 0 else { throw failure }
                self.failure = failure
            }
            if produced > 0 { return produced }
        }
    }
}

extension GzipInflater {
    /// A request body that inflated past its limit, or was no good gzip.
    enum PushFailure: Error {
        case tooLarge
        case gzip(Failure)
    }

    /// Inflates `chunk`, the next compressed bytes of a body, appending what it yields to `output`;
    /// throws a `PushFailure`: `.tooLarge` as soon as `output` would pass `limit` bytes, so that an inflated body is
    /// never held past it. `end` says the body ended after `chunk`: then it must end a member.
    func append(_ chunk: UnsafeRawBufferPointer, to output: inout [UInt8], limit: Int, end: Bool = false) throws {
        var offset = 0
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
        defer { scratch.deallocate() }
        do {
            while true {
                let produced = try inflate(into: scratch.baseAddress!, count: scratch.count) { buffer in
                    let count = min(buffer.count, chunk.count - offset)
                    guard count > 0 else { return end ? 0 : nil }
                    buffer.baseAddress!.copyMemory(from: chunk.baseAddress! + offset, byteCount: count)
                    offset += count
                    return count
                }
                if produced == 0 { return }
                guard output.count + produced <= limit else { throw PushFailure.tooLarge }
                output.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[0..<produced]))
            }
        } catch let failure as PushFailure {
            throw failure
        } catch let failure as Failure {
            throw PushFailure.gzip(failure)
        } catch {
            throw PushFailure.gzip(.corrupt("\(error)"))
        }
    }
}
