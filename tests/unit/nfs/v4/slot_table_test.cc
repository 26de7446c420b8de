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

// A soft timeout leaves the slot's sequence id unknown: it is not handed
// out until a lone SEQUENCE has found where the server is.
TEST(SlotTableTest, AnInterruptedSlotWaitsForItsResynchronisation) {
  SlotTable table(2);
  auto a = AcquireNow(table);
  auto b = AcquireNow(table);
  table.Interrupt(a->slot);
  table.Complete(b->slot, 1, 1);
  auto c = AcquireNow(table);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->slot, b->slot);
  EXPECT_FALSE(AcquireNow(table));
  EXPECT_EQ(table.interrupted(), 1u);

  // A call waits meanwhile; the resynchronisation's success frees the slot
  // for it, with the sequence id after the one that succeeded.
  std::optional<Granted> waiter;
  table.Acquire([&](uint32_t slot, uint32_t seqid, uint32_t highest) {
    waiter = Granted{slot, seqid, highest};
  });
  uint32_t slot, seqid;
  ASSERT_TRUE(table.TakeInterrupted(&slot, &seqid));
  EXPECT_EQ(slot, a->slot);
  EXPECT_EQ(seqid, a->seqid + 1) << "first guess: the server ran the interrupted request";
  EXPECT_EQ(table.interrupted(), 0u);
  EXPECT_FALSE(table.TakeInterrupted(&slot, &seqid));
  EXPECT_FALSE(waiter);
  table.Complete(slot, 1, 1);
  ASSERT_TRUE(waiter);
  EXPECT_EQ(waiter->slot, a->slot);
  EXPECT_EQ(waiter->seqid, a->seqid + 2);
}

TEST(SlotTableTest, AMisorderedResynchronisationStepsBackToTheInterruptedId) {
  SlotTable table(1);
  auto a = AcquireNow(table);
  table.Complete(a->slot, 0, 0);
  a = AcquireNow(table);  // sequence id 2, given up
  ASSERT_EQ(a->seqid, 2u);
  table.Interrupt(a->slot);
  uint32_t slot, seqid;
  ASSERT_TRUE(table.TakeInterrupted(&slot, &seqid));
  EXPECT_EQ(seqid, 3u);
  // SEQ_MISORDERED: the server never ran 2.
  EXPECT_EQ(table.StepBack(slot), 2u);
  table.Complete(slot, 0, 0);
  auto next = AcquireNow(table);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->seqid, 3u);
}

// BADSLOT: the server has fewer slots than the session said; later replies
// that name a higher limit do not bring the refused slots back.
TEST(SlotTableTest, ARefusedSlotCapsTheTableForGood) {
  SlotTable table(8);
  std::vector<Granted> held;
  for (int i = 0; i < 6; ++i) held.push_back(*AcquireNow(table));
  table.Refuse(held[5].slot);
  table.Refuse(held[4].slot);
  EXPECT_EQ(table.limit(), 4u);
  table.Complete(held[0].slot, 7, 7);  // the server says 8 slots again
  EXPECT_EQ(table.limit(), 4u);
  auto next = AcquireNow(table);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->slot, 0u);
  EXPECT_EQ(next->seqid, 2u);
  EXPECT_FALSE(AcquireNow(table)) << "slots 4 and up are not handed out";
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

// Issue 14: 32 writers' WRITEs must not leave another user's GETATTR
// waiting for a slot.
TEST(SlotTableTest, BulkCallsLeaveSmallCallsTheLastSlotsAndAFreedSlotGoesToThemFirst) {
  SlotTable table(16);
  EXPECT_EQ(table.small_reserve(), 4u);
  std::vector<uint32_t> bulk_slots;
  std::vector<int> order;
  for (int i = 0; i < 14; ++i) {
    table.Acquire([&, i](uint32_t slot, uint32_t, uint32_t) {
      bulk_slots.push_back(slot);
      if (i >= 12) order.push_back(100 + i);
    }, /*bulk=*/true);
  }
  EXPECT_EQ(bulk_slots.size(), 12u);  // 4 kept for small calls; 2 WRITEs wait
  // Small calls still get slots at once.
  std::vector<uint32_t> small;
  for (int i = 0; i < 4; ++i) {
    table.Acquire([&](uint32_t slot, uint32_t, uint32_t) { small.push_back(slot); });
  }
  EXPECT_EQ(small.size(), 4u);
  // All 16 busy: a small call waits too, behind nobody of its kind.
  table.Acquire([&](uint32_t, uint32_t, uint32_t) { order.push_back(1); });
  table.Complete(bulk_slots[0], 15, 15);  // the freed slot goes to the small call
  EXPECT_EQ(order, (std::vector<int>{1}));
  table.Complete(small[0], 15, 15);  // 15 busy: bulk may not take it (reserve)
  EXPECT_EQ(order, (std::vector<int>{1}));
  for (int i = 1; i < 4; ++i) table.Complete(small[i], 15, 15);  // 12 busy
  EXPECT_EQ(order, (std::vector<int>{1}));  // 12 + 4 reserve: still not below the limit
  table.Complete(bulk_slots[1], 15, 15);    // 11 busy: the first WRITE waiter, in order
  EXPECT_EQ(order, (std::vector<int>{1, 112}));
  EXPECT_EQ(table.TakeWaiters().size(), 1u);
}

TEST(SlotTableTest, ATinySessionKeepsNoReserve) {
  SlotTable table(2);
  EXPECT_EQ(table.small_reserve(), 0u);
  int granted = 0;
  for (int i = 0; i < 2; ++i) table.Acquire([&](uint32_t, uint32_t, uint32_t) { granted++; }, true);
  EXPECT_EQ(granted, 2);
}

}  // namespace
}  // namespace floatmount::nfs
