// The one place that decides what a test does when the machine lacks
// something it needs (ganesha.nfsd, root, /dev/fuse, rpcbind, ...).
//
// Locally such a test skips (GTEST_SKIP) with the reason. CI sets
// FLOATMOUNT_REQUIRE_INTEGRATION=1, and then the same test fails instead, so
// a CI run can never pass by skipping. Use it at the top of a TEST body or a
// fixture's SetUp():
//
//   FLOATMOUNT_REQUIRE(access("/dev/fuse", W_OK) == 0, "needs /dev/fuse");
//
// Also here: FLOATMOUNT_KEEP_TEST_DIRS=1 keeps temporary test directories
// (server exports, logs) after the test for a post-mortem.
//
// Time bounds: every bound a test waits for ("the agent exits within 10 s",
// "a nudge is answered within 1 s") goes through Scaled(), so that one knob,
// FLOATMOUNT_TEST_TIME_SCALE (a factor, default 1), stretches them all on a
// slow or loaded machine. A bound is an upper limit that is far above what
// an idle machine needs; tests never count how many loop turns fit into an
// interval.
//
// Thread-safety: the functions read the environment only.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace floatmount::testing {

// True if FLOATMOUNT_REQUIRE_INTEGRATION is set to a non-empty value other
// than "0": missing prerequisites are failures, not skips.
bool IntegrationRequired();

// True if FLOATMOUNT_KEEP_TEST_DIRS is set to a non-empty value other than "0".
bool KeepTestDirs();

// FLOATMOUNT_TEST_TIME_SCALE as a factor >= 1 (1 when unset or invalid).
double TimeScale();

// The environment variable `name` as a whole number (decimal, or 0x hex),
// `fallback` when it is unset, empty or not a number: the knobs that size
// long runs (seeds, op counts, data sizes).
uint64_t EnvNumber(const char* name, uint64_t fallback);

// `bound` stretched by TimeScale().
template <class Rep, class Period>
std::chrono::milliseconds Scaled(std::chrono::duration<Rep, Period> bound) {
  return std::chrono::milliseconds(static_cast<int64_t>(
      std::chrono::duration<double, std::milli>(bound).count() * TimeScale()));
}

}  // namespace floatmount::testing

// Skips the current test (or fails it when integration is required) if
// `cond` is false. `why` is anything streamable into a gtest message. Like
// GTEST_SKIP/FAIL it returns from the enclosing void function.
#define FLOATMOUNT_REQUIRE(cond, why)                                                      \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      if (::floatmount::testing::IntegrationRequired()) {                                  \
        FAIL() << "missing prerequisite (FLOATMOUNT_REQUIRE_INTEGRATION is set): " << why; \
      } else {                                                                             \
        GTEST_SKIP() << "missing prerequisite: " << why;                                   \
      }                                                                                    \
    }                                                                                      \
  } while (0)
