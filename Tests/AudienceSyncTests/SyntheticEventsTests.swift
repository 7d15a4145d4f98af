import Foundation
import Testing

@testable import AudienceSync

/// The synthetic generator: deterministic bytes, exact line counts, and messages that are valid
/// per SPEC §3.1 with the mix the demos and benchmarks rely on.
@Suite struct SyntheticEventsTests {
    static let now = Timestamp.parse("2026-11-22T12:00:00Z")!

    /// All output of one run, and the chunks it came in.
    static func run(_ generator: SyntheticEvents) -> (bytes: [UInt8], chunks: [[UInt8]]) {
        var chunks: [[UInt8]] = []
        generator.generate { chunks.append(Array($0)) }
        return (chunks.flatMap { $0 }, chunks)
    }

    /// One generated corpus, parsed once and shared by the tests that only read it.
    struct Corpus: @unchecked Sendable {  // read-only after creation
        let generator: SyntheticEvents
        let lines: [Substring]
        let messages: [[String: Any]]

        init(_ generator: SyntheticEvents) {
            self.generator = generator
            let text = String(decoding: SyntheticEventsTests.run(generator).bytes, as: UTF8.self)
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            if lines.last == "" { lines.removeLast() }
            self.lines = lines
            messages = lines.map { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
            }
        }

        var tracks: [[String: Any]] { messages.filter { $0["type"] as? String == "track" } }

        func events(_ name: String) -> [[String: Any]] { tracks.filter { $0["event"] as? String == name } }
    }

    static let corpus = Corpus(SyntheticEvents(users: 300, events: 20_000, seed: 7, days: 90, now: now))

    @Test func sameArgumentsGiveTheSameBytes() {
        let first = Self.run(SyntheticEvents(users: 50, events: 3_000, seed: 42, now: Self.now)).bytes
        let second = Self.run(SyntheticEvents(users: 50, events: 3_000, seed: 42, now: Self.now)).bytes
        #expect(!first.isEmpty)
        #expect(first == second)
    }

    @Test func anotherSeedOrNowGivesOtherBytes() {
        let base = Self.run(SyntheticEvents(users: 50, events: 3_000, seed: 42, now: Self.now)).bytes
        let otherSeed = Self.run(SyntheticEvents(users: 50, events: 3_000, seed: 43, now: Self.now)).bytes
        let otherNow = Self.run(SyntheticEvents(users: 50, events: 3_000, seed: 42, now: Self.now - 3_600_000)).bytes
        #expect(base != otherSeed)
        #expect(base != otherNow)
    }

    @Test(arguments: [(1, 0), (1, 1), (3, 7), (40, 999), (500, 4_000)])
    func writesExactlyTheRequestedLinesInWholeLineChunks(users: Int, events: Int) {
        let (bytes, chunks) = Self.run(SyntheticEvents(users: users, events: events, now: Self.now))
        #expect(bytes.count(where: { $0 == 0x0A }) == events)
        #expect(bytes.isEmpty == (events == 0))
        if events > 0 { #expect(bytes.last == 0x0A) }
        for chunk in chunks {
            #expect(chunk.last == 0x0A)
        }
        for chunk in chunks.dropLast() {
            #expect(chunk.count >= SyntheticEvents.chunkSize)
        }
    }

    @Test func largeOutputComesInSeveralChunks() {
        let (bytes, chunks) = Self.run(SyntheticEvents(users: 1_000, events: 6_000, now: Self.now))
        #expect(bytes.count > 2 * SyntheticEvents.chunkSize)
        #expect(chunks.count >= 2)
    }

    @Test func everyLineIsAValidSegmentMessage() async throws {
        let corpus = Self.corpus
        let earliest = Self.now - Int64(corpus.generator.days) * 86_400_000
        let types: Set = ["track", "identify", "page", "screen", "group", "alias"]
        #expect(corpus.lines.count == corpus.generator.events)
        for (index, message) in corpus.messages.enumerated() {
            let line = corpus.lines[index]
            #expect(!message.isEmpty, "line \(index + 1) is not a JSON object: \(line)")
            let type = message["type"] as? String ?? ""
            #expect(types.contains(type), "line \(index + 1): type \(type)")
            let userId = message["userId"] as? String ?? ""
            let anonymousId = message["anonymousId"] as? String ?? ""
            #expect(!userId.isEmpty || !anonymousId.isEmpty, "line \(index + 1) names no one: \(line)")
            if type == "track" {
                #expect(!(message["event"] as? String ?? "").isEmpty, "line \(index + 1): track without event")
            }
            if type == "alias" {
                #expect(!userId.isEmpty && !(message["previousId"] as? String ?? "").isEmpty)
            }
            #expect(message["timestamp"] is String, "line \(index + 1) has no timestamp")
            for field in ["timestamp", "sentAt", "receivedAt"] {
                guard let value = message[field] else { continue }
                let time = try #require(Timestamp.parse(value as? String ?? ""), "line \(index + 1): \(field)")
                #expect(time <= Self.now && time >= earliest, "line \(index + 1): \(field) \(value) out of window")
            }
            let context = message["context"] as? [String: Any] ?? [:]
            let library = context["library"] as? [String: Any] ?? [:]
            #expect(library["name"] is String && library["version"] is String, "line \(index + 1): context.library")
            #expect(context["ip"] is String)
        }
    }

    @Test func timesRoughlyIncreaseThroughTheOutput() {
        let times = Self.corpus.messages.map { Timestamp.parse($0["timestamp"] as? String ?? "") ?? 0 }
        var latest = times.first ?? 0
        for (index, time) in times.enumerated() {
            #expect(time >= latest - 120_000, "line \(index + 1) goes back more than two minutes")
            latest = max(latest, time)
        }
        let span = (times.last ?? 0) - (times.first ?? 0)
        #expect(span > Int64(Self.corpus.generator.days - 1) * 86_400_000)
    }

    @Test func sprigSurveyResponsesHaveEveryPropertyWithItsType() async throws {
        let responses = Self.corpus.events("SDK - Submitted - Survey Response")
        #expect(responses.count > 50)
        var scores: [Int] = []
        var choices: Set<String> = []
        var triggers = (string: 0, null: 0)
        for response in responses {
            #expect(!(response["userId"] as? String ?? "").isEmpty)
            let properties = try #require(response["properties"] as? [String: Any])
            for key in ["surveyName", "question", "questionType", "email"] {
                #expect(!(properties[key] as? String ?? "").isEmpty, "\(key) is not a non-empty string")
            }
            for key in ["surveyId", "visitorId", "oldVisitorId", "responseGroupId"] {
                #expect(Self.isNumber(properties[key]), "\(key) is not a number")
            }
            #expect(Timestamp.parse(properties["createdAt"] as? String ?? "") != nil)
            let attributes = try #require(properties["attributes"] as? [String: Any])
            for key in ["plan", "company", "role"] {
                #expect(attributes[key] is String, "attributes.\(key)")
            }
            switch properties["triggeringEvent"] {
            case is String: triggers.string += 1
            case is NSNull: triggers.null += 1
            default: Issue.record("triggeringEvent is neither a string nor null")
            }
            let context = try #require(response["context"] as? [String: Any])
            let integration = try #require(context["integration"] as? [String: Any])
            #expect(integration["name"] as? String == "Sprig")
            #expect(integration["version"] as? String == "1.0.0")

            switch properties["questionType"] as? String {
            case "nps":
                #expect(properties["question"] as? String == "How likely are you to recommend us?")
                #expect(Self.isNumber(properties["response"]), "an NPS response is a number")
                let score = (properties["response"] as? NSNumber)?.doubleValue ?? -1
                #expect(score == score.rounded() && (0...10).contains(score))
                scores.append(Int(score))
            case "multiplechoice":
                #expect(properties["question"] as? String == "What is your role?")
                let choice = try #require(properties["response"] as? String)
                choices.insert(choice)
            default:
                Issue.record("unexpected questionType \(properties["questionType"] ?? "nil")")
            }
        }
        #expect(triggers.string > 0 && triggers.null > 0)
        #expect(choices.count >= 3)
        // Realistic skew: detractors exist but promoters (9–10) outnumber them.
        let detractors = scores.count(where: { $0 <= 6 })
        let promoters = scores.count(where: { $0 >= 9 })
        #expect(detractors > 0)
        #expect(promoters > detractors)
    }

    @Test func theMixHasEveryKind() async throws {
        let corpus = Self.corpus
        let types = Set(corpus.messages.compactMap { $0["type"] as? String })
        #expect(types.isSuperset(of: ["identify", "track", "page", "alias"]))
        for event in ["Order Completed", "Signed Up", "Product Viewed"] {
            #expect(!corpus.events(event).isEmpty, "no \(event)")
        }

        let orders = corpus.events("Order Completed")
        var currencies: [String: Int] = [:]
        for order in orders {
            let properties = try #require(order["properties"] as? [String: Any])
            #expect(properties["order_id"] is String)
            #expect(Self.isNumber(properties["total"]))
            currencies[properties["currency"] as? String ?? "?", default: 0] += 1
        }
        #expect(Set(currencies.keys) == ["USD", "EUR"])
        #expect(currencies["USD", default: 0] > currencies["EUR", default: 0])

        let identifies = corpus.messages.filter { $0["type"] as? String == "identify" }
        for identify in identifies {
            let traits = try #require(identify["traits"] as? [String: Any])
            #expect(["free", "pro", "enterprise"].contains(traits["plan"] as? String ?? ""))
            for key in ["company", "role", "email", "name"] {
                #expect(traits[key] is String, "traits.\(key)")
            }
        }

        let pages = corpus.messages.filter { $0["type"] as? String == "page" }
        #expect(!pages.isEmpty)
        for page in pages {
            #expect(page["name"] is String)
            let properties = try #require(page["properties"] as? [String: Any])
            #expect(properties["path"] is String && properties["url"] is String && properties["title"] is String)
            let context = try #require(page["context"] as? [String: Any])
            #expect((context["page"] as? [String: Any])?["path"] as? String == properties["path"] as? String)
        }
    }

    @Test func someUsersChangeTraitsLater() {
        var plans: [String: Set<String>] = [:]
        for message in Self.corpus.messages where message["type"] as? String == "identify" {
            guard let user = message["userId"] as? String, let traits = message["traits"] as? [String: Any]
            else { continue }
            plans[user, default: []].insert(traits["plan"] as? String ?? "")
        }
        #expect(plans.values.contains { $0.count > 1 })
    }

    @Test func aSmallShareHasNoMessageIdAndTheOthersAreUnique() {
        let ids = Self.corpus.messages.compactMap { $0["messageId"] as? String }
        let missing = Self.corpus.messages.count - ids.count
        #expect(missing > 0)
        #expect(Double(missing) < 0.05 * Double(Self.corpus.messages.count))
        #expect(Set(ids).count == ids.count)
    }

    @Test func anonymousIdsAreLinkedLaterOrNever() {
        var anonymousOnly: Set<String> = []
        var linked: [String: Set<String>] = [:]
        var aliased = 0
        var nullAnonymous = 0
        for message in Self.corpus.messages {
            let userId = message["userId"] as? String
            if message["anonymousId"] is NSNull { nullAnonymous += 1 }
            if let anonymousId = message["anonymousId"] as? String {
                if let userId {
                    linked[anonymousId, default: []].insert(userId)
                } else {
                    anonymousOnly.insert(anonymousId)
                }
            }
            if message["type"] as? String == "alias", let userId, let previousId = message["previousId"] as? String {
                linked[previousId, default: []].insert(userId)
                aliased += 1
            }
        }
        let laterLinked = anonymousOnly.filter { linked[$0] != nil }
        let neverLinked = anonymousOnly.filter { linked[$0] == nil }
        #expect(!laterLinked.isEmpty)
        #expect(!neverLinked.isEmpty)
        #expect(aliased > 0)
        #expect(nullAnonymous > 0)
        // An anonymous id belongs to one person.
        #expect(linked.values.allSatisfy { $0.count == 1 })
    }

    @Test func someUsersAreMuchMoreActiveThanOthers() {
        var counts: [String: Int] = [:]
        for message in Self.corpus.messages {
            if let user = message["userId"] as? String { counts[user, default: 0] += 1 }
        }
        let sorted = counts.values.sorted()
        let median = sorted[sorted.count / 2]
        #expect(counts.count > Self.corpus.generator.users / 2)
        #expect(sorted.last ?? 0 >= 5 * median)
    }

    @Test(arguments: ["plain", "quote \" here", "back\\slash", "tab\tnew\nline", "\u{1}\u{1F}", "Zoë — 🚀"])
    func escapedStringsRoundTrip(text: String) async throws {
        let json = Data(([0x5B, 0x22] + JSONBytes.escaped(text) + [0x22, 0x5D]) as [UInt8])
        let parsed = try JSONSerialization.jsonObject(with: json) as? [String]
        #expect(parsed == [text])
    }

    /// A JSON number (not a string, not a boolean).
    static func isNumber(_ value: Any?) -> Bool {
        guard let number = value as? NSNumber, !(value is String) else { return false }
        #if canImport(Darwin)
            if CFGetTypeID(number) == CFBooleanGetTypeID() { return false }
        #endif
        return !number.doubleValue.isNaN
    }
}
