/* build/proto-test <vectors-dir>: the C decoder and writer against the golden
 * vectors, every truncation and ~200k seeded mutations. Built with ASan/UBSan, so
 * "did not crash" is a real check. Last line: "N passed, N failed". */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paddock_proto.h"
#include "pd_schema.h"

#define MUTATIONS 200000
#define MAX_VECTORS 256

static int passed, failed;
static unsigned char arena_mem[4 << 20];

__attribute__((format(printf, 2, 3))) static void check(int ok, const char *fmt, ...) {
  if (ok) {
    passed++;
    return;
  }
  failed++;
  va_list ap;
  va_start(ap, fmt);
  fputs("FAIL: ", stdout);
  vprintf(fmt, ap);
  fputc('\n', stdout);
  va_end(ap);
}

struct vec {
  char name[128];
  uint8_t *buf;
  size_t len;
};
static struct vec good[MAX_VECTORS], bad[MAX_VECTORS];
static int n_good, n_bad;

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf;
  long n;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc(n ? (size_t)n : 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static const struct vec *find(const char *name) {
  for (int i = 0; i < n_good; i++)
    if (!strcmp(good[i].name, name)) return &good[i];
  return NULL;
}

static int decode(const uint8_t *buf, size_t len, struct pd_msg *m, char *err, size_t errlen) {
  struct pd_arena a = {arena_mem, sizeof arena_mem, 0};
  return pd_decode(buf, len, &a, m, err, errlen);
}

/* Decodes the named good vector into *m. A vector that is missing (renamed, deleted) or
 * rejected is a failure here, so the checks that depend on it cannot vanish silently. */
static int decoded(const char *name, struct pd_msg *m, char *err, size_t errlen) {
  const struct vec *v = find(name);
  int rc;
  if (!v) {
    check(0, "%s: vector missing", name);
    return 0;
  }
  rc = decode(v->buf, v->len, m, err, errlen);
  check(rc == 0, "%s: rejected (%d: %s)", name, rc, err ? err : "");
  return rc == 0;
}

/* ---- text dump, independent of the decoder: walks the (already accepted) wire ---- */

struct sb { char *s; size_t len, cap; };

static void sb_put(struct sb *b, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (b->len + (size_t)n + 1 > b->cap) {
    b->cap = (b->len + (size_t)n + 1) * 2;
    b->s = realloc(b->s, b->cap);
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void dump_fields(struct sb *b, const uint8_t *p, size_t n, int indent) {
  size_t off = 0;
  while (off + 6 <= n) {
    uint16_t tag = (uint16_t)(p[off] | (p[off + 1] << 8));
    uint32_t len = rd32(p + off + 2);
    const uint8_t *v = p + off + 6;
    sb_put(b, "%*s%s", indent, "", pd_tag_name(tag));
    switch (pd_tag_kind(tag)) {
    case PD_K_U32: sb_put(b, "=%u\n", rd32(v)); break;
    case PD_K_I32: sb_put(b, "=%d\n", (int32_t)rd32(v)); break;
    case PD_K_U64:
      sb_put(b, "=%llu\n", (unsigned long long)rd32(v) | ((unsigned long long)rd32(v + 4) << 32));
      break;
    case PD_K_STR:
      sb_put(b, "=\"");
      for (uint32_t i = 0; i < len; i++) {
        if (v[i] == '"' || v[i] == '\\') sb_put(b, "\\%c", v[i]);
        else if (v[i] >= 0x20 && v[i] < 0x7f) sb_put(b, "%c", v[i]);
        else sb_put(b, "\\x%02x", v[i]);
      }
      sb_put(b, "\"\n");
      break;
    case PD_K_BYTES:
      sb_put(b, "=hex:");
      for (uint32_t i = 0; i < len; i++) sb_put(b, "%02x", v[i]);
      sb_put(b, "\n");
      break;
    default:
      sb_put(b, "\n");
      dump_fields(b, v, len, indent + 2);
    }
    off += 6 + (size_t)len;
  }
}

static void test_good(const char *dir) {
  char path[4096], err[256];
  for (int i = 0; i < n_good; i++) {
    const struct vec *v = &good[i];
    struct pd_msg m;
    struct sb b = {0};
    size_t tlen = 0;
    uint8_t *txt;
    int rc = decode(v->buf, v->len, &m, err, sizeof err);
    check(rc == 0, "%s: decode failed: %d %s", v->name, rc, err);
    if (rc) continue;
    check(pd_message_length(v->buf, v->len) == (long)v->len, "%s: pd_message_length", v->name);
    sb_put(&b, "type=%s\n", pd_type_name(m.type));
    dump_fields(&b, v->buf + PD_HEADER_SIZE, v->len - PD_HEADER_SIZE, 0);
    snprintf(path, sizeof path, "%s/%s.txt", dir, v->name);
    txt = read_file(path, &tlen);
    check(txt && tlen == b.len && !memcmp(txt, b.s, tlen), "%s: dump differs from %s:\n%s", v->name,
          path, b.s);
    free(txt);
    free(b.s);
  }
}

static void test_bad(void) {
  char err[256];
  for (int i = 0; i < n_bad; i++) {
    struct pd_msg m;
    int rc = decode(bad[i].buf, bad[i].len, &m, err, sizeof err);
    check(rc == -EINVAL || rc == -E2BIG, "%s: accepted (rc %d)", bad[i].name, rc);
    check(err[0] != 0, "%s: no error text", bad[i].name);
  }
}

/* Exact-size heap copies so ASan flags any read past the end. */
static void test_truncations(void) {
  for (int i = 0; i < n_good; i++) {
    for (size_t k = 0; k < good[i].len; k++) {
      uint8_t *p = malloc(k ? k : 1);
      struct pd_msg m;
      memcpy(p, good[i].buf, k);
      check(decode(p, k, &m, NULL, 0) != 0, "%s: prefix %zu accepted", good[i].name, k);
      if (k >= PD_HEADER_SIZE)
        check(pd_message_length(p, k) == (long)good[i].len, "%s: length of prefix %zu", good[i].name, k);
      else
        check(pd_message_length(p, k) == -1, "%s: length of short prefix %zu", good[i].name, k);
      free(p);
    }
  }
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}

/* Accepted messages must still satisfy the struct invariants paddock-init relies on. */
static int sane(const struct pd_msg *m) {
  const struct pd_plan *p = m->plan;
  if (!p) return 1;
  if (p->argc < 1 || !p->argv || p->argv[p->argc] || !p->envp || p->envp[p->envc]) return 0;
  for (uint32_t i = 0; i < p->argc; i++) if (!p->argv[i]) return 0;
  for (uint32_t i = 0; i < p->n_mounts; i++) if (!p->mounts[i].dest || !p->mounts[i].type) return 0;
  /* A filter is either absent or a whole, 8-byte-aligned array of sock_filter. */
  if (!p->seccomp_bpf != !p->seccomp_len) return 0;
  if (p->seccomp_bpf && (p->seccomp_len % 8 || p->seccomp_len > PD_MAX_SECCOMP_BPF || ((uintptr_t)p->seccomp_bpf & 7))) return 0;
  return 1;
}

static void test_mutations(void) {
  int accepted = 0, insane = 0;
  for (int i = 0; i < MUTATIONS; i++) {
    const struct vec *v = &good[rnd() % (uint32_t)n_good];
    size_t len = v->len, cap = v->len + 64;
    uint8_t *p = malloc(cap);
    struct pd_msg m;
    int op = (int)(rnd() % 6), k, n;
    memcpy(p, v->buf, len);
    switch (op) {
    case 0: /* flip bits */
      for (k = 0, n = 1 + (int)(rnd() % 4); k < n; k++) p[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
      break;
    case 1: /* random bytes */
      for (k = 0, n = 1 + (int)(rnd() % 4); k < n; k++) p[rnd() % len] = (uint8_t)rnd();
      break;
    case 2: { /* corrupt a 32-bit length (any aligned or unaligned spot) */
      size_t at = len > 4 ? rnd() % (len - 3) : 0;
      uint32_t val = rnd() % 3 == 0 ? rnd() : rd32(p + at) + (rnd() % 17) - 8;
      if (len >= 4) { p[at] = (uint8_t)val; p[at + 1] = (uint8_t)(val >> 8); p[at + 2] = (uint8_t)(val >> 16); p[at + 3] = (uint8_t)(val >> 24); }
      break;
    }
    case 3: /* grow: append garbage, and sometimes fix the header length to match */
      n = 1 + (int)(rnd() % 64);
      for (k = 0; k < n; k++) p[len + (size_t)k] = (uint8_t)rnd();
      len += (size_t)n;
      if (rnd() % 2) { uint32_t b = (uint32_t)(len - PD_HEADER_SIZE); p[8] = (uint8_t)b; p[9] = (uint8_t)(b >> 8); p[10] = (uint8_t)(b >> 16); p[11] = (uint8_t)(b >> 24); }
      break;
    case 4: /* cut from the middle and fix the header length */
      if (len > PD_HEADER_SIZE + 1) {
        size_t at = PD_HEADER_SIZE + rnd() % (len - PD_HEADER_SIZE), cut = 1 + rnd() % 8;
        if (cut > len - at) cut = len - at;
        memmove(p + at, p + at + cut, len - at - cut);
        len -= cut;
        uint32_t b = (uint32_t)(len - PD_HEADER_SIZE);
        p[8] = (uint8_t)b; p[9] = (uint8_t)(b >> 8); p[10] = (uint8_t)(b >> 16); p[11] = (uint8_t)(b >> 24);
      }
      break;
    default: /* pure noise behind a valid header */
      for (k = PD_HEADER_SIZE; k < (int)len; k++) p[k] = (uint8_t)rnd();
    }
    {
      uint8_t *exact = malloc(len ? len : 1);
      memcpy(exact, p, len);
      if (decode(exact, len, &m, NULL, 0) == 0) {
        accepted++;
        if (!sane(&m)) insane++;
      }
      free(exact);
    }
    free(p);
  }
  check(insane == 0, "mutations: %d accepted messages broke struct invariants", insane);
  /* Both outcomes must occur, or the mutations never reached the decoder's checks (all
   * rejected at the header) or its rejections (all accepted). */
  check(accepted > 0 && accepted < MUTATIONS, "mutations: %d of %d accepted", accepted, MUTATIONS);
  printf("mutations: %d run, %d accepted, no crash\n", MUTATIONS, accepted);
}

#define STREQ(a, b) ((a) && !strcmp((a), (b)))

static void test_structs(void) {
  const struct vec *v;
  struct pd_msg m;
  char err[256];

  if (decoded("start-container-full", &m, err, sizeof err)) {
    const struct pd_plan *p = m.plan;
    check(m.type == PD_START_CONTAINER && STREQ(m.cid, "web-1") && p, "full: header fields");
    check(p->argc == 4 && STREQ(p->argv[0], "/usr/bin/env") && STREQ(p->argv[3], "console.log(\"hi \\ there\")") && !p->argv[4], "full: argv");
    check(p->envc == 4 && STREQ(p->envp[1], "HOME=/root") && !p->envp[4], "full: envp");
    check(STREQ(p->cwd, "/srv/app") && p->uid == 1000 && p->gid == 1000, "full: cwd/uid/gid");
    check(p->n_add_gids == 3 && p->add_gids[0] == 4 && p->add_gids[2] == 27, "full: add_gids");
    check(p->umask == 027 && p->stdio_inherit == 0 && STREQ(p->stdout_path, "/var/log/paddock/web-1.out"), "full: umask/stdio");
    check(STREQ(p->rootfs, "/var/lib/paddock/rootfs/alpine") && p->rootfs_ro == 1 && p->rootfs_propagation == 0x84000, "full: rootfs");
    check(p->n_mounts == 4 && STREQ(p->mounts[0].dest, "/proc") && p->mounts[0].flags == 14, "full: mount 0");
    check(STREQ(p->mounts[1].data, "mode=755,size=65536k") && STREQ(p->mounts[2].source, "/srv/data") && p->mounts[2].flags == 0x5001 && p->mounts[2].propagation == 0x40000, "full: mounts 1-2");
    check(!p->mounts[3].source && !p->mounts[3].data && STREQ(p->mounts[3].type, "tmpfs"), "full: mount 3");
    check(p->n_masked == 3 && STREQ(p->masked[2], "/sys/firmware") && p->n_readonly == 2 && p->n_devices == 3 && STREQ(p->devices[2], "/dev/urandom"), "full: paths");
    check(p->ns_flags == 0x22020000 && !p->no_pivot && !p->terminal, "full: ns_flags");
  }

  if (decoded("start-container-minimal", &m, err, sizeof err)) {
    const struct pd_plan *p = m.plan;
    check(p->umask == 022 && p->rootfs_propagation == 0x84000 && p->envc == 0 && p->envp && !p->envp[0] && !p->cwd && !p->stdin_path && p->n_mounts == 0, "minimal: defaults");
    check(!p->has_caps && p->n_rlimits == 0 && p->rlimits && !p->no_new_privs && !p->has_oom_score_adj && p->n_sysctls == 0 && p->sysctls && !p->sysctls[0], "minimal: no security fields");
    check(!p->seccomp_bpf && p->seccomp_len == 0 && p->seccomp_flags == 0, "minimal: no seccomp");
  }

  if (decoded("exec", &m, err, sizeof err))
    check(m.type == PD_EXEC && m.plan && !m.plan->rootfs && m.plan->no_pivot == 1 && m.plan->stdio_inherit == 7 && m.plan->uid == 65534, "exec: plan");

  if (decoded("start-container-security", &m, err, sizeof err)) {
    const struct pd_plan *p = m.plan;
    check(p->has_caps && p->cap_bounding == ((1ull << 0) | (1ull << 5) | (1ull << 10) | (1ull << 40)) && p->cap_effective == (1ull << 10) && p->cap_permitted == ((1ull << 10) | (1ull << 40)) && p->cap_inheritable == 0 && p->cap_ambient == 0, "security: caps");
    check(p->n_rlimits == 2 && p->rlimits[0].type == 7 && p->rlimits[0].soft == 1024 && p->rlimits[0].hard == 4096 && p->rlimits[1].type == 4 && p->rlimits[1].soft == 0 && p->rlimits[1].hard == UINT64_MAX, "security: rlimits");
    check(p->no_new_privs == 1 && p->has_oom_score_adj && p->oom_score_adj == -500, "security: nnp/oom");
    check(p->n_sysctls == 2 && STREQ(p->sysctls[0], "net.ipv4.ip_forward=1") && STREQ(p->sysctls[1], "kernel.shmmax=65536") && !p->sysctls[2], "security: sysctls");
  }

  if (decoded("exec-security", &m, err, sizeof err)) {
    const struct pd_plan *p = m.plan;
    check(m.type == PD_EXEC && p->has_caps && p->cap_bounding == 0 && p->cap_permitted == 0, "exec-security: caps present and empty");
    check(p->n_rlimits == 1 && p->rlimits[0].hard == 64 && !p->no_new_privs && p->has_oom_score_adj && p->oom_score_adj == 0 && p->n_sysctls == 0, "exec-security: rest");
  }

  /* The filter travels byte for byte (NULs included) into aligned arena memory. */
  if (decoded("start-container-seccomp", &m, err, sizeof err)) {
    static const uint8_t want[] = {
        0x20, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, /* ld [4] (arch) */
        0x15, 0x00, 0x00, 0x02, 0x3e, 0x00, 0x00, 0xc0, /* jeq AUDIT_ARCH_X86_64, 0, 2 */
        0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* ld [0] (nr) */
        0x15, 0x00, 0x01, 0x00, 0x53, 0x00, 0x00, 0x00, /* jeq 83 (mkdir), 1, 0 */
        0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x7f, /* ret ALLOW */
        0x06, 0x00, 0x00, 0x00, 0x01, 0x00, 0x05, 0x00, /* ret ERRNO(EPERM) */
    };
    const struct pd_plan *p = m.plan;
    check(p && p->seccomp_len == sizeof want && p->seccomp_bpf && !memcmp(p->seccomp_bpf, want, sizeof want), "seccomp: filter bytes");
    check(p && ((uintptr_t)p->seccomp_bpf & 7) == 0 && p->seccomp_flags == 1, "seccomp: alignment and flags");
  }

  if (decoded("exec-seccomp", &m, err, sizeof err)) {
    const struct pd_plan *p = m.plan;
    check(m.type == PD_EXEC && p->seccomp_bpf && p->seccomp_len == 8 && p->seccomp_flags == 0, "exec-seccomp: plan");
  }

  if (decoded("start-container-terminal", &m, err, sizeof err)) {
    const struct pd_plan *p = m.plan;
    check(p && p->terminal && p->hold && p->console_socket && !strcmp(p->console_socket, "/run/paddock/tty/console-1.sock"), "terminal: socket and hold");
    check(p && p->console_rows == 24 && p->console_cols == 80, "terminal: size");
  }

  if (decoded("exec-terminal", &m, err, sizeof err)) {
    const struct pd_plan *p = m.plan;
    check(m.type == PD_EXEC && p->terminal && !p->hold && p->console_rows == 0 && p->console_socket, "exec-terminal: plan");
  }

  if (decoded("start-container-hooks", &m, err, sizeof err)) {
    const struct pd_plan *p = m.plan;
    const struct pd_hook *h = p->hooks;
    check(p->n_hooks == 2 && p->hook_state && !strncmp(p->hook_state, "{\"ociVersion\":", 14), "hooks: count and state");
    check(h[0].kind == PD_HOOK_CREATE_CONTAINER && STREQ(h[0].path, "/usr/libexec/oci/mark") && h[0].argc == 3 &&
              STREQ(h[0].argv[2], "/r/tmp") && !h[0].argv[3] && h[0].envc == 2 && STREQ(h[0].envp[1], "B=two") &&
              !h[0].envp[2] && h[0].timeout_s == 30,
          "hooks: createContainer hook");
    check(h[1].kind == PD_HOOK_START_CONTAINER && STREQ(h[1].path, "/bin/announce") && h[1].argc == 0 &&
              h[1].argv && !h[1].argv[0] && h[1].envc == 0 && h[1].envp && !h[1].envp[0] && h[1].timeout_s == 5,
          "hooks: startContainer hook without args or env");
  }
  if (decoded("start-container-minimal", &m, err, sizeof err))
    check(m.plan->n_hooks == 0 && m.plan->hooks && !m.plan->hook_state, "minimal: no hooks");
  if (decoded("start-container-minimal", &m, err, sizeof err))
    check(m.plan->n_cgroup_procs == 0 && m.plan->cgroup_procs && !m.plan->cgroup_procs[0] && !m.plan->cgroup_ns_of, "minimal: no cgroup placement");

  if (decoded("start-container-pod-cgroup", &m, err, sizeof err)) {
    const struct pd_plan *p = m.plan;
    check(p->n_cgroup_procs == 2 && STREQ(p->cgroup_procs[1], "/sys/fs/cgroup/unified/paddock/s/ctr-app/cgroup.procs") && !p->cgroup_procs[2], "pod-cgroup: files in order");
    check(p->cgroup_ns_of && STREQ(p->cgroup_ns_of, "pause") && p->ns_flags == 0x20000, "pod-cgroup: namespace of");
  }
  if (decoded("exec-pod-cgroup", &m, err, sizeof err))
    check(m.type == PD_EXEC && m.plan->n_cgroup_procs == 1 && !m.plan->cgroup_ns_of, "exec-pod-cgroup: plan");

  /* Length rules: the reason names the tag. */
  {
    static const struct { const char *name; int rc; const char *text; } rules[] = {
        {"bad-seccomp-not-multiple-of-8", -EINVAL, "tag seccomp_bpf must be a non-zero multiple of 8 bytes"},
        {"bad-seccomp-empty", -EINVAL, "tag seccomp_bpf must be a non-zero multiple of 8 bytes"},
        {"bad-seccomp-too-long", -E2BIG, "tag seccomp_bpf too long"},
    };
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
      const struct vec *b = NULL;
      for (int j = 0; j < n_bad; j++)
        if (!strcmp(bad[j].name, rules[i].name)) b = &bad[j];
      if (!b) { check(0, "%s missing", rules[i].name); continue; }
      int rc = decode(b->buf, b->len, &m, err, sizeof err);
      check(rc == rules[i].rc && !strcmp(err, rules[i].text), "%s: rc %d err %s", rules[i].name, rc, err);
    }
  }

  if (decoded("signal-all", &m, err, sizeof err))
    check(m.has_signo && m.signo == 9 && m.has_pid && m.pid == 0 && m.all == 1, "signal-all");

  if (decoded("signal", &m, err, sizeof err))
    check(m.signo == 15 && !m.has_pid && m.all == 0, "signal");

  if (decoded("sandbox-plan", &m, err, sizeof err))
    check(STREQ(m.sandbox_id, "sb-7f3a") && STREQ(m.hostname, "box") && STREQ(m.domainname, "paddock.local") && m.lo_up == 1 && m.log_size_max == 0, "sandbox-plan");

  if (decoded("sandbox-plan-log-cap", &m, err, sizeof err))
    check(STREQ(m.sandbox_id, "sb-cap") && m.log_size_max == 4194304u && m.lo_up == 0, "sandbox-plan-log-cap");

  /* Arena too small: -ENOMEM, and the arena is handed back untouched. */
  v = find("start-container-full");
  check(v != NULL, "small arena: start-container-full: vector missing");
  if (v) {
    static unsigned char small[256];
    struct pd_arena a = {small, sizeof small, 8};
    int rc = pd_decode(v->buf, v->len, &a, &m, err, sizeof err);
    check(rc == -ENOMEM && a.used == 8 && m.plan == NULL, "small arena: rc %d used %zu", rc, a.used);
  }
}

/* The writer must produce the golden bytes when fields are written in canonical
 * (ascending tag) order. */
static void compare(const char *name, const uint8_t *buf, long len) {
  const struct vec *v = find(name);
  check(v && len == (long)v->len && !memcmp(buf, v->buf, v->len), "writer: %s differs (len %ld)", name, len);
}

static void test_writer(void) {
  static uint8_t buf[4096];
  struct pd_writer w;

  pd_w_begin(&w, buf, sizeof buf, PD_EV_EXITED);
  pd_w_str(&w, PD_T_CID, "web-1");
  pd_w_i32(&w, PD_T_PID, 7);
  pd_w_i32(&w, PD_T_HOST_PID, 31340);
  pd_w_i32(&w, PD_T_EXIT_CODE, -1);
  pd_w_i32(&w, PD_T_SIGNAL, 9);
  pd_w_u64(&w, PD_T_TIME_NS, 1767225600123456789ull);
  pd_w_u32(&w, PD_T_KIND, PD_KIND_EXEC);
  compare("ev-exited", buf, pd_w_finish(&w));

  pd_w_begin(&w, buf, sizeof buf, PD_EV_STARTED);
  pd_w_str(&w, PD_T_CID, "web-1");
  pd_w_i32(&w, PD_T_PID, 1);
  pd_w_i32(&w, PD_T_HOST_PID, 31337);
  pd_w_u32(&w, PD_T_KIND, PD_KIND_CONTAINER);
  compare("ev-started", buf, pd_w_finish(&w));

  pd_w_begin(&w, buf, sizeof buf, PD_OK);
  pd_w_i32(&w, PD_T_PID, 1);
  compare("ok-ready", buf, pd_w_finish(&w));

  pd_w_begin(&w, buf, sizeof buf, PD_OK);
  pd_w_i32(&w, PD_T_PID, 1);
  pd_w_i32(&w, PD_T_HOST_PID, 31337);
  compare("ok-start", buf, pd_w_finish(&w));

  pd_w_begin(&w, buf, sizeof buf, PD_OK);
  compare("ok-empty", buf, pd_w_finish(&w));

  pd_w_begin(&w, buf, sizeof buf, PD_OK);
  pd_w_i32(&w, PD_T_EXIT_CODE, 3);
  pd_w_i32(&w, PD_T_SIGNAL, 0);
  pd_w_u32(&w, PD_T_STATE, PD_STATE_EXITED);
  compare("ok-wait-exited", buf, pd_w_finish(&w));

  pd_w_begin(&w, buf, sizeof buf, PD_OK);
  pd_w_str(&w, PD_T_TEXT, "thread 1:\n  #0 main\n\ttab \"q\" back\\slash \xc3\xa9\n");
  compare("ok-stacks", buf, pd_w_finish(&w));

  {
    static const struct { const char *cid; int pid, host, kind, state, has_exit, code, sig; } rows[] = {
        {"web-1", 1, 31337, 1, 1, 0, 0, 0}, {"web-1", 7, 31340, 2, 2, 1, -1, 9}, {"db", 1, 31400, 1, 2, 1, 0, 0}};
    pd_w_begin(&w, buf, sizeof buf, PD_OK);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
      pd_w_nest_begin(&w, PD_T_PROC);
      pd_w_str(&w, PD_T_CID, rows[i].cid);
      pd_w_i32(&w, PD_T_PID, rows[i].pid);
      pd_w_i32(&w, PD_T_HOST_PID, rows[i].host);
      if (rows[i].has_exit) {
        pd_w_i32(&w, PD_T_EXIT_CODE, rows[i].code);
        pd_w_i32(&w, PD_T_SIGNAL, rows[i].sig);
      }
      pd_w_u32(&w, PD_T_STATE, (uint32_t)rows[i].state);
      pd_w_u32(&w, PD_T_KIND, (uint32_t)rows[i].kind);
      pd_w_nest_end(&w);
    }
    compare("ok-procs", buf, pd_w_finish(&w));
  }

  pd_w_begin(&w, buf, sizeof buf, PD_ERROR);
  pd_w_u32(&w, PD_T_CODE, PD_E_LAUNCH);
  pd_w_i32(&w, PD_T_ERRNO, 2);
  pd_w_str(&w, PD_T_STEP, "pivot_root");
  pd_w_str(&w, PD_T_MSG, "No such file or directory");
  compare("error-launch", buf, pd_w_finish(&w));

  pd_w_begin(&w, buf, sizeof buf, PD_ERROR);
  pd_w_u32(&w, PD_T_CODE, PD_E_NOT_FOUND);
  pd_w_str(&w, PD_T_STEP, NULL);
  compare("error-not-found", buf, pd_w_finish(&w));

  /* Failure paths: too small, unbalanced nests, oversized string, no buffer. */
  pd_w_begin(&w, buf, 20, PD_ERROR);
  pd_w_str(&w, PD_T_MSG, "this does not fit in twenty bytes");
  check(pd_w_finish(&w) == -1, "writer: overflow not reported");
  pd_w_begin(&w, buf, sizeof buf, PD_OK);
  pd_w_nest_begin(&w, PD_T_PROC);
  check(pd_w_finish(&w) == -1, "writer: open nest not reported");
  pd_w_begin(&w, buf, sizeof buf, PD_OK);
  pd_w_nest_end(&w);
  check(pd_w_finish(&w) == -1, "writer: unbalanced nest_end not reported");
  {
    static char big[PD_MAX_STR + 2];
    memset(big, 'x', PD_MAX_STR + 1);
    pd_w_begin(&w, buf, sizeof buf, PD_ERROR);
    pd_w_str(&w, PD_T_MSG, big);
    check(pd_w_finish(&w) == -1, "writer: oversized string not reported");
  }
  pd_w_begin(&w, NULL, 0, PD_OK);
  check(pd_w_finish(&w) == -1, "writer: NULL buffer not reported");
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const struct vec *)a)->name, ((const struct vec *)b)->name);
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "protocols/vectors";
  char path[4096];
  struct dirent *e;
  DIR *d = opendir(dir);

  if (!d) {
    perror(dir);
    printf("0 passed, 1 failed\n");
    return 1;
  }
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    struct vec *v;
    if (n < 5 || strcmp(e->d_name + n - 4, ".bin") || n - 4 >= sizeof v->name) continue;
    if (!strncmp(e->d_name, "bad-", 4)) {
      if (n_bad == MAX_VECTORS) continue;
      v = &bad[n_bad++];
    } else {
      if (n_good == MAX_VECTORS) continue;
      v = &good[n_good++];
    }
    memcpy(v->name, e->d_name, n - 4);
    v->name[n - 4] = 0;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    v->buf = read_file(path, &v->len);
    if (!v->buf) { perror(path); return 1; }
  }
  closedir(d);
  qsort(good, (size_t)n_good, sizeof good[0], by_name);
  qsort(bad, (size_t)n_bad, sizeof bad[0], by_name);
  check(n_good > 0 && n_bad > 0, "no vectors in %s", dir);
  printf("vectors: %d good, %d bad\n", n_good, n_bad);
  if (n_good == 0) goto out;

  test_good(dir);
  test_bad();
  test_truncations();
  test_structs();
  test_writer();
  test_mutations();
out:
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
