import Foundation

/// When an HTTP destination retries a request, and how long it waits first (SPEC §6.2).
///
/// Network errors, timeouts, 408, 429 and 5xx other than 501 and 505 are retried; any other
/// non-2xx answer is final. The wait before retry `n` (0-based) is the server's `Retry-After` when
/// it gave one, else "full jitter": a uniform draw in `[0, min(maximumDelay, baseDelay · 2ⁿ))`.
public struct HTTPRetryPolicy: Sendable, Equatable {
    /// Retries after the first attempt.
    public var maxRetries: Int
    /// Seconds: the backoff window of the first retry.
    public var baseDelay: Double
    /// Seconds: the backoff window never grows past this.
    public var maximumDelay: Double
    /// Seconds: a `Retry-After` longer than this is not waited for in this run; the messages stay
    /// pending for the next one (a cron job should not sleep for an hour).
    public var maximumRetryAfter: Double

    public init(maxRetries: Int, baseDelay: Double = 0.5, maximumDelay: Double = 30, maximumRetryAfter: Double = 300) {
        self.maxRetries = max(0, maxRetries)
        self.baseDelay = baseDelay
        self.maximumDelay = maximumDelay
        self.maximumRetryAfter = maximumRetryAfter
    }

    /// Whether a response status is worth retrying.
    public static func isRetryable(status: Int) -> Bool {
        switch status {
        case 408, 429: return true
        case 501, 505: return false
        case 500...599: return true
        default: return false
        }
    }

    /// The full-jitter wait before retry `retry` (0-based), in seconds; `unit` is a draw in `[0, 1)`.
    public func backoff(retry: Int, unit: Double) -> Double {
        let window = min(maximumDelay, baseDelay * pow(2, Double(min(retry, 30))))
        return window * min(max(unit, 0), 1)
    }

    /// Seconds to wait from a `Retry-After` value: delay-seconds, or an HTTP date relative to `now`
    /// (a date in the past means no wait). Nil when the value is neither.
    public static func retryAfter(_ value: String, now: Date) -> Double? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            return Double(text)
        }
        for format in httpDateFormats {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) {
                return max(0, date.timeIntervalSince(now))
            }
        }
        return nil
    }

    /// IMF-fixdate, then the obsolete RFC 850 and asctime forms RFC 9110 still asks recipients to accept.
    private static let httpDateFormats = [
        "EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy",
    ]
}
