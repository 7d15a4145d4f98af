/// A length of time written as one or more `<integer><unit>` with unit `m` (minutes), `h`, `d` or
/// `w` (SPEC §4.2): `90m`, `2h`, `30d`, `1w`, `1d12h`.
///
/// Held in milliseconds, the unit of event times in the store. A day is always 24 hours: times are
/// UTC, so there is no daylight-saving day of 23 or 25 hours.
public struct Duration: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The length in milliseconds.
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    public static func minutes(_ count: Int64) -> Duration { Duration(milliseconds: count * 60_000) }
    public static func hours(_ count: Int64) -> Duration { Duration(milliseconds: count * 3_600_000) }
    public static func days(_ count: Int64) -> Duration { Duration(milliseconds: count * 86_400_000) }

    /// The units a duration is written in, with their length in milliseconds.
    static let units: [(unit: UInt8, milliseconds: Int64)] = [
        (UInt8(ascii: "w"), 604_800_000), (UInt8(ascii: "d"), 86_400_000), (UInt8(ascii: "h"), 3_600_000),
        (UInt8(ascii: "m"), 60_000),
    ]

    /// What a user is told when a duration does not parse.
    public static let expected = "a duration like 30d, 12h, 1d12h"

    /// Parses `90m`, `2h`, `30d`, `1w`, `1d12h`; nil for anything else (spaces, other units,
    /// a number without unit, overflow).
    public init?(parsing text: String) {
        var total: Int64 = 0
        var number: Int64?
        for byte in text.utf8 {
            if byte >= 0x30 && byte <= 0x39 {
                let (times10, overflow1) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (value, overflow2) = times10.addingReportingOverflow(Int64(byte - 0x30))
                guard !overflow1, !overflow2 else { return nil }
                number = value
            } else if let unit = Duration.units.first(where: { $0.unit == byte }), let count = number {
                let (part, overflow1) = count.multipliedReportingOverflow(by: unit.milliseconds)
                let (sum, overflow2) = total.addingReportingOverflow(part)
                guard !overflow1, !overflow2 else { return nil }
                total = sum
                number = nil
            } else {
                return nil
            }
        }
        guard number == nil, !text.isEmpty else { return nil }
        milliseconds = total
    }

    /// The canonical spelling in days, hours and minutes (`36h` → `1d12h`, `1w` → `7d`, zero → `0m`);
    /// a remainder under a minute is shown in seconds or milliseconds.
    public var description: String {
        if milliseconds == 0 { return "0m" }
        var rest = milliseconds
        var text = rest < 0 ? "-" : ""
        rest = rest.magnitude > Int64.max.magnitude ? Int64.max : abs(rest)
        for (unit, length) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
            if rest >= length {
                text += "\(rest / length)\(unit)"
                rest %= length
            }
        }
        return text
    }

    public static func < (lhs: Duration, rhs: Duration) -> Bool { lhs.milliseconds < rhs.milliseconds }
}
