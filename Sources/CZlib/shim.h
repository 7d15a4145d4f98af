#include <zlib.h>

/// zlib's `inflateInit2` and `deflateInit2` are macros (they pass the library version and the
/// stream's size), which Swift cannot call.

/// Starts inflating a gzip stream (window bits 15 + 16: gzip headers only, no raw zlib).
static inline int audience_sync_inflate_init_gzip(z_streamp stream) {
    return inflateInit2(stream, 15 + 16);
}

/// Starts deflating into a gzip stream at `level` (0–9, or Z_DEFAULT_COMPRESSION).
static inline int audience_sync_deflate_init_gzip(z_streamp stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
