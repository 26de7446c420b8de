// Byte-range locks through the engine (LOCK, LOCKU, LOCKT) against a real
// ganesha: owners on one open, two clients, lock to end, split ranges,
// CLOSE, and a server restart under held locks: without a grace period the
// locks are lost; with one (GraceLockTest) they are reclaimed.
#include <chrono>
#include <future>
#include <optional>
#include <thread>

#include "nfs/v4/protocol.h"
#include "tests/integration/engine_fixture.h"

namespace floatmount::testing {
namespace {

using namespace std::chrono_literals;
using nfs::LockType;

constexpr uint64_t kOwnerA = 0xA1;
constexpr uint64_t kOwnerB = 0xB2;
constexpr uint64_t kOwnerC = 0xC3;

class LockTest : public EngineTest {
 protected:
  LockTest() {
    ganesha_only_ = "kills and restarts ganesha with and without grace (knfsd's locks: KnfsdTest)";
  }
  static nfs::Result<std::optional<nfs::LockConflict>> Test(nfs::Client& client,
                                                            const nfs::OpenResult& file,
                                                            uint64_t owner, LockType type,
                                                            uint64_t offset, uint64_t length) {
    std::promise<nfs::Result<std::optional<nfs::LockConflict>>> p;
    client.TestLock(
        {}, file.file.get(), owner, type, offset, length,
        [&](nfs::Result<std::optional<nfs::LockConflict>> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  static bool Denied(const nfs::Status& s) { return s.IsNfs(nfs::v4::NFS4ERR_DENIED); }

  // Opens an existing file of the export root for read+write.
  static nfs::OpenResult OpenExisting(nfs::SyncClient& sync, const std::string& name) {
    nfs::OpenRequest req;
    req.read = true;
    req.write = true;
    auto opened = sync.Open(sync.root(), name, req);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nfs::OpenResult{};
  }
};

TEST_F(LockTest, TwoOwnersOnOneOpenConflictAndTestLockReportsTheHolder) {
  auto client = MountOrFail(Options(2));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  nfs::OpenResult file = CreateFile(sync, "owners.bin");
  ASSERT_TRUE(file.file);

  ASSERT_TRUE(Lock(*client, file, kOwnerA, LockType::kWrite, 0, 100).ok());
  // The holder may lock its own range again (and its own test sees no conflict).
  EXPECT_TRUE(Lock(*client, file, kOwnerA, LockType::kWrite, 50, 10).ok());
  auto own = Test(*client, file, kOwnerA, LockType::kWrite, 0, 100);
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  EXPECT_FALSE(own->has_value());

  nfs::Status s = Lock(*client, file, kOwnerB, LockType::kWrite, 50, 10);
  EXPECT_TRUE(Denied(s)) << s.ToString();
  s = Lock(*client, file, kOwnerB, LockType::kRead, 99, 1);
  EXPECT_TRUE(Denied(s)) << s.ToString();

  auto conflict = Test(*client, file, kOwnerB, LockType::kWrite, 20, 5);
  ASSERT_TRUE(conflict.ok()) << conflict.status().ToString();
  ASSERT_TRUE(conflict->has_value());
  EXPECT_EQ((*conflict)->type, LockType::kWrite);
  EXPECT_EQ((*conflict)->offset, 0u);
  EXPECT_EQ((*conflict)->length, 100u);
  EXPECT_TRUE((*conflict)->same_client);

  // A disjoint range is free.
  EXPECT_TRUE(Lock(*client, file, kOwnerB, LockType::kRead, 100, 50).ok());
  auto free_range = Test(*client, file, kOwnerC, LockType::kRead, 150, 1000);
  ASSERT_TRUE(free_range.ok()) << free_range.status().ToString();
  EXPECT_FALSE(free_range->has_value());

  // A unlocks; B (now an existing lock-owner) takes the range.
  ASSERT_TRUE(Unlock(*client, file, kOwnerA, 0, 100).ok());
  EXPECT_TRUE(Lock(*client, file, kOwnerB, LockType::kWrite, 50, 10).ok());
  // And A, after its unlock, is refused with its kept lock stateid.
  s = Lock(*client, file, kOwnerA, LockType::kWrite, 0, 100);
  EXPECT_TRUE(Denied(s)) << s.ToString();
  EXPECT_TRUE(Lock(*client, file, kOwnerA, LockType::kWrite, 0, 50).ok());

  // Unlocking what an owner never locked succeeds.
  EXPECT_TRUE(Unlock(*client, file, kOwnerC, 0, nfs::kLockToEnd).ok());
  ASSERT_TRUE(sync.Close(file.file).ok());
}

// Lock-time revalidation (issue 20) costs no round trip of its own: the
// attributes come back in the LOCK's compound, and they are fresh (another
// client's write between two grants shows as a new change and size).
TEST_F(LockTest, AGrantCarriesFreshAttributesInTheSameCompound) {
  auto client = MountOrFail(Options(2));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  nfs::OpenResult file = CreateFile(sync, "grant_attrs.bin");
  ASSERT_TRUE(file.file);
  auto calls = [&](const char* name) {
    const auto info = client->info();
    auto it = info.calls.find(name);
    return it == info.calls.end() ? uint64_t{0} : it->second;
  };
  const uint64_t getattrs = calls("GETATTR"), locks = calls("LOCK");

  nfs::Attributes first;
  ASSERT_TRUE(Lock(*client, file, kOwnerA, LockType::kWrite, 0, nfs::kLockToEnd, &first).ok());
  ASSERT_TRUE(first.Has(nfs::Attributes::kChange));
  ASSERT_TRUE(first.Has(nfs::Attributes::kSize));
  EXPECT_EQ(first.size, 0u);
  ASSERT_TRUE(Unlock(*client, file, kOwnerA, 0, nfs::kLockToEnd).ok());

  {  // another client writes
    auto other = MountOrFail(Options(1));
    ASSERT_TRUE(other);
    nfs::SyncClient other_sync(other.get());
    nfs::OpenResult theirs = OpenExisting(other_sync, "grant_attrs.bin");
    ASSERT_TRUE(theirs.file);
    const std::string text = "written elsewhere";
    const std::vector<uint8_t> bytes(text.begin(), text.end());
    auto w = other_sync.Write(theirs.fh, theirs.file.get(), 0, bytes, nfs::Stability::kFileSync);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE(other_sync.Close(theirs.file).ok());
  }
  nfs::Attributes second;
  ASSERT_TRUE(Lock(*client, file, kOwnerA, LockType::kWrite, 0, nfs::kLockToEnd, &second).ok());
  ASSERT_TRUE(second.Has(nfs::Attributes::kChange));
  EXPECT_NE(second.change, first.change);
  EXPECT_EQ(second.size, std::string("written elsewhere").size());

  EXPECT_EQ(calls("LOCK") - locks, 2u);
  EXPECT_EQ(calls("GETATTR"), getattrs) << "a grant must not need a GETATTR of its own";
  ASSERT_TRUE(sync.Close(file.file).ok());
}

TEST_F(LockTest, ReadLocksAreSharedAndExcludeWriters) {
  auto client = MountOrFail(Options(2));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  nfs::OpenResult file = CreateFile(sync, "shared.bin");
  ASSERT_TRUE(file.file);

  ASSERT_TRUE(Lock(*client, file, kOwnerA, LockType::kRead, 0, 4096).ok());
  ASSERT_TRUE(Lock(*client, file, kOwnerB, LockType::kRead, 1024, 4096).ok());
  auto reader = Test(*client, file, kOwnerC, LockType::kRead, 0, nfs::kLockToEnd);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_FALSE(reader->has_value());

  auto writer = Test(*client, file, kOwnerC, LockType::kWrite, 2000, 1);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_TRUE(writer->has_value());
  EXPECT_EQ((*writer)->type, LockType::kRead);
  nfs::Status s = Lock(*client, file, kOwnerC, LockType::kWrite, 2000, 1);
  EXPECT_TRUE(Denied(s)) << s.ToString();
  // Upgrading to a write lock is refused while the other reader holds it.
  s = Lock(*client, file, kOwnerA, LockType::kWrite, 2000, 1);
  EXPECT_TRUE(Denied(s)) << s.ToString();
  ASSERT_TRUE(Unlock(*client, file, kOwnerB, 0, nfs::kLockToEnd).ok());
  EXPECT_TRUE(Lock(*client, file, kOwnerA, LockType::kWrite, 2000, 1).ok());
  ASSERT_TRUE(sync.Close(file.file).ok());
}

TEST_F(LockTest, TwoClientsConflictTheSameWay) {
  auto first = MountOrFail(Options(2));
  auto second = MountOrFail(Options(2));  // a different co_ownerid
  ASSERT_TRUE(first && second);
  nfs::SyncClient a(first.get()), b(second.get());
  nfs::OpenResult fa = CreateFile(a, "clients.bin");
  nfs::OpenResult fb = OpenExisting(b, "clients.bin");
  ASSERT_TRUE(fa.file && fb.file);

  // Same local owner number on both clients: still different lock-owners.
  ASSERT_TRUE(Lock(*first, fa, kOwnerA, LockType::kWrite, 10, 90).ok());
  nfs::Status s = Lock(*second, fb, kOwnerA, LockType::kRead, 0, 20);
  EXPECT_TRUE(Denied(s)) << s.ToString();
  auto conflict = Test(*second, fb, kOwnerA, LockType::kRead, 0, 20);
  ASSERT_TRUE(conflict.ok()) << conflict.status().ToString();
  ASSERT_TRUE(conflict->has_value());
  EXPECT_EQ((*conflict)->type, LockType::kWrite);
  EXPECT_EQ((*conflict)->offset, 10u);
  EXPECT_EQ((*conflict)->length, 90u);
  EXPECT_FALSE((*conflict)->same_client);

  EXPECT_TRUE(Lock(*second, fb, kOwnerA, LockType::kWrite, 100, 10).ok());
  ASSERT_TRUE(Unlock(*first, fa, kOwnerA, 10, 90).ok());
  EXPECT_TRUE(Lock(*second, fb, kOwnerA, LockType::kWrite, 0, 20).ok());
  s = Lock(*first, fa, kOwnerB, LockType::kRead, 15, 1);
  EXPECT_TRUE(Denied(s)) << s.ToString();
  ASSERT_TRUE(a.Close(fa.file).ok());
  ASSERT_TRUE(b.Close(fb.file).ok());
}

TEST_F(LockTest, LockToEndCoversEverythingFromItsOffset) {
  auto client = MountOrFail(Options(2));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  nfs::OpenResult file = CreateFile(sync, "toend.bin");
  ASSERT_TRUE(file.file);

  ASSERT_TRUE(Lock(*client, file, kOwnerA, LockType::kWrite, 1000, nfs::kLockToEnd).ok());
  auto far = Test(*client, file, kOwnerB, LockType::kRead, 1ull << 50, 1);
  ASSERT_TRUE(far.ok()) << far.status().ToString();
  ASSERT_TRUE(far->has_value());
  EXPECT_EQ((*far)->offset, 1000u);
  EXPECT_EQ((*far)->length, nfs::kLockToEnd);
  // A range that would run past 2^64 - 1 means "to the end" too.
  nfs::Status s = Lock(*client, file, kOwnerB, LockType::kRead, 5000, nfs::kLockToEnd - 10);
  EXPECT_TRUE(Denied(s)) << s.ToString();
  s = Lock(*client, file, kOwnerB, LockType::kWrite, 999, 2);
  EXPECT_TRUE(Denied(s)) << s.ToString();
  EXPECT_TRUE(Lock(*client, file, kOwnerB, LockType::kWrite, 0, 1000).ok());

  ASSERT_TRUE(Unlock(*client, file, kOwnerA, 1000, nfs::kLockToEnd).ok());
  EXPECT_TRUE(Lock(*client, file, kOwnerB, LockType::kWrite, 1ull << 50, nfs::kLockToEnd).ok());
  // A zero length is refused before it reaches the server.
  s = Lock(*client, file, kOwnerC, LockType::kWrite, 0, 0);
  EXPECT_EQ(s.kind(), nfs::Status::Kind::kInvalidArgument) << s.ToString();
  ASSERT_TRUE(sync.Close(file.file).ok());
}

TEST_F(LockTest, UnlockingTheMiddleSplitsTheRange) {
  auto client = MountOrFail(Options(2));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  nfs::OpenResult file = CreateFile(sync, "split.bin");
  ASSERT_TRUE(file.file);

  ASSERT_TRUE(Lock(*client, file, kOwnerA, LockType::kWrite, 0, 100).ok());
  ASSERT_TRUE(Unlock(*client, file, kOwnerA, 40, 20).ok());  // 40..59
  EXPECT_TRUE(Lock(*client, file, kOwnerB, LockType::kWrite, 45, 10).ok());
  nfs::Status s = Lock(*client, file, kOwnerB, LockType::kWrite, 10, 10);
  EXPECT_TRUE(Denied(s)) << s.ToString();
  s = Lock(*client, file, kOwnerB, LockType::kWrite, 70, 10);
  EXPECT_TRUE(Denied(s)) << s.ToString();
  auto tail = Test(*client, file, kOwnerC, LockType::kRead, 65, 1);
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  ASSERT_TRUE(tail->has_value());
  EXPECT_EQ((*tail)->offset, 60u);
  EXPECT_EQ((*tail)->length, 40u);
  ASSERT_TRUE(sync.Close(file.file).ok());
}

TEST_F(LockTest, CloseReleasesTheLocksOfItsOpen) {
  auto first = MountOrFail(Options(2));
  auto second = MountOrFail(Options(2));
  ASSERT_TRUE(first && second);
  nfs::SyncClient a(first.get()), b(second.get());
  nfs::OpenResult fa = CreateFile(a, "close.bin");
  nfs::OpenResult fb = OpenExisting(b, "close.bin");
  ASSERT_TRUE(fa.file && fb.file);

  ASSERT_TRUE(Lock(*first, fa, kOwnerA, LockType::kWrite, 0, nfs::kLockToEnd).ok());
  nfs::Status s = Lock(*second, fb, kOwnerA, LockType::kWrite, 0, 10);
  EXPECT_TRUE(Denied(s)) << s.ToString();
  nfs::Status closed = a.Close(fa.file);
  ASSERT_TRUE(closed.ok()) << closed.ToString();
  EXPECT_TRUE(Lock(*second, fb, kOwnerA, LockType::kWrite, 0, 10).ok());
  ASSERT_TRUE(b.Close(fb.file).ok());
}

TEST_F(LockTest, OneOwnersCallsRunInOrder) {
  auto client = MountOrFail(Options(4));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  nfs::OpenResult file = CreateFile(sync, "order.bin");
  ASSERT_TRUE(file.file);

  // Many calls of one owner in flight at once: each must see the lock
  // stateid the previous one left (no OLD_STATEID, no second new owner).
  constexpr int kCalls = 64;
  std::vector<std::promise<nfs::Status>> results(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    auto done = [&, i](const auto& r) { results[i].set_value(r.status()); };
    if (i % 2 == 0) {
      client->Lock({}, file.file.get(), kOwnerA, LockType::kWrite, i * 10, 10,
                   [done](nfs::Result<nfs::Attributes> r) { done(r); });
    } else {
      client->Unlock({}, file.file.get(), kOwnerA, (i - 1) * 10 + 5, 5,
                     [done](nfs::Result<nfs::Unit> r) { done(r); });
    }
  }
  for (int i = 0; i < kCalls; ++i) {
    nfs::Status s = results[i].get_future().get();
    EXPECT_TRUE(s.ok()) << i << ": " << s.ToString();
  }
  // What is left: [i*10, i*10+5) for every even i.
  for (int i = 0; i < kCalls; i += 2) {
    auto held = Test(*client, file, kOwnerB, LockType::kRead, i * 10, 10);
    ASSERT_TRUE(held.ok()) << held.status().ToString();
    ASSERT_TRUE(held->has_value()) << i;
    EXPECT_EQ((*held)->offset, static_cast<uint64_t>(i * 10));
    EXPECT_EQ((*held)->length, 5u);
  }
  ASSERT_TRUE(sync.Close(file.file).ok());
}

// Without a grace period (the test's ganesha is Graceless) a restarted
// server cannot give locks back: they are lost (RFC 8881 8.4.2.1; Linux
// with recover_lost_locks=0). I/O through the open that held them and its
// owners' new locks fail with EIO until the file is closed; unlocking still
// works; other files are unaffected, another client may take the range,
// and the file opened anew locks again.
TEST_F(LockTest, LocksAreLostAfterARestartWithoutGrace) {
  auto client = MountOrFail(Options(2));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  nfs::OpenResult file = CreateFile(sync, "restart.bin");
  ASSERT_TRUE(file.file);
  nfs::OpenResult unlocked = CreateFile(sync, "unlocked.bin");
  ASSERT_TRUE(unlocked.file);
  ASSERT_TRUE(Lock(*client, file, kOwnerA, LockType::kWrite, 0, 100).ok());
  ASSERT_TRUE(Lock(*client, file, kOwnerB, LockType::kWrite, 200, 100).ok());

  server_->Kill();
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(server_->Restart()) << server_->error();

  // The first call finds out about the restart (and waits for recovery).
  const std::vector<uint8_t> bytes(10, 'x');
  auto wrote = sync.Write(file.fh, file.file.get(), 0, bytes, nfs::Stability::kFileSync);
  EXPECT_TRUE(wrote.status().IsNfs(nfs::v4::NFS4ERR_IO)) << wrote.status().ToString();
  EXPECT_GE(client->info().clientid_recoveries, 1u);
  std::vector<uint8_t> buf(10);
  auto read = sync.Read(file.fh, file.file.get(), 0, buf);
  EXPECT_TRUE(read.status().IsNfs(nfs::v4::NFS4ERR_IO)) << read.status().ToString();
  nfs::Status s = Lock(*client, file, kOwnerA, LockType::kWrite, 0, 100);
  EXPECT_TRUE(s.IsNfs(nfs::v4::NFS4ERR_IO)) << s.ToString();
  EXPECT_TRUE(Unlock(*client, file, kOwnerB, 200, 100).ok());
  s = Lock(*client, file, kOwnerB, LockType::kWrite, 100, 50);
  EXPECT_TRUE(s.IsNfs(nfs::v4::NFS4ERR_IO)) << s.ToString();

  // Another file of the same client carries on.
  auto other_write = sync.Write(unlocked.fh, unlocked.file.get(), 0, bytes,
                                nfs::Stability::kFileSync);
  EXPECT_TRUE(other_write.ok()) << other_write.status().ToString();
  EXPECT_TRUE(Lock(*client, unlocked, kOwnerA, LockType::kWrite, 0, 10).ok());

  // The server holds none of the lost locks: another client gets them.
  auto other = MountOrFail(Options(2));
  ASSERT_TRUE(other);
  nfs::SyncClient o(other.get());
  nfs::OpenResult fo = OpenExisting(o, "restart.bin");
  ASSERT_TRUE(fo.file);
  EXPECT_TRUE(Lock(*other, fo, kOwnerC, LockType::kRead, 0, 10).ok());
  ASSERT_TRUE(o.Close(fo.file).ok());

  // Closing ends it: the file opened again works and locks again.
  ASSERT_TRUE(sync.Close(file.file).ok());
  nfs::OpenResult again = OpenExisting(sync, "restart.bin");
  ASSERT_TRUE(again.file);
  auto rewrote = sync.Write(again.fh, again.file.get(), 0, bytes, nfs::Stability::kFileSync);
  EXPECT_TRUE(rewrote.ok()) << rewrote.status().ToString();
  EXPECT_TRUE(Lock(*client, again, kOwnerA, LockType::kWrite, 0, 100).ok());
  ASSERT_TRUE(sync.Close(again.file).ok());
  ASSERT_TRUE(sync.Close(unlocked.file).ok());
}

// With a grace period (and ganesha's recovery database of clients) the
// server lets the client take its locks back after a restart: LOCK with
// reclaim = true for every range it held, before RECLAIM_COMPLETE
// (nfs/v4/state_recovery.h). The holder keeps its I/O and its locks, and
// another client is refused them.
class GraceLockTest : public LockTest {
 protected:
  GraceLockTest() { server_options_.graceless = false; }
};

TEST_F(GraceLockTest, LocksAreReclaimedInTheGracePeriod) {
  auto client = MountOrFail(Options(2));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  nfs::OpenResult file = CreateFile(sync, "reclaim.bin");
  ASSERT_TRUE(file.file);
  ASSERT_TRUE(Lock(*client, file, kOwnerA, LockType::kWrite, 0, 100).ok());
  ASSERT_TRUE(Unlock(*client, file, kOwnerA, 40, 10).ok());  // holds [0, 40) and [50, 100)
  ASSERT_TRUE(Lock(*client, file, kOwnerB, LockType::kRead, 300, nfs::kLockToEnd).ok());

  server_->Kill();
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(server_->Restart()) << server_->error();

  const std::vector<uint8_t> bytes(10, 'x');
  auto wrote = sync.Write(file.fh, file.file.get(), 0, bytes, nfs::Stability::kFileSync);
  EXPECT_TRUE(wrote.ok()) << wrote.status().ToString();
  EXPECT_GE(client->info().clientid_recoveries, 1u);
  // The reclaimed lock state is the owners' own: they go on with it.
  EXPECT_TRUE(Lock(*client, file, kOwnerA, LockType::kWrite, 0, 10).ok());
  EXPECT_TRUE(Unlock(*client, file, kOwnerB, 1000, 10).ok());

  auto other = MountOrFail(Options(2));
  ASSERT_TRUE(other);
  nfs::SyncClient o(other.get());
  nfs::OpenResult fo = OpenExisting(o, "reclaim.bin");
  ASSERT_TRUE(fo.file);
  nfs::Status s = Lock(*other, fo, kOwnerC, LockType::kRead, 60, 10);
  EXPECT_TRUE(Denied(s)) << s.ToString();
  s = Lock(*other, fo, kOwnerC, LockType::kWrite, 2000, 10);  // B's read lock to the end
  EXPECT_TRUE(Denied(s)) << s.ToString();
  EXPECT_TRUE(Lock(*other, fo, kOwnerC, LockType::kWrite, 40, 10).ok());  // A unlocked it
  ASSERT_TRUE(o.Close(fo.file).ok());
  ASSERT_TRUE(sync.Close(file.file).ok());
}

}  // namespace
}  // namespace floatmount::testing
