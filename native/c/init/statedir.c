/* Reaching init's own folders once the state dir is closed to it (docs/decisions/0030).
 *
 * The supervisor makes <sandboxDir> its own (0700) once init is ready, so that no one
 * but the supervisor can even reach the sockets. A user-namespaced init runs as the
 * sandbox's root, an unprivileged host uid, and could no longer walk into it. What it
 * still needs later — logs/ (output files, rotation) and stdin/ (FIFOs, console
 * endpoints), both its own — it opens here at startup, while it can, and reaches
 * through /proc/self/fd/<n>/: the kernel follows that link to the folder without
 * checking the folders above it. Paths in requests keep naming the real place;
 * pi_statedir_path rewrites those below logs/ and stdin/. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "init.h"

static char dir[4096];
static size_t dir_len;
static const struct {
  const char *name;
  size_t len;
} subdirs[2] = {{"logs/", 5}, {"stdin/", 6}};
static int subdir_fd[2] = {-1, -1};

void pi_statedir_open(const char *path)
{
  char sub[4200];

  dir_len = strlen(path);
  if (dir_len >= sizeof dir) {
    dir_len = 0;
    return;
  }
  memcpy(dir, path, dir_len + 1);
  for (int i = 0; i < 2; i++) {
    /* Absent (a bare launch, as in tests): paths are then used as they are. */
    if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, subdirs[i].name) < sizeof sub)
      subdir_fd[i] = open(sub, O_PATH | O_DIRECTORY | O_CLOEXEC);
  }
}

const char *pi_statedir_path(const char *path, char *buf, size_t cap)
{
  const char *rest;

  if (path == NULL || dir_len == 0 || strncmp(path, dir, dir_len) != 0 || path[dir_len] != '/')
    return path;
  rest = path + dir_len + 1;
  for (int i = 0; i < 2; i++) {
    if (subdir_fd[i] < 0 || strncmp(rest, subdirs[i].name, subdirs[i].len) != 0)
      continue;
    rest += subdirs[i].len;
    /* One component only: nothing below these folders is nested. */
    if (strchr(rest, '/') != NULL || rest[0] == '\0')
      return path;
    if ((size_t)snprintf(buf, cap, "/proc/self/fd/%d/%s", subdir_fd[i], rest) >= cap)
      return path;
    return buf;
  }
  return path;
}
