/// The SQLite store's schema (SPEC §3, §6), as migrations applied in order, each in a transaction
/// with its bump of `PRAGMA user_version`.
///
/// Tables:
/// - `events`: one row per message; `ts` is event time in epoch milliseconds UTC, `message` the
///   message JSON as received (a batch envelope's `context`/`sentAt` merged in, `writeKey` removed).
/// - `identity_links`: for each (anonymous id, user id) pair, the earliest message linking them
///   (both ids on one message, or an `alias`). The link in force for an anonymous id at a time
///   `now` is its earliest one with `ts <= now` (SPEC §3.2).
/// - `users`: every `userId` with the event time of its first message: the universe of users
///   at `now` is `first_seen <= now`.
/// - the sync state: `snapshots`, `runs`, `outbox`, `outbox_messages`, `outbox_marks`, `pairs`
///   (migrations 2 to 4).
/// - `event_counts`: messages stored per source and day of arrival (migration 5).
enum SQLiteSchema {
    /// The schema, one migration per entry; never edit an entry that has shipped, add one.
    ///
    /// Indexes cost ingest speed, so there are two: `message_id` (deduplication) and
    /// `(event, ts)`, which serves every `performed` condition (event name and time window; the
    /// type is checked on the row, which the query reads anyway for the user and the message).
    /// Anonymous events are resolved through `identity_links`' key, not an index on events.
    static let migrations: [String] = [
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL,
            type TEXT NOT NULL,
            user_id TEXT,
            anonymous_id TEXT,
            event TEXT,
            ts INTEGER NOT NULL,
            received_at INTEGER NOT NULL,
            message TEXT NOT NULL
        );
        CREATE UNIQUE INDEX events_message_id ON events (message_id);
        CREATE INDEX events_by_name ON events (event, ts);
        CREATE TABLE identity_links (
            anonymous_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            ts INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            PRIMARY KEY (anonymous_id, user_id)
        ) WITHOUT ROWID;
        CREATE TABLE users (
            user_id TEXT PRIMARY KEY,
            first_seen INTEGER NOT NULL
        ) WITHOUT ROWID;
        """,
        // Sync state (SPEC §6). Times are epoch milliseconds UTC; values are JSON text.
        // - `snapshots`: what each destination last acknowledged, per (definition key, destination,
        //   user). An audience keeps only its `true` rows; a computed trait a row per user with a value.
        //   The primary key serves the diff's joins.
        // - `outbox`: every message a sync decided to send, with its final bytes, so a rerun after a
        //   crash re-sends the same message (same messageId). `state` moves pending → delivered|failed
        //   (from schema 4, a delivered row may keep 'pending' under its pair's mark: see `outbox_marks`).
        //   `removes` is 1 when acknowledging the change deletes the user's snapshot row (an audience
        //   exit, a computed trait gone), since a trait's value may itself be `false`.
        // - `runs`: one row per synced pair per sync; AUTOINCREMENT so that a run id is never reused
        //   (message ids are derived from it).
        // - `pairs`: when the last completed sync of a pair started (decides due-ness).
        """
        CREATE TABLE snapshots (
            key TEXT NOT NULL,
            destination TEXT NOT NULL,
            user_id TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (key, destination, user_id)
        ) WITHOUT ROWID;
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at INTEGER NOT NULL,
            key TEXT NOT NULL,
            destination TEXT NOT NULL,
            first_sync INTEGER NOT NULL,
            sent INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            outcome TEXT NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'ok', 'partial', 'failed')),
            duration_ms INTEGER
        );
        CREATE INDEX runs_by_pair ON runs (key, destination, id);
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs (id),
            key TEXT NOT NULL,
            destination TEXT NOT NULL,
            user_id TEXT NOT NULL,
            value TEXT NOT NULL,
            removes INTEGER NOT NULL,
            message_id TEXT NOT NULL UNIQUE,
            message TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
            reason TEXT,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE INDEX outbox_by_pair ON outbox (key, destination, state, id);
        CREATE TABLE pairs (
            key TEXT NOT NULL,
            destination TEXT NOT NULL,
            last_synced_at INTEGER NOT NULL,
            PRIMARY KEY (key, destination)
        ) WITHOUT ROWID;
        """,
        // The outbox made cheap to write and to acknowledge (a million messages per first sync of a
        // large audience): the message text moves to `outbox_messages` (same id), so marking a row
        // delivered rewrites a short row, not the message; the pending rows are found through a
        // partial index, which acknowledging only deletes from; `message_id` loses its unique
        // index, a b-tree of random keys the ids' construction (run id + hash) makes redundant;
        // `outbox_by_run` serves a run's counts.
        """
        CREATE TABLE outbox_messages (
            id INTEGER PRIMARY KEY,
            message TEXT NOT NULL
        );
        INSERT INTO outbox_messages (id, message) SELECT id, message FROM outbox ORDER BY id;
        CREATE TABLE outbox_v3 (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs (id),
            key TEXT NOT NULL,
            destination TEXT NOT NULL,
            user_id TEXT NOT NULL,
            value TEXT NOT NULL,
            removes INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
            reason TEXT,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        INSERT INTO outbox_v3 (
            id, run_id, key, destination, user_id, value, removes, message_id, state, reason, created_at, updated_at
        )
        SELECT id, run_id, key, destination, user_id, value, removes, message_id, state, reason, created_at, updated_at
        FROM outbox ORDER BY id;
        DROP TABLE outbox;
        ALTER TABLE outbox_v3 RENAME TO outbox;
        CREATE INDEX outbox_pending ON outbox (key, destination, id) WHERE state = 'pending';
        CREATE INDEX outbox_by_run ON outbox (run_id);
        """,
        // Acknowledging without rewriting each outbox row: a pair's `through_id` says that every
        // outbox row of the pair with an id up to it is resolved, so a row whose `state` still says
        // 'pending' there was delivered (failures are written on their rows as before). Delivery
        // takes the pair's pending rows in id order and moves the mark only over a batch the
        // destination acknowledged whole, so the mark never passes a row that is still owed. Rows
        // written later get larger ids (the outbox's largest id is never deleted), so a mark never
        // covers a row written after it. `outbox_states` shows each row with its effective state.
        """
        CREATE TABLE outbox_marks (
            key TEXT NOT NULL,
            destination TEXT NOT NULL,
            through_id INTEGER NOT NULL,
            PRIMARY KEY (key, destination)
        ) WITHOUT ROWID;
        CREATE VIEW outbox_states AS
        SELECT o.id, o.run_id, o.key, o.destination, o.user_id, o.value, o.removes, o.message_id,
            CASE
                WHEN o.state = 'pending' AND o.id <= coalesce(
                    (SELECT m.through_id FROM outbox_marks m WHERE m.key = o.key AND m.destination = o.destination), 0)
                THEN 'delivered'
                ELSE o.state
            END AS state,
            o.reason, o.created_at, o.updated_at
        FROM outbox o;
        """,
        // Where messages come from (SPEC §11): `events.source` names the server's source that sent a
    // message (NULL: `ingest`), and `event_counts` keeps the messages stored per source and per day
    // of arrival (`received_at`, UTC), kept up by the writer at each commit, so that `status`
    // reads a handful of rows instead of scanning the events. Existing events count for `ingest`.
    """
    ALTER TABLE events ADD COLUMN source TEXT;
    CREATE TABLE event_counts (
        source TEXT NOT NULL,
        day INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (source, day)
    ) WITHOUT ROWID;
    INSERT INTO event_counts (source, day, count)
    SELECT 'ingest', received_at / 86400000, count(*) FROM events GROUP BY received_at / 86400000;
    """,
    ]
}
