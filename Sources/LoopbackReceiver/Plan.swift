import NIOConcurrencyHelpers
import Foundation

extension LoopbackReceiver {
    /// How the receiver answers: a reply for each request, decided when the request has arrived
    /// whole (the request says which attempt of its content it is).
    public struct Plan: Sendable {
        let decide: @Sendable (Request) -> Reply

        public init(_ decide: @escaping @Sendable (Request) -> Reply) { self.decide = decide }

        /// The reply this plan gives `request` (for plans built on other plans).
        public func reply(to request: Request) -> Reply { decide(request) }

        /// Answers 200 to everything.
        public static let alwaysOK = Plan { _ in .ok }

        /// `replies` in arrival order, then `fallback` for every later request.
        public static func scripted(
            _ replies: [Reply], then fallback: @escaping @Sendable (Request) -> Reply = { _ in .ok }
        )
            -> Plan
        {
            let queue = ScriptQueue(replies)
            return Plan { request in queue.next() ?? fallback(request) }
        }

        /// Faults drawn from a seeded generator: the `attempt`-th request carrying a batch gets one of
        /// `faults` with probability `rate`, else `otherwise`. The draw depends only on the seed, the
        /// batch's messageIds and the attempt number, never on arrival order or timing, so the same
        /// batch meets the same faults in every run with that seed. From attempt `maxFaults` on (the
        /// attempt that a client allowing `maxFaults` retries makes last), the answer is `otherwise`.
        public static func seeded(
            _ seed: UInt64, rate: Double, faults: [Reply], maxFaults: Int, otherwise: Reply = .ok
        ) -> Plan {
            Plan { request in
                guard !faults.isEmpty, request.attempt < maxFaults else { return otherwise }
                var draw = SeededRandom(seed: seed, request.contentKey, request.attempt)
                guard draw.unit() < rate else { return otherwise }
                return faults[Int(draw.unit() * Double(faults.count)) % faults.count]
            }
        }
    }

    /// A scripted list of replies that concurrent requests take from in turn.
    private final class ScriptQueue: Sendable {
        private let replies: NIOLockedValueBox<[Reply]>

        init(_ replies: [Reply]) { self.replies = NIOLockedValueBox(replies) }

        func next() -> Reply? {
            replies.withLockedValue { $0.isEmpty ? nil : $0.removeFirst() }
        }
    }
}

/// A deterministic stream of draws from a seed and a text: FNV-1a over the text, then SplitMix64.
/// (Swift's `Hasher` is seeded per process, so it cannot be used for anything that must repeat.)
public struct SeededRandom: Sendable {
    private var state: UInt64

    public init(seed: UInt64, _ text: String, _ number: Int = 0) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        state = seed ^ hash ^ (UInt64(bitPattern: Int64(number)) &* 0x9e37_79b9_7f4a_7c15)
    }

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state = state &+ 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// A uniform draw in `[0, 1)`.
    public mutating func unit() -> Double { Double(next() >> 11) / Double(UInt64(1) << 53) }

    /// A uniform draw in `range`.
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.upperBound - range.lowerBound + 1))
    }
}
