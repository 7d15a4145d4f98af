import Foundation

/// The JSON documents commands print with `--format json` (SPEC §10): reports are `Encodable` and
/// written by Foundation's `JSONEncoder` on one line, keys sorted so that the bytes are the same
/// from run to run. Times are ISO-8601 UTC strings (`Timestamp.format`).
public enum ReportJSON {
    public static func encode<Report: Encodable>(_ report: Report) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return String(decoding: try encoder.encode(report), as: UTF8.self)
        } catch {
            // Reports hold strings, numbers, booleans and nulls: encoding them cannot fail.
            preconditionFailure("a report could not be encoded: \(error)")
        }
    }
}

/// A table for people: columns padded to their widest cell, two spaces apart, no trailing spaces.
enum TextTable {
    static func render(_ rows: [[String]]) -> [String] {
        guard let width = rows.map(\.count).max() else { return [] }
        let widths = (0..<width).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            var line = ""
            for (column, cell) in row.enumerated() {
                if column > 0 { line += "  " }
                line += cell
                if column < row.count - 1 { line += String(repeating: " ", count: widths[column] - cell.count) }
            }
            while line.last == " " { line.removeLast() }
            return line
        }
    }
}

extension Literal: Encodable {
    /// The value as JSON: numbers, strings, booleans, null, lists.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .null: try container.encodeNil()
        case .list(let values): try container.encode(values)
        }
    }
}
