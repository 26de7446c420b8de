#include "fuse/killable.h"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string>

#include "fuse/timer_queue.h"

namespace floatmount::fuse {
namespace {

// One timer thread for every mount's interrupted requests (few at a time).
TimerQueue& Checks() {
  static TimerQueue queue;
  return queue;
}

}  // namespace

KillableRequest::KillableRequest(pid_t tid, std::function<void()> answer_eintr,
                                 std::function<void()> stop_interrupts)
    : tid_(tid),
      answer_eintr_(std::move(answer_eintr)),
      stop_interrupts_(std::move(stop_interrupts)) {}

bool KillableRequest::Claim() {
  if (claimed_.exchange(true)) return false;
  stop_interrupts_();
  return true;
}

void KillableRequest::Interrupted() {
  interrupted_ = true;
  if (tid_ <= 0 || claimed_.load() || polling_.exchange(true)) return;
  Checks().Schedule(std::chrono::milliseconds(0), [self = shared_from_this()] { self->Check(); });
}

void KillableRequest::Check() {
  if (claimed_.load()) return;  // answered: the request is gone
  if (FatalSignalPending(tid_)) {
    // Unclaimed, so the request is still unanswered and alive.
    if (!claimed_.exchange(true)) {
      eintr_ = true;
      answer_eintr_();
    }
    return;
  }
  Checks().Schedule(kPollInterval, [self = shared_from_this()] { self->Check(); });
}

bool FatalSignalPending(pid_t tid) {
  // /proc/TID/status: "SigPnd:" (the thread's) and "ShdPnd:" (the
  // process's), hex masks where bit n-1 stands for signal n.
  std::ifstream status("/proc/" + std::to_string(tid) + "/status");
  if (!status) return true;  // the thread is gone: nobody waits any more
  constexpr unsigned long long kKill = 1ull << (SIGKILL - 1);
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("SigPnd:", 0) != 0 && line.rfind("ShdPnd:", 0) != 0) continue;
    const unsigned long long mask = std::strtoull(line.c_str() + 7, nullptr, 16);
    if (mask & kKill) return true;
  }
  return false;
}

}  // namespace floatmount::fuse
