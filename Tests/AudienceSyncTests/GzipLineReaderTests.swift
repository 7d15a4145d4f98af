import Foundation
import SharedTestSupport
import Testing

@testable import AudienceSync

/// gzip input (SPEC §3.1): recognised by its first bytes whatever its name, inflated while it is
/// read, members one after another read as one stream; a truncated or corrupt stream is an error
/// naming the line reached, after every line before it has been returned.
@Suite struct GzipLineReaderTests {
    /// What reading gave: the lines, with their numbers, and the error that ended it (if any).
    struct Reading {
        var lines: [String] = []
        var numbers: [Int] = []
        var error: AudienceSyncError?
        var bytesRead = 0
    }

    /// Reads `bytes` through a file with the given chunk size.
    private func read(_ bytes: [UInt8], chunkSize: Int = 4 << 20) throws -> Reading {
        let directory = try TemporaryDirectory()
        let path = directory.file("input")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let descriptor = open(path, O_RDONLY)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        return try read(descriptor: descriptor, chunkSize: chunkSize)
    }

    private func read(descriptor: Int32, chunkSize: Int) throws -> Reading {
        var reader = LineReader(descriptor: descriptor, chunkSize: chunkSize)
        defer { reader.deallocate() }
        var reading = Reading()
        do {
            while let line = try reader.next() {
                guard case .text(let text) = line else {
                    Issue.record("a line too long at \(reader.lineNumber)")
                    continue
                }
                reading.lines.append(String(decoding: text, as: UTF8.self))
                reading.numbers.append(reader.lineNumber)
            }
        } catch let error as AudienceSyncError {
            reading.error = error
        }
        reading.bytesRead = reader.bytesRead
        return reading
    }

    /// The lines of `text` as the plain reader gives them.
    private func plainLines(_ text: String) throws -> [String] {
        let reading = try read(Array(text.utf8))
        #expect(reading.error == nil)
        return reading.lines
    }

    /// Deterministic NDJSON-like lines of varied lengths (some over a small chunk), `count` of them.
    static func sampleLines(_ count: Int, seed: UInt64 = 7) -> [String] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { index in
            let padding = String(repeating: "abcdefghij", count: random.below(40))
            return #"{"type":"track","userId":"u\#(random.below(1000))","event":"E\#(index)","p":"\#(padding)"}"#
        }
    }

    static let mixedText = ["{\"a\":1}", "", "héllo → 😀", "x", String(repeating: "long ", count: 20), "end"]
        .joined(separator: "\r\n")

    /// Chunk sizes smaller than, equal to and larger than the lines and the stream, so that
    /// lines, line ends and the gzip header fall across reads in every position.
    @Test(arguments: [1, 2, 3, 5, 7, 16, 64, 4096])
    func gzipGivesTheLinesOfThePlainText(chunkSize: Int) async throws {
        let bom = "\u{FEFF}"
        for text in [Self.mixedText, Self.mixedText + "\r\n", bom + "a\nb\n", "\n", "one line, no end"] {
            let compressed = gzip(text)
            let reading = try read(compressed, chunkSize: chunkSize)
            #expect(reading.error == nil)
            #expect(reading.lines == (try plainLines(text)), "\(text.debugDescription)")
            #expect(reading.numbers == Array(1..<(reading.lines.count + 1)))
            // Progress counts the bytes read from the file: the compressed ones.
            #expect(reading.bytesRead == compressed.count)
        }
    }

    @Test func aLargeInputReadInSmallChunksGivesTheSameLines() async throws {
        let lines = Self.sampleLines(20_000)
        let text = lines.joined(separator: "\n") + "\n"
        let compressed = gzip(text, level: 9)
        #expect(compressed.count < text.utf8.count / 4, "the sample compresses: reads return many lines each")
        for chunkSize in [97, 4096, 4 << 20] {
            let reading = try read(compressed, chunkSize: chunkSize)
            #expect(reading.error == nil)
            #expect(reading.lines == lines, "chunk size \(chunkSize)")
            #expect(reading.numbers.last == lines.count)
        }
    }

    /// A line far longer than a read is put together from many inflated pieces.
    @Test(arguments: [8, 100, 4096])
    func aLineSplitAcrossInflatedPiecesIsWhole(chunkSize: Int) async throws {
        let long = String((0..<50_000).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) })
        let text = "first\n" + long + "\nlast"
        let reading = try read(gzip(text), chunkSize: chunkSize)
        #expect(reading.error == nil)
        #expect(reading.lines == ["first", long, "last"])
    }

    /// `cat a.gz b.gz` is one stream: a line may even start in one member and end in the next.
    @Test(arguments: [1, 3, 64, 4096])
    func membersOneAfterAnotherAreOneStream(chunkSize: Int) async throws {
        let members = gzip("a1\na2\npar") + gzip("") + gzip("tial\nb1\n") + gzip("c1\nc2", level: 0)
        let reading = try read(members, chunkSize: chunkSize)
        #expect(reading.error == nil)
        #expect(reading.lines == ["a1", "a2", "partial", "b1", "c1", "c2"])
        #expect(reading.numbers == [1, 2, 3, 4, 5, 6])
        #expect(reading.bytesRead == members.count)
    }

    @Test func anEmptyGzipFileHasNoLines() async throws {
        for bytes in [gzip(""), gzip("") + gzip("")] {
            let reading = try read(bytes)
            #expect(reading.error == nil)
            #expect(reading.lines.isEmpty)
        }
    }

    /// Inputs that only start like gzip, or are too short to tell, are read as text.
    @Test func onlyBothMagicBytesMakeGzip() async throws {
        #expect(try read([0x1F]).lines == ["\u{1F}"])
        #expect(try read([0x1F, 0x0A, 0x8B]).lines.count == 2)
        #expect(try read(Array("\u{1F}x\n".utf8)).lines == ["\u{1F}x"])
    }

    /// Cut anywhere, the stream gives the lines wholly inside what is left, then an error naming
    /// the last of them; the partial line after it is not returned.
    @Test func aTruncatedStreamEndsWithAnErrorAfterTheLastWholeLine() async throws {
        let lines = Self.sampleLines(3_000)
        let compressed = gzip(lines.joined(separator: "\n") + "\n")
        var lastCounts: [Int] = []
        for cut in [2, 10, compressed.count / 3, compressed.count / 2, compressed.count - 8, compressed.count - 1] {
            for chunkSize in [61, 4 << 20] {
                let reading = try read(Array(compressed[0..<cut]), chunkSize: chunkSize)
                let count = reading.lines.count
                #expect(reading.lines == Array(lines.prefix(count)), "cut at \(cut)")
                let error = try #require(reading.error, "cut at \(cut)")
                #expect(error.code == .input)
                #expect(error.file == nil, "the ingester names the file")
                let position = count == 0 ? "before its first line" : "after line \(count)"
                #expect(error.message == "gzip stream truncated \(position)")
                if chunkSize == 61 { lastCounts.append(count) }
            }
        }
        #expect(lastCounts.first == 0)
        #expect(lastCounts[2] > 0 && lastCounts[2] < lines.count)
        // Without its 8-byte trailer (CRC and length) every line is there, and it is still an error.
        #expect(lastCounts[4] == lines.count)
        #expect(lastCounts[5] == lines.count)
    }

    /// Flipped bytes inside the compressed data, or in the trailer's CRC, are a corrupt stream.
    @Test func aCorruptStreamEndsWithAnErrorNamingTheLineReached() async throws {
        let lines = Self.sampleLines(3_000)
        let compressed = gzip(lines.joined(separator: "\n") + "\n")
        var middle = compressed
        for offset in (compressed.count / 2)..<(compressed.count / 2 + 4) { middle[offset] ^= 0xFF }
        var crc = compressed
        crc[compressed.count - 8] ^= 0x01
        var header = compressed
        header[3] = 0xE0  // reserved flag bits: not a gzip header zlib accepts
        for (name, bytes) in [("middle", middle), ("crc", crc), ("header", header)] {
            let reading = try read(bytes, chunkSize: 1000)
            let error = try #require(reading.error, "\(name)")
            #expect(error.code == .input)
            let count = reading.lines.count
            let position = count == 0 ? "before its first line" : "after line \(count)"
            #expect(error.message.hasPrefix("gzip stream corrupt \(position): "), "\(name): \(error.message)")
            switch name {
            case "middle": #expect(count > 0 && count < lines.count)
            case "crc":
                #expect(reading.lines == lines, "the data decodes; only its check fails")
                #expect(error.message.hasSuffix("incorrect data check"))
            default: #expect(count == 0)
            }
        }
    }

    @Test func bytesAfterTheLastMemberThatAreNotAMemberAreCorrupt() async throws {
        let reading = try read(gzip("a\nb\n") + Array("c\n".utf8))
        #expect(reading.lines == ["a", "b"])
        #expect(reading.error?.message.hasPrefix("gzip stream corrupt after line 2: ") == true)
    }

    /// Standard input is a pipe, whose reads may return any number of bytes, even one.
    @Test func gzipThroughAPipeIsRead() async throws {
        let lines = Self.sampleLines(500)
        let compressed = gzip(lines.joined(separator: "\n"))
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        let (readEnd, writeEnd) = (ends[0], ends[1])
        let writer = Thread {
            // One byte, then the rest in uneven pieces.
            var offset = 0
            var piece = 1
            while offset < compressed.count {
                let count = min(piece, compressed.count - offset)
                let written = compressed[offset..<(offset + count)].withUnsafeBytes {
                    write(writeEnd, $0.baseAddress, count)
                }
                if written <= 0 { break }
                offset += written
                piece = piece * 3 + 1
            }
            close(writeEnd)
        }
        writer.start()
        defer { close(readEnd) }
        let reading = try read(descriptor: readEnd, chunkSize: 512)
        #expect(reading.error == nil)
        #expect(reading.lines == lines)
        #expect(reading.bytesRead == compressed.count)
    }
}
