// nfs/v4/connection_pick.h: bulk calls leave one connection to small ones.
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

}  // namespace
}  // namespace floatmount::nfs
