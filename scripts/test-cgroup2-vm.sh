#!/usr/bin/env bash
# Runs integration tests in a throwaway KVM guest whose only cgroup hierarchy is cgroup2
# with memory, cpu, pids, io and cpuset enabled: the layout most hosts have, which a
# hybrid CI host cannot give (decision 0033).
#
#   scripts/test-cgroup2-vm.sh [jest test paths...]     (default: the cgroup test files)
#   scripts/test-cgroup2-vm.sh --default-tests          (prints that default list)
#
# The guest is Debian's own kernel (linux-image-amd64, fetched with apt-get download and
# unpacked under $PADDOCK_VM_CACHE, never installed) booted by qemu with -kernel/-initrd.
# A busybox initramfs loads the 9p and overlay modules, mounts this machine's root
# read-only over virtio-9p with a tmpfs overlay for writes, and switch_roots into it;
# this script then runs again inside, as the guest's init (--guest): it mounts cgroup2
# alone at /sys/fs/cgroup, runs jest on the same checkout with PADDOCK_CI=1, writes the
# exit status to a shared results dir and powers off. Output comes back on the serial
# console. Everything is bounded by PADDOCK_VM_TIMEOUT seconds.
#
# Environment:
#   PADDOCK_VM_CACHE      kernel and initramfs cache (default /var/cache/paddock-vm)
#   PADDOCK_VM_TIMEOUT    seconds for the whole guest run (default 900)
#   PADDOCK_VM_MEM        guest memory in MiB (default 2048)
#   PADDOCK_VM_CPUS       guest vCPUs (default 2)
#   PADDOCK_CI_ELSEWHERE  layout needs the host's own run covered (see test/helpers/env.ts);
#                         passed to the guest's jest, which records what it defers
set -euo pipefail

DEFAULT_TESTS=(
  test/integration/cgroups.int.test.ts
  test/integration/cgroups-path.int.test.ts
  test/integration/cgroup-namespaces.int.test.ts
  test/integration/cgroup2-only.int.test.ts
  test/integration/pause.int.test.ts
  test/integration/pod-cgroups.int.test.ts
  test/integration/devices.int.test.ts
  test/integration/cli-pause.int.test.ts
)

if [ "${1:-}" = "--default-tests" ]; then printf '%s\n' "${DEFAULT_TESTS[@]}"; exit 0; fi

# ------------------------------------------------------------------ inside the guest
if [ "${1:-}" = "--guest" ]; then
  # Only ever as the guest's init: on a host these mounts would cover the real ones.
  [ $$ = 1 ] || { echo "test-cgroup2-vm: --guest is the guest's init, not for a host" >&2; exit 2; }
  export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  results=/paddock-vm-results
  mount -t proc proc /proc
  mount -t sysfs sysfs /sys
  mount -t devtmpfs devtmpfs /dev 2>/dev/null || true
  mkdir -p /dev/pts /dev/shm /dev/mqueue
  mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
  mount -t tmpfs -o mode=1777 tmpfs /dev/shm
  mount -t mqueue mqueue /dev/mqueue 2>/dev/null || true
  # A checkout under /tmp or /run (CI clones anywhere) would vanish below the fresh
  # tmpfs mounts: keep it reachable at its own path through a bind made first.
  repo=$(cat "$results/repo")
  mkdir -p /.paddock-repo
  mount --bind "$repo" /.paddock-repo
  mount -t tmpfs -o mode=1777 tmpfs /tmp
  mount -t tmpfs -o mode=755 tmpfs /run
  if [ ! -d "$repo/node_modules" ]; then mkdir -p "$repo" && mount --bind /.paddock-repo "$repo"; fi
  # cgroup2 alone, as systemd sets it up on a unified host, with the controllers on.
  mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
  for c in cpu cpuset io memory pids; do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || echo "paddock-vm: cannot enable $c" >&2; done
  mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
  ip link set lo up 2>/dev/null || busybox ip link set lo up 2>/dev/null || true
  hostname paddock-cgroup2-vm
  mapfile -t tests < "$results/tests"
  cd "$repo"
  echo "paddock-vm: kernel $(uname -r), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
  set +e
  env HOME=/root PADDOCK_CI=1 PADDOCK_CI_ELSEWHERE="$(cat "$results/elsewhere")" PADDOCK_CI_DEFERRED_LOG="$results/deferred" \
    NODE_OPTIONS=--max-old-space-size=1024 \
    node node_modules/jest/bin/jest.js --ci --runInBand "${tests[@]}" --selectProjects integration > "$results/jest.log" 2>&1
  echo $? > "$results/status"
  set -e
  tail -n 60 "$results/jest.log"
  sync
  echo o > /proc/sysrq-trigger 2>/dev/null
  poweroff -f
fi

# ------------------------------------------------------------------ on the host
cd "$(dirname "$0")/.."
repo=$(pwd)
cache=${PADDOCK_VM_CACHE:-/var/cache/paddock-vm}
budget=${PADDOCK_VM_TIMEOUT:-900}
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=("${DEFAULT_TESTS[@]}")

die() { echo "test-cgroup2-vm: $*" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
[ -x /bin/busybox ] || die "/bin/busybox missing (apt-get install busybox-static)"
[ "$(id -u)" = 0 ] || die "run as root (the tests need it, and qemu shares / read-only)"

# The kernel: whatever linux-image-amd64 depends on, unpacked once into the cache.
mkdir -p "$cache"
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$pkg" ] || die "cannot resolve linux-image-amd64 (apt-get update?)"
kver=${pkg#linux-image-}
kdir="$cache/$pkg"
if [ ! -f "$kdir/boot/vmlinuz-$kver" ]; then
  rm -rf "$kdir" "$cache/$pkg".deb.d
  mkdir -p "$cache/$pkg.deb.d"
  (cd "$cache/$pkg.deb.d" && apt-get download -q "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
  dpkg-deb -x "$cache/$pkg.deb.d"/*.deb "$kdir.tmp" && mv "$kdir.tmp" "$kdir"
  rm -rf "$cache/$pkg.deb.d"
fi

# The initramfs: busybox, the modules 9p-over-virtio and overlay need (dependencies
# first, read from each module's own .modinfo: no depmod needed), and /init.
initrd="$cache/initrd-$kver.cpio.gz"
if [ ! -f "$initrd" ] || [ "$initrd" -ot "$0" ]; then
  moddir="$kdir/lib/modules/$kver"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work"/{bin,dev,proc,sys,lower,upper,newroot,modules}
  cp /bin/busybox "$work/bin/busybox"
  declare -A seen=()
  order=()
  modpath() { find "$moddir/kernel" -name "$1.ko" -o -name "${1//_/-}.ko" | head -n1; }
  add() {
    local name=${1//-/_} f deps d
    [ -n "${seen[$name]:-}" ] && return 0
    seen[$name]=1
    f=$(modpath "$name")
    if [ -z "$f" ]; then
      grep -q "/$name.ko" "$moddir/modules.builtin" 2>/dev/null && return 0
      die "module $name not found in $moddir"
    fi
    deps=$(grep -ao 'depends=[a-z0-9_,-]*' "$f" | head -n1 | cut -d= -f2)
    for d in ${deps//,/ }; do add "$d"; done
    cp "$f" "$work/modules/$name.ko"
    order+=("$name")
  }
  for m in virtio_pci 9pnet_virtio 9p overlay; do add "$m"; done
  printf '%s\n' "${order[@]}" > "$work/modules/order"
  cat > "$work/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do insmod /modules/$m.ko || echo "initramfs: insmod $m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /lower || { echo "initramfs: 9p root failed"; poweroff -f; }
mount -t tmpfs -o mode=755 tmpfs /upper
mkdir -p /upper/rw /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/rw,workdir=/upper/work overlay /newroot || { echo "initramfs: overlay failed"; poweroff -f; }
mkdir -p /newroot/paddock-vm-results
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 results /newroot/paddock-vm-results || { echo "initramfs: results share failed"; poweroff -f; }
script=$(cat /newroot/paddock-vm-results/script)
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/bash "$script" --guest
INIT
  chmod 755 "$work/init"
  (cd "$work" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > "$initrd.tmp") && mv "$initrd.tmp" "$initrd"
  rm -rf "$work"
  trap - EXIT
fi

# The shared results dir: what to run in, and what came out.
out=$(mktemp -d /var/tmp/paddock-vm-XXXXXX)
trap 'rm -rf "$out"' EXIT
echo "$repo" > "$out/repo"
echo "$repo/scripts/test-cgroup2-vm.sh" > "$out/script"
printf '%s\n' "${tests[@]}" > "$out/tests"
echo "${PADDOCK_CI_ELSEWHERE:-}" > "$out/elsewhere"
: > "$out/deferred"

# A /dev/kvm served by kvm-pvm (nested virtualization without VMX, as on this CI's
# Firecracker hosts) runs only PVM-enabled guest kernels: Debian's hangs right after
# decompression. There, and with PADDOCK_VM_ACCEL=tcg, qemu emulates the CPU instead.
accel=${PADDOCK_VM_ACCEL:-auto}
if [ "$accel" = auto ]; then
  if [ -d /sys/module/kvm_pvm ]; then accel=tcg; else accel=kvm; fi
fi
case $accel in
  kvm) accel_args=(-enable-kvm -cpu host) ;;
  tcg) accel_args=(-accel tcg,thread=multi -cpu max) ;;
  *) die "PADDOCK_VM_ACCEL must be auto, kvm or tcg" ;;
esac

echo "test-cgroup2-vm: booting $pkg ($accel) with cgroup2 only; tests: ${tests[*]}"
start=$(date +%s)
set +e
timeout --foreground --kill-after=10 "$budget" qemu-system-x86_64 \
  "${accel_args[@]}" -m "${PADDOCK_VM_MEM:-2048}" -smp "${PADDOCK_VM_CPUS:-2}" \
  -nographic -no-reboot -nodefaults -serial stdio -monitor none \
  -kernel "$kdir/boot/vmlinuz-$kver" -initrd "$initrd" \
  -append "console=ttyS0 panic=-1 loglevel=${PADDOCK_VM_LOGLEVEL:-3} rdinit=/init systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs local,path="$out",mount_tag=results,security_model=none,multidevs=remap \
  </dev/null
qrc=$?
set -e
echo "test-cgroup2-vm: guest ran $(( $(date +%s) - start )) s"
[ $qrc -eq 124 ] || [ $qrc -eq 137 ] && die "timed out after $budget s"
[ -f "$out/status" ] || die "the guest wrote no status (qemu exit $qrc); see the console output above"
if [ -n "${PADDOCK_VM_DEFERRED_OUT:-}" ]; then cp "$out/deferred" "$PADDOCK_VM_DEFERRED_OUT"; fi
if [ -n "${PADDOCK_VM_LOG_OUT:-}" ]; then cp "$out/jest.log" "$PADDOCK_VM_LOG_OUT"; fi
status=$(cat "$out/status")
[ "$status" = 0 ] || { echo "test-cgroup2-vm: jest failed in the guest (exit $status); full log:" >&2; cat "$out/jest.log" >&2; exit 1; }
echo "test-cgroup2-vm: passed"
