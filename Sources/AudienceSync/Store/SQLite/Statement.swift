import CSQLite

/// A prepared statement. Finalized when released; reused by resetting and re-binding.
///
/// Like its `Database`, a statement is not `Sendable`: one owner uses it at a time. It holds no
/// reference to its `Database` (the connection caches statements): SQLite keeps a closed
/// connection alive until its last statement is finalized.
public final class Statement {
    let handle: OpaquePointer
    /// The SQL it was prepared from (for error messages).
    public let sql: String

    init(database: Database, sql: String, persistent: Bool) throws {
        self.sql = sql
        var statement: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        let flags = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let code = sql.withCString { sqlite3_prepare_v3(database.handle, $0, -1, flags, &statement, &tail) }
        guard code == SQLITE_OK, let statement else {
            throw database.error(code: code, sql: sql)
        }
        self.handle = statement
    }

    deinit { sqlite3_finalize(handle) }

    /// The number of `?` parameters.
    public var parameterCount: Int { Int(sqlite3_bind_parameter_count(handle)) }

    // MARK: Binding (1-based indexes, as in SQLite)

    /// Binds `values` to parameters 1…n, after resetting the statement.
    public func bind(_ values: [SQLiteValue]) throws {
        reset()
        guard values.count == parameterCount else {
            throw SQLiteError(
                extendedCode: SQLITE_RANGE,
                message: "\(values.count) values for \(parameterCount) parameters", sql: sql)
        }
        for (offset, value) in values.enumerated() { try bind(value, at: offset + 1) }
    }

    public func bind(_ value: SQLiteValue, at index: Int) throws {
        let code: Int32
        switch value {
        case .null: code = sqlite3_bind_null(handle, Int32(index))
        case .integer(let value): code = sqlite3_bind_int64(handle, Int32(index), value)
        case .real(let value): code = sqlite3_bind_double(handle, Int32(index), value)
        case .text(let value):
            var value = value
            code = value.withUTF8 { bytes in
                sqlite3_bind_text(
                    handle, Int32(index), textPointer(UnsafeRawPointer(bytes.baseAddress)), Int32(bytes.count),
                    SQLiteDestructor.transient)
            }
        case .blob(let value):
            code = value.withUnsafeBytes { bytes in
                sqlite3_bind_blob(handle, Int32(index), bytes.baseAddress, Int32(bytes.count), SQLiteDestructor.transient)
            }
        }
        try check(code)
    }

    /// Binds UTF-8 text from raw bytes, copying them (no `String` is made).
    public func bindText(_ bytes: UnsafeRawBufferPointer, at index: Int) throws {
        try check(
            sqlite3_bind_text(
                handle, Int32(index), textPointer(bytes.baseAddress), Int32(bytes.count), SQLiteDestructor.transient))
    }

    /// Binds UTF-8 text from raw bytes WITHOUT copying them: the bytes must stay valid and unchanged
    /// until the statement has been stepped and re-bound or `clearBindings()` was called.
    public func bindTextNoCopy(_ bytes: UnsafeRawBufferPointer, at index: Int) throws {
        try check(sqlite3_bind_text(handle, Int32(index), textPointer(bytes.baseAddress), Int32(bytes.count), nil))
    }

    /// Sets every parameter to NULL (drops references to bytes bound without copying).
    public func clearBindings() {
        sqlite3_clear_bindings(handle)
    }

    public func bindInt64(_ value: Int64, at index: Int) throws {
        try check(sqlite3_bind_int64(handle, Int32(index), value))
    }

    public func bindNull(at index: Int) throws {
        try check(sqlite3_bind_null(handle, Int32(index)))
    }

    // MARK: Running

    /// Advances to the next row; false when the statement is done.
    @discardableResult
    public func step() throws -> Bool {
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = SQLiteError(connection: sqlite3_db_handle(handle), code: code, sql: sql)
            sqlite3_reset(handle)
            throw error
        }
    }

    /// Resets for another run; bindings stay until re-bound.
    public func reset() {
        sqlite3_reset(handle)
    }

    /// Binds `values`, runs to completion, and returns the number of rows changed.
    @discardableResult
    public func execute(_ values: [SQLiteValue] = []) throws -> Int {
        try bind(values)
        while try step() {}
        return Int(sqlite3_changes(sqlite3_db_handle(handle)))
    }

    /// Binds `values` and calls `body` for each result row.
    public func forEachRow(_ values: [SQLiteValue] = [], _ body: (Row) throws -> Void) throws {
        try bind(values)
        defer { reset() }
        let row = Row(statement: self)
        while try step() { try body(row) }
    }

    /// Binds `values` and returns every row as an array of values.
    public func rows(_ values: [SQLiteValue] = []) throws -> [[SQLiteValue]] {
        var result: [[SQLiteValue]] = []
        try forEachRow(values) { row in result.append((0..<row.count).map { row[$0] }) }
        return result
    }

    /// Binds `values` and returns the first column of the first row (nil when there is no row).
    public func scalar(_ values: [SQLiteValue] = []) throws -> SQLiteValue? {
        var result: SQLiteValue?
        try bind(values)
        defer { reset() }
        if try step() { result = Row(statement: self)[0] }
        return result
    }

    /// A non-null pointer for text: SQLite binds NULL, not "", when given a null pointer.
    private func textPointer(_ base: UnsafeRawPointer?) -> UnsafePointer<CChar> {
        base?.assumingMemoryBound(to: CChar.self) ?? SQLiteDestructor.emptyText
    }

    func check(_ code: Int32) throws {
        guard code == SQLITE_OK else { throw SQLiteError(connection: sqlite3_db_handle(handle), code: code, sql: sql) }
    }
}

/// The current row of a statement; valid only inside the `forEachRow` body.
public struct Row {
    let statement: Statement

    /// The number of columns.
    public var count: Int { Int(sqlite3_column_count(statement.handle)) }

    /// The value of column `index` (0-based).
    public subscript(index: Int) -> SQLiteValue {
        let column = Int32(index)
        switch sqlite3_column_type(statement.handle, column) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement.handle, column))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(statement.handle, column))
        case SQLITE_TEXT: return .text(text(index) ?? "")
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(statement.handle, column))
            guard count > 0, let base = sqlite3_column_blob(statement.handle, column) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: base, count: count)))
        default: return .null
        }
    }

    public func int64(_ index: Int) -> Int64 { sqlite3_column_int64(statement.handle, Int32(index)) }
    public func double(_ index: Int) -> Double { sqlite3_column_double(statement.handle, Int32(index)) }
    public func isNull(_ index: Int) -> Bool { sqlite3_column_type(statement.handle, Int32(index)) == SQLITE_NULL }

    /// Column `index` as UTF-8 bytes, without making a `String`; nil when it is NULL. The bytes are
    /// SQLite's: valid only until the statement steps again or is reset.
    public func textBytes(_ index: Int) -> UnsafeBufferPointer<UInt8>? {
        let column = Int32(index)
        guard let base = sqlite3_column_text(statement.handle, column) else { return nil }
        return UnsafeBufferPointer(start: base, count: Int(sqlite3_column_bytes(statement.handle, column)))
    }

    /// Column `index` as text, or nil when it is NULL.
    public func text(_ index: Int) -> String? {
        let column = Int32(index)
        guard let base = sqlite3_column_text(statement.handle, column) else { return nil }
        let count = Int(sqlite3_column_bytes(statement.handle, column))
        return String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self)
    }
}

/// SQLite's `SQLITE_TRANSIENT` destructor (a C macro Swift does not import): SQLite copies the bytes.
enum SQLiteDestructor {
    static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    /// A zero-length C string that lives for the whole process.
    nonisolated(unsafe) static let emptyText: UnsafePointer<CChar> = {
        let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: 1)
        pointer.pointee = 0
        return UnsafePointer(pointer)
    }()
}
