// Connection placement over a server's addresses (nfs/placement.h): even
// spread, per-address cap, failover and return, few moves.
#include "nfs/placement.h"

#include <gtest/gtest.h>

#include <map>

namespace floatmount::nfs {
namespace {

std::map<int, int> Counts(const std::vector<int>& placement) {
  std::map<int, int> counts;
  for (int a : placement) ++counts[a];
  return counts;
}

int Moves(const std::vector<int>& from, const std::vector<int>& to) {
  int moves = 0;
  for (size_t i = 0; i < from.size(); ++i) moves += from[i] != to[i];
  return moves;
}

TEST(PlacementTest, SpreadsEvenlyOverTheUsableAddresses) {
  const std::vector<int> start(16, 0);  // all on the first address that answered
  const auto p = PlaceConnections(start, {true, true, true}, 0);
  const auto c = Counts(p);
  EXPECT_EQ(c.at(0), 6);  // it already held them: it keeps the extra one
  EXPECT_EQ(c.at(1), 5);
  EXPECT_EQ(c.at(2), 5);
  EXPECT_EQ(Moves(start, p), 10);
  EXPECT_EQ(PlaceConnections(p, {true, true, true}, 0), p);  // stable
}

TEST(PlacementTest, RespectsThePerAddressCap) {
  const auto p = PlaceConnections(std::vector<int>(16, -1), {true, true, true}, 4);
  const auto c = Counts(p);
  EXPECT_EQ(c.at(0), 4);
  EXPECT_EQ(c.at(1), 4);
  EXPECT_EQ(c.at(2), 4);
  EXPECT_EQ(c.at(-1), 4);  // no room anywhere: unused
  // Fewer connections than the cap allows: an even spread, not filling.
  const auto q = Counts(PlaceConnections(std::vector<int>(6, -1), {true, true, true}, 4));
  EXPECT_EQ(q.at(0), 2);
  EXPECT_EQ(q.at(1), 2);
  EXPECT_EQ(q.at(2), 2);
}

TEST(PlacementTest, AFailedAddressLosesItsConnectionsAndTakesItsShareBackOnReturn) {
  const auto even = PlaceConnections(std::vector<int>(16, 0), {true, true, true}, 0);
  const auto failed = PlaceConnections(even, {true, false, true}, 0);
  auto c = Counts(failed);
  EXPECT_EQ(c.count(1), 0u);
  EXPECT_EQ(c.at(0), 8);
  EXPECT_EQ(c.at(2), 8);
  EXPECT_EQ(Moves(even, failed), 5);  // only address 1's connections moved
  const auto back = PlaceConnections(failed, {true, true, true}, 0);
  c = Counts(back);
  EXPECT_EQ(c.at(1), 5);
  EXPECT_EQ(Moves(failed, back), 5);  // and only its share came back
}

TEST(PlacementTest, NoUsableAddressKeepsWhereItWas) {
  const std::vector<int> now = {0, 1, 2, 0};
  EXPECT_EQ(PlaceConnections(now, {false, false, false}, 0), now);
}

TEST(PlacementTest, ANewAddressJoinsTheSpread) {
  const auto two = PlaceConnections(std::vector<int>(8, -1), {true, true}, 0);
  const auto three = PlaceConnections(two, {true, true, true}, 0);
  const auto c = Counts(three);
  EXPECT_EQ(c.at(2), 2);
  EXPECT_EQ(c.at(0) + c.at(1), 6);
  EXPECT_EQ(Moves(two, three), 2);
}

}  // namespace
}  // namespace floatmount::nfs
