import CSQLite

/// A failed SQLite call: the extended result code, SQLite's own message and the SQL.
///
/// Bound values are never part of the description: rows hold user ids and e-mail addresses.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// The extended result code (`SQLITE_CONSTRAINT_UNIQUE`, …).
    public var extendedCode: Int32
    /// SQLite's message (`sqlite3_errmsg`).
    public var message: String
    /// The statement being prepared or run, when there is one.
    public var sql: String?

    public init(extendedCode: Int32, message: String, sql: String? = nil) {
        self.extendedCode = extendedCode
        self.message = message
        self.sql = sql
    }

    /// The error of a call on `connection` that returned `code`, with SQLite's message.
    init(connection: OpaquePointer?, code: Int32, sql: String?) {
        let extended = connection.map { sqlite3_extended_errcode($0) } ?? 0
        self.init(
            extendedCode: extended != 0 ? extended : code,
            message: connection.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code)),
            sql: sql)
    }

    /// The primary result code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT`, …).
    public var primaryCode: Int32 { extendedCode & 0xFF }

    /// Whether the database was locked by another connection (after the busy timeout).
    public var isBusy: Bool { primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED }

    public var description: String {
        var text = "SQLite error \(extendedCode): \(message)"
        if let sql { text += " - while executing `\(sql)`" }
        return text
    }
}
