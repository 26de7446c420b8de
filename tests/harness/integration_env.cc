#include "tests/harness/integration_env.h"

#include <cstdlib>
#include <cstring>

namespace floatmount::testing {
namespace {

bool EnvFlag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && value[0] != '\0' && std::strcmp(value, "0") != 0;
}

}  // namespace

bool IntegrationRequired() { return EnvFlag("FLOATMOUNT_REQUIRE_INTEGRATION"); }

bool KeepTestDirs() { return EnvFlag("FLOATMOUNT_KEEP_TEST_DIRS"); }

}  // namespace floatmount::testing
