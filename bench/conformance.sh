#!/usr/bin/env bash
# Runs the OCI runtime-tools validation programs (the conformance tests runc and crun are
# checked against) against paddock's CLI, runc and crun, and prints one line per program:
# "clean" when it exited 0 with a TAP plan and no `not ok` line (and, for a program that
# ran no test line, no `error:` diagnostic), else FAIL(number of `not ok`). A measurement
# (issue 14, docs/decisions/0037): nothing in CI runs it.
#
#   bash bench/conformance.sh [PROGRAM...]     (default: every program found)
#
# Where the programs come from: the Go source tree of opencontainers/runtime-tools with
# its validation/ directory (validation/<name>/<name>.go, validation/util), in a GOPATH
# layout, given as CONFORMANCE_GOPATH (its src/github.com/opencontainers/runtime-tools).
# The libraries it imports (generate, specerror, runtime-spec, uuid, fileutils...) come
# from Debian's Go packages under /usr/share/gocode, built with GO111MODULE=off and no
# network. Debian's golang-github-opencontainers-runtime-tools-dev ships the libraries
# only, without validation/ or cmd/runtimetest, so the tree must be put there by hand.
# Programs that run runtimetest inside the container (RuntimeInsideValidate) are listed
# as n/a unless cmd/runtimetest is in the tree too.
#
# Environment: CONFORMANCE_GOPATH (required), RUNTIMES (default "paddock runc crun"),
# PADDOCK_CLI (default this tree's dist/cli/paddock.js: another build for a before/after),
# CONFORMANCE_WORK (default a temp dir, kept: TAP logs in logs/), TIMEOUT per program (s).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
: "${CONFORMANCE_GOPATH:?set CONFORMANCE_GOPATH to a GOPATH holding src/github.com/opencontainers/runtime-tools/validation}"
SRC="$CONFORMANCE_GOPATH/src/github.com/opencontainers/runtime-tools"
[ -d "$SRC/validation/util" ] || { echo "no $SRC/validation/util" >&2; exit 2; }
command -v go >/dev/null || { echo "go not found (apt-get install golang-go)" >&2; exit 2; }
PADDOCK_CLI=${PADDOCK_CLI:-$REPO/dist/cli/paddock.js}
[ -f "$PADDOCK_CLI" ] || { echo "no $PADDOCK_CLI: build first (bash scripts/setup.sh)" >&2; exit 2; }

# crun 1.8 refuses a hybrid-cgroup host whose cgroup2 mount offers controllers: run the
# whole measurement in a private mount namespace where an empty file hides them (as
# bench/run.sh does), so every runtime sees the same host.
. "$REPO/bench/crun-hybrid-ns.sh"
in_private_cgroup_ns PADDOCK_CONFORMANCE_NS "$0" "$@"

WORK=${CONFORMANCE_WORK:-$(mktemp -d /tmp/paddock-conformance.XXXXXX)}
TIMEOUT=${TIMEOUT:-120}
RUNTIMES=${RUNTIMES:-paddock runc crun}
mkdir -p "$WORK/bin" "$WORK/rt" "$WORK/logs" "$WORK/cwd"

# paddock as a runc-style command the programs can exec (they look RUNTIME up in PATH).
cat > "$WORK/rt/paddock" <<EOF
#!/bin/sh
exec node "$PADDOCK_CLI" --root "$WORK/paddock-state" "\$@"
EOF
chmod +x "$WORK/rt/paddock"

# The programs untar rootfs-amd64.tar.gz from their working directory: paddock's busybox
# test rootfs (the upstream one is busybox too).
tar -C "$(readlink -f test/fixtures/rootfs)" -czf "$WORK/cwd/rootfs-$(go env GOARCH).tar.gz" .
export GO111MODULE=off GOFLAGS= GOPATH="$CONFORMANCE_GOPATH:/usr/share/gocode" GOCACHE="$WORK/gocache"
have_runtimetest=0
if [ -d "$SRC/cmd/runtimetest" ] && go build -o "$WORK/cwd/runtimetest" github.com/opencontainers/runtime-tools/cmd/runtimetest; then
  have_runtimetest=1
else
  # RuntimeOutsideValidate copies it into the bundle without running it.
  printf '#!/bin/sh\necho "not ok 1 - runtimetest was not built"\nexit 1\n' > "$WORK/cwd/runtimetest"
  chmod +x "$WORK/cwd/runtimetest"
fi

if [ $# -gt 0 ]; then programs=("$@"); else
  programs=()
  for d in "$SRC"/validation/*/; do
    n=$(basename "$d")
    [ "$n" = util ] || [ ! -f "$d/$n.go" ] || programs+=("$n")
  done
fi

printf '%-40s' program; for rt in $RUNTIMES; do printf ' %-8s' "$rt"; done; echo
declare -A clean
for rt in $RUNTIMES; do clean[$rt]=0; done
counted=0
for p in "${programs[@]}"; do
  if ! go build -o "$WORK/bin/$p" "github.com/opencontainers/runtime-tools/validation/$p" 2>"$WORK/logs/$p.build"; then
    printf '%-40s build failed (logs/%s.build)\n' "$p" "$p"; continue
  fi
  if [ $have_runtimetest = 0 ] && grep -q RuntimeInsideValidate "$SRC/validation/$p/$p.go"; then
    printf '%-40s n/a (needs runtimetest)\n' "$p"; continue
  fi
  counted=$((counted + 1))
  printf '%-40s' "$p"
  for rt in $RUNTIMES; do
    log="$WORK/logs/$p.$rt.tap"
    ( cd "$WORK/cwd" && PATH="$WORK/rt:$PATH" RUNTIME="$rt" timeout "$TIMEOUT" "$WORK/bin/$p" ) >"$log" 2>&1
    rc=$?
    # Some programs (poststart, prestart_fail...) report a failure only as a YAML
    # diagnostic under an empty plan (1..0): with no test line, an `error:` key fails.
    if [ $rc = 0 ] && grep -q '^1\.\.' "$log" && ! grep -q '^not ok ' "$log" \
       && { grep -q '^ok ' "$log" || ! grep -q '^  error: ' "$log"; }; then
      r=clean; clean[$rt]=$((clean[$rt] + 1))
    else
      r="FAIL($(grep -c '^not ok ' "$log"))"
      [ $rc = 124 ] && r=timeout
    fi
    printf ' %-8s' "$r"
  done
  echo
done
printf '%-40s' "clean of $counted"; for rt in $RUNTIMES; do printf ' %-8s' "${clean[$rt]}"; done; echo
echo "logs: $WORK/logs" >&2
