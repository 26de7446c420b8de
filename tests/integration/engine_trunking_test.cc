// The engine over several addresses of one server (the floating IPs a
// round-robin DNS name returns): three proxies on 127.0.0.2-4, same port,
// in front of one ganesha. Connections spread over all three; when one
// address dies, its connections move to the others and a large write goes
// on without an error and byte-identical; when it returns it takes back its
// share; an address that leaves DNS is drained; a per-address cap holds.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <sstream>

#include "nfs/v4/connection_pick.h"
#include "tests/harness/fault_proxy.h"
#include "tests/integration/engine_fixture.h"

namespace floatmount::testing {
namespace {

using namespace std::chrono_literals;

class TrunkingTest : public EngineTest {
 protected:
  TrunkingTest() { ganesha_only_ = "not adapted to knfsd yet (reads ganesha's export dir)"; }
  void SetUp() override {
    EngineTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(StartProxy(i));
  }
  bool StartProxy(int i) {
    auto proxy = std::make_unique<FaultProxy>(Address(i), port_, server_->address(), server_->port());
    if (!proxy->Start()) {
      ADD_FAILURE() << Address(i) << ": " << proxy->error();
      return false;
    }
    port_ = proxy->port();
    proxies_[i] = std::move(proxy);
    return true;
  }
  static std::string Address(int i) { return "127.0.0." + std::to_string(2 + i); }
  nfs::Nfs41Options ThreeAddresses(int nconnect) const {
    nfs::Nfs41Options o = Options(nconnect);
    o.endpoints.clear();
    for (int i = 0; i < 3; ++i) o.endpoints.push_back({Address(i), port_});
    return o;
  }
  // Live connections per address.
  static std::map<std::string, int> Spread(const nfs::Nfs41Client& client) {
    std::map<std::string, int> spread;
    for (const auto& c : client.info().connections) {
      if (c.up) ++spread[c.endpoint.address];
    }
    return spread;
  }
  static bool WaitForSpread(const nfs::Nfs41Client& client,
                            const std::function<bool(std::map<std::string, int>)>& ok,
                            std::chrono::seconds timeout = 20s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (ok(Spread(client))) return true;
      std::this_thread::sleep_for(50ms);
    }
    return ok(Spread(client));
  }
  uint16_t port_ = 0;
  std::unique_ptr<FaultProxy> proxies_[3];
};

std::string Show(const std::map<std::string, int>& spread) {
  std::string out;
  for (const auto& [a, n] : spread) out += a + "=" + std::to_string(n) + " ";
  return out;
}

TEST_F(TrunkingTest, ConnectionsSpreadOverEveryAddress) {
  auto client = MountOrFail(ThreeAddresses(16));
  ASSERT_TRUE(client);
  auto even = [](std::map<std::string, int> s) {
    return s.size() == 3 && s[Address(0)] >= 5 && s[Address(1)] >= 5 && s[Address(2)] >= 5;
  };
  EXPECT_TRUE(WaitForSpread(*client, even)) << Show(Spread(*client));
  EXPECT_TRUE(client->info().excluded.empty());
}

TEST_F(TrunkingTest, AnAddressThatDiesLosesItsConnectionsWithoutFailingCallsAndTakesThemBack) {
  auto client = MountOrFail(ThreeAddresses(12));
  ASSERT_TRUE(client);
  ASSERT_TRUE(WaitForSpread(*client, [](auto s) { return s.size() == 3; })) << Show(Spread(*client));
  nfs::SyncClient sync(client.get());
  const std::vector<uint8_t> data = RandomBytes(DataSize(768 << 20), 21);
  nfs::OpenResult file = CreateFile(sync, "failover.bin");
  auto writer = std::async(std::launch::async,
                           [&] { return WriteAll(*client, file.fh, file.file.get(), data); });
  // Kill the second address's proxy once the write is well under way.
  while (proxies_[1]->BytesToTarget() < data.size() / 12 &&
         writer.wait_for(0ms) != std::future_status::ready) {
    std::this_thread::sleep_for(5ms);
  }
  proxies_[1]->Stop();
  EXPECT_TRUE(WaitForSpread(*client, [](auto s) { return s.count(Address(1)) == 0 && s[Address(0)] + s[Address(2)] == 12; }))
      << Show(Spread(*client));
  const nfs::Status written = writer.get();
  ASSERT_TRUE(written.ok()) << written.ToString();
  EXPECT_EQ(ReadLocalFile(server_->export_dir() + "/failover.bin"), data);

  // The address comes back: it gets its share again.
  ASSERT_TRUE(StartProxy(1));
  EXPECT_TRUE(WaitForSpread(*client, [](auto s) { return s[Address(1)] == 4 && s[Address(0)] == 4 && s[Address(2)] == 4; }))
      << Show(Spread(*client));
}

// Issue 15: a floating IP moved while this client's connections to it stay
// open and look alive: nothing answers on them and no reset comes (the node
// that had the IP went silent and its packets are dropped), and new
// connections to the address are accepted but never answered. As in the
// kernel client, a connection silent for timeo with calls outstanding is
// deemed dead: its calls go out again on the other addresses. The write
// finishes byte-identical, and once the silence is known no call waits on
// the silent address again.
TEST_F(TrunkingTest, AnAddressThatGoesSilentBehindLiveConnectionsLosesItsCallsAfterTimeo) {
  nfs::Nfs41Options o = ThreeAddresses(12);
  o.timeo = 2s;
  auto client = MountOrFail(o);
  ASSERT_TRUE(client);
  ASSERT_TRUE(WaitForSpread(*client, [](auto s) { return s.size() == 3; })) << Show(Spread(*client));
  nfs::SyncClient sync(client.get());
  const std::vector<uint8_t> data = RandomBytes(DataSize(256 << 20), 22);
  nfs::OpenResult file = CreateFile(sync, "silent.bin");
  auto writer = std::async(std::launch::async,
                           [&] { return WriteAll(*client, file.fh, file.file.get(), data); });
  while (proxies_[1]->BytesToTarget() < data.size() / 12 &&
         writer.wait_for(0ms) != std::future_status::ready) {
    std::this_thread::sleep_for(5ms);
  }
  proxies_[1]->SetBlackHole(true);
  const auto silent = std::chrono::steady_clock::now();
  const nfs::Status written = writer.get();
  ASSERT_TRUE(written.ok()) << written.ToString();
  EXPECT_EQ(ReadLocalFile(server_->export_dir() + "/silent.bin"), data);

  // Every call from now on is answered well within timeo: none is placed on
  // a connection to the silent address (old or new) any more.
  std::this_thread::sleep_until(silent + 3 * o.timeo);
  for (int i = 0; i < 40; ++i) {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(sync.GetAttr(client->root()).ok());
    EXPECT_LT(std::chrono::steady_clock::now() - start, o.timeo / 2) << "call " << i;
  }
  // Unmounted while the address is still silent: a connection set-up held
  // there ends with the client (released later, its EXCHANGE_ID would meet
  // a destroyed client ID and only make noise in the log). The open file
  // goes first: its last reference unregisters it from the engine.
  file.file.reset();
  client.reset();
  proxies_[1]->SetBlackHole(false);
}

// Calls sent to a connection before its address went silent wait there for
// timeo, as on Linux; new calls must not join them once it is seen to have
// stalled (nfs/v4/connection_pick.h). Before, least outstanding sent each
// call that found it no busier than the rest: under 8 threads of GETATTRs
// about 3 of them were held there until timeo. Issue 15.
TEST_F(TrunkingTest, NoNewCallJoinsAConnectionThatStalledWhileOthersAnswer) {
  nfs::Nfs41Options o = ThreeAddresses(3);
  o.timeo = 10s;  // long beside StallAfter (2 s); the calls held there then move on
  auto client = MountOrFail(o);
  ASSERT_TRUE(client);
  ASSERT_TRUE(WaitForSpread(*client, [](auto s) { return s.size() == 3; })) << Show(Spread(*client));
  // The first connection takes an idle mount's next call: silence its address.
  const std::string silent_address = client->info().connections.at(0).endpoint.address;
  int silent = 0;
  while (silent < 3 && Address(silent) != silent_address) ++silent;
  ASSERT_LT(silent, 3) << silent_address;
  proxies_[silent]->SetBlackHole(true);
  const auto start = std::chrono::steady_clock::now();
  auto held = std::async(std::launch::async, [&] {
    nfs::SyncClient sync(client.get());
    return sync.GetAttr(client->root()).status();
  });
  std::this_thread::sleep_for(nfs::StallAfter(o.timeo) + 1s);
  ASSERT_EQ(held.wait_for(0ms), std::future_status::timeout) << "the first call did not go there";

  constexpr int kThreads = 8;
  const auto load_end = std::chrono::steady_clock::now() + 4s;
  std::vector<std::future<std::chrono::milliseconds>> slowest;
  for (int t = 0; t < kThreads; ++t) {
    slowest.push_back(std::async(std::launch::async, [&] {
      nfs::SyncClient sync(client.get());
      std::chrono::milliseconds worst{0};
      while (std::chrono::steady_clock::now() < load_end) {
        const auto call = std::chrono::steady_clock::now();
        EXPECT_TRUE(sync.GetAttr(client->root()).ok());
        worst = std::max(worst, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - call));
      }
      return worst;
    }));
  }
  for (int t = 0; t < kThreads; ++t) {
    // Each call answered by a working connection: well under StallAfter.
    EXPECT_LT(slowest[t].get(), nfs::StallAfter(o.timeo)) << "thread " << t;
  }
  // The first call moves on after timeo, on a working connection.
  const nfs::Status first = held.get();
  EXPECT_TRUE(first.ok()) << first.ToString();
  EXPECT_GE(std::chrono::steady_clock::now() - start, o.timeo);
  client.reset();
  proxies_[silent]->SetBlackHole(false);
}

// An idle mount keeps its lease while the address of its first connection
// goes silent without a word (black-holed: connections stay open, nothing
// answers; a node powered off looks the same until timeo). Lease renewals
// go out on the least-loaded connection, so the first lands on the silent
// one and waits there for timeo (60 s); before, no other renewal went out
// meanwhile, the lease ran out, the server expired the client and its
// opens and locks with it (a client ID recovery, EIO for a lock holder).
// LocksUnderCutsTest found it when the proxy's connections were left open
// by forked workers (a 60 s stall, then a client ID recovery on each mount).
class TrunkingLeaseTest : public TrunkingTest {
 protected:
  // Renewals every 2 s: the one stuck at 2 s, the next at 4 s, 2 s before
  // the lease ends (a 3 s lease left 1 s, which two busy CPU hogs took).
  TrunkingLeaseTest() { server_options_.lease_lifetime_s = 6; }
};

TEST_F(TrunkingLeaseTest, AnIdleMountKeepsItsLeaseWhileAnAddressIsSilent) {
  nfs::Nfs41Options o = ThreeAddresses(3);
  o.timeo = 60s;  // nfs(5)'s default: the silence is not found out during the test
  auto client = MountOrFail(o);
  ASSERT_TRUE(client);
  ASSERT_EQ(client->info().lease_time, 6u);
  ASSERT_TRUE(WaitForSpread(*client, [](auto s) { return s.size() == 3; })) << Show(Spread(*client));
  nfs::SyncClient sync(client.get());
  nfs::OpenResult file = CreateFile(sync, "idle.bin");
  ASSERT_TRUE(file.file);
  proxies_[0]->SetBlackHole(true);  // the first connection's address
  std::this_thread::sleep_for(15s);  // two and a half leases, idle but for renewals
  const std::vector<uint8_t> data = RandomBytes(4096, 13);
  auto written = sync.Write(file.fh, file.file.get(), 0, data, nfs::Stability::kFileSync);
  EXPECT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(client->info().clientid_recoveries, 0u) << "the lease ran out";
  EXPECT_EQ(client->info().session_recoveries, 0u);
  file.file.reset();
  client.reset();
  proxies_[0]->SetBlackHole(false);
}

// What the engine logs while it lives, still written where it went before.
class LogCapture {
 public:
  LogCapture() : saved_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("capture", saved_->sinks().begin(),
                                                   saved_->sinks().end());
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    sink->set_pattern("%l %v");
    logger->sinks().push_back(sink);
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(saved_); }
  std::string text() {
    spdlog::default_logger()->flush();
    return out_.str();
  }

 private:
  std::shared_ptr<spdlog::logger> saved_;
  std::ostringstream out_;
};

// Issue 15: an address that accepts connections and answers no call (its
// node went silent behind a proxy or a load balancer). Probed with a TCP
// connect, it looked back at every probe, took its connections again, lost
// them after timeo, and the log flapped "does not answer" / "answers again"
// for as long as it stayed silent. Probed with the NULL procedure it is
// down once, stays down while silent, and returns when it answers again.
TEST_F(TrunkingTest, AnAddressThatAcceptsConnectionsButAnswersNothingIsDownOnceNotFlapping) {
  std::mutex mu;
  int downs = 0;
  nfs::Nfs41Options o = ThreeAddresses(12);
  o.timeo = 1s;
  o.on_address_down = [&](const nfs::Endpoint& ep) {
    std::lock_guard<std::mutex> lock(mu);
    if (ep.address == Address(1)) ++downs;
  };
  LogCapture log;
  auto client = MountOrFail(o);
  ASSERT_TRUE(client);
  ASSERT_TRUE(WaitForSpread(*client, [](auto s) { return s.size() == 3; })) << Show(Spread(*client));
  proxies_[1]->SetBlackHole(true);
  proxies_[1]->CutAll();  // its connections go; new ones are accepted and never answered
  nfs::SyncClient sync(client.get());
  for (int i = 0; i < 60; ++i) {  // 12 s: many probe rounds at 1 s back-off and timeo
    EXPECT_TRUE(sync.GetAttr(client->root()).ok());
    std::this_thread::sleep_for(200ms);
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(downs, 1) << log.text();
  }
  EXPECT_EQ(log.text().find(Address(1) + ":" + std::to_string(port_) + " answers again"),
            std::string::npos)
      << log.text();
  EXPECT_EQ(Spread(*client).count(Address(1)), 0u) << Show(Spread(*client));

  proxies_[1]->SetBlackHole(false);  // it answers again: it takes back its share
  EXPECT_TRUE(WaitForSpread(*client, [](auto s) { return s[Address(1)] == 4 && s[Address(0)] == 4 && s[Address(2)] == 4; }))
      << Show(Spread(*client));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(downs, 1);
}

// Issue 15: connections being set up at an address that answers nothing
// wait up to timeo (60 s by default) for EXCHANGE_ID. Neither the mount
// (it waited once per connection placed there: 2 minutes here) nor the
// unmount may wait for them, and must not read the session it destroys itself as one the
// server lost ("recovering") or the address's silence as news.
TEST_F(TrunkingTest, UnmountDoesNotWaitForSetUpCallsToASilentAddress) {
  proxies_[1]->SetBlackHole(true);
  nfs::Nfs41Options o = ThreeAddresses(12);
  o.timeo = 60s;  // nfs(5)'s default: what a set-up call there would wait
  LogCapture log;
  const auto mount_start = std::chrono::steady_clock::now();
  auto client = MountOrFail(o);
  ASSERT_TRUE(client);
  // Nor does the mount wait timeo once per connection placed there.
  EXPECT_LT(std::chrono::steady_clock::now() - mount_start, 5s);
  ASSERT_TRUE(WaitForSpread(*client, [](auto s) { return s[Address(0)] + s[Address(2)] >= 8; }))
      << Show(Spread(*client));
  std::this_thread::sleep_for(500ms);  // the set-up calls to address 1 are out
  EXPECT_GE(proxies_[1]->ActiveConnections(), 1);
  const auto start = std::chrono::steady_clock::now();
  client.reset();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, 3s) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms";
  const std::string text = log.text();
  EXPECT_EQ(text.find("recovering"), std::string::npos) << text;
  EXPECT_EQ(text.find("does not answer"), std::string::npos) << text;
  proxies_[1]->SetBlackHole(false);
}

TEST_F(TrunkingTest, AnAddressThatLeavesDnsIsDrainedAndANewOneJoins) {
  auto client = MountOrFail([&] {
    nfs::Nfs41Options o = ThreeAddresses(8);
    o.endpoints.pop_back();  // DNS said two addresses at mount time
    return o;
  }());
  ASSERT_TRUE(client);
  ASSERT_TRUE(WaitForSpread(*client, [](auto s) { return s[Address(0)] == 4 && s[Address(1)] == 4; }))
      << Show(Spread(*client));
  client->UpdateEndpoints({{Address(1), port_}, {Address(2), port_}});  // 0 left, 2 arrived
  EXPECT_TRUE(WaitForSpread(*client, [](auto s) { return s.count(Address(0)) == 0 && s[Address(1)] == 4 && s[Address(2)] == 4; }))
      << Show(Spread(*client));
  nfs::SyncClient sync(client.get());
  EXPECT_TRUE(sync.GetAttr(client->root()).ok());  // still serving
}

TEST_F(TrunkingTest, APerAddressCapHolds) {
  nfs::Nfs41Options o = ThreeAddresses(16);
  o.max_connections_per_address = 3;
  auto client = MountOrFail(o);
  ASSERT_TRUE(client);
  EXPECT_TRUE(WaitForSpread(*client, [](auto s) { return s[Address(0)] == 3 && s[Address(1)] == 3 && s[Address(2)] == 3; }))
      << Show(Spread(*client));
  std::this_thread::sleep_for(500ms);
  for (const auto& [address, n] : Spread(*client)) EXPECT_LE(n, 3) << address;
}

}  // namespace
}  // namespace floatmount::testing
