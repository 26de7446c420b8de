// Plain blocking sockets for the harness's own tests: an echo server to put
// behind a FaultProxy, and client helpers with timeouts so that a broken
// proxy fails a test instead of hanging it.
//
// Threads: EchoServer runs one accept thread plus one thread per connection;
// its methods may be called from the test thread while it runs. The client
// helpers are free functions.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace floatmount::testing {

class EchoServer {
 public:
  EchoServer();   // listens on 127.0.0.1, a free port
  ~EchoServer();  // shuts every connection down and joins all threads
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;

  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  int open_connections() const { return open_.load(); }

 private:
  void AcceptLoop();
  void Echo(int fd);

  int listen_fd_ = -1;
  int stop_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<int> open_{0};
  std::thread accept_thread_;
  std::mutex mutex_;
  std::vector<int> fds_;              // guarded by mutex_; open connection fds
  std::vector<std::thread> workers_;  // guarded by mutex_
};

// Connects a blocking socket with `timeout` also set as SO_RCVTIMEO and
// SO_SNDTIMEO. Returns -1 on failure.
int ConnectTo(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(5));

bool SendAll(int fd, const void* data, size_t size);
// Receives exactly `size` bytes; false on EOF, error or timeout.
bool RecvExact(int fd, void* data, size_t size);
// Waits up to `wait` for the socket to become readable; true if it did
// (data, EOF or error pending).
bool Readable(int fd, std::chrono::milliseconds wait);
// Polls `pred` every few milliseconds until it holds or `limit` passes.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace floatmount::testing
