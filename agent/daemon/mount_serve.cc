#include "agent/daemon/mount_serve.h"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "agent/identity/client_identity.h"
#include "agent/daemon/engine_setup.h"
#include "agent/exit_codes.h"
#include "agent/daemon/run_files.h"
#include "agent/status/status_server.h"
#include "fuse/file_system.h"
#include "fuse/fuse_mount.h"
#include "agent/daemon/nfs_mount.h"

namespace floatmount::agent {
namespace {

void LogCacheSummary(const fuse::CacheStats& s) {
  constexpr double kMiB = 1 << 20;
  spdlog::info(
      "cache: read {:.0f} MiB from read-ahead, {:.0f} MiB directly ({:.0f} MiB prefetched, "
      "{:.0f} MiB unused, {} reads waited); wrote back {:.0f} MiB in {} commits ({:.0f} MiB "
      "resent, {} errors); {} flushes, longest {:.3f} s; most memory {:.0f} of {:.0f} MiB, "
      "{} writers waited",
      s.read_from_cache / kMiB, s.read_from_server / kMiB, s.prefetched / kMiB,
      s.prefetch_wasted / kMiB, s.read_waits, s.written_back / kMiB, s.commits, s.resent / kMiB,
      s.write_errors, s.flushes, s.flush_seconds_max, s.high_water / kMiB, s.budget / kMiB,
      s.writer_waits);
}

// How long a mount that is in use may stay silent after a stop signal
// before its FUSE connection is aborted to end the loop (EndLoopForStop).
constexpr auto kDrainGrace = std::chrono::seconds(2);

// The FUSE loop's thread, and what the main thread waits for: the loop has
// returned, or a signal asked for a stop.
class ServeLoop {
 public:
  explicit ServeLoop(fuse::FuseMount* mount)
      : thread_([this, mount] {
          pthread_setname_np(pthread_self(), "fm-fuse");
          mount->Run();
          std::lock_guard<std::mutex> lock(mu_);
          ended_ = true;
          changed_.notify_all();
        }) {}
  ~ServeLoop() { Join(); }

  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  void RequestStop() {
    std::lock_guard<std::mutex> lock(mu_);
    stop_requested_ = true;
    changed_.notify_all();
  }
  bool ended() {
    std::lock_guard<std::mutex> lock(mu_);
    return ended_;
  }
  bool stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_requested_;
  }
  // Waits until the loop returns or a stop is asked for; true if asked
  // while the loop still runs.
  bool WaitForStopRequest() {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [this] { return ended_ || stop_requested_; });
    return !ended_;
  }
  // Waits up to `timeout` for the loop to return; true if it did.
  bool WaitEnded(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [this] { return ended_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool ended_ = false;           // GUARDED_BY(mu_)
  bool stop_requested_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;           // last: it uses the fields above
};

// Ends the FUSE loop for a stop (main thread). The signal already called
// mount.Exit(): libfuse's workers stop once they have served the request
// in hand.
//  1. Nobody uses the mount: umount(2) succeeds; the kernel ends the FUSE
//     connection and the loop returns.
//  2. In use (EBUSY): the loop returns after the next request that comes
//     is served. Requests being served finish first; one that a worker
//     read but no longer serves fails for its caller when the connection
//     closes. Either way a write(2) that returned success is in
//     floatmount's cache, to be committed next.
//  3. In use but silent for kDrainGrace (a shell's working directory, a
//     file held open): no request will come, so abort the connection
//     (umount -f) to end the loop; blocked callers get ENOTCONN.
// The mount is detached after the loop has returned (FinishUnmount).
void EndLoopForStop(ServeLoop& loop, fuse::FuseMount& mount, const std::string& mountpoint) {
  if (umount2(mountpoint.c_str(), 0) == 0) return;
  if (errno == EPERM) {  // not root: fusermount3 detaches; the loop ends with the last user
    mount.Unmount();
    return;
  }
  if (loop.WaitEnded(kDrainGrace)) return;
  spdlog::warn(
      "{} is still in use by a process; aborting its FUSE connection (its calls fail "
      "with ENOTCONN) to commit the written data",
      mountpoint);
  EnsureUnmounted(mountpoint, /*abort=*/true);
}

// Detaches whatever is still mounted once the loop has returned.
void FinishUnmount(fuse::FuseMount& mount, const std::string& mountpoint) {
  mount.Unmount();
  EnsureUnmounted(mountpoint, /*abort=*/false);
}

// The STATUS= line: "SERVER:/EXPORT at MNT: 4 of 4 connections up
// (127.0.0.1:2049 x4); read 1.2 GiB, wrote 3.0 GiB; now 0.0 MB/s read,
// 85.3 MB/s written". Called every kStatusInterval on "fm-notify".
std::function<std::string()> StatusLine(const MountConfig& c, const std::string& mountpoint,
                                        const nfs::MountedClient& client,
                                        const fuse::FileSystem& fs) {
  struct Sample {
    std::chrono::steady_clock::time_point when = std::chrono::steady_clock::now();
    uint64_t read = 0;
    uint64_t written = 0;
  };
  return [&c, &mountpoint, &client, &fs, last = Sample{}]() mutable {
    const nfs::ServerInfo info = client.info();
    std::vector<std::pair<std::string, int>> addresses;
    int up = 0;
    for (const nfs::ConnectionInfo& conn : info.connections) {
      if (!conn.up) continue;
      ++up;
      const std::string address = conn.endpoint.ToString();
      auto it = std::find_if(addresses.begin(), addresses.end(),
                             [&](const auto& a) { return a.first == address; });
      if (it == addresses.end()) {
        addresses.emplace_back(address, 1);
      } else {
        ++it->second;
      }
    }
    std::string list;
    for (const auto& [address, count] : addresses) {
      list += (list.empty() ? "" : ", ") + address + " x" + std::to_string(count);
    }
    const fuse::CacheStats s = fs.cache_stats();
    Sample now;
    now.read = s.read_from_cache + s.read_from_server;
    now.written = s.written_back;
    const double seconds =
        std::max(1e-3, std::chrono::duration<double>(now.when - last.when).count());
    const double read_rate = (now.read - last.read) / seconds / 1e6;
    const double write_rate = (now.written - last.written) / seconds / 1e6;
    last = now;
    constexpr double kGiB = 1 << 30;
    return fmt::format(
        "{}:{} at {}: {} of {} connections up ({}); read {:.1f} GiB, wrote {:.1f} GiB; now "
        "{:.1f} MB/s read, {:.1f} MB/s written",
        c.server, c.export_path, mountpoint, up, info.connections.size(), list, now.read / kGiB,
        now.written / kGiB, read_rate, write_rate);
  };
}

// A stop that ran out of time, or a second signal (on "fm-signal"): say
// what is lost, leave nothing mounted, exit now.
[[noreturn]] void GiveUp(int sig, const fuse::FileSystem& fs, const std::string& mountpoint,
                         const std::string& pid_file) {
  const fuse::CacheStats s = fs.cache_stats();
  const int64_t left = std::max<int64_t>(0, s.dirty) + std::max<int64_t>(0, s.unstable);
  const std::string why = sig != 0
                              ? fmt::format("SIG{} during the stop", sigabbrev_np(sig))
                              : fmt::format("the stop took longer than {} s", kStopBound.count());
  if (left > 0) {
    spdlog::error(
        "{}: exiting with {:.1f} MiB written to {} but not committed to the server "
        "({:.1f} MiB not yet written to it, {:.1f} MiB written but uncommitted); that "
        "data is lost",
        why, left / double(1 << 20), mountpoint, s.dirty / double(1 << 20),
        s.unstable / double(1 << 20));
  } else {
    spdlog::error("{}: exiting before the NFS session was closed; all written data was committed",
                  why);
  }
  EnsureUnmounted(mountpoint, /*abort=*/true);
  unlink(pid_file.c_str());
  unlink(RunFileFor(mountpoint, ".sock").c_str());
  spdlog::default_logger()->flush();
  _exit(left > 0 ? kExitIo : kExitFailure);
}

}  // namespace

int Serve(const MountConfig& c, const std::string& mountpoint, const NotifySettings& settings,
          ReadyPipe& ready) {
  StopSignals::Block();  // before any thread: every thread made below inherits it
  Notifier notifier(settings);
  const std::string what = c.server + ":" + c.export_path;
  notifier.Status("mounting " + what + " at " + mountpoint);
  auto fail = [&](int code, const std::string& line) {
    notifier.Status("failed: " + line);
    ready.Report(code, line);
    return code;
  };

  auto identity = LoadNodeIdentity(IdentityOptionsFor(c));
  if (!identity.ok()) {
    return fail(kExitLocalFile, "client identity: " + identity.status().message() +
                                    ". Set state_dir= to a writable directory.");
  }
  // Where the ID came from (never the ID): a clone is worth a warning, the
  // rest (paths, a machine fingerprint) only helps debugging.
  for (const auto& line : DescribeIdentity(*identity)) {
    if (identity->source == IdSource::kRegenerated) {
      spdlog::warn("node ID {}", line);
    } else {
      spdlog::debug("node ID {}", line);
    }
  }
  auto addresses = ResolveServer(c.server, c.dns_server);
  if (!addresses.ok()) {
    return fail(kExitUnreachable, "cannot mount " + what + ": " + addresses.status().message() +
                                      ". Check the server name.");
  }
  // An address that stops answering makes the resolver look again soon
  // (the floating IP may have moved); set once the resolver exists.
  std::atomic<ResolverLoop*> resolver_now{nullptr};
  NfsMountRequest request;
  request.config = &c;
  request.endpoints = EndpointsOf(*addresses, c.port);
  request.owner_id = OwnerIdFor(identity->node_id, mountpoint);
  request.on_address_down = [&resolver_now](const nfs::Endpoint&) {
    if (ResolverLoop* r = resolver_now.load()) r->Nudge();
  };
  auto mounted = MountNfs(request);
  if (!mounted.ok()) {
    return fail(ExitCodeFor(mounted.status()),
                DescribeMountFailure(c.server, c.export_path, mounted.status(), c.vers));
  }
  nfs::MountedClient& client = *mounted->client;
  // The name is looked up again as its TTLs run out: floating IPs that come
  // and go move the connections (nfs/v4/connections.cc, nfs/v3/client.cc).
  AresResolverOptions resolver_options;
  resolver_options.dns_server = c.dns_server;
  ResolverLoop resolver(std::make_shared<AresResolver>(resolver_options), c.server, *addresses,
                        [&](const std::vector<ResolvedAddress>& now) {
                          client.UpdateEndpoints(EndpointsOf(now, c.port));
                        });
  resolver_now = &resolver;
  struct Forget {
    std::atomic<ResolverLoop*>& r;
    ~Forget() { r = nullptr; }  // before `resolver` goes
  } forget{resolver_now};
  fuse::FsOptions fs_options;
  fs_options.attr_timeout = c.actimeo;
  fs_options.entry_timeout = c.actimeo;
  fs_options.negative_entries = c.lookupcache == "all";
  fs_options.cache_size = c.cache_size;
  fs_options.readahead_max = c.readahead.value_or(kDefaultReadahead);
  fs_options.max_write = client.info().wsize;
  fs_options.max_read = client.info().rsize;
  fuse::FileSystem fs(&client, fs_options);
  fuse::FuseMountOptions mount_options;
  mount_options.mountpoint = mountpoint;
  mount_options.fsname = what;
  mount_options.allow_other = c.allow_other;
  mount_options.read_only = c.read_only;
  mount_options.debug = c.debug;
  std::string error;
  auto mount = fuse::FuseMount::Mount(&fs, mount_options, &error);
  if (!mount) {
    client.Shutdown();
    return fail(kExitFuse, error);
  }
  auto loop = std::make_unique<ServeLoop>(mount.get());
  // The mount answers once a stat through it succeeds.
  struct stat st;
  if (stat(mountpoint.c_str(), &st) != 0) {
    const std::string why = std::strerror(errno);
    mount->Exit();
    mount->Unmount();
    loop.reset();
    client.Shutdown();
    return fail(kExitFuse, "the mount at " + mountpoint + " does not answer: " + why);
  }
  mkdir(RunDir().c_str(), 0755);
  const std::string pid_file = RunFileFor(mountpoint, ".pid");
  { std::ofstream(pid_file) << getpid() << "\n"; }
  const auto started = std::chrono::steady_clock::now();
  std::string status_error;
  auto status = StatusServer::Start(
      RunFileFor(mountpoint, ".sock"),
      [&] {
        MountStatus s;
        s.mountpoint = mountpoint;
        s.server = c.server;
        s.export_path = c.export_path;
        s.node_id = identity->node_id;
        s.owner_id = OwnerIdFor(identity->node_id, mountpoint);
        s.nconnect = c.nconnect;
        s.uptime_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        s.engine = client.info();
        s.cache = fs.cache_stats();
        return s;
      },
      &status_error);
  if (!status) spdlog::warn("`floatmount status` will not see this mount: {}", status_error);
  spdlog::info("mounted {} at {} (NFSv{}, {} connections)", what, mountpoint, mounted->version,
               c.nconnect);
  // Healthy while the FUSE loop runs (or a stop is under way) and the file
  // system's and the engine's locks can be taken: a deadlock blocks this
  // call, and the missing pings get the agent restarted.
  notifier.Ready(StatusLine(c, mountpoint, client, fs), [&] {
    (void)fs.open_files();
    (void)client.info();
    return !loop->ended() || loop->stopping();
  });
  ready.Report(kExitOk, "mounted");

  StopSignals signals(
      [&](int sig) {
        notifier.Stopping(kStopBound);
        spdlog::info("SIG{}: stopping; unmounting {}, then committing written data",
                     sigabbrev_np(sig), mountpoint);
        mount->Exit();
        loop->RequestStop();
      },
      [&](int sig) { GiveUp(sig, fs, mountpoint, pid_file); }, kStopBound);
  if (loop->WaitForStopRequest()) EndLoopForStop(*loop, *mount, mountpoint);
  loop->Join();
  FinishUnmount(*mount, mountpoint);
  notifier.Stopping(kStopBound);  // also when unmounted from outside
  spdlog::info("{} unmounted; committing and closing open files", mountpoint);
  fs.CloseAll();
  LogCacheSummary(fs.cache_stats());
  status.reset();
  notifier.Finish();  // its callbacks use the client, the file system and the loop
  client.Shutdown();
  signals.Finish();
  mount.reset();
  unlink(pid_file.c_str());
  return kExitOk;
}

void ReadyPipe::Report(int code, const std::string& line) {
  if (fd_ < 0) {
    if (code != kExitOk) std::cerr << "floatmount: " << line << "\n";
    return;
  }
  const std::string msg = std::to_string(code) + " " + line + "\n";
  (void)!write(fd_, msg.data(), msg.size());
  close(fd_);
  fd_ = -1;
}

}  // namespace floatmount::agent
