// `floatmount status --json MNT`, parsed: what tests read of the agent's
// recovery figures, sessions, connections and round-trip counters.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {

// The status of the mount at `mountpoint`; a failed command or output that
// is not JSON fails the test and returns a discarded value (not an object).
inline nlohmann::json StatusJson(const std::string& mountpoint) {
  const CommandResult r = RunCommand({FloatmountBinary(), "status", "--json", mountpoint}, "",
                                     std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  nlohmann::json status = nlohmann::json::parse(r.output, nullptr, false);
  EXPECT_TRUE(status.is_object()) << "status is not a JSON object: " << r.output;
  return status;
}

}  // namespace floatmount::testing
