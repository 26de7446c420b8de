#!/usr/bin/env bash
# The kernel NFS client as the reference (issue 16): the same operations
# (tests/bench/roundtrips/ops.sh, run by busybox on both sides) through
# Linux's own NFSv4.1 client and through floatmount, on one server, the
# kernel NFS server (knfsd) in the QEMU guest of the tests, printing each
# client's calls per operation (NFSv4.1 compounds by their main operation)
# side by side. This host has no NFS client module, the guest does: its
# kernel client mounts the guest's own export over loopback, and floatmount
# mounts the same export from the host through the guest's forwarded port.
#
# Counts, not times: the kernel's come from its /proc/self/mountstats, a
# loopback inside an emulated CPU; floatmount's from `floatmount status`.
# Round trips on the caller's path, through a slow network, are
# roundtrips.sh's (floatmount only).
#
# Usage (root: FUSE mount, the guest): sudo tests/bench/kernel_reference.sh [ROWS]
#   ROWS: comma-separated row keys (create, read, read_warm, stat_missing,
#   stat_missing_again, mkdir, rmdir, rename, chmod, symlink, readlink,
#   unlink, lock, ls, tar); rows that use earlier rows' files (rmdir, rename,
#   chmod, unlink) need them chosen too.
# Knobs: BENCH_N=20 (repetitions of single-file rows), BENCH_TAR_FILES=200,
#   BENCH_OPTS=actimeo=60 (mount options of both clients),
#   BENCH_INSTALL=1 (0: do not apt-get install busybox-static when missing),
#   FLOATMOUNT, KNFSD_SERVE (binaries; default build/), FLOATMOUNT_KNFSD_IMAGE
#   (the guest image; built and cached on first use otherwise).
# Exit status: 0 ran, 1 a row failed, 2 could not be set up.
# Takes about 2 minutes (the guest boots in ~10-30 s under QEMU TCG).
# shellcheck disable=SC2317
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SCRIPT_DIR/lib.sh"
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)

N=${BENCH_N:-20}
TAR_FILES=${BENCH_TAR_FILES:-200}
OPTS=${BENCH_OPTS:-actimeo=60}
ROWS=${1:-}
FLOATMOUNT=${FLOATMOUNT:-$REPO/build/agent/floatmount}
KNFSD_SERVE=${KNFSD_SERVE:-$REPO/build/tests/harness/knfsd_serve}

die() { echo "kernel_reference: $*" >&2; exit 2; }
[[ $(id -u) == 0 ]] || die "run as root"
for b in "$FLOATMOUNT" "$KNFSD_SERVE"; do [[ -x $b ]] || die "$b missing (build first)"; done
is_uint "$N" && ((N > 0)) || die "BENCH_N must be a positive number"
is_uint "$TAR_FILES" && ((TAR_FILES > 0)) || die "BENCH_TAR_FILES must be a positive number"
if ! command -v busybox >/dev/null; then
  [[ ${BENCH_INSTALL:-1} == 1 ]] || die "busybox missing (apt-get install busybox-static)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null ||
    die "could not install busybox-static"
fi

TMP=$(mktemp -d /tmp/fmkref.XXXXXX)
chmod 755 "$TMP"
MNT=$TMP/mnt
SERVE_PID="" GUEST_MNT=/mnt/k

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  unmount_floatmount "$FLOATMOUNT" "$MNT"
  [[ -n $SERVE_PID ]] && { guest "umount $GUEST_MNT" >/dev/null 2>&1; exec 3>&-; stop_pid "$SERVE_PID" 60; }
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# guest COMMAND: runs one line in the guest's shell (knfsd_serve's stdin),
# prints its output; returns its exit status (124 if no answer in 90 s,
# 125 if knfsd_serve is gone).
guest() {
  local start rc line i
  start=$(wc -l <"$TMP/serve.out")
  printf '%s\n' "$*" >&3
  for ((i = 0; i < 900; i++)); do
    kill -0 "$SERVE_PID" 2>/dev/null || return 125
    line=$(tail -n +"$((start + 1))" "$TMP/serve.out" | grep -n '\[exit -\?[0-9]*\]$' | head -n 1 || true)
    [[ -n $line ]] && break
    sleep 0.1
  done
  [[ -n $line ]] || return 124
  rc=${line##*\[exit } rc=${rc%]}
  tail -n +"$((start + 1))" "$TMP/serve.out" | head -n "${line%%:*}" | sed 's/\[exit -\?[0-9]*\]$//' |
    sed '${/^$/d}'
  return "$rc"
}

# guest_long NAME COMMAND: runs COMMAND in the guest's background (the
# control shell answers within 30 s), its output to /export/bench/NAME.out;
# waits up to 15 min for it and returns its exit status.
guest_long() {
  local name=$1 rc i
  shift
  guest "( $* ) </dev/null >/export/bench/$name.out 2>&1; echo \$? >/export/bench/$name.rc &" >/dev/null
  for ((i = 0; i < 900; i++)); do
    if rc=$(guest "cat /export/bench/$name.rc 2>/dev/null"); [[ -n $rc ]]; then
      return "$rc"
    fi
    sleep 1
  done
  return 124
}

mkdir -p "$MNT" "$TMP/bin" "$TMP/src/x"
cp "$FLOATMOUNT" "$TMP/bin/"
FLOATMOUNT=$TMP/bin/floatmount
busybox --install -s "$TMP/bin"

mkfifo "$TMP/to-guest"
"$KNFSD_SERVE" <"$TMP/to-guest" >"$TMP/serve.out" 2>"$TMP/serve.err" &
SERVE_PID=$!
exec 3>"$TMP/to-guest"
for ((i = 0; i < 1800; i++)); do
  PORT=$(read_kv "$TMP/serve.out" port)
  [[ -n $PORT ]] && break
  kill -0 "$SERVE_PID" 2>/dev/null || die "knfsd_serve failed: $(tail -n 5 "$TMP/serve.err")"
  sleep 0.1
done
[[ -n $PORT ]] || die "the guest did not come up in 180 s"

timeout 60 "$FLOATMOUNT" -o "port=$PORT,$OPTS,state_dir=$TMP/state" 127.0.0.1:/ "$MNT" \
  >"$TMP/mount.log" 2>&1 || die "floatmount could not mount: $(tr '\n' ' ' <"$TMP/mount.log")"

# What both sides read locally: the script, 4 KiB to write, the tarball,
# util-linux's flock (it needs only libc, which the guest has);
# the guest finds them in its export (/export/bench), written through
# floatmount's mount.
head -c 4096 /dev/urandom >"$TMP/data"
for ((i = 0; i < TAR_FILES; i++)); do head -c 1024 /dev/urandom >"$TMP/src/x/f$i"; done
busybox tar cf "$TMP/t.tar" -C "$TMP/src" x
cat >"$TMP/kcounts.sh" <<EOF
# The kernel client's calls so far on $GUEST_MNT, per operation (mountstats).
awk -v m=$GUEST_MNT '\$1 == "device" { on = (\$5 == m) }
  on && \$1 ~ /^[A-Z_0-9]+:\$/ { sub(":", "", \$1); if (\$1 != "SEQUENCE") print \$1, \$2 }' /proc/self/mountstats
EOF
mkdir "$MNT/bench"
cp "$SCRIPT_DIR/roundtrips/ops.sh" "$TMP/data" "$TMP/t.tar" "$TMP/kcounts.sh" "$(command -v flock)" \
  "$MNT/bench/"

guest_long prep "sh /export/bench/ops.sh prep /export/k $N && sh /export/bench/ops.sh prep /export/f $N" ||
  die "preparing the server's files failed: $(guest 'cat /export/bench/prep.out')"
guest "mkdir -p $GUEST_MNT && mount -t nfs4 -o vers=4.1,$OPTS,addr=127.0.0.1,clientaddr=127.0.0.1 127.0.0.1:/ $GUEST_MNT" ||
  die "the guest's kernel client could not mount its export"
kernel_version=$(guest "uname -r")
kernel_opts=$(guest "awk -v m=$GUEST_MNT '\$2 == m { print \$4 }' /proc/mounts")

echo "# kernel client vs floatmount on knfsd: $(date -u +%FT%TZ)," \
  "git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?), $N of each single-file operation"
echo "# kernel: Linux $kernel_version in the guest, mount -o $kernel_opts"
echo "# floatmount: mount -o port=$PORT,$OPTS from the host (default nconnect)"

guest_long kernel "ONLY=$ROWS DATA=/export/bench/data TARBALL=/export/bench/t.tar FLOCK=/export/bench/flock" \
  "sh /export/bench/ops.sh run $GUEST_MNT/k $N 'sh /export/bench/kcounts.sh'" ||
  die "the kernel client's run failed: $(guest 'cat /export/bench/kernel.out')"
guest "cat /export/bench/kernel.out" >"$TMP/kernel.out"

fcounts="$FLOATMOUNT status --json $MNT | python3 -c 'import json, sys
for k, v in json.load(sys.stdin).get(\"calls\", {}).items():
    if k != \"SEQUENCE (lease renewal)\": print(k.replace(\" \", \"_\"), v)'"
ONLY=$ROWS DATA=$TMP/data TARBALL=$TMP/t.tar FLOCK=$(command -v flock) PATH=$TMP/bin:$PATH \
  busybox sh "$SCRIPT_DIR/roundtrips/ops.sh" run "$MNT/f" "$N" "$fcounts" >"$TMP/floatmount.out" ||
  die "floatmount's run failed: $(cat "$TMP/floatmount.out")"

# One table: operation, each client's calls per op, then each by name.
python3 - "$TMP/kernel.out" "$TMP/floatmount.out" <<'EOF'
import sys
def rows(path):
    out = {}
    for line in open(path):
        parts = line.rstrip("\n").split("|")
        if len(parts) == 4:
            out[parts[0]] = parts[1:]
    return out
kernel, fm = rows(sys.argv[1]), rows(sys.argv[2])
print(f"{'operation':<44} {'kernel':>7} {'floatmount':>10}  calls by name (kernel / floatmount)")
failed = False
for key, (what, total, names) in kernel.items():
    fwhat, ftotal, fnames = fm.get(key, (what, "-", ""))
    failed |= "FAILED" in total or "FAILED" in ftotal
    print(f"{what:<44} {total:>7} {ftotal:>10}  {names or '-'} / {fnames or '-'}")
sys.exit(1 if failed else 0)
EOF
