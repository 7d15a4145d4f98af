import Foundation
import LoopbackReceiver
import Testing

@testable import AudienceSync

/// The test receiver itself: what it records, when it counts a message as acknowledged, and that
/// its seeded faults repeat.
@Suite struct LoopbackReceiverTests {
    func destination(_ receiver: LoopbackReceiver, maxRetries: Int = 3) throws -> SegmentDestination {
        let configuration = DestinationConfiguration(
            name: "segment", kind: .segment, endpoint: receiver.url("/v1/batch"), timeout: 2, maxRetries: maxRetries,
            concurrency: 1, rateLimit: 10_000)
        return try SegmentDestination(
            configuration: configuration, writeKey: "wk", hooks: testHooks(RecordedSleeps()), logger: silentLogger)
    }

    @Test func aMessageIsAcknowledgedOnlyByA2xxAnswer() async throws {
        let refuseM3: @Sendable (LoopbackReceiver.Request) -> LoopbackReceiver.Reply = {
            $0.messages.first?.messageId == "m-3" ? .status(400) : .ok
        }
        try await LoopbackReceiver.with(replies: [.status(500), .drop], fallback: refuseM3) { receiver in
            let segment = try destination(receiver)
            let first = try await segment.deliver([outbound(1), outbound(2)])
            #expect(first == [.acknowledged, .acknowledged])
            let refused = try await segment.deliver([outbound(3)])
            #expect(refused.count == 1 && refused.first != .acknowledged)
            let second = try await segment.deliver([outbound(4)])
            await segment.close()
            #expect(second == [.acknowledged])

            let requests = receiver.requests
            #expect(requests.map(\.status) == [500, nil, 200, 400, 200])
            #expect(requests.map(\.attempt) == [0, 1, 2, 0, 0])
            #expect(requests[0].messages.map(\.messageId) == ["m-1", "m-2"])
            #expect(requests[0].messages.map(\.userId) == ["u_1", "u_2"])
            #expect(requests[0].messages.first?.text == outbound(1).body)
            #expect(receiver.acknowledgedMessages.map(\.messageId) == ["m-1", "m-2", "m-4"])
            #expect(receiver.acknowledgedMessageCount == 3 && receiver.requestCount == 5)
        }
    }

    @Test func aHeldAnswerCountsOnceItsStatusLineIsOut() async throws {
        try await LoopbackReceiver.with(replies: [.headThenStall(200)]) { receiver in
            let segment = try destination(receiver)
            let delivery = Task { try await segment.deliver([outbound(1)]) }
            var polls = 0
            while receiver.stalledCount == 0 && polls < 1_000 {
                try await Task.sleep(for: .milliseconds(5))
                polls += 1
            }
            #expect(receiver.acknowledgedMessages.map(\.messageId) == ["m-1"])
            #expect(receiver.releaseStalled() == 1)
            #expect(try await delivery.value == [.acknowledged])
            await segment.close()
            #expect(receiver.requests.count == 1)
        }
    }

    @Test func aStallReleasedWithAnAnswerIsAnswered() async throws {
        try await LoopbackReceiver.with(replies: [.stall]) { receiver in
            let segment = try destination(receiver)
            let delivery = Task { try await segment.deliver([outbound(1)]) }
            var polls = 0
            while receiver.stalledCount == 0 && polls < 1_000 {
                try await Task.sleep(for: .milliseconds(5))
                polls += 1
            }
            #expect(receiver.acknowledgedMessages.isEmpty)
            #expect(receiver.releaseStalled(with: .ok) == 1)
            #expect(try await delivery.value == [.acknowledged])
            await segment.close()
            #expect(receiver.acknowledgedMessages.map(\.messageId) == ["m-1"])
        }
    }

    @Test func seededFaultsDependOnTheBatchAndAttemptOnly() {
        let faults: [LoopbackReceiver.Reply] = [.status(500), .drop, .tooManyRequests(retryAfter: "0")]
        let plan = LoopbackReceiver.Plan.seeded(7, rate: 0.5, faults: faults, maxFaults: 2)
        let other = LoopbackReceiver.Plan.seeded(7, rate: 0.5, faults: faults, maxFaults: 2)
        func request(_ ids: [String], attempt: Int, index: Int) -> LoopbackReceiver.Request {
            let body = #"{"batch":["# + ids.map { #"{"messageId":"\#($0)"}"# }.joined(separator: ",") + "]}"
            var request = LoopbackReceiver.Request(
                index: index, method: "POST", uri: "/v1/batch", headers: [], body: Array(body.utf8))
            request.attempt = attempt
            return request
        }
        var faulted = 0
        for batch in 0..<200 {
            let ids = ["m-\(batch)-a", "m-\(batch)-b"]
            for attempt in 0..<3 {
                let reply = plan.reply(to: request(ids, attempt: attempt, index: batch))
                #expect(reply.label == other.reply(to: request(ids, attempt: attempt, index: 999)).label)
                if attempt == 2 { #expect(reply.label == "200") } else if reply.label != "200" { faulted += 1 }
            }
        }
        #expect(faulted > 120 && faulted < 280)  // about half of 400 attempts
    }

    @Test func theBatchBodyIsSplitIntoTheExactMessages() {
        let messages = [
            #"{"messageId":"a","traits":{"k":"x\"]},{"}}"#, #"{"messageId":"b","userId":"zoë","n":[1,{"d":[]}]}"#,
            #"{"messageId":"c"}"#,
        ]
        let body = #"{"sentAt":"2026-11-22T12:00:00.000Z", "batch" : [ "# + messages.joined(separator: " ,\n") + " ] }"
        let request = LoopbackReceiver.Request(index: 0, method: "POST", uri: "/", headers: [], body: Array(body.utf8))
        #expect(request.messages.map(\.text) == messages)
        #expect(request.messages.map(\.messageId) == ["a", "b", "c"])
        #expect(request.messages[1].userId == "zoë")
        #expect(request.messageCount == 3)
        let notABatch = LoopbackReceiver.Request(
            index: 0, method: "POST", uri: "/", headers: [], body: Array(#"{"userId":"u","attributes":{}}"#.utf8))
        #expect(notABatch.messages.isEmpty && notABatch.messageCount == 0)
    }
}
