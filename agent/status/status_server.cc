#include "agent/status/status_server.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace floatmount::agent {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

std::unique_ptr<StatusServer> StatusServer::Start(const std::string& path, Snapshot snapshot,
                                                  std::string* error) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    *error = "control socket path too long: " + path;
    return nullptr;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return nullptr;
  }
  unlink(path.c_str());  // a socket left by an agent that died
  const mode_t old = umask(0077);
  const int bound = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  umask(old);
  if (bound != 0 || listen(fd, 8) != 0) {
    *error = "control socket " + path + ": " + std::strerror(errno);
    close(fd);
    return nullptr;
  }
  return std::unique_ptr<StatusServer>(new StatusServer(path, fd, std::move(snapshot)));
}

StatusServer::StatusServer(std::string path, int fd, Snapshot snapshot)
    : path_(std::move(path)), fd_(fd), snapshot_(std::move(snapshot)) {
  if (pipe2(wake_, O_CLOEXEC) != 0) wake_[0] = wake_[1] = -1;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "fm-status");
    Loop();
  });
}

StatusServer::~StatusServer() {
  if (wake_[1] >= 0) {
    const char byte = 0;
    (void)!write(wake_[1], &byte, 1);
  }
  thread_.join();
  close(fd_);
  unlink(path_.c_str());
  if (wake_[0] >= 0) close(wake_[0]);
  if (wake_[1] >= 0) close(wake_[1]);
}

void StatusServer::Loop() {
  double next_sample = Now();
  for (;;) {
    const double now = Now();
    if (now >= next_sample) {
      Sample();
      next_sample = now + 1.0;
    }
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    const int timeout_ms = int((next_sample - Now()) * 1000) + 1;
    const int n = poll(fds, wake_[0] >= 0 ? 2 : 1, timeout_ms);
    if (n < 0 && errno != EINTR) return;
    if (n > 0 && (fds[1].revents & POLLIN) != 0) return;
    if (n > 0 && (fds[0].revents & POLLIN) != 0) {
      const int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        Answer(client);
        close(client);
      }
    }
  }
}

void StatusServer::Sample() {
  const MountStatus s = snapshot_();
  const double read = double(s.cache.read_from_cache + s.cache.read_from_server);
  const double written = double(s.cache.written_back);
  std::lock_guard<std::mutex> lock(mu_);
  samples_.push_back(Point{Now(), read, written});
  while (samples_.size() > 6) samples_.pop_front();
}

MountStatus StatusServer::Current() {
  MountStatus s = snapshot_();
  std::lock_guard<std::mutex> lock(mu_);
  if (samples_.size() >= 2) {
    const Point& a = samples_.front();
    const Point& b = samples_.back();
    if (b.t > a.t) {
      s.throughput.read_bytes_per_s = (b.read - a.read) / (b.t - a.t);
      s.throughput.write_bytes_per_s = (b.written - a.written) / (b.t - a.t);
    }
  }
  return s;
}

// One request line in, one line out; a client that says nothing within a
// second gets nothing (the loop must not hang on it).
void StatusServer::Answer(int client) {
  pollfd pfd{client, POLLIN, 0};
  std::string request;
  char buf[128];
  while (request.find('\n') == std::string::npos && request.size() < 256) {
    if (poll(&pfd, 1, 1000) <= 0) return;
    const ssize_t n = read(client, buf, sizeof(buf));
    if (n <= 0) break;
    request.append(buf, size_t(n));
  }
  request = request.substr(0, request.find('\n'));
  const std::string reply =
      request == "status" ? FormatJson(Current()) + "\n" : "error: unknown request '" + request + "'\n";
  size_t sent = 0;
  while (sent < reply.size()) {
    const ssize_t n = send(client, reply.data() + sent, reply.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += size_t(n);
  }
}

}  // namespace floatmount::agent
