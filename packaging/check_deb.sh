#!/usr/bin/env bash
# Checks a floatmount .deb: packaging/check_deb.sh DEB. Needs root.
#  1. lintian: fails on errors, prints warnings and info tags.
#  2. Unpacks it into a scratch root (dpkg -x) and checks the files, the
#     dependencies, the installed binary's --version and the example config.
#  3. mount(8) finds mount.floatmount: in a private mount namespace whose
#     /usr/sbin holds only the package's files, `mount -t floatmount` must
#     run it (through /sbin, which is /usr/sbin on merged-/usr Debian 12).
#  4. The maintainer scripts, run in a private mount namespace with stand-ins
#     for systemctl and deb-systemd-invoke: an upgrade must not stop or
#     restart anything, a removal must stop the floatmount@ instances.
#  5. systemd-analyze verify on the installed unit, the example .mount unit
#     and the unit systemd-fstab-generator makes from the example fstab line,
#     with --root on the scratch root (plus the host's own units, which the
#     dependencies name) and MANPATH on its man pages.
set -euo pipefail

deb=$(realpath "$1")
need=()
for p in lintian systemd man-db; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]} > 0)); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/floatmount-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "check_deb.sh: FAIL: $*" >&2; exit 1; }

echo "== lintian"
lintian --fail-on error --display-info "$deb" 2> >(grep -v 'running with root' >&2) ||
  fail "lintian reports errors"

echo "== files"
root="$work/root"
dpkg -x "$deb" "$root"
for f in usr/sbin/floatmount lib/systemd/system/floatmount@.service \
  usr/share/man/man8/floatmount.8.gz usr/share/man/man8/mount.floatmount.8.gz \
  usr/share/doc/floatmount/copyright usr/share/doc/floatmount/examples/floatmount.conf.example \
  usr/share/doc/floatmount/examples/mnt-data.mount usr/share/doc/floatmount/examples/fstab; do
  [[ -e $root/$f ]] || fail "/$f is missing"
done
[[ -d $root/etc/floatmount ]] || fail "/etc/floatmount is missing"
[[ $(readlink "$root/usr/sbin/mount.floatmount") == floatmount ]] || fail "mount.floatmount is not a link to floatmount"
depends=$(dpkg-deb -f "$deb" Depends)
for d in fuse3 libfuse3-3 libc-ares2 libsystemd0; do
  [[ $depends == *"$d"* ]] || fail "Depends lacks $d: $depends"
done
! ldd "$root/usr/sbin/floatmount" | grep "not found" || fail "shared libraries missing"
version=$(dpkg-deb -f "$deb" Version)
got=$("$root/usr/sbin/floatmount" --version)
echo "$got"
[[ $got == "floatmount ${version%%-*}" ]] || fail "--version says '$got', the package is $version"
# The example parses: the run stops at the (missing) mount point, exit 9.
rc=0
"$root/usr/sbin/floatmount" --config "$root/usr/share/doc/floatmount/examples/floatmount.conf.example" \
  -o mountpoint="$work/none" 2>/dev/null || rc=$?
((rc == 9)) || fail "the example config does not parse (exit $rc, 9 expected)"

echo "== mount(8) runs /sbin/mount.floatmount"
[[ $(readlink -f /sbin) == /usr/sbin ]] || fail "/sbin is not /usr/sbin: this package needs merged /usr"
mkdir "$work/mnt"
# shellcheck disable=SC2016 # $1 and $2 are the inner sh's
out=$(unshare -m sh -c 'mount --make-rprivate / && mount -t tmpfs none /usr/sbin &&
  cp -a "$1"/usr/sbin/. /usr/sbin/ && mount -t floatmount -o nconnect=0 nfs.invalid:/export "$2"' \
  sh "$root" "$work/mnt" 2>&1) && fail "mount -t floatmount with nconnect=0 succeeded"
echo "$out"
[[ $out == *"floatmount: "*"nconnect takes a number from 1 to 64"* ]] || fail "mount(8) did not run mount.floatmount"

echo "== maintainer scripts"
dpkg-deb -e "$deb" "$work/ctl"
mkdir "$work/bin"
for tool in systemctl deb-systemd-invoke; do
  printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\n' "$tool" "$work" >"$work/bin/$tool"
  chmod +x "$work/bin/$tool"
done
# /run, /var/lib and /etc/systemd/system are empty tmpfs in the namespace:
# the scripts' mkdir, rm -rf and find touch nothing of this machine.
run_script() {
  : >"$work/calls"
  # shellcheck disable=SC2016 # $0 and $@ are the inner sh's
  unshare -m sh -c 'mount --make-rprivate / && for d in /run /var/lib /etc/systemd/system; do
    mount -t tmpfs none "$d"; done && mkdir -p /run/systemd/system && PATH="$0/bin:$PATH" "$@"' \
    "$work" "$work/ctl/$1" "${@:2}"
  cat "$work/calls"
}
calls=$(run_script prerm upgrade "$version"; run_script postinst configure "$version")
echo "upgrade: ${calls//$'\n'/; }"
[[ $calls != *stop* && $calls != *restart* ]] || fail "an upgrade stops or restarts units: $calls"
[[ $calls == *daemon-reload* ]] || fail "an upgrade does not reload systemd"
calls=$(run_script prerm remove; run_script postrm remove; run_script postrm purge)
echo "remove:  ${calls//$'\n'/; }"
[[ $calls == *"deb-systemd-invoke stop floatmount@*.service"* ]] || fail "removal does not stop the instances"

echo "== systemd-analyze verify"
cp -rn /lib/systemd/system/. "$root/lib/systemd/system/"
mkdir -p "$root/etc/systemd/system"
cp "$root/usr/share/doc/floatmount/examples/mnt-data.mount" "$root/etc/systemd/system/"
export MANPATH="$root/usr/share/man:/usr/share/man"
# verify exits 0 on an unknown key or a value it cannot parse, so any
# output at all is a failure.
verify() {
  local out rc=0
  out=$(systemd-analyze verify --root="$root" "$@" 2>&1) || rc=$?
  if ((rc != 0)) || [[ -n $out ]]; then fail "systemd-analyze verify $* (exit $rc): $out"; fi
}
verify floatmount@.service mnt-data.mount
# The generator's unit goes where verify looks, in place of the example's.
gen="$work/generator"
mkdir "$gen"
SYSTEMD_FSTAB="$root/usr/share/doc/floatmount/examples/fstab" SYSTEMD_LOG_LEVEL=warning \
  /lib/systemd/system-generators/systemd-fstab-generator "$gen" "$gen" "$gen"
cp "$gen/mnt-data.mount" "$root/etc/systemd/system/" || fail "the fstab example gave no mnt-data.mount"
verify mnt-data.mount
echo "verified: floatmount@.service, examples/mnt-data.mount, mnt-data.mount from examples/fstab"
echo "check_deb.sh: OK $deb"
