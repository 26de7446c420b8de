#!/usr/bin/env bash
# Builds the QEMU guest that runs the Linux kernel NFS server (knfsd) for the
# tests (tests/harness/knfsd_server.h):
#
#   build_guest.sh [OUTDIR]
#
# writes OUTDIR/vmlinuz (Debian 12's linux-image-amd64) and OUTDIR/initrd.gz
# (busybox, the nfsd modules, rpc.nfsd/rpc.mountd/exportfs with the
# libraries they link, and init.sh from this directory as /init), then
# prints OUTDIR as its last line. The Debian packages are fetched with
# `apt-get download` and unpacked with `dpkg-deb -x`: nothing is installed
# on the host.
#
# Cache: without OUTDIR the image goes to
# ${FLOATMOUNT_KNFSD_CACHE:-/var/cache/floatmount-tests}/knfsd-KEY, where KEY
# hashes the candidate versions of the packages and this directory's
# scripts; a second run with the same versions prints "cached" and reuses it.
# With OUTDIR, the image is reused if OUTDIR/key holds the same KEY.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top_packages=(linux-image-amd64 busybox-static nfs-kernel-server nfs-common)
# Modules for the NFS server, the kernel NFS client (nfsv4: the reference
# client, mounting the guest's own export) and the guest's network card, in
# any order; modprobe --show-depends orders them with their dependencies.
modules=(virtio_pci virtio_net nfsd nfsv4)

# linux-image-amd64 is a meta-package: the kernel itself is its dependency.
kernel_package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
[[ -n $kernel_package ]] || { echo "build_guest.sh: cannot resolve linux-image-amd64 (apt-get update?)" >&2; exit 1; }
# "package=candidate version" lines, from one apt-cache call (it is slow).
versions=$(apt-cache policy "${top_packages[@]}" "$kernel_package" |
  awk '/^[^ ]+:$/ {p = substr($1, 1, length($1) - 1)} /Candidate:/ {print p "=" $2}')
if [[ $(grep -c '=' <<<"$versions") -ne $((${#top_packages[@]} + 1)) || $versions == *"(none)"* ]]; then
  echo "build_guest.sh: no candidate version for some of ${top_packages[*]} $kernel_package:" >&2
  echo "$versions" >&2
  exit 1
fi
key=$( { echo "$versions"; cat "$here/build_guest.sh" "$here/init.sh"; } | sha256sum | cut -c1-16)

cache=${FLOATMOUNT_KNFSD_CACHE:-/var/cache/floatmount-tests}
out=${1:-$cache/knfsd-$key}
if [[ -f $out/key && $(cat "$out/key") == "$key" && -s $out/vmlinuz && -s $out/initrd.gz ]]; then
  echo "cached: $out ($(paste -sd' ' <<<"$versions"))"
  echo "$out"
  exit 0
fi

work=$(mktemp -d /tmp/floatmount-knfsd-build-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir debs tree root

# The libraries rpc.nfsd, rpc.mountd and exportfs link: their packages'
# lib* dependencies, unpacked beside them (ldd below finds the rest, such as
# libc, on the host, which runs the same Debian release).
lib_packages=()
for p in nfs-kernel-server nfs-common; do
  while read -r dep; do
    [[ $dep == lib* && $dep != libc6 ]] && lib_packages+=("$dep")
  done < <(apt-cache depends "$p" | awk '/^  (Pre)?Depends: / {print $2}')
done
(cd debs && apt-get download -q "${top_packages[@]:1}" "$kernel_package" \
   $(printf '%s\n' "${lib_packages[@]}" | sort -u) 2>&1 | grep -v '^Get:' || true)
for deb in debs/*.deb; do dpkg-deb -x "$deb" tree; done

kver=$(ls tree/lib/modules | head -n 1)
[[ -n $kver && -f tree/boot/vmlinuz-$kver ]] || { echo "build_guest.sh: no kernel in the packages" >&2; exit 1; }

# /init and busybox.
mkdir -p root/{bin,sbin,etc,proc,sys,dev,run,tmp,export,var/lib/nfs/v4recovery,lib/modules}
cp tree/bin/busybox root/bin/busybox
ln -s busybox root/bin/sh  # init.sh installs the other applets
install -m 0755 "$here/init.sh" root/init

# The modules with their dependencies, in load order (lib/modules/load-order).
depmod -b tree "$kver"
: >root/lib/modules/load-order
for m in "${modules[@]}"; do
  modprobe -d tree -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  rel=${ko#"$work/tree"}
  rel=${rel#tree}
  mkdir -p "root$(dirname "$rel")"
  cp "tree$rel" "root$rel"
  echo "$rel" >>root/lib/modules/load-order
done
[[ -s root/lib/modules/load-order ]] || { echo "build_guest.sh: module list is empty" >&2; exit 1; }

# The NFS programs and every library they load.
libdirs=$(find tree -name '*.so*' -printf '%h\n' | sort -u | sed "s|^|$work/|" | paste -sd:)
for prog in usr/sbin/rpc.nfsd usr/sbin/rpc.mountd usr/sbin/exportfs; do
  [[ -x tree/$prog ]] || prog=${prog/usr\/sbin/sbin}
  [[ -x tree/$prog ]] || { echo "build_guest.sh: $prog missing from the packages" >&2; exit 1; }
  cp "tree/$prog" root/sbin/
  LD_LIBRARY_PATH=$libdirs ldd "tree/$prog" | awk '/=>/ {print $1, $3} !/=>/ && /\// {print $1, $1}' |
    while read -r name path; do
      if [[ $path == "not" || ! -e $path ]]; then
        echo "build_guest.sh: $prog needs $name, not found" >&2
        exit 1
      fi
      dest=root/lib/x86_64-linux-gnu
      [[ $name == /* ]] && dest=root$(dirname "$name")
      mkdir -p "$dest"
      cp -L "$path" "$dest/$(basename "$name")"
    done
done
mkdir -p root/lib64
[[ -e root/lib64/ld-linux-x86-64.so.2 ]] || cp -L /lib64/ld-linux-x86-64.so.2 root/lib64/
echo "root:x:0:0:root:/:/bin/sh" >root/etc/passwd
echo "root:x:0:" >root/etc/group
: >root/etc/exports

mkdir -p "$out"
cp "tree/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
(cd root && find . | cpio -o -H newc --quiet | gzip -6) >"$out/initrd.gz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initrd.gz.tmp" "$out/initrd.gz"
echo "$versions" >"$out/versions"
echo "$key" >"$out/key"
if [[ -z ${1:-} ]]; then  # older images in the cache are stale now
  find "$cache" -mindepth 1 -maxdepth 1 -name 'knfsd-*' ! -name "knfsd-$key" -exec rm -rf {} +
fi
echo "built: $out (kernel $kver, initrd $(du -h "$out/initrd.gz" | cut -f1))"
echo "$out"
