#include "fuse/timer_queue.h"

#include <pthread.h>

#include <vector>

namespace floatmount::fuse {

TimerQueue::TimerQueue() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "fm-timer");
    Loop();
  });
}

TimerQueue::~TimerQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void TimerQueue::Schedule(std::chrono::milliseconds delay, std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    due_.emplace(std::chrono::steady_clock::now() + delay, std::move(fn));
  }
  cv_.notify_all();
}

void TimerQueue::RunAllNow() {
  std::vector<std::function<void()>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [when, fn] : due_) all.push_back(std::move(fn));
    due_.clear();
  }
  for (auto& fn : all) fn();
}

void TimerQueue::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (due_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const auto when = due_.begin()->first;
    if (std::chrono::steady_clock::now() < when) {
      cv_.wait_until(lock, when);
      continue;
    }
    auto fn = std::move(due_.begin()->second);
    due_.erase(due_.begin());
    lock.unlock();
    fn();
    lock.lock();
  }
}

}  // namespace floatmount::fuse
