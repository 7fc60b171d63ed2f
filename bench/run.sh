#!/usr/bin/env bash
# Runs the paddock benchmarks side by side with crun and runc in one process run.
# crun 1.8 refuses hybrid-cgroup hosts whose cgroup2 mount offers controllers, so (as
# ../shared/bench/peers.sh does) the whole run happens in a private mount namespace
# where an empty file hides /sys/fs/cgroup/unified/cgroup.controllers. paddock itself
# does not need this; every contender runs in the same namespace so the numbers share
# the machine state.
set -euo pipefail
cd "$(dirname "$0")/.."
for t in crun runc podman; do
  command -v "$t" >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$t" >/dev/null; }
done
# GNU time: peak RSS of one CLI call (bench/resident.ts); `time` alone is the shell's keyword.
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
. bench/crun-hybrid-ns.sh
in_private_cgroup_ns PADDOCK_BENCH_NS "$0" "$@"
exec node --expose-gc dist/bench/run.js "$@"
