import PostgresNIO

extension PostgresStore {
    /// The sync lock as this process holds it: the connection that took it, and its backend.
    struct SyncLockHolder: Sendable {
        var connection: PostgresConnection
        var backend: Int32
        var key: Int64
    }

    /// The sync lock of a PostgreSQL store (SPEC §12): a session advisory lock on a key derived
    /// from the schema (`lockKey`), taken with `pg_try_advisory_lock` on a connection held for the
    /// whole of `body`. Syncs on any host that use the same schema exclude each other; a holder
    /// that dies loses the lock with its connection, so there is never a stale lock to clear.
    ///
    /// While `body` runs, every write of the sync state first checks, in its transaction, that
    /// the lock is still held (`checkSyncLock`): a sync whose lock connection was lost — cut, or its
    /// backend terminated — stops at its next write with an error, recording nothing more, since
    /// another sync may hold the lock by then; what it had not recorded is finished by the next run.
    public func withSyncLock<T>(_ body: () async throws -> T) async throws -> T {
        let key = Self.lockKey(schema: target.schema, purpose: "sync")
        do {
            return try await client.withConnection { connection in
                var bindings = PostgresBindings()
                bindings.append(key)
                var taken = false
                var backend: Int32 = 0
                for try await row in try await connection.query(
                    PostgresQuery(unsafeSQL: "SELECT pg_try_advisory_lock($1), pg_backend_pid()", binds: bindings),
                    logger: logger)
                {
                    (taken, backend) = try row.decode((Bool, Int32).self)
                }
                guard taken else {
                    throw AudienceSyncError(.locked, "\(location): another sync holds the lock of this store")
                }
                syncLockHolder.withLockedValue {
                    $0 = SyncLockHolder(connection: connection, backend: backend, key: key)
                }
                defer { syncLockHolder.withLockedValue { $0 = nil } }
                // A query on a connection that has closed is never answered (postgres-nio drops it),
                // so the lock is given back only while its connection is open; a closed one has
                // lost the lock already.
                do {
                    let result = try await body()
                    guard !connection.isClosed else { throw lockLost }
                    try await connection.query(
                        PostgresQuery(unsafeSQL: "SELECT pg_advisory_unlock($1)", binds: bindings), logger: logger)
                    return result
                } catch {
                    if !connection.isClosed {
                        _ = try? await connection.query(
                            PostgresQuery(unsafeSQL: "SELECT pg_advisory_unlock($1)", binds: bindings), logger: logger)
                    }
                    throw error
                }
            }
        } catch {
            throw Self.storeError(error, target: target)
        }
    }

    private var lockLost: AudienceSyncError {
        AudienceSyncError(
            .store,
            "\(location): the connection holding the sync lock was lost during the sync, and the lock with it; the sync stopped (another sync may have run meanwhile), and the next one finishes what it left"
        )
    }

    /// When this process holds the sync lock, throws unless the lock is still held by the
    /// connection that took it: its connection is open and the server still lists the lock as
    /// granted to its backend (a backend that was terminated, or whose client is gone, has
    /// released it). Run inside a write's transaction, before the write.
    func checkSyncLock(on connection: PostgresConnection) async throws {
        guard let holder = syncLockHolder.withLockedValue({ $0 }) else { return }
        guard !holder.connection.isClosed else { throw lockLost }
        // pg_locks shows a bigint advisory key as its high half in classid, its low half in objid.
        var bindings = PostgresBindings()
        bindings.append(holder.backend)
        bindings.append(holder.key >> 32 & 0xFFFF_FFFF)
        bindings.append(holder.key & 0xFFFF_FFFF)
        var held = false
        for try await _ in try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT 1 FROM pg_locks
                    WHERE locktype = 'advisory' AND granted AND pid = $1 AND classid::bigint = $2 AND objid::bigint = $3
                        AND objsubid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    """, binds: bindings), logger: logger)
        {
            held = true
        }
        guard held else { throw lockLost }
    }
}
