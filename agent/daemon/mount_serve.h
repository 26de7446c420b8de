// The serving process of a mount: what `floatmount -f`, or the child that
// `floatmount` forks, runs (mount_command.cc starts it).
//
// Serve connects to the server, mounts through FUSE, checks that a stat
// through the mount answers, reports the outcome through a ReadyPipe, and
// serves until it is unmounted (floatmount unmount, umount) or stopped by
// SIGTERM, SIGINT or SIGHUP. Under systemd it speaks sd_notify (Notifier,
// lifecycle.h): STATUS= while mounting, READY=1 once the mount answers,
// STATUS= lines with the connections and throughput, WATCHDOG=1 while the
// agent is healthy, STOPPING=1.
//
// Stop: a signal makes the FUSE loop take no new request and ends it
// (EndLoopForStop in the .cc: every write(2) that returned success is
// then in floatmount's cache); the mount is detached; every open file is
// committed and closed through the write-back cache (FileSystem::CloseAll);
// the NFS session is destroyed; exit 0. A stop started by a signal is
// bounded by kStopBound; past it, or at a second signal, the agent logs how
// much written data it could not commit, makes sure nothing stays mounted,
// and exits with kExitIo (kExitFailure if everything was committed and only
// the session teardown hung).
//
// Threads: main (mounts, then runs the stop sequence), "fm-fuse" (the FUSE
// loop, and libfuse's workers), "fm-signal" (StopSignals), "fm-notify"
// (Notifier), the engine's.
#pragma once

#include <string>

#include "agent/daemon/lifecycle.h"
#include "agent/config/mount_options.h"

namespace floatmount::agent {

// The pipe from the serving child to the waiting parent: "<code> <line>".
// With fd -1 (foreground) a failure is printed on stderr instead.
class ReadyPipe {
 public:
  explicit ReadyPipe(int fd) : fd_(fd) {}
  // Once: the outcome of the mount (kExitOk, or a code and one line).
  void Report(int code, const std::string& line);

 private:
  int fd_;
};

// Mounts `c` at `mountpoint` (absolute, checked) and serves until
// unmounted or stopped; returns the exit code. `notify` was read by the
// process the service manager started.
int Serve(const MountConfig& c, const std::string& mountpoint, const NotifySettings& notify,
          ReadyPipe& ready);

}  // namespace floatmount::agent
