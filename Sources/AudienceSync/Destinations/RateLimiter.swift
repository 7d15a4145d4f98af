/// A token bucket: at most `rate` requests start per second on average, with bursts of up to
/// `burst` (SPEC §5 `rate_limit`).
///
/// `reserve()` takes a token and says how long the caller must wait before using it; tokens may go
/// negative, so concurrent callers queue up in order without the bucket itself sleeping. The clock
/// is injected (seconds on any monotonic scale), so tests need no real time.
public actor RateLimiter {
    public let rate: Double
    public let burst: Double
    private let clock: @Sendable () -> Double
    private var tokens: Double
    private var updatedAt: Double

    public init(rate: Double, burst: Double? = nil, clock: @escaping @Sendable () -> Double) {
        self.rate = max(rate, 0.001)
        self.burst = max(1, burst ?? rate)
        self.clock = clock
        self.tokens = self.burst
        self.updatedAt = clock()
    }

    /// Takes one token; returns the seconds to wait before starting the request (0 when one was free).
    public func reserve() -> Double {
        let now = clock()
        if now > updatedAt {
            tokens = min(burst, tokens + (now - updatedAt) * rate)
            updatedAt = now
        }
        tokens -= 1
        return tokens >= 0 ? 0 : -tokens / rate
    }
}
