import CZlib

/// `bytes` as one gzip member, deflated by zlib at `level` (so that the tests need no gzip tool).
/// Members made by separate calls and put one after another are a multi-member stream.
public func gzip(_ bytes: [UInt8], level: Int32 = Z_DEFAULT_COMPRESSION) -> [UInt8] {
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    defer { stream.deallocate() }
    precondition(audience_sync_deflate_init_gzip(stream, level) == Z_OK)
    defer { deflateEnd(stream) }
    var output = [UInt8](repeating: 0, count: Int(deflateBound(stream, UInt(bytes.count))))
    var input = bytes
    let written = input.withUnsafeMutableBufferPointer { input in
        output.withUnsafeMutableBufferPointer { output in
            stream.pointee.next_in = input.baseAddress
            stream.pointee.avail_in = UInt32(input.count)
            stream.pointee.next_out = output.baseAddress
            stream.pointee.avail_out = UInt32(output.count)
            precondition(deflate(stream, Z_FINISH) == Z_STREAM_END)
            return output.count - Int(stream.pointee.avail_out)
        }
    }
    return Array(output[0..<written])
}

public func gzip(_ text: String, level: Int32 = Z_DEFAULT_COMPRESSION) -> [UInt8] { gzip(Array(text.utf8), level: level) }
