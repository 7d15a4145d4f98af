/// The Segment message types the store accepts (SPEC §3.1).
public enum MessageType: String, CaseIterable, Sendable {
    case track, identify, page, screen, group, alias

    /// "track, identify, page, screen, group, alias" — for error messages.
    public static let list = allCases.map(\.rawValue).joined(separator: ", ")
}
