#!/usr/bin/env bash
# Checks a floatmount .deb: packaging/check_deb.sh DEB. Needs root.
#  1. lintian: fails on errors, prints warnings and info tags.
#  2. Unpacks it into a scratch root (dpkg -x) and checks the files, the
#     dependencies, the installed binary's --version and the example config.
#     FLOATMOUNT_RUN_FOREIGN=RUNNER (e.g. qemu-aarch64-static) runs the
#     binary of another architecture's package through RUNNER; steps 3 to
#     5 then do not run (mount(8) and the maintainer scripts would need
#     binfmt_misc, and they are the same scripts on every architecture).
#     Portable: Depends names only packages that Debian 12, Ubuntu 22.04
#     and 24.04 all have, the binary links only those libraries, and needs
#     no symbol version newer than Ubuntu 22.04's (glibc 2.35, GCC 12).
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
run=()
if [[ $(dpkg-deb -f "$deb" Architecture) != "$(dpkg --print-architecture)" ]]; then
  [[ -n ${FLOATMOUNT_RUN_FOREIGN:-} ]] ||
    fail "$deb is for $(dpkg-deb -f "$deb" Architecture): set FLOATMOUNT_RUN_FOREIGN (e.g. qemu-aarch64-static)"
  run=("$FLOATMOUNT_RUN_FOREIGN")
fi

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
for d in fuse3 libsystemd0; do
  [[ $depends == *"$d"* ]] || fail "Depends lacks $d: $depends"
done

echo "== portable: installs on Debian 12, Ubuntu 22.04 and Ubuntu 24.04"
# Only packages with the same name on all three may be depended on; the
# rest is linked in (packaging/README.md). Then the symbol versions the
# binary needs must exist in Ubuntu 22.04, the oldest: glibc 2.35,
# libstdc++ and libgcc_s of GCC 12, libsystemd 249, libfuse3 3.10.
echo "Depends: $depends"
for d in $(sed -E 's/\([^)]*\)//g; s/[,|]/ /g' <<<"$depends"); do
  case ${d%%:*} in
    libc6 | libstdc++6 | libgcc-s1 | libfuse3-3 | libsystemd0 | fuse3) ;;
    *) fail "Depends names $d, which is not the same package on Debian 12, Ubuntu 22.04 and 24.04: $depends" ;;
  esac
done
bin=$root/usr/sbin/floatmount
needed=$(readelf -d -W "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for lib in $needed; do
  case $lib in
    libc.so.6 | libm.so.6 | libstdc++.so.6 | libgcc_s.so.1 | libfuse3.so.3 | libsystemd.so.0 | ld-linux*) ;;
    *) fail "the binary links $lib dynamically (allowed: libc, libm, libstdc++, libgcc_s, libfuse3, libsystemd)" ;;
  esac
done
echo "NEEDED: $(paste -sd' ' <<<"$needed")"
# "FILE PREFIX CEILING": the highest version of each family Ubuntu 22.04 has.
ceilings="libc.so.6 GLIBC_ 2.35
libm.so.6 GLIBC_ 2.35
libstdc++.so.6 GLIBCXX_ 3.4.30
libstdc++.so.6 CXXABI_ 1.3.13
libgcc_s.so.1 GCC_ 12.0.0
libsystemd.so.0 LIBSYSTEMD_ 249
libfuse3.so.3 FUSE_ 3.10"
# "FILE VERSION" for each symbol version the binary needs (.gnu.version_r).
needs=$(readelf -V -W "$bin" | awk '/File:/ {for (i = 1; i <= NF; i++) if ($i == "File:") f = $(i + 1)}
  /Name:/ {for (i = 1; i <= NF; i++) if ($i == "Name:") print f, $(i + 1)}')
while read -r file prefix ceiling; do
  highest=$(awk -v f="$file" -v p="$prefix" '$1 == f && index($2, p) == 1 {print substr($2, length(p) + 1)}' <<<"$needs" |
    { grep -E '^[0-9.]+$' || true; } | sort -V | tail -n 1)
  [[ -z $highest ]] && continue
  echo "$file: highest $prefix$highest (at most $prefix$ceiling)"
  [[ $(printf '%s\n%s\n' "$highest" "$ceiling" | sort -V | tail -n 1) == "$ceiling" ]] ||
    fail "the binary needs $prefix$highest from $file, newer than Ubuntu 22.04's $prefix$ceiling"
done <<<"$ceilings"
if ((${#run[@]} == 0)); then
  ! ldd "$root/usr/sbin/floatmount" | grep "not found" || fail "shared libraries missing"
fi
version=$(dpkg-deb -f "$deb" Version)
got=$("${run[@]}" "$root/usr/sbin/floatmount" --version)
echo "$got"
[[ $got == "floatmount ${version%%-*}" ]] || fail "--version says '$got', the package is $version"
# The example parses: the run stops at the (missing) mount point, exit 9.
rc=0
"${run[@]}" "$root/usr/sbin/floatmount" --config "$root/usr/share/doc/floatmount/examples/floatmount.conf.example" \
  -o mountpoint="$work/none" 2>/dev/null || rc=$?
((rc == 9)) || fail "the example config does not parse (exit $rc, 9 expected)"

if ((${#run[@]} > 0)); then
  echo "== mount(8), the maintainer scripts, systemd-analyze: checked on the host's own architecture"
  exit 0
fi

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
