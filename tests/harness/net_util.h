// Small socket helpers shared by the test harness (FaultProxy, RpcNullPing,
// GaneshaServer): numeric address resolution, a connect with a deadline,
// waiting on one fd with a cancel fd, and finding a free loopback port.
//
// Thread-safety: free functions without shared state; safe from any thread.
// Every fd these functions return is close-on-exec, so a server process the
// harness forks never inherits a test's sockets.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace floatmount::testing {

// An IPv4 or IPv6 socket address with its length.
struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family() const { return addr.ss_family; }
};

// Resolves `host` (an IP literal or a name such as "localhost") and `port`.
// Returns false and sets *error on failure.
bool ResolveEndpoint(const std::string& host, uint16_t port, Endpoint* out, std::string* error);

// Returns the port of a bound socket, or 0 on error.
uint16_t LocalPort(int fd);

// Connects a new non-blocking TCP socket to `to` within `timeout`. Returns the
// fd (non-blocking, TCP_NODELAY) or -1 with *error set.
int ConnectWithTimeout(const Endpoint& to, std::chrono::milliseconds timeout, std::string* error);

// Waits until `fd` is ready for `events` (POLLIN/POLLOUT) or `cancel_fd`
// (may be -1) becomes readable. Returns 1 if fd is ready, 0 if cancelled or
// the deadline passed, -1 on a poll error.
int WaitFd(int fd, short events, int cancel_fd, int timeout_ms);

// Asks the kernel for a currently free TCP port on `address` (binds port 0,
// reads it back, closes). The port may be taken again before it is used, so
// callers retry on a bind collision. Returns 0 and sets *error on failure.
uint16_t PickFreePort(const std::string& address, std::string* error);

// Sets SO_LINGER {on, 0} so that close() sends RST instead of FIN.
void SetAbortOnClose(int fd);

// Milliseconds left until `deadline` (>= 0).
int MillisUntil(std::chrono::steady_clock::time_point deadline);

}  // namespace floatmount::testing
