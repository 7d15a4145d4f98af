import NIOConcurrencyHelpers
import Prometheus

/// What `GET /metrics` shows (SPEC §11.1), in Prometheus' text format: requests by route and
/// status, messages accepted, duplicate and rejected, bytes received, commit latency, queue depth.
final class CollectorMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let accepted: Counter
    private let duplicates: Counter
    private let rejected: Counter
    private let bytes: Counter
    private let commitSeconds: ValueHistogram
    private let queuedMessages: Gauge
    private let queuedBytes: Gauge
    /// The requests counter of each route and status seen so far: the registry would build the
    /// metric's name and look its labels up again for every request.
    private let requestCounters = NIOLockedValueBox<[RouteStatus: Counter]>([:])

    private struct RouteStatus: Hashable {
        var route: String
        var status: Int
    }

    init() {
        accepted = registry.makeCounter(descriptor: Self.name("messages_accepted", unit: "total", help: "Messages stored (new message ids)."))
        duplicates = registry.makeCounter(descriptor: Self.name("messages_duplicate", unit: "total", help: "Valid messages whose messageId was already stored."))
        rejected = registry.makeCounter(descriptor: Self.name("messages_rejected", unit: "total", help: "Messages refused as invalid."))
        bytes = registry.makeCounter(descriptor: Self.name("request_bytes", unit: "total", help: "Request body bytes received (as sent, before decompression)."))
        commitSeconds = registry.makeValueHistogram(
            descriptor: Self.name("commit", unit: "seconds", help: "Time to write and commit one group of requests."),
            buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
        queuedMessages = registry.makeGauge(descriptor: Self.name("queued", unit: "messages", help: "Messages accepted and waiting for their commit."))
        queuedBytes = registry.makeGauge(descriptor: Self.name("queued", unit: "bytes", help: "Bytes accepted and waiting for their commit."))
    }


    /// `audience_sync_<name>_<unit>`.
    private static func name(_ name: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "audience_sync", subsystem: nil, metricName: name, unitName: unit, helpText: help)
    }

    func request(route: String, status: Int) {
        let key = RouteStatus(route: route, status: status)
        let counter = requestCounters.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = registry.makeCounter(
                descriptor: Self.name("requests", unit: "total", help: "Requests answered, by route and status."),
                labels: [("route", route), ("status", String(status))])
            counters[key] = counter
            return counter
        }
        counter.increment()
    }

    func received(bytes count: Int) { bytes.increment(by: Int64(count)) }

    func messages(accepted: Int, duplicates: Int, rejected: Int) {
        if accepted > 0 { self.accepted.increment(by: Int64(accepted)) }
        if duplicates > 0 { self.duplicates.increment(by: Int64(duplicates)) }
        if rejected > 0 { self.rejected.increment(by: Int64(rejected)) }
    }

    func committed(seconds: Double) { commitSeconds.record(seconds) }

    func queue(messages: Int, bytes: Int) {
        queuedMessages.set(Int64(messages))
        queuedBytes.set(Int64(bytes))
    }

    /// The Prometheus text format.
    func text() -> [UInt8] { registry.emitToBuffer() }
}
