// ReadPattern: sequential-stream detection for one open file description,
// deciding how far ahead the cache should fetch.
//
// A read continues a stream when it starts where the stream's last read
// ended (once the stream is established, within two chunks of it: the
// kernel sends its own read-ahead requests on several threads, so they
// arrive slightly out of order). Each read that
// continues a stream doubles its window, from one chunk up to `max_window`;
// a read that continues no stream starts a new one (replacing the least
// recently used of kStreams) with no window: random reads fetch nothing
// ahead. Several streams let one descriptor serve interleaved sequential
// readers (pread from threads), as the kernel's read-ahead does per file.
//
// Threads: any; one mutex.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace floatmount::fuse {

struct ReadPlan {
  bool sequential = false;
  uint64_t ahead_from = 0;  // chunk-aligned range to prefetch (empty: nothing)
  uint64_t ahead_to = 0;
};

class ReadPattern {
 public:
  static constexpr size_t kStreams = 4;

  ReadPattern(size_t chunk_size, uint64_t max_window)
      : chunk_(chunk_size), max_window_(max_window < chunk_size ? chunk_size : max_window) {}

  ReadPlan Note(uint64_t offset, size_t size);

  uint64_t window_for_test(size_t i) const;

 private:
  struct Stream {
    bool live = false;
    uint64_t next = 0;    // where the stream's reads have got to
    uint64_t window = 0;  // bytes to keep fetched ahead of `next`
    uint64_t ahead = 0;   // prefetch asked up to here
    uint64_t used = 0;    // LRU clock
  };

  const uint64_t chunk_;
  const uint64_t max_window_;
  mutable std::mutex mu_;
  std::array<Stream, kStreams> streams_;  // GUARDED_BY(mu_)
  uint64_t clock_ = 0;                    // GUARDED_BY(mu_)
};

}  // namespace floatmount::fuse
