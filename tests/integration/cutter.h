// Connections cut at random while a test runs (torture_faults_test.cc,
// lock_coherence_test.cc).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>
#include <thread>

#include "tests/harness/fault_proxy.h"

namespace floatmount::testing {

// Cuts every connection through `proxy` at random intervals (uniform in
// [mean/4, 7*mean/4]) until destroyed.
class Cutter {
 public:
  Cutter(FaultProxy& proxy, std::chrono::milliseconds mean, uint64_t seed)
      : proxy_(proxy), thread_([this, mean, seed] { Run(mean, seed); }) {}
  ~Cutter() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  int cuts() const { return cuts_.load(); }

 private:
  void Run(std::chrono::milliseconds mean, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int64_t> pause(mean.count() / 4, mean.count() * 7 / 4);
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(pause(rng)), [this] { return stop_; })) {
      lock.unlock();
      proxy_.CutAll();
      ++cuts_;
      lock.lock();
    }
  }

  FaultProxy& proxy_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::atomic<int> cuts_{0};
  std::thread thread_;  // last: started once the rest is built
};

}  // namespace floatmount::testing
