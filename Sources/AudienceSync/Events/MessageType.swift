/// The Segment message types the store accepts (SPEC §3.1).
public enum MessageType: String, CaseIterable, Sendable {
    case track, identify, page, screen, group, alias

    /// "track, identify, page, screen, group, alias" — for error messages.
    public static let list = allCases.map(\.rawValue).joined(separator: ", ")

    /// The name's UTF-8 bytes, valid for the whole process (bound without copying on ingest).
    var utf8Name: UnsafeRawBufferPointer { MessageType.names[MessageType.allCases.firstIndex(of: self)!] }

    nonisolated(unsafe) private static let names: [UnsafeRawBufferPointer] = allCases.map { type in
        let bytes = Array(type.rawValue.utf8)
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        storage.copyBytes(from: bytes)
        return UnsafeRawBufferPointer(storage)
    }
}
