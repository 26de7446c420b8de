// LogLimiter: the burst per interval, the count of suppressed lines carried
// by the next line let through, the periodic summary, and many threads.
#include "nfs/log_limiter.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <atomic>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

namespace floatmount::nfs {
namespace {

using std::chrono::seconds;
using Clock = LogLimiter::Clock;

TEST(LogLimiterTest, LetsTheBurstThroughThenCounts) {
  LogLimiter limiter(3, seconds(10));
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 3; ++i) {
    const LogLimiter::Decision d = limiter.Admit("write", t0 + seconds(i));
    EXPECT_TRUE(d.log) << i;
    EXPECT_EQ(0u, d.suppressed) << i;
  }
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.Admit("write", t0 + seconds(5)).log);
  // The interval is over: the next line goes out and carries the count.
  const LogLimiter::Decision d = limiter.Admit("write", t0 + seconds(11));
  EXPECT_TRUE(d.log);
  EXPECT_EQ(5u, d.suppressed);
  EXPECT_EQ(seconds(11), d.over);
  // Counted once only.
  EXPECT_EQ(0u, limiter.Admit("write", t0 + seconds(12)).suppressed);
}

TEST(LogLimiterTest, KeysAreIndependent) {
  LogLimiter limiter(1, seconds(10));
  const Clock::time_point t0 = Clock::now();
  EXPECT_TRUE(limiter.Admit("a", t0).log);
  EXPECT_FALSE(limiter.Admit("a", t0).log);
  EXPECT_TRUE(limiter.Admit("b", t0).log);
  EXPECT_FALSE(limiter.Admit("b", t0).log);
}

TEST(LogLimiterTest, NoCountAfterAQuietInterval) {
  LogLimiter limiter(2, seconds(1));
  const Clock::time_point t0 = Clock::now();
  EXPECT_TRUE(limiter.Admit("k", t0).log);
  const LogLimiter::Decision d = limiter.Admit("k", t0 + seconds(30));
  EXPECT_TRUE(d.log);
  EXPECT_EQ(0u, d.suppressed);
}

TEST(LogLimiterTest, TakeSuppressedReportsClosedIntervalsOnce) {
  LogLimiter limiter(1, seconds(10));
  const Clock::time_point t0 = Clock::now();
  limiter.Admit("a", t0);
  limiter.Admit("a", t0);
  limiter.Admit("a", t0);
  limiter.Admit("b", t0);  // nothing suppressed
  EXPECT_TRUE(limiter.TakeSuppressed(t0 + seconds(5)).empty()) << "interval still open";
  const auto taken = limiter.TakeSuppressed(t0 + seconds(10));
  ASSERT_EQ(1u, taken.size());
  EXPECT_EQ("a", taken[0].first);
  EXPECT_EQ(2u, taken[0].second);
  EXPECT_TRUE(limiter.TakeSuppressed(t0 + seconds(30)).empty());
  EXPECT_EQ(0u, limiter.Admit("a", t0 + seconds(30)).suppressed);
}

TEST(LogLimiterTest, ForgetsQuietKeysWhenFull) {
  LogLimiter limiter(1, seconds(1));
  const Clock::time_point t0 = Clock::now();
  for (size_t i = 0; i < LogLimiter::kMaxKeys; ++i) limiter.Admit(std::to_string(i), t0);
  limiter.Admit("busy", t0);
  limiter.Admit("busy", t0);  // suppressed: must survive pruning
  for (size_t i = 0; i < 10; ++i) limiter.Admit("new" + std::to_string(i), t0 + seconds(2));
  EXPECT_EQ(1u, limiter.Admit("busy", t0 + seconds(3)).suppressed);
}

TEST(LogLimiterTest, ThreadsShareTheBurst) {
  LogLimiter limiter(10, std::chrono::hours(1));
  std::atomic<int> logged{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) logged += limiter.Admit("k").log ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(10, logged.load());
}

TEST(LogLimiterTest, LogLimitedWritesTheCountBeforeTheNextLine) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_pattern("%l %v");
  const auto saved = spdlog::default_logger();
  const auto saved_level = spdlog::get_level();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
  spdlog::set_level(spdlog::level::info);

  LogLimiter limiter(1, std::chrono::milliseconds(50));
  LogLimited(limiter, spdlog::level::err, "unit", "line {} of {}", 1, "test");
  LogLimited(limiter, spdlog::level::err, "unit", "line {} of {}", 2, "test");
  LogLimited(limiter, spdlog::level::err, "unit", "line {} of {}", 3, "test");
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  LogLimited(limiter, spdlog::level::err, "unit", "line {} of {}", 4, "test");
  LogLimited(limiter, spdlog::level::debug, "unit", "below the level: {}", 5);

  spdlog::set_default_logger(saved);
  spdlog::set_level(saved_level);
  const std::regex expected(
      "error line 1 of test\n"
      "error 2 more 'unit' messages were suppressed in the last 0\\.[0-9] s\n"
      "error line 4 of test\n");
  EXPECT_TRUE(std::regex_match(out.str(), expected)) << out.str();
}

}  // namespace
}  // namespace floatmount::nfs
