#!/usr/bin/env bash
# Tests the Databricks init script on a simulated node:
#   packaging/databricks/test_init_script.sh DEB GANESHA_SERVE
# DEB is the floatmount .deb (packaging/build_deb.sh), GANESHA_SERVE the
# harness's loopback NFS server (build/tests/harness/ganesha_serve).
# Needs root, /dev/fuse and nfs-ganesha.
#
# The node: no systemd (the script starts the agent itself), a directory
# standing in for the Unity Catalog Volume that holds the .deb, nothing
# from the caller's environment but PATH and the FLOATMOUNT_* and DB_*
# variables Databricks would pass. The script installs the .deb with apt
# on this machine, as it would on a node; the test puts the machine back
# as it was: it purges the package if it was not installed before (and
# restores /var/lib/floatmount, which a purge deletes), removes the config
# file it made, unmounts and stops the server, whatever the outcome.
#
# Cases: a missing setting fails with its own exit code and one line,
# leaving nothing behind; the first run installs, configures and mounts,
# and files go both ways through the mount; a second run changes nothing
# (same agent, config file, package, one mount); bad options and changed
# settings are refused while the mount goes on; an agent that died is
# replaced; a server that does not answer ends in the agent's exit code.
set -euo pipefail

if (($# != 2)); then
  echo "usage: $0 DEB GANESHA_SERVE" >&2
  exit 2
fi
deb=$(realpath "$1")
ganesha_serve=$(realpath "$2")
script=$(cd "$(dirname "$0")" && pwd)/floatmount-init.sh
[[ -f $deb && -x $ganesha_serve && -f $script ]] || { echo "test_init_script.sh: missing $deb, $ganesha_serve or $script" >&2; exit 2; }

fail() {
  echo "test_init_script.sh: FAIL: $*" >&2
  exit 1
}
((EUID == 0)) || fail "run as root: the init script installs a package and mounts"

version=$(dpkg-deb -f "$deb" Version)
before=$(dpkg-query -W -f='${Status}|${Version}' floatmount 2>/dev/null || true)
if [[ $before == "install ok installed|"* && ${before#*|} != "$version" ]]; then
  fail "floatmount ${before#*|} is installed here; this test would replace it with $version"
fi
was_installed=0
[[ $before == "install ok installed|"* ]] && was_installed=1

work=$(mktemp -d /tmp/floatmount-dbx-test.XXXXXX)
chmod 0755 "$work"
name=dbxtest$$
mnt=$work/mnt
config=/etc/floatmount/$name.conf
server_pid=""
state_backup=""
run_dir_existed=0
[[ -d /run/floatmount ]] && run_dir_existed=1

cleanup() {
  local rc=$?
  set +e
  if [[ $(awk -v mp="$mnt" '$5 == mp' /proc/self/mountinfo) ]]; then
    timeout 90 /usr/sbin/floatmount unmount "$mnt" >/dev/null 2>&1 || umount -l "$mnt"
  fi
  # An agent of this test still starting (a run cut short) is stopped:
  # found by its exact command line, which holds this test's unique name.
  local cmdline pid
  for cmdline in /proc/[0-9]*/cmdline; do
    if [[ $(tr '\0' ' ' 2>/dev/null <"$cmdline") == "/usr/sbin/floatmount -f --config $name " ]]; then
      pid=${cmdline#/proc/}
      kill -TERM "${pid%/cmdline}" 2>/dev/null
    fi
  done
  if [[ -n $server_pid ]]; then
    kill -TERM "$server_pid" 2>/dev/null
    timeout 60 tail --pid="$server_pid" -f /dev/null
  fi
  rm -f "$config"
  if ((was_installed == 0)) && dpkg-query -W floatmount >/dev/null 2>&1; then
    dpkg --purge floatmount >/dev/null || echo "test_init_script.sh: could not purge floatmount" >&2
  fi
  if [[ -n $state_backup ]]; then
    rm -rf /var/lib/floatmount
    cp -a "$state_backup" /var/lib/floatmount
  fi
  ((run_dir_existed)) || rmdir /run/floatmount 2>/dev/null
  if ((rc != 0)); then
    echo "--- init.log" >&2
    tail -n 30 "$work/log/init.log" >&2 2>/dev/null
    echo "--- $name.log (agent)" >&2
    tail -n 30 "$work/log/$name.log" >&2 2>/dev/null
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# A purge deletes /var/lib/floatmount, which may hold this machine's node
# ID from before: keep a copy to put back.
if ((was_installed == 0)) && [[ -e /var/lib/floatmount ]]; then
  state_backup=$work/state-backup
  cp -a /var/lib/floatmount "$state_backup"
fi

echo "== loopback NFS server"
"$ganesha_serve" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for ((i = 0; i < 600; i++)); do
  grep -qs '^pseudo=' "$work/server.out" && break
  kill -0 "$server_pid" 2>/dev/null || fail "ganesha_serve exited: $(cat "$work/server.err")"
  sleep 0.1
done
grep -q '^pseudo=' "$work/server.out" || fail "ganesha_serve did not start within 60 s"
port=$(sed -n 's/^port=//p' "$work/server.out")
export_dir=$(sed -n 's/^export_dir=//p' "$work/server.out")
pseudo=$(sed -n 's/^pseudo=//p' "$work/server.out")
echo "port=$port export_dir=$export_dir"

# The Volume: /Volumes/CATALOG/SCHEMA/VOLUME on a node; a directory here.
volume=$work/Volumes/main/default/floatmount
mkdir -p "$volume"
cp "$deb" "$volume/"

# Runs the init script as Databricks would: a clean environment holding
# the cluster's variables, stdout and stderr kept apart. Sets rc, out, err.
init_env=(
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  DB_CLUSTER_ID=0101-000000-test DB_IS_DRIVER=TRUE
  FLOATMOUNT_SERVER=127.0.0.1 FLOATMOUNT_EXPORT="$pseudo" FLOATMOUNT_MOUNT_POINT="$mnt"
  FLOATMOUNT_OPTIONS="nconnect=4,port=$port,rw,hard"
  FLOATMOUNT_DEB="$volume/$(basename "$deb")" FLOATMOUNT_NAME="$name"
  FLOATMOUNT_READY_TIMEOUT=60 FLOATMOUNT_LOG_DIR="$work/log"
)
# This machine has no systemd as PID 1; elsewhere say so explicitly.
[[ -d /run/systemd/system ]] && init_env+=(FLOATMOUNT_START=direct)
run_init() {
  rc=0
  timeout 300 env -i "${init_env[@]}" "$@" bash "$script" >"$work/out" 2>"$work/err" || rc=$?
  out=$(cat "$work/out")
  err=$(cat "$work/err")
}

mounts_at_mnt() {
  awk -v mp="$mnt" '$5 == mp' /proc/self/mountinfo | wc -l
}
# The agent's pid file: /run/floatmount/ + the mount point with '/' as '-'
# and any byte but [A-Za-z0-9_.] as \xHH (agent/daemon/run_files.cc).
agent_pid() {
  local path=${mnt#/} file="" ch i
  for ((i = 0; i < ${#path}; i++)); do
    ch=${path:i:1}
    case $ch in
      [A-Za-z0-9_.]) file+=$ch ;;
      /) file+=- ;;
      *) file+=$(printf '\\x%02x' "'$ch") ;;
    esac
  done
  cat "/run/floatmount/$file.pid" 2>/dev/null || true
}
# What a second run must leave as it was: the agent, the config file, the
# installed program (dpkg unpacks to a new inode) and the one mount.
snapshot() {
  echo "pid=$(agent_pid) config=$(stat -c '%i %Y.%y' "$config") program=$(stat -c %i /usr/sbin/floatmount) mounts=$(mounts_at_mnt)"
}

echo "== a missing setting: its own exit code, one line, nothing done"
run_init FLOATMOUNT_SERVER=
((rc == 20)) || fail "without FLOATMOUNT_SERVER: exit $rc, 20 expected; stderr: $err"
[[ $(wc -l <<<"$err") == 1 && $err == *FLOATMOUNT_SERVER* ]] || fail "without FLOATMOUNT_SERVER: stderr is not one line naming it: $err"
echo "$err"
[[ ! -e $config ]] || fail "a run without FLOATMOUNT_SERVER wrote $config"
(($(mounts_at_mnt) == 0)) || fail "a run without FLOATMOUNT_SERVER mounted $mnt"
if ((was_installed == 0)) && dpkg-query -W floatmount >/dev/null 2>&1; then
  fail "a run without FLOATMOUNT_SERVER installed the package"
fi

echo "== first run: install, configure, mount"
SECONDS=0
run_init
((rc == 0)) || fail "first run: exit $rc; stderr: $err"
echo "$out"
echo "(${SECONDS} s)"
[[ $(dpkg-query -W -f='${Status} ${Version}' floatmount) == "install ok installed $version" ]] ||
  fail "floatmount $version is not installed"
[[ $(awk -v mp="$mnt" '$5 == mp { for (i = 7; $i != "-"; i++); print $(i + 1) }' /proc/self/mountinfo) == fuse.floatmount ]] ||
  fail "$mnt is not a fuse.floatmount mount"
grep -qx "port = $port" "$config" || fail "$config lacks 'port = $port': $(cat "$config")"
[[ $out == *"systemd is not PID 1"* ]] || fail "the script did not start the agent directly"
/usr/sbin/floatmount status "$mnt" >/dev/null || fail "floatmount status $mnt fails"

echo "== files both ways through the mount"
head -c 3000000 /dev/urandom >"$work/blob"
cp "$work/blob" "$mnt/written-through-mount"
sync "$mnt/written-through-mount"
cmp "$work/blob" "$export_dir/written-through-mount" || fail "a file written through the mount differs on the server"
echo "made on the server $$" >"$export_dir/made-on-server"
[[ $(cat "$mnt/made-on-server") == "made on the server $$" ]] || fail "a file made on the server reads wrong through the mount"
cmp "$work/blob" "$mnt/written-through-mount" || fail "the file written through the mount reads back wrong"

echo "== second run: changes nothing"
[[ -n $(agent_pid) ]] || fail "no agent pid file for $mnt in /run/floatmount"
first=$(snapshot)
sleep 1.1  # so that a rewrite of the config file would show in its mtime
run_init
((rc == 0)) || fail "second run: exit $rc; stderr: $err"
echo "$out"
second=$(snapshot)
[[ $first == "$second" ]] || fail "the second run changed something: before '$first', after '$second'"
[[ $out == *"installed already"* && $out == *"nothing to do"* ]] || fail "the second run did not say it had nothing to do"
[[ -z $err ]] || fail "the second run wrote to stderr: $err"
echo "unchanged: $second"

echo "== refused while mounted: bad options, changed settings"
run_init FLOATMOUNT_OPTIONS="nconnect=0,port=$port"
((rc == 21)) || fail "nconnect=0: exit $rc, 21 expected; stderr: $err"
[[ $(wc -l <<<"$err") == 1 && $err == *nconnect* ]] || fail "nconnect=0: stderr is not one line naming it: $err"
echo "$err"
run_init FLOATMOUNT_OPTIONS="nconnect=2,port=$port"
((rc == 24)) || fail "changed settings while mounted: exit $rc, 24 expected; stderr: $err"
echo "$err"
[[ $(snapshot) == "$first" ]] || fail "a refused run changed something: before '$first', after '$(snapshot)'"
[[ $(cat "$mnt/made-on-server") == "made on the server $$" ]] || fail "the mount stopped working after the refused runs"

echo "== an agent that died is replaced"
old_pid=$(agent_pid)
[[ -n $old_pid ]] || fail "no agent pid file for $mnt"
kill -KILL "$old_pid"
timeout 10 tail --pid="$old_pid" -f /dev/null
run_init
((rc == 0)) || fail "run after the agent died: exit $rc; stderr: $err"
[[ $out == *"agent is gone"* ]] || fail "the run did not notice the dead agent: $out"
[[ -n $(agent_pid) && $(agent_pid) != "$old_pid" ]] || fail "no new agent after the old one died"
(($(mounts_at_mnt) == 1)) || fail "$(mounts_at_mnt) mounts at $mnt after replacing a dead agent, 1 expected"
cmp "$work/blob" "$mnt/written-through-mount" || fail "the file reads wrong through the new mount"

echo "== where systemd is PID 1: started as floatmount@NAME.service"
timeout 90 /usr/sbin/floatmount unmount "$mnt" || fail "floatmount unmount $mnt failed"
# A systemctl stand-in that runs the installed unit's ExecStart (%i = the
# instance) in a session of its own, as systemd would, and answers the
# show queries the script makes from what became of it.
mkdir "$work/bin" "$work/systemd"
cat >"$work/bin/systemctl" <<'STUB'
#!/bin/bash
set -euo pipefail
state=$STUB_STATE
echo "systemctl $*" >>"$state/calls"
unit=${*: -1}
instance=${unit#floatmount@}
instance=${instance%.service}
case $1 in
  start)
    exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/floatmount@.service)
    read -ra cmd <<<"${exec_start//%i/$instance}"
    rm -f "$state/$instance.status"
    FLOATMOUNT_LOG=info setsid bash -c '"$@"; echo $? >"$0"' "$state/$instance.status" "${cmd[@]}" \
      </dev/null >>"$state/journal" 2>&1 &
    echo $! >"$state/$instance.pid" ;;
  stop)
    kill -TERM -- "-$(cat "$state/$instance.pid")" 2>/dev/null || true ;;
  show)  # show -p PROPERTY --value UNIT
    status=$(cat "$state/$instance.status" 2>/dev/null || true)
    case $3 in
      ActiveState) if [[ -z $status ]]; then echo active; elif ((status == 0)); then echo inactive; else echo failed; fi ;;
      ExecMainStatus) echo "${status:-0}" ;;
    esac ;;
  *) exit 1 ;;
esac
STUB
chmod +x "$work/bin/systemctl"
systemd_env=(PATH="$work/bin:/usr/sbin:/usr/bin:/sbin:/bin" STUB_STATE="$work/systemd" FLOATMOUNT_START=systemd)
run_init "${systemd_env[@]}"
((rc == 0)) || fail "systemd: exit $rc; stderr: $err; calls: $(cat "$work/systemd/calls" 2>/dev/null)"
echo "$out"
[[ $(cat "$work/systemd/calls") == "systemctl start --no-block floatmount@$name.service"* ]] ||
  fail "systemd: the script did not start floatmount@$name.service: $(cat "$work/systemd/calls")"
(($(mounts_at_mnt) == 1)) || fail "systemd: $(mounts_at_mnt) mounts at $mnt, 1 expected"
run_init "${systemd_env[@]}"
if ((rc != 0)) || [[ $out != *"nothing to do"* ]]; then
  fail "systemd, second run: exit $rc, out: $out, stderr: $err"
fi
(($(grep -c ' start ' "$work/systemd/calls") == 1)) || fail "systemd: the second run started the unit again"

echo "== a server that does not answer: the agent's exit code, nothing mounted"
timeout 90 /usr/sbin/floatmount unmount "$mnt" || fail "floatmount unmount $mnt failed"
# A loopback port nobody listens on (connecting is refused).
closed_port=""
for ((p = 47000; p < 47100; p++)); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then closed_port=$p; break; fi
done
[[ -n $closed_port ]] || fail "no closed loopback port in 47000-47099"
run_init FLOATMOUNT_OPTIONS="port=$closed_port" FLOATMOUNT_READY_TIMEOUT=30
((rc == 3)) || fail "unreachable server: exit $rc, 3 expected (server unreachable); stderr: $err"
[[ $(wc -l <<<"$err") == 1 && $err == *"Connection refused"* ]] || fail "unreachable server: stderr is not one line with the reason: $err"
echo "$err"
(($(mounts_at_mnt) == 0)) || fail "a failed run left a mount at $mnt"

echo "test_init_script.sh: OK (${SECONDS} s since the first run)"
