// What every fault test of a mount checks beside its own data: that the
// faults it made caused recovery and nothing more (torture_faults_test.cc,
// lock_coherence_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {

// Mount option of tests that restart or move the server every second or
// so: each restart or move is a new client ID and session, past the default
// bound on a recovery loop (10 a minute), which held such tests back up to
// a minute at a time (110 s instead of 10; 60 s instead of 8).
// ExpectNoSessionStorm holds with it.
inline constexpr const char* kManySessions = "max_sessions=200";

// Nothing more than the faults asked for: a recovery loop makes sessions
// past the mount's bound (max_sessions), and the agent logs a storm.
inline void ExpectNoSessionStorm(const FloatMount& mount) {
  const std::optional<std::string> log = ReadFile(mount.state_dir() + "/agent.log");
  ASSERT_TRUE(log) << mount.state_dir();
  EXPECT_EQ(log->find("session storm"), std::string::npos) << log->substr(0, 4000);
}

}  // namespace floatmount::testing
