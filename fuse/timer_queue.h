// TimerQueue: runs functions after a delay on one thread ("fm-timer").
// Used to poll for a lock that is held elsewhere (F_SETLKW) without
// blocking a FUSE thread. Pending functions are dropped (not run) when the
// queue is destroyed; callers that must answer a request do so before.
//
// Threads: Schedule from any thread; functions run on the timer thread and
// must not block.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace floatmount::fuse {

class TimerQueue {
 public:
  TimerQueue();
  ~TimerQueue();
  void Schedule(std::chrono::milliseconds delay, std::function<void()> fn);
  // Runs every pending function now (shutdown: they see the shutdown and
  // answer their requests).
  void RunAllNow();

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> due_;  // GUARDED_BY(mu_)
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace floatmount::fuse
