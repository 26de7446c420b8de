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

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || value[0] == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(value, &end, 0);
  return *end == '\0' ? v : fallback;
}

double TimeScale() {
  const char* value = std::getenv("FLOATMOUNT_TEST_TIME_SCALE");
  if (value == nullptr || value[0] == '\0') return 1.0;
  char* end = nullptr;
  const double scale = std::strtod(value, &end);
  return (end != value && *end == '\0' && scale >= 1.0) ? scale : 1.0;
}

}  // namespace floatmount::testing
