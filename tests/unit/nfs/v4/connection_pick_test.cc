// nfs/v4/connection_pick.h: bulk calls leave one connection to small ones;
// a stalled connection gets calls only when no other works.
#include "nfs/v4/connection_pick.h"

#include <gtest/gtest.h>

#include <vector>

namespace floatmount::nfs {
namespace {

ConnLoad Up(size_t outstanding) { return ConnLoad{true, false, outstanding}; }

TEST(ConnectionPickTest, BulkCallsKeepOffTheFirstUsableConnection) {
  // The first connection is idle, yet a WRITE goes to the least loaded other.
  std::vector<ConnLoad> conns{Up(0), Up(4), Up(3), Up(5)};
  EXPECT_EQ(PickConnection(conns, true), 2);
  // A GETATTR takes the idle one.
  EXPECT_EQ(PickConnection(conns, false), 0);
}

TEST(ConnectionPickTest, SmallCallsTakeTheLeastLoadedOfAll) {
  std::vector<ConnLoad> conns{Up(2), Up(1), Up(3)};
  EXPECT_EQ(PickConnection(conns, false), 1);
}

TEST(ConnectionPickTest, TheReservedConnectionIsTheFirstUsableOne) {
  std::vector<ConnLoad> conns{ConnLoad{}, Up(0), Up(2)};  // the first is down
  EXPECT_EQ(PickConnection(conns, true), 2);
  EXPECT_EQ(PickConnection(conns, false), 1);
}

TEST(ConnectionPickTest, WithOneConnectionBulkCallsUseIt) {
  std::vector<ConnLoad> conns{ConnLoad{}, Up(7)};
  EXPECT_EQ(PickConnection(conns, true), 1);
}

TEST(ConnectionPickTest, DrainingConnectionsOnlyWhenNothingElseIsUp) {
  std::vector<ConnLoad> conns{ConnLoad{true, true, 0}, Up(9)};
  EXPECT_EQ(PickConnection(conns, false), 1);
  EXPECT_EQ(PickConnection(conns, true), 1);
  std::vector<ConnLoad> only_draining{ConnLoad{true, true, 3}, ConnLoad{true, true, 1}};
  EXPECT_EQ(PickConnection(only_draining, true), 1);
  EXPECT_EQ(PickConnection(std::vector<ConnLoad>{ConnLoad{}}, false), -1);
}

ConnLoad Stalled(size_t outstanding) { return ConnLoad{true, false, outstanding, true}; }

TEST(ConnectionPickTest, AStalledConnectionGetsNoCallsWhileAnotherWorks) {
  // Fewer calls wait on the stalled one, yet they wait for nothing.
  std::vector<ConnLoad> conns{Stalled(1), Up(6), Up(5)};
  EXPECT_EQ(PickConnection(conns, false), 2);
  EXPECT_EQ(PickConnection(conns, true), 2);  // the only working one left
  // Nor does it keep the place of the connection kept for small calls.
  std::vector<ConnLoad> four{Stalled(1), Up(0), Up(3), Up(2)};
  EXPECT_EQ(PickConnection(four, true), 3);
  EXPECT_EQ(PickConnection(four, false), 1);
}

TEST(ConnectionPickTest, StalledConnectionsAreTheLastResort) {
  // A draining connection still answers: it goes before a stalled one.
  std::vector<ConnLoad> conns{Stalled(1), ConnLoad{true, true, 4}};
  EXPECT_EQ(PickConnection(conns, false), 1);
  // All stalled (the server itself is slow or frozen): least loaded.
  std::vector<ConnLoad> all{Stalled(3), Stalled(1), Stalled(2)};
  EXPECT_EQ(PickConnection(all, false), 1);
  EXPECT_EQ(PickConnection(all, true), 1);
}

TEST(ConnectionPickTest, StallIsFoundBeforeTimeoEndsTheCalls) {
  using std::chrono::milliseconds;
  EXPECT_EQ(StallAfter(milliseconds(60000)), milliseconds(2000));
  EXPECT_EQ(StallAfter(milliseconds(2000)), milliseconds(1000));  // soft,timeo=20
}

}  // namespace
}  // namespace floatmount::nfs
