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
// Thread-safety: the functions read the environment only.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace floatmount::testing {

// True if FLOATMOUNT_REQUIRE_INTEGRATION is set to a non-empty value other
// than "0": missing prerequisites are failures, not skips.
bool IntegrationRequired();

// True if FLOATMOUNT_KEEP_TEST_DIRS is set to a non-empty value other than "0".
bool KeepTestDirs();

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
