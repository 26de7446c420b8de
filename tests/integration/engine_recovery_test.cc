// Recovery through the engine: lost connections, lost replies, a server
// that dies and comes back, and other clients' state. Against ganesha, and
// against knfsd with FLOATMOUNT_TEST_SERVER=knfsd (engine_fixture.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <future>
#include <thread>
#include <vector>

#include "nfs/v4/open_state.h"
#include "nfs/v4/protocol.h"
#include "tests/harness/fault_proxy.h"
#include "tests/integration/engine_fixture.h"

namespace floatmount::testing {
namespace {

using namespace std::chrono_literals;

class RecoveryTest : public EngineTest {
 protected:
  // A proxy in front of the server; mounts made with ProxyOptions go through it.
  void StartProxy() {
    proxy_ = std::make_unique<FaultProxy>("127.0.0.1", 0, server_address(), server_port());
    ASSERT_TRUE(proxy_->Start()) << proxy_->error();
  }
  nfs::Nfs41Options ProxyOptions(int nconnect) const { return Options(nconnect, proxy_->port()); }
  std::unique_ptr<FaultProxy> proxy_;
};

TEST_F(RecoveryTest, WriteCompletesByteIdenticalWhenEveryConnectionIsCut) {
  if (knfsd()) {
    // Seen here once in two runs: the proxy's RST reaches QEMU's forwarded
    // socket while its buffer toward the guest is full (a bulk write), and
    // libslirp 4.7.0 (Debian 12's QEMU 7.2) aborts QEMU ("soread: Assertion
    // `buf_len != 0' failed"), killing the guest for the rest of the run.
    GTEST_SKIP() << "cutting bulk writes kills QEMU's user network (libslirp 4.7.0 soread "
                    "assertion); the lost-reply and restart tests cut knfsd's connections";
  }
  StartProxy();
  auto client = MountOrFail(ProxyOptions(4));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  const std::vector<uint8_t> data = RandomBytes(DataSize(512 << 20), 11);
  nfs::OpenResult file = CreateFile(sync, "cut.bin");
  auto writer = std::async(std::launch::async,
                           [&] { return WriteAll(*client, file.fh, file.file.get(), data); });
  // Cut everything three times while the write is under way.
  for (int i = 0; i < 3; ++i) {
    const uint64_t before = proxy_->BytesToTarget();
    while (proxy_->BytesToTarget() < before + data.size() / 8 &&
           writer.wait_for(0ms) != std::future_status::ready) {
      std::this_thread::sleep_for(5ms);
    }
    proxy_->CutAll();
  }
  nfs::Status written = writer.get();
  ASSERT_TRUE(written.ok()) << written.ToString();
  ASSERT_TRUE(sync.Close(file.file).ok());
  EXPECT_GE(client->info().reconnects, 1u);
  EXPECT_TRUE(ReadServerFile("cut.bin") == data);
}

// The reply to a non-idempotent operation is lost after the server ran it.
// The engine resends on the same slot and sequence id, the server answers
// from its reply cache, and the operation succeeds exactly once (a second
// execution would fail with NOENT or EXIST).
TEST_F(RecoveryTest, NonIdempotentOperationsRunOnceAcrossALostReply) {
  StartProxy();
  auto client = MountOrFail(ProxyOptions(1));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  nfs::OpenResult file = CreateFile(sync, "before");
  ASSERT_TRUE(sync.Close(file.file).ok());

  // 200 ms round trip: the request reaches the server at ~100 ms, the reply
  // would reach us at ~200 ms; cutting at ~150 ms loses just the reply.
  proxy_->SetLatency(200ms);
  std::promise<nfs::Status> renamed;
  client->Rename({}, client->root(), "before", client->root(), "after",
                 [&](nfs::Result<nfs::Unit> r) { renamed.set_value(r.status()); });
  std::this_thread::sleep_for(150ms);
  proxy_->CutAll();
  nfs::Status s = renamed.get_future().get();
  EXPECT_TRUE(s.ok()) << s.ToString();

  std::promise<nfs::Status> made;
  nfs::CreateRequest dir;
  dir.type = nfs::FileType::kDirectory;
  client->Create({}, client->root(), "newdir", dir,
                 [&](nfs::Result<nfs::Entry> r) { made.set_value(r.status()); });
  std::this_thread::sleep_for(150ms);
  proxy_->CutAll();
  s = made.get_future().get();
  EXPECT_TRUE(s.ok()) << s.ToString();
  proxy_->SetLatency(0ms);

  EXPECT_GE(client->info().reconnects, 2u);
  EXPECT_TRUE(sync.Lookup(sync.root(), "after").ok());
  EXPECT_TRUE(sync.Lookup(sync.root(), "newdir").ok());
  EXPECT_FALSE(sync.Lookup(sync.root(), "before").ok());
}

TEST_F(RecoveryTest, TwoClientsWithDifferentOwnersBothKeepTheirOpens) {
  auto first = MountOrFail(Options(2));
  ASSERT_TRUE(first);
  nfs::SyncClient a(first.get());
  nfs::OpenResult fa = CreateFile(a, "a.bin");
  auto second = MountOrFail(Options(2));  // a different co_ownerid
  ASSERT_TRUE(second);
  nfs::SyncClient b(second.get());
  nfs::OpenResult fb = CreateFile(b, "b.bin");
  const std::vector<uint8_t> da = RandomBytes(3 << 20, 1), db = RandomBytes(3 << 20, 2);
  // Each client's open stateid still works after the other one arrived.
  ASSERT_TRUE(WriteAll(*first, fa.fh, fa.file.get(), da).ok());
  ASSERT_TRUE(WriteAll(*second, fb.fh, fb.file.get(), db).ok());
  ASSERT_TRUE(a.Close(fa.file).ok());
  ASSERT_TRUE(b.Close(fb.file).ok());
  EXPECT_TRUE(ReadServerFile("a.bin") == da);
  EXPECT_TRUE(ReadServerFile("b.bin") == db);
  EXPECT_EQ(first->info().clientid_recoveries, 0u);
  EXPECT_EQ(second->info().clientid_recoveries, 0u);
}

// Per-stateid recovery against a real server (nfs/v4/stateid_recovery.h).
// One open's stateid is replaced by one the server never issued, as if
// the server had forgotten that open: its WRITE gets NFS4ERR_BAD_STATEID.
// Only that open is tested (TEST_STATEID) and opened again; the other
// files are not reopened and their I/O goes on. (Before, any stateid
// error parked all I/O and reopened every file: kFiles reopens here.)
// A file closed meanwhile is never opened again.
TEST_F(RecoveryTest, ABadStateidRecoversThatOpenOnlyAndNeverAClosedOne) {
  auto client = MountOrFail(Options(2));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  constexpr int kFiles = 8;
  std::vector<nfs::OpenResult> files;
  for (int i = 0; i < kFiles; ++i) files.push_back(CreateFile(sync, "f" + std::to_string(i)));
  auto calls = [&client](const std::string& name) {
    const auto info = client->info();
    auto it = info.calls.find(name);
    return it == info.calls.end() ? uint64_t{0} : it->second;
  };
  const std::vector<uint8_t> data = RandomBytes(64 << 10, 3);
  auto write = [&](int i) {
    return sync.Write(files[i].fh, files[i].file.get(), 0, data, nfs::Stability::kFileSync);
  };
  for (int i = 0; i < kFiles; ++i) ASSERT_TRUE(write(i).ok());

  // The server does not know f0's stateid any more.
  auto f0 = std::dynamic_pointer_cast<nfs::OpenState>(files[0].file);
  ASSERT_TRUE(f0);
  nfs::v4::Stateid forged = f0->stateid();
  // Another, unknown open of the same client: ganesha's epoch and client
  // stay; knfsd's boot time and client ID (bytes 0-7) stay and the high
  // byte of its stateid number (bytes 8-11, host order) changes.
  forged.other[11] ^= 0x5a;
  f0->set_stateid(forged);
  const uint64_t reopens = calls("OPEN (reopen)"), tests = calls("TEST_STATEID");
  auto r = write(0);
  std::fprintf(stderr, "after one stale stateid: TEST_STATEID %llu, OPEN (reopen) %llu of %d files\n",
               (unsigned long long)(calls("TEST_STATEID") - tests),
               (unsigned long long)(calls("OPEN (reopen)") - reopens), kFiles);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(f0->stateid().other, forged.other);
  EXPECT_EQ(calls("TEST_STATEID") - tests, 1u);
  EXPECT_EQ(calls("OPEN (reopen)") - reopens, 1u) << "only the open the server forgot";
  EXPECT_EQ(calls("FREE_STATEID"), 0u);  // BAD_STATEID: nothing to free
  EXPECT_EQ(client->info().stateid_recoveries, 1u);
  EXPECT_EQ(client->info().stateids_revoked, 1u);
  for (int i = 1; i < kFiles; ++i) EXPECT_TRUE(write(i).ok());

  // A closed open whose late WRITE reaches the server: not reopened.
  std::shared_ptr<nfs::OpenFile> closed = files[1].file;
  const nfs::v4::Stateid was = std::dynamic_pointer_cast<nfs::OpenState>(closed)->stateid();
  ASSERT_TRUE(sync.Close(closed).ok());
  std::dynamic_pointer_cast<nfs::OpenState>(closed)->set_stateid(was);  // the late WRITE's view
  auto late = sync.Write(files[1].fh, closed.get(), 0, data, nfs::Stability::kFileSync);
  EXPECT_FALSE(late.ok()) << "a write through a closed open went through";
  EXPECT_EQ(calls("OPEN (reopen)") - reopens, 1u) << "a closed open was opened again";
  for (int i = 0; i < kFiles; ++i) {
    if (i != 1) {
      EXPECT_TRUE(sync.Close(files[i].file).ok());
    }
  }
  EXPECT_EQ(client->info().clientid_recoveries, 0u);
  EXPECT_EQ(client->info().session_recoveries, 0u);
}

// An open carries a stateid the server calls valid but holds for another
// file: what two nodes that number state alike do when a floating IP
// takes the mount back to the node that still has its old record
// (TortureUnderFailoverTest, one ganesha epoch). Each WRITE fails
// BAD_STATEID, TEST_STATEID vouches for the stateid, and resending it
// failed the same way until EIO. The second refusal of the very stateid
// TEST_STATEID vouched for opens the file again; the other file is not
// touched. Broken on purpose (never reopened): the WRITE failed EIO.
TEST_F(RecoveryTest, AStateidValidForAnotherFileIsReplacedByOpeningAgain) {
  auto client = MountOrFail(Options(2));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  nfs::OpenResult f = CreateFile(sync, "mine.bin");
  nfs::OpenResult g = CreateFile(sync, "other.bin");
  ASSERT_TRUE(f.file && g.file);
  auto f_open = std::dynamic_pointer_cast<nfs::OpenState>(f.file);
  auto g_open = std::dynamic_pointer_cast<nfs::OpenState>(g.file);
  ASSERT_TRUE(f_open && g_open);
  f_open->set_stateid(g_open->stateid());
  auto calls = [&client](const std::string& name) {
    const auto info = client->info();
    auto it = info.calls.find(name);
    return it == info.calls.end() ? uint64_t{0} : it->second;
  };

  const std::vector<uint8_t> data = RandomBytes(256 << 10, 7);
  const nfs::Status written = WriteAll(*client, f.fh, f.file.get(), data, 1);
  ASSERT_TRUE(written.ok()) << written.ToString();
  EXPECT_NE(f_open->stateid().other, g_open->stateid().other);
  EXPECT_EQ(calls("TEST_STATEID"), 2u) << "one pass to resend, one to open again";
  EXPECT_EQ(calls("OPEN (reopen)"), 1u);
  const std::vector<uint8_t> other = RandomBytes(4096, 8);
  EXPECT_TRUE(sync.Write(g.fh, g.file.get(), 0, other, nfs::Stability::kFileSync).ok());
  EXPECT_TRUE(sync.Close(f.file).ok());
  EXPECT_TRUE(sync.Close(g.file).ok());
  EXPECT_TRUE(ReadServerFile("mine.bin") == data);
  EXPECT_TRUE(ReadServerFile("other.bin") == other);
  EXPECT_EQ(client->info().clientid_recoveries, 0u);
}

// ganesha is killed (SIGKILL) and started again without grace; knfsd is
// restarted in its guest (rpc.nfsd 0, then started: every client, open and
// session forgotten, connections reset) and begins a 10 s grace period, in
// which the open is reclaimed.
TEST_F(RecoveryTest, ServerKilledAndRestartedDuringIoRecovers) {
  auto client = MountOrFail(Options(4));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  const std::vector<uint8_t> data = RandomBytes(DataSize(256 << 20), 5);
  nfs::OpenResult file = CreateFile(sync, "restart.bin");
  auto writer = std::async(std::launch::async,
                           [&] { return WriteAll(*client, file.fh, file.file.get(), data, 8); });
  std::this_thread::sleep_for(100ms);
  if (knfsd()) {
    ASSERT_TRUE(knfsd_->RestartNfsd()) << knfsd_->error();
  } else {
    server_->Kill();
    std::this_thread::sleep_for(1s);
    ASSERT_TRUE(server_->Restart()) << server_->error();
  }
  nfs::Status written = writer.get();
  ASSERT_TRUE(written.ok()) << written.ToString();
  // The open was re-established under a new client ID, and still works.
  std::vector<uint8_t> head(4096);
  auto read = sync.Read(file.fh, file.file.get(), 0, head);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_TRUE(sync.Close(file.file).ok());
  EXPECT_GE(client->info().clientid_recoveries, 1u);
  EXPECT_TRUE(ReadServerFile("restart.bin") == data);
}

// ganesha numbers client IDs from the second it started: restarted within
// that second, it gives our owner a new, unconfirmed record with our old
// client ID's number. The client once took that for its own client ID,
// bound the connection to the lost session and sent CREATE_SESSION with
// the old sequence, SEQ_MISORDERED, every 50 ms for as long as it ran.
TEST_F(RecoveryTest, ARestartWithinTheSecondTheServerStartedIsRecovered) {
  if (knfsd()) GTEST_SKIP() << "kills and restarts ganesha within one second";
  bool same_second = false;
  for (int attempt = 0; attempt < 5 && !same_second; ++attempt) {
    // Start just after a second begins, mount, restart: all in that second.
    server_->Kill();
    const auto now = std::chrono::system_clock::now();
    std::this_thread::sleep_until(std::chrono::ceil<std::chrono::seconds>(now) + 5ms);
    const std::time_t started = std::time(nullptr);
    ASSERT_TRUE(server_->Restart()) << server_->error();
    auto client = MountOrFail(Options(1));
    ASSERT_TRUE(client);
    nfs::SyncClient sync(client.get());
    nfs::OpenResult file = CreateFile(sync, "same-second");
    server_->Kill();
    ASSERT_TRUE(server_->Restart()) << server_->error();
    same_second = std::time(nullptr) == started;
    auto attr = std::async(std::launch::async, [&] { return sync.GetAttr(file.fh); });
    ASSERT_EQ(attr.wait_for(20s), std::future_status::ready) << "the client never recovered";
    EXPECT_TRUE(attr.get().ok());
    EXPECT_TRUE(sync.Close(file.file).ok());
    EXPECT_GE(client->info().clientid_recoveries, 1u);
  }
  if (!same_second) GTEST_SKIP() << "no restart landed within the second of the start";
}

TEST_F(RecoveryTest, SoftMountFailsCallsWithTimeoutWhenTheServerIsSilent) {
  StartProxy();
  nfs::Nfs41Options options = ProxyOptions(1);
  options.soft = true;
  options.timeo = 1s;
  options.retrans = 2;
  auto client = MountOrFail(options);
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  proxy_->SetBlackHole(true);
  const auto start = std::chrono::steady_clock::now();
  auto attr = sync.GetAttr(sync.root());
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(attr.ok());
  EXPECT_EQ(attr.status().kind(), nfs::Status::Kind::kTimedOut) << attr.status().ToString();
  EXPECT_LT(waited, 10s);
  // And it works again once the server answers.
  proxy_->SetBlackHole(false);
  proxy_->CutAll();
  auto again = sync.GetAttr(sync.root());
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

// Issue 15: on a soft mount, calls given up in an outage leave their slots'
// state unknown. Before, each such slot was retired for the life of the
// session: with a small slot table one outage wedged the mount for good.
// Now each is resynchronised with a lone SEQUENCE once the server answers;
// and no WRITE payload is sent after its call failed (the test reuses
// each buffer the moment its call fails).
TEST_F(RecoveryTest, SoftMountSlotsGivenUpInAnOutageAreUsableAfterIt) {
  StartProxy();
  nfs::Nfs41Options options = ProxyOptions(1);
  options.soft = true;
  options.timeo = 1s;
  options.retrans = 2;
  options.max_slots = 4;  // fewer slots than calls given up
  auto client = MountOrFail(options);
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  nfs::OpenResult file = CreateFile(sync, "soft.bin");
  const uint32_t slots = client->info().slots;
  ASSERT_LE(slots, 4u);

  proxy_->SetBlackHole(true);
  constexpr int kWrites = 12;
  constexpr size_t kSize = 256 << 10;
  std::vector<std::vector<uint8_t>> buffers(kWrites, std::vector<uint8_t>(kSize, 0x5A));
  std::vector<std::promise<nfs::Status>> done(kWrites);
  for (int i = 0; i < kWrites; ++i) {
    client->Write({}, file.fh, file.file.get(), uint64_t(i) * kSize, buffers[i],
                  nfs::Stability::kUnstable, [&, i](nfs::Result<nfs::WriteResult> r) {
                    std::fill(buffers[i].begin(), buffers[i].end(), 0xEE);  // reused at once
                    done[i].set_value(r.status());
                  });
  }
  // Small calls too, which may take the slots WRITEs leave free.
  std::vector<std::future<nfs::Result<nfs::Attributes>>> small;
  for (int i = 0; i < 4; ++i) {
    small.push_back(std::async(std::launch::async, [&] { return sync.GetAttr(sync.root()); }));
  }
  for (int i = 0; i < kWrites; ++i) {
    const nfs::Status s = done[i].get_future().get();
    EXPECT_EQ(s.kind(), nfs::Status::Kind::kTimedOut) << s.ToString();
  }
  for (auto& st : small) EXPECT_EQ(st.get().status().kind(), nfs::Status::Kind::kTimedOut);
  proxy_->SetBlackHole(false);

  // Within 5 s every slot works again: as many concurrent calls as slots,
  // then a write and a commit.
  const auto healed = std::chrono::steady_clock::now();
  bool all_ok = false;
  while (!all_ok && std::chrono::steady_clock::now() - healed < 5s) {
    std::vector<std::future<nfs::Result<nfs::Attributes>>> stats;
    for (uint32_t i = 0; i < slots * 2; ++i) {
      stats.push_back(std::async(std::launch::async, [&] { return sync.GetAttr(sync.root()); }));
    }
    all_ok = true;
    for (auto& st : stats) all_ok = st.get().ok() && all_ok;
  }
  EXPECT_TRUE(all_ok) << "calls still fail 5 s after the outage";
  const std::vector<uint8_t> after(kSize, 0x77);
  auto w = sync.Write(file.fh, file.file.get(), 0, after, nfs::Stability::kFileSync);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  const nfs::ServerInfo info = client->info();
  EXPECT_EQ(info.slots_interrupted, 0u);
  EXPECT_GE(info.slot_resyncs, 1u);
  ASSERT_TRUE(sync.Close(file.file).ok());

  const std::vector<uint8_t> on_server = ReadServerFile("soft.bin");
  EXPECT_EQ(std::count(on_server.begin(), on_server.end(), 0xEE), 0)
      << "a buffer was sent after its call had failed";
}

// A slow link, not a dead one: replies keep coming (the connection is
// never idle long enough to be replaced), but WRITEs queued behind the
// socket pass their soft deadline before they are sent. Their callers get
// ETIMEDOUT and reuse the buffers at once (as the cache does, for another
// file); before, the queued calls went out later with the reused bytes.
TEST_F(RecoveryTest, SoftMountNeverSendsAPayloadAfterItsCallTimedOut) {
  StartProxy();
  nfs::Nfs41Options options = ProxyOptions(1);
  options.soft = true;
  options.timeo = 1s;
  options.retrans = 2;
  auto client = MountOrFail(options);
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  nfs::OpenResult file = CreateFile(sync, "slow.bin");

  // One WRITE per buffer (knfsd's wsize is below 1 MiB), eight a second.
  const size_t kSize = std::min<size_t>(1 << 20, client->wsize());
  proxy_->SetBandwidth(8 * kSize);
  const int writes = static_cast<int>(std::min<uint32_t>(client->info().slots, 64)) - 4;
  std::vector<std::vector<uint8_t>> buffers(writes, std::vector<uint8_t>(kSize, 0x5A));
  std::vector<std::promise<nfs::Status>> done(writes);
  for (int i = 0; i < writes; ++i) {
    client->Write({}, file.fh, file.file.get(), uint64_t(i) * kSize, buffers[i],
                  nfs::Stability::kUnstable, [&, i](nfs::Result<nfs::WriteResult> r) {
                    if (!r.ok()) std::fill(buffers[i].begin(), buffers[i].end(), 0xEE);
                    done[i].set_value(r.status());
                  });
  }
  int timed_out = 0;
  for (int i = 0; i < writes; ++i) {
    const nfs::Status s = done[i].get_future().get();
    if (s.kind() == nfs::Status::Kind::kTimedOut) ++timed_out;
  }
  ASSERT_GT(timed_out, 0) << "no call waited long enough: the test proves nothing";
  // Let whatever is still queued reach the server, then look.
  proxy_->SetBandwidth(0);
  auto attr = sync.GetAttr(file.fh);
  ASSERT_TRUE(attr.ok()) << attr.status().ToString();
  ASSERT_TRUE(sync.Close(file.file).ok());
  std::this_thread::sleep_for(300ms);  // the server's workers finish what they read
  const std::vector<uint8_t> on_server = ReadServerFile("slow.bin");
  EXPECT_EQ(std::count(on_server.begin(), on_server.end(), 0xEE), 0)
      << "a buffer was sent after its call had failed (" << timed_out << " of " << writes
      << " timed out)";
}

TEST_F(RecoveryTest, HardMountWaitsThroughAnOutage) {
  StartProxy();
  auto client = MountOrFail(ProxyOptions(2));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  proxy_->Pause();   // new connections are refused
  proxy_->CutAll();  // and the current ones die
  auto pending = std::async(std::launch::async, [&] { return sync.GetAttr(sync.root()); });
  EXPECT_EQ(pending.wait_for(1500ms), std::future_status::timeout);
  proxy_->Resume();
  auto attr = pending.get();
  EXPECT_TRUE(attr.ok()) << attr.status().ToString();
}

TEST_F(RecoveryTest, MountFailsClearlyForAMissingExportOrServer) {
  nfs::Nfs41Options options = Options(1);
  options.export_path = "/no/such/export";
  auto client = nfs::Nfs41Client::Mount(options);
  ASSERT_FALSE(client.ok());
  EXPECT_TRUE(client.status().IsNfs(nfs::v4::NFS4ERR_NOENT)) << client.status().ToString();

  options = Options(1);
  options.endpoints = {{"127.0.0.1", 1}};  // nothing listens there
  client = nfs::Nfs41Client::Mount(options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().kind(), nfs::Status::Kind::kTransport) << client.status().ToString();
}

}  // namespace
}  // namespace floatmount::testing

namespace floatmount::testing {
namespace {

// An idle mount keeps its lease with SEQUENCE-only compounds: after three
// lease periods of silence the open still works without any recovery (a
// lapsed lease would show as a client ID recovery, which recovery hides
// from the caller but not from the counters).
class LeaseTest : public EngineTest {
 protected:
  LeaseTest() {
    server_options_.lease_lifetime_s = 3;
    ganesha_only_ = "a 3 s lease; the shared guest's is 10 s (knfsd: KnfsdTest.LeaseIs*)";
  }
};

TEST_F(LeaseTest, AnIdleClientRenewsItsLease) {
  auto client = MountOrFail(Options(1));
  ASSERT_TRUE(client);
  ASSERT_EQ(client->info().lease_time, 3u);
  nfs::SyncClient sync(client.get());
  nfs::OpenResult file = CreateFile(sync, "idle.bin");
  ASSERT_TRUE(file.file);
  std::this_thread::sleep_for(std::chrono::seconds(10));
  const std::vector<uint8_t> data = RandomBytes(4096, 9);
  auto written = sync.Write(file.fh, file.file.get(), 0, data, nfs::Stability::kFileSync);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  ASSERT_TRUE(sync.Close(file.file).ok());
  EXPECT_EQ(client->info().clientid_recoveries, 0u);
  EXPECT_EQ(client->info().session_recoveries, 0u);
}

}  // namespace
}  // namespace floatmount::testing
