#include "nfs/latency.h"

#include <algorithm>
#include <bit>

namespace floatmount::nfs {

void LatencyHistogram::Add(uint64_t us) {
  ++count;
  total_us += us;
  max_us = std::max(max_us, us);
  const int bucket = us == 0 ? 0 : std::bit_width(us) - 1;
  ++buckets[std::min(bucket, kBuckets - 1)];
}

uint64_t LatencyHistogram::QuantileUs(double fraction) const {
  if (count == 0) return 0;
  const double want = fraction * static_cast<double>(count);
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets[i];
    if (static_cast<double>(seen) < want) continue;
    return i == kBuckets - 1 ? max_us : std::min(max_us, (uint64_t{2} << i) - 1);
  }
  return max_us;
}

OpLatency Summarise(const LatencyHistogram& rtt, const LatencyHistogram& total) {
  OpLatency o;
  o.count = total.count;
  o.rtt_p50_us = rtt.QuantileUs(0.5);
  o.rtt_p99_us = rtt.QuantileUs(0.99);
  o.total_p50_us = total.QuantileUs(0.5);
  o.total_p99_us = total.QuantileUs(0.99);
  o.total_max_us = total.max_us;
  return o;
}

}  // namespace floatmount::nfs
