/// Validated messages of a run of input lines (or of an HTTP request), copied out of the reader's
/// buffer so that one thread can parse the next lines while another stores these: what an
/// `EventWriter` writes.
///
/// A struct, not a class: it is filled by one task and then handed over whole, and a class's
/// properties would be checked for exclusive access on every append.
public struct StagedBatch: Sendable {
    /// A message whose texts are byte ranges of `arena`, so that they can be bound without copies.
    struct Message: Sendable {
        var type: MessageType
        var time: Int64
        var messageId: Range<Int>
        var userId: Range<Int>?
        var anonymousId: Range<Int>?
        var eventName: Range<Int>?
        /// `alias` only.
        var previousId: Range<Int>?
        /// The message JSON.
        var body: Range<Int>
        /// Numbers (`IdentityNumbers`) of the user, of the link of the anonymous id to the user, and
        /// of an alias' link of its previousId to the user; -1 for none.
        var user: Int32 = -1
        var link: Int32 = -1
        var previousLink: Int32 = -1
    }

    struct NewLink: Sendable {
        var anonymousId: String
        var user: Int32
    }

    struct Rejected: Sendable {
        var error: IngestError
        var input: JSONValue
    }

    /// The bytes of every message body, back to back.
    var arena: [UInt8] = []
    var messages: [Message] = []
    var rejected: [Rejected] = []
    /// Non-blank lines read for this batch, and input bytes consumed up to its end.
    var lines = 0
    var bytes = 0
    /// Set on the last batch of an input when reading failed.
    var failure: (any Error & Sendable)?
    /// When the messages were received: stored with each (`received_at`).
    var receivedAt: Int64
    /// The server's source that sent them (nil: `ingest`).
    var source: String?
    /// The user ids and links first numbered in this batch, in number order.
    var newUsers: [String] = []
    var newLinks: [NewLink] = []
    /// The identity numbering started over before this batch: earlier numbers are void.
    var renumbered = false

    /// A batch with room for `capacity` messages and `arenaBytes` of their texts (by default
    /// `capacity` messages of 768 bytes: an ingest's full batch).
    init(receivedAt: Int64, source: String? = nil, capacity: Int = StagedBatch.capacity, arenaBytes: Int? = nil) {
        self.receivedAt = receivedAt
        self.source = source
        arena.reserveCapacity(arenaBytes ?? capacity * 768)
        messages.reserveCapacity(capacity)
    }

    /// Messages per batch: large enough to amortize the hand-off, small enough to stay in cache.
    static let capacity = 2048

    /// Makes room for `count` more messages whose texts take about `arenaBytes`.
    mutating func reserveCapacity(messages count: Int, arenaBytes: Int) {
        messages.reserveCapacity(messages.count + count)
        arena.reserveCapacity(arena.count + arenaBytes)
    }

    var isFull: Bool { messages.count + rejected.count >= StagedBatch.capacity }

    /// Appends `message`, numbering its user and links with `identities`.
    mutating func append(_ message: ValidMessage, from bytes: UnsafeBufferPointer<UInt8>, identities: inout IdentityNumbers) {
        var staged = stage(message, from: bytes)
        number(&staged, userId: message.userId, anonymousId: message.anonymousId, previousId: message.previousId,
            with: &identities)
        messages.append(staged)
    }

    /// Appends `message` without numbers: `numberIdentities` numbers the batch later.
    mutating func append(_ message: ValidMessage, from bytes: UnsafeBufferPointer<UInt8>) {
        messages.append(stage(message, from: bytes))
    }

    /// `message`'s texts copied into the arena.
    private mutating func stage(_ message: ValidMessage, from bytes: UnsafeBufferPointer<UInt8>) -> Message {
        func store(_ text: String?, in arena: inout [UInt8]) -> Range<Int>? {
            guard let text else { return nil }
            let start = arena.count
            arena.append(contentsOf: text.utf8)
            return start..<arena.count
        }
        let messageId = store(message.messageId, in: &arena)!
        let userId = store(message.userId, in: &arena)
        let anonymousId = store(message.anonymousId, in: &arena)
        let eventName = store(message.eventName, in: &arena)
        let previousId = store(message.previousId, in: &arena)
        let start = arena.count
        switch message.body {
        case .line(let range): arena.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[range]))
        case .rebuilt(let rebuilt): arena.append(contentsOf: rebuilt)
        }
        return Message(
            type: message.type, time: message.time, messageId: messageId, userId: userId,
            anonymousId: anonymousId, eventName: eventName, previousId: previousId, body: start..<arena.count)
    }

    /// Numbers `message`'s user and links: both ids on one message link them; an alias links its
    /// previousId too.
    private mutating func number(
        _ message: inout Message, userId: String?, anonymousId: String?, previousId: String?,
        with identities: inout IdentityNumbers
    ) {
        guard let userId else { return }
        message.user = identities.user(userId, in: &self)
        if let anonymousId, anonymousId != userId {
            message.link = identities.link(anonymousId, user: message.user, in: &self)
        }
        if let previousId, previousId != userId {
            message.previousLink = identities.link(previousId, user: message.user, in: &self)
        }
    }

    /// Back to the batch as staged without numbers, to be numbered again (after a failed commit).
    mutating func forgetIdentityNumbers() {
        for index in messages.indices {
            messages[index].user = -1
            messages[index].link = -1
            messages[index].previousLink = -1
        }
        newUsers.removeAll()
        newLinks.removeAll()
        renumbered = false
    }

    /// Numbers the users and links of a batch staged without numbers (the server's requests, numbered
    /// in the order they are committed), starting the numbering over first when it is full.
    mutating func numberIdentities(with identities: inout IdentityNumbers) {
        if identities.isFull {
            identities.removeAll()
            renumbered = true
        }
        for index in messages.indices {
            var message = messages[index]
            func text(_ range: Range<Int>?) -> String? {
                range.map { String(decoding: arena[$0], as: UTF8.self) }
            }
            number(
                &message, userId: text(message.userId), anonymousId: text(message.anonymousId),
                previousId: text(message.previousId), with: &identities)
            messages[index] = message
        }
    }
}

/// The parsing half of an ingest: reads lines, validates them, and stages the valid messages and
/// the rejections in batches, in input order.
struct LineStager: Sendable {
    var validator: MessageValidator
    var identities: IdentityNumbers
    /// Under `--strict`, once a line is rejected nothing will be stored: stop copying messages.
    var strict: Bool
    var sawRejection = false
    private var members: [JSONMember] = []
    /// Whether the input being read has ended (the last batch was handed out).
    private var inputEnded = false

    init(validator: MessageValidator, strict: Bool, identities: IdentityNumbers) {
        self.validator = validator
        self.strict = strict
        self.identities = identities
    }

    /// Moves the numbering out (to keep it for the next input).
    mutating func takeIdentities() -> IdentityNumbers {
        let taken = identities
        identities = IdentityNumbers(limit: taken.limit)
        return taken
    }

    /// A new batch; the identity numbering starts over first when it has grown too large.
    private mutating func makeBatch() -> StagedBatch {
        var batch = StagedBatch(receivedAt: validator.ingestTime)
        if identities.isFull {
            identities.removeAll()
            batch.renumbered = true
        }
        return batch
    }

    /// The next batch of the input `reader` reads (named `file` in rejections): full, or the last
    /// one, which may be empty; nil once that was handed out. A read error ends the input: the
    /// last batch carries it as its `failure`, with the lines read before it.
    mutating func nextBatch(from reader: inout LineReader, file: String) -> StagedBatch? {
        guard !inputEnded else { return nil }
        var batch = makeBatch()
        do {
            while let line = try reader.next() {
                switch line {
                case .tooLong:
                    batch.lines += 1
                    reject(
                        IngestError(
                            file: file, line: reader.lineNumber,
                            reason: "line longer than \(LineReader.maximumLineLength >> 20) MiB"), input: nil, into: &batch)
                case .text(let bytes):
                    if LineStager.isBlank(bytes) { continue }
                    batch.lines += 1
                    stageLine(bytes, file: file, line: reader.lineNumber, into: &batch)
                }
                if batch.isFull {
                    batch.bytes = reader.bytesRead
                    return batch
                }
            }
        } catch let error as AudienceSyncError {
            batch.failure = error
        } catch {
            batch.failure = AudienceSyncError(.io, "cannot read: \(error)")
        }
        inputEnded = true
        batch.bytes = reader.bytesRead
        return batch
    }

    /// Ready to read another input.
    mutating func startInput() {
        inputEnded = false
    }

    static func isBlank(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
    }

    private mutating func reject(_ error: IngestError, input: UnsafeBufferPointer<UInt8>?, into batch: inout StagedBatch) {
        sawRejection = true
        batch.rejected.append(StagedBatch.Rejected(error: error, input: Ingester.rejectedInput(input)))
    }

    private mutating func accept(
        _ message: ValidMessage, from bytes: UnsafeBufferPointer<UInt8>, into batch: inout StagedBatch
    ) {
        if strict && sawRejection { return }
        batch.append(message, from: bytes, identities: &identities)
    }

    private mutating func stageLine(
        _ bytes: UnsafeBufferPointer<UInt8>, file: String, line: Int, into batch: inout StagedBatch
    ) {
        members.removeAll(keepingCapacity: true)
        var scanner = JSONScanner(bytes)
        do {
            try scanner.scanObjectDocument(into: &members)
        } catch let error as JSONScanner.NotAnObject {
            return reject(
                IngestError(file: file, line: line, reason: "not a JSON object (got \(error.kind))"), input: bytes,
                into: &batch)
        } catch {
            return reject(IngestError(file: file, line: line, reason: "not valid JSON: \(error)"), input: bytes, into: &batch)
        }

        guard let batchMember = members.first(where: { JSONScanner.key($0, in: bytes, equals: "batch") }) else {
            switch validator.validate(members: members, range: 0..<bytes.count, in: bytes) {
            case .success(let message): accept(message, from: bytes, into: &batch)
            case .failure(let rejection):
                reject(IngestError(file: file, line: line, reason: rejection.reason), input: bytes, into: &batch)
            }
            return
        }

        // A /v1/batch envelope: each message is validated on its own.
        guard batchMember.kind == .array else {
            return reject(
                IngestError(
                    file: file, line: line, reason: "'batch' must be an array of messages (got \(batchMember.kind))"),
                input: bytes, into: &batch)
        }
        guard let defaults = EnvelopeDefaults(members: members, in: bytes) else {
            return reject(
                IngestError(file: file, line: line, reason: EnvelopeDefaults.invalidSentAt), input: bytes, into: &batch)
        }
        // The scanner has validated the whole line, so these cannot fail.
        let elements = (try? JSONScanner.elements(of: batchMember.value, in: bytes)) ?? []
        for (index, element) in elements.enumerated() {
            let elementBytes = UnsafeBufferPointer(rebasing: bytes[element.range])
            guard element.kind == .object, let elementMembers = try? JSONScanner.members(of: element.range, in: bytes)
            else {
                reject(
                    IngestError(file: file, line: line, index: index, reason: "not a JSON object (got \(element.kind))"),
                    input: elementBytes, into: &batch)
                continue
            }
            switch validator.validate(members: elementMembers, range: element.range, in: bytes, envelope: defaults) {
            case .success(let message): accept(message, from: bytes, into: &batch)
            case .failure(let rejection):
                reject(
                    IngestError(file: file, line: line, index: index, reason: rejection.reason), input: elementBytes,
                    into: &batch)
            }
        }
    }
}
