// StatusServer: the control socket of one mount, for `floatmount status`.
//
// A unix stream socket at RunFileFor(mountpoint, ".sock"), mode 0600 (the
// status shows the client owner, which only the agent's user should see).
// A client sends one line, "status", and gets one line back: the mount's
// MountStatus as JSON (status.h); the command renders it. One thread,
// "fm-status", answers requests and, every second, samples the bytes read
// and written to keep the throughput of the last five seconds.
//
// Threads: its own; `snapshot` is called on it and must be thread-safe.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent/status/status.h"

namespace floatmount::agent {

class StatusServer {
 public:
  using Snapshot = std::function<MountStatus()>;

  // Listens at `path` (a stale socket there is replaced). Null with
  // *error set if it cannot.
  static std::unique_ptr<StatusServer> Start(const std::string& path, Snapshot snapshot,
                                             std::string* error);
  ~StatusServer();  // stops the thread and removes the socket

  // The current status, with the sampled throughput.
  MountStatus Current();

 private:
  StatusServer(std::string path, int fd, Snapshot snapshot);
  void Loop();
  void Sample();
  void Answer(int client);

  const std::string path_;
  const int fd_;
  const Snapshot snapshot_;
  int wake_[2] = {-1, -1};  // a pipe: the destructor wakes the loop

  struct Point {
    double t;
    double read, written;
  };
  std::mutex mu_;
  std::deque<Point> samples_;  // GUARDED_BY(mu_): the last six seconds
  std::thread thread_;
};

}  // namespace floatmount::agent
