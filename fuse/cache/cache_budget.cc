#include "fuse/cache/cache_budget.h"

#include <unistd.h>

#include <algorithm>

namespace floatmount::fuse {

CacheBudget::CacheBudget(uint64_t bytes, size_t chunk_size)
    : chunk_size_(chunk_size), capacity_(std::max<uint64_t>(bytes / chunk_size, 2)) {}

CacheBudget::~CacheBudget() {
  for (uint8_t* raw : pool_) delete[] raw;
}

uint64_t CacheBudget::DefaultBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  const uint64_t ram = pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : 0;
  const uint64_t gib = 1ull << 30;
  return ram == 0 ? gib : std::min(gib, ram / 10);
}

CacheBudget::Buffer CacheBudget::Wrap(uint8_t* raw) {
  return Buffer(raw, [self = shared_from_this()](uint8_t* p) { self->Return(p); });
}

void CacheBudget::Return(uint8_t* raw) {
  Scheduler schedule;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pool_.push_back(raw);
    --in_use_;
    if (!queue_.empty() && !grant_scheduled_ && schedule_) {
      grant_scheduled_ = true;
      schedule = schedule_;
    }
  }
  freed_.notify_all();
  // Not here: the freeing thread may hold the lock the waiter's callback takes.
  if (schedule) schedule(std::chrono::milliseconds(0), [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->Grant();
  });
}

uint8_t* CacheBudget::TakeLocked() {
  ++in_use_;
  high_water_ = std::max(high_water_, in_use_);
  if (pool_.empty()) return nullptr;
  uint8_t* raw = pool_.back();
  pool_.pop_back();
  return raw;
}

CacheBudget::Buffer CacheBudget::TryAcquire() {
  uint8_t* raw = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_use_ >= capacity_ || !queue_.empty()) return nullptr;  // waiting writers first
    raw = TakeLocked();
  }
  if (raw == nullptr) raw = new uint8_t[chunk_size_];
  return Wrap(raw);
}

CacheBudget::Buffer CacheBudget::AcquireOr(Granted granted) {
  Scheduler schedule;
  std::function<void()> hook;
  {
    std::lock_guard<std::mutex> lock(mu_);
    schedule = schedule_;
  }
  if (!schedule) return Acquire();
  bool retry = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_use_ < capacity_ && queue_.empty()) {
      uint8_t* raw = TakeLocked();
      if (raw == nullptr) raw = new uint8_t[chunk_size_];
      return Wrap(raw);
    }
    ++waits_;
    queue_.push_back(std::move(granted));
    if (!retry_scheduled_) retry = retry_scheduled_ = true;
    hook = hook_;
  }
  if (hook) hook();  // make room: send and commit what holds the memory
  if (retry) schedule(pressure_retry_, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->Retry();
  });
  return nullptr;
}

void CacheBudget::Grant() {
  for (;;) {
    Granted granted;
    uint8_t* raw = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      grant_scheduled_ = false;
      if (queue_.empty() || in_use_ >= capacity_) return;
      granted = std::move(queue_.front());
      queue_.pop_front();
      raw = TakeLocked();
    }
    if (raw == nullptr) raw = new uint8_t[chunk_size_];
    granted(Wrap(raw));
  }
}

void CacheBudget::Retry() {
  std::function<void()> hook;
  Scheduler schedule;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.empty() || !schedule_) {
      retry_scheduled_ = false;
      return;
    }
    hook = hook_;
    schedule = schedule_;
  }
  Grant();
  if (hook) hook();
  schedule(pressure_retry_, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->Retry();
  });
}

void CacheBudget::SetScheduler(Scheduler scheduler) {
  std::lock_guard<std::mutex> lock(mu_);
  schedule_ = std::move(scheduler);
}

size_t CacheBudget::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

CacheBudget::Buffer CacheBudget::Acquire() {
  bool counted = false;
  for (;;) {
    if (Buffer b = TryAcquire()) return b;
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!counted) ++waits_;
      counted = true;
      hook = hook_;
    }
    if (hook) hook();
    std::unique_lock<std::mutex> lock(mu_);
    freed_.wait_for(lock, pressure_retry_, [this] { return in_use_ < capacity_; });
  }
}

void CacheBudget::SetPressureHook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hook_ = std::move(hook);
}

void CacheBudget::Trim() {
  std::vector<uint8_t*> idle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle.swap(pool_);
  }
  for (uint8_t* raw : idle) delete[] raw;
}

size_t CacheBudget::in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_use_;
}

size_t CacheBudget::high_water() const {
  std::lock_guard<std::mutex> lock(mu_);
  return high_water_;
}

uint64_t CacheBudget::waits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waits_;
}

}  // namespace floatmount::fuse
