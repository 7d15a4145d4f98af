extension LoopbackReceiver {
    /// What the receiver does with one request.
    public enum Reply: Sendable {
        /// Answers `status` with `headers` and `body`, after `delay` seconds (a slow answer). When
        /// the client closes the connection during the delay, nothing is answered.
        case status(Int, headers: [(String, String)] = [], body: String = "", delay: Double = 0)
        /// Never answers: the request waits until `releaseStalled` or until the client closes the
        /// connection (its timeout).
        case stall
        /// Writes the status line and headers at once and holds the body back until
        /// `releaseStalled` or until the connection closes: the destination has answered, the
        /// client has not finished reading. A 2xx status counts as acknowledged when its line is written.
        case headThenStall(Int, headers: [(String, String)] = [])
        /// Closes the connection without answering.
        case drop

        public static let ok = Reply.status(200, body: #"{"success":true}"#)

        /// 429 with `Retry-After` (delay-seconds or an HTTP date).
        public static func tooManyRequests(retryAfter: String) -> Reply {
            .status(429, headers: [("Retry-After", retryAfter)], body: #"{"error":"rate limited"}"#)
        }

        /// A short label for failure messages: `200`, `429`, `stall`, `head 200 + stall`, `drop`.
        public var label: String {
            switch self {
            case .status(let status, _, _, let delay): return delay > 0 ? "\(status) after \(delay) s" : "\(status)"
            case .stall: return "stall"
            case .headThenStall(let status, _): return "head \(status) + stall"
            case .drop: return "drop"
            }
        }
    }
}
