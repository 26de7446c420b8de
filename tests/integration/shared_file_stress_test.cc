// Processes on two mounts sharing files at once (shared_file_workload.h):
// the concurrency the single-threaded torture exerciser cannot reach.
// Found there first: two read-only openers flock(LOCK_EX)ing one file at
// once upgraded the shared NFS open twice, kept the older stateid, and the
// lock failed with EIO.
//
// Sizes from the environment (CI runs the defaults; longer by hand):
//   FLOATMOUNT_STRESS_SEEDS  seeds 1..N, one run each (default 2)
//   FLOATMOUNT_STRESS_OPS    ops per worker (default 300)
//   FLOATMOUNT_STRESS_FIRST_SEED first seed (default 1)
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/shared_file_workload.h"

namespace floatmount::testing {
namespace {

class SharedFileStressTest : public MountTest {
 protected:
  SharedFileStressTest() { test_timeout_ = std::chrono::seconds(600); }
};

TEST_F(SharedFileStressTest, WorkersOnTwoMountsKeepEachOthersBytesAndLocks) {
  FloatMount* other = MountSecond();
  ASSERT_NE(other, nullptr);
  const uint64_t first = EnvNumber("FLOATMOUNT_STRESS_FIRST_SEED", 1);
  const uint64_t seeds = EnvNumber("FLOATMOUNT_STRESS_SEEDS", 2);
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const std::string dir = "stress" + std::to_string(seed);
    ASSERT_EQ(mkdir(Path(dir).c_str(), 0755), 0) << ErrnoText();
    char model_dir[] = "/tmp/floatmount-stress-XXXXXX";
    ASSERT_NE(mkdtemp(model_dir), nullptr);
    SharedFileWorkload load;
    load.roots = {Path(dir), other->Path(dir)};
    load.ops = static_cast<int>(EnvNumber("FLOATMOUNT_STRESS_OPS", 300));
    load.seed = seed;
    load.model_dir = model_dir;
    ASSERT_TRUE(load.Prepare());
    ASSERT_TRUE(load.Run());
    EXPECT_TRUE(load.Verify(ServerPath(dir)));
    EXPECT_TRUE(load.Verify(Path(dir)));
    EXPECT_TRUE(load.Verify(other->Path(dir)));
    std::filesystem::remove_all(model_dir);
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace floatmount::testing
