// KillableRequest (fuse/killable.h): who answers an interrupted request.
// Real processes stand for callers: one alive and not dying (an interrupt
// changes nothing), one already gone (answered EINTR at once).
#include "fuse/killable.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

namespace floatmount::fuse {
namespace {

using namespace std::chrono_literals;

struct Probe {
  std::atomic<int> eintr{0};
  std::atomic<int> stopped{0};
  std::shared_ptr<KillableRequest> Make(pid_t tid) {
    return std::make_shared<KillableRequest>(tid, [this] { ++eintr; }, [this] { ++stopped; });
  }
};

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds bound) {
  const auto end = std::chrono::steady_clock::now() + bound;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(KillableRequestTest, WithoutAnInterruptTheOperationAnswersOnce) {
  Probe p;
  auto k = p.Make(getpid());
  EXPECT_TRUE(k->Claim());
  EXPECT_FALSE(k->Claim());
  EXPECT_EQ(p.stopped, 1);  // interrupt callbacks stopped before answering
  EXPECT_EQ(p.eintr, 0);
}

TEST(KillableRequestTest, AHarmlessSignalLeavesTheRequestToTheOperation) {
  Probe p;
  auto k = p.Make(getpid());  // this process: alive, no SIGKILL pending
  k->Interrupted();
  std::this_thread::sleep_for(KillableRequest::kPollInterval * 2);
  EXPECT_EQ(p.eintr, 0);
  EXPECT_TRUE(k->Claim());
}

TEST(KillableRequestTest, ACallerThatIsGoneGetsEintrAndTheAnswerIsDropped) {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);  // reaped: /proc/child is gone
  Probe p;
  auto k = p.Make(child);
  k->Interrupted();
  ASSERT_TRUE(WaitFor([&p] { return p.eintr.load() == 1; }, 2s));
  EXPECT_TRUE(k->answered_eintr());
  EXPECT_FALSE(k->Claim());  // the operation's own answer must not go out
}

TEST(KillableRequestTest, PollingContinuesAfterAHarmlessFirstSignal) {
  // A child that is alive at the interrupt and dies later (the kernel
  // sends one FUSE_INTERRUPT, for the first signal only).
  const pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  ASSERT_GT(child, 0);
  Probe p;
  auto k = p.Make(child);
  k->Interrupted();
  std::this_thread::sleep_for(KillableRequest::kPollInterval * 2);
  EXPECT_EQ(p.eintr, 0);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(WaitFor([&p] { return p.eintr.load() == 1; }, 2s));
}

TEST(KillableRequestTest, UnknownCallersAreNeverAnsweredEarly) {
  Probe p;
  auto k = p.Make(0);  // from another pid namespace
  k->Interrupted();
  std::this_thread::sleep_for(KillableRequest::kPollInterval * 2);
  EXPECT_EQ(p.eintr, 0);
  EXPECT_TRUE(k->Claim());
}

}  // namespace
}  // namespace floatmount::fuse
