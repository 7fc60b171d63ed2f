/* paddock wire format v1 decoder. See docs/protocol.md.
 *
 * Two passes over the untrusted bytes: `check` validates everything (bounds, tags
 * per scope, value sizes, duplicates, limits, UTF-8) without touching the arena;
 * `fill_*` then copies into the arena, trusting only what `check` proved. Keeping
 * the passes separate means no half-filled struct can ever depend on a length that
 * was not verified first. */
#include "paddock_proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pd_schema.h"

/* Tag sets are bitmasks indexed by tag number; tags go past 63, so 128 bits
 * (every tag is below PD_TAG_LIMIT, checked before BIT() is ever applied). */
typedef unsigned __int128 tagset;
#define BIT(t) ((tagset)1 << (t))
#define MAX_DEPTH 3
/* MS_REC | MS_SLAVE, without dragging in <sys/mount.h>: runc's default rootfs propagation
 * (host mounts flow in, none flow out). */
#define MS_REC_SLAVE 0x84000u

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

struct scope {
  const char *name;
  tagset allowed, required, rep;
};

#define PLAN_TAGS                                                                            \
  (BIT(PD_T_ARG) | BIT(PD_T_ENV) | BIT(PD_T_CWD) | BIT(PD_T_UID) | BIT(PD_T_GID) |           \
   BIT(PD_T_ADD_GID) | BIT(PD_T_UMASK) | BIT(PD_T_STDIN_PATH) | BIT(PD_T_STDOUT_PATH) |      \
   BIT(PD_T_STDERR_PATH) | BIT(PD_T_STDIO_INHERIT) | BIT(PD_T_ROOTFS_RO) |                    \
   BIT(PD_T_ROOTFS_PROPAGATION) | BIT(PD_T_MOUNT) | BIT(PD_T_MASKED) | BIT(PD_T_READONLY) |  \
   BIT(PD_T_DEVICE) | BIT(PD_T_NS_FLAGS) | BIT(PD_T_NO_PIVOT) | BIT(PD_T_TERMINAL) |         \
   BIT(PD_T_CAP_BOUNDING) | BIT(PD_T_CAP_EFFECTIVE) | BIT(PD_T_CAP_PERMITTED) |              \
   BIT(PD_T_CAP_INHERITABLE) | BIT(PD_T_CAP_AMBIENT) | BIT(PD_T_RLIMIT) |                    \
   BIT(PD_T_NO_NEW_PRIVS) | BIT(PD_T_OOM_SCORE_ADJ) | BIT(PD_T_SECCOMP_BPF) |                 \
   BIT(PD_T_SECCOMP_FLAGS) | BIT(PD_T_CONSOLE_SOCKET) | BIT(PD_T_CONSOLE_ROWS) |              \
   BIT(PD_T_CONSOLE_COLS) | BIT(PD_T_CGROUP_PROCS))
#define PLAN_REP                                                                             \
  (BIT(PD_T_ARG) | BIT(PD_T_ENV) | BIT(PD_T_ADD_GID) | BIT(PD_T_MOUNT) | BIT(PD_T_MASKED) |  \
   BIT(PD_T_READONLY) | BIT(PD_T_DEVICE) | BIT(PD_T_RLIMIT) | BIT(PD_T_CGROUP_PROCS))

/* ROOTFS, SYSCTL, HOLD, PID_NS_OF, CGROUP_NS_OF, MOUNT_NS_PATH and the hooks only make sense when a new
 * container is built, so exec plans refuse them. */
static const struct scope SC_PLAN = {
    "plan", PLAN_TAGS | BIT(PD_T_ROOTFS) | BIT(PD_T_SYSCTL) | BIT(PD_T_HOLD) | BIT(PD_T_HOOK) | BIT(PD_T_HOOK_STATE) |
                BIT(PD_T_PID_NS_OF) | BIT(PD_T_CGROUP_NS_OF) | BIT(PD_T_MOUNT_NS_PATH),
    BIT(PD_T_ARG), PLAN_REP | BIT(PD_T_SYSCTL) | BIT(PD_T_HOOK)};
#define HOOK_REQ (BIT(PD_T_HOOK_KIND) | BIT(PD_T_HOOK_PATH) | BIT(PD_T_HOOK_TIMEOUT))
static const struct scope SC_HOOK = {"hook", HOOK_REQ | BIT(PD_T_ARG) | BIT(PD_T_ENV), HOOK_REQ,
                                     BIT(PD_T_ARG) | BIT(PD_T_ENV)};
static const struct scope SC_PLAN_EXEC = {"plan", PLAN_TAGS, BIT(PD_T_ARG), PLAN_REP};
static const struct scope SC_MOUNT = {
    "mount",
    BIT(PD_T_MOUNT_SOURCE) | BIT(PD_T_MOUNT_DEST) | BIT(PD_T_MOUNT_TYPE) | BIT(PD_T_MOUNT_FLAGS) |
        BIT(PD_T_MOUNT_DATA) | BIT(PD_T_MOUNT_PROPAGATION),
    BIT(PD_T_MOUNT_DEST) | BIT(PD_T_MOUNT_TYPE), 0};
#define RLIMIT_REQ (BIT(PD_T_RLIMIT_TYPE) | BIT(PD_T_RLIMIT_SOFT) | BIT(PD_T_RLIMIT_HARD))
static const struct scope SC_RLIMIT = {"rlimit", RLIMIT_REQ, RLIMIT_REQ, 0};
#define PROC_REQ (BIT(PD_T_CID) | BIT(PD_T_PID) | BIT(PD_T_HOST_PID) | BIT(PD_T_KIND) | BIT(PD_T_STATE))
static const struct scope SC_PROC = {"proc", PROC_REQ | BIT(PD_T_EXIT_CODE) | BIT(PD_T_SIGNAL),
                                     PROC_REQ, 0};

static const struct scope SC_EMPTY = {"message", 0, 0, 0};
static const struct scope SC_CID_PLAN = {"message", BIT(PD_T_CID) | BIT(PD_T_PLAN),
                                         BIT(PD_T_CID) | BIT(PD_T_PLAN), 0};
static const struct scope SC_EXEC = {"message", BIT(PD_T_CID) | BIT(PD_T_PLAN),
                                     BIT(PD_T_CID) | BIT(PD_T_PLAN), 0};
static const struct scope SC_PROCESSES = {"message", BIT(PD_T_CID), 0, 0};
static const struct scope SC_SIGNAL = {
    "message", BIT(PD_T_CID) | BIT(PD_T_SIGNO) | BIT(PD_T_PID) | BIT(PD_T_ALL),
    BIT(PD_T_CID) | BIT(PD_T_SIGNO), 0};
static const struct scope SC_CID = {"message", BIT(PD_T_CID), BIT(PD_T_CID), 0};
static const struct scope SC_WAIT_PID = {"message", BIT(PD_T_CID) | BIT(PD_T_PID),
                                         BIT(PD_T_CID) | BIT(PD_T_PID), 0};
static const struct scope SC_SANDBOX_PLAN = {
    "message", BIT(PD_T_SANDBOX_ID) | BIT(PD_T_HOSTNAME) | BIT(PD_T_DOMAINNAME) | BIT(PD_T_LO_UP) |
        BIT(PD_T_LOG_SIZE_MAX),
    BIT(PD_T_SANDBOX_ID), 0};
#define EV_REQ (BIT(PD_T_CID) | BIT(PD_T_PID) | BIT(PD_T_HOST_PID) | BIT(PD_T_KIND))
static const struct scope SC_EV_STARTED = {"message", EV_REQ, EV_REQ, 0};
#define EXITED_REQ (EV_REQ | BIT(PD_T_EXIT_CODE) | BIT(PD_T_SIGNAL) | BIT(PD_T_TIME_NS))
static const struct scope SC_EV_EXITED = {"message", EXITED_REQ, EXITED_REQ, 0};
static const struct scope SC_OK = {
    "message",
    BIT(PD_T_PID) | BIT(PD_T_HOST_PID) | BIT(PD_T_STATE) | BIT(PD_T_EXIT_CODE) | BIT(PD_T_SIGNAL) |
        BIT(PD_T_TEXT) | BIT(PD_T_PROC) | BIT(PD_T_HELD_EXEC),
    0, BIT(PD_T_PROC)};
static const struct scope SC_ERROR = {
    "message", BIT(PD_T_CODE) | BIT(PD_T_ERRNO) | BIT(PD_T_STEP) | BIT(PD_T_MSG), BIT(PD_T_CODE), 0};

static const struct scope *scope_of_type(uint16_t type) {
  switch (type) {
  case PD_PING: case PD_STACKS: case PD_PROBE_EVENTS: case PD_EV_PROBE: return &SC_EMPTY;
  case PD_START_CONTAINER: return &SC_CID_PLAN;
  case PD_EXEC: return &SC_EXEC;
  case PD_PROCESSES: return &SC_PROCESSES;
  case PD_SIGNAL: return &SC_SIGNAL;
  case PD_WAIT: case PD_DESTROY_CONTAINER: return &SC_CID;
  case PD_WAIT_PID: case PD_ADOPT: return &SC_WAIT_PID;
  case PD_SANDBOX_PLAN: return &SC_SANDBOX_PLAN;
  case PD_EV_STARTED: return &SC_EV_STARTED;
  case PD_EV_EXITED: return &SC_EV_EXITED;
  case PD_OK: return &SC_OK;
  case PD_ERROR: return &SC_ERROR;
  }
  return NULL;
}

static const struct scope *child_scope(const struct scope *parent, uint16_t tag) {
  switch (tag) {
  case PD_T_PLAN: return parent == &SC_EXEC ? &SC_PLAN_EXEC : &SC_PLAN;
  case PD_T_MOUNT: return &SC_MOUNT;
  case PD_T_RLIMIT: return &SC_RLIMIT;
  case PD_T_HOOK: return &SC_HOOK;
  default: return &SC_PROC;
  }
}

static uint32_t max_count(uint16_t tag) {
  switch (tag) {
  case PD_T_ARG: return 1024;
  case PD_T_ENV: return 4096;
  case PD_T_ADD_GID: return 64;
  case PD_T_PROC: return 65536;
  case PD_T_RLIMIT: return 64;
  case PD_T_HOOK: return 64;
  case PD_T_CGROUP_PROCS: return 16;
  /* podman --privileged lists every node of the host (linux.devices, decision 0034). */
  case PD_T_DEVICE: return 1024;
  default: return 256; /* MOUNT, MASKED, READONLY, SYSCTL */
  }
}

static int is_bool(uint16_t tag) {
  return tag == PD_T_ALL || tag == PD_T_LO_UP || tag == PD_T_ROOTFS_RO || tag == PD_T_NO_PIVOT ||
         tag == PD_T_TERMINAL || tag == PD_T_NO_NEW_PRIVS || tag == PD_T_HOLD ||
         tag == PD_T_HELD_EXEC;
}

/* WHATWG-strict UTF-8 (no overlongs, surrogates or > U+10FFFF), the same rule the
 * TypeScript side applies, so both decoders accept exactly the same strings. */
static int utf8_ok(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t need, k;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c < 0x80) { i++; continue; }
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if (n - i - 1 < need) return 0;
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (k = 2; k <= need; k++)
      if ((s[i + k] & 0xC0) != 0x80) return 0;
    i += need + 1;
  }
  return 1;
}

struct dctx {
  char *err;
  size_t errlen;
};

__attribute__((format(printf, 3, 4))) static int fail(struct dctx *c, int rc, const char *fmt, ...) {
  if (c->err && c->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

static int lowest_bit(tagset v) {
  int i = 0;
  while (!(v & 1)) { v >>= 1; i++; }
  return i;
}

static int check(struct dctx *c, const uint8_t *p, size_t n, const struct scope *s, int depth) {
  tagset seen = 0;
  uint32_t counts[PD_TAG_LIMIT];
  size_t off = 0;

  if (depth > MAX_DEPTH) return fail(c, -E2BIG, "nesting too deep in %s", s->name);
  memset(counts, 0, sizeof counts);
  while (off < n) {
    uint16_t tag;
    uint32_t len;
    int kind;
    const uint8_t *v;

    if (n - off < 6) return fail(c, -EINVAL, "truncated field header in %s", s->name);
    tag = rd16(p + off);
    len = rd32(p + off + 2);
    off += 6;
    kind = pd_tag_kind(tag);
    if (kind == PD_K_NONE) return fail(c, -EINVAL, "unknown tag %u in %s", tag, s->name);
    if (!(s->allowed & BIT(tag)))
      return fail(c, -EINVAL, "tag %s not allowed in %s", pd_tag_name(tag), s->name);
    if (len > n - off) return fail(c, -EINVAL, "tag %s overruns %s", pd_tag_name(tag), s->name);
    if ((seen & BIT(tag)) && !(s->rep & BIT(tag)))
      return fail(c, -EINVAL, "duplicate tag %s", pd_tag_name(tag));
    seen |= BIT(tag);
    if ((s->rep & BIT(tag)) && ++counts[tag] > max_count(tag))
      return fail(c, -E2BIG, "too many %s", pd_tag_name(tag));
    v = p + off;
    switch (kind) {
    case PD_K_U32: case PD_K_I32:
      if (len != 4) return fail(c, -EINVAL, "tag %s must be 4 bytes", pd_tag_name(tag));
      if (is_bool(tag) && rd32(v) > 1) return fail(c, -EINVAL, "tag %s must be 0 or 1", pd_tag_name(tag));
      break;
    case PD_K_U64:
      if (len != 8) return fail(c, -EINVAL, "tag %s must be 8 bytes", pd_tag_name(tag));
      break;
    case PD_K_STR:
      if (len > (tag == PD_T_TEXT || tag == PD_T_HOOK_STATE ? PD_MAX_TEXT : PD_MAX_STR))
        return fail(c, -E2BIG, "tag %s too long", pd_tag_name(tag));
      if (memchr(v, 0, len)) return fail(c, -EINVAL, "tag %s contains nul", pd_tag_name(tag));
      if (!utf8_ok(v, len)) return fail(c, -EINVAL, "tag %s is not utf-8", pd_tag_name(tag));
      break;
    case PD_K_BYTES: /* SECCOMP_BPF is the only bytes tag */
      if (len > PD_MAX_SECCOMP_BPF) return fail(c, -E2BIG, "tag %s too long", pd_tag_name(tag));
      if (len == 0 || len % PD_SOCK_FILTER_SIZE)
        return fail(c, -EINVAL, "tag %s must be a non-zero multiple of %u bytes", pd_tag_name(tag),
                    PD_SOCK_FILTER_SIZE);
      break;
    case PD_K_NEST: {
      int rc = check(c, v, len, child_scope(s, tag), depth + 1);
      if (rc) return rc;
    }
    }
    off += len;
  }
  if (s->required & ~seen)
    return fail(c, -EINVAL, "missing tag %s in %s", pd_tag_name((uint16_t)lowest_bit(s->required & ~seen)), s->name);
  return 0;
}

/* ---- fill (input already validated) ---- */

static void *arena_alloc(struct pd_arena *a, size_t n) {
  size_t start = (a->used + 15) & ~(size_t)15;
  if (!a->base || start < a->used || start > a->size || n > a->size - start) return NULL;
  a->used = start + n;
  memset(a->base + start, 0, n);
  return a->base + start;
}

static const char *arena_str(struct pd_arena *a, const uint8_t *v, uint32_t len) {
  char *s = arena_alloc(a, (size_t)len + 1);
  if (s) {
    memcpy(s, v, len);
    s[len] = 0;
  }
  return s;
}

/* Walk helper: yields (tag, len, value) for each field of an already-checked body. */
struct it {
  const uint8_t *p;
  size_t n, off;
  uint16_t tag;
  uint32_t len;
  const uint8_t *v;
};

static int next(struct it *it) {
  if (it->off >= it->n) return 0;
  it->tag = rd16(it->p + it->off);
  it->len = rd32(it->p + it->off + 2);
  it->v = it->p + it->off + 6;
  it->off += 6 + (size_t)it->len;
  return 1;
}

#define STR_OR_NOMEM(dst) do { if (!((dst) = arena_str(a, it.v, it.len))) return -ENOMEM; } while (0)

static int fill_mount(struct pd_arena *a, const uint8_t *p, size_t n, struct pd_mount *m) {
  struct it it = {p, n, 0, 0, 0, 0};
  while (next(&it)) {
    switch (it.tag) {
    case PD_T_MOUNT_SOURCE: STR_OR_NOMEM(m->source); break;
    case PD_T_MOUNT_DEST: STR_OR_NOMEM(m->dest); break;
    case PD_T_MOUNT_TYPE: STR_OR_NOMEM(m->type); break;
    case PD_T_MOUNT_DATA: STR_OR_NOMEM(m->data); break;
    case PD_T_MOUNT_FLAGS: m->flags = rd64(it.v); break;
    case PD_T_MOUNT_PROPAGATION: m->propagation = rd64(it.v); break;
    }
  }
  return 0;
}

static void fill_rlimit(const uint8_t *p, size_t n, struct pd_rlimit *r) {
  struct it it = {p, n, 0, 0, 0, 0};
  while (next(&it)) {
    switch (it.tag) {
    case PD_T_RLIMIT_TYPE: r->type = rd32(it.v); break;
    case PD_T_RLIMIT_SOFT: r->soft = rd64(it.v); break;
    case PD_T_RLIMIT_HARD: r->hard = rd64(it.v); break;
    }
  }
}

static int fill_hook(struct pd_arena *a, const uint8_t *p, size_t n, struct pd_hook *h) {
  struct it it = {p, n, 0, 0, 0, 0};
  uint32_t argc = 0, envc = 0;

  while (next(&it)) {
    if (it.tag == PD_T_ARG) argc++;
    if (it.tag == PD_T_ENV) envc++;
  }
  h->argv = arena_alloc(a, sizeof(char *) * (argc + 1));
  h->envp = arena_alloc(a, sizeof(char *) * (envc + 1));
  if (!h->argv || !h->envp) return -ENOMEM;
  it.off = 0;
  while (next(&it)) {
    switch (it.tag) {
    case PD_T_HOOK_KIND: h->kind = rd32(it.v); break;
    case PD_T_HOOK_PATH: STR_OR_NOMEM(h->path); break;
    case PD_T_HOOK_TIMEOUT: h->timeout_s = rd32(it.v); break;
    case PD_T_ARG: STR_OR_NOMEM(h->argv[h->argc]); h->argc++; break;
    case PD_T_ENV: STR_OR_NOMEM(h->envp[h->envc]); h->envc++; break;
    }
  }
  return 0;
}

static int fill_plan(struct pd_arena *a, const uint8_t *p, size_t n, struct pd_plan **out) {
  struct it it = {p, n, 0, 0, 0, 0};
  uint32_t nmount = 0, nmasked = 0, nro = 0, ndev = 0, ngid = 0, argc = 0, envc = 0;
  uint32_t nrlim = 0, nsysctl = 0, nhook = 0, ncgp = 0;
  struct pd_hook *hooks;
  struct pd_rlimit *rlimits;
  const char **sysctls, **cgprocs;
  struct pd_plan *pl = arena_alloc(a, sizeof *pl);
  const char **argv, **envp, **masked, **ro, **dev;
  struct pd_mount *mounts;
  uint32_t *gids;

  if (!pl) return -ENOMEM;
  while (next(&it)) {
    switch (it.tag) {
    case PD_T_ARG: argc++; break;
    case PD_T_ENV: envc++; break;
    case PD_T_ADD_GID: ngid++; break;
    case PD_T_MOUNT: nmount++; break;
    case PD_T_MASKED: nmasked++; break;
    case PD_T_READONLY: nro++; break;
    case PD_T_DEVICE: ndev++; break;
    case PD_T_RLIMIT: nrlim++; break;
    case PD_T_SYSCTL: nsysctl++; break;
    case PD_T_HOOK: nhook++; break;
    case PD_T_CGROUP_PROCS: ncgp++; break;
    }
  }
  /* Every list gets a trailing NULL (or a spare slot) so callers may iterate either way. */
  argv = arena_alloc(a, sizeof(char *) * (argc + 1));
  envp = arena_alloc(a, sizeof(char *) * (envc + 1));
  masked = arena_alloc(a, sizeof(char *) * (nmasked + 1));
  ro = arena_alloc(a, sizeof(char *) * (nro + 1));
  dev = arena_alloc(a, sizeof(char *) * (ndev + 1));
  gids = arena_alloc(a, sizeof(uint32_t) * (ngid + 1));
  mounts = arena_alloc(a, sizeof(struct pd_mount) * (nmount + 1));
  rlimits = arena_alloc(a, sizeof(struct pd_rlimit) * (nrlim + 1));
  sysctls = arena_alloc(a, sizeof(char *) * (nsysctl + 1));
  hooks = arena_alloc(a, sizeof(struct pd_hook) * (nhook + 1));
  cgprocs = arena_alloc(a, sizeof(char *) * (ncgp + 1));
  if (!argv || !envp || !masked || !ro || !dev || !gids || !mounts || !rlimits || !sysctls ||
      !hooks || !cgprocs)
    return -ENOMEM;
  pl->hooks = hooks;
  pl->cgroup_procs = cgprocs;

  pl->argv = argv; pl->envp = envp; pl->masked = masked; pl->readonly = ro;
  pl->devices = dev; pl->add_gids = gids; pl->mounts = mounts;
  pl->rlimits = rlimits; pl->sysctls = sysctls;
  pl->umask = 022;
  pl->rootfs_propagation = MS_REC_SLAVE;

  it.off = 0;
  while (next(&it)) {
    int rc;
    switch (it.tag) {
    case PD_T_ARG: STR_OR_NOMEM(argv[pl->argc]); pl->argc++; break;
    case PD_T_ENV: STR_OR_NOMEM(envp[pl->envc]); pl->envc++; break;
    case PD_T_MASKED: STR_OR_NOMEM(masked[pl->n_masked]); pl->n_masked++; break;
    case PD_T_READONLY: STR_OR_NOMEM(ro[pl->n_readonly]); pl->n_readonly++; break;
    case PD_T_DEVICE: STR_OR_NOMEM(dev[pl->n_devices]); pl->n_devices++; break;
    case PD_T_ADD_GID: gids[pl->n_add_gids++] = rd32(it.v); break;
    case PD_T_MOUNT:
      rc = fill_mount(a, it.v, it.len, &mounts[pl->n_mounts]);
      if (rc) return rc;
      pl->n_mounts++;
      break;
    case PD_T_CWD: STR_OR_NOMEM(pl->cwd); break;
    case PD_T_STDIN_PATH: STR_OR_NOMEM(pl->stdin_path); break;
    case PD_T_STDOUT_PATH: STR_OR_NOMEM(pl->stdout_path); break;
    case PD_T_STDERR_PATH: STR_OR_NOMEM(pl->stderr_path); break;
    case PD_T_ROOTFS: STR_OR_NOMEM(pl->rootfs); break;
    case PD_T_UID: pl->uid = rd32(it.v); break;
    case PD_T_GID: pl->gid = rd32(it.v); break;
    case PD_T_UMASK: pl->umask = rd32(it.v); break;
    case PD_T_STDIO_INHERIT: pl->stdio_inherit = rd32(it.v); break;
    case PD_T_ROOTFS_RO: pl->rootfs_ro = rd32(it.v); break;
    case PD_T_ROOTFS_PROPAGATION: pl->rootfs_propagation = rd64(it.v); break;
    case PD_T_NS_FLAGS: pl->ns_flags = rd32(it.v); break;
    case PD_T_NO_PIVOT: pl->no_pivot = rd32(it.v); break;
    case PD_T_TERMINAL: pl->terminal = rd32(it.v); break;
    case PD_T_SYSCTL: STR_OR_NOMEM(sysctls[pl->n_sysctls]); pl->n_sysctls++; break;
    case PD_T_RLIMIT: fill_rlimit(it.v, it.len, &rlimits[pl->n_rlimits++]); break;
    /* Any CAP_* tag means the plan manages capabilities; a set not sent is empty. */
    case PD_T_CAP_BOUNDING: pl->cap_bounding = rd64(it.v); pl->has_caps = 1; break;
    case PD_T_CAP_EFFECTIVE: pl->cap_effective = rd64(it.v); pl->has_caps = 1; break;
    case PD_T_CAP_PERMITTED: pl->cap_permitted = rd64(it.v); pl->has_caps = 1; break;
    case PD_T_CAP_INHERITABLE: pl->cap_inheritable = rd64(it.v); pl->has_caps = 1; break;
    case PD_T_CAP_AMBIENT: pl->cap_ambient = rd64(it.v); pl->has_caps = 1; break;
    case PD_T_NO_NEW_PRIVS: pl->no_new_privs = rd32(it.v); break;
    case PD_T_OOM_SCORE_ADJ:
      pl->oom_score_adj = (int32_t)rd32(it.v);
      pl->has_oom_score_adj = 1;
      break;
    case PD_T_SECCOMP_BPF: {
      /* arena_alloc aligns to 16, so the filter can be handed to the kernel as-is. */
      uint8_t *bpf = arena_alloc(a, it.len);
      if (!bpf) return -ENOMEM;
      memcpy(bpf, it.v, it.len);
      pl->seccomp_bpf = bpf;
      pl->seccomp_len = it.len;
      break;
    }
    case PD_T_SECCOMP_FLAGS: pl->seccomp_flags = rd32(it.v); break;
    case PD_T_CONSOLE_SOCKET: STR_OR_NOMEM(pl->console_socket); break;
    case PD_T_CONSOLE_ROWS: pl->console_rows = rd32(it.v); break;
    case PD_T_CONSOLE_COLS: pl->console_cols = rd32(it.v); break;
    case PD_T_HOLD: pl->hold = rd32(it.v); break;
    case PD_T_PID_NS_OF: STR_OR_NOMEM(pl->pid_ns_of); break;
    case PD_T_CGROUP_PROCS: STR_OR_NOMEM(cgprocs[pl->n_cgroup_procs]); pl->n_cgroup_procs++; break;
    case PD_T_CGROUP_NS_OF: STR_OR_NOMEM(pl->cgroup_ns_of); break;
    case PD_T_MOUNT_NS_PATH: STR_OR_NOMEM(pl->mount_ns_path); break;
    case PD_T_HOOK:
      rc = fill_hook(a, it.v, it.len, &hooks[pl->n_hooks]);
      if (rc) return rc;
      pl->n_hooks++;
      break;
    case PD_T_HOOK_STATE: STR_OR_NOMEM(pl->hook_state); break;
    }
  }
  *out = pl;
  return 0;
}

static int fill_msg(struct pd_arena *a, const uint8_t *p, size_t n, struct pd_msg *m) {
  struct it it = {p, n, 0, 0, 0, 0};
  while (next(&it)) {
    switch (it.tag) {
    case PD_T_CID: STR_OR_NOMEM(m->cid); break;
    case PD_T_STEP: STR_OR_NOMEM(m->step); break;
    case PD_T_MSG: STR_OR_NOMEM(m->msg); break;
    case PD_T_TEXT: STR_OR_NOMEM(m->text); break;
    case PD_T_SANDBOX_ID: STR_OR_NOMEM(m->sandbox_id); break;
    case PD_T_HOSTNAME: STR_OR_NOMEM(m->hostname); break;
    case PD_T_DOMAINNAME: STR_OR_NOMEM(m->domainname); break;
    case PD_T_PID: m->pid = (int32_t)rd32(it.v); m->has_pid = 1; break;
    case PD_T_SIGNO: m->signo = (int32_t)rd32(it.v); m->has_signo = 1; break;
    case PD_T_HOST_PID: m->host_pid = (int32_t)rd32(it.v); break;
    case PD_T_EXIT_CODE: m->exit_code = (int32_t)rd32(it.v); break;
    case PD_T_SIGNAL: m->signal = (int32_t)rd32(it.v); break;
    case PD_T_ERRNO: m->err = (int32_t)rd32(it.v); break;
    case PD_T_ALL: m->all = rd32(it.v); break;
    case PD_T_CODE: m->code = rd32(it.v); break;
    case PD_T_STATE: m->state = rd32(it.v); break;
    case PD_T_KIND: m->kind = rd32(it.v); break;
    case PD_T_LO_UP: m->lo_up = rd32(it.v); break;
    case PD_T_LOG_SIZE_MAX: m->log_size_max = rd64(it.v); break;
    case PD_T_TIME_NS: m->time_ns = rd64(it.v); break;
    case PD_T_PLAN: {
      int rc = fill_plan(a, it.v, it.len, &m->plan);
      if (rc) return rc;
      break;
    }
    /* PD_T_PROC: validated only; C never consumes process tables. */
    }
  }
  return 0;
}

/* Shared header check for pd_decode and pd_message_length. */
static int check_header(struct dctx *c, const uint8_t *buf, size_t len, uint32_t *body) {
  uint16_t type;
  if (!buf || len < PD_HEADER_SIZE) return fail(c, -EINVAL, "truncated header");
  if (buf[0] != PD_MAGIC0 || buf[1] != PD_MAGIC1) return fail(c, -EINVAL, "bad magic");
  if (buf[2] != PD_VERSION) return fail(c, -EINVAL, "unsupported version %u", buf[2]);
  if (buf[3] != 0) return fail(c, -EINVAL, "reserved byte not zero");
  type = rd16(buf + 4);
  if (!scope_of_type(type)) return fail(c, -EINVAL, "unknown message type 0x%04x", type);
  if (rd16(buf + 6) != 0) return fail(c, -EINVAL, "flags not zero");
  *body = rd32(buf + 8);
  if (*body > PD_MAX_BODY) return fail(c, -E2BIG, "body too long");
  return 0;
}

long pd_message_length(const uint8_t *buf, size_t len) {
  struct dctx c = {NULL, 0};
  uint32_t body;
  if (check_header(&c, buf, len, &body)) return -1;
  return (long)PD_HEADER_SIZE + (long)body;
}

int pd_decode(const uint8_t *buf, size_t len, struct pd_arena *arena, struct pd_msg *out,
              char *errbuf, size_t errlen) {
  struct dctx c = {errbuf, errlen};
  uint32_t body;
  size_t mark;
  int rc;

  if (errbuf && errlen) errbuf[0] = 0;
  if (!out || !arena) return fail(&c, -EINVAL, "no output");
  memset(out, 0, sizeof *out);
  rc = check_header(&c, buf, len, &body);
  if (rc) return rc;
  if (len - PD_HEADER_SIZE < body) return fail(&c, -EINVAL, "truncated body");
  if (len - PD_HEADER_SIZE > body) return fail(&c, -EINVAL, "trailing bytes");
  out->type = rd16(buf + 4);
  rc = check(&c, buf + PD_HEADER_SIZE, body, scope_of_type(out->type), 1);
  if (rc) return rc;
  mark = arena->used;
  rc = fill_msg(arena, buf + PD_HEADER_SIZE, body, out);
  if (rc) {
    /* Give the arena back so a caller can reply with an error without leaking space. */
    arena->used = mark;
    memset(out, 0, sizeof *out);
    return fail(&c, rc, "arena full");
  }
  return 0;
}
