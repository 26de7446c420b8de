#include "tests/harness/test_sockets.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "tests/harness/net_util.h"

namespace floatmount::testing {

EchoServer::EchoServer() {
  Endpoint ep;
  std::string error;
  ResolveEndpoint("127.0.0.1", 0, &ep, &error);
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bind(listen_fd_, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len);
  listen(listen_fd_, 128);
  port_ = LocalPort(listen_fd_);
  stop_fd_ = eventfd(0, EFD_CLOEXEC);
  accept_thread_ = std::thread(&EchoServer::AcceptLoop, this);
}

EchoServer::~EchoServer() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t ignored = write(stop_fd_, &one, sizeof(one));
  accept_thread_.join();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (std::thread& t : workers) t.join();
  close(listen_fd_);
  close(stop_fd_);
}

void EchoServer::AcceptLoop() {
  while (WaitFd(listen_fd_, POLLIN, stop_fd_, -1) == 1) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    accepted_.fetch_add(1);
    open_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mutex_);
    fds_.push_back(fd);
    workers_.emplace_back(&EchoServer::Echo, this, fd);
  }
}

void EchoServer::Echo(int fd) {
  std::vector<char> buffer(256 * 1024);
  for (;;) {
    const ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n <= 0 || !SendAll(fd, buffer.data(), static_cast<size_t>(n))) break;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::erase(fds_, fd);
  }
  close(fd);
  open_.fetch_sub(1);
}

int ConnectTo(uint16_t port, std::chrono::milliseconds timeout) {
  Endpoint ep;
  std::string error;
  if (!ResolveEndpoint("127.0.0.1", port, &ep, &error)) return -1;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const timeval tv{static_cast<time_t>(timeout.count() / 1000),
                   static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = send(fd, p, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool RecvExact(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = recv(fd, p, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool Readable(int fd, std::chrono::milliseconds wait) {
  return WaitFd(fd, POLLIN, -1, static_cast<int>(wait.count())) == 1;
}

}  // namespace floatmount::testing
