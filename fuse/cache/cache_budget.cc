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
  {
    std::lock_guard<std::mutex> lock(mu_);
    pool_.push_back(raw);
    --in_use_;
  }
  freed_.notify_all();
}

CacheBudget::Buffer CacheBudget::TryAcquire() {
  uint8_t* raw = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_use_ >= capacity_) return nullptr;
    ++in_use_;
    high_water_ = std::max(high_water_, in_use_);
    if (!pool_.empty()) {
      raw = pool_.back();
      pool_.pop_back();
    }
  }
  if (raw == nullptr) raw = new uint8_t[chunk_size_];
  return Wrap(raw);
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
