/* paddock-init entry point: startup, the readiness report on fd 3, the main loop.
 *
 * The launcher has already put us in the sandbox's namespaces (we are PID 1) with
 * argv = ["paddock-init", "<sandboxDir>"] and fd 3 = the write end of a pipe the
 * supervisor reads once: OK {PID} or ERROR {CODE=LAUNCH, ERRNO, STEP}. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>

#define READY_FD 3

struct pi_state g = {.sigfd = -1, .exits_fd = -1, .own_pidns_fd = -1};

/* Requests and the sandbox plan decode into this arena. It is static .bss: only the
 * pages a request actually uses become resident, and big ones are given back. */
#define ARENA_SIZE (3u << 20)
static unsigned char arena_mem[ARENA_SIZE] __attribute__((aligned(4096)));
static struct pd_arena arena = {.base = arena_mem, .size = ARENA_SIZE};

int pi_fail(struct pi_error *e, const char *step, int err, const char *detail)
{
  size_t n = 0;

  e->step = step;
  e->err = err;
  if (detail != NULL) {
    n = strlen(detail);
    if (n >= sizeof e->detail)
      n = sizeof e->detail - 1;
    memcpy(e->detail, detail, n);
  }
  e->detail[n] = '\0';
  return -err;
}

void pi_close_fdp(int *fd)
{
  if (*fd >= 0)
    close(*fd);
}

void pi_arena_reset(struct pd_arena *a)
{
  /* Give back what a large request touched so idle RSS stays small. */
  if (a->used > (64u << 10))
    madvise(a->base, (a->used + 4095) & ~(size_t)4095, MADV_DONTNEED);
  a->used = 0;
}

/* nng errors are not errnos; keep the system ones, map the few others we expect. */
static int nng_errno(int rv)
{
  if (rv & NNG_ESYSERR)
    return rv & ~NNG_ESYSERR;
  switch (rv) {
  case NNG_ENOMEM: return ENOMEM;
  case NNG_EADDRINUSE: return EADDRINUSE;
  case NNG_EADDRINVAL: return EINVAL;
  case NNG_EPERM: return EPERM;
  case NNG_ENOENT: return ENOENT;
  default: return EIO;
  }
}

static void ready_report(const struct pi_error *e)
{
  uint8_t buf[512];
  struct pd_writer w;
  long len;

  if (e == NULL) {
    pd_w_begin(&w, buf, sizeof buf, PD_OK);
    pd_w_i32(&w, PD_T_PID, getpid());
  } else {
    pd_w_begin(&w, buf, sizeof buf, PD_ERROR);
    pd_w_u32(&w, PD_T_CODE, PD_E_LAUNCH);
    pd_w_i32(&w, PD_T_ERRNO, e->err);
    pd_w_str(&w, PD_T_STEP, e->step);
    if (e->detail[0] != '\0')
      pd_w_str(&w, PD_T_MSG, e->detail);
  }
  len = pd_w_finish(&w);
  if (len > 0 && write(READY_FD, buf, (size_t)len) < 0 && errno != EBADF)
    pi_diag("ready report: %s", strerror(errno));
  close(READY_FD);
}

/* The supervisor's uid as this process sees it (from the owner of sandbox.plan,
 * which the supervisor writes): in a user namespace that does not map it, the
 * overflow uid. Only a peer with this uid may drive the sandbox. */
static uid_t supervisor_uid = (uid_t)-1;

static int read_file(const char *path, uint8_t **out, size_t *len, struct pi_error *e)
{
  cleanup_fd int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  size_t got = 0;
  uint8_t *buf;

  if (fd < 0)
    return pi_fail(e, "open_plan", errno, path);
  if (fstat(fd, &st) < 0)
    return pi_fail(e, "open_plan", errno, path);
  if (st.st_size > (off_t)(PD_HEADER_SIZE + PD_MAX_BODY))
    return pi_fail(e, "read_plan", E2BIG, path);
  supervisor_uid = st.st_uid;
  buf = malloc((size_t)st.st_size + 1);
  if (buf == NULL)
    return pi_fail(e, "read_plan", ENOMEM, path);
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      free(buf);
      return pi_fail(e, "read_plan", n < 0 ? errno : EIO, path);
    }
    got += (size_t)n;
  }
  *out = buf;
  *len = got;
  return 0;
}

static int loopback_up(struct pi_error *e)
{
  cleanup_fd int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;

  if (s < 0)
    return pi_fail(e, "lo_up", errno, "socket");
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, "lo", 3);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
    return pi_fail(e, "lo_up", errno, "SIOCGIFFLAGS");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
    return pi_fail(e, "lo_up", errno, "SIOCSIFFLAGS");
  return 0;
}

static int apply_sandbox_plan(const char *dir, struct pi_error *e)
{
  char path[4096], reason[128];
  struct pd_msg m;
  uint8_t *buf = NULL;
  size_t len = 0;
  int r;

  if ((size_t)snprintf(path, sizeof path, "%s/sandbox.plan", dir) >= sizeof path)
    return pi_fail(e, "open_plan", ENAMETOOLONG, dir);
  if ((r = read_file(path, &buf, &len, e)) < 0)
    return r;
  memset(&m, 0, sizeof m);
  r = pd_decode(buf, len, &arena, &m, reason, sizeof reason);
  free(buf);
  if (r < 0)
    return pi_fail(e, "decode_plan", -r, reason);
  if (m.type != PD_SANDBOX_PLAN)
    return pi_fail(e, "decode_plan", EINVAL, "not a SANDBOX_PLAN");
  if (m.hostname != NULL && sethostname(m.hostname, strlen(m.hostname)) < 0)
    return pi_fail(e, "sethostname", errno, m.hostname);
  if (m.domainname != NULL && setdomainname(m.domainname, strlen(m.domainname)) < 0)
    return pi_fail(e, "setdomainname", errno, m.domainname);
  if (m.lo_up && (r = loopback_up(e)) < 0)
    return r;
  pi_log_size_max = m.log_size_max;
  pi_arena_reset(&arena);
  return 0;
}

static void on_subscriber(nng_pipe p, nng_pipe_ev ev, void *arg);

/* On nng's thread, before a connection joins either socket: only the supervisor may
 * drive the sandbox or read its events (docs/decisions/0030). The kernel's view of the
 * peer (SO_PEERCRED) is translated into our namespaces: its uid must be the
 * supervisor's as we see it, and as PID 1 of the sandbox's pid namespace we see the
 * supervisor as pid 0 (outside), so a peer with a pid here is one of the sandbox's own
 * processes. A refused pipe is closed before any message on it is read. */
static void on_pipe_pre(nng_pipe p, nng_pipe_ev ev, void *arg)
{
  uint64_t uid = UINT64_MAX, pid = UINT64_MAX;
  int rv;

  (void)ev;
  rv = nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid);
  if (rv == 0)
    rv = nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_PID, &pid);
  if (rv == 0 && uid == (uint64_t)supervisor_uid && (pid == 0 || g.any_peer_pid))
    return;
  pi_diag("%s: refused a peer (uid %lld, pid %lld; only uid %lld from outside the sandbox may connect)%s%s",
          (const char *)arg, uid == UINT64_MAX ? -1LL : (long long)uid,
          pid == UINT64_MAX ? -1LL : (long long)pid, (long long)supervisor_uid,
          rv != 0 ? ": " : "", rv != 0 ? nng_strerror(rv) : "");
  nng_pipe_close(p);
}

static int listen_on(nng_socket *s, int (*open_fn)(nng_socket *), const char *dir,
                     const char *name, const char *step, struct pi_error *e)
{
  char url[4200];
  nng_listener l;
  int rv;

  if ((size_t)snprintf(url, sizeof url, "ipc://%s/%s", dir, name) >= sizeof url)
    return pi_fail(e, step, ENAMETOOLONG, dir);
  if ((rv = open_fn(s)) != 0)
    return pi_fail(e, step, nng_errno(rv), nng_strerror(rv));
  /* Before listening, so no peer can attach unchecked (nor a subscriber unnoticed). */
  if ((rv = nng_pipe_notify(*s, NNG_PIPE_EV_ADD_PRE, on_pipe_pre, (void *)name)) != 0)
    return pi_fail(e, step, nng_errno(rv), nng_strerror(rv));
  if (open_fn == nng_pub0_open && (rv = nng_pipe_notify(*s, NNG_PIPE_EV_ADD_POST, on_subscriber, NULL)) != 0)
    return pi_fail(e, step, nng_errno(rv), nng_strerror(rv));
  if ((rv = nng_listener_create(&l, *s, url)) != 0)
    return pi_fail(e, step, nng_errno(rv), url);
  /* Owner only from the moment it exists; the supervisor then makes itself the owner
   * (actors/sandbox/launcher.ts), which a user-namespaced init cannot do. */
  if ((rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0600)) != 0)
    return pi_fail(e, step, nng_errno(rv), "ipc:permissions");
  if ((rv = nng_listener_start(l, 0)) != 0)
    return pi_fail(e, step, nng_errno(rv), url);
  return 0;
}

static int startup(const char *dir, sigset_t *mask, struct pi_error *e)
{
  char path[4096];
  int rv;

  prctl(PR_SET_NAME, "paddock-init", 0, 0, 0);
  /* Nothing may ptrace us or open /proc/<pid>/{mem,exe,environ} of ours: not a
   * container process running as our uid, not another sandbox's sharing it. The
   * exec from the launcher's memfd usually leaves this cleared already, but only
   * usually (it depends on who may read the memfd); children inherit it, and each
   * container's own process keeps it until its execve (child.c). */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    return pi_fail(e, "prctl_dumpable", errno, NULL);
  if (close_range(READY_FD + 1, ~0U, 0) < 0)
    return pi_fail(e, "close_range", errno, NULL);
  pi_diag_open(dir);
  pi_statedir_open(dir);
  /* One malloc arena: nng's threads would otherwise each get their own, and idle
   * RSS is a budget here. */
  mallopt(M_ARENA_MAX, 1);

  /* Blocked before nng starts its threads so every thread inherits the mask and
   * these signals can only be read through the signalfd. */
  sigemptyset(mask);
  sigaddset(mask, SIGCHLD);
  sigaddset(mask, SIGTERM);
  sigaddset(mask, SIGINT);
  sigaddset(mask, SIGHUP);
  sigaddset(mask, SIGQUIT);
  sigaddset(mask, SIGUSR1);
  sigaddset(mask, SIGUSR2);
  if (sigprocmask(SIG_BLOCK, mask, NULL) < 0)
    return pi_fail(e, "sigprocmask", errno, NULL);
  signal(SIGPIPE, SIG_IGN);
  g.sigfd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (g.sigfd < 0)
    return pi_fail(e, "signalfd", errno, NULL);

  /* Our mount namespace is a copy of the host's: make it a slave, so nothing the
   * sandbox mounts propagates back while mounts the host adds later still reach the
   * containers that ask for them (`rslave` binds), as with runc. /proc stays the
   * host's on purpose (host pids in fdinfo). */
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
    return pi_fail(e, "make_private", errno, "/");
  g.own_pidns_fd = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  if (g.own_pidns_fd < 0)
    return pi_fail(e, "open_pidns", errno, "/proc/self/ns/pid");
  {
    /* Not pid 1: run by a test in the host's pid namespace, or born in a pid namespace
     * the spec names (docs/decisions/0036). Only in the host's does the supervisor
     * have a pid here; in a joined one it is outside (pid 0) like any other host
     * process, and a peer with a pid is a process of that namespace. /proc is the
     * host's, so /proc/1 is the host's init (unreadable from a user namespace: not
     * the host's namespace then either). */
    struct stat own, host;

    g.any_peer_pid = getpid() != 1 && fstat(g.own_pidns_fd, &own) == 0 &&
                     stat("/proc/1/ns/pid", &host) == 0 && own.st_ino == host.st_ino &&
                     own.st_dev == host.st_dev;
  }

  if ((rv = apply_sandbox_plan(dir, e)) < 0)
    return rv;

  if ((size_t)snprintf(path, sizeof path, "%s/exits.log", dir) >= sizeof path)
    return pi_fail(e, "open_exits_log", ENAMETOOLONG, dir);
  g.exits_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (g.exits_fd < 0)
    return pi_fail(e, "open_exits_log", errno, path);

  if ((rv = listen_on(&g.rep, nng_rep0_open, dir, "control.sock", "listen_control", e)) < 0)
    return rv;
  /* A reply to a vanished requester must not hold up the loop. */
  nng_socket_set_ms(g.rep, NNG_OPT_SENDTIMEO, 1000);
  g.subfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (g.subfd < 0)
    return pi_fail(e, "eventfd", errno, NULL);
  if ((rv = listen_on(&g.pub, nng_pub0_open, dir, "events.sock", "listen_events", e)) < 0)
    return rv;
  return 0;
}

/* On nng's thread, when a subscriber's pipe is attached: wake the main loop, which
 * then publishes EV_PROBE. A supervisor learns its subscription is live without a
 * round trip per try (PROBE_EVENTS stays for reattaching to a running init). */
static void on_subscriber(nng_pipe p, nng_pipe_ev ev, void *arg)
{
  uint64_t one = 1;

  (void)p;
  (void)ev;
  (void)arg;
  if (write(g.subfd, &one, sizeof one) < 0) {
    /* Counter saturated or fd gone: the supervisor falls back to PROBE_EVENTS. */
  }
}

/* Forwarded like tini does: the root container's process is the workload. */
static void on_signal(int signo)
{
  struct pi_proc *root = g.root_ct != NULL ? g.root_ct->root : NULL;

  if (root != NULL && root->state == PD_STATE_RUNNING && root->pidfd >= 0) {
    syscall(SYS_pidfd_send_signal, root->pidfd, signo, NULL, 0);
    return;
  }
  if (signo == SIGTERM || signo == SIGINT) {
    nng_close(g.rep);
    nng_close(g.pub);
    _exit(128 + signo);
  }
}

static void drain_signals(void)
{
  struct signalfd_siginfo si;
  int chld = 0;

  while (read(g.sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
    if (si.ssi_signo == SIGCHLD)
      chld = 1;
    else
      on_signal((int)si.ssi_signo);
  }
  /* SIGCHLD coalesces; one waitpid sweep covers however many were queued. */
  if (chld)
    pi_reap();
}

/* The launcher set PR_SET_PDEATHSIG so that we die with a supervisor that dies before
 * it records our pid. Once `init.pid` exists in the sandbox dir (the supervisor writes
 * it as soon as the launch returns, well before it reads our ready report), a later
 * supervisor can find us: from then on we outlive supervisors, as sandboxes must. A
 * caller that never writes it (a bare launch) gets the setting cleared after 500 ms. */
static void adopted(const char *dir)
{
  char path[PATH_MAX];
  struct stat st;

  if ((size_t)snprintf(path, sizeof path, "%s/init.pid", dir) < sizeof path) {
    for (int i = 0; i < 500 && stat(path, &st) < 0; i++) {
      struct timespec ms = {0, 1000000};
      nanosleep(&ms, NULL);
    }
  }
  (void)prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
}

int main(int argc, char **argv)
{
  struct pi_error e;
  struct pollfd *pfd = NULL;
  unsigned cap = 0;
  sigset_t mask;
  int rv, recvfd;

  memset(&e, 0, sizeof e);
  if (argc != 2) {
    pi_diag("usage: paddock-init <sandboxDir>");
    pi_fail(&e, "usage", EINVAL, NULL);
    ready_report(&e);
    return 127;
  }
  if (startup(argv[1], &mask, &e) < 0) {
    pi_diag("%s: %s (%s)", e.step, strerror(e.err), e.detail);
    ready_report(&e);
    _exit(127);
  }
  if ((rv = nng_socket_get_int(g.rep, NNG_OPT_RECVFD, &recvfd)) != 0) {
    pi_fail(&e, "recv_fd", nng_errno(rv), nng_strerror(rv));
    ready_report(&e);
    _exit(127);
  }
  adopted(argv[1]);
  ready_report(NULL);

  for (;;) {
    unsigned n;

    /* Three fixed fds, then one per output relay (logrelay.c). */
    if (cap < 3 + pi_relay_count()) {
      struct pollfd *grown = realloc(pfd, (3 + pi_relay_count() + 8) * sizeof *pfd);

      if (grown == NULL) {
        pi_diag("poll: out of memory for %u fds", 3 + pi_relay_count());
        abort();
      }
      pfd = grown;
      cap = 3 + pi_relay_count() + 8;
    }
    pfd[0] = (struct pollfd){.fd = g.sigfd, .events = POLLIN};
    pfd[1] = (struct pollfd){.fd = recvfd, .events = POLLIN};
    pfd[2] = (struct pollfd){.fd = g.subfd, .events = POLLIN};
    n = pi_relay_pollfds(pfd + 3, cap - 3);
    if (poll(pfd, 3 + n, -1) < 0) {
      if (errno == EINTR)
        continue;
      pi_diag("poll: %s", strerror(errno));
      abort();
    }
    /* Output before exits: an exit found below drains the pipes itself anyway. */
    pi_relay_ready(pfd + 3, n);
    if (pfd[0].revents)
      drain_signals();
    if (pfd[1].revents)
      pi_handle_requests(&arena);
    if (pfd[2].revents) {
      uint64_t n;

      if (read(g.subfd, &n, sizeof n) == (ssize_t)sizeof n)
        pi_publish_probe();
    }
  }
}
