/* paddock wire format v1 — C side. See docs/protocol.md.
 *
 * The decoder runs inside paddock-init, next to untrusted code: every length is
 * checked against the enclosing buffer, every string is copied NUL-terminated into a
 * caller-supplied arena (no malloc), and anything outside the spec is rejected. */
#ifndef PADDOCK_PROTO_H
#define PADDOCK_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PD_MAGIC0 0x50
#define PD_MAGIC1 0x44
#define PD_VERSION 1
#define PD_HEADER_SIZE 12
#define PD_MAX_BODY (1u << 20)
#define PD_MAX_STR 4096u
#define PD_MAX_TEXT (1u << 20)
/* SECCOMP_BPF: struct sock_filter[] (8 bytes each), at most BPF_MAXINSNS (4096). */
#define PD_SOCK_FILTER_SIZE 8u
#define PD_MAX_SECCOMP_BPF (4096u * PD_SOCK_FILTER_SIZE)

enum pd_type {
  PD_PING = 0x0001,
  PD_START_CONTAINER = 0x0002,
  PD_EXEC = 0x0003,
  PD_PROCESSES = 0x0004,
  PD_SIGNAL = 0x0005,
  PD_WAIT = 0x0006,
  PD_WAIT_PID = 0x0007,
  PD_STACKS = 0x0009,
  PD_DESTROY_CONTAINER = 0x000A,
  PD_PROBE_EVENTS = 0x000B,
  PD_ADOPT = 0x000C,
  PD_SANDBOX_PLAN = 0x0100,
  PD_EV_STARTED = 0x4001,
  PD_EV_EXITED = 0x4002,
  PD_EV_PROBE = 0x4003,
  PD_OK = 0x8000,
  PD_ERROR = 0x8001,
};

enum pd_tag {
  PD_T_CID = 1, PD_T_PID = 2, PD_T_HOST_PID = 3, PD_T_SIGNO = 4, PD_T_ALL = 5,
  PD_T_PLAN = 6, PD_T_EXIT_CODE = 7, PD_T_SIGNAL = 8, PD_T_TIME_NS = 9,
  PD_T_CODE = 10, PD_T_ERRNO = 11, PD_T_STEP = 12, PD_T_MSG = 13, PD_T_PROC = 14,
  PD_T_STATE = 15, PD_T_TEXT = 16, PD_T_SANDBOX_ID = 17, PD_T_HOSTNAME = 18,
  PD_T_DOMAINNAME = 19, PD_T_LO_UP = 20, PD_T_KIND = 21, PD_T_LOG_SIZE_MAX = 24,
  PD_T_ARG = 32, PD_T_ENV = 33, PD_T_CWD = 34, PD_T_UID = 35, PD_T_GID = 36,
  PD_T_ADD_GID = 37, PD_T_UMASK = 38, PD_T_STDIN_PATH = 40, PD_T_STDOUT_PATH = 41,
  PD_T_STDERR_PATH = 42, PD_T_STDIO_INHERIT = 43, PD_T_ROOTFS = 44, PD_T_ROOTFS_RO = 45,
  PD_T_ROOTFS_PROPAGATION = 46, PD_T_MOUNT = 47, PD_T_MOUNT_SOURCE = 48,
  PD_T_MOUNT_DEST = 49, PD_T_MOUNT_TYPE = 50, PD_T_MOUNT_FLAGS = 51,
  PD_T_MOUNT_DATA = 52, PD_T_MOUNT_PROPAGATION = 53, PD_T_MASKED = 54,
  PD_T_READONLY = 55, PD_T_DEVICE = 56, PD_T_NS_FLAGS = 57, PD_T_NO_PIVOT = 58,
  PD_T_TERMINAL = 59, PD_T_CAP_BOUNDING = 60, PD_T_CAP_EFFECTIVE = 61,
  PD_T_CAP_PERMITTED = 62, PD_T_CAP_INHERITABLE = 63, PD_T_CAP_AMBIENT = 64,
  PD_T_RLIMIT = 65, PD_T_RLIMIT_TYPE = 66, PD_T_RLIMIT_SOFT = 67, PD_T_RLIMIT_HARD = 68,
  PD_T_NO_NEW_PRIVS = 69, PD_T_OOM_SCORE_ADJ = 70, PD_T_SYSCTL = 71,
  PD_T_SECCOMP_BPF = 72, PD_T_SECCOMP_FLAGS = 73,
  PD_T_CONSOLE_SOCKET = 80, PD_T_CONSOLE_ROWS = 81, PD_T_CONSOLE_COLS = 82, PD_T_HOLD = 83,
  PD_T_HELD_EXEC = 84,
  PD_T_HOOK = 85, PD_T_HOOK_KIND = 86, PD_T_HOOK_PATH = 87, PD_T_HOOK_TIMEOUT = 88,
  PD_T_HOOK_STATE = 89, PD_T_PID_NS_OF = 90, PD_T_CGROUP_PROCS = 91, PD_T_CGROUP_NS_OF = 92,
  PD_T_MOUNT_NS_PATH = 120,
};

/* HOOK_KIND: when paddock-init runs a container hook. */
enum pd_hook_kind { PD_HOOK_CREATE_CONTAINER = 1, PD_HOOK_START_CONTAINER = 2 };

/* Tags are looked up in tables of this size; every tag number is below it. */
#define PD_TAG_LIMIT 128

enum pd_code {
  PD_E_NOT_FOUND = 1, PD_E_EXISTS = 2, PD_E_LAUNCH = 3, PD_E_BAD_MESSAGE = 4,
  PD_E_BAD_STATE = 5, PD_E_INTERNAL = 6, PD_E_BAD_SIGNAL = 7,
};

enum pd_kind { PD_KIND_CONTAINER = 1, PD_KIND_EXEC = 2 };
enum pd_state { PD_STATE_RUNNING = 1, PD_STATE_EXITED = 2 };

struct pd_mount {
  const char *source; /* NULL when absent */
  const char *dest;
  const char *type;
  const char *data;
  uint64_t flags;
  uint64_t propagation;
};

struct pd_rlimit {
  uint32_t type; /* RLIMIT_* number */
  uint64_t soft, hard;
};

/* An OCI createContainer/startContainer hook (docs/decisions/0013). */
struct pd_hook {
  uint32_t kind; /* PD_HOOK_* */
  const char *path;
  const char **argv; /* NULL-terminated; argc 0: run with argv {path} */
  uint32_t argc;
  const char **envp; /* NULL-terminated, exactly the hook's environment */
  uint32_t envc;
  uint32_t timeout_s; /* > 0 */
};

struct pd_plan {
  const char **argv; /* NULL-terminated, argc >= 1 */
  uint32_t argc;
  const char **envp; /* NULL-terminated */
  uint32_t envc;
  const char *cwd; /* NULL: "/" */
  uint32_t uid, gid;
  const uint32_t *add_gids;
  uint32_t n_add_gids;
  uint32_t umask; /* 022 when absent */
  const char *stdin_path, *stdout_path, *stderr_path; /* NULL: /dev/null */
  uint32_t stdio_inherit;
  const char *rootfs; /* NULL for exec plans */
  uint32_t rootfs_ro;
  uint64_t rootfs_propagation; /* MS_REC|MS_SLAVE when absent (runc's default) */
  struct pd_mount *mounts;
  uint32_t n_mounts;
  const char **masked;
  uint32_t n_masked;
  const char **readonly;
  uint32_t n_readonly;
  const char **devices;
  uint32_t n_devices;
  uint32_t ns_flags;
  uint32_t no_pivot;
  uint32_t terminal;
  /* Capabilities: every set is exact (0 = none); paddock-init applies them even
   * without has_caps, so a plan without them gets none (decision 0026). */
  int has_caps;
  uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
  struct pd_rlimit *rlimits;
  uint32_t n_rlimits;
  uint32_t no_new_privs;
  int has_oom_score_adj;
  int32_t oom_score_adj;
  const char **sysctls; /* "key=value", container plans only */
  uint32_t n_sysctls;
  /* Seccomp filter: struct sock_filter[] copied into the arena (16-byte aligned), or
   * NULL; seccomp_len is in bytes (a non-zero multiple of 8, at most
   * PD_MAX_SECCOMP_BPF). Loaded as the last step before execve. */
  const uint8_t *seccomp_bpf;
  uint32_t seccomp_len;
  uint32_t seccomp_flags; /* SECCOMP_FILTER_FLAG_* */
  /* TERMINAL: the pty master goes to this unix socket (SCM_RIGHTS); 0 rows/cols:
   * leave the kernel's default size. */
  const char *console_socket;
  uint32_t console_rows, console_cols;
  /* START_CONTAINER only: stop before execve until the next START_CONTAINER. */
  uint32_t hold;
  /* START_CONTAINER only: join the pid namespace of this running container of the
   * sandbox (a pod's shared process namespace) instead of making one; NULL: none. */
  const char *pid_ns_of;
  /* cgroup.procs files (init's view) the child writes "0" to before it makes or joins
   * its cgroup namespace (exec: before it joins the container's namespaces). */
  const char **cgroup_procs;
  uint32_t n_cgroup_procs;
  /* START_CONTAINER only: join the cgroup namespace of this running container of the
   * sandbox, after cgroup_procs, instead of making one; NULL: none. */
  const char *cgroup_ns_of;
  /* START_CONTAINER only: the mount namespace file the container joins (setns) and
   * builds its rootfs in, as runc does, instead of making one; NULL: none. */
  const char *mount_ns_path;
  /* Container hooks, in order, and the state JSON object they read on stdin (minus
   * "status" and "pid", which init adds before its closing brace). */
  struct pd_hook *hooks;
  uint32_t n_hooks;
  const char *hook_state; /* NULL when absent */
};

/* One decoded message. Fields not present keep their zero value; has_* flags tell
 * presence where zero is a meaningful value. */
struct pd_msg {
  uint16_t type;
  const char *cid;
  int32_t pid; int has_pid;
  int32_t host_pid;
  int32_t signo; int has_signo;
  uint32_t all;
  struct pd_plan *plan; /* START_CONTAINER / EXEC */
  uint32_t code;
  int32_t err;
  const char *step, *msg;
  uint32_t state, kind;
  int32_t exit_code, signal;
  uint64_t time_ns;
  const char *text;
  /* SANDBOX_PLAN */
  const char *sandbox_id, *hostname, *domainname;
  uint32_t lo_up;
  uint64_t log_size_max; /* 0: container output files are not capped */
};

/* Bump allocator over caller memory. */
struct pd_arena {
  unsigned char *base;
  size_t size;
  size_t used;
};

/* Decode one whole message (len must equal 12 + body length).
 * Returns 0, or -EINVAL (malformed), -E2BIG (a limit exceeded), -ENOMEM (arena full).
 * On failure errbuf (may be NULL) receives a short lowercase reason naming the tag. */
int pd_decode(const uint8_t *buf, size_t len, struct pd_arena *arena,
              struct pd_msg *out, char *errbuf, size_t errlen);

/* Length of the message at buf if its header is complete and valid, else -1.
 * Used to walk exits.log. */
long pd_message_length(const uint8_t *buf, size_t len);

/* Writer for the few messages C produces (replies, events, exit records). */
struct pd_writer {
  uint8_t *buf;
  size_t cap;
  size_t len;
  size_t nest[4]; /* offsets of open nest fields */
  int depth;
  int overflow; /* set when cap was exceeded; pd_w_finish then returns -1 */
};

void pd_w_begin(struct pd_writer *w, uint8_t *buf, size_t cap, uint16_t type);
void pd_w_u32(struct pd_writer *w, uint16_t tag, uint32_t v);
void pd_w_i32(struct pd_writer *w, uint16_t tag, int32_t v);
void pd_w_u64(struct pd_writer *w, uint16_t tag, uint64_t v);
void pd_w_str(struct pd_writer *w, uint16_t tag, const char *s); /* NULL: nothing */
void pd_w_nest_begin(struct pd_writer *w, uint16_t tag);
void pd_w_nest_end(struct pd_writer *w);
/* Patches the body length; returns the total message length or -1. */
long pd_w_finish(struct pd_writer *w);

#endif
