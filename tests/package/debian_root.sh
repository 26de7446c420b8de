#!/usr/bin/env bash
# Makes (or finds in its cache) a minimal Debian 12 root, the clean system
# the package tests install the .deb on:
#
#   tests/package/debian_root.sh [--systemd]
#
# prints the path of a tarball of `debootstrap --variant=minbase bookworm`
# from the Debian mirror this machine's apt uses, with apt's package lists
# already fetched inside, as its last line. With --systemd the root also
# has systemd as init (systemd, systemd-sysv, dbus), to boot with
# systemd-nspawn; it is made from the plain root's tarball. Needs root
# (debootstrap is installed if missing).
#
# Cache: ${FLOATMOUNT_ROOT_CACHE:-/var/cache/floatmount-tests}/debian12-FLAVOR-KEY.tar.zst
# (FLAVOR: root or systemd),
# where KEY hashes the mirror, this script and the candidate versions (in
# this machine's apt lists) of the packages that matter to the tests: when
# Debian updates one of them the root is made again; older tarballs of
# this kind are deleted then.
set -euo pipefail

suite=bookworm
flavor=root
extra=()
if [[ ${1:-} == --systemd ]]; then
  flavor=systemd
  extra=(systemd systemd-sysv dbus)
elif (($# > 0)); then
  echo "usage: $0 [--systemd]" >&2
  exit 2
fi
# The packages whose version changes what the tests see: the C library,
# apt, systemd and util-linux's mount(8) in the root, and what the .deb
# pulls in from the mirror.
watched=(libc6 libstdc++6 apt mount systemd libsystemd0 fuse3 libfuse3-3 debootstrap)

need=()
for p in debootstrap zstd; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]} > 0)); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The mirror apt uses: the first deb822 URIs or one-line "deb" entry whose
# path ends in /debian (not debian-security).
mirror=${FLOATMOUNT_DEBIAN_MIRROR:-$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
  /etc/apt/sources.list.d/*.list 2>/dev/null |
  awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i} /^deb / {print ($2 ~ /^\[/) ? $3 : $2}' |
  grep -m 1 -E '/debian/?$' || true)}
[[ -n $mirror ]] || { echo "debian_root.sh: no Debian mirror in /etc/apt/sources.list*" >&2; exit 1; }

# (apt-cache is slow on a busy machine: the systemd flavor hands its
# answer to the run that finds the plain root.)
versions=${_FLOATMOUNT_ROOT_VERSIONS:-$(apt-cache policy "${watched[@]}" |
  awk '/^[^ ]+:$/ {p = substr($1, 1, length($1) - 1)} /Candidate:/ {print p "=" $2}')}
if [[ $(grep -c '=' <<<"$versions") -ne ${#watched[@]} || $versions == *"(none)"* ]]; then
  echo "debian_root.sh: no candidate version for some of ${watched[*]} (apt-get update?):" >&2
  echo "$versions" >&2
  exit 1
fi
# The systemd root is the plain one plus systemd: made from its tarball.
base=""
if [[ $flavor == systemd ]]; then
  base=$(_FLOATMOUNT_ROOT_VERSIONS=$versions bash "$0" | tail -n 1)
fi
key=$( { echo "$mirror $suite $flavor ${base##*/}"; echo "$versions"; cat "$0"; } | sha256sum | cut -c1-16)
cache=${FLOATMOUNT_ROOT_CACHE:-/var/cache/floatmount-tests}
tarball=$cache/debian12-$flavor-$key.tar.zst
if [[ -s $tarball ]]; then
  echo "cached: $tarball"
  echo "$tarball"
  exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d /tmp/floatmount-root-build.XXXXXX)
cleanup() {
  for m in $(awk -v r="$work/root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
start=$SECONDS
if [[ -n $base ]]; then
  mkdir "$work/root"
  tar -C "$work/root" --zstd -xf "$base"
else
  echo "debian_root.sh: debootstrap --variant=minbase $suite from $mirror" >&2
  if ! debootstrap --variant=minbase "$suite" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    echo "debian_root.sh: debootstrap failed" >&2
    exit 1
  fi
fi
# The package lists, so that `apt install ./floatmount_*.deb` can fetch its
# dependencies (fuse3) without an `apt-get update` in every test run.
cp /etc/resolv.conf "$work/root/etc/resolv.conf"
mount --bind /proc "$work/root/proc"
[[ -n $base ]] || chroot "$work/root" apt-get update -qq
if ((${#extra[@]} > 0)); then
  DEBIAN_FRONTEND=noninteractive chroot "$work/root" apt-get install -y -q --no-install-recommends \
    "${extra[@]}" >"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log" >&2; exit 1; }
fi
chroot "$work/root" apt-get clean
# Everything mounted in the root (this script's /proc, and a /proc that
# debootstrap could not unmount on a busy machine), innermost first.
for m in $(awk -v r="$work/root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do
  umount "$m" || umount -l "$m"
done
rm -f "$work/root/etc/resolv.conf"
tar -C "$work/root" --one-file-system --numeric-owner -cf - . | zstd -q -T0 -o "$tarball.tmp"
mv "$tarball.tmp" "$tarball"
find "$cache" -maxdepth 1 -name "debian12-$flavor-*.tar.zst" ! -name "${tarball##*/}" -delete
echo "debian_root.sh: made $tarball in $((SECONDS - start)) s ($(du -h "$tarball" | cut -f1))" >&2
echo "$tarball"
