#!/usr/bin/env bash
# Builds the floatmount .deb: packaging/build_deb.sh [--arch ARCH] [OUTDIR]
#
# --arch ARCH (e.g. arm64) cross-builds the package for that Debian
# architecture on this machine with Debian's cross toolchain
# (crossbuild-essential-ARCH) and the ARCH (multiarch) -dev packages of
# debian/control's Build-Depends: it adds ARCH to dpkg's architectures and
# installs them if missing (root).
#
# Installs dpkg-dev, debhelper and debian/control's Build-Depends with
# apt-get if any is missing (needs root then), copies the source tree (the
# files git tracks or would track) to a scratch directory, builds there with
# dpkg-buildpackage (nothing is written into the checkout) and copies the
# .deb, its -dbgsym .deb, .buildinfo and .changes to OUTDIR (default:
# build-deb/ in the checkout, which git ignores), next to build.log. The
# last line printed is the .deb's path. JOBS=N: parallel jobs (nproc).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
host_arch=$(dpkg --print-architecture)
arch=$host_arch
if [[ ${1:-} == --arch ]]; then
  arch=${2:?"usage: $0 [--arch ARCH] [OUTDIR]"}
  shift 2
fi
out=${1:-$src/build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

tools=(dpkg-dev debhelper)
cross=()
if [[ $arch != "$host_arch" ]]; then
  tools+=("crossbuild-essential-$arch")
  cross=(-a "$arch")
fi
missing=()
for p in "${tools[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)) || ! (cd "$src" && dpkg-checkbuilddeps "${cross[@]}") 2>/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "build_deb.sh: run as root to install the build dependencies" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [[ $arch != "$host_arch" ]] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    dpkg --add-architecture "$arch"
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${tools[@]}" >/dev/null
  apt-get build-dep -y -qq "${cross[@]}" "$src" >/dev/null
fi

version=$(cd "$src" && dpkg-parsechangelog -SVersion)
# One fixed scratch directory per architecture, so that the compiler sees
# the same paths every time (dpkg-buildflags maps them in -ffile-prefix-map)
# and ccache can reuse earlier compiles; a lock keeps two builds apart.
work=${TMPDIR:-/tmp}/floatmount-deb-$arch
exec {lock}>"$work.lock"
flock "$lock"
rm -rf "$work"
mkdir "$work"
trap 'rm -rf "$work"' EXIT
tree="$work/floatmount-$version"
mkdir "$tree"
# Tracked and untracked-but-not-ignored files; a tracked file deleted in
# the working tree is skipped (tar warns).
(cd "$src" && git ls-files -z --cached --others --exclude-standard |
  tar --null -T - --ignore-failed-read -cf -) | tar -C "$tree" -xf -

if ! (cd "$tree" && dpkg-buildpackage "${cross[@]}" -b -us -uc -j"${JOBS:-$(nproc)}") >"$out/build.log" 2>&1; then
  tail -n 60 "$out/build.log" >&2
  echo "build_deb.sh: dpkg-buildpackage failed; full log: $out/build.log" >&2
  exit 1
fi
cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
deb="$out/floatmount_${version}_${arch}.deb"
[[ -f $deb ]] || { echo "build_deb.sh: no $deb was made" >&2; exit 1; }
echo "$deb"
