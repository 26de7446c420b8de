// Back-pressure without holding threads (issue 14): a write waiting for
// cache memory parks and answers later (fuse/cache/file_cache.h), and the
// budget serves its waiters in order, from its scheduler's thread
// (fuse/cache/cache_budget.h).
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "fuse/cache/cache_budget.h"
#include "fuse/file_system.h"
#include "fuse/timer_queue.h"
#include "tests/fakes/fake_client.h"
#include "tests/fakes/faulty_client.h"
#include "tests/unit/reply_waiter.h"

namespace floatmount::fuse {
namespace {

using fakes::FakeClient;
using fakes::FaultyClient;
using namespace std::chrono_literals;
constexpr size_t kMiB = 1 << 20;

std::string Pattern(size_t size, uint32_t seed) {
  std::string s(size, '\0');
  std::mt19937 gen(seed);
  for (auto& ch : s) ch = char(gen());
  return s;
}

TEST(CacheBudgetQueueTest, WaitersAreServedInOrderOnTheSchedulerNotInReturn) {
  auto budget = std::make_shared<CacheBudget>(2 * kMiB, kMiB);
  TimerQueue queue;
  budget->SetScheduler([&](std::chrono::milliseconds d, std::function<void()> fn) {
    queue.Schedule(d, std::move(fn));
  });
  std::atomic<int> asked{0};
  budget->SetPressureHook([&] { asked++; });
  std::vector<CacheBudget::Buffer> held{budget->AcquireOr({}), budget->AcquireOr({})};
  ASSERT_NE(held[0], nullptr);
  ASSERT_NE(held[1], nullptr);

  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  std::vector<CacheBudget::Buffer> granted;
  std::promise<void> both;
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(budget->AcquireOr([&, i](CacheBudget::Buffer b) {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(i);
      threads.push_back(std::this_thread::get_id());
      granted.push_back(std::move(b));
      if (order.size() == 2) both.set_value();
    }), nullptr);
  }
  EXPECT_EQ(budget->queued(), 2u);
  EXPECT_EQ(budget->TryAcquire(), nullptr);  // read-ahead does not jump the queue
  EXPECT_GE(asked.load(), 2);               // each waiter asked for room
  held.clear();                             // Return must not run the callbacks itself
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto id : threads) EXPECT_NE(id, std::this_thread::get_id());
  }
  ASSERT_EQ(both.get_future().wait_for(5s), std::future_status::ready);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(order, (std::vector<int>{0, 1}));
  EXPECT_NE(granted[0], nullptr);
  EXPECT_NE(granted[1], nullptr);
  EXPECT_EQ(budget->in_use(), 2u);  // never more than the budget
  EXPECT_EQ(budget->waits(), 2u);
}

FakeClient::Options Async() {
  FakeClient::Options o;
  o.async = true;
  return o;
}

// A mount with 2 MiB of cache: two chunks.
class ParkedWriteTest : public ::testing::Test {
 protected:
  static FsOptions TwoChunks() {
    FsOptions o;
    o.cache_size = 2 * kMiB;
    o.readahead_max = kMiB;
    return o;
  }
  ParkedWriteTest() : fake_(Async()), faulty_(&fake_), fs_(&faulty_, TwoChunks()) {}

  uint64_t Create(const std::string& name) {
    auto c = Call<CreateOut>([&](auto r) { fs_.Create({}, kRootInode, name, 0644, {true, true}, r); });
    EXPECT_EQ(c.err, 0);
    return c.value.open.handle;
  }
  static std::span<const uint8_t> Bytes(const std::string& s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
  }

  FakeClient fake_;
  FaultyClient faulty_;
  FileSystem fs_;
};

TEST_F(ParkedWriteTest, AWriteWaitingForMemoryReturnsAtOnceAndAnswersWhenMemoryFrees) {
  faulty_.SetDelay("WRITE", 300ms);
  const std::string data = Pattern(3 * kMiB, 7);
  const uint64_t h = Create("f");
  // The first two MiB fill the budget; both chunks go out (slow WRITEs).
  ASSERT_EQ(Call<size_t>([&](auto r) { fs_.Write(h, Bytes(data.substr(0, 2 * kMiB)), 0, r); }).err, 0);

  std::string third = data.substr(2 * kMiB);
  auto answered = std::make_shared<std::promise<int>>();
  const auto start = std::chrono::steady_clock::now();
  fs_.Write(h, Bytes(third), 2 * kMiB, [answered](int err, size_t) { answered->set_value(err); });
  const auto returned = std::chrono::steady_clock::now() - start;
  // The call gave its thread back although the write could not be buffered.
  EXPECT_LT(returned, 150ms);
  auto reply = answered->get_future();
  EXPECT_EQ(reply.wait_for(0ms), std::future_status::timeout);
  third.assign(third.size(), 'x');  // the caller's buffer is gone: the write copied it
  ASSERT_EQ(reply.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(reply.get(), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);  // it did wait for the WRITEs
  EXPECT_EQ(fs_.cache_stats().parked_writes, 1u);

  ASSERT_EQ(Call<None>([&](auto r) { fs_.Release(h, 0, r); }).err, 0);
  EXPECT_TRUE(fake_.CommittedContentOf(*fake_.Find("f")) == data);
  EXPECT_LE(fs_.cache_stats().high_water, 2 * kMiB);
}

TEST_F(ParkedWriteTest, ParkedWritersAreAnsweredInTheOrderTheyCame) {
  faulty_.SetDelay("WRITE", 200ms);
  const std::string fill = Pattern(2 * kMiB, 1);
  const uint64_t f = Create("fill");
  ASSERT_EQ(Call<size_t>([&](auto r) { fs_.Write(f, Bytes(fill), 0, r); }).err, 0);

  std::mutex mu;
  std::vector<int> order;
  std::vector<std::string> data;
  std::vector<uint64_t> handles;
  for (int i = 0; i < 3; ++i) {
    data.push_back(Pattern(kMiB, 10 + i));
    handles.push_back(Create("w" + std::to_string(i)));
  }
  std::vector<std::promise<void>> done(3);
  for (int i = 0; i < 3; ++i) {
    fs_.Write(handles[i], Bytes(data[i]), 0, [&, i](int err, size_t) {
      EXPECT_EQ(err, 0);
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(i);
      done[i].set_value();
    });
  }
  for (auto& d : done) ASSERT_EQ(d.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Call<None>([&](auto r) { fs_.Release(handles[i], 0, r); }).err, 0);
    EXPECT_TRUE(fake_.CommittedContentOf(*fake_.Find("w" + std::to_string(i))) == data[i]);
  }
  ASSERT_EQ(Call<None>([&](auto r) { fs_.Release(f, 0, r); }).err, 0);
  EXPECT_LE(fs_.cache_stats().high_water, 2 * kMiB);
}

}  // namespace
}  // namespace floatmount::fuse
