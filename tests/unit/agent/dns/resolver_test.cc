// Tests of agent/dns/resolver.h: the dns_server option, numeric hosts, sorting,
// ResolverLoop's timing and callbacks against a fake Resolver, and
// AresResolver against DNS servers on loopback: one that never answers,
// nothing at all, and a real dnsmasq with the test's records (DnsServer;
// those skip without dnsmasq, or fail under FLOATMOUNT_REQUIRE_INTEGRATION).
// No root needed.
#include "agent/dns/resolver.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "tests/harness/dns_server.h"
#include "tests/harness/integration_env.h"
#include "tests/harness/net_util.h"

namespace floatmount::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

// Polls `cond` until it holds or `timeout` passes.
template <typename Cond>
bool WaitFor(Cond cond, milliseconds timeout = milliseconds(5000)) {
  const auto deadline = Clock::now() + timeout;
  while (!cond()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

std::vector<std::string> Addresses(const std::vector<ResolvedAddress>& resolved) {
  std::vector<std::string> out;
  for (const auto& r : resolved) out.push_back(r.address);
  return out;
}

std::vector<ResolvedAddress> Set(std::vector<std::string> addresses, seconds ttl = seconds(60)) {
  std::vector<ResolvedAddress> out;
  for (auto& a : addresses) out.push_back({std::move(a), ttl});
  return out;
}

long ElapsedMs(Clock::time_point since) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(Clock::now() - since).count());
}

// ---------------------------------------------------------------- dns_server

std::string Normalized(const std::string& value) {
  std::string normalized, error;
  if (!ParseDnsServer(value, &normalized, &error)) return "error: " + error;
  return normalized;
}

TEST(ParseDnsServerTest, AcceptsNumericAddressesWithOptionalPort) {
  EXPECT_EQ(Normalized("127.0.0.1"), "127.0.0.1:53");
  EXPECT_EQ(Normalized("10.1.2.3:5353"), "10.1.2.3:5353");
  EXPECT_EQ(Normalized("10.1.2.3:00053"), "10.1.2.3:53");
  EXPECT_EQ(Normalized("[::1]"), "[::1]:53");
  EXPECT_EQ(Normalized("[::1]:5353"), "[::1]:5353");
  EXPECT_EQ(Normalized("[fd00:0:0::0:53]:65535"), "[fd00::53]:65535");
  std::string normalized;
  EXPECT_TRUE(ParseDnsServer("127.0.0.1", &normalized, nullptr));
  EXPECT_TRUE(ParseDnsServer("127.0.0.1", nullptr, nullptr));
}

TEST(ParseDnsServerTest, RejectsNamesBadPortsAndBrokenBrackets) {
  for (const char* bad : {"",
                          "dns.example.com",
                          "dns.example.com:53",
                          "127.0.0.1:",
                          "127.0.0.1:0",
                          "127.0.0.1:65536",
                          "127.0.0.1:123456",
                          "127.0.0.1:5x",
                          "127.0.0.1:-1",
                          "1.2.3",
                          "256.1.1.1",
                          "[::1",
                          "[::1]53",
                          "[::1]:",
                          "[127.0.0.1]:53",
                          "[dns.example.com]",
                          "[fd00::zz]",
                          " 127.0.0.1",
                          "fd00::1",
                          "::1:53"}) {
    std::string normalized = "untouched", error;
    EXPECT_FALSE(ParseDnsServer(bad, &normalized, &error)) << bad;
    EXPECT_EQ(normalized, "untouched") << bad;
    EXPECT_NE(error.find(std::string("dns_server '") + bad + "'"), std::string::npos) << error;
  }
  std::string error;
  ParseDnsServer("dns.example.com", nullptr, &error);
  EXPECT_NE(error.find("not a numeric IPv4 address"), std::string::npos) << error;
  ParseDnsServer("fd00::1:53", nullptr, &error);
  EXPECT_NE(error.find("must be in brackets"), std::string::npos) << error;
  ParseDnsServer("127.0.0.1:0", nullptr, &error);
  EXPECT_NE(error.find("1 to 65535"), std::string::npos) << error;
  EXPECT_FALSE(ParseDnsServer("", nullptr, nullptr));
}

// --------------------------------------------------------- numeric and sort

TEST(ResolverTest, NumericAddressesResolveToThemselves) {
  EXPECT_EQ(NumericAddress("127.0.0.1"), (ResolvedAddress{"127.0.0.1", kNumericAddressTtl}));
  EXPECT_EQ(NumericAddress("::1"), (ResolvedAddress{"::1", kNumericAddressTtl}));
  EXPECT_EQ(NumericAddress("[0:0::1]"), (ResolvedAddress{"::1", kNumericAddressTtl}));
  EXPECT_EQ(NumericAddress("nfs.test"), std::nullopt);
  EXPECT_EQ(NumericAddress("[127.0.0.1]"), std::nullopt);
  EXPECT_EQ(NumericAddress(""), std::nullopt);
}

TEST(ResolverTest, AresResolverAnswersANumericHostWithoutDns) {
  // The DNS server would not answer (nothing listens on port 1): a lookup
  // that asked it would fail.
  AresResolver resolver({.dns_server = "127.0.0.1:1", .timeout = milliseconds(200)});
  for (const std::string host : {"127.0.0.7", "[::1]", "fd00::0:7"}) {
    auto result = resolver.Resolve(host);
    ASSERT_TRUE(result.ok()) << host << ": " << result.status().ToString();
    ASSERT_EQ(result->size(), 1u);
    EXPECT_EQ((*result)[0].address, NumericAddress(host)->address);
    EXPECT_EQ((*result)[0].ttl, kNumericAddressTtl);
  }
}

TEST(ResolverTest, AresResolverWithoutDnsServerReadsTheHostsFile) {
  // The system's order (files, then DNS): localhost is in /etc/hosts, so
  // no DNS server is needed.
  auto result = AresResolver().Resolve("localhost");
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  const auto addresses = Addresses(*result);
  EXPECT_TRUE(std::find(addresses.begin(), addresses.end(), "127.0.0.1") != addresses.end() ||
              std::find(addresses.begin(), addresses.end(), "::1") != addresses.end())
      << ::testing::PrintToString(addresses);
}

TEST(ResolverTest, AresResolverRejectsBadInput) {
  AresResolver bad_server({.dns_server = "dns.example.com"});
  auto result = bad_server.Resolve("nfs.test");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().kind(), nfs::Status::Kind::kInvalidArgument);
  EXPECT_NE(result.status().message().find("dns.example.com"), std::string::npos);

  AresResolver resolver;
  result = resolver.Resolve("");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().kind(), nfs::Status::Kind::kInvalidArgument);
  EXPECT_EQ(resolver.dns_server(), "");
  EXPECT_EQ(AresResolver({.dns_server = "[::1]"}).dns_server(), "[::1]:53");
}

TEST(ResolverTest, SortAndMergePutsIpv4FirstInNumericOrderAndKeepsTheShorterTtl) {
  const auto merged = SortAndMerge({{"::1", seconds(5)},
                                    {"127.0.0.10", seconds(5)},
                                    {"fd00::1", seconds(9)},
                                    {"127.0.0.9", seconds(3)},
                                    {"127.0.0.10", seconds(2)},
                                    {"0:0::1", seconds(1)},
                                    {"not an address", seconds(1)}});
  EXPECT_EQ(merged, (std::vector<ResolvedAddress>{{"127.0.0.9", seconds(3)},
                                                  {"127.0.0.10", seconds(2)},
                                                  {"::1", seconds(1)},
                                                  {"fd00::1", seconds(9)}}));
}

TEST(ResolverTest, IntervalFollowsTheShortestTtlWithinBounds) {
  const ResolverLoopOptions defaults;
  EXPECT_EQ(ResolverLoop::IntervalFor(Set({"127.0.0.1"}, seconds(0)), defaults),
            kMinResolveInterval);
  EXPECT_EQ(ResolverLoop::IntervalFor(Set({"127.0.0.1"}, seconds(1)), defaults),
            kMinResolveInterval);
  EXPECT_EQ(
      ResolverLoop::IntervalFor({{"127.0.0.1", seconds(60)}, {"127.0.0.2", seconds(30)}}, defaults),
      seconds(30));
  EXPECT_EQ(ResolverLoop::IntervalFor(Set({"127.0.0.1"}, seconds(3600)), defaults),
            kMaxResolveInterval);
  EXPECT_EQ(ResolverLoop::IntervalFor({*NumericAddress("127.0.0.1")}, defaults),
            kMaxResolveInterval);
  EXPECT_EQ(kMinResolveInterval, seconds(5));
  EXPECT_EQ(kMaxResolveInterval, seconds(300));
}

// ---------------------------------------------------- ResolverLoop, faked

// Answers with whatever the test set last; counts calls.
class FakeResolver : public Resolver {
 public:
  explicit FakeResolver(nfs::Result<std::vector<ResolvedAddress>> answer)
      : answer_(std::move(answer)) {}

  nfs::Result<std::vector<ResolvedAddress>> Resolve(const std::string& host) override {
    std::unique_lock<std::mutex> lock(mu_);
    hosts_.push_back(host);
    held_cv_.wait(lock, [this] { return !held_; });
    return answer_;
  }
  // While held, a lookup that starts waits in Resolve until Release(): a
  // test can then act while a lookup is under way, whatever the speed of
  // the machine.
  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_ = false;
    }
    held_cv_.notify_all();
  }
  void SetAnswer(nfs::Result<std::vector<ResolvedAddress>> answer) {
    std::lock_guard<std::mutex> lock(mu_);
    answer_ = std::move(answer);
  }
  int calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(hosts_.size());
  }
  std::string last_host() const {
    std::lock_guard<std::mutex> lock(mu_);
    return hosts_.empty() ? "" : hosts_.back();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable held_cv_;
  nfs::Result<std::vector<ResolvedAddress>> answer_;  // GUARDED_BY(mu_)
  std::vector<std::string> hosts_;                    // GUARDED_BY(mu_)
  bool held_ = false;                                 // GUARDED_BY(mu_)
};

// Records every callback.
class Changes {
 public:
  ResolverLoop::Callback callback() {
    return [this](const std::vector<ResolvedAddress>& set) {
      std::lock_guard<std::mutex> lock(mu_);
      sets_.push_back(Addresses(set));
    };
  }
  size_t count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sets_.size();
  }
  std::vector<std::string> last() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sets_.empty() ? std::vector<std::string>{} : sets_.back();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::vector<std::string>> sets_;  // GUARDED_BY(mu_)
};

// Looks up again every 10 ms whatever the TTL; nudges act at once.
constexpr ResolverLoopOptions kFast = {.min_interval = milliseconds(10),
                                       .max_interval = milliseconds(10),
                                       .nudge_min_gap = milliseconds(0)};
// Never looks up again by itself (within a test's time).
constexpr ResolverLoopOptions kNever = {.min_interval = std::chrono::hours(1),
                                        .max_interval = std::chrono::hours(1),
                                        .nudge_min_gap = milliseconds(0)};

TEST(ResolverLoopTest, CallsBackOnlyWhenTheSetChanges) {
  auto fake = std::make_shared<FakeResolver>(Set({"127.0.0.3", "127.0.0.2"}));
  Changes changes;
  ResolverLoop loop(fake, "nfs.test", {}, changes.callback(), kFast);
  // No initial set: the first lookup runs at once and is a change.
  ASSERT_TRUE(WaitFor([&] { return changes.count() == 1; }));
  EXPECT_EQ(changes.last(), (std::vector<std::string>{"127.0.0.2", "127.0.0.3"}));
  EXPECT_EQ(fake->last_host(), "nfs.test");

  // Same addresses, other TTLs and order: not a change.
  fake->SetAnswer(Set({"127.0.0.2", "127.0.0.3", "127.0.0.2"}, seconds(7)));
  const uint64_t seen = loop.lookups();
  ASSERT_TRUE(WaitFor([&] { return loop.lookups() >= seen + 5; }));
  EXPECT_EQ(changes.count(), 1u);
  EXPECT_EQ(loop.Current(), Set({"127.0.0.2", "127.0.0.3"}, seconds(7)));

  fake->SetAnswer(Set({"127.0.0.3"}));
  ASSERT_TRUE(WaitFor([&] { return changes.count() == 2; }));
  EXPECT_EQ(changes.last(), std::vector<std::string>{"127.0.0.3"});
  EXPECT_EQ(Addresses(loop.Current()), std::vector<std::string>{"127.0.0.3"});
}

TEST(ResolverLoopTest, TheInitialSetIsNotReported) {
  auto fake = std::make_shared<FakeResolver>(Set({"127.0.0.2", "::2"}));
  Changes changes;
  ResolverLoop loop(fake, "nfs.test", Set({"::2", "127.0.0.2"}), changes.callback(), kFast);
  ASSERT_TRUE(WaitFor([&] { return loop.lookups() >= 3; }));
  EXPECT_EQ(changes.count(), 0u);
  EXPECT_EQ(Addresses(loop.Current()), (std::vector<std::string>{"127.0.0.2", "::2"}));
}

TEST(ResolverLoopTest, KeepsTheLastGoodSetWhenLookupsFail) {
  auto fake = std::make_shared<FakeResolver>(Set({"127.0.0.2"}));
  Changes changes;
  ResolverLoop loop(fake, "nfs.test", {}, changes.callback(), kFast);
  ASSERT_TRUE(WaitFor([&] { return changes.count() == 1; }));

  fake->SetAnswer(nfs::Status::Transport("no address for 'nfs.test' (DNS: Domain name not found)"));
  uint64_t seen = loop.lookups();
  ASSERT_TRUE(WaitFor([&] { return loop.lookups() >= seen + 3; }));
  EXPECT_EQ(changes.count(), 1u);
  EXPECT_EQ(Addresses(loop.Current()), std::vector<std::string>{"127.0.0.2"});

  // An empty success is no better than a failure.
  fake->SetAnswer(std::vector<ResolvedAddress>{});
  seen = loop.lookups();
  ASSERT_TRUE(WaitFor([&] { return loop.lookups() >= seen + 2; }));
  EXPECT_EQ(changes.count(), 1u);
  EXPECT_EQ(Addresses(loop.Current()), std::vector<std::string>{"127.0.0.2"});

  // Once DNS answers again, a new set is reported.
  fake->SetAnswer(Set({"127.0.0.4"}));
  ASSERT_TRUE(WaitFor([&] { return changes.count() == 2; }));
  EXPECT_EQ(changes.last(), std::vector<std::string>{"127.0.0.4"});
}

TEST(ResolverLoopTest, FailuresBackOffFromTheMinimumIntervalToTheMaximum) {
  auto fake = std::make_shared<FakeResolver>(nfs::Status::Transport("DNS down"));
  Changes changes;
  // Failures wait 20, 40, 80, 80, ... ms.
  ResolverLoop loop(fake, "nfs.test", {}, changes.callback(),
                    {.min_interval = milliseconds(20),
                     .max_interval = milliseconds(80),
                     .nudge_min_gap = milliseconds(0)});
  ASSERT_TRUE(WaitFor([&] { return fake->calls() >= 1; }));
  const auto start = Clock::now();
  ASSERT_TRUE(WaitFor([&] { return fake->calls() >= 5; }));
  // 20 + 40 + 80 + 80 = 220 ms at least between the 1st and the 5th.
  EXPECT_GE(ElapsedMs(start), 200);
}

TEST(ResolverLoopTest, NudgeResolvesPromptly) {
  auto fake = std::make_shared<FakeResolver>(Set({"127.0.0.2"}));
  Changes changes;
  ResolverLoop loop(fake, "nfs.test", Set({"127.0.0.2", "127.0.0.3"}), changes.callback(), kNever);
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(fake->calls(), 0);  // the first lookup waits for the initial set's interval

  // Without the nudge the next lookup is an hour away.
  loop.Nudge();
  ASSERT_TRUE(WaitFor([&] { return changes.count() == 1; }, testing::Scaled(milliseconds(5000))));
  EXPECT_EQ(changes.last(), std::vector<std::string>{"127.0.0.2"});
  EXPECT_EQ(fake->calls(), 1);

  // Nudges made while a lookup is under way are merged into one next
  // lookup, not one each. The fake holds the lookup, so every nudge below
  // lands during it, however fast or slow the machine.
  fake->SetAnswer(Set({"127.0.0.5"}));
  fake->Hold();
  loop.Nudge();
  ASSERT_TRUE(WaitFor([&] { return fake->calls() == 2; }, testing::Scaled(milliseconds(5000))));
  for (int i = 0; i < 16; ++i) loop.Nudge();
  fake->Release();
  ASSERT_TRUE(WaitFor([&] { return loop.lookups() == 3; }, testing::Scaled(milliseconds(5000))));
  EXPECT_EQ(changes.count(), 2u);
  // The merged lookup answered every nudge: no fourth one follows (a pause
  // here can only miss a wrong extra lookup, never fail a right run).
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(fake->calls(), 3);
}

TEST(ResolverLoopTest, NudgesAreSpacedByTheMinimumGap) {
  auto fake = std::make_shared<FakeResolver>(Set({"127.0.0.2"}));
  Changes changes;
  ResolverLoopOptions options = kNever;
  options.nudge_min_gap = milliseconds(200);
  ResolverLoop loop(fake, "nfs.test", Set({"127.0.0.2"}), changes.callback(), options);
  loop.Nudge();  // the first nudge is not held back
  ASSERT_TRUE(WaitFor([&] { return loop.lookups() == 1; }, milliseconds(1000)));
  const auto first = Clock::now();
  loop.Nudge();
  ASSERT_TRUE(WaitFor([&] { return loop.lookups() == 2; }, milliseconds(2000)));
  EXPECT_GE(ElapsedMs(first), 150);
}

TEST(ResolverLoopTest, DestructorStopsQuicklyWhileWaiting) {
  auto fake = std::make_shared<FakeResolver>(Set({"127.0.0.2"}));
  Changes changes;
  auto loop = std::make_unique<ResolverLoop>(fake, "nfs.test", Set({"127.0.0.2"}),
                                             changes.callback(), kNever);
  std::this_thread::sleep_for(milliseconds(20));
  const auto start = Clock::now();
  loop.reset();
  EXPECT_LT(ElapsedMs(start), testing::Scaled(milliseconds(500)).count());
  EXPECT_EQ(fake->calls(), 0);
}

// A resolver that hangs until asked to stop, like a DNS server that never
// answers with a long timeout.
class HangingResolver : public Resolver {
 public:
  nfs::Result<std::vector<ResolvedAddress>> Resolve(const std::string&) override {
    return nfs::Status::Internal("use ResolveStoppable");
  }
  nfs::Result<std::vector<ResolvedAddress>> ResolveStoppable(const std::string&,
                                                             std::stop_token stop) override {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lock(mu);
    entered = true;
    cv.wait(lock, stop, [] { return false; });
    return nfs::Status::Shutdown("stopped");
  }
  std::atomic<bool> entered{false};
};

TEST(ResolverLoopTest, DestructorInterruptsALookupUnderWay) {
  auto hanging = std::make_shared<HangingResolver>();
  Changes changes;
  auto loop = std::make_unique<ResolverLoop>(hanging, "nfs.test", std::vector<ResolvedAddress>{},
                                             changes.callback(), kFast);
  ASSERT_TRUE(WaitFor([&] { return hanging->entered.load(); }));
  const auto start = Clock::now();
  loop.reset();
  EXPECT_LT(ElapsedMs(start), testing::Scaled(milliseconds(500)).count());
  EXPECT_EQ(changes.count(), 0u);
}

// ------------------------------------------- AresResolver, servers that fail

// A UDP socket on loopback that receives queries and never answers.
class SilentDnsServer {
 public:
  SilentDnsServer() {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      port_ = testing::LocalPort(fd_);
    }
  }
  ~SilentDnsServer() {
    if (fd_ >= 0) close(fd_);
  }
  uint16_t port() const { return port_; }
  std::string spec() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

TEST(AresResolverFailureTest, ASilentServerFailsWithinTheTimeout) {
  SilentDnsServer silent;
  ASSERT_NE(silent.port(), 0);
  AresResolver resolver({.dns_server = silent.spec(), .timeout = milliseconds(1000)});
  const auto start = Clock::now();
  auto result = resolver.Resolve("nfs.test");
  const long elapsed = ElapsedMs(start);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().kind(), nfs::Status::Kind::kTransport);
  EXPECT_NE(result.status().message().find("nfs.test"), std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find(silent.spec()), std::string::npos)
      << result.status().message();
  EXPECT_GE(elapsed, 900);
  EXPECT_LT(elapsed, testing::Scaled(milliseconds(2500)).count());
}

TEST(AresResolverFailureTest, NothingListeningFailsWithinTheTimeout) {
  std::string error;
  const uint16_t port = testing::PickFreePort("127.0.0.1", &error);
  ASSERT_NE(port, 0) << error;
  const std::string spec = "127.0.0.1:" + std::to_string(port);
  AresResolver resolver({.dns_server = spec, .timeout = milliseconds(1500)});
  const auto start = Clock::now();
  auto result = resolver.Resolve("nfs.test");
  ASSERT_FALSE(result.ok());
  EXPECT_LT(ElapsedMs(start), testing::Scaled(milliseconds(3000)).count());
  EXPECT_EQ(result.status().kind(), nfs::Status::Kind::kTransport);
  EXPECT_NE(result.status().message().find("DNS lookup of 'nfs.test' failed"), std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find(spec), std::string::npos) << result.status().message();
}

TEST(AresResolverFailureTest, ResolverLoopStopsALookupOfASilentServerPromptly) {
  SilentDnsServer silent;
  ASSERT_NE(silent.port(), 0);
  auto resolver = std::make_shared<AresResolver>(
      AresResolverOptions{.dns_server = silent.spec(), .timeout = milliseconds(10000)});
  Changes changes;
  auto loop = std::make_unique<ResolverLoop>(resolver, "nfs.test", std::vector<ResolvedAddress>{},
                                             changes.callback(), kFast);
  std::this_thread::sleep_for(milliseconds(100));  // the lookup is under way
  const auto start = Clock::now();
  loop.reset();
  EXPECT_LT(ElapsedMs(start), testing::Scaled(milliseconds(1000)).count());
  EXPECT_EQ(changes.count(), 0u);
}

// ------------------------------------------ AresResolver against dnsmasq

class AresResolverDnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string missing = testing::DnsServer::MissingPrerequisite();
    FLOATMOUNT_REQUIRE(missing.empty(), missing);
  }

  static constexpr int kTtl = 5;
};

TEST_F(AresResolverDnsTest, ReturnsEveryRecordOfTheNameAndFollowsChanges) {
  testing::DnsServer dns(
      {.names = {{"nfs.test", {"127.0.0.3", "127.0.0.2", "127.0.0.4"}}}, .ttl = kTtl});
  ASSERT_TRUE(dns.Start()) << dns.error();
  AresResolver resolver({.dns_server = dns.server_spec()});
  EXPECT_EQ(resolver.dns_server(), dns.server_spec());

  auto result = resolver.Resolve("nfs.test");
  ASSERT_TRUE(result.ok()) << result.status().ToString() << "\n" << dns.LogTail();
  EXPECT_EQ(Addresses(*result), (std::vector<std::string>{"127.0.0.2", "127.0.0.3", "127.0.0.4"}));
  for (const auto& r : *result) {
    EXPECT_LE(r.ttl, seconds(kTtl)) << r.address;
    EXPECT_GT(r.ttl, seconds(0)) << r.address;
  }

  ASSERT_TRUE(dns.SetAddresses("nfs.test", {"127.0.0.4", "127.0.0.2"})) << dns.error();
  result = resolver.Resolve("nfs.test");
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(Addresses(*result), (std::vector<std::string>{"127.0.0.2", "127.0.0.4"}));
}

TEST_F(AresResolverDnsTest, ReturnsIpv4ThenIpv6) {
  testing::DnsServer dns({.names = {{"dual.test", {"fd00::5", "127.0.0.5", "fd00::4"}}}});
  ASSERT_TRUE(dns.Start()) << dns.error();
  auto result = AresResolver({.dns_server = dns.server_spec()}).Resolve("dual.test");
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(Addresses(*result), (std::vector<std::string>{"127.0.0.5", "fd00::4", "fd00::5"}));
}

TEST_F(AresResolverDnsTest, AsksADnsServerOnIpv6Loopback) {
  testing::DnsServer dns({.names = {{"nfs.test", {"127.0.0.2"}}}, .listen_address = "::1"});
  ASSERT_TRUE(dns.Start()) << dns.error();
  ASSERT_EQ(dns.server_spec().front(), '[');
  auto result = AresResolver({.dns_server = dns.server_spec()}).Resolve("nfs.test");
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(Addresses(*result), std::vector<std::string>{"127.0.0.2"});
}

TEST_F(AresResolverDnsTest, AnUnknownNameIsAClearErrorAndHostsFileIsNotUsed) {
  testing::DnsServer dns({.names = {{"nfs.test", {"127.0.0.2"}}}});
  ASSERT_TRUE(dns.Start()) << dns.error();
  AresResolver resolver({.dns_server = dns.server_spec()});
  const auto start = Clock::now();
  auto result = resolver.Resolve("unknown.test");
  ASSERT_FALSE(result.ok());
  EXPECT_LT(ElapsedMs(start), testing::Scaled(milliseconds(2000)).count());  // NXDOMAIN is final, no retries
  EXPECT_EQ(result.status().kind(), nfs::Status::Kind::kTransport);
  EXPECT_NE(result.status().message().find("no address for 'unknown.test'"), std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find(dns.server_spec()), std::string::npos)
      << result.status().message();

  // With dns_server, only DNS is asked: /etc/hosts names this host's name
  // (and localhost), the test DNS server does not.
  char hostname[256] = {};
  ASSERT_EQ(gethostname(hostname, sizeof(hostname) - 1), 0);
  result = resolver.Resolve(hostname);
  EXPECT_FALSE(result.ok()) << hostname << " came from somewhere else than " << dns.server_spec();
}

TEST_F(AresResolverDnsTest, ResolverLoopFollowsTheServer) {
  testing::DnsServer dns({.names = {{"nfs.test", {"127.0.0.2", "127.0.0.3"}}}, .ttl = 1});
  ASSERT_TRUE(dns.Start()) << dns.error();
  auto resolver =
      std::make_shared<AresResolver>(AresResolverOptions{.dns_server = dns.server_spec()});
  auto initial = resolver->Resolve("nfs.test");
  ASSERT_TRUE(initial.ok()) << initial.status().ToString();
  Changes changes;
  ResolverLoop loop(resolver, "nfs.test", *initial, changes.callback(),
                    {.min_interval = milliseconds(50),
                     .max_interval = milliseconds(200),
                     .nudge_min_gap = milliseconds(0)});

  ASSERT_TRUE(dns.SetAddresses("nfs.test", {"127.0.0.3", "127.0.0.4", "::4"})) << dns.error();
  ASSERT_TRUE(WaitFor([&] { return changes.count() == 1; }));
  EXPECT_EQ(changes.last(), (std::vector<std::string>{"127.0.0.3", "127.0.0.4", "::4"}));

  // The name disappears: the loop keeps what it had.
  ASSERT_TRUE(dns.SetAddresses("nfs.test", {})) << dns.error();
  const uint64_t seen = loop.lookups();
  ASSERT_TRUE(WaitFor([&] { return loop.lookups() >= seen + 2; }));
  EXPECT_EQ(changes.count(), 1u);
  EXPECT_EQ(Addresses(loop.Current()), (std::vector<std::string>{"127.0.0.3", "127.0.0.4", "::4"}));
}

}  // namespace
}  // namespace floatmount::agent
