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
//   FLOATMOUNT_STRESS_JITTER_SEEDS  seeds through the jittery network (default 1)
//   FLOATMOUNT_STRESS_JITTER_US     its most added delay (default 3000)
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/harness/fault_proxy.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/shared_file_workload.h"

namespace floatmount::testing {
namespace {

class SharedFileStressTest : public MountTest {
 protected:
  SharedFileStressTest() { test_timeout_ = std::chrono::seconds(600); }


  // Each seed's workload on the two mounts, checked on both and on the
  // server's own copy.
  void RunSeeds(FloatMount& a, FloatMount& b, const std::string& prefix, uint64_t seeds) {
    const uint64_t first = EnvNumber("FLOATMOUNT_STRESS_FIRST_SEED", 1);
    for (uint64_t seed = first; seed < first + seeds; ++seed) {
      SCOPED_TRACE("seed " + std::to_string(seed));
      const std::string dir = prefix + std::to_string(seed);
      ASSERT_EQ(mkdir(a.Path(dir).c_str(), 0755), 0) << ErrnoText();
      char model_dir[] = "/tmp/floatmount-stress-XXXXXX";
      ASSERT_NE(mkdtemp(model_dir), nullptr);
      SharedFileWorkload load;
      load.roots = {a.Path(dir), b.Path(dir)};
      load.ops = static_cast<int>(EnvNumber("FLOATMOUNT_STRESS_OPS", 300));
      load.seed = seed;
      load.model_dir = model_dir;
      ASSERT_TRUE(load.Prepare());
      ASSERT_TRUE(load.Run());
      EXPECT_TRUE(load.Verify(ServerPath(dir)));
      EXPECT_TRUE(load.Verify(a.Path(dir)));
      EXPECT_TRUE(load.Verify(b.Path(dir)));
      std::filesystem::remove_all(model_dir);
      if (HasFailure()) break;
    }
  }
};

TEST_F(SharedFileStressTest, WorkersOnTwoMountsKeepEachOthersBytesAndLocks) {
  FloatMount* other = MountSecond();
  ASSERT_NE(other, nullptr);
  RunSeeds(mount(), *other, "stress", EnvNumber("FLOATMOUNT_STRESS_SEEDS", 2));
}

// The same through a network whose every chunk waits 0 to
// FLOATMOUNT_STRESS_JITTER_US (default 3000) more: replies on a mount's
// connections arrive in another order than the server sent them. Found
// there first: a GETATTR answered from an OPEN's attributes that were
// older than a GETATTR reply applied just before them (the watcher saw a
// file shrink).
TEST_F(SharedFileStressTest, WorkersOnTwoMountsThroughAJitteryNetwork) {
  if (kernel_client()) GTEST_SKIP() << "no floatmount mount";
  FaultProxy proxy("127.0.0.1", 0, knfsd() ? knfsd_server().address() : server().address(),
                   server_port());
  ASSERT_TRUE(proxy.Start()) << proxy.error();
  proxy.SetJitter(std::chrono::microseconds(EnvNumber("FLOATMOUNT_STRESS_JITTER_US", 3000)));
  FloatMount* a = MountSecond("", proxy.port());
  FloatMount* b = MountSecond("", proxy.port());
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  RunSeeds(*a, *b, "jitter", EnvNumber("FLOATMOUNT_STRESS_JITTER_SEEDS", 1));
}

}  // namespace
}  // namespace floatmount::testing
