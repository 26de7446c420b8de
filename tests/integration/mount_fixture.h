// MountTest: the fixture of the POSIX behaviour suite (posix_*_test.cc) and
// of the real-tools tests (tools_test.cc). Each test gets its own nfs-ganesha
// on loopback and its own floatmount mount of it, made with the real
// command line, as a user would:
//
//   floatmount -o port=P,nconnect=4,state_dir=S[,EXTRA] 127.0.0.1:/export MNT
//
// and a test then uses plain syscalls on Path("...") and checks what reached
// the server through ServerPath("...") (the same file in ganesha's export
// directory). TearDown always unmounts (`floatmount unmount MNT`, then
// `fusermount3 -u -z` / `umount -l` if that did not work), makes sure the
// agent process is gone, stops the server and removes the temporary
// directories, whatever the test did.
//
// Mount points, state and scratch directories are
// /tmp/floatmount-<kind>-<test pid>-XXXXXX; SetUp removes those of test
// processes that died (crash, ctest timeout), unmounting lazily, so a dead
// mount cannot hang the next run.
//
// Time bounds: commands and child processes run with timeouts, and a
// watchdog thread kills the agent (which aborts the FUSE connection, so
// blocked syscalls return ENOTCONN) if a test body runs longer than
// test_timeout_; the test then fails instead of hanging.
//
// SetUp sets the process umask to 022, so tests can predict created modes.
//
// Reference mode: FLOATMOUNT_TEST_REFERENCE_MOUNT=1 replaces the floatmount
// mount with a bind mount of the export directory, so the suite's own
// expectations can be checked against the kernel's local file system.
// Assertions that only hold for an NFS client behind FUSE check
// reference_mount() first.
//
// NFS version: FLOATMOUNT_TEST_NFS_VERS=3 serves NFSv3 as well and mounts
// with vers=3 (the same suite against the libnfs backend); ctest runs the
// suite both ways. Assertions that differ (locks) check nfs3() first.
//
// Server: FLOATMOUNT_TEST_SERVER=knfsd mounts the Linux kernel NFS server in
// a QEMU guest (tests/harness/knfsd_server.h) instead of a ganesha per test.
// The guest boots once per process (on the first SetUp) and is shared; each
// SetUp empties its export. knfsd's export is a tmpfs inside the guest, so
// ServerPath() is then a path on another floatmount mount of the export
// with noac (another NFSv4 client, mounted on first use and shared by the
// process's tests like the guest): it checks what reached the server as
// another client sees it, not the server's own disk. Checks that need the
// server's own view ask the guest (knfsd_server()->RunInGuest); tests of a
// ganesha-only hook check knfsd() and skip with the reason.
//
// Kernel client: FLOATMOUNT_TEST_KERNEL_CLIENT=127.0.0.1:/ (with
// FLOATMOUNT_TEST_KERNEL_CLIENT_SERVER_DIR, kernel_client_mode.h) runs the
// suite against the Linux kernel's NFSv4.1 client, inside the knfsd guest
// (tests/harness/knfsd/kernel_client_posix.sh): no server is started, the
// mounts are kernel NFS mounts of a fresh directory of the export, and
// ServerPath() is that directory on the server's own disk. Checks of
// floatmount itself (its command, agent, FUSE) check kernel_client() and
// skip or differ with the reason.
//
// Thread-safety: the fixture and its helpers are used from the test's main
// thread; FloatMount::Abort() may also be called from the watchdog thread.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "tests/harness/ganesha_server.h"
#include "tests/harness/integration_env.h"
#include "tests/harness/knfsd_server.h"
#include "tests/integration/kernel_client_mode.h"
#include "tests/integration/shared_knfsd.h"

#ifndef FLOATMOUNT_BINARY
#define FLOATMOUNT_BINARY "floatmount"
#endif

namespace floatmount::testing {

// ---- processes -------------------------------------------------------------

// The floatmount command: FLOATMOUNT_BINARY if it is a path, else looked up
// on PATH. Empty if it cannot be found.
std::string FloatmountBinary();
// Full path of `name` on PATH, or empty.
std::string FindOnPath(const std::string& name);

struct CommandResult {
  // The exit status; 128+N if killed by signal N; -1 if it could not start.
  int exit_code = -1;
  bool timed_out = false;
  std::string output;  // stdout and stderr as they came (at most 1 MiB kept)
  // "`git commit` -> exit code 1 after 0.2 s:\n<output>", for failure messages.
  std::string Describe() const;
  std::string command;
};

// Runs argv (argv[0] looked up on PATH) in `cwd` (empty: the current
// directory) with stdin from /dev/null and `extra_env` ("NAME=value") added to
// the environment. On timeout kills the command's process group. Returns when
// the command exits, even if a process it started keeps the output open.
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& cwd = "",
                         std::chrono::milliseconds timeout = std::chrono::seconds(60),
                         const std::vector<std::string>& extra_env = {});

// What RunAs/RunInChild return besides fn's own 0..255.
inline constexpr int kChildTimedOut = -1;      // killed after the timeout
inline constexpr int kChildSetupFailed = -2;   // fork, setgroups, setgid or setuid failed
inline constexpr int kChildSignalBase = 1000;  // 1000+N: killed by signal N

// Forks a child that drops to uid/gid with supplementary `groups`
// (setgroups, setgid, setuid, in that order) and returns fn's return value
// as the child's exit status (use 0..250, e.g. 0 or an errno). gtest
// assertions do not work in the child: encode the outcome in the value.
int RunAs(uid_t uid, gid_t gid, const std::function<int()>& fn,
          const std::vector<gid_t>& groups = {},
          std::chrono::milliseconds timeout = std::chrono::seconds(20));
// The same without changing ids: another process (e.g. for lock tests).
int RunInChild(const std::function<int()>& fn,
               std::chrono::milliseconds timeout = std::chrono::seconds(20));

// A new directory /tmp/floatmount-<kind>-<this pid>-XXXXXX (empty string on
// failure). The caller removes it; if the process dies first, the next
// MountTest::SetUp does.
std::string MakeTestDir(const std::string& kind);

// ---- files -----------------------------------------------------------------

// "ENOENT (No such file or directory)".
std::string ErrnoText(int err = errno);

// Owns a file descriptor.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { Close(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  // close(2)'s result (0, or -1 with errno): close reports write-back errors.
  int Close();

 private:
  int fd_;
};

// Deterministic pseudo-random bytes; different seeds give different data.
std::string TestData(size_t size, uint64_t seed);

// Creates/truncates `path` with `mode`, writes all of `data` and checks that
// every write and close(2) succeeded.
::testing::AssertionResult WriteFile(const std::string& path, std::string_view data,
                                     mode_t mode = 0644);
// The whole file, or nullopt (errno set) if it cannot be opened or read.
std::optional<std::string> ReadFile(const std::string& path);
// Names in directory `path` from opendir/readdir, without "." and "..", in
// readdir order; nullopt (errno set) on error.
std::optional<std::vector<std::string>> ListDir(const std::string& path);
// pwrite(2) all of `data` at `offset`, looping over short writes.
::testing::AssertionResult PwriteAll(int fd, std::string_view data, off_t offset);
// pread(2) `size` bytes at `offset`, looping over short reads; fewer only at
// end of file. nullopt (errno set) on error.
std::optional<std::string> PreadUpTo(int fd, size_t size, off_t offset);
// Compares bytes without printing megabytes: sizes and the first difference.
::testing::AssertionResult SameBytes(std::string_view actual, std::string_view expected);
// Polls `done` every 20 ms until it returns true or `timeout` passes.
bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout);

// Checks that a syscall-style call failed (-1) with one of `errnos`.
::testing::AssertionResult FailedWith(const char* expr, std::pair<long, int> result,
                                      std::initializer_list<int> errnos);

// ---- mounts ----------------------------------------------------------------

// The file system type mounted at `path` per /proc/self/mountinfo (the top
// mount if several), e.g. "fuse.floatmount"; empty if nothing is mounted there.
std::string MountedFsType(const std::string& path);
// Processes other than this one that run (not zombies) and name `path` in
// their command line: the agent serving a mount point.
std::vector<pid_t> ProcessesNaming(const std::string& path);
// True if FLOATMOUNT_TEST_REFERENCE_MOUNT asks for bind mounts instead.
bool ReferenceMountRequested();
// "3" if FLOATMOUNT_TEST_NFS_VERS=3, else "4.1".
std::string NfsVersionUnderTest();

// One mount of an NFS export by a floatmount process (or, in reference mode,
// a bind mount of the export directory; in kernel-client mode, a kernel
// NFSv4 mount). Owns the mount point and the state directory; the
// destructor unmounts whatever state it is in.
class FloatMount {
 public:
  struct Config {
    std::string server;       // "127.0.0.1:/export"
    uint16_t port = 0;        // port= option
    int nconnect = 4;         // nconnect= option
    std::string extra;        // more -o options, comma-separated, e.g. "noac"
    std::string bind_source;  // reference mode: the directory to bind-mount
    bool reference = false;
    // Kernel-client mode: `mount -t nfs4 -o EXTRA SERVER MNT` (port and
    // nconnect unused; extra holds the whole kernel option string).
    bool kernel = false;
    std::chrono::milliseconds mount_timeout{30000};
  };

  FloatMount() = default;
  ~FloatMount();
  FloatMount(const FloatMount&) = delete;
  FloatMount& operator=(const FloatMount&) = delete;

  // Creates the directories, runs the mount command and checks that a FUSE
  // file system is mounted at mount_point(). On failure leaves nothing
  // mounted and returns an assertion failure with the command's output.
  ::testing::AssertionResult Mount(const Config& config);
  // `floatmount unmount`, then checks that the mount and the agent process
  // are gone; forces both if not (and then reports failure). Removes the
  // directories. Idempotent.
  ::testing::AssertionResult Unmount();
  // Kills the agent now: the kernel aborts the FUSE connection and blocked
  // calls on the mount return. Safe from any thread.
  void Abort();

  bool mounted() const { return mounted_; }
  const std::string& mount_point() const { return mount_point_; }
  const std::string& state_dir() const { return state_dir_; }
  // The path of `rel` under the mount point ("" is the mount point); after
  // Unmount() a path that does not exist.
  std::string Path(const std::string& rel) const;
  // The agent processes serving this mount (found by the mount point in
  // their command line), for diagnostics.
  std::vector<pid_t> daemon_pids() const;
  // The last lines of the agent's log files in state_dir(), for a failure
  // message ("" for a bind or kernel mount).
  std::string LogTails() const;

 private:
  // True when a floatmount agent serves the mount (not bind, not kernel).
  bool floatmount() const { return !config_.reference && !config_.kernel; }
  void ForceUnmount();
  // Sends SIGKILL to the agent processes still alive.
  void KillDaemons();
  void RemoveDirectories();

  Config config_;
  // Written by the test's thread under mu_ and read there without it; the
  // watchdog (Abort) reads them under mu_.
  std::string mount_point_;
  std::string state_dir_;
  bool mounted_ = false;
  mutable std::mutex mu_;
  std::vector<pid_t> daemon_pids_;  // guarded by mu_
};

class MountTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // The file `rel` on the mount / in the server's export directory.
  std::string Path(const std::string& rel) const;
  std::string ServerPath(const std::string& rel) const;

  // Mounts the same export a second time, on another mount point with its
  // own state_dir (so another NFSv4 client ID), with `extra` -o options,
  // through `port` on the server's address if not 0 (a FaultProxy).
  // The fixture unmounts it in TearDown (and aborts it when the test's
  // watchdog fires). Null (after a test failure) if the mount failed.
  FloatMount* MountSecond(const std::string& extra = "", uint16_t port = 0);

  bool reference_mount() const { return reference_; }
  bool nfs3() const { return nfs3_; }
  // True when the mounts are the Linux kernel's NFS client, not floatmount
  // (FLOATMOUNT_TEST_KERNEL_CLIENT, kernel_client_mode.h). The server is
  // then the knfsd of the guest the suite runs in.
  bool kernel_client() const { return kernel_.has_value(); }
  // True when the server under test is knfsd (FLOATMOUNT_TEST_SERVER=knfsd).
  bool knfsd() const { return knfsd_ != nullptr; }
  // The configuration of the fixture's mounts, with `extra` -o options
  // (and vers=3,mountport= under FLOATMOUNT_TEST_NFS_VERS=3).
  FloatMount::Config MountConfig(const std::string& extra) const;
  // The ganesha of the test; only when !knfsd() (tests of ganesha-only
  // hooks skip under knfsd first).
  GaneshaServer& server() { return *server_; }
  // The shared knfsd guest; only when knfsd().
  KnfsdServer& knfsd_server() { return *knfsd_; }
  // The server under test, whichever it is (0 in kernel-client mode).
  uint16_t server_port() const;
  // "127.0.0.1:/export" (ganesha), "127.0.0.1:/" (knfsd) or the test's
  // directory of the export (kernel client).
  std::string server_spec() const;
  // The last lines of the server's log (ganesha) or console (knfsd).
  std::string ServerLogTail(int lines = 12) const;
  // The server crashes and comes back, all of its NFSv4 state forgotten:
  // ganesha is killed (SIGKILL) and started again, in a grace period unless
  // server_options_.graceless; knfsd's nfsd is restarted in its guest (a
  // grace period of KnfsdServer::Options::grace_s). Call it from the
  // test's thread (ganesha's PDEATHSIG follows the thread that forked it).
  // An empty string, or why it failed.
  std::string CrashAndRestartServer();
  FloatMount& mount() { return *mounts_.front(); }

  // Set in a derived fixture's constructor.
  std::string mount_options_;              // extra -o options, e.g. "noac", "allow_other"
  GaneshaOptions server_options_;          // the server's options
  std::chrono::seconds test_timeout_{60};  // watchdog bound on the test body

 private:
  // SetUp's kernel-client mode: the test's directory and the first mount.
  void SetUpKernelClient();
  void StartWatchdog();
  void StopWatchdog();

  bool reference_ = false;
  bool nfs3_ = false;
  std::unique_ptr<GaneshaServer> server_;  // null under knfsd
  KnfsdServer* knfsd_ = nullptr;           // the shared guest, or null
  std::optional<KernelClientTarget> kernel_;  // set in kernel-client mode
  std::string kernel_dir_;                    // kernel client: the test's directory, server side
  mutable std::mutex mounts_mu_;  // guards mounts_ and server_view_ against the watchdog
  std::vector<std::unique_ptr<FloatMount>> mounts_;
  // knfsd: the process's noac mount behind ServerPath() once a test used it.
  mutable FloatMount* server_view_ = nullptr;

  std::thread watchdog_;
  std::mutex watchdog_mu_;
  std::condition_variable watchdog_cv_;
  bool watchdog_stop_ = false;   // guarded by watchdog_mu_
  bool watchdog_fired_ = false;  // guarded by watchdog_mu_
};

}  // namespace floatmount::testing

// Asserts/expects that a syscall-style expression did not return -1.
#define ASSERT_SYSCALL(expr) \
  ASSERT_NE(-1, (expr)) << #expr << ": " << ::floatmount::testing::ErrnoText()
#define EXPECT_SYSCALL(expr) \
  EXPECT_NE(-1, (expr)) << #expr << ": " << ::floatmount::testing::ErrnoText()

// Expects `expr` to fail with -1 and errno among the listed values.
#define EXPECT_FAILS_WITH(expr, ...)                                                \
  EXPECT_TRUE(::floatmount::testing::FailedWith(#expr,                              \
                                                [&] {                               \
                                                  errno = 0;                        \
                                                  const long r_ = (long)(expr);     \
                                                  return std::make_pair(r_, errno); \
                                                }(),                                \
                                                {__VA_ARGS__}))
