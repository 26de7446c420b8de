// What every fault test of a mount checks beside its own data: that the
// faults it made caused recovery and nothing more (torture_faults_test.cc,
// lock_coherence_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/status_json.h"

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

// A fault that costs no session (a cut connection: the session outlives its
// connections): the agent's status shows no session or client ID recovery.
// Returns the reconnects, for the caller to check that the faults were felt.
inline uint64_t ExpectNoNewSession(const FloatMount& mount) {
  const nlohmann::json status = StatusJson(mount.mount_point());
  if (!status.is_object() || !status.contains("recovery") || !status["recovery"].is_object()) {
    ADD_FAILURE() << "no recovery figures in the status: " << status.dump();
    return 0;
  }
  const nlohmann::json& recovery = status["recovery"];
  EXPECT_EQ(recovery.value("session_recoveries", uint64_t{1}), 0u) << recovery.dump();
  EXPECT_EQ(recovery.value("clientid_recoveries", uint64_t{1}), 0u) << recovery.dump();
  return recovery.value("reconnects", uint64_t{0});
}

}  // namespace floatmount::testing
