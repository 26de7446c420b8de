// GaneshaServer: a real nfs-ganesha NFS server for one test, on loopback.
//
// Each instance owns a fresh directory /tmp/floatmount-ganesha-XXXXXX with
//   ganesha.conf   the generated configuration (see WriteConfig in the .cc)
//   ganesha.log    ganesha's log (-L); appended to across restarts
//   ganesha.out    ganesha's stdout/stderr
//   ganesha.pid    ganesha's pid file (-p)
//   recovery/      NFSv4 client recovery records (RecoveryRoot), private to
//                  this instance, so nothing touches /var/lib/nfs/ganesha
//   export/        the exported directory (mode 0777), NFS path /export,
//                  unless options.export_dir names another one
// Several instances can run at once: each gets its own free port.
//
// The server runs as a child process in the foreground (-F), so the pid is
// exact and it is reaped with waitpid. The child has PR_SET_PDEATHSIG
// SIGKILL: if the test process dies (crash, ctest timeout) the server dies
// too. Because PDEATHSIG follows the thread that forked, call Start() and
// Restart() from a thread that outlives the server (the test's main thread).
//
// Use from a gtest:
//   const std::string missing = GaneshaServer::MissingPrerequisite();
//   FLOATMOUNT_REQUIRE(missing.empty(), missing);
//   GaneshaServer server;
//   ASSERT_TRUE(server.Start()) << server.error();
//   ... connect to server.address():server.port(), path server.pseudo_path()
//   ... compare files under server.export_dir()
//
// Thread-safety: not thread-safe; use one instance from one thread, except
// the const accessors and EstablishedConnections(), which may be called from
// any thread while no Start/Stop/Kill/Restart runs.
// Invariant: child_ is running() exactly while a child we started is unreaped.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tests/harness/child_process.h"

namespace floatmount::testing {

struct GaneshaOptions {
  std::string bind_address = "127.0.0.1";
  // NFSv4 minor versions offered; drop 1 to test a server without 4.1.
  std::vector<int> minor_versions = {0, 1, 2};
  // Only_Numeric_Owners: owners go over the wire as "1000", not "user@domain".
  bool numeric_owners = true;
  // EXPORT Squash value, e.g. "No_Root_Squash", "Root_Squash", "All_Squash".
  std::string squash = "No_Root_Squash";
  // EXPORT Access_Type: "RW", "RO", or "None" (a server that refuses us).
  std::string access_type = "RW";
  // EXPORT SecType, e.g. "sys" or "krb5" (a flavor floatmount does not offer).
  std::string sec_type = "sys";
  // Also serve NFSv3 (Protocols = 3, 4), with MOUNT on its own free port
  // (mount_port()). ganesha registers both with rpcbind, which Start()
  // starts if none answers (rpcbind.h). rpcbind holds one registration per
  // program, so a client should be given mount_port() rather than ask
  // rpcbind when several NFSv3 servers run at once.
  bool enable_nfsv3 = false;
  // Serve NFSv4 at all; false with enable_nfsv3 makes an NFSv3-only server.
  bool enable_nfsv4 = true;
  // NFSv4 Graceless; false makes the server start in its grace period.
  bool graceless = true;
  // NFSv4 Lease_Lifetime in seconds; unset = ganesha's default (60).
  std::optional<int> lease_lifetime_s;
  // NFSv4 Grace_Period in seconds; unset = ganesha's default (90). ganesha
  // ends a grace period early only once every client it remembers sent
  // RECLAIM_COMPLETE, and checks that every half lease.
  std::optional<int> grace_period_s;
  // EXPORT Attr_Expiration_Time; unset = ganesha's default (60). Set 0 when a
  // test changes files under export_dir() behind the server's back.
  std::optional<int> attr_expiration_s;
  // false: MDCACHE { Dir_Chunk = 0; }, no cached directory entries (names
  // changed behind the server's back are found at once).
  bool cache_dirents = true;
  // ganesha.nfsd -E: the epoch in the upper half of every client ID (by
  // default the second the process started). Two nodes given one epoch
  // number their client IDs alike, as two nodes started in one second do.
  std::optional<uint32_t> epoch;
  // The directory to export; empty: export/ in the instance's directory.
  // Two instances given one directory serve the same files with their own
  // state, as two nodes of a cluster do. It must exist; it is not removed.
  std::string export_dir;
  // Bounds for Start()/Restart() readiness and for Stop()'s SIGTERM phase.
  std::chrono::milliseconds start_timeout{20000};
  std::chrono::milliseconds stop_timeout{5000};
};

class GaneshaServer {
 public:
  explicit GaneshaServer(GaneshaOptions options = {});
  ~GaneshaServer();  // Stop(), then removes the directory unless KeepTestDirs()
  GaneshaServer(const GaneshaServer&) = delete;
  GaneshaServer& operator=(const GaneshaServer&) = delete;

  // Empty if this machine can run a server with `options`, else why not (no
  // ganesha.nfsd binary, not root, NFSv3 without rpcbind). Pass it to
  // FLOATMOUNT_REQUIRE.
  static std::string MissingPrerequisite(const GaneshaOptions& options = {});
  // Full path of ganesha.nfsd (PATH, then /usr/bin), or empty if missing.
  static std::string FindBinary();

  // Creates the directory (first time only), picks a free port, starts the
  // server and waits until it answers an RPC NULL call for NFSv4 and has
  // logged "NFS SERVER INITIALIZED" (so another server that holds the port
  // is not mistaken for ours; ours exits on EADDRINUSE). Retries
  // with another port if the port was taken meanwhile. Fails (and stops the
  // server) if ganesha logged a configuration error, since it would run on
  // without the bad block, possibly without the export. On failure returns
  // false; error() then includes the tail of the ganesha log.
  bool Start();
  // Stops the server if it runs, then starts it again on the same port and
  // export directory (data kept), waiting out a port still in use.
  bool Restart();
  // SIGTERM, SIGKILL after options.stop_timeout, then reaps the child.
  // Returns false if SIGKILL was needed. No-op if not running.
  bool Stop();
  // SIGKILL now and reap: a crash. No-op if not running.
  void Kill();

  bool running() const { return child_.running(); }
  pid_t pid() const { return child_.pid(); }
  const std::string& error() const { return error_; }
  const std::string& address() const { return options_.bind_address; }
  uint16_t port() const { return port_; }
  // The MOUNT protocol's port with enable_nfsv3, else 0.
  uint16_t mount_port() const { return mount_port_; }
  const std::string& dir() const { return dir_; }
  std::string export_dir() const {
    return options_.export_dir.empty() ? dir_ + "/export" : options_.export_dir;
  }
  std::string pseudo_path() const { return "/export"; }
  std::string log_path() const { return dir_ + "/ganesha.log"; }
  std::string config_path() const { return dir_ + "/ganesha.conf"; }

  // ESTABLISHED TCP connections whose local port is port(), from
  // /proc/net/tcp and /proc/net/tcp6: the connections the server sees.
  int EstablishedConnections() const;

  // The last `lines` lines of the log (D-Bus noise dropped) and of
  // ganesha.out, for failure messages.
  std::string LogTail(int lines = 25) const;

 private:
  bool MakeDirectory();
  bool WriteConfig();
  // Launches the child on port_ and waits for readiness. Sets *port_in_use
  // if the server exited because it could not bind.
  bool LaunchAndWait(bool* port_in_use);
  // The log written after byte `offset` (this launch's part).
  std::string LogSince(long offset) const;
  // Reaps the child if it exited; returns true if it is gone.
  bool ReapIfExited();
  bool Fail(const std::string& what);

  const GaneshaOptions options_;
  std::string dir_;    // empty until the first Start()
  uint16_t port_ = 0;  // 0 until the first Start(); kept by Restart()
  uint16_t mount_port_ = 0;  // with enable_nfsv3: as port_
  ChildProcess child_;
  std::string error_;
};

}  // namespace floatmount::testing
