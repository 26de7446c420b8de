#!/usr/bin/env bash
# Databricks cluster-scoped init script: mounts an NFS export with floatmount
# on every node of the cluster, before Spark starts. See README.md here.
#
# Reads the FLOATMOUNT_* cluster environment variables (the table below),
# then:
#  1. installs the floatmount .deb from a Unity Catalog Volume or DBFS path,
#     unless that version is installed already;
#  2. writes /etc/floatmount/NAME.conf, unless it holds those settings
#     already (then the file is not touched);
#  3. starts the agent: `systemctl start floatmount@NAME` when systemd is
#     PID 1, else `floatmount -f --config NAME` in its own session, its
#     log in /var/log/floatmount/NAME.log;
#  4. waits (bounded) until the mount answers `floatmount status`.
# A mount that is up, answers, and was made from the same settings is left
# alone, so a second run changes nothing and exits 0. It never mounts over
# another mount.
#
# Its own log: stdout/stderr (Databricks keeps them with the init-script
# logs) and /var/log/floatmount/init.log on the node.
#
# Exit codes: 0 mounted (now or before). 1-10: the agent's own code when
# it failed to mount (floatmount(8): 3 server unreachable, 4 no such
# export, 5 permission denied, 6 not NFSv4.1, 9 mount point, 10 FUSE).
# The script's own: 20 a setting is missing or invalid; 21 floatmount
# rejects FLOATMOUNT_OPTIONS; 22 no usable .deb; 23 the install failed;
# 24 the mount point holds another mount, or a floatmount mount made from
# other settings or whose agent does not answer; 25 not ready in time;
# 26 cannot run here (not root, another run holds the lock, no systemctl).
set -euo pipefail
export LC_ALL=C  # error texts we match (ENOTCONN) and sort order

# Settings that cannot come from the environment (in standard access mode
# on recent runtimes Databricks passes only its own DB_* variables to init
# scripts) can be written here, in a copy of this script.
: "${FLOATMOUNT_SERVER:=}"        # NFS server name or address (no port: see port=)
: "${FLOATMOUNT_EXPORT:=}"        # path of the export on the server, e.g. /export
: "${FLOATMOUNT_MOUNT_POINT:=}"   # where to mount, e.g. /mnt/data (made if missing)
: "${FLOATMOUNT_OPTIONS:=}"       # floatmount -o options, e.g. nconnect=16,port=2049
: "${FLOATMOUNT_DEB:=}"           # the .deb: /Volumes/..., dbfs:/..., or a node path
: "${FLOATMOUNT_NAME:=data}"      # config name: /etc/floatmount/NAME.conf
: "${FLOATMOUNT_READY_TIMEOUT:=120}"  # seconds to wait for the mount
: "${FLOATMOUNT_START:=auto}"     # auto, systemd or direct
: "${FLOATMOUNT_LOG_DIR:=/var/log/floatmount}"

readonly floatmount=/usr/sbin/floatmount
readonly config_dir=/etc/floatmount

# Exit codes (see the top).
readonly E_SETTING=20 E_OPTIONS=21 E_DEB=22 E_INSTALL=23 E_BUSY=24 E_TIMEOUT=25 E_ENV=26

log_file=/dev/null
deb=""  # the .deb's path on this node (from FLOATMOUNT_DEB)

log() {
  echo "floatmount-init: $*"
  printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >>"$log_file" 2>/dev/null || true
}

# One line on stderr (Databricks' .stderr.log) and in the log, then exit.
die() {
  local code=$1
  shift
  echo "floatmount-init: error: $*" >&2
  printf '%s error (exit %s): %s\n' "$(date -u +%FT%TZ)" "$code" "$*" >>"$log_file" 2>/dev/null || true
  exit "$code"
}

# Runs a command with its output in the log file only; on failure shows
# the last lines of that output on stderr too. Without the lock's fd 9: a
# process it leaves running (a service a package starts) would hold the
# lock and make the next run wait.
run_logged() {
  local out rc=0
  out=$("$@" 2>&1 9>&-) || rc=$?
  [[ -z $out ]] || printf '%s\n' "$out" >>"$log_file" 2>/dev/null || true
  if ((rc != 0)); then
    printf '%s\n' "$out" | tail -n 15 >&2
  fi
  return "$rc"
}

# ---- settings -----------------------------------------------------------

check_settings() {
  [[ -n $FLOATMOUNT_SERVER ]] || die $E_SETTING "FLOATMOUNT_SERVER is not set: give the NFS server's name or address"
  [[ -n $FLOATMOUNT_EXPORT ]] || die $E_SETTING "FLOATMOUNT_EXPORT is not set: give the export's path, e.g. /export"
  [[ -n $FLOATMOUNT_MOUNT_POINT ]] || die $E_SETTING "FLOATMOUNT_MOUNT_POINT is not set: give a directory, e.g. /mnt/data"
  if [[ $FLOATMOUNT_SERVER =~ ^[^:]+:[0-9]+$ ]]; then
    die $E_SETTING "FLOATMOUNT_SERVER '$FLOATMOUNT_SERVER' has a port: give the name only and port=${FLOATMOUNT_SERVER##*:} in FLOATMOUNT_OPTIONS"
  fi
  # The config file is "key = value" lines with '#' comments, and
  # /proc/self/mountinfo escapes blanks: keep values to plain paths.
  local var
  for var in FLOATMOUNT_SERVER FLOATMOUNT_EXPORT FLOATMOUNT_MOUNT_POINT FLOATMOUNT_OPTIONS; do
    if [[ ${!var} =~ [[:space:]#\\] ]]; then
      die $E_SETTING "$var '${!var}' contains a blank, '#' or '\\', which floatmount's config file cannot hold"
    fi
  done
  [[ $FLOATMOUNT_EXPORT == /* ]] || die $E_SETTING "FLOATMOUNT_EXPORT '$FLOATMOUNT_EXPORT' is not an absolute path"
  [[ $FLOATMOUNT_MOUNT_POINT == /* ]] || die $E_SETTING "FLOATMOUNT_MOUNT_POINT '$FLOATMOUNT_MOUNT_POINT' is not an absolute path"
  [[ $FLOATMOUNT_NAME =~ ^[A-Za-z0-9_.-]+$ ]] ||
    die $E_SETTING "FLOATMOUNT_NAME '$FLOATMOUNT_NAME' may hold only letters, digits, '_', '.' and '-'"
  if ! [[ $FLOATMOUNT_READY_TIMEOUT =~ ^[0-9]{1,4}$ ]] || ((FLOATMOUNT_READY_TIMEOUT < 1 || FLOATMOUNT_READY_TIMEOUT > 3600)); then
    die $E_SETTING "FLOATMOUNT_READY_TIMEOUT '$FLOATMOUNT_READY_TIMEOUT' is not a number of seconds from 1 to 3600"
  fi
  [[ $FLOATMOUNT_START =~ ^(auto|systemd|direct)$ ]] ||
    die $E_SETTING "FLOATMOUNT_START '$FLOATMOUNT_START' is not auto, systemd or direct"
  [[ $FLOATMOUNT_LOG_DIR == /* ]] || die $E_SETTING "FLOATMOUNT_LOG_DIR '$FLOATMOUNT_LOG_DIR' is not an absolute path"
  [[ -z $FLOATMOUNT_DEB ]] || deb=$(node_path "$FLOATMOUNT_DEB")
  local item items
  IFS=, read -ra items <<<"$FLOATMOUNT_OPTIONS"
  for item in "${items[@]}"; do
    case ${item%%=*} in
      server | export | mountpoint)
        die $E_SETTING "FLOATMOUNT_OPTIONS sets '${item%%=*}': use FLOATMOUNT_SERVER, FLOATMOUNT_EXPORT and FLOATMOUNT_MOUNT_POINT" ;;
    esac
  done
}

# The node path of a Volume or DBFS location: dbfs:/Volumes/... is
# /Volumes/..., any other dbfs:/X is /dbfs/X (the DBFS FUSE mount).
node_path() {
  case $1 in
    dbfs:/Volumes/*) echo "${1#dbfs:}" ;;
    dbfs:/*) echo "/dbfs/${1#dbfs:/}" ;;
    /*) echo "$1" ;;
    *) die $E_SETTING "FLOATMOUNT_DEB '$1' is not a path on the node (/Volumes/..., /dbfs/...) or dbfs:/...: copy the .deb to a Volume" ;;
  esac
}

# ---- the package --------------------------------------------------------

installed_version() {
  local s
  s=$(dpkg-query -W -f='${Status}|${Version}' floatmount 2>/dev/null) || return 0
  [[ ${s%%|*} == "install ok installed" ]] && echo "${s#*|}"
  return 0
}

install_package() {
  local have
  have=$(installed_version)
  if [[ -z $FLOATMOUNT_DEB ]]; then
    [[ -n $have && -x $floatmount ]] ||
      die $E_DEB "floatmount is not installed and FLOATMOUNT_DEB is not set: give the path of floatmount_VERSION_ARCH.deb"
    log "FLOATMOUNT_DEB is not set: using the installed floatmount $have"
    return
  fi
  [[ -f $deb && -r $deb ]] ||
    die $E_DEB "FLOATMOUNT_DEB: cannot read $deb (the init script must be in a Volume to read other files of Volumes)"
  local package version arch node_arch
  package=$(dpkg-deb -f "$deb" Package 2>/dev/null) || die $E_DEB "FLOATMOUNT_DEB: $deb is not a .deb"
  [[ $package == floatmount ]] || die $E_DEB "FLOATMOUNT_DEB: $deb holds the package '$package', not floatmount"
  version=$(dpkg-deb -f "$deb" Version)
  arch=$(dpkg-deb -f "$deb" Architecture)
  node_arch=$(dpkg --print-architecture)
  [[ $arch == "$node_arch" ]] || die $E_DEB "FLOATMOUNT_DEB: $deb is for $arch, this node is $node_arch"
  if [[ $have == "$version" && -x $floatmount ]]; then
    log "floatmount $version is installed already"
    return
  fi
  log "installing floatmount $version from $deb${have:+ (replacing $have)}"
  # A local copy: apt reads it as the _apt user, who cannot read Volumes
  # or /dbfs, and a copy is not read again over the network.
  local tmp
  tmp=$(mktemp -d /tmp/floatmount-init.XXXXXX)
  chmod 0755 "$tmp"
  install -m 0644 "$deb" "$tmp/floatmount_${version}_$arch.deb"
  local apt=(apt-get install -y -q --no-install-recommends --allow-downgrades
    -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold "$tmp/floatmount_${version}_$arch.deb")
  # Dependencies the node lacks (fuse3) need the package lists: fetch them
  # only if the first try fails, so a node that has them needs no network.
  if ! DEBIAN_FRONTEND=noninteractive run_logged "${apt[@]}"; then
    log "the install failed; updating the package lists and trying again"
    DEBIAN_FRONTEND=noninteractive run_logged apt-get update -q -o DPkg::Lock::Timeout=300 || true
    DEBIAN_FRONTEND=noninteractive run_logged "${apt[@]}" || {
      rm -rf "$tmp"
      die $E_INSTALL "apt-get could not install $deb; its output is in $log_file"
    }
  fi
  rm -rf "$tmp"
  [[ $(installed_version) == "$version" ]] || die $E_INSTALL "floatmount $version is not installed after apt-get install"
}

# ---- the config file ----------------------------------------------------

# The config file's text, from the settings alone (no dates), so that the
# same settings give the same bytes.
config_text() {
  echo "# Written by the floatmount Databricks init script from the cluster's"
  echo "# FLOATMOUNT_* environment variables; change those, not this file."
  echo "server = $FLOATMOUNT_SERVER"
  echo "export = $FLOATMOUNT_EXPORT"
  echo "mountpoint = $FLOATMOUNT_MOUNT_POINT"
  local item items
  IFS=, read -ra items <<<"$FLOATMOUNT_OPTIONS"
  for item in "${items[@]}"; do
    [[ -n $item ]] || continue
    if [[ $item == *=* ]]; then
      echo "${item%%=*} = ${item#*=}"
    else
      echo "$item = true"
    fi
  done
}

# Lets floatmount itself parse the file: with a mount point that does not
# exist, a file it accepts ends in exit 9 (mount point), one it does not in
# exit 2 with a line per problem.
check_config() {
  local file=$1 out rc=0
  out=$("$floatmount" --config "$file" -o mountpoint="$file.none" 2>&1) || rc=$?
  ((rc == 9)) && return 0
  # "floatmount: FILE:LINE: unknown key 'x'..." -> "unknown key 'x'...".
  out=$(printf '%s\n' "$out" | sed -E "s|^floatmount: ||; s|^$file:[0-9]+: ||" | paste -sd ';' -)
  die $E_OPTIONS "floatmount rejects the settings: ${out:-exit $rc}"
}

# ---- the mount ----------------------------------------------------------

# "FSTYPE SOURCE" of the top mount at $1, or nothing.
mount_at() {
  awk -v mp="$1" '$5 == mp { for (i = 7; $i != "-"; i++); top = $(i + 1) " " $(i + 2) }
    END { if (top != "") print top }' /proc/self/mountinfo
}

# The absolute path mountinfo shows for mount point $1, found without
# touching $1 itself: on a mount whose agent died every stat fails.
mount_point_path() {
  local path=$1
  while [[ $path == */ && $path != / ]]; do path=${path%/}; done
  local parent base
  parent=$(realpath -m "$(dirname "$path")")
  base=$(basename "$path")
  path=${parent%/}/$base
  if [[ -L $path ]]; then realpath -m "$path"; else echo "$path"; fi
}

answers() {
  "$floatmount" status "$mnt" >/dev/null 2>&1
}

# 0: the mount from these settings is up and answers (nothing to do).
# 1: nothing is mounted there (a dead floatmount mount is cleared first).
# Exits when something else is mounted there.
check_mount_point() {
  local top
  top=$(mount_at "$mnt")
  [[ -z $top ]] && return 1
  if [[ $top != "fuse.floatmount "* ]]; then
    die $E_BUSY "$mnt already has a ${top%% *} mount ($top); unmount it, or choose another FLOATMOUNT_MOUNT_POINT"
  fi
  if ! answers; then
    # An agent that died leaves its FUSE mount behind, failing every call
    # with ENOTCONN: nothing can be saved from it, so it is detached. The
    # probe looks up a name no cache holds (a stat of the mount point
    # itself may be answered from the kernel's attribute cache); the
    # timeout covers an agent that is alive but stuck.
    local probe
    probe=$(timeout -s KILL 10 stat "$mnt/.floatmount-init-probe.$$" 2>&1 >/dev/null || true)
    if [[ $probe == *"Transport endpoint is not connected"* ]]; then
      log "$mnt is a floatmount mount whose agent is gone; detaching it (umount -l)"
      umount -l "$mnt" || die $E_BUSY "cannot detach the dead mount at $mnt"
      [[ -z $(mount_at "$mnt") ]] || die $E_BUSY "$mnt still holds a mount after umount -l"
      return 1
    fi
    die $E_BUSY "$mnt is a floatmount mount whose agent does not answer 'floatmount status'; unmount it (floatmount unmount $mnt) and run again"
  fi
  # The agent names the mount SERVER:EXPORT, an IPv6 address unbracketed.
  local server=${FLOATMOUNT_SERVER#[}
  server=${server%]}
  if [[ $top != "fuse.floatmount $server:$FLOATMOUNT_EXPORT" ]] || ! cmp -s "$new_config" "$config"; then
    die $E_BUSY "$mnt is mounted from other settings (${top#* }); to apply the new ones unmount it (floatmount unmount $mnt) and run again"
  fi
  return 0
}

install_config() {
  if cmp -s "$new_config" "$config"; then
    log "$config holds these settings already"
    return
  fi
  log "writing $config"
  mkdir -p "$config_dir"
  install -m 0644 "$new_config" "$config.tmp"
  mv -f "$config.tmp" "$config"
}

use_systemd() {
  case $FLOATMOUNT_START in
    systemd) return 0 ;;
    direct) return 1 ;;
  esac
  # sd_booted(3): systemd is PID 1 if this directory exists.
  [[ -d /run/systemd/system ]]
}

start_systemd() {
  command -v systemctl >/dev/null || die $E_ENV "FLOATMOUNT_START=systemd, but there is no systemctl"
  log "starting floatmount@$FLOATMOUNT_NAME.service (its log: journalctl -u floatmount@$FLOATMOUNT_NAME)"
  # --no-block: the wait below is ours, bounded by FLOATMOUNT_READY_TIMEOUT.
  run_logged systemctl start --no-block "floatmount@$FLOATMOUNT_NAME.service" ||
    die $E_ENV "systemctl start floatmount@$FLOATMOUNT_NAME failed"
}

# Starts the agent in the foreground mode systemd would use, in a session
# of its own (so nothing that ends this script's process group ends it),
# with no fd of this script (the lock, Databricks' log pipes) and its log
# appended to $agent_log.
start_direct() {
  log "starting the agent (systemd is not PID 1 here); its log: $agent_log"
  agent_log_offset=$(stat -c %s "$agent_log" 2>/dev/null || echo 0)
  env -u NOTIFY_SOCKET -u JOURNAL_STREAM -u WATCHDOG_USEC -u WATCHDOG_PID FLOATMOUNT_LOG=info \
    setsid "$floatmount" -f --config "$FLOATMOUNT_NAME" </dev/null >>"$agent_log" 2>&1 9>&- &
  agent_pid=$!
  # As OOMScoreAdjust=-500 in the unit: its write-back cache holds data
  # that only this process has.
  echo -500 >"/proc/$agent_pid/oom_score_adj" 2>/dev/null || true
}

# The pid file the agent writes once its mount answers: the mount point
# with '/' as '-' and any byte but [A-Za-z0-9_.] as \xHH, in the run
# directory (agent/daemon/run_files.cc).
agent_pid_file() {
  local path=${mnt#/} file="" ch i
  for ((i = 0; i < ${#path}; i++)); do
    ch=${path:i:1}
    case $ch in
      [A-Za-z0-9_.]) file+=$ch ;;
      /) file+=- ;;
      *) file+=$(printf '\\x%02x' "'$ch") ;;
    esac
  done
  echo "${FLOATMOUNT_RUN_DIR:-/run/floatmount}/${file:--}.pid"
}

# True while process $1 runs (a child that exited stays a zombie until
# waited for, and kill -0 would still find it).
running() {
  local _pid _comm state
  read -r _pid _comm state _ 2>/dev/null <"/proc/$1/stat" || return 1
  [[ $state != Z ]]
}

# The agent's last "floatmount: ..." line since it was started.
agent_error() {
  tail -c +"$((agent_log_offset + 1))" "$agent_log" 2>/dev/null | grep '^floatmount: ' | tail -n 1 | sed 's/^floatmount: //'
}

# Stops what start_* started after it failed to become ready in time.
stop_started() {
  if use_systemd; then
    run_logged systemctl stop "floatmount@$FLOATMOUNT_NAME.service" || true
    return
  fi
  kill -TERM "$agent_pid" 2>/dev/null || return 0
  local i=0
  while running "$agent_pid" && ((i++ < 300)); do sleep 0.1; done
  # Until its mount is ready the agent acts on SIGTERM only when its
  # attempt ends (timeo); the bound above is shorter. Quietly: bash would
  # report the killed job on stderr.
  {
    if running "$agent_pid"; then
      kill -KILL "$agent_pid" || true
      umount -l "$mnt" || true
    fi
    wait "$agent_pid" || true
  } 2>/dev/null
}

wait_ready() {
  local deadline=$((SECONDS + FLOATMOUNT_READY_TIMEOUT)) rc pid_file
  pid_file=$(agent_pid_file)
  while ((SECONDS < deadline)); do
    # Ready: mounted, answering, and (when started here) by this agent.
    if [[ $(mount_at "$mnt") == "fuse.floatmount "* ]] && answers &&
      { use_systemd || [[ $(cat "$pid_file" 2>/dev/null) == "$agent_pid" ]]; }; then
      return 0
    fi
    if use_systemd; then
      if [[ $(systemctl show -p ActiveState --value "floatmount@$FLOATMOUNT_NAME.service") == failed ]]; then
        rc=$(systemctl show -p ExecMainStatus --value "floatmount@$FLOATMOUNT_NAME.service")
        die "$(agent_code "$rc")" "floatmount@$FLOATMOUNT_NAME failed (exit $rc); see journalctl -u floatmount@$FLOATMOUNT_NAME"
      fi
    elif ! running "$agent_pid"; then
      rc=0
      wait "$agent_pid" || rc=$?
      die "$(agent_code "$rc")" "the agent exited with $rc before the mount was ready: $(agent_error) (log: $agent_log)"
    fi
    sleep 0.2
  done
  local where=$agent_log
  if use_systemd; then
    # The unit restarts the agent after most failures (Restart=on-failure),
    # so it may never be "failed": say how its last try ended.
    rc=$(systemctl show -p ExecMainStatus --value "floatmount@$FLOATMOUNT_NAME.service" || true)
    where="journalctl -u floatmount@$FLOATMOUNT_NAME${rc:+ (its last exit: $rc)}"
  fi
  stop_started
  die $E_TIMEOUT "$mnt was not ready within $FLOATMOUNT_READY_TIMEOUT s (FLOATMOUNT_READY_TIMEOUT); the agent was stopped. Its log: $where"
}

# The agent's exit code, passed on if it is one of floatmount's (1-10).
agent_code() {
  if [[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= 10)); then echo "$1"; else echo 1; fi
}

main() {
  ((EUID == 0)) || die $E_ENV "run as root (Databricks runs init scripts as root)"
  check_settings
  mkdir -p "$FLOATMOUNT_LOG_DIR"
  log_file=$FLOATMOUNT_LOG_DIR/init.log
  agent_log=$FLOATMOUNT_LOG_DIR/$FLOATMOUNT_NAME.log
  # One run at a time per node: a second run waits for the first, then
  # finds its mount.
  exec 9>>"$FLOATMOUNT_LOG_DIR/init.lock"
  flock -w "$((FLOATMOUNT_READY_TIMEOUT + 600))" 9 || die $E_ENV "another run of this script holds $FLOATMOUNT_LOG_DIR/init.lock"
  log "run on ${DB_CLUSTER_ID:-a node outside Databricks}${DB_IS_DRIVER:+ (driver: $DB_IS_DRIVER)}: $FLOATMOUNT_SERVER:$FLOATMOUNT_EXPORT at $FLOATMOUNT_MOUNT_POINT as '$FLOATMOUNT_NAME'"

  install_package

  config=$config_dir/$FLOATMOUNT_NAME.conf
  work=$(mktemp -d /tmp/floatmount-init.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  new_config=$work/$FLOATMOUNT_NAME.conf
  config_text >"$new_config"
  check_config "$new_config"

  mnt=$(mount_point_path "$FLOATMOUNT_MOUNT_POINT")
  if check_mount_point; then
    log "$mnt is mounted from these settings and answers; nothing to do"
    return 0
  fi
  mkdir -p "$mnt"
  install_config
  if use_systemd; then start_systemd; else start_direct; fi
  wait_ready
  log "mounted $FLOATMOUNT_SERVER:$FLOATMOUNT_EXPORT at $mnt; status: floatmount status $mnt"
}

main "$@"
