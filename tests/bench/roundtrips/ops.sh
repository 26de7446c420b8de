#!/bin/sh
# The round-trip script's operations in POSIX sh, for busybox: run by the
# kernel's NFS client inside the knfsd guest (which has no Python) and by
# floatmount on the host, each with the same busybox programs, so the two
# clients' calls per operation stand side by side on one server
# (tests/bench/kernel_reference.sh; ops.py is the richer script that also
# times the caller's path through a slow proxy).
#
#   ops.sh prep SERVER_DIR N     make, on the server's own disk, the files
#                                the rows find "cold" (new to the client)
#   ops.sh run DIR N COUNTS      run the rows in DIR, a client's view of a
#                                prepared SERVER_DIR
# COUNTS is a shell command that prints the client's calls so far, one
# "OPERATION COUNT" line per operation (NFSv4.1 compounds by their main
# operation; lease renewals left out). Environment for `run`: DATA, a local
# file of 4 KiB to write; TARBALL, a local tar of small files; FLOCK,
# util-linux's flock(1); ONLY, optional comma-separated row keys.
# `run` prints one line per row: key|what|calls per op|calls per op by name
set -eu

prep() {
  srv=$1 n=$2
  mkdir -p "$srv/r" "$srv/w" "$srv/ls" "$srv/t"
  head -c 4096 /dev/urandom >"$srv/r/f0"
  i=1
  while [ "$i" -lt "$n" ]; do cp "$srv/r/f0" "$srv/r/f$i"; i=$((i + 1)); done
  i=0
  while [ "$i" -lt "$n" ]; do ln -s "target$i" "$srv/r/l$i"; i=$((i + 1)); done
  i=0
  while [ "$i" -lt 200 ]; do : >"$srv/ls/e$i"; i=$((i + 1)); done
}

# Calls since `before` (a COUNTS snapshot) divided by $1: "TOTAL|NAME x, ...".
calls_since() {
  eval "$COUNTS" >"$tmp/after"
  awk -v div="$1" '
    NR == FNR { before[$1] = $2; next }
    { d = $2 - before[$1]; if (d > 0) { total += d; by[$1] = d } }
    END {
      n = 0
      for (k in by) names[++n] = k
      for (i = 2; i <= n; i++)  # sorted by name (busybox awk has no asort)
        for (j = i; j > 1 && names[j - 1] > names[j]; j--) {
          t = names[j]; names[j] = names[j - 1]; names[j - 1] = t
        }
      line = ""
      for (i = 1; i <= n; i++)
        line = line (i > 1 ? ", " : "") sprintf("%s %.2f", names[i], by[names[i]] / div)
      printf "%.2f|%s\n", total / div, line
    }' "$tmp/before" "$tmp/after"
}

# measure KEY WHAT COUNT DIVISOR FUNCTION: FUNCTION i for i in 0..COUNT-1.
measure() {
  key=$1 what=$2 count=$3 div=$4 fn=$5
  case ",${ONLY:-$key}," in *",$key,"*) ;; *) return 0 ;; esac
  eval "$COUNTS" >"$tmp/before"
  i=0
  while [ "$i" -lt "$count" ]; do
    "$fn" "$i" || { echo "$key|$what|FAILED at $i|"; return 0; }
    i=$((i + 1))
  done
  echo "$key|$what|$(calls_since "$div")"
}

op_create() { cat "$DATA" >"$D/w/new$1"; }
op_read() { cat "$D/r/f$1" >/dev/null; }
op_stat_missing() { ! stat "$D/w/missing$1" >/dev/null 2>&1; }
op_mkdir() { mkdir "$D/w/d$1"; }
op_rmdir() { rmdir "$D/w/d$1"; }
op_rename() { mv "$D/w/new$1" "$D/w/moved$1"; }
op_chmod() { chmod 600 "$D/w/moved$1"; }
op_symlink() { ln -s "target$1" "$D/w/l$1"; }
op_readlink() { readlink "$D/r/l$1" >/dev/null; }
op_unlink() { rm "$D/w/moved$1"; }
# util-linux's flock(1): busybox has none (FLOCK names it where it is not
# on PATH).
op_flock() { "${FLOCK:-flock}" -x "$D/w/lock" true; }
# shellcheck disable=SC2010  # the row is `ls -l` itself: names and a stat of each
op_ls() { [ "$(ls -l "$D/ls" | grep -c ' e')" -eq 200 ]; }
op_tar() { tar xf "$TARBALL" -C "$D/t"; }

run() {
  D=$1 n=$2 COUNTS=$3
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  : >"$D/w/lock"
  files=$(tar tf "$TARBALL" | grep -vc '/$')
  measure create "create + write 4 KiB + close" "$n" "$n" op_create
  measure read "open + read 4 KiB + close (cold)" "$n" "$n" op_read
  measure read_warm "open + read 4 KiB + close (again)" "$n" "$n" op_read
  measure stat_missing "stat of a missing name" "$n" "$n" op_stat_missing
  measure stat_missing_again "stat of it again (within actimeo)" "$n" "$n" op_stat_missing
  measure mkdir "mkdir" "$n" "$n" op_mkdir
  measure rmdir "rmdir" "$n" "$n" op_rmdir
  measure rename "rename" "$n" "$n" op_rename
  measure chmod "chmod" "$n" "$n" op_chmod
  measure symlink "symlink" "$n" "$n" op_symlink
  measure readlink "readlink (cold)" "$n" "$n" op_readlink
  measure unlink "unlink" "$n" "$n" op_unlink
  measure lock "flock -x FILE true (open, lock, close)" "$n" "$n" op_flock
  measure ls "ls -l of 200 files (cold, in all)" 1 1 op_ls
  measure tar "tar x of $files files (per file)" 1 "$files" op_tar
}

case ${1:-} in
  prep) prep "$2" "$3" ;;
  run) run "$2" "$3" "$4" ;;
  *) echo "usage: ops.sh prep SERVER_DIR N | ops.sh run DIR N COUNTS" >&2; exit 2 ;;
esac
