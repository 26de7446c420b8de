// CacheBudget: the one memory budget of a mount's data cache, shared by
// read-ahead and write-back, in fixed-size chunk buffers.
//
// Why chunks: every cached byte lives in a chunk of `chunk_size` bytes (the
// NFS rsize/wsize), so the budget is a count of chunks and the memory can be
// reused without going back to the allocator (first touch of fresh memory is
// expensive on VMs). Buffers that are handed back stay in a free pool until
// Trim() returns the idle ones to the system.
//
// Read-ahead takes buffers with TryAcquire and simply stops prefetching when
// none is left; writers wait until one is free: the process does not grow,
// writers are slowed to the speed of the server (backpressure). A writer
// waits without holding a thread (AcquireOr: the buffer comes later, in a
// callback on the scheduler's thread), so a FUSE worker is free for other
// users' requests meanwhile (issue 14); Acquire blocks, for callers with no
// scheduler. Waiters are served first come, first served, before any
// TryAcquire. While a writer waits, the pressure hook is called (and called
// again every `pressure_retry`) to make room: drop read-ahead, send dirty
// chunks, COMMIT what the server holds unstable.
//
// A buffer is a shared_ptr: it returns to the budget when its last owner
// drops it (a read reply may still hold a read-ahead chunk that was just
// evicted; its memory is not reused before that reply is sent).
//
// Threads: any. Make it with std::make_shared: every buffer keeps it alive.
// AcquireOr's callbacks and the pressure retries run on the scheduler's
// thread (SetScheduler), never inside Return: a buffer may be freed under a
// FileCache's lock, and the callback takes that lock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace floatmount::fuse {

class CacheBudget : public std::enable_shared_from_this<CacheBudget> {
 public:
  using Buffer = std::shared_ptr<uint8_t[]>;

  CacheBudget(uint64_t bytes, size_t chunk_size);
  ~CacheBudget();
  CacheBudget(const CacheBudget&) = delete;
  CacheBudget& operator=(const CacheBudget&) = delete;

  // A free buffer, or null when the budget is spent.
  Buffer TryAcquire();
  // A buffer, waiting (calling the pressure hook) while the budget is spent.
  Buffer Acquire();
  // A buffer now, or null and `granted` runs later with one, on the
  // scheduler's thread, in the order of the calls. Without a scheduler it
  // waits as Acquire does.
  using Granted = std::function<void(Buffer)>;
  Buffer AcquireOr(Granted granted);

  // Called without locks held, on the waiting writer's thread or the
  // scheduler's.
  void SetPressureHook(std::function<void()> hook);
  // Runs a function after a delay on a thread that may take FileCache locks
  // (a TimerQueue). Set before the first AcquireOr; cleared (empty) by its
  // owner before the scheduler goes: waiters left then are never granted.
  using Scheduler = std::function<void(std::chrono::milliseconds, std::function<void()>)>;
  void SetScheduler(Scheduler scheduler);
  // Frees pooled buffers nobody uses.
  void Trim();

  size_t chunk_size() const { return chunk_size_; }
  size_t capacity() const { return capacity_; }  // chunks
  size_t in_use() const;                         // chunks handed out now
  size_t high_water() const;                     // most chunks ever in use at once
  uint64_t waits() const;                        // Acquire(Or) calls that had to wait
  size_t queued() const;                         // AcquireOr callers waiting now

  // The default cache size: min(1 GiB, 10% of physical memory).
  static uint64_t DefaultBytes();

 private:
  Buffer Wrap(uint8_t* raw);
  void Return(uint8_t* raw);
  uint8_t* TakeLocked();  // counts one more in use; null: allocate one
  void Grant();           // hands free buffers to the queue (scheduler thread)
  void Retry();           // every pressure_retry_ while the queue waits

  const size_t chunk_size_;
  const size_t capacity_;
  const std::chrono::milliseconds pressure_retry_{100};

  mutable std::mutex mu_;
  std::condition_variable freed_;
  std::vector<uint8_t*> pool_;   // GUARDED_BY(mu_): allocated, not in use
  size_t in_use_ = 0;            // GUARDED_BY(mu_)
  size_t high_water_ = 0;        // GUARDED_BY(mu_)
  uint64_t waits_ = 0;           // GUARDED_BY(mu_)
  std::function<void()> hook_;   // GUARDED_BY(mu_)
  Scheduler schedule_;           // GUARDED_BY(mu_); called without it
  std::deque<Granted> queue_;    // GUARDED_BY(mu_): AcquireOr waiters, oldest first
  bool grant_scheduled_ = false;  // GUARDED_BY(mu_)
  bool retry_scheduled_ = false;  // GUARDED_BY(mu_)
};

}  // namespace floatmount::fuse
