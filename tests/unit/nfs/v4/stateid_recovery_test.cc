// RecoverRevokedState and RevokedFlagEpisode (nfs/v4/stateid_recovery.h)
// against a fake RecoveryOps that records every call and answers
// TEST_STATEID from a table: which stateids are tested, in which order
// they are freed and reopened, which locks are lost, and that nothing else
// is touched.
#include "nfs/v4/stateid_recovery.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
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

Stateid Id(uint8_t n) {
  Stateid id;
  id.seqid = 1;
  id.other.fill(n);
  return id;
}

std::string NameOf(const OpenState& open) {
  return std::string(reinterpret_cast<const char*>(open.fh().data()), open.fh().size());
}

std::shared_ptr<OpenState> MakeOpen(const std::string& name, uint8_t stateid) {
  auto open = std::make_shared<OpenState>(
      FileHandle(reinterpret_cast<const uint8_t*>(name.data()), name.size()), "fm-open-" + name,
      OPEN4_SHARE_ACCESS_BOTH, Credentials{1000, 1000, {}});
  open->set_stateid(Id(stateid));
  return open;
}

void Locked(OpenState& open, uint64_t owner, uint8_t lock_stateid) {
  open.SetLockStateid(owner, Id(lock_stateid), open.stateid());
  open.Granted(owner, WRITE_LT, 0, 100);
}

// Names a stateid by its "other" byte, for readable call logs.
std::string Sid(const Stateid& id) { return std::to_string(int(id.other[0])); }

class FakeStateidOps : public RecoveryOps {
 public:
  Result<Stateid> Reopen(const OpenState& open, bool previous) override {
    calls.push_back((previous ? "OPEN CLAIM_PREVIOUS " : "OPEN CLAIM_FH ") + NameOf(open));
    return Id(next_id++);
  }
  Result<Stateid> Lock(const OpenState& open, LockArgs) override {
    calls.push_back("LOCK " + NameOf(open));
    return Id(next_id++);
  }
  Status ReclaimComplete() override {
    calls.push_back("RECLAIM_COMPLETE");
    return Status::Ok();
  }
  Result<std::vector<uint32_t>> TestStateids(const std::vector<Stateid>& stateids) override {
    std::string call = "TEST_STATEID";
    std::vector<uint32_t> codes;
    for (const Stateid& id : stateids) {
      call += " " + Sid(id);
      auto it = code.find(id.other[0]);
      codes.push_back(it == code.end() ? uint32_t(NFS4_OK) : it->second);
    }
    calls.push_back(call);
    if (after_test) after_test();
    if (!test_error.ok()) return test_error;
    return codes;
  }
  Status FreeStateid(const Stateid& stateid) override {
    calls.push_back("FREE_STATEID " + Sid(stateid));
    return Status::Ok();
  }

  std::vector<std::string> calls;
  std::map<uint8_t, uint32_t> code;     // TEST_STATEID's answer by stateid; else NFS4_OK
  Status test_error = Status::Ok();     // the whole TEST_STATEID fails
  std::function<void()> after_test;     // runs between TEST_STATEID and the rest
  uint8_t next_id = 100;
};

TEST(StateidRecoveryTest, RevokedOpenIsTestedFreedAndReopenedOthersUntouched) {
  auto f = MakeOpen("f", 1);
  auto g = MakeOpen("g", 2);
  auto h = MakeOpen("h", 3);
  Locked(*h, kOwnerA, 30);
  FakeStateidOps ops;
  ops.code[1] = NFS4ERR_ADMIN_REVOKED;

  const RevokedStateReport report = RecoverRevokedState(ops, {f, g, h});

  // One batched TEST_STATEID, then FREE_STATEID, then the reopen.
  EXPECT_EQ(ops.calls, (std::vector<std::string>{"TEST_STATEID 1 2 3 30", "FREE_STATEID 1",
                                                 "OPEN CLAIM_FH f"}));
  EXPECT_EQ(f->stateid(), Id(100));
  EXPECT_EQ(g->stateid(), Id(2));
  EXPECT_EQ(h->stateid(), Id(3));
  EXPECT_TRUE(h->lock_owner(kOwnerA).known);
  EXPECT_EQ(h->lock_owner(kOwnerA).stateid, Id(30));
  EXPECT_FALSE(h->locks_lost());
  EXPECT_FALSE(f->locks_lost());  // it held no locks
  EXPECT_EQ(report.tested, 4u);
  EXPECT_EQ(report.revoked, 1u);
  EXPECT_EQ(report.freed, 1u);
  EXPECT_EQ(report.reopened, 1u);
  EXPECT_EQ(report.locks_lost, 0u);
}

class RevokedLockTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(RevokedLockTest, LosesThatOwnersLocksFreesItAndKeepsTheOpen) {
  auto f = MakeOpen("f", 1);
  auto g = MakeOpen("g", 2);
  Locked(*f, kOwnerA, 10);
  f->SetLockStateid(kOwnerB, Id(11), f->stateid());  // B holds nothing
  Locked(*g, kOwnerA, 20);
  FakeStateidOps ops;
  ops.code[10] = GetParam();
  ops.code[11] = GetParam();

  RecoverRevokedState(ops, {f, g});

  std::vector<std::string> want = {"TEST_STATEID 1 10 11 2 20"};
  if (GetParam() != NFS4ERR_BAD_STATEID && GetParam() != NFS4ERR_STALE_STATEID) {
    // The server forgot BAD and STALE ones: nothing to free.
    want.push_back("FREE_STATEID 10");
    want.push_back("FREE_STATEID 11");
  }
  // lock_owners() comes from a hash map: compare TEST_STATEID's contents, not order.
  ASSERT_EQ(ops.calls.size(), want.size());
  EXPECT_TRUE(ops.calls[0] == want[0] || ops.calls[0] == "TEST_STATEID 1 11 10 2 20")
      << ops.calls[0];
  for (size_t i = 1; i < want.size(); ++i) {
    EXPECT_NE(std::find(ops.calls.begin(), ops.calls.end(), want[i]), ops.calls.end()) << want[i];
  }
  EXPECT_TRUE(f->lock_owner(kOwnerA).lost);
  EXPECT_TRUE(f->locks_lost());
  EXPECT_TRUE(LockLostStatus(f.get()).IsNfs(NFS4ERR_IO));
  EXPECT_FALSE(f->lock_owner(kOwnerB).lost);   // held nothing: starts over
  EXPECT_FALSE(f->lock_owner(kOwnerB).known);
  EXPECT_EQ(f->stateid(), Id(1));              // the open itself is fine: no reopen
  EXPECT_FALSE(g->locks_lost());               // another file
  EXPECT_TRUE(LockLostStatus(g.get()).ok());
}

INSTANTIATE_TEST_SUITE_P(Codes, RevokedLockTest,
                         ::testing::Values(NFS4ERR_ADMIN_REVOKED, NFS4ERR_EXPIRED,
                                           NFS4ERR_BAD_STATEID, NFS4ERR_STALE_STATEID));

TEST(StateidRecoveryTest, RevokedOpenWithLocksIsReopenedAndItsLocksAreLost) {
  auto f = MakeOpen("f", 1);
  Locked(*f, kOwnerA, 10);
  FakeStateidOps ops;
  ops.code[1] = NFS4ERR_EXPIRED;
  ops.code[10] = NFS4ERR_EXPIRED;

  const RevokedStateReport report = RecoverRevokedState(ops, {f});

  EXPECT_EQ(ops.calls, (std::vector<std::string>{"TEST_STATEID 1 10", "FREE_STATEID 1",
                                                 "FREE_STATEID 10", "OPEN CLAIM_FH f"}));
  EXPECT_EQ(f->stateid(), Id(100));
  EXPECT_TRUE(f->locks_lost());
  EXPECT_EQ(report.locks_lost, 1u);
}

TEST(StateidRecoveryTest, BadOpenStateidIsReopenedWithoutFreeStateid) {
  auto f = MakeOpen("f", 1);
  FakeStateidOps ops;
  ops.code[1] = NFS4ERR_BAD_STATEID;

  RecoverRevokedState(ops, {f});

  EXPECT_EQ(ops.calls, (std::vector<std::string>{"TEST_STATEID 1", "OPEN CLAIM_FH f"}));
}

TEST(StateidRecoveryTest, AClosedOpenIsNeitherTestedNorReopened) {
  auto f = MakeOpen("f", 1);
  auto g = MakeOpen("g", 2);
  f->MarkClosing();
  FakeStateidOps ops;
  ops.code[1] = NFS4ERR_ADMIN_REVOKED;
  ops.code[2] = NFS4ERR_ADMIN_REVOKED;
  // g is closed while TEST_STATEID is on its way.
  ops.after_test = [g] { g->MarkClosing(); };

  const RevokedStateReport report = RecoverRevokedState(ops, {f, g});

  // g's revoked stateid is freed (the server's record goes), but no OPEN.
  EXPECT_EQ(ops.calls, (std::vector<std::string>{"TEST_STATEID 2", "FREE_STATEID 2"}));
  EXPECT_EQ(report.reopened, 0u);
  EXPECT_EQ(f->stateid(), Id(1));
}

TEST(StateidRecoveryTest, NothingIsTouchedWhenTestStateidFails) {
  auto f = MakeOpen("f", 1);
  Locked(*f, kOwnerA, 10);
  FakeStateidOps ops;
  ops.code[1] = NFS4ERR_ADMIN_REVOKED;
  ops.test_error = Status::Nfs(NFS4ERR_DELAY, "TEST_STATEID");

  const RevokedStateReport report = RecoverRevokedState(ops, {f});

  EXPECT_FALSE(report.answered);
  EXPECT_EQ(ops.calls, (std::vector<std::string>{"TEST_STATEID 1 10"}));
  EXPECT_FALSE(f->locks_lost());
  EXPECT_EQ(f->stateid(), Id(1));
}

TEST(StateidRecoveryTest, ManyStateidsAreTestedInBatches) {
  std::vector<std::shared_ptr<OpenState>> opens;
  for (int i = 0; i < 70; ++i) opens.push_back(MakeOpen("f" + std::to_string(i), uint8_t(i + 1)));
  FakeStateidOps ops;
  ops.code[70] = NFS4ERR_ADMIN_REVOKED;  // the last one, in the second batch

  const RevokedStateReport report = RecoverRevokedState(ops, opens);

  ASSERT_EQ(ops.calls.size(), 4u);
  EXPECT_EQ(ops.calls[0].rfind("TEST_STATEID 1 2 ", 0), 0u);
  EXPECT_EQ(ops.calls[1], "TEST_STATEID 65 66 67 68 69 70");
  EXPECT_EQ(ops.calls[2], "FREE_STATEID 70");
  EXPECT_EQ(ops.calls[3], "OPEN CLAIM_FH f69");
  EXPECT_EQ(report.tested, 70u);
}

// Two nodes that number state alike, reached in turn at one address: the
// stateid the server calls valid is its number for another file, and each
// WRITE through it fails BAD_STATEID. The first refusal may be a race (the
// open's stateid changing as the WRITE was encoded): resend. The second
// for the same stateid opens the file again; only the refused open, and
// only once per number.
TEST(StateidRecoveryTest, AnOpenRefusedTwiceWithAStateidCalledValidIsOpenedAgain) {
  auto f = MakeOpen("f", 1);
  auto g = MakeOpen("g", 2);
  Locked(*f, kOwnerA, 10);
  FakeStateidOps ops;
  const std::vector<RefusedIo> refused = {{f.get(), Id(1)}, {f.get(), Id(1)}};

  RevokedStateReport report = RecoverRevokedState(ops, {f, g}, refused);
  EXPECT_EQ(ops.calls, (std::vector<std::string>{"TEST_STATEID 1 10 2"}));
  EXPECT_EQ(report.refused_valid, 0u);
  EXPECT_EQ(f->stateid(), Id(1));

  ops.calls.clear();
  report = RecoverRevokedState(ops, {f, g}, refused);
  EXPECT_EQ(ops.calls, (std::vector<std::string>{"TEST_STATEID 1 10 2", "OPEN CLAIM_FH f"}));
  EXPECT_EQ(report.refused_valid, 1u);
  EXPECT_EQ(report.reopened, 1u);
  EXPECT_EQ(f->stateid(), Id(100));
  EXPECT_TRUE(f->locks_lost());  // made through the number the server meant otherwise
  EXPECT_EQ(g->stateid(), Id(2));

  // The new stateid starts over: refused once, it is resent.
  ops.calls.clear();
  report = RecoverRevokedState(ops, {f}, {{f.get(), Id(100)}});
  EXPECT_EQ(ops.calls, (std::vector<std::string>{"TEST_STATEID 100"}));
  EXPECT_EQ(report.refused_valid, 0u);
}

// After a reopen, WRITEs still in flight with the old stateid come back
// refused in more than one pass: the stateid now is valid and was never
// refused, so nothing more is done (a reopen would lose the locks).
TEST(StateidRecoveryTest, RefusalsOfAnOlderStateidNeverReopen) {
  auto f = MakeOpen("f", 7);
  Locked(*f, kOwnerA, 10);
  FakeStateidOps ops;
  for (int pass = 0; pass < 3; ++pass) {
    const RevokedStateReport report = RecoverRevokedState(ops, {f}, {{f.get(), Id(1)}});
    EXPECT_EQ(report.refused_valid, 0u);
  }
  EXPECT_EQ(f->stateid(), Id(7));
  EXPECT_FALSE(f->locks_lost());

  // Passes without a refusal (a revoked-state flag's) reopen nothing either.
  auto g = MakeOpen("g", 2);
  RecoverRevokedState(ops, {g}, {{g.get(), Id(2)}});
  RecoverRevokedState(ops, {g});
  RecoverRevokedState(ops, {g});
  EXPECT_EQ(g->stateid(), Id(2));
  // Nor does a refusal of another open.
  RecoverRevokedState(ops, {g}, {{f.get(), Id(2)}});
  EXPECT_EQ(g->stateid(), Id(2));
  for (const std::string& call : ops.calls) EXPECT_EQ(call.rfind("OPEN", 0), std::string::npos);
}

TEST(RevokedFlagEpisodeTest, AFlagSetOnEveryReplyStartsOnePassPerEpisode) {
  RevokedFlagEpisode episode;
  EXPECT_FALSE(episode.OnReply(false));
  EXPECT_FALSE(episode.Begin());  // nothing due

  EXPECT_TRUE(episode.OnReply(true));  // the episode starts
  EXPECT_TRUE(episode.pending());
  EXPECT_FALSE(episode.OnReply(true));  // more flagged replies: the same pass
  EXPECT_TRUE(episode.Begin());
  EXPECT_FALSE(episode.OnReply(true));   // replies sent before our FREE_STATEIDs
  EXPECT_FALSE(episode.OnReply(false));  // (an unflagged one mid-pass changes nothing)
  episode.End(/*answered=*/true);
  // The server still flags (something we could not free): no second pass.
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(episode.OnReply(true));
  EXPECT_FALSE(episode.pending());

  // Cleared, then a new revocation: a new episode.
  EXPECT_FALSE(episode.OnReply(false));
  EXPECT_TRUE(episode.OnReply(true));
  EXPECT_TRUE(episode.Begin());
  // TEST_STATEID went unanswered: the next flagged reply tries again.
  episode.End(/*answered=*/false);
  EXPECT_TRUE(episode.OnReply(true));
}

}  // namespace
}  // namespace floatmount::nfs
