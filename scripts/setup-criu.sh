#!/usr/bin/env bash
# A working CRIU for paddock's checkpoint/restore (docs/decisions/0040).
#
# Prints the path of a criu whose `criu check` passes: PADDOCK_CRIU if set, else the one
# in paddock's prefix, else the system's. When none works (Debian 12's criu 3.17 fails on
# new kernels: "vdso: Unexpected rt vDSO area bounds"), it builds CRIU from Debian trixie's
# source tarball with bookworm's packages into the prefix. Idempotent: a second run is a
# `criu check`. The system's criu and apt sources are left alone.
#
#   PADDOCK_CRIU_PREFIX   where paddock's own criu lives (default /var/lib/paddock/criu)
#   PADDOCK_CRIU          a criu to use instead (checked, never built)
#   PADDOCK_CRIU_TIMEOUT  seconds for each download and for the build (default 900)
set -euo pipefail

prefix=${PADDOCK_CRIU_PREFIX:-/var/lib/paddock/criu}
limit=${PADDOCK_CRIU_TIMEOUT:-900}
mirror=${PADDOCK_CRIU_MIRROR:-http://deb.debian.org/debian}
suite=trixie
say() { echo "paddock setup-criu: $*" >&2; }

works() {
  [ -x "$1" ] && timeout 60 "$1" check >/dev/null 2>&1
}

if [ -n "${PADDOCK_CRIU:-}" ]; then
  if works "$PADDOCK_CRIU"; then echo "$PADDOCK_CRIU"; exit 0; fi
  say "PADDOCK_CRIU=$PADDOCK_CRIU does not pass 'criu check'"
  exit 1
fi
if works "$prefix/sbin/criu"; then echo "$prefix/sbin/criu"; exit 0; fi
system=$(command -v criu || true)
if [ -n "$system" ] && works "$system"; then echo "$system"; exit 0; fi

if [ "$(id -u)" -ne 0 ]; then
  say "no working criu, and building one needs root"
  exit 1
fi

# Build dependencies, all from bookworm.
deps=(libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnftables-dev libnl-3-dev
  libprotobuf-c-dev libprotobuf-dev pkgconf protobuf-c-compiler protobuf-compiler
  uuid-dev python3-protobuf gcc make xz-utils)
need=()
for p in "${deps[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ "${#need[@]}" -gt 0 ]; then
  say "installing ${need[*]}"
  timeout "$limit" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout "$limit" apt-get install -y -qq "${need[@]}" >/dev/null
fi

# trixie's source index through apt options of our own: a separate sources file, lists
# dir and cache, so the system's apt never sees trixie (a later `apt-get install` would
# otherwise pull trixie packages into this bookworm system).
aptdir=$prefix/apt
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$prefix/src"
echo "deb-src $mirror $suite main" >"$aptdir/sources.list"
aptopts=(-o "Dir::Etc::sourcelist=$aptdir/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
  -o "APT::Get::List-Cleanup=0" -o "Acquire::Languages=none")
say "reading $suite's Sources index"
timeout "$limit" apt-get "${aptopts[@]}" update -qq
# The index may be stored compressed (.lz4 with Docker's apt settings): apt-helper
# cat-file reads it either way.
index=$(find "$aptdir/lists" -maxdepth 1 -name "*_dists_${suite}_main_source_Sources*" | head -n1)
if [ -z "$index" ]; then
  say "no $suite Sources index in $aptdir/lists"
  exit 1
fi

# The criu stanza names the directory and the orig tarball's sha256. The .dsc answers 404
# on this mirror, so `apt-get source` cannot verify the tarball: apt-helper fetches it
# against the index's hash instead (a mismatch fails the download).
read -r dir tarball sha < <(awk '
  /^Package: / { pkg = $2; dir = ""; insha = 0 }
  pkg == "criu" && /^Directory: / { dir = $2 }
  pkg == "criu" && /^Checksums-Sha256:/ { insha = 1; next }
  insha && /^ / { if ($3 ~ /\.orig\.tar\.xz$/) { tar = $3; sha = $1 } next }
  { insha = 0 }
  /^$/ && pkg == "criu" && tar != "" { print dir, tar, sha; exit }
  END { if (pkg == "criu" && tar != "") print dir, tar, sha }
' < <(/usr/lib/apt/apt-helper cat-file "$index") | head -n1) || true
if [ -z "${tarball:-}" ]; then
  say "criu's orig tarball is not in $index"
  exit 1
fi
version=${tarball#criu_}
version=${version%.orig.tar.xz}
src=$prefix/src/$tarball
if [ ! -f "$src" ] || [ "$(sha256sum "$src" | cut -d' ' -f1)" != "$sha" ]; then
  say "fetching $dir/$tarball (sha256 $sha)"
  rm -f "$src"
  timeout "$limit" /usr/lib/apt/apt-helper -o APT::Sandbox::User=root download-file "$mirror/$dir/$tarball" "$src" "SHA256:$sha" >/dev/null
fi

build=$prefix/src/criu-$version
rm -rf "$build"
tar -C "$prefix/src" -xf "$src"
say "building criu $version (make criu, bounded by ${limit}s)"
if ! timeout "$limit" make -C "$build" -j"$(nproc)" criu >"$prefix/src/build.log" 2>&1; then
  tail -n 20 "$prefix/src/build.log" >&2
  say "the build failed; the whole log is $prefix/src/build.log"
  exit 1
fi
mkdir -p "$prefix/sbin"
install -m 0755 "$build/criu/criu" "$prefix/sbin/criu.new"
mv -f "$prefix/sbin/criu.new" "$prefix/sbin/criu"
echo "$version $sha" >"$prefix/VERSION"
# The index (22 MB) is read again only for another build; the tarball stays for that.
rm -rf "$build" "$aptdir/lists" "$aptdir/cache"
if ! works "$prefix/sbin/criu"; then
  timeout 60 "$prefix/sbin/criu" check >&2 || true
  say "the criu built in $prefix fails 'criu check'"
  exit 1
fi
say "criu $version is $prefix/sbin/criu"
echo "$prefix/sbin/criu"
