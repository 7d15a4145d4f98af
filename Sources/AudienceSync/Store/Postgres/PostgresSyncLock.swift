import PostgresNIO

extension PostgresStore {
    /// The sync lock of a PostgreSQL store (SPEC §12): a session advisory lock on a key derived
    /// from the schema (`lockKey`), taken with `pg_try_advisory_lock` on a connection held for the
    /// whole of `body`. Syncs on any host that use the same schema exclude each other; a holder
    /// that dies loses the lock with its connection, so there is never a stale lock to clear.
    public func withSyncLock<T>(_ body: () async throws -> T) async throws -> T {
        let key = Self.lockKey(schema: target.schema, purpose: "sync")
        do {
            return try await client.withConnection { connection in
                var bindings = PostgresBindings()
                bindings.append(key)
                var taken = false
                for try await row in try await connection.query(
                    PostgresQuery(unsafeSQL: "SELECT pg_try_advisory_lock($1)", binds: bindings), logger: logger)
                {
                    taken = try row.decode(Bool.self)
                }
                guard taken else {
                    throw AudienceSyncError(.locked, "\(location): another sync holds the lock of this store")
                }
                // A query on a connection that has closed is never answered (postgres-nio drops it),
                // so the lock is given back only while its connection is open; a closed one has
                // lost the lock already.
                do {
                    let result = try await body()
                    guard !connection.isClosed else {
                        throw AudienceSyncError(
                            .store,
                            "\(location): the connection holding the sync lock was lost during the sync, and the lock with it; another sync may have run meanwhile"
                        )
                    }
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
}
