#include <sqlite3.h>

/// Turns SQLite's memory statistics off for the process: with them on, every allocation SQLite
/// makes (a sorter's records, a row's text) takes a global mutex to update them, and nothing here
/// reads them. `sqlite3_config` is variadic, which Swift cannot call. It works only before SQLite
/// is initialized (the first connection opened); later it returns SQLITE_MISUSE and changes nothing.
static inline int audience_sync_sqlite3_disable_memory_statistics(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/// Gives every connection's page cache one pool of `pages` slots for pages of up to `pageSize`
/// bytes (`SQLITE_CONFIG_PAGECACHE`), allocated here once for the process. Connections work on
/// threads of their own, and memory a thread frees stays in its malloc arena, out of reach of the
/// others: with caches in one pool, the slots a closed connection frees serve the next one, and
/// the process's memory stays one cache's worth however many connections it opens in turn. Pages
/// that do not fit (the pool is full) come from malloc as usual. Returns SQLITE_OK, or an error
/// when SQLite is already initialized (then nothing changed).
static inline int audience_sync_sqlite3_pool_page_caches(int pageSize, int pages) {
    int header = 0;
    if (sqlite3_config(SQLITE_CONFIG_PCACHE_HDRSZ, &header) != SQLITE_OK) return SQLITE_ERROR;
    int slot = pageSize + header;
    void *pool = malloc((size_t)slot * (size_t)pages);
    if (pool == 0) return SQLITE_NOMEM;
    int code = sqlite3_config(SQLITE_CONFIG_PAGECACHE, pool, slot, pages);
    if (code != SQLITE_OK) free(pool);
    return code;
}

/// Gives the memory freed in every malloc arena back to the system (glibc's `malloc_trim`; a no-op
/// elsewhere). A connection's page cache lives in the arena of the thread that used it, which
/// other threads do not reuse.
static inline void audience_sync_release_free_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
