import CSQLite

/// One call of an SQL function defined with `Database.defineFunction`: its arguments and its result.
public struct SQLFunctionCall {
    let context: OpaquePointer
    let arguments: UnsafeMutablePointer<OpaquePointer?>?
    public let count: Int

    /// Argument `index` (0-based) as text; nil for NULL.
    public func text(_ index: Int) -> String? {
        guard index < count, let value = arguments?[index], sqlite3_value_type(value) != SQLITE_NULL,
            let bytes = sqlite3_value_text(value)
        else { return nil }
        return String(
            decoding: UnsafeRawBufferPointer(start: bytes, count: Int(sqlite3_value_bytes(value))), as: UTF8.self)
    }

    /// Argument `index` (0-based) as an integer (0 for NULL).
    public func int64(_ index: Int) -> Int64 {
        guard index < count, let value = arguments?[index] else { return 0 }
        return sqlite3_value_int64(value)
    }

    /// Sets the result to UTF-8 text (copied).
    public func result(text bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            return sqlite3_result_text(context, "", 0, SQLiteDestructor.transient)
        }
        sqlite3_result_text(context, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), SQLiteDestructor.transient)
    }

    public func result(text: String) {
        var text = text
        text.withUTF8 { result(text: UnsafeRawBufferPointer($0)) }
    }

    /// Fails the statement with `message`.
    public func fail(_ message: String) {
        sqlite3_result_error(context, message, -1)
    }
}

/// The Swift body behind an SQL function, kept alive by SQLite until the function is redefined or
/// the connection closes.
private final class SQLFunctionBody {
    let body: (SQLFunctionCall) -> Void
    init(_ body: @escaping (SQLFunctionCall) -> Void) { self.body = body }
}

extension Database {
    /// Defines (or redefines) the SQL function `name` taking `arguments` arguments on this
    /// connection, computed by `body`. Statements that name it run `body` once per call, on the
    /// caller's thread. `name` is the program's own, never user input.
    public func defineFunction(_ name: String, arguments: Int, _ body: @escaping (SQLFunctionCall) -> Void) throws {
        let box = Unmanaged.passRetained(SQLFunctionBody(body)).toOpaque()
        let code = sqlite3_create_function_v2(
            handle, name, Int32(arguments), SQLITE_UTF8, box,
            { context, count, values in
                guard let context, let data = sqlite3_user_data(context) else { return }
                let function = Unmanaged<SQLFunctionBody>.fromOpaque(data).takeUnretainedValue()
                function.body(SQLFunctionCall(context: context, arguments: values, count: Int(count)))
            },
            nil, nil,
            { data in
                guard let data else { return }
                Unmanaged<SQLFunctionBody>.fromOpaque(data).release()
            })
        guard code == SQLITE_OK else {
            throw SQLiteError(extendedCode: code, message: "cannot define the SQL function \(name)")
        }
    }
}
