/* Capped container output files (docs/decisions/0031, amending 0002).
 *
 * With a cap (SANDBOX_PLAN LOG_SIZE_MAX > 0) a 'pipe' process does not get its log
 * file as fd 1/2 but the write end of a pipe; init reads the other end in its main
 * loop and appends to the file. When the next chunk would take the file past the cap,
 * the file is renamed to "<name>.1" (replacing an older one) and a new one is begun
 * with a marker line, so a process printing forever holds at most two files of about
 * the cap each. init owns this, not the supervisor, so the cap holds while no
 * supervisor runs. The cost is one wake-up of init and one copy per chunk. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "init.h"

/* Static, so resident once used: 32 KiB of the 1.5 MiB budget of init's RSS. */
#define RELAY_CHUNK (32u << 10)
/* A larger pipe lets a burst land while init is busy (a spawn waits for its child's
 * setup, hooks included), so the container seldom blocks on its own output. Pages are
 * only taken while data sits in it. */
#define RELAY_PIPE_SIZE (1u << 20)

struct pi_relay {
  struct pi_relay *next;
  int rfd;      /* read end, non-blocking */
  int ofd;      /* the log file, O_APPEND; -1 after a failed rotation */
  off_t size;   /* bytes in the current file */
  int warned;   /* a write failure was logged once */
  char last;    /* the last byte relayed, so the marker starts a line of its own */
  char path[];  /* the log file, for rotation */
};

static struct pi_relay *relays;
static unsigned relay_count;
static char chunk[RELAY_CHUNK];

uint64_t pi_log_size_max;

unsigned pi_relay_count(void)
{
  return relay_count;
}

int pi_relay_open(const char *path, int *child_w, struct pi_error *e)
{
  size_t len = strlen(path);
  struct pi_relay *r = malloc(sizeof *r + len + 1);
  struct stat st;
  int p[2];

  if (r == NULL)
    return pi_fail(e, "log_relay", ENOMEM, path);
  memcpy(r->path, path, len + 1);
  r->warned = 0;
  r->last = '\n';
  r->ofd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (r->ofd < 0) {
    int err = errno;
    free(r);
    return pi_fail(e, "log_relay", err, path);
  }
  r->size = fstat(r->ofd, &st) == 0 ? st.st_size : 0;
  if (pipe2(p, O_CLOEXEC) < 0) {
    int err = errno;
    close(r->ofd);
    free(r);
    return pi_fail(e, "log_relay", err, "pipe");
  }
  (void)fcntl(p[0], F_SETPIPE_SZ, RELAY_PIPE_SIZE);
  (void)fcntl(p[0], F_SETFL, O_NONBLOCK);
  r->rfd = p[0];
  r->next = relays;
  relays = r;
  relay_count++;
  *child_w = p[1];
  return 0;
}

static void relay_write(struct pi_relay *r, const char *buf, size_t len)
{
  while (len > 0 && r->ofd >= 0) {
    ssize_t n = write(r->ofd, buf, len);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      /* ENOSPC and the like: drop it; a container never waits on its log. */
      if (!r->warned)
        pi_diag("log %s: %s; output is dropped until it can be written", r->path,
                n < 0 ? strerror(errno) : "short write");
      r->warned = 1;
      return;
    }
    r->warned = 0;
    r->size += n;
    buf += n;
    len -= (size_t)n;
  }
}

/* Renames the full file to "<path>.1" and starts a new one with the marker. The tail
 * that follows the file (actors/containers/stdio-files.ts) reads the old inode to its end, sees the path
 * name another inode, and goes on in the new file. */
static void rotate(struct pi_relay *r)
{
  char old[4200], marker[200];
  const char *base = strrchr(r->path, '/');
  int n;

  base = base != NULL ? base + 1 : r->path;
  /* The old part ends with a whole line, so the marker begins the new one. */
  if (r->last != '\n') {
    relay_write(r, "\n", 1);
    r->last = '\n';
  }
  if ((size_t)snprintf(old, sizeof old, "%s.1", r->path) >= sizeof old)
    old[0] = '\0';
  /* Removed first, not replaced by the rename: ext4 flushes a file renamed over
   * another one before the rename returns (auto_da_alloc), measured at ~1 ms a turn. */
  if (old[0] != '\0')
    (void)unlink(old);
  if (old[0] == '\0' || rename(r->path, old) < 0) {
    /* Cannot rotate: truncate in place rather than grow without bound. */
    if (r->ofd >= 0 && ftruncate(r->ofd, 0) == 0)
      r->size = 0;
  } else {
    if (r->ofd >= 0)
      close(r->ofd);
    r->ofd = open(r->path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
    r->size = 0;
    if (r->ofd < 0)
      pi_diag("log %s: %s after rotation; output is dropped", r->path, strerror(errno));
  }
  n = snprintf(marker, sizeof marker,
               "[paddock: log reached log-size-max (%llu bytes); the part before this line is in %s.1]\n",
               (unsigned long long)pi_log_size_max, base);
  if (n > 0 && (size_t)n < sizeof marker)
    relay_write(r, marker, (size_t)n);
}

/* Copies what the pipe holds now. Returns 1 at EOF (every writer is gone). */
static int relay_pump(struct pi_relay *r)
{
  size_t want = RELAY_CHUNK;
  unsigned rounds;

  if (pi_log_size_max > 0 && pi_log_size_max < want)
    want = (size_t)pi_log_size_max;
  /* At most a full pipe per call: a process writing without pause must not keep the
   * loop from requests, signals and the other pipes (poll is level-triggered, so the
   * rest comes at the next turn). */
  rounds = RELAY_PIPE_SIZE / (unsigned)want + 2;
  while (rounds-- > 0) {
    ssize_t n = read(r->rfd, chunk, want);

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return errno == EAGAIN ? 0 : 1;
    if (n == 0)
      return 1;
    if (r->size > 0 && (uint64_t)r->size + (uint64_t)n > pi_log_size_max)
      rotate(r);
    relay_write(r, chunk, (size_t)n);
    r->last = chunk[n - 1];
    if ((size_t)n < want)
      return 0; /* the pipe is empty; poll says when there is more */
  }
  return 0;
}

static void relay_free(struct pi_relay **at)
{
  struct pi_relay *r = *at;

  *at = r->next;
  close(r->rfd);
  if (r->ofd >= 0)
    close(r->ofd);
  free(r);
  relay_count--;
}

unsigned pi_relay_pollfds(struct pollfd *pfd, unsigned max)
{
  unsigned i = 0;

  for (struct pi_relay *r = relays; r != NULL && i < max; r = r->next, i++) {
    pfd[i].fd = r->rfd;
    pfd[i].events = POLLIN;
    pfd[i].revents = 0;
  }
  return i;
}

void pi_relay_ready(const struct pollfd *pfd, unsigned n)
{
  for (unsigned i = 0; i < n; i++) {
    if (pfd[i].revents == 0)
      continue;
    for (struct pi_relay **at = &relays; *at != NULL; at = &(*at)->next) {
      if ((*at)->rfd != pfd[i].fd)
        continue;
      if (relay_pump(*at))
        relay_free(at);
      break;
    }
  }
}

void pi_relay_drain_all(void)
{
  struct pi_relay **at = &relays;

  while (*at != NULL) {
    if (relay_pump(*at))
      relay_free(at);
    else
      at = &(*at)->next;
  }
}
