// KnfsdServer: the Linux kernel NFS server (knfsd) as a test fixture, in a
// QEMU guest on this machine, reached through a forwarded loopback port.
//
// The guest is Debian 12's own kernel with nfsd, booted from the image that
// tests/harness/knfsd/build_guest.sh builds (and caches) from Debian
// packages; its /init is tests/harness/knfsd/init.sh. QEMU runs without KVM
// (software emulation): a boot takes ~10 s on an idle machine, so a suite
// should boot one guest and share it (see tests/integration/knfsd_test.cc).
//
// The guest exports a tmpfs as the NFSv4 pseudo-root (fsid=0), NFSv4.0,
// 4.1 and 4.2 only (no NFSv3: no rpcbind in the guest). QEMU user
// networking forwards address():port() (127.0.0.1 only) to the guest's
// 2049, so a client mounts address():pseudo_path() = "127.0.0.1:/" with
// port=port(). Forwarded connections reach the guest from 10.0.2.2 on an
// unprivileged port, hence the export's `insecure`.
//
// Each instance owns a fresh directory /tmp/floatmount-knfsd-XXXXXX with
//   console.log   the guest's console (kernel messages, init's lines)
//   qemu.out      QEMU's own stdout/stderr
//   control.sock  the guest's second serial port (ttyS1), where a shell
//                 reads commands: RunInGuest()
//
// QEMU is a child process with PR_SET_PDEATHSIG SIGKILL: if the test process
// dies the guest dies too. As with GaneshaServer, call Start() from a
// thread that outlives the server (the test's main thread).
//
// Use from a gtest:
//   const std::string missing = KnfsdServer::MissingPrerequisite();
//   FLOATMOUNT_REQUIRE(missing.empty(), missing);
//   KnfsdServer server;
//   ASSERT_TRUE(server.Start()) << server.error();
//   ... mount server.address() + ":" + server.pseudo_path() on server.port()
//
// Thread-safety: not thread-safe; one instance from one thread, except the
// const accessors.
// Invariant: child_ is running() exactly while a QEMU we started is unreaped;
// control_fd_ >= 0 only while it runs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "tests/harness/child_process.h"

namespace floatmount::testing {

struct KnfsdOptions {
  // nfsd's NFSv4 lease and grace time in seconds (10 is nfsd's minimum).
  int lease_s = 10;
  int grace_s = 10;
  int nfsd_threads = 8;
  int memory_mb = 1024;  // guest RAM; the export is a tmpfs in it
  int cpus = 2;
  // Bounds (stretched by Scaled()) for Start() and for Stop()'s SIGTERM phase.
  std::chrono::milliseconds start_timeout{90000};
  std::chrono::milliseconds stop_timeout{5000};
};

class KnfsdServer {
 public:
  explicit KnfsdServer(KnfsdOptions options = {});
  ~KnfsdServer();  // Stop(), then removes the directory unless KeepTestDirs()
  KnfsdServer(const KnfsdServer&) = delete;
  KnfsdServer& operator=(const KnfsdServer&) = delete;

  // Empty if this machine can run the guest, else why not: no
  // qemu-system-x86_64, or the image cannot be built (see ImageDir()). May
  // take a minute the first time (it builds the image).
  static std::string MissingPrerequisite();
  static std::string FindQemu();
  // The directory with vmlinuz and initrd.gz: FLOATMOUNT_KNFSD_IMAGE if set,
  // else what build_guest.sh prints (it builds or reuses the cached image).
  // Runs the script once per process. Empty on failure; *error says why.
  static std::string ImageDir(std::string* error = nullptr);

  // Creates the directory, picks a free port, boots the guest and waits
  // until init reports that nfsd runs and an NFSv4 NULL call through the
  // forwarded port is answered. Retries with another port if QEMU could not
  // bind it. On failure returns false (QEMU stopped); error() then includes
  // the tail of the console.
  bool Start();
  // SIGTERM, SIGKILL after options.stop_timeout, then reaps QEMU. Returns
  // false if SIGKILL was needed. No-op if not running.
  bool Stop();

  // Runs `command` with the guest's /bin/sh (busybox) on the control port
  // and returns its exit status, or -1 if no answer came within `timeout`
  // (or the guest is not running). *output gets stdout and stderr.
  int RunInGuest(const std::string& command, std::string* output = nullptr,
                 std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Restarts the NFS server inside the running guest: all NFSv4 state
  // (clients, opens, locks) is lost and a grace period of options.grace_s
  // begins, as after a server reboot; the export's files stay. Returns once
  // nfsd answers again; false (error() says why) otherwise.
  bool RestartNfsd();

  bool running() const { return child_.running(); }
  pid_t pid() const { return child_.pid(); }
  const std::string& error() const { return error_; }
  const std::string& address() const { return address_; }
  uint16_t port() const { return port_; }
  // The NFSv4 path to mount: the export is the pseudo-root.
  std::string pseudo_path() const { return "/"; }
  // The exported directory inside the guest, for RunInGuest commands.
  std::string guest_export_dir() const { return "/export"; }
  const std::string& dir() const { return dir_; }
  std::string console_path() const { return dir_ + "/console.log"; }

  // The last `lines` lines of the console and of QEMU's output.
  std::string LogTail(int lines = 30) const;

 private:
  bool MakeDirectory();
  // Boots QEMU on port_ and waits for readiness. Sets *port_in_use if QEMU
  // exited because it could not bind the forwarded port.
  bool LaunchAndWait(const std::string& image, bool* port_in_use);
  bool ConnectControl();
  void CloseControl();
  bool Fail(const std::string& what);

  const KnfsdOptions options_;
  const std::string address_ = "127.0.0.1";
  std::string dir_;    // empty until the first Start()
  uint16_t port_ = 0;  // 0 until the first Start()
  ChildProcess child_;
  int control_fd_ = -1;
  uint64_t commands_run_ = 0;  // numbers RunInGuest's end markers
  std::string error_;
};

}  // namespace floatmount::testing
