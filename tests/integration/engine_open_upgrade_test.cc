// Open upgrades of one open from two callers at once (two processes that
// opened a file read-only flock(LOCK_EX) it together: each widens the open
// for writing). The server runs the two OPENs one after the other and gives
// the open stateid a new seqid each time (RFC 8881 9.11); their replies may
// reach the client in the other order, over two connections. The client
// must keep the newer stateid: the older one makes every later LOCK, READ
// and WRITE fail with NFS4ERR_OLD_STATEID, and the engine's bounded retries
// then EIO (found as a flaky LockCoherenceTest.FlockLockFileProtocolIsExact:
// `flock LOCK_EX: Input/output error`).
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <vector>

#include "nfs/v4/protocol.h"
#include "tests/integration/proxied_engine_fixture.h"

namespace floatmount::testing {
namespace {

using namespace std::chrono_literals;
using namespace nfs::v4;

class OpenUpgradeTest : public ProxiedEngineTest {
 protected:
  static std::future<nfs::Status> Upgrade(nfs::Client& client, const nfs::OpenFile* file) {
    auto p = std::make_shared<std::promise<nfs::Status>>();
    client.Upgrade({}, file, true, true,
                   [p](nfs::Result<nfs::Unit> r) { p->set_value(r.status()); });
    return p->get_future();
  }
  static nfs::Status Lock(nfs::Client& client, const nfs::OpenFile* file, uint64_t owner) {
    std::promise<nfs::Status> p;
    client.Lock({}, file, owner, nfs::LockType::kWrite, 0, nfs::kLockToEnd,
                [&](nfs::Result<nfs::Attributes> r) { p.set_value(r.status()); });
    return p.get_future().get();
  }
};

TEST_F(OpenUpgradeTest, RepliesOutOfOrderKeepTheNewerStateid) {
  auto client = Mount(2);
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  nfs::OpenResult created = CreateFile(sync, "upgraded");
  ASSERT_TRUE(sync.Close(created.file).ok());
  auto opened = sync.OpenHandle(created.fh, /*read=*/true, /*write=*/false);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  const nfs::OpenFile* file = opened->file.get();

  // The first upgrade's reply is held back until the second's is in.
  std::atomic<int> opens{0};
  proxy_->SetRule([&](const RpcFaultProxy::Call& c) -> uint32_t {
    const bool open = c.ops.size() >= 3 && c.ops[2] == OP_OPEN;
    return open && opens.fetch_add(1) == 0 ? RpcFaultProxy::kHoldReply : 0u;
  });
  std::future<nfs::Status> first = Upgrade(*client, file);
  ASSERT_TRUE(proxy_->WaitHeld(1, 10s)) << "the first upgrade never reached the server";
  std::future<nfs::Status> second = Upgrade(*client, file);
  ASSERT_EQ(second.wait_for(10s), std::future_status::ready) << "the second upgrade hangs";
  EXPECT_TRUE(second.get().ok());
  proxy_->ReleaseReplies();
  ASSERT_EQ(first.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(first.get().ok());
  EXPECT_EQ(opens.load(), 2) << "both callers should have upgraded (the race under test)";

  // A new lock-owner names the open stateid; I/O carries it.
  nfs::Status locked = Lock(*client, file, 0x51);
  EXPECT_TRUE(locked.ok()) << locked.ToString();
  const std::vector<uint8_t> data = RandomBytes(4096, 7);
  auto written = sync.Write(created.fh, file, 0, data, nfs::Stability::kFileSync);
  EXPECT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_TRUE(sync.Close(std::move(opened->file)).ok());
}

}  // namespace
}  // namespace floatmount::testing
