/* libpaddock.so — the native layer loaded into the Node supervisor through ffi-rs.
 *
 * Every entry point takes plain ints and C strings (what ffi-rs marshals cheaply and
 * safely) and returns a value >= 0 or -errno. The step that failed and a short detail
 * are kept for the caller to fetch right after the call with pd_last_step() and
 * pd_last_detail(). The only caller is the JS main thread, so "last" is per process,
 * not per thread; the watcher thread never touches it. */
#ifndef PADDOCK_NATIVE_H
#define PADDOCK_NATIVE_H

#include <stdint.h>

#define PD_EXPORT __attribute__((visibility("default")))

/* Namespaces a sandbox may ask for. CLONE_NEWTIME is not accepted by clone3. */
#define PD_ALLOWED_CLONE_FLAGS                                                       \
  (CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS |     \
   CLONE_NEWNET | CLONE_NEWCGROUP)

/* ---- result of the last call (error.c) ---- */
PD_EXPORT const char *pd_last_step(void);
PD_EXPORT const char *pd_last_detail(void);

/* ---- launcher (launch.c) ---- */
/* clone3(CLONE_PIDFD | clone_flags) + id maps + execveat(sealed memfd of init_path).
 * uid_map/gid_map: "" for none. fdN: -1 for /dev/null. join_net/ipc/uts/cgroup/pid: an
 * open namespace file (/proc/PID/ns/net, /run/netns/X) the sandbox joins instead of
 * creating one, or -1; the matching CLONE_NEW* must not be in clone_flags. Returns
 * the host pid; the pidfd and the ready pipe's read end are then in
 * pd_last_pidfd()/pd_last_ready_fd() and belong to the caller.
 * cgroup_tasks: the v1 `tasks` files of the sandbox's cgroup ('\n'-separated, "" for
 * none), which the child writes "0" to before anything else; cgroup_dir: its cgroup2
 * directory, which clone3 places the child in (CLONE_INTO_CGROUP), "" for none. Both
 * are best effort: the caller checks /proc/PID/cgroup and moves init where it is not. */
PD_EXPORT int pd_launch_init(const char *init_path, const char *sandbox_dir, int clone_flags,
                             const char *uid_map, const char *gid_map, int fd0, int fd1,
                             int fd2, int join_net, int join_ipc, int join_uts,
                             int join_user, int join_cgroup, int join_pid,
                             const char *cgroup_tasks, const char *cgroup_dir);
PD_EXPORT int pd_last_pidfd(void);
PD_EXPORT int pd_last_ready_fd(void);
/* The sealed memfd copy of init_path that launches execute (made once per version of
 * the file, then cached; the cache owns the fd: never close it), or -errno. A path
 * that already names a memfd sealed against every change is used as it is, uncopied:
 * so paddockd's client launches from paddockd's copy, /proc/PID/fd/N. */
PD_EXPORT int pd_init_image(const char *init_path);
/* 1 when fd is a memfd sealed against every change (seal, shrink, grow, write). */
PD_EXPORT int pd_image_is_sealed(int fd);
/* join_user (a user namespace file, or -1): the launch child joins it, then creates
 * the clone_flags namespaces itself (owned by it) and clones init into them; clone_flags
 * must not hold CLONE_NEWUSER and uid_map/gid_map must be "". */

/* The uid_map and gid_map text of the user namespace open at fd, as a process inside
 * it reads them (ids relative to the namespace's parent); then in pd_last_uid_map()/
 * pd_last_gid_map(). 0 or -errno (step "setns": EINVAL also for our own namespace). */
PD_EXPORT int pd_userns_maps(int fd);
PD_EXPORT const char *pd_last_uid_map(void);
PD_EXPORT const char *pd_last_gid_map(void);

/* Shows the rootfs to the sandbox whose init is `pidfd` through an idmapped mount
 * (decision 0028): a recursive clone of `rootfs` idmapped to init's user namespace,
 * mounted over the same path in init's mount namespace (never the host's). Files on
 * disk keep their owners. 0 or -errno; steps idmap_userns, idmap_open_tree,
 * idmap_mount_setattr (EINVAL: a filesystem that cannot be idmapped), idmap_setns,
 * idmap_move_mount. */
PD_EXPORT int pd_idmap_rootfs(int pidfd, const char *rootfs);
/* Binds `source` (a file, e.g. a device node the supervisor made) over `target` inside
 * the mount namespace of the init behind `pidfd`, never the host's; each container
 * forked afterwards gets it in its copy (decision 0038, /dev/kvm in a user namespace).
 * 0 or -errno; steps bind_open_tree, bind_setns, bind_move_mount. */
PD_EXPORT int pd_bind_into(int pidfd, const char *source, const char *target);

/* ---- pidfd watcher (watcher.c) ---- */
/* One thread and one epoll set per process; exits are reported on channels. Records
 * are 16 bytes {u32 token, i32 reaped, i32 exit code, i32 signal}, little-endian. */
/* Opens a channel (starting the thread on first use): a new pipe, O_CLOEXEC, whose
 * read end is returned, belongs to the caller and names the channel. */
PD_EXPORT int pd_watch_open(void);
/* Unwatches every pidfd of the channel, drops its queued records and closes the
 * watcher's write end (the reader then sees EOF). The caller closes the read end.
 * -ENOENT for an unknown channel. */
PD_EXPORT int pd_watch_close(int channel_fd);
/* Watches a dup of `pidfd` on the channel; its exit is reported there. Returns a
 * process-wide unique token (u32, never 0) or -errno (-ENOENT: unknown channel). */
PD_EXPORT long pd_watch(int channel_fd, int pidfd);
/* The same for any fd (no pidfd check): one record when it is first readable. */
PD_EXPORT long pd_watch_readable(int channel_fd, int fd);
/* Stops watching `token`, withdrawing a record still queued for it. -ENOENT when
 * there was nothing to stop. */
PD_EXPORT int pd_unwatch(uint32_t token);

/* ---- small syscalls (sys.c) ---- */
PD_EXPORT int pd_pidfd_open(int pid);
PD_EXPORT int pd_pidfd_send_signal(int pidfd, int sig);
PD_EXPORT int pd_close(int fd);
/* SO_PEERCRED of a connected unix socket: which 0 pid, 1 uid, 2 gid; or -errno. */
PD_EXPORT long pd_peer_cred(int fd, int which);
PD_EXPORT int pd_mkfifo(const char *path, int mode);
/* Puts tmp in target's place atomically (both absolute, one directory): renameat2
 * RENAME_EXCHANGE, then unlink of what is now at tmp (the old file); plain rename when
 * target does not exist yet or the filesystem cannot exchange. */
PD_EXPORT int pd_replace_file(const char *tmp, const char *target);
/* Opens `path` (/dev/kvm): the API version (12) with KVM_CAP_USER_MEMORY, or -errno
 * (steps open_kvm, kvm_get_api_version, kvm_check_extension). */
PD_EXPORT int pd_kvm_probe(const char *path);
/* KVM_CHECK_EXTENSION(cap) on `path`: 0 absent, > 0 present, or -errno. */
PD_EXPORT int pd_kvm_extension(const char *path, int cap);
/* cgroup v1: an eventfd that counts OOMs of the memory cgroup `memdir` (and its
 * removal), through cgroup.event_control. The fd or -errno. */
PD_EXPORT int pd_oom_eventfd(const char *memdir);
/* mknod of a char device at `path` with the exact mode and owner. 0 or -errno. */
PD_EXPORT int pd_mknod_char(const char *path, int major, int minor, int mode, int uid, int gid);
/* Raises pid's hard limit `resource` to at least hard_hi:hard_lo, soft untouched: 1
 * raised, 0 already there, -errno (step prlimit). */
PD_EXPORT int pd_raise_rlimit(int pid, int resource, unsigned hard_hi, unsigned hard_lo);
/* The CLONE_NEW* type of a namespace file (ioctl NS_GET_NSTYPE); -ENOTTY when fd is
 * not a namespace. */
PD_EXPORT int pd_ns_type(int fd);

/* ---- console hand-off (console.c) ---- */
/* A listening unix socket at path (mode 0600, owned by uid:gid: the sandbox's root,
 * which paddock-init runs as). Returns the fd (O_CLOEXEC). */
PD_EXPORT int pd_console_listen(const char *path, int uid, int gid);
/* Accepts one connection within timeout_ms, checks the peer is expect_pid (if > 0)
 * and returns the fd it sent with SCM_RIGHTS (O_CLOEXEC). */
PD_EXPORT int pd_console_accept(int listen_fd, int expect_pid, int timeout_ms);
/* Connects to the unix socket at path and sends fd with SCM_RIGHTS, `name` as the
 * payload (runc's console-socket protocol: the pty's name). */
PD_EXPORT int pd_send_fd(const char *path, int fd, const char *name);

/* ---- cgroup v2 device program (devbpf.c) ---- */
/* Loads insn_count struct bpf_insn (BPF_PROG_TYPE_CGROUP_DEVICE) and attaches it to
 * the cgroup2 directory with BPF_F_ALLOW_MULTI. A refused load fails with step
 * bpf_prog_load, the verifier log's last lines as detail and the whole log in
 * pd_last_bpf_log(). */
PD_EXPORT int pd_devbpf_attach(const char *cgroup_dir, const uint8_t *insns, uint32_t insn_count);
/* How many device programs are attached to the directory itself (BPF_PROG_QUERY). */
PD_EXPORT int pd_devbpf_count(const char *cgroup_dir);
/* The verifier log of the last refused load ("" otherwise). */
PD_EXPORT const char *pd_last_bpf_log(void);

/* ---- internal ---- */
/* Records {step, errno, detail} as the last result and returns -err. step must be a
 * string literal (it is kept by pointer). */
__attribute__((visibility("hidden"))) int pd_fail(const char *step, int err, const char *detail_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Clears the last result at the start of a call. */
__attribute__((visibility("hidden"))) void pd_ok(void);

#endif
