#include <sqlite3.h>

/// Turns SQLite's memory statistics off for the process: with them on, every allocation SQLite
/// makes (a sorter's records, a row's text) takes a global mutex to update them, and nothing here
/// reads them. `sqlite3_config` is variadic, which Swift cannot call. It works only before SQLite
/// is initialized (the first connection opened); later it returns SQLITE_MISUSE and changes nothing.
static inline int audience_sync_sqlite3_disable_memory_statistics(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
