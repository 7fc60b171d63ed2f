/* The pidfd watcher: one thread, one epoll set over every watched pidfd, for the
 * whole process.
 *
 * A pidfd becomes readable when its process exits. The thread then reaps it with
 * waitid(P_PIDFD) when it is our child (a launched init) or notes that it cannot
 * (a reattached sandbox whose parent is some earlier supervisor: ECHILD), and writes
 * a 16-byte record to a pipe that the Node side reads on its event loop. No polling,
 * no thread per process, and no SIGCHLD handling: libuv owns SIGCHLD and only reaps
 * the pids it spawned itself.
 *
 * Records go to channels. Every reader (one engine; several can live in one process,
 * e.g. jest test files each with their own module registry) opens its own channel
 * with pd_watch_open(): a pipe of its own, so that no two readers ever share a pipe
 * (libuv refuses to register the same fd twice, and two readers of one pipe would
 * steal each other's records). A watch belongs to the channel it was made on, and
 * its exit is reported there. Tokens come from one process-wide counter, so they
 * never collide across channels.
 *
 * The thread lives as long as the process. The watch and channel tables are guarded
 * by `lock`; the thread holds it while it decides, reaps and emits one exit, so that
 * pd_unwatch() either wins (no record) or finds the token already gone (-ENOENT).
 * Each channel's write end is non-blocking on the thread's side: if Node stops
 * reading, records queue in that channel's memory rather than block the thread with
 * the lock held (which would deadlock the main thread's next pd_watch). */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "paddock_native.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define RECORD_SIZE 16
/* epoll cookies. A watch's is token | fd << 32 with fd >= 0, so bit 63 is clear; a
 * channel write end's (armed only while records queue) is CHANNEL_COOKIE | id, with
 * bit 63 set. The id is never reused, so a stale event for a closed channel finds
 * nothing. */
#define CHANNEL_COOKIE (UINT64_C(1) << 63)
#define WATCHER_STACK (64 * 1024)

struct channel {
  uint32_t id;
  int rd; /* the caller's read end: the channel's name in the API */
  int wr; /* the thread's write end, non-blocking */
  /* Records that did not fit into the pipe, whole records only, in order. */
  unsigned char *pending;
  size_t pending_len, pending_cap;
  int armed;
};

struct watch {
  uint32_t token;
  int fd; /* our dup of the caller's pidfd */
  struct channel *ch;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct watch *watches;
static size_t n_watches, cap_watches;
static struct channel **channels;
static size_t n_channels, cap_channels;
static uint32_t next_token = 1, next_channel_id = 1;
static int epfd = -1;
static int started;

static long find_watch(uint32_t token) {
  size_t i;

  for (i = 0; i < n_watches; i++)
    if (watches[i].token == token)
      return (long)i;
  return -1;
}

static long find_channel_fd(int rd) {
  size_t i;

  for (i = 0; i < n_channels; i++)
    if (channels[i]->rd == rd)
      return (long)i;
  return -1;
}

static struct channel *find_channel_id(uint32_t id) {
  size_t i;

  for (i = 0; i < n_channels; i++)
    if (channels[i]->id == id)
      return channels[i];
  return NULL;
}

static void remove_watch(size_t i) {
  epoll_ctl(epfd, EPOLL_CTL_DEL, watches[i].fd, NULL);
  close(watches[i].fd);
  watches[i] = watches[--n_watches];
}

static void arm_channel(struct channel *ch, int on) {
  struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = CHANNEL_COOKIE | ch->id};

  if (on == ch->armed)
    return;
  if (epoll_ctl(epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, ch->wr, on ? &ev : NULL) == 0)
    ch->armed = on;
}

/* Write queued records one at a time: 16 bytes <= PIPE_BUF is all-or-nothing, so
 * the reader never sees a torn record and the queue always holds whole records. */
static void flush_pending(struct channel *ch) {
  size_t off = 0;

  while (off < ch->pending_len) {
    ssize_t n = write(ch->wr, ch->pending + off, RECORD_SIZE);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      break;
    /* EPIPE (Node closed its end) or worse: nobody will read these, drop them. */
    off += RECORD_SIZE;
  }
  memmove(ch->pending, ch->pending + off, ch->pending_len - off);
  ch->pending_len -= off;
  arm_channel(ch, ch->pending_len > 0);
}

static void emit(struct channel *ch, const unsigned char rec[RECORD_SIZE]) {
  if (ch->pending_len == 0) {
    ssize_t n;
    do
      n = write(ch->wr, rec, RECORD_SIZE);
    while (n < 0 && errno == EINTR);
    if (n == RECORD_SIZE || (n < 0 && errno != EAGAIN))
      return;
  }
  if (ch->pending_len + RECORD_SIZE > ch->pending_cap) {
    size_t cap = ch->pending_cap ? ch->pending_cap * 2 : 64 * RECORD_SIZE;
    unsigned char *p = realloc(ch->pending, cap);
    if (p == NULL)
      return; /* out of memory: the exit is lost, the sandbox shows as unresponsive */
    ch->pending = p;
    ch->pending_cap = cap;
  }
  memcpy(ch->pending + ch->pending_len, rec, RECORD_SIZE);
  ch->pending_len += RECORD_SIZE;
  arm_channel(ch, 1);
}

/* Withdraws a queued record of `token` from `ch`; returns whether there was one. */
static int withdraw(struct channel *ch, uint32_t token) {
  size_t i, out = 0;
  int found = 0;

  for (i = 0; i < ch->pending_len; i += RECORD_SIZE) {
    uint32_t t;
    memcpy(&t, ch->pending + i, 4);
    if (le32toh(t) == token) {
      found = 1;
      continue;
    }
    if (out != i)
      memmove(ch->pending + out, ch->pending + i, RECORD_SIZE);
    out += RECORD_SIZE;
  }
  ch->pending_len = out;
  if (ch->pending_len == 0)
    arm_channel(ch, 0);
  return found;
}

/* Unwatches everything on channel i, drops its records, closes its write end and
 * forgets it. The read end is the caller's. */
static void destroy_channel(size_t i) {
  struct channel *ch = channels[i];
  size_t w = 0;

  while (w < n_watches) {
    if (watches[w].ch == ch)
      remove_watch(w); /* moves the last watch into slot w: look at w again */
    else
      w++;
  }
  arm_channel(ch, 0);
  close(ch->wr);
  free(ch->pending);
  free(ch);
  channels[i] = channels[--n_channels];
}

static void put32(unsigned char *p, uint32_t v) {
  v = htole32(v);
  memcpy(p, &v, 4);
}

static void reap_and_report(const struct watch *w) {
  unsigned char rec[RECORD_SIZE];
  siginfo_t info;
  int r, reaped = 0, code = -1, sig = 0;

  memset(&info, 0, sizeof info);
  /* Readable means exited, so this does not block for a child; for a process that is
   * not our child it fails at once with ECHILD and the status stays unknown. */
  do
    r = waitid((idtype_t)P_PIDFD, (id_t)w->fd, &info, WEXITED);
  while (r < 0 && errno == EINTR);
  if (r == 0) {
    reaped = 1;
    if (info.si_code == CLD_EXITED)
      code = info.si_status;
    else
      sig = info.si_status; /* CLD_KILLED, CLD_DUMPED */
  }
  put32(rec, w->token);
  put32(rec + 4, (uint32_t)reaped);
  put32(rec + 8, (uint32_t)code);
  put32(rec + 12, (uint32_t)sig);
  emit(w->ch, rec);
}

static void *watcher_main(void *arg) {
  struct epoll_event evs[64];
  int n, i;

  (void)arg;
  for (;;) {
    n = epoll_wait(epfd, evs, 64, -1);
    if (n < 0)
      continue; /* EINTR; nothing else can happen to a valid epoll fd */

    pthread_mutex_lock(&lock);
    for (i = 0; i < n; i++) {
      uint64_t cookie = evs[i].data.u64;
      uint32_t token = (uint32_t)cookie;
      int fd = (int)(cookie >> 32);
      struct pollfd pfd = {.fd = fd, .events = POLLIN};
      long idx;

      if (cookie & CHANNEL_COOKIE) {
        /* Stale if the channel was closed since epoll_wait returned. */
        struct channel *ch = find_channel_id((uint32_t)cookie);
        if (ch != NULL)
          flush_pending(ch);
        continue;
      }
      /* The event may be stale: unwatched since epoll_wait returned, and perhaps the
       * same token and fd number watched again for a live process. Check all three. */
      idx = find_watch(token);
      if (idx < 0 || watches[idx].fd != fd)
        continue;
      if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      reap_and_report(&watches[idx]);
      remove_watch((size_t)idx);
    }
    pthread_mutex_unlock(&lock);
  }
  return NULL;
}

/* Called with lock held: the epoll set and the thread, once per process. */
static int start_locked(void) {
  int ep, err;
  pthread_attr_t attr;
  pthread_t tid;
  sigset_t all, old;

  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    return pd_fail("epoll_create1", errno, NULL);
  epfd = ep;

  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, WATCHER_STACK);
  /* The thread inherits a full mask: process signals go to Node's threads, never
   * here, and no EINTR storms interrupt epoll_wait. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  err = pthread_create(&tid, &attr, watcher_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    epfd = -1;
    close(ep);
    return pd_fail("pthread_create", err, NULL);
  }
  pthread_setname_np(tid, "pd-watcher");
  started = 1;
  return 0;
}

int pd_watch_open(void) {
  int p[2] = {-1, -1}, ret, err;
  struct channel *ch = NULL;
  long stale;
  const char *step;

  pd_ok();
  pthread_mutex_lock(&lock);
  if (!started && (ret = start_locked()) < 0)
    goto out;
  if (n_channels == cap_channels) {
    size_t cap = cap_channels ? cap_channels * 2 : 8;
    struct channel **c = realloc(channels, cap * sizeof *c);
    if (c == NULL) {
      err = ENOMEM;
      step = "watch_open";
      goto fail;
    }
    channels = c;
    cap_channels = cap;
  }
  ch = calloc(1, sizeof *ch);
  if (ch == NULL) {
    err = ENOMEM;
    step = "watch_open";
    goto fail;
  }
  if (pipe2(p, O_CLOEXEC) < 0) {
    err = errno;
    step = "pipe2";
    goto fail;
  }
  /* Only the thread's end is non-blocking; libuv makes its own end non-blocking. */
  if (fcntl(p[1], F_SETFL, O_NONBLOCK) < 0) {
    err = errno;
    step = "fcntl";
    goto fail;
  }
  /* Best effort: room for 64k records before anything queues in memory. */
  (void)fcntl(p[1], F_SETPIPE_SZ, 1 << 20);

  /* Our new read end has the number of a known channel: the caller closed that
   * channel's read end without pd_watch_close(). Nobody can read it any more; close
   * it now so the name means one channel only. */
  stale = find_channel_fd(p[0]);
  if (stale >= 0)
    destroy_channel((size_t)stale);

  ch->id = next_channel_id++;
  if (next_channel_id == 0)
    next_channel_id = 1;
  ch->rd = p[0];
  ch->wr = p[1];
  channels[n_channels++] = ch;
  ret = p[0];
  goto out;

fail:
  free(ch);
  if (p[0] >= 0)
    close(p[0]);
  if (p[1] >= 0)
    close(p[1]);
  ret = pd_fail(step, err, NULL);
out:
  pthread_mutex_unlock(&lock);
  return ret;
}

int pd_watch_close(int channel_fd) {
  long idx;

  pd_ok();
  pthread_mutex_lock(&lock);
  idx = find_channel_fd(channel_fd);
  if (idx >= 0)
    destroy_channel((size_t)idx);
  pthread_mutex_unlock(&lock);
  return idx >= 0 ? 0 : pd_fail("watch_close", ENOENT, "channel %d", channel_fd);
}

/* Called with lock held: the next token, never 0 and never one in use. */
static uint32_t new_token(void) {
  uint32_t t;

  do {
    t = next_token++;
    if (next_token == 0)
      next_token = 1;
  } while (find_watch(t) >= 0);
  return t;
}

static long watch_fd(int channel_fd, int pidfd, int any_fd) {
  struct epoll_event ev;
  siginfo_t info;
  struct channel *ch;
  uint32_t token;
  long idx, ret;
  int fd;

  pd_ok();
  if (pidfd < 0)
    return pd_fail("watch", EBADF, "fd %d", pidfd);

  /* Our own dup: the caller may close its pidfd at any time. */
  fd = fcntl(pidfd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0)
    return pd_fail("watch", errno, "dup of fd %d", pidfd);
  /* Refuse anything that is not a pidfd (a pipe would "exit" on its first byte).
   * WNOWAIT: only look, an exited child stays for the thread to reap. */
  memset(&info, 0, sizeof info);
  if (!any_fd && waitid((idtype_t)P_PIDFD, (id_t)fd, &info, WEXITED | WNOHANG | WNOWAIT) < 0 &&
      errno != ECHILD) {
    ret = pd_fail("watch", errno, "fd %d is not a pidfd", pidfd);
    close(fd);
    return ret;
  }

  pthread_mutex_lock(&lock);
  idx = find_channel_fd(channel_fd);
  if (idx < 0) {
    ret = pd_fail("watch", ENOENT, "channel %d", channel_fd);
    goto out;
  }
  ch = channels[idx];
  if (n_watches == cap_watches) {
    size_t cap = cap_watches ? cap_watches * 2 : 64;
    struct watch *w = realloc(watches, cap * sizeof *w);
    if (w == NULL) {
      ret = pd_fail("watch", ENOMEM, NULL);
      goto out;
    }
    watches = w;
    cap_watches = cap;
  }
  token = new_token();
  ev.events = EPOLLIN;
  ev.data.u64 = (uint64_t)token | ((uint64_t)(uint32_t)fd << 32);
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    ret = pd_fail("epoll_ctl", errno, "token %u", token);
    goto out;
  }
  watches[n_watches].token = token;
  watches[n_watches].fd = fd;
  watches[n_watches].ch = ch;
  n_watches++;
  fd = -1;
  ret = (long)token;
out:
  pthread_mutex_unlock(&lock);
  if (fd >= 0)
    close(fd);
  return ret;
}

long pd_watch(int channel_fd, int pidfd) {
  return watch_fd(channel_fd, pidfd, 0);
}

/* Any fd (an OOM eventfd, actors/observe/oom.ts): one record (reaped 0, code -1) the first
 * time it is readable, then the watch is gone as a pidfd's is; the caller reads the
 * fd and watches it again. */
long pd_watch_readable(int channel_fd, int fd) {
  return watch_fd(channel_fd, fd, 1);
}

int pd_unwatch(uint32_t token) {
  long idx;
  size_t i;
  int found = 0;

  pd_ok();
  pthread_mutex_lock(&lock);
  idx = find_watch(token);
  if (idx >= 0) {
    remove_watch((size_t)idx);
    found = 1;
  }
  /* A record still queued in memory has not reached Node yet: withdraw it too. Its
   * watch is gone by then, so look in every channel (tokens are process-wide). */
  for (i = 0; i < n_channels; i++)
    if (withdraw(channels[i], token))
      found = 1;
  pthread_mutex_unlock(&lock);
  return found ? 0 : pd_fail("unwatch", ENOENT, "token %u", token);
}
