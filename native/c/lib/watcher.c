/* The pidfd watcher: one thread, one epoll set over every watched pidfd.
 *
 * A pidfd becomes readable when its process exits. The thread then reaps it with
 * waitid(P_PIDFD) when it is our child (a launched init) or notes that it cannot
 * (a reattached sandbox whose parent is some earlier supervisor: ECHILD), and writes
 * a 16-byte record to a pipe that the Node side reads on its event loop. No polling,
 * no thread per process, and no SIGCHLD handling: libuv owns SIGCHLD and only reaps
 * the pids it spawned itself.
 *
 * The thread lives as long as the process. The watch table is guarded by `lock`; the
 * thread holds it while it decides, reaps and emits one exit, so that pd_unwatch()
 * either wins (no record) or finds the token already gone (-ENOENT). The record pipe
 * is non-blocking on the thread's side: if Node stops reading, records queue in
 * memory rather than block the thread with the lock held (which would deadlock the
 * main thread's next pd_watch). */
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
/* epoll cookie of the record pipe's write end (armed only while records queue).
 * Watch cookies are token | fd << 32 with fd >= 0, so they never reach this value. */
#define PIPE_COOKIE UINT64_MAX
#define WATCHER_STACK (64 * 1024)

struct watch {
  uint32_t token;
  int fd; /* our dup of the caller's pidfd */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct watch *watches;
static size_t n_watches, cap_watches;
static int epfd = -1, pipe_rd = -1, pipe_wr = -1;
static int started;

/* Records that did not fit into the pipe, whole records only, in order. */
static unsigned char *pending;
static size_t pending_len, pending_cap;
static int pipe_armed;

static long find_watch(uint32_t token) {
  size_t i;

  for (i = 0; i < n_watches; i++)
    if (watches[i].token == token)
      return (long)i;
  return -1;
}

static void remove_watch(size_t i) {
  epoll_ctl(epfd, EPOLL_CTL_DEL, watches[i].fd, NULL);
  close(watches[i].fd);
  watches[i] = watches[--n_watches];
}

static void arm_pipe(int on) {
  struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = PIPE_COOKIE};

  if (on == pipe_armed)
    return;
  if (epoll_ctl(epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, pipe_wr, on ? &ev : NULL) == 0)
    pipe_armed = on;
}

/* Write queued records one at a time: 16 bytes <= PIPE_BUF is all-or-nothing, so
 * the reader never sees a torn record and the queue always holds whole records. */
static void flush_pending(void) {
  size_t off = 0;

  while (off < pending_len) {
    ssize_t n = write(pipe_wr, pending + off, RECORD_SIZE);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      break;
    /* EPIPE (Node closed its end) or worse: nobody will read these, drop them. */
    off += RECORD_SIZE;
  }
  memmove(pending, pending + off, pending_len - off);
  pending_len -= off;
  arm_pipe(pending_len > 0);
}

static void emit(const unsigned char rec[RECORD_SIZE]) {
  if (pending_len == 0) {
    ssize_t n;
    do
      n = write(pipe_wr, rec, RECORD_SIZE);
    while (n < 0 && errno == EINTR);
    if (n == RECORD_SIZE || (n < 0 && errno != EAGAIN))
      return;
  }
  if (pending_len + RECORD_SIZE > pending_cap) {
    size_t cap = pending_cap ? pending_cap * 2 : 64 * RECORD_SIZE;
    unsigned char *p = realloc(pending, cap);
    if (p == NULL)
      return; /* out of memory: the exit is lost, the sandbox shows as unresponsive */
    pending = p;
    pending_cap = cap;
  }
  memcpy(pending + pending_len, rec, RECORD_SIZE);
  pending_len += RECORD_SIZE;
  arm_pipe(1);
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
  emit(rec);
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

      if (cookie == PIPE_COOKIE) {
        flush_pending();
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

/* Called with lock held. */
static int start_locked(void) {
  int p[2] = {-1, -1}, ep = -1, err;
  pthread_attr_t attr;
  pthread_t tid;
  sigset_t all, old;
  const char *step;

  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    err = errno;
    step = "epoll_create1";
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

  epfd = ep;
  pipe_rd = p[0];
  pipe_wr = p[1];

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
    epfd = pipe_rd = pipe_wr = -1;
    step = "pthread_create";
    goto fail;
  }
  pthread_setname_np(tid, "pd-watcher");
  started = 1;
  return 0;

fail:
  if (ep >= 0)
    close(ep);
  if (p[0] >= 0)
    close(p[0]);
  if (p[1] >= 0)
    close(p[1]);
  return pd_fail(step, err, NULL);
}

int pd_watcher_fd(void) {
  int ret = 0;

  pd_ok();
  pthread_mutex_lock(&lock);
  if (!started)
    ret = start_locked();
  if (ret == 0)
    ret = pipe_rd;
  pthread_mutex_unlock(&lock);
  return ret;
}

int pd_watch(int pidfd, uint32_t token) {
  struct epoll_event ev;
  siginfo_t info;
  int fd, ret = 0;

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
  if (waitid((idtype_t)P_PIDFD, (id_t)fd, &info, WEXITED | WNOHANG | WNOWAIT) < 0 &&
      errno != ECHILD) {
    ret = pd_fail("watch", errno, "fd %d is not a pidfd", pidfd);
    close(fd);
    return ret;
  }

  pthread_mutex_lock(&lock);
  if (!started && (ret = start_locked()) < 0)
    goto out;
  if (find_watch(token) >= 0) {
    ret = pd_fail("watch", EEXIST, "token %u", token);
    goto out;
  }
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
  ev.events = EPOLLIN;
  ev.data.u64 = (uint64_t)token | ((uint64_t)(uint32_t)fd << 32);
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    ret = pd_fail("epoll_ctl", errno, "token %u", token);
    goto out;
  }
  watches[n_watches].token = token;
  watches[n_watches].fd = fd;
  n_watches++;
  fd = -1;
  ret = 0;
out:
  pthread_mutex_unlock(&lock);
  if (fd >= 0)
    close(fd);
  return ret;
}

int pd_unwatch(uint32_t token) {
  long idx;
  size_t i, out = 0;

  pd_ok();
  pthread_mutex_lock(&lock);
  idx = find_watch(token);
  if (idx >= 0)
    remove_watch((size_t)idx);
  /* A record still queued in memory has not reached Node yet: withdraw it too. */
  for (i = 0; i < pending_len; i += RECORD_SIZE) {
    uint32_t t;
    memcpy(&t, pending + i, 4);
    if (le32toh(t) == token) {
      idx = 0;
      continue;
    }
    if (out != i)
      memmove(pending + out, pending + i, RECORD_SIZE);
    out += RECORD_SIZE;
  }
  pending_len = out;
  if (started && pending_len == 0)
    arm_pipe(0);
  pthread_mutex_unlock(&lock);
  return idx >= 0 ? 0 : pd_fail("unwatch", ENOENT, "token %u", token);
}
