#include "nfs/v4/slot_table.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

namespace floatmount::nfs {
namespace {

struct Granted {
  uint32_t slot, seqid, highest;
};

// Acquires a slot if one is free now; otherwise withdraws the request.
std::optional<Granted> AcquireNow(SlotTable& table) {
  std::optional<Granted> got;
  table.Acquire([&](uint32_t slot, uint32_t seqid, uint32_t highest) {
    got = Granted{slot, seqid, highest};
  });
  if (!got) table.TakeWaiters();
  return got;
}

TEST(SlotTableTest, FreshSlotsStartAtSequenceOne) {
  SlotTable table(4);
  for (uint32_t i = 0; i < 4; ++i) {
    auto g = AcquireNow(table);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->slot, i);
    EXPECT_EQ(g->seqid, 1u);
    EXPECT_EQ(g->highest, i);  // sa_highest_slotid: the highest slot in use
  }
  EXPECT_EQ(table.in_use(), 4u);
}

TEST(SlotTableTest, SequenceAdvancesOnlyWhenTheServerProcessed) {
  SlotTable table(1);
  auto g = AcquireNow(table);
  table.Complete(g->slot, 0, 0);  // SEQUENCE OK
  g = AcquireNow(table);
  EXPECT_EQ(g->seqid, 2u);
  table.Release(g->slot);  // e.g. rejected at the RPC level: not processed
  g = AcquireNow(table);
  EXPECT_EQ(g->seqid, 2u);  // the same sequence id is used again
  table.Complete(g->slot, 0, 0);
  EXPECT_EQ(AcquireNow(table)->seqid, 3u);
}

TEST(SlotTableTest, WaitersAreGrantedInOrderWhenSlotsFree) {
  SlotTable table(1);
  auto first = AcquireNow(table);
  std::vector<int> order;
  table.Acquire([&](uint32_t slot, uint32_t seqid, uint32_t) {
    EXPECT_EQ(slot, 0u);
    EXPECT_EQ(seqid, 2u);
    order.push_back(1);
  });
  table.Acquire([&](uint32_t, uint32_t seqid, uint32_t) {
    EXPECT_EQ(seqid, 3u);
    order.push_back(2);
  });
  EXPECT_TRUE(order.empty());
  table.Complete(first->slot, 0, 0);
  EXPECT_EQ(order, std::vector<int>{1});
  table.Complete(0, 0, 0);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(SlotTableTest, FollowsTheServersTargetHighestSlot) {
  SlotTable table(8);
  std::vector<Granted> held;
  for (int i = 0; i < 8; ++i) held.push_back(*AcquireNow(table));
  // The server asks us to use slots 0..1 only.
  table.Complete(held[7].slot, 7, 1);
  EXPECT_EQ(table.limit(), 2u);
  for (int i = 2; i < 7; ++i) table.Complete(held[i].slot, 7, 1);
  EXPECT_FALSE(AcquireNow(table));  // slots 0 and 1 are still busy
  table.Complete(held[0].slot, 7, 1);
  auto g = AcquireNow(table);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->slot, 0u);
  // And grows again when the target rises.
  table.Complete(held[1].slot, 7, 7);
  EXPECT_EQ(table.limit(), 8u);
  EXPECT_TRUE(AcquireNow(table));
}

TEST(SlotTableTest, ARetiredSlotIsNeverHandedOutAgain) {
  SlotTable table(2);
  auto a = AcquireNow(table);
  auto b = AcquireNow(table);
  table.Retire(a->slot);
  table.Complete(b->slot, 1, 1);
  auto c = AcquireNow(table);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->slot, b->slot);
  EXPECT_FALSE(AcquireNow(table));
}

TEST(SlotTableTest, TakeWaitersEmptiesTheQueue) {
  SlotTable table(1);
  AcquireNow(table);
  int ran = 0;
  table.Acquire([&](uint32_t, uint32_t, uint32_t) { ++ran; });
  table.Acquire([&](uint32_t, uint32_t, uint32_t) { ++ran; });
  auto waiters = table.TakeWaiters();
  EXPECT_EQ(waiters.size(), 2u);
  table.Complete(0, 0, 0);
  EXPECT_EQ(ran, 0);
}

TEST(SlotTableTest, OutOfRangeSlotsAreIgnored) {
  SlotTable table(1);
  table.Release(UINT32_MAX);
  table.Complete(5, 0, 0);
  EXPECT_EQ(AcquireNow(table)->seqid, 1u);
}

}  // namespace
}  // namespace floatmount::nfs
