/* Tag kinds and names, shared by the decoder and the test dumper. */
#include "pd_schema.h"

#include "paddock_proto.h"

#define T(tag, kind, name) [tag] = {kind, name}

static const struct {
  uint8_t kind;
  const char *name;
} tags[PD_TAG_LIMIT] = {
    T(PD_T_CID, PD_K_STR, "cid"), T(PD_T_PID, PD_K_I32, "pid"),
    T(PD_T_HOST_PID, PD_K_I32, "host_pid"), T(PD_T_SIGNO, PD_K_I32, "signo"),
    T(PD_T_ALL, PD_K_U32, "all"), T(PD_T_PLAN, PD_K_NEST, "plan"),
    T(PD_T_EXIT_CODE, PD_K_I32, "exit_code"), T(PD_T_SIGNAL, PD_K_I32, "signal"),
    T(PD_T_TIME_NS, PD_K_U64, "time_ns"), T(PD_T_CODE, PD_K_U32, "code"),
    T(PD_T_ERRNO, PD_K_I32, "errno"), T(PD_T_STEP, PD_K_STR, "step"),
    T(PD_T_MSG, PD_K_STR, "msg"), T(PD_T_PROC, PD_K_NEST, "proc"),
    T(PD_T_STATE, PD_K_U32, "state"), T(PD_T_TEXT, PD_K_STR, "text"),
    T(PD_T_SANDBOX_ID, PD_K_STR, "sandbox_id"), T(PD_T_HOSTNAME, PD_K_STR, "hostname"),
    T(PD_T_DOMAINNAME, PD_K_STR, "domainname"), T(PD_T_LO_UP, PD_K_U32, "lo_up"),
    T(PD_T_KIND, PD_K_U32, "kind"), T(PD_T_LOG_SIZE_MAX, PD_K_U64, "log_size_max"),
    T(PD_T_ARG, PD_K_STR, "arg"), T(PD_T_ENV, PD_K_STR, "env"), T(PD_T_CWD, PD_K_STR, "cwd"),
    T(PD_T_UID, PD_K_U32, "uid"), T(PD_T_GID, PD_K_U32, "gid"),
    T(PD_T_ADD_GID, PD_K_U32, "add_gid"), T(PD_T_UMASK, PD_K_U32, "umask"),
    T(PD_T_STDIN_PATH, PD_K_STR, "stdin_path"), T(PD_T_STDOUT_PATH, PD_K_STR, "stdout_path"),
    T(PD_T_STDERR_PATH, PD_K_STR, "stderr_path"),
    T(PD_T_STDIO_INHERIT, PD_K_U32, "stdio_inherit"), T(PD_T_ROOTFS, PD_K_STR, "rootfs"),
    T(PD_T_ROOTFS_RO, PD_K_U32, "rootfs_ro"),
    T(PD_T_ROOTFS_PROPAGATION, PD_K_U64, "rootfs_propagation"),
    T(PD_T_MOUNT, PD_K_NEST, "mount"), T(PD_T_MOUNT_SOURCE, PD_K_STR, "mount_source"),
    T(PD_T_MOUNT_DEST, PD_K_STR, "mount_dest"), T(PD_T_MOUNT_TYPE, PD_K_STR, "mount_type"),
    T(PD_T_MOUNT_FLAGS, PD_K_U64, "mount_flags"), T(PD_T_MOUNT_DATA, PD_K_STR, "mount_data"),
    T(PD_T_MOUNT_PROPAGATION, PD_K_U64, "mount_propagation"),
    T(PD_T_MASKED, PD_K_STR, "masked"), T(PD_T_READONLY, PD_K_STR, "readonly"),
    T(PD_T_DEVICE, PD_K_STR, "device"), T(PD_T_NS_FLAGS, PD_K_U32, "ns_flags"),
    T(PD_T_NO_PIVOT, PD_K_U32, "no_pivot"), T(PD_T_TERMINAL, PD_K_U32, "terminal"),
    T(PD_T_CAP_BOUNDING, PD_K_U64, "cap_bounding"), T(PD_T_CAP_EFFECTIVE, PD_K_U64, "cap_effective"),
    T(PD_T_CAP_PERMITTED, PD_K_U64, "cap_permitted"),
    T(PD_T_CAP_INHERITABLE, PD_K_U64, "cap_inheritable"),
    T(PD_T_CAP_AMBIENT, PD_K_U64, "cap_ambient"), T(PD_T_RLIMIT, PD_K_NEST, "rlimit"),
    T(PD_T_RLIMIT_TYPE, PD_K_U32, "rlimit_type"), T(PD_T_RLIMIT_SOFT, PD_K_U64, "rlimit_soft"),
    T(PD_T_RLIMIT_HARD, PD_K_U64, "rlimit_hard"), T(PD_T_NO_NEW_PRIVS, PD_K_U32, "no_new_privs"),
    T(PD_T_OOM_SCORE_ADJ, PD_K_I32, "oom_score_adj"), T(PD_T_SYSCTL, PD_K_STR, "sysctl"),
    T(PD_T_SECCOMP_BPF, PD_K_BYTES, "seccomp_bpf"), T(PD_T_SECCOMP_FLAGS, PD_K_U32, "seccomp_flags"),
    T(PD_T_CONSOLE_SOCKET, PD_K_STR, "console_socket"), T(PD_T_CONSOLE_ROWS, PD_K_U32, "console_rows"),
    T(PD_T_CONSOLE_COLS, PD_K_U32, "console_cols"), T(PD_T_HOLD, PD_K_U32, "hold"),
    T(PD_T_HELD_EXEC, PD_K_U32, "held_exec"),
    T(PD_T_HOOK, PD_K_NEST, "hook"), T(PD_T_HOOK_KIND, PD_K_U32, "hook_kind"),
    T(PD_T_HOOK_PATH, PD_K_STR, "hook_path"), T(PD_T_HOOK_TIMEOUT, PD_K_U32, "hook_timeout"),
    T(PD_T_HOOK_STATE, PD_K_STR, "hook_state"), T(PD_T_PID_NS_OF, PD_K_STR, "pid_ns_of"),
    T(PD_T_CGROUP_PROCS, PD_K_STR, "cgroup_procs"), T(PD_T_CGROUP_NS_OF, PD_K_STR, "cgroup_ns_of"),
    T(PD_T_MOUNT_NS_PATH, PD_K_STR, "mount_ns_path"),
};

int pd_tag_kind(uint16_t tag) { return tag < PD_TAG_LIMIT ? tags[tag].kind : PD_K_NONE; }

const char *pd_tag_name(uint16_t tag) {
  return tag < PD_TAG_LIMIT && tags[tag].name ? tags[tag].name : "?";
}

const char *pd_type_name(uint16_t type) {
  switch (type) {
  case PD_PING: return "ping";
  case PD_START_CONTAINER: return "start_container";
  case PD_EXEC: return "exec";
  case PD_PROCESSES: return "processes";
  case PD_SIGNAL: return "signal";
  case PD_WAIT: return "wait";
  case PD_WAIT_PID: return "wait_pid";
  case PD_STACKS: return "stacks";
  case PD_DESTROY_CONTAINER: return "destroy_container";
  case PD_PROBE_EVENTS: return "probe_events";
  case PD_ADOPT: return "adopt";
  case PD_SANDBOX_PLAN: return "sandbox_plan";
  case PD_EV_STARTED: return "ev_started";
  case PD_EV_EXITED: return "ev_exited";
  case PD_EV_PROBE: return "ev_probe";
  case PD_OK: return "ok";
  case PD_ERROR: return "error";
  }
  return 0;
}
