import Crypto
import Testing

@testable import AudienceSync

@Suite struct JSONTests {
    private func validate(_ text: String) throws -> JSONKind {
        var text = text
        return try text.withUTF8 { bytes in
            var scanner = JSONScanner(bytes)
            return try scanner.validateDocument()
        }
    }

    @Test(arguments: [
        ("{}", JSONKind.object), ("[]", .array), ("\"x\"", .string), ("0", .number), ("-1.5e+10", .number),
        ("true", .bool), ("null", .null), (" {\"a\": [1, {\"b\": null}], \"c\": \"\\u00e9\\n\"} ", .object),
        ("\"héllo → 😀\"", .string), ("[\"\\ud83d\\ude00\"]", .array),
    ])
    func acceptsValidJSON(text: String, kind: JSONKind) async throws {
        #expect(try validate(text) == kind)
    }

    @Test(arguments: [
        "", "{", "{\"a\"}", "{\"a\":}", "{a:1}", "[1,]", "{\"a\":1,}", "01", "1.", "-", "+1", ".5", "1e", "tru",
        "nul", "\"unterminated", "\"bad \\x escape\"", "\"tab\there\"", "{} {}", "[1 2]", "NaN", "'single'",
        "\"\\u12\"",
    ])
    func refusesInvalidJSON(text: String) {
        #expect(throws: JSONSyntaxError.self) { try validate(text) }
    }

    @Test func refusesInvalidUTF8AndDeepNesting() {
        var bytes: [UInt8] = Array("\"a".utf8) + [0xC3] + Array("\"".utf8)
        #expect(throws: JSONSyntaxError.self) {
            try bytes.withUnsafeBufferPointer { bytes in
                var scanner = JSONScanner(bytes)
                return try scanner.validateDocument()
            }
        }
        bytes = Array("\"".utf8) + [0xED, 0xA0, 0x80] + Array("\"".utf8)  // an encoded surrogate
        #expect(throws: JSONSyntaxError.self) {
            try bytes.withUnsafeBufferPointer { bytes in
                var scanner = JSONScanner(bytes)
                return try scanner.validateDocument()
            }
        }
        let deep = String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)
        #expect(throws: JSONSyntaxError.self) { try validate(deep) }
    }

    @Test func errorsGiveTheColumn() {
        do {
            _ = try validate("{\"a\": tru}")
            Issue.record("expected an error")
        } catch let error as JSONSyntaxError {
            #expect(error.offset == 6)
            #expect(error.description.hasSuffix("at column 7"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func scansTopLevelMembersAsRanges() async throws {
        var text = "{\"type\": \"track\", \"user\\u0049d\": \"u1\", \"n\": 5, \"o\": {\"x\": [1]}}"
        try text.withUTF8 { bytes in
            var scanner = JSONScanner(bytes)
            var members: [JSONMember] = []
            try scanner.scanObjectDocument(into: &members)
            #expect(members.count == 4)
            #expect(JSONScanner.key(members[0], in: bytes, equals: "type"))
            #expect(JSONScanner.decodeString(members[0].value.dropFirst().dropLast(), in: bytes, escaped: false) == "track")
            #expect(JSONScanner.key(members[1], in: bytes, equals: "userId"))
            #expect(members[2].kind == .number)
            #expect(members[3].kind == .object)
            #expect(String(decoding: UnsafeBufferPointer(rebasing: bytes[members[3].whole]), as: UTF8.self) == "\"o\": {\"x\": [1]}")
        }
        var array = "[1, 2]"
        array.withUTF8 { bytes in
            var scanner = JSONScanner(bytes)
            var members: [JSONMember] = []
            #expect(throws: JSONScanner.NotAnObject.self) { try scanner.scanObjectDocument(into: &members) }
        }
    }

    /// Strings are scanned eight bytes at a time until a byte needs attention: put each kind of such
    /// byte at every position of the first words, and check where the string ends and whether it is valid.
    @Test func stringScanFindsSpecialBytesAtEveryOffset() async throws {
        func scan(_ bytes: [UInt8]) throws -> (end: Int, escaped: Bool) {
            try bytes.withUnsafeBufferPointer { buffer in
                var scanner = JSONScanner(buffer)
                var members: [JSONMember] = []
                try scanner.scanObjectDocument(into: &members)
                return (members[0].value.upperBound, members[0].valueIsEscaped)
            }
        }
        let prefix = Array("{\"k\":\"".utf8)
        // More text after the string, so that the eight-byte words reach past its closing quote.
        let suffix = Array(",\"z\":\"0123456789abcdef\"}".utf8)
        for offset in 0..<20 {
            let before = [UInt8](repeating: UInt8(ascii: "a"), count: offset)
            let after = [UInt8](repeating: UInt8(ascii: "b"), count: 11)
            // The closing quote.
            var bytes = prefix + before + [0x22] + suffix
            #expect(try scan(bytes) == (prefix.count + offset + 1, false))
            // Escapes, a 2- and a 4-byte UTF-8 sequence, and bytes next to the special ones (0x1F/0x20, 0x7F).
            for special in [
                Array("\\\"".utf8), Array("\\n".utf8), Array("\\u00e9".utf8), [0xC3, 0xA9], [0xF0, 0x9F, 0x98, 0x80],
                [0x20, 0x7F, 0x21, 0x23, 0x5B, 0x5D],
            ] {
                bytes = prefix + before + special + after + [0x22] + suffix
                let escaped = special.first == UInt8(ascii: "\\")
                #expect(try scan(bytes) == (prefix.count + offset + special.count + after.count + 1, escaped))
            }
            // Refused: a control character, invalid UTF-8, an unterminated string.
            for bad in [[0x1F], [0x0A], [0x00], [0xC3, 0x28], [0xFF], [0x80]] as [[UInt8]] {
                bytes = prefix + before + bad + after + [0x22] + suffix
                #expect(throws: JSONSyntaxError.self) { try scan(bytes) }
            }
            bytes = prefix + before + after
            #expect(throws: JSONSyntaxError.self) { try scan(bytes) }
        }
    }

    @Test func decodesEscapes() async throws {
        let value = try JSONValue.parse("\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\"")
        #expect(value == .string("a\"b\\c/d\né😀"))
    }

    @Test func canonicalFormIgnoresKeyOrderAndWhitespace() async throws {
        let a = try JSONValue.parse("{\"b\": 1, \"a\": {\"y\": [true, null], \"x\": \"s\"}}")
        let b = try JSONValue.parse("{ \"a\" : { \"x\" : \"s\", \"y\" : [ true , null ] } , \"b\" : 1 }")
        #expect(a.canonicalBytes == b.canonicalBytes)
        #expect(String(decoding: a.canonicalBytes, as: UTF8.self) == "{\"a\":{\"x\":\"s\",\"y\":[true,null]},\"b\":1}")
        let c = try JSONValue.parse("{\"b\": 2, \"a\": {\"y\": [true, null], \"x\": \"s\"}}")
        #expect(a.canonicalBytes != c.canonicalBytes)
    }

    /// Derived message ids hash the canonical form, so it must never change: repeated keys (the last
    /// wins), keys in code-point order (not by their UTF-16 or locale order), escapes as written.
    @Test func canonicalFormIsPinned() async throws {
        let value = try JSONValue.parse(
            #"{"é":1,"z":{"b":2,"a":[{"y":null,"x":"q\"\n\u0001"}],"b":3},"Z":true,"😀":"s","\uff61":0,"a":-1.50e3,"z2":"\u00e9"}"#)
        #expect(
            String(decoding: value.canonicalBytes, as: UTF8.self)
                == #"{"Z":true,"a":-1.50e3,"z":{"a":[{"x":"q\"\n\u0001","y":null}],"b":3},"z2":"é","é":1,"｡":0,"😀":"s"}"#)
        #expect(
            MessageValidator.derivedMessageId(body: .rebuilt(value.canonicalBytes), in: UnsafeBufferPointer(start: nil, count: 0))
                == "derived-" + String(Hex.string(SHA256.hash(data: value.canonicalBytes)).prefix(32)))
    }

    @Test func writesStringsThatParseBack() async throws {
        let original = JSONValue.object(["k\"ey": .string("line\nbreak\t\u{01}\\ \"q\" é"), "n": .int(-3)])
        #expect(try JSONValue.parse(original.jsonString) == original)
    }

    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
    ])
    func sha256Vectors(input: String, digest: String) {
        #expect(Hex.string(SHA256.hash(data: Array(input.utf8))) == digest)
    }

    /// Inputs around the 64-byte block and 56-byte padding boundaries, hashed whole and fed in pieces
    /// (digests from another SHA-256 implementation).
    @Test(arguments: [
        (0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (1, "ca358758f6d27e6cf45272937977a748fd88391db679ceda7dc7bf1f005ee879"),
        (55, "8aa994584139d128848eeebc4e815639ba5ab6e6e39574195a63ac4f14f7c43b"),
        (56, "ad574708f75c044c9b85de64cb568ee7711ff4f36448c6242f053ba8f6cc2b63"),
        (57, "5b46e502092be01b1100193e089fdda95638c12e19a1d24f308eb2c3d3ae849d"),
        (63, "280ed3e8ff1df845b2e7dfe6ac6cee817bef20e783cc65abc41b818b4d2fe076"),
        (64, "c6ab9724ade5b6a7a1edfffb12f3aa9181351355af8fd08c919952ad211339dd"),
        (65, "788367c73c7ddf4c53f65e68cc0d943e6227ab55b0e78ba63ace822b1c6301c0"),
        (119, "3d610547d68216dedf7435a4fb6260353911f6b3fd3f18805ddb8be285d726fe"),
        (120, "1f80156a804cb7862ad113e8200e9d74499723e7c7854d5f48776d3148e09656"),
        (127, "192409cd280e14b743642ad1343fbd3e82d9305de72c078117745a679210cc3d"),
        (128, "cc548ca2dec1f6fe4f58b2e27aa9c7521607df1130d140b55a4dad0665302356"),
        (1000, "5097e7d587352f5097062ae679f37bda5802d9f875aba14c8cb4d1a188ada179"),
    ])
    func sha256AtBlockBoundaries(length: Int, digest: String) {
        let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        #expect(Hex.string(SHA256.hash(data: bytes)) == digest)
        for piece in [1, 7, 63, 64, 65] {
            var hasher = SHA256()
            for start in stride(from: 0, to: length, by: piece) {
                hasher.update(data: bytes[start..<min(start + piece, length)])
            }
            let hex = hasher.finalize().map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
            #expect(hex.joined() == digest, "in pieces of \(piece)")
        }
        // A copy of a hasher part way through goes on from the same state, apart from the original
        // (the messageIds of a sync copy the hashed text every change shares).
        var original = SHA256()
        original.update(data: bytes.prefix(length / 2))
        var copy = original
        original.update(data: [0xFF])
        copy.update(data: bytes.dropFirst(length / 2))
        #expect(Hex.string(copy.finalize()) == digest)
        #expect(Hex.string(original.finalize()) != digest)
    }

    @Test func sha256OfAMillionAs() {
        #expect(
            Hex.string(SHA256.hash(data: [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func hexSpellsBytesInLowercaseWithAPrefixAndACut() {
        let bytes: [UInt8] = [0x00, 0x09, 0x0A, 0x7F, 0xA5, 0xFF]
        #expect(Hex.string(bytes) == "00090a7fa5ff")
        #expect(Hex.string(prefix: "as-7-", bytes, digits: 5) == "as-7-00090")
        #expect(Hex.string(prefix: "é-", bytes, digits: 100) == "é-00090a7fa5ff")
        #expect(Hex.string(prefix: "x", [UInt8](), digits: 0) == "x")
    }
}
