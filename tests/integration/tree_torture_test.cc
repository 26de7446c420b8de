// The names exerciser (tests/torture/tree_torture.h) against a real
// floatmount mount: seeded random creates, removals, renames (over files,
// over directories, into their own subtree), links, symlinks and chmods in
// a small tree whose names are reused all the time, each op's outcome and
// the whole tree checked against a model, through this mount, through a
// second mount with noac and in the server's export. What it exercises is
// the mount's memory of names and attributes after its own changes: the
// kernel's dentries and attribute cache, the agent's negative names,
// directory listings and inode table. A failure prints the seed and the
// last ops; replay it by hand with
//   tree_torture --seed S --ops N --dir MNT/tree [--second-dir ..] [--server-dir ..]
//
// Sizes from the environment (CI: 3 seeds x 2000 ops; under cuts 2 x 1500):
//   FLOATMOUNT_TREE_TORTURE_SEEDS          seeds (default 3)
//   FLOATMOUNT_TREE_TORTURE_FIRST_SEED     first seed (default 1; on two mounts 50 more)
//   FLOATMOUNT_TREE_TORTURE_OPS            ops per seed (default 2000)
//   FLOATMOUNT_TREE_TORTURE_CUT_SEEDS      seeds under cuts (default 2)
//   FLOATMOUNT_TREE_TORTURE_CUT_FIRST_SEED first seed under cuts (default 101)
//   FLOATMOUNT_TREE_TORTURE_CUT_OPS        ops per seed under cuts (default 1500)
//   FLOATMOUNT_TREE_TORTURE_CUT_MS         mean time between cuts (default 250)
#include <sys/stat.h>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "tests/harness/fault_proxy.h"
#include "tests/integration/cutter.h"
#include "tests/integration/fault_checks.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/torture_run.h"

namespace floatmount::testing {
namespace {

class TreeTortureTest : public MountTest {
 protected:
  TreeTortureTest() { test_timeout_ = std::chrono::seconds(1200); }
};

TEST_F(TreeTortureTest, RandomNameOpsMatchTheModel) {
  const uint64_t first = EnvNumber("FLOATMOUNT_TREE_TORTURE_FIRST_SEED", 1);
  const uint64_t seeds = EnvNumber("FLOATMOUNT_TREE_TORTURE_SEEDS", 3);
  const uint64_t ops = EnvNumber("FLOATMOUNT_TREE_TORTURE_OPS", 2000);
  if (kernel_client()) GTEST_SKIP() << "the exerciser's binary is not in the guest";
  // NFSv3 has no open state: a file removed while open is renamed to
  // .nfsXXXX until its close (silly rename, as the kernel NFS client does),
  // which the model does not know.
  std::vector<std::string> extra;
  if (NfsVersionUnderTest() == "3") extra = {"--no-held"};
  FloatMount* other = MountSecond("noac");
  ASSERT_NE(other, nullptr);
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    const std::string dir = "tree" + std::to_string(seed);
    const auto start = std::chrono::steady_clock::now();
    const CommandResult r = RunCommand(
        TreeTortureCommand(Path(dir), other->Path(dir), ServerPath(dir), seed, ops, extra), "",
        kTortureSeedTimeout);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "tree_torture seed " << seed << ": exit " << r.exit_code << " after " << seconds
              << " s" << std::endl;
    EXPECT_EQ(r.exit_code, 0) << "seed " << seed << ": " << r.Describe();
  }
}

// Two clients taking turns: each op through this mount or the second one
// at random, both noac, so that every op sees the other's changes at
// once: what this mount knows of a name (its inode table's names, by
// which opens and removals go) after another client removed it, renamed
// it away or replaced it with another file or a directory. Found here: a
// descriptor read after another client's rewrite returned the old bytes
// (FileSystemTest.AnOverlappedReplyDrops...) or stopped at the old end
// (InodeTableTest.TheWindowSpares...), and renames failed with ESTALE
// after another client moved a directory
// (FileSystemTest.ALookupOfAMovedDirectory...). By hand only
// (FLOATMOUNT_TREE_TORTURE_TWO_MOUNTS=1): some renames still fail with
// ESTALE (seeds 52 and 53 of 51-60 x 3000 ops), not yet understood.
class TreeTortureTwoMountsTest : public MountTest {
 protected:
  TreeTortureTwoMountsTest() {
    test_timeout_ = std::chrono::seconds(1200);
    mount_options_ = "noac";
  }
};

TEST_F(TreeTortureTwoMountsTest, TwoMountsTakingTurnsMatchTheModel) {
  const uint64_t first = EnvNumber("FLOATMOUNT_TREE_TORTURE_FIRST_SEED", 1) + 50;
  const uint64_t seeds = EnvNumber("FLOATMOUNT_TREE_TORTURE_SEEDS", 3);
  const uint64_t ops = EnvNumber("FLOATMOUNT_TREE_TORTURE_OPS", 2000);
  if (kernel_client()) GTEST_SKIP() << "the exerciser's binary is not in the guest";
  if (EnvNumber("FLOATMOUNT_TREE_TORTURE_TWO_MOUNTS", 0) == 0) {
    GTEST_SKIP() << "renames after another mount moved a directory may still fail with ESTALE "
                    "(FLOATMOUNT_TREE_TORTURE_TWO_MOUNTS=1 runs it)";
  }
  std::vector<std::string> extra = {"--alternate"};
  if (NfsVersionUnderTest() == "3") extra.push_back("--no-held");
  FloatMount* other = MountSecond("noac");
  ASSERT_NE(other, nullptr);
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    const std::string dir = "tree" + std::to_string(seed);
    const CommandResult r = RunCommand(
        TreeTortureCommand(Path(dir), other->Path(dir), ServerPath(dir), seed, ops, extra), "",
        kTortureSeedTimeout);
    std::cout << "tree_torture seed " << seed << " on two mounts: exit " << r.exit_code
              << std::endl;
    EXPECT_EQ(r.exit_code, 0) << "seed " << seed << ": " << r.Describe();
  }
}

// The same while every connection of the mount under test is cut at random
// (as TortureUnderCutsTest): a REMOVE, RENAME, CREATE, LINK or OPEN that
// the server ran but whose reply was cut is sent again in the same
// session's slot and must be answered from its reply cache, never run
// twice (a rename run twice fails with ENOENT, a create with EEXIST).
// Small files only, so knfsd runs it too (bulk data through a cut
// forwarded connection is what trips QEMU's network: TortureUnderCutsTest).
class TreeTortureUnderCutsTest : public MountTest {
 protected:
  TreeTortureUnderCutsTest() { test_timeout_ = std::chrono::seconds(1200); }
};

TEST_F(TreeTortureUnderCutsTest, RandomNameOpsMatchTheModelWhileEveryConnectionIsCut) {
  const uint64_t first = EnvNumber("FLOATMOUNT_TREE_TORTURE_CUT_FIRST_SEED", 101);
  const uint64_t seeds = EnvNumber("FLOATMOUNT_TREE_TORTURE_CUT_SEEDS", 2);
  const uint64_t ops = EnvNumber("FLOATMOUNT_TREE_TORTURE_CUT_OPS", 1500);
  const auto mean = std::chrono::milliseconds(EnvNumber("FLOATMOUNT_TREE_TORTURE_CUT_MS", 250));
  if (kernel_client()) GTEST_SKIP() << "no floatmount mount to cut";
  FaultProxy proxy("127.0.0.1", 0, knfsd() ? knfsd_server().address() : server().address(),
                   server_port());
  ASSERT_TRUE(proxy.Start()) << proxy.error();
  FloatMount cut;
  FloatMount::Config config = MountConfig("");
  config.port = proxy.port();
  config.nconnect = 4;
  ASSERT_TRUE(cut.Mount(config));
  FloatMount* other = MountSecond("noac");
  ASSERT_NE(other, nullptr);

  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    const std::string dir = "tree" + std::to_string(seed);
    const auto start = std::chrono::steady_clock::now();
    CommandResult r;
    int cuts;
    {
      Cutter cutter(proxy, mean, seed);
      r = RunCommand(
          TreeTortureCommand(cut.Path(dir), other->Path(dir), ServerPath(dir), seed, ops), "",
          kTortureSeedTimeout);
      cuts = cutter.cuts();
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "tree_torture seed " << seed << " under cuts: exit " << r.exit_code << " after "
              << seconds << " s, " << cuts << " cuts" << std::endl;
    EXPECT_EQ(r.exit_code, 0) << "seed " << seed << " (" << cuts << " cuts): " << r.Describe();
    EXPECT_GT(cuts, 0) << "nothing was cut: the run was too short for the interval";
  }
  ExpectNoSessionStorm(cut);
  ExpectNoNewSession(cut);
  EXPECT_TRUE(cut.Unmount());
}

}  // namespace
}  // namespace floatmount::testing
