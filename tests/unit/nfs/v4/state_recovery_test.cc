// RecoverState (nfs/v4/state_recovery.h) against a fake RecoveryOps that
// records every call: what is reclaimed, in which order, and which locks
// are lost when the server refuses.
#include "nfs/v4/state_recovery.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nfs/v4/ops_util.h"
#include "nfs/v4/protocol.h"

namespace floatmount::nfs {
namespace {

using namespace v4;  // NOLINT: RFC names read best unqualified here

constexpr uint64_t kOwnerA = 0xA1;
constexpr uint64_t kOwnerB = 0xB2;

v4::Stateid Id(uint8_t n) {
  v4::Stateid id;
  id.seqid = 1;
  id.other.fill(n);
  return id;
}

std::string NameOf(const OpenState& open) {
  return std::string(reinterpret_cast<const char*>(open.fh().data()), open.fh().size());
}

// An open of file `name` whose stateid is `stateid`.
std::shared_ptr<OpenState> MakeOpen(const std::string& name, uint8_t stateid) {
  auto open = std::make_shared<OpenState>(
      FileHandle(reinterpret_cast<const uint8_t*>(name.data()), name.size()), "fm-open-" + name,
      OPEN4_SHARE_ACCESS_BOTH, Credentials{1000, 1000, {}});
  open->set_stateid(Id(stateid));
  return open;
}

// What a granted LOCK leaves behind (as SendLock in nfs/v4/locks.cc).
void Locked(OpenState& open, uint64_t owner, uint8_t lock_stateid, uint32_t type,
            uint64_t offset, uint64_t length) {
  open.SetLockStateid(owner, Id(lock_stateid), open.stateid());
  open.Granted(owner, type, offset, length);
}

class FakeRecoveryOps : public RecoveryOps {
 public:
  Result<v4::Stateid> Reopen(const OpenState& open, bool previous) override {
    const std::string name = NameOf(open);
    calls.push_back((previous ? "OPEN CLAIM_PREVIOUS " : "OPEN CLAIM_FH ") + name);
    if (previous && reclaim_open_error.count(name)) return reclaim_open_error.at(name);
    if (!previous && same_open.count(name)) return open.stateid();
    return Id(next_id++);
  }
  Result<v4::Stateid> Lock(const OpenState& open, v4::LockArgs args) override {
    const std::string name = NameOf(open);
    calls.push_back("LOCK " + name);
    locks.push_back(args);
    if (lock_error.count(name)) return lock_error.at(name);
    return Id(next_id++);
  }
  Status ReclaimComplete() override {
    calls.push_back("RECLAIM_COMPLETE");
    return Status::Ok();
  }
  Result<std::vector<uint32_t>> TestStateids(const std::vector<v4::Stateid>&) override {
    ADD_FAILURE() << "full recovery does not test stateids";
    return Status::Ok();
  }
  Status FreeStateid(const v4::Stateid&) override {
    ADD_FAILURE() << "full recovery does not free stateids";
    return Status::Ok();
  }

  std::vector<std::string> calls;
  std::vector<v4::LockArgs> locks;
  std::map<std::string, Status> reclaim_open_error;  // by file: OPEN CLAIM_PREVIOUS fails
  std::map<std::string, Status> lock_error;          // by file: every LOCK fails
  std::map<std::string, bool> same_open;             // by file: CLAIM_FH hands back the open
  uint8_t next_id = 100;
};

TEST(StateRecoveryTest, ReclaimSendsLockReclaimOfTheRecordedRangesBeforeReclaimComplete) {
  auto f = MakeOpen("f", 1);
  Locked(*f, kOwnerA, 10, WRITE_LT, 0, 100);
  Locked(*f, kOwnerA, 11, READ_LT, 200, NFS4_UINT64_MAX);
  f->Released(kOwnerA, 50, 10);  // A unlocked [50, 60)
  Locked(*f, kOwnerB, 12, WRITE_LT, 1000, 1);
  f->Released(kOwnerB, 1000, 1);  // B holds nothing any more
  const std::string a_name = f->lock_owner(kOwnerA).name;

  FakeRecoveryOps ops;
  RecoverState(ops, {f}, /*reclaim=*/true);

  EXPECT_EQ(ops.calls, (std::vector<std::string>{"OPEN CLAIM_PREVIOUS f", "LOCK f", "LOCK f",
                                                 "LOCK f", "RECLAIM_COMPLETE"}));
  ASSERT_EQ(ops.locks.size(), 3u);
  const v4::Stateid reopened = Id(100);
  EXPECT_EQ(f->stateid(), reopened);
  // The first names the owner anew from the reclaimed open, under its old name.
  EXPECT_TRUE(ops.locks[0].reclaim);
  EXPECT_TRUE(ops.locks[0].new_lock_owner);
  EXPECT_EQ(ops.locks[0].open_stateid, reopened);
  EXPECT_EQ(ops.locks[0].lock_owner.owner, a_name);
  EXPECT_EQ(ops.locks[0].locktype, uint32_t(WRITE_LT));
  EXPECT_EQ(ops.locks[0].offset, 0u);
  EXPECT_EQ(ops.locks[0].length, 50u);
  // The others go on with the lock stateid the first returned.
  EXPECT_TRUE(ops.locks[1].reclaim);
  EXPECT_FALSE(ops.locks[1].new_lock_owner);
  EXPECT_EQ(ops.locks[1].lock_stateid, Id(101));
  EXPECT_EQ(ops.locks[1].offset, 60u);
  EXPECT_EQ(ops.locks[1].length, 40u);
  EXPECT_TRUE(ops.locks[2].reclaim);
  EXPECT_EQ(ops.locks[2].locktype, uint32_t(READ_LT));
  EXPECT_EQ(ops.locks[2].offset, 200u);
  EXPECT_EQ(ops.locks[2].length, NFS4_UINT64_MAX);

  // A's lock state is the reclaimed one; B, who held nothing, starts over.
  const OpenState::LockOwner a = f->lock_owner(kOwnerA);
  EXPECT_TRUE(a.known);
  EXPECT_FALSE(a.lost);
  EXPECT_EQ(a.stateid, Id(103));
  EXPECT_EQ(a.open_stateid, reopened);
  EXPECT_FALSE(f->lock_owner(kOwnerB).known);
  EXPECT_FALSE(f->locks_lost());
  EXPECT_TRUE(LockLostStatus(f.get()).ok());
}

class RefusedLockReclaimTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(RefusedLockReclaimTest, MarksTheLockLostAndFailsThatFilesIoOnly) {
  auto f = MakeOpen("f", 1);
  auto g = MakeOpen("g", 2);
  Locked(*f, kOwnerA, 10, WRITE_LT, 0, 100);
  Locked(*g, kOwnerA, 11, WRITE_LT, 0, 100);
  FakeRecoveryOps ops;
  ops.lock_error["f"] = Status::Nfs(GetParam(), "LOCK");

  RecoverState(ops, {f, g}, /*reclaim=*/true);

  EXPECT_EQ(ops.calls, (std::vector<std::string>{"OPEN CLAIM_PREVIOUS f", "LOCK f",
                                                 "OPEN CLAIM_PREVIOUS g", "LOCK g",
                                                 "RECLAIM_COMPLETE"}));
  EXPECT_TRUE(f->lock_owner(kOwnerA).lost);
  EXPECT_TRUE(f->locks_lost());
  // What READ and WRITE through f now fail with: EIO (fuse/errno_map.cc).
  EXPECT_TRUE(LockLostStatus(f.get()).IsNfs(NFS4ERR_IO)) << LockLostStatus(f.get()).ToString();
  // g is another file: reclaimed, its I/O goes on.
  EXPECT_FALSE(g->lock_owner(kOwnerA).lost);
  EXPECT_TRUE(g->lock_owner(kOwnerA).known);
  EXPECT_TRUE(LockLostStatus(g.get()).ok());

  // A later recovery leaves the lost owner lost (until close) and asks nothing for it.
  FakeRecoveryOps again;
  RecoverState(again, {f}, /*reclaim=*/true);
  EXPECT_EQ(again.calls, (std::vector<std::string>{"OPEN CLAIM_PREVIOUS f", "RECLAIM_COMPLETE"}));
  EXPECT_TRUE(f->locks_lost());
}

INSTANTIATE_TEST_SUITE_P(Refusals, RefusedLockReclaimTest,
                         ::testing::Values(NFS4ERR_RECLAIM_BAD, NFS4ERR_NO_GRACE,
                                           NFS4ERR_RECLAIM_CONFLICT, NFS4ERR_DENIED));

TEST(StateRecoveryTest, AnOpenThatCannotBeReclaimedIsOpenedAnewAfterReclaimCompleteWithoutLocks) {
  auto f = MakeOpen("f", 1);
  auto g = MakeOpen("g", 2);
  Locked(*f, kOwnerA, 10, WRITE_LT, 0, 100);
  Locked(*g, kOwnerA, 11, WRITE_LT, 0, 100);
  FakeRecoveryOps ops;
  ops.reclaim_open_error["f"] = Status::Nfs(NFS4ERR_RECLAIM_BAD, "OPEN");

  RecoverState(ops, {f, g}, /*reclaim=*/true);

  // Reclaims first, then RECLAIM_COMPLETE, then what needs a plain OPEN.
  EXPECT_EQ(ops.calls, (std::vector<std::string>{"OPEN CLAIM_PREVIOUS f", "OPEN CLAIM_PREVIOUS g",
                                                 "LOCK g", "RECLAIM_COMPLETE",
                                                 "OPEN CLAIM_FH f"}));
  EXPECT_NE(f->stateid(), Id(1));
  EXPECT_TRUE(f->locks_lost());
  EXPECT_TRUE(LockLostStatus(f.get()).IsNfs(NFS4ERR_IO));
  EXPECT_FALSE(g->locks_lost());
}

TEST(StateRecoveryTest, NoGraceStopsReclaimingAndEveryHeldLockIsLost) {
  auto f = MakeOpen("f", 1);
  auto g = MakeOpen("g", 2);
  auto h = MakeOpen("h", 3);  // no locks
  Locked(*f, kOwnerA, 10, WRITE_LT, 0, 100);
  Locked(*g, kOwnerB, 11, READ_LT, 0, 100);
  FakeRecoveryOps ops;
  ops.reclaim_open_error["f"] = Status::Nfs(NFS4ERR_NO_GRACE, "OPEN");

  RecoverState(ops, {f, g, h}, /*reclaim=*/true);

  EXPECT_EQ(ops.calls, (std::vector<std::string>{"OPEN CLAIM_PREVIOUS f", "RECLAIM_COMPLETE",
                                                 "OPEN CLAIM_FH f", "OPEN CLAIM_FH g",
                                                 "OPEN CLAIM_FH h"}));
  EXPECT_TRUE(f->locks_lost());
  EXPECT_TRUE(g->locks_lost());
  EXPECT_FALSE(h->locks_lost());  // nothing was locked through it
  EXPECT_TRUE(LockLostStatus(h.get()).ok());
}

TEST(StateRecoveryTest, WithoutANewClientIdLocksLiveOnIfTheServerHandsBackTheSameOpen) {
  auto f = MakeOpen("f", 1);
  auto g = MakeOpen("g", 2);
  Locked(*f, kOwnerA, 10, WRITE_LT, 0, 100);
  Locked(*g, kOwnerA, 11, WRITE_LT, 0, 100);
  FakeRecoveryOps ops;
  ops.same_open["f"] = true;  // the server still had f's open

  RecoverState(ops, {f, g}, /*reclaim=*/false);

  EXPECT_EQ(ops.calls, (std::vector<std::string>{"OPEN CLAIM_FH f", "OPEN CLAIM_FH g"}));
  EXPECT_FALSE(f->locks_lost());
  EXPECT_TRUE(f->lock_owner(kOwnerA).known);
  EXPECT_TRUE(g->locks_lost());
}

}  // namespace
}  // namespace floatmount::nfs

namespace floatmount::nfs {
namespace {

// A call of the pass that finds the session lost again says nothing about
// the state it was for: the pass stops there and reports it, no lock is
// marked lost, RECLAIM_COMPLETE is not sent, and the engine runs the whole
// pass again once it has a session.
TEST(StateRecoveryTest, AnInterruptedPassStopsWithoutLosingLocks) {
  for (const Status& again : {Status::Nfs(NFS4ERR_BADSESSION, "LOCK"),
                              Status::Nfs(NFS4ERR_STALE_CLIENTID, "LOCK")}) {
    auto f = MakeOpen("f", 1);
    auto g = MakeOpen("g", 2);
    Locked(*f, kOwnerA, 10, WRITE_LT, 0, 100);
    FakeRecoveryOps ops;
    ops.lock_error["f"] = again;
    EXPECT_FALSE(RecoverState(ops, {f, g}, /*reclaim=*/true));
    EXPECT_EQ(ops.calls, (std::vector<std::string>{"OPEN CLAIM_PREVIOUS f", "LOCK f"}));
    EXPECT_FALSE(f->lock_owner(kOwnerA).lost) << again.ToString();

    ops.lock_error.clear();
    ops.calls.clear();
    EXPECT_TRUE(RecoverState(ops, {f, g}, /*reclaim=*/true));  // the pass again
    EXPECT_EQ(ops.calls.back(), "RECLAIM_COMPLETE");
    EXPECT_FALSE(f->lock_owner(kOwnerA).lost);
  }
}

}  // namespace
}  // namespace floatmount::nfs
