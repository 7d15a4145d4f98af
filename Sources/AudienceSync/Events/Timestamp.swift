#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// ISO-8601 instants as milliseconds since the Unix epoch, UTC — the unit the store keeps.
///
/// Parsing accepts `YYYY-MM-DDTHH:MM:SS`, optional fractional seconds (any number of digits,
/// truncated to milliseconds), and a zone that is `Z` or an offset (`+02:00`, `+0200`, `+02`).
/// A time without a zone is refused: it names no instant.
public enum Timestamp {
    /// Parses an ISO-8601 instant; nil when `text` is not one.
    public static func parse(_ text: String) -> Int64? {
        var text = text
        return text.withUTF8 { parse($0) }
    }

    /// Parses an ISO-8601 instant from UTF-8 bytes; nil when they are not one.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        var index = 0
        let count = bytes.count

        func digits(_ n: Int) -> Int? {
            guard index + n <= count else { return nil }
            var value = 0
            for offset in 0..<n {
                let byte = bytes[index + offset]
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            index += n
            return value
        }
        func expect(_ byte: UInt8) -> Bool {
            guard index < count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        guard let year = digits(4), expect(0x2D), let month = digits(2), expect(0x2D), let day = digits(2)
        else { return nil }
        guard index < count, bytes[index] == 0x54 || bytes[index] == 0x74 || bytes[index] == 0x20 else { return nil }
        index += 1
        guard let hour = digits(2), expect(0x3A), let minute = digits(2), expect(0x3A), let second = digits(2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month),
            hour <= 23, minute <= 59, second <= 59
        else { return nil }

        var millis = 0
        if index < count, bytes[index] == 0x2E || bytes[index] == 0x2C {
            index += 1
            var seen = 0
            while index < count, bytes[index] >= 0x30 && bytes[index] <= 0x39 {
                if seen < 3 { millis = millis * 10 + Int(bytes[index] - 0x30) }
                seen += 1
                index += 1
            }
            guard seen > 0 else { return nil }
            for _ in min(seen, 3)..<3 { millis *= 10 }
        }

        var offsetMinutes = 0
        guard index < count else { return nil }
        switch bytes[index] {
        case 0x5A, 0x7A:  // Z z
            index += 1
        case 0x2B, 0x2D:  // + -
            let sign = bytes[index] == 0x2D ? -1 : 1
            index += 1
            guard let offsetHours = digits(2), offsetHours <= 23 else { return nil }
            var minutes = 0
            if index < count {
                _ = expect(0x3A)
                guard let value = digits(2), value <= 59 else { return nil }
                minutes = value
            }
            offsetMinutes = sign * (offsetHours * 60 + minutes)
        default:
            return nil
        }
        guard index == count else { return nil }

        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetMinutes * 60)
        return seconds * 1000 + Int64(millis)
    }

    /// Formats as `YYYY-MM-DDTHH:MM:SS.sssZ`.
    public static func format(_ millis: Int64) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        format(millis, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS.sssZ` to `bytes` (no allocation beyond the append).
    public static func format(_ millis: Int64, into bytes: inout [UInt8]) {
        let (secondsTotal, ms) = floorDivide(millis, 1000)
        let (days, secondOfDay) = floorDivide(secondsTotal, 86_400)
        let (year, month, day) = civilFromDays(Int(days))
        func put(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                bytes.append(UInt8(0x30 + (rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        put(year, 4)
        bytes.append(0x2D)
        put(month, 2)
        bytes.append(0x2D)
        put(day, 2)
        bytes.append(0x54)
        put(Int(secondOfDay / 3600), 2)
        bytes.append(0x3A)
        put(Int(secondOfDay / 60 % 60), 2)
        bytes.append(0x3A)
        put(Int(secondOfDay % 60), 2)
        bytes.append(0x2E)
        put(Int(ms), 3)
        bytes.append(0x5A)
    }

    /// Milliseconds since the epoch for a `Date`-free "now" taken from the system clock.
    public static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The proleptic Gregorian date of a day count since 1970-01-01.
    static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let q = a / b
        let r = a % b
        return r < 0 ? (q - 1, r + b) : (q, r)
    }
}
