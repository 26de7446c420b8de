# Shared by the package tests here (sourced): clean_room_install.sh and
# systemd_boot.sh.

# One line on stderr naming the script, then exit 1.
fail() {
  echo "${0##*/}: FAIL: $*" >&2
  exit 1
}

# Checks the two arguments every package test takes (DEB GANESHA_SERVE, and
# the root's tarball when the script runs itself again in a namespace) and
# sets deb and ganesha_serve to their absolute paths.
package_test_args() {
  if (($# != 2 && $# != 3)); then
    echo "usage: $0 DEB GANESHA_SERVE" >&2
    exit 2
  fi
  deb=$(realpath "$1")
  ganesha_serve=$(realpath "$2")
  [[ -f $deb && -x $ganesha_serve ]] || { echo "${0##*/}: missing $deb or $ganesha_serve" >&2; exit 2; }
}

# Starts the loopback nfs-ganesha (GANESHA_SERVE) with its output in
# DIR/server.out and waits until it serves; sets server_pid, port and
# export_dir (the export's directory on this machine).
start_loopback_server() {
  local serve=$1 dir=$2
  "$serve" >"$dir/server.out" 2>&1 &
  server_pid=$!
  for _ in $(seq 150); do
    grep -q '^pseudo=' "$dir/server.out" && break
    kill -0 "$server_pid" 2>/dev/null || fail "the loopback NFS server did not start"
    sleep 0.2
  done
  port=$(sed -n 's/^port=//p' "$dir/server.out")
  export_dir=$(sed -n 's/^export_dir=//p' "$dir/server.out")
  [[ -n $port && -d $export_dir ]] || fail "the loopback NFS server did not answer"
}

# apt-get install ./DEB inside ROOT (chroot; /proc and /dev mounted there
# by the caller, DEB copied to ROOT/tmp), its output in LOG. The lists in a
# cached root may name versions the mirror has dropped: then once more after
# apt-get update.
apt_install_deb() {
  local root=$1 deb=$2 log=$3
  local install=(chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q
    --no-install-recommends "/tmp/${deb##*/}")
  "${install[@]}" >"$log" 2>&1 && return 0
  chroot "$root" apt-get update -qq && "${install[@]}" >"$log" 2>&1 && return 0
  cat "$log" >&2
  fail "apt-get install ./${deb##*/} failed"
}
