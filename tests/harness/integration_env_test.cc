// Tests of the skip-or-fail policy switches read from the environment.
#include "tests/harness/integration_env.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace floatmount::testing {
namespace {

// Sets an environment variable for one scope and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(IntegrationEnvTest, RequireIntegrationFlag) {
  {
    ScopedEnv env("FLOATMOUNT_REQUIRE_INTEGRATION", nullptr);
    EXPECT_FALSE(IntegrationRequired());
  }
  {
    ScopedEnv env("FLOATMOUNT_REQUIRE_INTEGRATION", "0");
    EXPECT_FALSE(IntegrationRequired());
  }
  {
    ScopedEnv env("FLOATMOUNT_REQUIRE_INTEGRATION", "1");
    EXPECT_TRUE(IntegrationRequired());
  }
}

TEST(IntegrationEnvTest, KeepTestDirsFlag) {
  {
    ScopedEnv env("FLOATMOUNT_KEEP_TEST_DIRS", "");
    EXPECT_FALSE(KeepTestDirs());
  }
  {
    ScopedEnv env("FLOATMOUNT_KEEP_TEST_DIRS", "1");
    EXPECT_TRUE(KeepTestDirs());
  }
}

void RequireSomethingMissing() { FLOATMOUNT_REQUIRE(false, "the missing thing"); }

TEST(IntegrationEnvTest, RequireFailsWhenIntegrationIsRequired) {
  ScopedEnv env("FLOATMOUNT_REQUIRE_INTEGRATION", "1");
  EXPECT_FATAL_FAILURE(RequireSomethingMissing(), "missing prerequisite");
}

}  // namespace
}  // namespace floatmount::testing
