#!/usr/bin/env bash
# The whole suite: C tests (decoder vectors, truncation, noise), then jest's unit and
# integration projects. Integration tests need root (namespaces, pidfds, mounts).
#
# Under PADDOCK_CI=1 the CLI, podman and containerd tests run twice: in-process, and
# through the native client and paddockd (PADDOCK_TEST_CLI=daemon, decision 0044).
#
# Under PADDOCK_CI=1 (or with PADDOCK_TEST_CGROUP2_VM=1), and when no jest arguments
# narrow the run, the cgroup tests run a second time in a cgroup v2-only KVM/qemu guest
# (scripts/test-cgroup2-vm.sh, decision 0033). Tests that need the layout the other run
# has are deferred to it, never skipped: this host's run leaves cgroup-v2-only tests to
# the guest (which also runs every file they are in), and the guest leaves to this run
# the layout needs it met (v1 freezer, v1 devices, hybrid).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -C native test

if [ $# -gt 0 ] || { [ "${PADDOCK_CI:-}" != 1 ] && [ "${PADDOCK_TEST_CGROUP2_VM:-}" != 1 ]; }; then
  exec npx jest --ci --runInBand "$@"
fi

ci=$(mktemp -d)
trap 'rm -rf "$ci"' EXIT
: > "$ci/deferred"
status=0
PADDOCK_CI_ELSEWHERE=cgroup-v2-only PADDOCK_CI_DEFERRED_LOG="$ci/deferred" PADDOCK_CI_LAYOUT_OUT="$ci/host-layout" \
  npx jest --ci --runInBand || status=$?
# The CLI, podman and containerd tests a second time through the native client and
# paddockd (decision 0044): the first run drove the Node CLI in-process. (cli-launcher
# tests the Node launcher's code caches, which only the in-process path has.)
PADDOCK_TEST_CLI=daemon PADDOCK_CI_ELSEWHERE=cgroup-v2-only PADDOCK_CI_DEFERRED_LOG="$ci/deferred" \
  npx jest --ci --runInBand --testPathPattern 'test/integration/(cli|cli-pause|cli-pod|cli-views|podman|containerd|terminal)\.int' || status=1

# The guest runs the cgroup files and every file this run deferred a test from.
mapfile -t files < <( { bash scripts/test-cgroup2-vm.sh --default-tests; cut -f1 "$ci/deferred"; } | sort -u)
if [ -s "$ci/deferred" ]; then
  echo "test.sh: deferred to the cgroup v2 guest:"
  sed 's/^/  /' "$ci/deferred"
fi
PADDOCK_CI_ELSEWHERE="$(cat "$ci/host-layout" 2>/dev/null)" PADDOCK_VM_DEFERRED_OUT="$ci/vm-deferred" \
  PADDOCK_VM_TIMEOUT="${PADDOCK_VM_TIMEOUT:-1500}" bash scripts/test-cgroup2-vm.sh "${files[@]}" || status=1
if [ -s "$ci/vm-deferred" ]; then
  echo "test.sh: the cgroup v2 guest left to this host's run (which ran them):"
  sed 's/^/  /' "$ci/vm-deferred"
fi
exit $status
