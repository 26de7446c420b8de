// mount(8) and fstab: 'mount -t floatmount' runs /sbin/mount.floatmount
// (the floatmount binary under that name) with mount(8)'s arguments.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

class MountHelperTest : public MountTest {};

bool MountedAt(const std::string& path) {
  std::ifstream in("/proc/mounts");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" " + path + " fuse.floatmount ") != std::string::npos) return true;
  }
  return false;
}

TEST_F(MountHelperTest, MountDashTFloatmountWithFstabOptions) {
  if (reference_mount() || kernel_client()) GTEST_SKIP() << "tests the floatmount command";
  FLOATMOUNT_REQUIRE(!FindOnPath("mount").empty(), "needs mount(8) (util-linux)");
  const std::string helper = "/sbin/mount.floatmount";
  bool installed_here = false;
  struct stat st;
  if (lstat(helper.c_str(), &st) != 0) {
    ASSERT_EQ(symlink(FloatmountBinary().c_str(), helper.c_str()), 0) << helper;
    installed_here = true;
  }
  char dir_template[] = "/tmp/floatmount-helper-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string base = dir_template;
  const std::string mnt = base + "/mnt";
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  const std::string options = "port=" + std::to_string(server().port()) +
                              ",nconnect=2,state_dir=" + base + "/state,_netdev,nofail";
  CommandResult mounted =
      RunCommand({"mount", "-t", "floatmount", "-o", options, "127.0.0.1:/export", mnt});
  EXPECT_EQ(mounted.exit_code, 0) << mounted.Describe();
  EXPECT_TRUE(MountedAt(mnt));
  if (MountedAt(mnt)) {
    std::ofstream(mnt + "/via-mount-t.txt") << "hello";
    std::ifstream back(ServerPath("via-mount-t.txt"));
    std::string content;
    std::getline(back, content);
    EXPECT_EQ(content, "hello");
    CommandResult unmounted = RunCommand({"umount", mnt});
    EXPECT_EQ(unmounted.exit_code, 0) << unmounted.Describe();
    EXPECT_FALSE(MountedAt(mnt));
  }
  if (MountedAt(mnt)) RunCommand({"umount", "-l", mnt});
  if (installed_here) unlink(helper.c_str());
  RunCommand({"rm", "-rf", base});
}

}  // namespace
}  // namespace floatmount::testing
