// LogLimiter: keeps a repeated log line from flooding the log (a dead
// server makes every WRITE fail the same way, thousands of times a second).
//
// Each key (a call site, or a call site and a file) may log `burst` lines
// per `interval`; later lines in that interval are counted, not logged. The
// first line let through after the interval carries the count, so the log
// says "N more like this were suppressed" exactly once per quiet spell —
// like the kernel's printk_ratelimit. A key that goes silent after a burst
// reports its count only when it logs again, or when a caller that wants a
// timely summary calls TakeSuppressed() periodically.
//
//   static nfs::LogLimiter limiter(5, std::chrono::seconds(10));
//   nfs::LogLimited(limiter, spdlog::level::warn, "write-back",
//                   "WRITE of {} failed: {}", path, status.message());
//
// Thread-safety: all methods may be called from any thread (one mutex,
// never held while logging). Memory: one small entry per key; keys whose
// interval is over and that suppressed nothing are dropped once there are
// more than kMaxKeys.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace floatmount::nfs {

class LogLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kMaxKeys = 1024;

  struct Decision {
    bool log = false;         // log this line
    uint64_t suppressed = 0;  // lines of this key suppressed before it (when log)
    Clock::duration over{};   // in how long a span they were suppressed
  };

  LogLimiter(int burst, Clock::duration interval) : burst_(burst), interval_(interval) {}

  Decision Admit(std::string_view key) { return Admit(key, Clock::now()); }
  // The same at a given time (tests).
  Decision Admit(std::string_view key, Clock::time_point now) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = keys_.find(std::string(key));
    if (it == keys_.end()) {
      if (keys_.size() >= kMaxKeys) Prune(now);
      it = keys_.emplace(std::string(key), Window{now, 0, 0}).first;
    }
    Window& w = it->second;
    Decision d;
    if (now - w.start >= interval_) {
      d.suppressed = w.suppressed;
      d.over = now - w.start;
      w = Window{now, 0, 0};
    }
    if (w.logged < burst_) {
      ++w.logged;
      d.log = true;
    } else {
      ++w.suppressed;
      d.suppressed = 0;
    }
    return d;
  }

  // Keys whose interval is over and that suppressed lines, with their
  // counts; those counts start again from zero. For a periodic summary.
  std::vector<std::pair<std::string, uint64_t>> TakeSuppressed() {
    return TakeSuppressed(Clock::now());
  }
  std::vector<std::pair<std::string, uint64_t>> TakeSuppressed(Clock::time_point now) {
    std::vector<std::pair<std::string, uint64_t>> out;
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, w] : keys_) {
      if (w.suppressed == 0 || now - w.start < interval_) continue;
      out.emplace_back(key, w.suppressed);
      w = Window{now, 0, 0};
    }
    return out;
  }

 private:
  struct Window {
    Clock::time_point start;
    int logged = 0;
    uint64_t suppressed = 0;
  };

  void Prune(Clock::time_point now) {  // mu_ held
    for (auto it = keys_.begin(); it != keys_.end();) {
      if (it->second.suppressed == 0 && now - it->second.start >= interval_) {
        it = keys_.erase(it);
      } else {
        ++it;
      }
    }
  }

  const int burst_;
  const Clock::duration interval_;
  std::mutex mu_;
  std::unordered_map<std::string, Window> keys_;  // GUARDED_BY(mu_)
};

// Logs through `limiter`: a summary line first if lines of `key` were
// suppressed, then the line itself — or nothing if the key is over its
// burst.
template <typename... Args>
void LogLimited(LogLimiter& limiter, spdlog::level::level_enum level, std::string_view key,
                spdlog::format_string_t<Args...> fmt, Args&&... args) {
  if (!spdlog::should_log(level)) return;
  const LogLimiter::Decision d = limiter.Admit(key);
  if (!d.log) return;
  if (d.suppressed > 0) {
    spdlog::log(level, "{} more '{}' messages were suppressed in the last {:.1f} s", d.suppressed,
                key, std::chrono::duration<double>(d.over).count());
  }
  spdlog::log(level, fmt, std::forward<Args>(args)...);
}

}  // namespace floatmount::nfs
