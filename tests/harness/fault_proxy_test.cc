// Tests of FaultProxy against an in-process echo server: byte-exact
// forwarding, added latency without a throughput cap, the bandwidth cap, and
// each fault (cut, black hole, pause). Every wait is bounded.
#include "tests/harness/fault_proxy.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/test_sockets.h"

namespace floatmount::testing {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

class FaultProxyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(proxy_.Start()) << proxy_.error(); }

  // Sends `size` random bytes through the proxy and checks the echo is
  // identical. The receiver runs concurrently so large sizes do not block.
  void EchoExact(int fd, size_t size) {
    std::vector<char> out(size), in(size);
    std::mt19937_64 rng(size);
    std::generate(out.begin(), out.end(), [&] { return static_cast<char>(rng()); });
    bool received = false;
    std::thread reader([&] { received = RecvExact(fd, in.data(), in.size()); });
    const bool sent = SendAll(fd, out.data(), out.size());
    reader.join();
    ASSERT_TRUE(sent);
    ASSERT_TRUE(received);
    ASSERT_TRUE(out == in) << "echoed bytes differ";
  }

  // Median round trip of a 1-byte ping-pong.
  Clock::duration MedianRtt(int fd, int samples = 15) {
    std::vector<Clock::duration> rtts;
    for (int i = 0; i < samples; ++i) {
      char c = static_cast<char>(i), back = 0;
      const auto start = Clock::now();
      if (!SendAll(fd, &c, 1) || !RecvExact(fd, &back, 1)) return Clock::duration::max();
      rtts.push_back(Clock::now() - start);
    }
    std::sort(rtts.begin(), rtts.end());
    return rtts[rtts.size() / 2];
  }

  EchoServer echo_;
  FaultProxy proxy_{"127.0.0.1", 0, "127.0.0.1", echo_.port()};
};

TEST_F(FaultProxyTest, ForwardsBytesExactly) {
  const int fd = ConnectTo(proxy_.port());
  ASSERT_GE(fd, 0);
  EchoExact(fd, 1);
  EchoExact(fd, 3 * 1000 * 1000 + 7);
  EchoExact(fd, 16 << 20);
  EXPECT_EQ(proxy_.TotalAccepted(), 1u);
  EXPECT_EQ(proxy_.ActiveConnections(), 1);
  // The counters are bumped just after send() returns, so they may trail
  // what the client already received by a moment.
  const uint64_t total = 1u + 3000007u + (16u << 20);
  EXPECT_TRUE(WaitFor([&] { return proxy_.BytesFromTarget() == total; }))
      << proxy_.BytesFromTarget();
  EXPECT_EQ(proxy_.BytesToTarget(), total);
  close(fd);
  EXPECT_TRUE(WaitFor([&] { return proxy_.ActiveConnections() == 0; }));
  EXPECT_TRUE(WaitFor([&] { return echo_.open_connections() == 0; }));
}

TEST_F(FaultProxyTest, HalfCloseIsPassedOn) {
  const int fd = ConnectTo(proxy_.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "abc", 3));
  shutdown(fd, SHUT_WR);
  char buf[4] = {};
  ASSERT_TRUE(RecvExact(fd, buf, 3));
  EXPECT_STREQ(buf, "abc");
  EXPECT_EQ(recv(fd, buf, 1, 0), 0);  // the echo server saw EOF and closed
  close(fd);
}

TEST_F(FaultProxyTest, AddsLatency) {
  const int fd = ConnectTo(proxy_.port());
  ASSERT_GE(fd, 0);
  const auto base = MedianRtt(fd);
  proxy_.SetLatency(milliseconds(20));
  EXPECT_EQ(proxy_.latency(), milliseconds(20));
  const auto slow = MedianRtt(fd);
  EXPECT_GE(slow - base, milliseconds(19)) << "base " << base.count() << " slow " << slow.count();
  EXPECT_LT(slow - base, milliseconds(35)) << "base " << base.count() << " slow " << slow.count();
  proxy_.SetLatency(microseconds(0));
  EXPECT_LT(MedianRtt(fd), milliseconds(5));
  close(fd);
}

TEST_F(FaultProxyTest, LatencyDoesNotCapThroughput) {
  // 100 ms RTT. A proxy that waited out the delay per 256 KiB chunk would
  // move ~5 MB/s per direction (6+ s here); a delay line keeps the pipe full.
  proxy_.SetLatency(milliseconds(100));
  const int fd = ConnectTo(proxy_.port(), std::chrono::seconds(10));
  ASSERT_GE(fd, 0);
  const auto start = Clock::now();
  EchoExact(fd, 32 << 20);
  const auto elapsed = Clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::seconds(3));
  std::printf("32 MiB echoed through 100 ms RTT in %.2f s\n",
              std::chrono::duration<double>(elapsed).count());
  close(fd);
}

// Jitter lets two connections' bytes pass each other, never one
// connection's own.
TEST_F(FaultProxyTest, JitterReordersConnectionsButNotBytes) {
  proxy_.SetJitter(milliseconds(20));
  const int a = ConnectTo(proxy_.port());
  const int b = ConnectTo(proxy_.port());
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  std::string sent;
  for (int i = 0; i < 50; ++i) {  // separate chunks, each with its own delay
    const char c = static_cast<char>('A' + i % 26);
    ASSERT_TRUE(SendAll(a, &c, 1));
    sent += c;
    std::this_thread::sleep_for(microseconds(300));
  }
  std::string echoed(sent.size(), '\0');
  ASSERT_TRUE(RecvExact(a, echoed.data(), echoed.size()));
  EXPECT_EQ(echoed, sent) << "one connection's bytes were reordered";

  // Ping a, then b 5 ms later: without jitter a's echo is back before b is
  // pinged; with it, b's comes first about a third of the time.
  int b_first = 0;
  for (int i = 0; i < 40; ++i) {
    char c = 'x', back = 0;
    ASSERT_TRUE(SendAll(a, &c, 1));
    std::this_thread::sleep_for(milliseconds(5));
    ASSERT_TRUE(SendAll(b, &c, 1));
    pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    ASSERT_GT(poll(fds, 2, 5000), 0);
    if ((fds[1].revents & POLLIN) && !(fds[0].revents & POLLIN)) ++b_first;
    ASSERT_TRUE(RecvExact(a, &back, 1));
    ASSERT_TRUE(RecvExact(b, &back, 1));
  }
  EXPECT_GT(b_first, 0) << "the later connection's echo never came first";
  proxy_.SetJitter(microseconds(0));
  close(a);
  close(b);
}

TEST_F(FaultProxyTest, BandwidthCapHolds) {
  proxy_.SetBandwidth(4 << 20);  // 4 MiB/s each way
  const int fd = ConnectTo(proxy_.port());
  ASSERT_GE(fd, 0);
  const auto start = Clock::now();
  EchoExact(fd, 2 << 20);  // ~0.5 s per direction, pipelined
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_GT(seconds, 0.4);
  EXPECT_LT(seconds, 1.5);
  proxy_.SetBandwidth(0);
  const auto fast_start = Clock::now();
  EchoExact(fd, 8 << 20);
  EXPECT_LT(Clock::now() - fast_start, milliseconds(1000));
  close(fd);
}

TEST_F(FaultProxyTest, CutAllResetsConnectionsAndKeepsAccepting) {
  const int a = ConnectTo(proxy_.port());
  const int b = ConnectTo(proxy_.port());
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EchoExact(a, 1000);
  EchoExact(b, 1000);
  ASSERT_EQ(proxy_.ActiveConnections(), 2);

  proxy_.CutAll();
  EXPECT_EQ(proxy_.ActiveConnections(), 0);
  for (int fd : {a, b}) {
    char c;
    EXPECT_LE(recv(fd, &c, 1, 0), 0) << "connection should be closed or reset";
    close(fd);
  }
  EXPECT_TRUE(WaitFor([&] { return echo_.open_connections() == 0; }));

  const int c = ConnectTo(proxy_.port());
  ASSERT_GE(c, 0);
  EchoExact(c, 100000);
  EXPECT_EQ(proxy_.TotalAccepted(), 3u);
  close(c);
}

TEST_F(FaultProxyTest, BlackHoleForwardsNothingUntilLifted) {
  const int old_fd = ConnectTo(proxy_.port());
  ASSERT_GE(old_fd, 0);
  EchoExact(old_fd, 10);
  ASSERT_EQ(echo_.accepted(), 1);

  proxy_.SetBlackHole(true);
  ASSERT_TRUE(SendAll(old_fd, "ping", 4));
  const int new_fd = ConnectTo(proxy_.port());  // accepted by the proxy...
  ASSERT_GE(new_fd, 0);
  ASSERT_TRUE(SendAll(new_fd, "pong", 4));
  EXPECT_FALSE(Readable(old_fd, milliseconds(300)));
  EXPECT_FALSE(Readable(new_fd, milliseconds(50)));
  EXPECT_EQ(echo_.accepted(), 1);  // ...but never connected upstream

  proxy_.SetBlackHole(false);  // the partition heals: everything flows
  char buf[5] = {};
  ASSERT_TRUE(RecvExact(old_fd, buf, 4));
  EXPECT_STREQ(buf, "ping");
  ASSERT_TRUE(RecvExact(new_fd, buf, 4));
  EXPECT_STREQ(buf, "pong");
  EXPECT_EQ(echo_.accepted(), 2);
  close(old_fd);
  close(new_fd);
}

TEST_F(FaultProxyTest, PauseRefusesNewConnectionsOnly) {
  const int old_fd = ConnectTo(proxy_.port());
  ASSERT_GE(old_fd, 0);
  EchoExact(old_fd, 10);  // accepted before the pause
  proxy_.Pause();
  const int refused = ConnectTo(proxy_.port());  // the handshake completes in the kernel
  if (refused >= 0) {
    char c;
    EXPECT_LE(recv(refused, &c, 1, 0), 0);
    close(refused);
  }
  EXPECT_TRUE(WaitFor([&] { return proxy_.TotalRefused() == 1; }));
  EchoExact(old_fd, 1000);
  proxy_.Resume();
  const int fd = ConnectTo(proxy_.port());
  ASSERT_GE(fd, 0);
  EchoExact(fd, 1000);
  EXPECT_EQ(proxy_.TotalAccepted(), 2u);
  close(fd);
  close(old_fd);
}

TEST_F(FaultProxyTest, StopResetsClientsAndJoins) {
  const int fd = ConnectTo(proxy_.port());
  ASSERT_GE(fd, 0);
  EchoExact(fd, 1000);
  proxy_.SetBlackHole(true);  // threads parked in every wait state
  const auto start = Clock::now();
  proxy_.Stop();
  EXPECT_LT(Clock::now() - start, milliseconds(1000));
  char c;
  EXPECT_LE(recv(fd, &c, 1, 0), 0);
  close(fd);
  EXPECT_LT(ConnectTo(proxy_.port(), milliseconds(500)), 0);
}

TEST(FaultProxyStandaloneTest, UnreachableTargetResetsClient) {
  FaultProxy proxy("127.0.0.1", 0, "127.0.0.1", 1);  // nothing listens on port 1
  ASSERT_TRUE(proxy.Start()) << proxy.error();
  const int fd = ConnectTo(proxy.port());
  ASSERT_GE(fd, 0);
  char c;
  EXPECT_LE(recv(fd, &c, 1, 0), 0);
  close(fd);
  EXPECT_TRUE(WaitFor([&] { return proxy.ActiveConnections() == 0; }));
}

}  // namespace
}  // namespace floatmount::testing
