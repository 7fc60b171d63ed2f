# Sourced by the bench scripts. crun 1.8 refuses a hybrid-cgroup host whose cgroup2 mount
# offers controllers ("cgroups in hybrid mode not supported"). in_private_cgroup_ns
# re-executes the calling script in a private mount namespace where an empty file hides
# /sys/fs/cgroup/unified/cgroup.controllers, so every contender (paddock, runc, crun)
# runs against the same host. Nothing outside that namespace changes. $1 names the
# variable that marks the re-executed run; the rest is the script and its arguments.
in_private_cgroup_ns() {
  local mark=$1
  shift
  if [ -z "${!mark:-}" ] && [ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ] \
     && [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
    local empty
    empty=$(mktemp)
    export "$mark=1"
    # The file is needed only until it is mounted: unlinked then, so no run leaves one in /tmp.
    exec unshare -m --propagation private sh -c 'mount --bind "$1" /sys/fs/cgroup/unified/cgroup.controllers && rm -f "$1" && shift && exec "$@"' \
      sh "$empty" bash "$@"
  fi
}
