import Foundation
import Testing

@testable import AudienceSync

@Suite struct LineReaderTests {
    enum Read: Equatable, CustomStringConvertible {
        case text(String)
        case tooLong

        var description: String {
            switch self {
            case .text(let text): return "text(\(text.debugDescription))"
            case .tooLong: return "tooLong"
            }
        }
    }

    /// Every line of `bytes`, read through a file with the given chunk size and limit, with its line number.
    private func read(_ bytes: [UInt8], chunkSize: Int, maximumLineLength: Int = LineReader.maximumLineLength) throws
        -> [(Read, Int)]
    {
        let directory = try TemporaryDirectory()
        let path = directory.file("input.ndjson")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let descriptor = open(path, O_RDONLY)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var reader = LineReader(descriptor: descriptor, chunkSize: chunkSize, maximumLineLength: maximumLineLength)
        defer { reader.deallocate() }
        var lines: [(Read, Int)] = []
        while let line = try reader.next() {
            switch line {
            case .text(let text): lines.append((.text(String(decoding: text, as: UTF8.self)), reader.lineNumber))
            case .tooLong: lines.append((.tooLong, reader.lineNumber))
            }
        }
        #expect(reader.bytesRead == bytes.count)
        return lines
    }

    private func texts(_ text: String, chunkSize: Int) throws -> [String] {
        try read(Array(text.utf8), chunkSize: chunkSize).map { line, _ in
            if case .text(let text) = line { return text }
            return "(too long)"
        }
    }

    /// Chunk sizes smaller than, equal to and larger than the lines, so that lines and line ends
    /// fall across chunk boundaries in every position.
    @Test(arguments: [1, 2, 3, 4, 5, 7, 8, 16, 64, 4096])
    func linesAcrossChunkBoundaries(chunkSize: Int) async throws {
        let lines = ["{\"a\":1}", "", "héllo → 😀", "x", String(repeating: "long ", count: 20), "end"]
        #expect(try texts(lines.joined(separator: "\n") + "\n", chunkSize: chunkSize) == lines)
        #expect(try texts(lines.joined(separator: "\r\n") + "\r\n", chunkSize: chunkSize) == lines)
        // No newline after the last line.
        #expect(try texts(lines.joined(separator: "\n"), chunkSize: chunkSize) == lines)
        #expect(try texts(lines.joined(separator: "\r\n"), chunkSize: chunkSize) == lines)
    }

    @Test(arguments: [1, 4, 4096])
    func lineNumbersCountEveryLine(chunkSize: Int) async throws {
        let lines = try read(Array("a\n\nb\r\n\r\nc".utf8), chunkSize: chunkSize)
        #expect(lines.map(\.1) == [1, 2, 3, 4, 5])
        #expect(lines.map(\.0) == [.text("a"), .text(""), .text("b"), .text(""), .text("c")])
    }

    @Test(arguments: [1, 4096])
    func emptyInputHasNoLines(chunkSize: Int) async throws {
        #expect(try read([], chunkSize: chunkSize).isEmpty)
    }

    @Test func aSingleNewlineIsOneEmptyLine() async throws {
        #expect(try texts("\n", chunkSize: 8) == [""])
        #expect(try texts("\r\n", chunkSize: 8) == [""])
    }

    /// Only a CR right before the LF (or at the very end) is a line end; one inside a line is kept.
    @Test func onlyTheCarriageReturnOfALineEndIsRemoved() async throws {
        #expect(try texts("a\rb\r\nc\r\r\n", chunkSize: 3) == ["a\rb", "c\r"])
    }

    @Test(arguments: [1, 2, 3, 4096])
    func aByteOrderMarkIsRemovedFromTheFirstLineOnly(chunkSize: Int) async throws {
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        let lines = try read(bom + Array("a\n".utf8) + bom + Array("b\n".utf8), chunkSize: chunkSize)
        #expect(lines.map(\.0) == [.text("a"), .text("\u{FEFF}b")])
        #expect(try read(bom, chunkSize: chunkSize).map(\.0) == [.text("")])
    }

    /// Lines over the limit are reported as too long, wherever the chunks fall, and reading goes on.
    @Test(arguments: [1, 3, 4, 8, 64])
    func linesOverTheLimitAreTooLong(chunkSize: Int) async throws {
        let limit = 10
        let exact = String(repeating: "x", count: limit)
        let over = String(repeating: "y", count: limit + 1)
        let far = String(repeating: "z", count: limit * 7 + 3)
        let text = [exact, over, "ok", far, exact].joined(separator: "\n") + "\n" + over
        let lines = try read(Array(text.utf8), chunkSize: chunkSize, maximumLineLength: limit)
        #expect(lines.map(\.0) == [.text(exact), .tooLong, .text("ok"), .tooLong, .text(exact), .tooLong])
        #expect(lines.map(\.1) == [1, 2, 3, 4, 5, 6])
    }
}
