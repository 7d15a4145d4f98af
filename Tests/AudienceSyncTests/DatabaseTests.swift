import Foundation
import Testing

@testable import AudienceSync

@Suite struct DatabaseTests {
    @Test func createsTheFilePrivatelyInWALMode() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("store.db")
        let database = try Database(path: path)
        try database.execute("CREATE TABLE t (x)")
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        let permissions = (attributes[.posixPermissions] as? NSNumber)?.intValue
        #expect(permissions == 0o600)
        #expect(try database.prepare("PRAGMA journal_mode").scalar() == .text("wal"))
    }

    @Test func bindsAndReadsEveryStorageClass() async throws {
        let directory = try TemporaryDirectory()
        let database = try Database(path: directory.file("store.db"))
        try database.execute("CREATE TABLE t (a, b, c, d, e)")
        let values: [SQLiteValue] = [.integer(-42), .real(2.5), .text("héllo"), .blob([0, 1, 255]), .null]
        try database.prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?)").execute(values)
        try database.prepare("INSERT INTO t VALUES (?, '', NULL, NULL, NULL)").execute([.text("")])
        let rows = try database.prepare("SELECT a, b, c, d, e FROM t ORDER BY rowid").rows()
        #expect(rows.first == values)
        // An empty string stays an empty string, not NULL.
        #expect(rows.last?.first == .text(""))
    }

    /// Functions the program defines for one statement's use: text in and out (empty text stays
    /// text, NULL reads as nil), a failure stops the statement with its message, and defining the
    /// name again replaces the body.
    @Test func definedFunctionsComputeFailAndCanBeRedefined() async throws {
        let directory = try TemporaryDirectory()
        let database = try Database(path: directory.file("store.db"))
        try database.defineFunction("shout", arguments: 2) { call in
            guard let text = call.text(0) else { return call.fail("shout: no text") }
            call.result(text: text.uppercased() + String(call.int64(1)))
        }
        #expect(try database.prepare("SELECT shout('héllo', 7)").scalar() == .text("HÉLLO7"))
        #expect(try database.prepare("SELECT shout('', 0)").scalar() == .text("0"))
        #expect(throws: SQLiteError.self) { try database.prepare("SELECT shout(NULL, 1)").scalar() }
        do {
            _ = try database.prepare("SELECT shout(NULL, 1)").scalar()
        } catch let error as SQLiteError {
            #expect(error.message.contains("shout: no text"))
        }
        try database.defineFunction("shout", arguments: 2) { call in call.result(text: "") }
        #expect(try database.prepare("SELECT shout('x', 1)").scalar() == .text(""))
    }

    @Test func wrongParameterCountIsAnError() async throws {
        let directory = try TemporaryDirectory()
        let database = try Database(path: directory.file("store.db"))
        try database.execute("CREATE TABLE t (x)")
        #expect(throws: SQLiteError.self) { try database.prepare("INSERT INTO t VALUES (?)").execute([1, 2]) }
    }

    @Test func errorsCarryCodeMessageAndSQLButNotValues() async throws {
        let directory = try TemporaryDirectory()
        let database = try Database(path: directory.file("store.db"))
        try database.execute("CREATE TABLE player (score INTEGER NOT NULL)")
        do {
            try database.prepare("INSERT INTO player (score) VALUES (?)").execute([.null])
            Issue.record("expected a constraint error")
        } catch let error as SQLiteError {
            #expect(error.extendedCode == 1299)  // SQLITE_CONSTRAINT_NOTNULL
            #expect(error.description.contains("NOT NULL constraint failed: player.score"))
            #expect(error.description.contains("INSERT INTO player"))
        }
        do {
            try database.prepare("INSERT INTO player (score) VALUES (?)").execute([.text("secret@example.com")])
            try database.execute("CREATE UNIQUE INDEX one ON player(score)")
            try database.prepare("INSERT INTO player (score) VALUES (?)").execute([.text("secret@example.com")])
            Issue.record("expected a unique constraint error")
        } catch let error as SQLiteError {
            #expect(error.primaryCode == 19)
            #expect(!error.description.contains("secret@example.com"))
        }
        #expect(throws: SQLiteError.self) { try database.prepare("SELEC 1") }
    }

    @Test func transactionsRollBackWhenTheBodyThrows() async throws {
        struct Boom: Error {}
        let directory = try TemporaryDirectory()
        let database = try Database(path: directory.file("store.db"))
        try database.execute("CREATE TABLE t (x)")
        #expect(throws: Boom.self) {
            try database.inTransaction {
                try database.prepare("INSERT INTO t VALUES (1)").execute()
                throw Boom()
            }
        }
        #expect(!database.isInTransaction)
        #expect(try database.prepare("SELECT count(*) FROM t").scalar() == .integer(0))
        try database.inTransaction { try database.prepare("INSERT INTO t VALUES (2)").execute() }
        #expect(try database.prepare("SELECT count(*) FROM t").scalar() == .integer(1))
    }

    @Test func migrationsApplyOnceAndRefuseANewerSchema() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("store.db")
        let migrations = ["CREATE TABLE a (x)", "CREATE TABLE b (y)"]
        do {
            let database = try Database(path: path)
            try database.migrate(Array(migrations.prefix(1)))
            #expect(try database.userVersion == 1)
            try database.migrate(migrations)
            #expect(try database.userVersion == 2)
            try database.migrate(migrations)  // idempotent
            #expect(try database.userVersion == 2)
        }
        let database = try Database(path: path)
        #expect(throws: SQLiteError.self) { try database.migrate(Array(migrations.prefix(1))) }
    }

    @Test func readOnlyConnectionsCannotWrite() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("store.db")
        try Database(path: path).execute("CREATE TABLE t (x)")
        let reader = try Database(path: path, mode: .readOnly)
        #expect(throws: SQLiteError.self) { try reader.execute("INSERT INTO t VALUES (1)") }
        #expect(throws: SQLiteError.self) { try Database(path: directory.file("missing.db"), mode: .readOnly) }
    }
}
