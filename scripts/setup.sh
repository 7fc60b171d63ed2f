#!/usr/bin/env bash
# Everything a fresh clone needs: Debian packages, npm dependencies, the native build,
# the TypeScript build and the busybox test rootfs. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
for p in busybox-static libnng-dev libmbedtls-dev libseccomp-dev gcc make podman containerd passt nftables; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
# chromium: the live view's browser test (puppeteer-core drives the system browser);
# without its recommends, which are a desktop's worth of packages.
lean_pkgs=()
dpkg -s chromium >/dev/null 2>&1 || lean_pkgs+=(chromium)
if [ "${#need_pkgs[@]}" -gt 0 ] || [ "${#lean_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "paddock setup: missing packages ${need_pkgs[*]} ${lean_pkgs[*]}; run as root or apt-get install them" >&2
    exit 1
  fi
  apt-get update -qq
  [ "${#need_pkgs[@]}" -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  [ "${#lean_pkgs[@]}" -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${lean_pkgs[@]}" >/dev/null
fi

if [ ! -d node_modules/xstate ] || [ package.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund
fi
# The nanomsg addon's own libnanomsg allows 512 sockets per process (NN_MAX_SOCKETS):
# with a control and an event socket per sandbox, one engine could hold only 256
# sandboxes. Rebuilt once with room for 4096 (docs/decisions/0016).
stamp=node_modules/nanomsg/build/.paddock-max-sockets-8192
if [ ! -f "$stamp" ]; then
  nodedir=()
  [ -f /usr/include/node/node.h ] && nodedir=(--nodedir=/usr)
  CFLAGS="-DNN_MAX_SOCKETS=8192" npm rebuild nanomsg "${nodedir[@]}" >/dev/null
  touch "$stamp"
fi
make -C native -j2 >/dev/null
npx tsc -p tsconfig.build.json
node scripts/bundle-cli.js
# `npx paddock` in this checkout (an installed package gets the bin link from npm): the
# native client, which hands each call to the root's paddockd (decision 0044).
ln -sf ../../native/build/paddock node_modules/.bin/paddock
bash test/fixtures/make-rootfs.sh >/dev/null
# CRIU for checkpoint/restore: a `criu check` once it is there, a ~1 min download and
# build the first time on a kernel Debian 12's criu cannot handle. Not fatal here: without
# it only the checkpoint tests cannot run (a skip by hand; .ci/run requires it).
bash scripts/setup-criu.sh >/dev/null || echo "paddock setup: no working CRIU; checkpoint/restore tests will not run (scripts/setup-criu.sh)" >&2
