#include "tests/harness/rpc_ping.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "tests/harness/net_util.h"

namespace floatmount::testing {
namespace {

constexpr uint32_t kLastFragment = 0x80000000u;
constexpr uint32_t kCall = 0;
constexpr uint32_t kReply = 1;
constexpr uint32_t kRpcVersion = 2;
constexpr uint32_t kMsgAccepted = 0;
constexpr uint32_t kAcceptSuccess = 0;
constexpr uint32_t kMaxReplyBytes = 4096;

bool SendAll(int fd, const char* data, size_t size, std::chrono::steady_clock::time_point deadline,
             std::string* error) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (WaitFd(fd, POLLOUT, -1, MillisUntil(deadline)) != 1) {
        *error = "send timed out";
        return false;
      }
    } else {
      *error = std::string("send: ") + std::strerror(errno);
      return false;
    }
  }
  return true;
}

bool RecvAll(int fd, char* data, size_t size, std::chrono::steady_clock::time_point deadline,
             std::string* error) {
  while (size > 0) {
    const ssize_t n = recv(fd, data, size, 0);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
    } else if (n == 0) {
      *error = "connection closed by server";
      return false;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (WaitFd(fd, POLLIN, -1, MillisUntil(deadline)) != 1) {
        *error = "no reply before the deadline";
        return false;
      }
    } else {
      *error = std::string("recv: ") + std::strerror(errno);
      return false;
    }
  }
  return true;
}

uint32_t WordAt(const char* p, size_t index) {
  uint32_t v;
  std::memcpy(&v, p + 4 * index, 4);
  return ntohl(v);
}

bool Ping(const std::string& address, uint16_t port, uint32_t program, uint32_t version,
          std::chrono::milliseconds timeout, std::string* error) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Endpoint ep;
  if (!ResolveEndpoint(address, port, &ep, error)) return false;
  const int fd = ConnectWithTimeout(ep, timeout, error);
  if (fd < 0) return false;

  const uint32_t xid = std::random_device{}();
  // Record mark, then call body: xid, CALL, rpcvers, prog, vers, proc 0,
  // cred {AUTH_NONE, 0 bytes}, verf {AUTH_NONE, 0 bytes}.
  const uint32_t words[] = {
      kLastFragment | 40, xid, kCall, kRpcVersion, program, version, 0, 0, 0, 0, 0};
  char request[sizeof(words)];
  for (size_t i = 0; i < std::size(words); ++i) {
    const uint32_t be = htonl(words[i]);
    std::memcpy(request + 4 * i, &be, 4);
  }

  bool ok = SendAll(fd, request, sizeof(request), deadline, error);
  char mark[4];
  char reply[kMaxReplyBytes];
  uint32_t length = 0;
  if (ok) ok = RecvAll(fd, mark, sizeof(mark), deadline, error);
  if (ok) {
    length = WordAt(mark, 0) & ~kLastFragment;
    if (length < 24 || length > kMaxReplyBytes) {
      *error = "bad reply fragment length " + std::to_string(length);
      ok = false;
    }
  }
  if (ok) ok = RecvAll(fd, reply, length, deadline, error);
  close(fd);
  if (!ok) return false;

  // xid, REPLY, MSG_ACCEPTED, verf {flavor, length, body}, accept_stat.
  if (WordAt(reply, 0) != xid || WordAt(reply, 1) != kReply) {
    *error = "reply does not match the call";
    return false;
  }
  if (WordAt(reply, 2) != kMsgAccepted) {
    *error = "call denied (reply_stat " + std::to_string(WordAt(reply, 2)) + ")";
    return false;
  }
  const uint32_t verf_len = (WordAt(reply, 4) + 3) & ~3u;
  const size_t stat_offset = 20 + verf_len;
  if (stat_offset + 4 > length) {
    *error = "truncated reply";
    return false;
  }
  uint32_t accept_stat;
  std::memcpy(&accept_stat, reply + stat_offset, 4);
  accept_stat = ntohl(accept_stat);
  if (accept_stat != kAcceptSuccess) {
    *error = "call not accepted (accept_stat " + std::to_string(accept_stat) + ")";
    return false;
  }
  return true;
}

}  // namespace

bool RpcNullPing(const std::string& address, uint16_t port, uint32_t program, uint32_t version,
                 std::chrono::milliseconds timeout, std::string* error) {
  std::string ignored;
  return Ping(address, port, program, version, timeout, error != nullptr ? error : &ignored);
}

}  // namespace floatmount::testing
