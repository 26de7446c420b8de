// How long calls take, kept as a histogram so that percentiles come
// without storing samples: power-of-two buckets of microseconds, so a
// percentile is known to within a factor of two (enough to tell a 10 ms
// round trip from a 400 ms wait behind other work).
//
// The engine keeps two per compound name (nfs/v4/engine.h): the round trip
// of the last send (RTT: the network and the server) and the whole wait
// from submission to completion (slot waits, resends and recovery too),
// like the RTT and execute columns of Linux's /proc/self/mountstats.
//
// Not thread-safe: the owner locks.
#pragma once

#include <array>
#include <cstdint>

namespace floatmount::nfs {

struct LatencyHistogram {
  static constexpr int kBuckets = 28;  // bucket i: [2^i, 2^(i+1)) us; the last: all above

  uint64_t count = 0;
  uint64_t total_us = 0;
  uint64_t max_us = 0;
  std::array<uint64_t, kBuckets> buckets{};

  void Add(uint64_t us);
  // An upper bound of the `fraction` quantile (0.5, 0.99): the top of the
  // bucket holding it, at most max_us. 0 when empty.
  uint64_t QuantileUs(double fraction) const;
  uint64_t MeanUs() const { return count == 0 ? 0 : total_us / count; }
};

// What status shows per compound name.
struct OpLatency {
  uint64_t count = 0;
  uint64_t rtt_p50_us = 0, rtt_p99_us = 0;
  uint64_t total_p50_us = 0, total_p99_us = 0, total_max_us = 0;
};

OpLatency Summarise(const LatencyHistogram& rtt, const LatencyHistogram& total);

}  // namespace floatmount::nfs
