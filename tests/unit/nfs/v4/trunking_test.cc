#include "nfs/v4/trunking.h"

#include <gtest/gtest.h>

#include "nfs/v4/protocol.h"

namespace floatmount::nfs {
namespace {

using namespace std::chrono_literals;

v4::ExchangeIdRes Answer(uint64_t clientid, uint64_t minor = 0, std::string major = "node",
                         std::string scope = "cluster") {
  v4::ExchangeIdRes r;
  r.clientid = clientid;
  r.server_owner_minor = minor;
  r.server_owner_major = std::move(major);
  r.server_scope = std::move(scope);
  r.flags = v4::EXCHGID4_FLAG_CONFIRMED_R;  // the server knows this client
  return r;
}

TEST(ClassifyExchangeIdTest, SameOwnerScopeAndClientIdIsSessionTrunking) {
  EXPECT_EQ(ClassifyExchangeId(Answer(7), Answer(7)), AddressRole::kSession);
}

TEST(ClassifyExchangeIdTest, AnotherMinorWithTheSameClientIdIsClientIdTrunking) {
  EXPECT_EQ(ClassifyExchangeId(Answer(7, 0), Answer(7, 1)), AddressRole::kClientId);
}

// Two nodes of a cluster (or two ganesha processes on one host) give the
// same owner and scope, but each its own client ID: another server.
TEST(ClassifyExchangeIdTest, AnotherClientIdIsAnotherServerEvenWithTheSameOwner) {
  EXPECT_EQ(ClassifyExchangeId(Answer(7), Answer(8)), AddressRole::kOtherServer);
  EXPECT_EQ(ClassifyExchangeId(Answer(7, 0), Answer(8, 1)), AddressRole::kOtherServer);
}

// A server restarted within the second of its previous start (ganesha's
// client IDs start from its start time in seconds) may give our owner a
// new, unconfirmed record with our old client ID's number: it does not
// know us. Taken for ours, the connection was bound to a session the
// server lost, and CREATE_SESSION was sent with the old sequence forever.
TEST(ClassifyExchangeIdTest, AnUnconfirmedRecordIsAnotherServerEvenWithOurClientId) {
  v4::ExchangeIdRes fresh = Answer(7);
  fresh.flags = 0;
  EXPECT_EQ(ClassifyExchangeId(Answer(7), fresh), AddressRole::kOtherServer);
}

// During a client-ID recovery the engine's client ID is the one its
// EXCHANGE_ID just got, unconfirmed until its CREATE_SESSION: a connection
// asking meanwhile gets that record. Taken for another server's, it
// reported the client ID lost again, the next pass reclaimed what the
// first had reclaimed, the server (past RECLAIM_COMPLETE) refused, and the
// locks were called lost (LocksUnderRestartsTest).
TEST(IsPendingRecordTest, OnlyOurNumberUnconfirmedOnOurServerIsThePendingRecord) {
  v4::ExchangeIdRes pending = Answer(7);
  pending.flags = 0;
  EXPECT_TRUE(IsPendingRecord(Answer(7), pending));
  EXPECT_FALSE(IsPendingRecord(Answer(7), Answer(7)));  // confirmed: classified as usual
  v4::ExchangeIdRes other = Answer(8);
  other.flags = 0;
  EXPECT_FALSE(IsPendingRecord(Answer(7), other));
  v4::ExchangeIdRes elsewhere = Answer(7, 0, "other");
  elsewhere.flags = 0;
  EXPECT_FALSE(IsPendingRecord(Answer(7), elsewhere));
}

TEST(ClassifyExchangeIdTest, AnotherOwnerOrScopeIsAnotherServer) {
  EXPECT_EQ(ClassifyExchangeId(Answer(7), Answer(7, 0, "other")), AddressRole::kOtherServer);
  EXPECT_EQ(ClassifyExchangeId(Answer(7), Answer(7, 0, "node", "elsewhere")),
            AddressRole::kOtherServer);
}

TEST(ClassifyExchangeIdTest, OwnerIsDescribedPrintably) {
  EXPECT_EQ(DescribeServerOwner(Answer(7, 3, "host-a")), "host-a minor 3");
  EXPECT_EQ(DescribeServerOwner(Answer(7, 0, std::string("\x01\xff", 2))), "01ff minor 0");
}

TEST(SessionBudgetTest, AllowsTheBoundPerMinuteThenHoldsBackUntilTheWindowSlides) {
  SessionBudget budget(3);
  const auto t0 = SessionBudget::Clock::time_point{} + 1000s;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(budget.Allow(t0 + std::chrono::seconds(i)));
    budget.Record(t0 + std::chrono::seconds(i));
  }
  EXPECT_FALSE(budget.Allow(t0 + 10s));
  EXPECT_FALSE(budget.Allow(t0 + 59s));
  EXPECT_TRUE(budget.stormed());
  EXPECT_EQ(budget.refused(), 2u);
  EXPECT_EQ(budget.created(), 3u);
  // The first creation leaves the window 60 s after it.
  EXPECT_TRUE(budget.Allow(t0 + 60s));
}

TEST(SessionBudgetTest, ReportsEachStormOnce) {
  SessionBudget budget(1);
  const auto t0 = SessionBudget::Clock::time_point{} + 1000s;
  EXPECT_FALSE(budget.TakeStormStart());
  budget.Record(t0);
  EXPECT_FALSE(budget.Allow(t0 + 1s));
  EXPECT_FALSE(budget.Allow(t0 + 2s));
  EXPECT_TRUE(budget.TakeStormStart());
  EXPECT_FALSE(budget.TakeStormStart());
  EXPECT_FALSE(budget.Allow(t0 + 3s));
  EXPECT_FALSE(budget.TakeStormStart());  // the same storm
  ASSERT_TRUE(budget.Allow(t0 + 61s));
  budget.Record(t0 + 61s);
  EXPECT_FALSE(budget.Allow(t0 + 62s));
  EXPECT_TRUE(budget.TakeStormStart());  // a new one
}

TEST(SessionBudgetTest, ABoundOfZeroStillAllowsOneSession) {
  SessionBudget budget(0);
  EXPECT_EQ(budget.per_minute(), 1u);
  EXPECT_TRUE(budget.Allow(SessionBudget::Clock::now()));
}

}  // namespace
}  // namespace floatmount::nfs
