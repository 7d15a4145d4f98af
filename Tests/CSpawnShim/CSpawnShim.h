#ifndef C_SPAWN_SHIM_H
#define C_SPAWN_SHIM_H

// What Glibc's Swift overlay does not import, for the tests' process launcher (`ChildProcess`):
// <unistd.h> declares `pipe2` only under _GNU_SOURCE, and <spawn.h>'s
// `posix_spawn_file_actions_addchdir_np` (glibc 2.29) and `_addclosefrom_np` (glibc 2.34) do not
// come through the overlay's module either. They are all in libc; these only declare them.

#include <fcntl.h>
#include <spawn.h>

extern int pipe2(int pipefd[2], int flags);
extern int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *actions, const char *path);
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);

/// `pipe2`: a pipe whose ends get `flags` (O_CLOEXEC) atomically.
static inline int cspawnshim_pipe2(int pipefd[2], int flags) { return pipe2(pipefd, flags); }

/// `posix_spawn_file_actions_addchdir_np`: the child changes to `path` before it executes.
static inline int cspawnshim_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

/// `posix_spawn_file_actions_addclosefrom_np`: the child closes every descriptor from `from` up.
static inline int cspawnshim_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

#endif
