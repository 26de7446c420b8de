// RpcConnection::Withdraw against a real TCP peer that stops reading: the
// socket fills, calls queue behind it, and a call given up (a soft
// timeout) must never send bytes of memory its owner has reused.
#include "nfs/rpc/connection.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "nfs/rpc/message.h"

namespace floatmount::nfs {
namespace {

using namespace std::chrono_literals;

// A listening socket on 127.0.0.1 whose accepted peer reads nothing until
// asked to, with a small receive buffer so the client's socket fills.
class SilentPeer {
 public:
  SilentPeer() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    const int small = 64 << 10;
    setsockopt(listen_fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(listen_fd_, 1);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentPeer() {
    if (peer_fd_ >= 0) close(peer_fd_);
    close(listen_fd_);
  }
  uint16_t port() const { return port_; }
  bool Accept() {
    peer_fd_ = accept(listen_fd_, nullptr, nullptr);
    return peer_fd_ >= 0;
  }
  // Reads until `bytes` arrived or nothing came for a second.
  std::vector<uint8_t> ReadAll(size_t bytes) {
    std::vector<uint8_t> got;
    std::vector<uint8_t> buf(1 << 20);
    while (got.size() < bytes) {
      pollfd p{peer_fd_, POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) break;
      const ssize_t n = read(peer_fd_, buf.data(), buf.size());
      if (n <= 0) break;
      got.insert(got.end(), buf.begin(), buf.begin() + n);
    }
    return got;
  }

 private:
  int listen_fd_ = -1;
  int peer_fd_ = -1;
  uint16_t port_ = 0;
};

// A call whose body is `payload`, referenced (as a WRITE's data is).
std::shared_ptr<RpcCall> CallWithPayload(const std::vector<uint8_t>& payload) {
  auto call = std::make_shared<RpcCall>();
  rpc::EncodeCallHeader(call->message, 100003, 4, 1, Credentials{}, "test");
  call->message.PutOpaqueRef(payload.data(), payload.size());
  call->on_reply = [](const Status&, XdrDecoder&, bool) {};
  return call;
}

// The records in `stream` (single-fragment), each without its mark.
std::vector<std::vector<uint8_t>> Records(const std::vector<uint8_t>& stream) {
  std::vector<std::vector<uint8_t>> records;
  size_t at = 0;
  while (at + 4 <= stream.size()) {
    uint32_t mark;
    std::memcpy(&mark, stream.data() + at, 4);
    const size_t len = ntohl(mark) & ~rpc::kLastFragment;
    if (at + 4 + len > stream.size()) break;
    records.emplace_back(stream.begin() + at + 4, stream.begin() + at + 4 + len);
    at += 4 + len;
  }
  return records;
}

TEST(RpcConnectionTest, AWithdrawnCallNeverSendsItsOwnersReusedMemory) {
  SilentPeer peer;
  auto conn = RpcConnection::Connect({"127.0.0.1", peer.port()}, 2s, nullptr);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  ASSERT_TRUE(peer.Accept());

  // 16 MiB each: far more than the two sockets' buffers hold, so the first
  // is partly written and the other two wait in the connection's queue.
  constexpr size_t kSize = 16 << 20;
  std::vector<uint8_t> first(kSize, 0x11), second(kSize, 0x22), third(kSize, 0x33);
  auto a = CallWithPayload(first), b = CallWithPayload(second), c = CallWithPayload(third);
  ASSERT_TRUE((*conn)->Send(a));
  ASSERT_TRUE((*conn)->Send(b));
  ASSERT_TRUE((*conn)->Send(c));
  std::this_thread::sleep_for(100ms);  // the socket is full by now
  EXPECT_EQ((*conn)->outstanding(), 3u);

  EXPECT_FALSE((*conn)->Withdraw(a.get())) << "the first call was partly sent: it must finish";
  EXPECT_TRUE((*conn)->Withdraw(b.get())) << "the second call had not started: it is removed";
  EXPECT_EQ((*conn)->outstanding(), 2u);
  // The owners reuse their buffers at once (the cache hands them to other
  // files): none of these bytes may reach the server.
  std::fill(first.begin(), first.end(), 0xEE);
  std::fill(second.begin(), second.end(), 0xEE);

  const std::vector<uint8_t> stream = peer.ReadAll(2 * (kSize + 4096));
  const auto records = Records(stream);
  ASSERT_EQ(records.size(), 2u) << "the first and third calls, whole; not the second";
  // Each record ends with its payload (16 MiB: no XDR padding); the header
  // before it (xid, credentials) is not compared, its bytes are arbitrary.
  for (size_t i = 0; i < records.size(); ++i) {
    const std::vector<uint8_t>& r = records[i];
    ASSERT_GE(r.size(), kSize);
    const uint8_t want = i == 0 ? 0x11 : 0x33;
    const auto payload = r.end() - static_cast<long>(kSize);
    EXPECT_EQ(std::count(payload, r.end(), want), static_cast<long>(kSize))
        << "record " << i << ": " << std::count(payload, r.end(), 0xEE)
        << " bytes of reused memory were sent";
  }
}

TEST(RpcConnectionTest, WithdrawingASentCallChangesNothing) {
  SilentPeer peer;
  auto conn = RpcConnection::Connect({"127.0.0.1", peer.port()}, 2s, nullptr);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  ASSERT_TRUE(peer.Accept());
  std::vector<uint8_t> small(100, 0x44);
  auto call = CallWithPayload(small);
  ASSERT_TRUE((*conn)->Send(call));
  EXPECT_FALSE((*conn)->Withdraw(call.get()));
  EXPECT_EQ((*conn)->outstanding(), 1u);  // its reply may still come
  const auto records = Records(peer.ReadAll(200));
  ASSERT_EQ(records.size(), 1u);
}

}  // namespace
}  // namespace floatmount::nfs
