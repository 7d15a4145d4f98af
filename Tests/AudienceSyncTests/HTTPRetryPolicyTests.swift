import Foundation
import Testing

@testable import AudienceSync

/// When the HTTP destinations retry, how long they wait, and how the rate limiter spaces requests.
@Suite struct HTTPRetryPolicyTests {
    @Test func retryAfterAndBackoff() {
        let now = Date(timeIntervalSince1970: 1_795_348_800)
        #expect(HTTPRetryPolicy.retryAfter("120", now: now) == 120)
        #expect(HTTPRetryPolicy.retryAfter("Sun, 22 Nov 2026 12:01:00 GMT", now: now) == 60)
        #expect(HTTPRetryPolicy.retryAfter("Sun, 22 Nov 2026 11:00:00 GMT", now: now) == 0)
        #expect(HTTPRetryPolicy.retryAfter("soon", now: now) == nil)
        let policy = HTTPRetryPolicy(maxRetries: 5)
        #expect(policy.backoff(retry: 0, unit: 0.5) == 0.25)
        #expect(policy.backoff(retry: 3, unit: 0.5) == 2)
        #expect(policy.backoff(retry: 20, unit: 1) == 30)
        for status in [408, 429, 500, 502, 503, 504, 599] { #expect(HTTPRetryPolicy.isRetryable(status: status)) }
        for status in [400, 401, 403, 404, 413, 422, 501, 505] { #expect(!HTTPRetryPolicy.isRetryable(status: status)) }
    }

    @Test func theRateLimiterSpacesRequestStarts() async {
        let now = LockedClock()
        let limiter = RateLimiter(rate: 4, burst: 2, clock: { now.seconds })
        var waits: [Double] = []
        for _ in 0..<4 { waits.append(await limiter.reserve()) }
        #expect(waits == [0, 0, 0.25, 0.5])
        now.seconds = 10
        #expect(await limiter.reserve() == 0)
    }
}

/// A clock a test sets by hand.
final class LockedClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Double = 0
    var seconds: Double {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}
