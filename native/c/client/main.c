/* paddock: the command line as a small static program (docs/decisions/0044).
 *
 * It speaks runc's command line by not reading it: the whole argv goes to paddockd,
 * the resident supervisor of the call's --root, over <root>/paddockd.sock, with the
 * cwd and the PADDOCK_* environment. paddockd takes our fds 0-2 itself (pidfd_getfd
 * on the pid the kernel tells it), writes to them, and answers with frames: the exit
 * code, or a request to start a process as our child (the relay of a waitable exec,
 * and paddock-init itself, so that conmon and containerd's shim, subreapers waiting
 * for those pids, find them below this call as with runc).
 *
 * No supervisor: one is started (setsid, detached) and the connect retried, within a
 * bound. --no-daemon or PADDOCK_NO_DAEMON=1, a build without dist/cli/paddockd.js, a
 * socket path too long for sun_path, or paddockd asking for it ("F"): the call runs in
 * Node as before (node dist/cli/paddock.js). Every wait is bounded; every failure is
 * one line "paddock: ... (CODE)" on stderr and exit 1. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "launch_request.h"

#define PROTOCOL 2
#define MAX_FRAME (1u << 20)
#define START_WAIT_MS 15000   /* a cold paddockd: Node, the engine, reattach of the root */
#define RESTART_MS 3000      /* started, still not listening: start another */
#define ACCEPT_WAIT_MS 5000   /* a listening paddockd answers H at once */
#define ANSWER_WAIT_MS 10000  /* paddockd sends K every second while a call runs */
#define MAX_ATTEMPTS 4        /* connects after a dead or draining daemon */

extern char **environ;

static char pkg_dir[PATH_MAX];
static char self_exe[PATH_MAX];

static void die(const char *code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  dprintf(2, "paddock: %s (%s)\n", msg, code);
  exit(1);
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* node: $PADDOCK_NODE, else the first `node` on $PATH (or the default path execvp uses). */
static const char *find_node(char *buf, size_t cap) {
  const char *env = getenv("PADDOCK_NODE");
  const char *p = getenv("PATH");

  if (env && *env)
    return env;
  if (!p || !*p)
    p = "/usr/local/bin:/usr/bin:/bin";
  while (*p) {
    const char *colon = strchr(p, ':');
    size_t n = colon ? (size_t)(colon - p) : strlen(p);
    if (n > 0 && n + 6 < cap) {
      memcpy(buf, p, n);
      memcpy(buf + n, "/node", 6);
      if (access(buf, X_OK) == 0)
        return buf;
    }
    p += n + (colon ? 1 : 0);
  }
  return "node";
}

/* Today's Node CLI with our argv (minus --no-daemon); never returns. */
static void run_in_process(int argc, char **argv) {
  char node_buf[PATH_MAX], script[PATH_MAX + 32];
  const char *node = find_node(node_buf, sizeof node_buf);
  char **args = calloc((size_t)argc + 3, sizeof *args);
  int n = 0;

  if (!args)
    die("ENOMEM", "out of memory");
  snprintf(script, sizeof script, "%s/dist/cli/paddock.js", pkg_dir);
  args[n++] = (char *)node;
  args[n++] = script;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--no-daemon") != 0)
      args[n++] = argv[i];
  args[n] = NULL;
  execv(node, args);
  execvp(node, args);
  die("ENOENT", "cannot run %s %s: %s", node, script, strerror(errno));
}

/* The global flags before the verb that matter here; the rest is paddockd's to read. */
struct call {
  const char *root;
  int no_daemon;
  int systemd_cgroup;
  const char *verb;
};

static int takes_value(const char *a) {
  return !strcmp(a, "--root") || !strcmp(a, "--log") || !strcmp(a, "--log-format") ||
         !strcmp(a, "--rootless") || !strcmp(a, "--criu");
}

static void read_call(int argc, char **argv, struct call *c) {
  memset(c, 0, sizeof *c);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {
      c->verb = a;
      return;
    }
    if (!strcmp(a, "--")) {
      c->verb = i + 1 < argc ? argv[i + 1] : NULL;
      return;
    }
    if (!strcmp(a, "--no-daemon"))
      c->no_daemon = 1;
    else if (!strcmp(a, "--systemd-cgroup"))
      c->systemd_cgroup = 1;
    else if (!strncmp(a, "--root=", 7))
      c->root = a + 7;
    else if (takes_value(a) && i + 1 < argc) {
      if (!strcmp(a, "--root"))
        c->root = argv[i + 1];
      i++;
    }
  }
}

/* ---- the wire (bin/resident/protocol.ts) ---- */

struct buf {
  char *p;
  size_t len, cap;
};

static void put(struct buf *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->len + n)
      cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p)
      die("ENOMEM", "out of memory");
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void put_str(struct buf *b, const char *s) { put(b, s, strlen(s) + 1); }

static void put_num(struct buf *b, long v) {
  char t[32];
  snprintf(t, sizeof t, "%ld", v);
  put_str(b, t);
}

static int send_all(int fd, const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int send_frame(int fd, char type, const void *payload, uint32_t len) {
  unsigned char head[5] = {(unsigned char)type, len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff,
                           (len >> 24) & 0xff};
  if (send_all(fd, head, 5) < 0)
    return -1;
  return len ? send_all(fd, payload, len) : 0;
}

/* Reads exactly n bytes, waiting at most `wait_ms` for each piece: 1 done, 0 EOF
 * before any byte, -1 error, -2 timeout. */
static int read_exact(int fd, void *dst, size_t n, int wait_ms) {
  char *p = dst;
  size_t got = 0;
  while (got < n) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, wait_ms);
    if (r < 0 && errno == EINTR)
      continue;
    if (r == 0)
      return -2;
    if (r < 0)
      return -1;
    ssize_t k = read(fd, p + got, n - got);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return -1;
    if (k == 0)
      return got == 0 ? 0 : -1;
    got += (size_t)k;
  }
  return 1;
}

/* The identity paddockd compares (bin/resident/version.ts): wire version, and size and
 * mtime of the daemon bundle of our own package. */
static int daemon_version(char *out, size_t cap, const char *daemon_js) {
  struct stat st;
  if (stat(daemon_js, &st) < 0)
    return -1;
  snprintf(out, cap, "p%d %lld:%lld", PROTOCOL, (long long)st.st_size, (long long)st.st_mtim.tv_sec);
  return 0;
}

/* `lost`: this call was taken by a paddockd that died before answering; the request
 * says so (PADDOCK_LOST_CALL=1), and the verb counts "already done" as done. */
static void build_request(struct buf *b, const char *version, int argc, char **argv, int lost) {
  char cwd[PATH_MAX];
  size_t envc = lost ? 1 : 0;
  uint32_t len;

  if (!getcwd(cwd, sizeof cwd))
    die("ENOENT", "cannot read the current directory: %s", strerror(errno));
  put(b, "PDK1\0\0\0\0", 8);
  put_str(b, version);
  put_str(b, cwd);
  put_num(b, argc - 1);
  for (int i = 1; i < argc; i++)
    put_str(b, argv[i]);
  for (char **e = environ; *e; e++)
    if (!strncmp(*e, "PADDOCK_", 8) && strchr(*e, '=') != *e + 8 && strncmp(*e, "PADDOCK_LOST_CALL=", 18))
      envc++;
  put_num(b, (long)envc);
  for (char **e = environ; *e; e++)
    if (!strncmp(*e, "PADDOCK_", 8) && strchr(*e, '=') != *e + 8 && strncmp(*e, "PADDOCK_LOST_CALL=", 18))
      put_str(b, *e);
  if (lost)
    put_str(b, "PADDOCK_LOST_CALL=1");
  len = (uint32_t)(b->len - 8);
  b->p[4] = (char)(len & 0xff);
  b->p[5] = (char)((len >> 8) & 0xff);
  b->p[6] = (char)((len >> 16) & 0xff);
  b->p[7] = (char)((len >> 24) & 0xff);
}

/* Starts paddockd for `root`, detached: its own session, stdio on /dev/null (it logs
 * to <root>/paddockd.log), and not our child (double fork), so it outlives the call
 * and is nobody's zombie. */
static void start_daemon(const char *root, const char *daemon_js, int systemd_cgroup) {
  pid_t pid = fork();
  if (pid < 0)
    die("EAGAIN", "cannot start paddockd: fork: %s", strerror(errno));
  if (pid == 0) {
    char node_buf[PATH_MAX];
    const char *node = find_node(node_buf, sizeof node_buf);
    char *args[8];
    int n = 0, devnull;

    setsid();
    if (fork() != 0)
      _exit(0);
    devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
      dup2(devnull, 2);
      if (devnull > 2)
        close(devnull);
    }
    args[n++] = (char *)node;
    args[n++] = (char *)daemon_js;
    args[n++] = "--root";
    args[n++] = (char *)root;
    if (systemd_cgroup)
      args[n++] = "--systemd-cgroup";
    /* It outlives this call: it must not stay in the caller's cgroups (conmon's scope). */
    args[n++] = "--leave-caller-cgroup";
    args[n] = NULL;
    execv(node, args);
    execvp(node, args);
    _exit(127);
  }
  waitpid(pid, NULL, 0);
}

/* Refuses a socket that another user could have put there: paddockd's is its owner's
 * (ours, or root's), a socket, and in a folder we trust as much as --root. */
static int check_socket(const char *path) {
  struct stat st;
  if (lstat(path, &st) < 0)
    return -1;
  if (!S_ISSOCK(st.st_mode))
    die("EPERM", "%s is not a socket", path);
  if (st.st_uid != geteuid() && st.st_uid != 0)
    die("EPERM", "%s belongs to uid %u, not to us (uid %u) or root: not talking to it", path,
        (unsigned)st.st_uid, (unsigned)geteuid());
  return 0;
}

static int connect_to(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int fd;

  if (check_socket(path) < 0)
    return -ENOENT;
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die("EMFILE", "socket: %s", strerror(errno));
  strcpy(sa.sun_path, path);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

/* "S": start this program again with argv as our child; its pid goes back as "P". */
static void spawn_self(int sock, const char *payload, uint32_t len) {
  char *args[256];
  int n = 0;
  char reply[32];
  pid_t pid;

  args[n++] = self_exe;
  for (uint32_t off = 0; off < len && n < 255;) {
    args[n++] = (char *)payload + off;
    off += (uint32_t)strnlen(payload + off, len - off) + 1;
  }
  args[n] = NULL;
  pid = fork();
  if (pid == 0) {
    execv(self_exe, args);
    _exit(127);
  }
  snprintf(reply, sizeof reply, "%d", pid < 0 ? -errno : (int)pid);
  send_frame(sock, 'P', reply, (uint32_t)strlen(reply));
}

enum outcome { DONE, RETRY, RETRY_LOST, IN_PROCESS };

/* Sends the call and serves paddockd's frames until its exit code. */
static enum outcome converse(int sock, const struct buf *req, const char *sock_path, int *code,
                             int idempotent, int retry_lost) {
  int accepted = 0;

  /* A failed send is not the end: paddockd refuses a peer (E) before it reads the
   * request, and closes; a request sent after that close fails with EPIPE while the
   * refusal waits unread. Read first: no frame at all is a RETRY below. */
  (void)send_all(sock, req->p, req->len);
  for (;;) {
    unsigned char head[5];
    uint32_t len;
    char *payload = NULL;
    int r = read_exact(sock, head, 5, accepted ? ANSWER_WAIT_MS : ACCEPT_WAIT_MS);

    if (r == -2)
      die("ETIMEOUT", "paddockd at %s did not answer within %d s", sock_path,
          (accepted ? ANSWER_WAIT_MS : ACCEPT_WAIT_MS) / 1000);
    if (r <= 0) {
      /* Gone before taking the call: a daemon that was stopping; connect again.
       * Gone during the call: whether it took effect is unknown, except for calls
       * that change nothing, which are simply asked again. */
      if (!accepted || idempotent)
        return RETRY;
      if (retry_lost)
        return RETRY_LOST;
      die("EDAEMON", "paddockd for %s ended during the call; its outcome is unknown (paddock state tells)",
          sock_path);
    }
    len = (uint32_t)head[1] | (uint32_t)head[2] << 8 | (uint32_t)head[3] << 16 | (uint32_t)head[4] << 24;
    if (len > MAX_FRAME || !strchr("HKXFVESL", head[0]))
      die("EPROTOCOL", "paddockd at %s answered something that is not paddock's protocol", sock_path);
    if (len > 0) {
      payload = malloc(len + 1);
      if (!payload)
        die("ENOMEM", "out of memory");
      if (read_exact(sock, payload, len, ANSWER_WAIT_MS) != 1)
        die("EPROTOCOL", "paddockd at %s sent a truncated frame", sock_path);
      payload[len] = '\0';
    }
    switch (head[0]) {
    case 'H':
      accepted = 1;
      break;
    case 'K':
      break;
    case 'X':
      *code = payload ? atoi(payload) : 1;
      free(payload);
      return DONE;
    case 'F':
      free(payload);
      return IN_PROCESS;
    case 'V':
      free(payload);
      return RETRY;
    case 'E':
      dprintf(2, "paddock: %s\n", payload ? payload : "refused by paddockd");
      exit(1);
    case 'S':
      spawn_self(sock, payload ? payload : "", len);
      break;
    case 'L':
      launch_from_request(sock, payload ? payload : "", len);
      break;
    }
    free(payload);
  }
}

static int verb_in(const char *verb, const char *const *list) {
  for (int i = 0; verb && list[i]; i++)
    if (!strcmp(verb, list[i]))
      return 1;
  return 0;
}

/* Verbs whose effect a second paddockd can tell from the state it attaches: asked again
 * after a paddockd died during the call, "already done" answers 0 (create of a sandbox
 * whose init is our child, start of a container that runs or ran, kill of one that
 * stopped, delete of one that is gone). */
static int retries_lost(const char *verb) {
  static const char *const v[] = {"create", "start", "kill", "delete", NULL};
  return verb_in(verb, v);
}

static int is_idempotent(const char *verb) {
  static const char *const ro[] = {"state", "list", "ps", "features", "spec", NULL};
  return verb_in(verb, ro);
}

int main(int argc, char **argv) {
  struct call c;
  char root[PATH_MAX], sock_path[PATH_MAX + 32], daemon_js[PATH_MAX + 32], version[128];
  const char *nd = getenv("PADDOCK_NO_DAEMON");
  const char *root_arg;
  struct buf req = {0};
  int started = 0;
  long started_at = 0;
  ssize_t n;

  n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
  if (n <= 0)
    die("ENOENT", "cannot find this program (/proc/self/exe): %s", strerror(errno));
  self_exe[n] = '\0';
  /* <pkg>/native/build/paddock: the package is two folders up. */
  snprintf(pkg_dir, sizeof pkg_dir, "%s", self_exe);
  for (int up = 0; up < 3; up++) {
    char *slash = strrchr(pkg_dir, '/');
    if (slash)
      *slash = '\0';
  }
  read_call(argc, argv, &c);
  snprintf(daemon_js, sizeof daemon_js, "%s/dist/cli/paddockd.js", pkg_dir);
  if (c.no_daemon || (nd && !strcmp(nd, "1")) || !c.verb || daemon_version(version, sizeof version, daemon_js) < 0)
    run_in_process(argc, argv);

  root_arg = c.root ? c.root : (getenv("PADDOCK_ROOT") && *getenv("PADDOCK_ROOT") ? getenv("PADDOCK_ROOT") : "/run/paddock");
  if (root_arg[0] == '/') {
    snprintf(root, sizeof root, "%s", root_arg);
  } else {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
      die("ENOENT", "cannot read the current directory: %s", strerror(errno));
    if ((size_t)snprintf(root, sizeof root, "%s/%s", cwd, root_arg) >= sizeof root)
      die("ENAMETOOLONG", "--root %s is too long", root_arg);
  }
  if (snprintf(sock_path, sizeof sock_path, "%s/paddockd.sock", root) >= (int)sizeof(((struct sockaddr_un *)0)->sun_path))
    run_in_process(argc, argv);
  build_request(&req, version, argc, argv, 0);
  signal(SIGPIPE, SIG_IGN);

  for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    long give_up = now_ms() + START_WAIT_MS;
    int sock, code = 1;

    for (;;) {
      sock = connect_to(sock_path);
      if (sock >= 0)
        break;
      if (sock != -ENOENT && sock != -ECONNREFUSED)
        die("ECONNREFUSED", "cannot connect to %s: %s", sock_path, strerror(-sock));
      /* The root may not exist yet (the first create): paddockd makes it. One started
       * but not listening after RESTART_MS may have died before binding (killed, out of
       * memory): start another. Extra ones are harmless: paddockd's lock keeps one, and
       * the others leave once its socket answers. */
      if (!started || now_ms() - started_at > RESTART_MS) {
        start_daemon(root, daemon_js, c.systemd_cgroup);
        started = 1;
        started_at = now_ms();
      }
      if (now_ms() > give_up)
        die("ETIMEOUT", "paddockd for %s did not start within %d s (see %s/paddockd.log)", root,
            START_WAIT_MS / 1000, root);
      usleep(3000);
    }
    switch (converse(sock, &req, sock_path, &code, is_idempotent(c.verb), retries_lost(c.verb))) {
    case DONE:
      return code;
    case IN_PROCESS:
      close(sock);
      run_in_process(argc, argv);
      break;
    case RETRY_LOST:
      req.len = 0;
      build_request(&req, version, argc, argv, 1);
      /* fall through */
    case RETRY:
      close(sock);
      /* Whatever stopped that daemon, the next one is ours to start. */
      started = 0;
      usleep(10000);
      break;
    }
  }
  die("EDAEMON", "no paddockd for %s took the call after %d attempts (see %s/paddockd.log)", root,
      MAX_ATTEMPTS, root);
}
