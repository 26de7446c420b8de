// The mount command's failures, each with its exit code (agent/exit_codes.h)
// and one line, leaving nothing mounted; and root squash respected.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "tests/harness/ganesha_server.h"
#include "tests/harness/integration_env.h"
#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

bool MountedAt(const std::string& path) {
  std::ifstream in("/proc/mounts");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" " + path + " ") != std::string::npos) return true;
  }
  return false;
}

class MountErrorsTest : public ::testing::Test {
 protected:
  void Start(GaneshaOptions options = {}) {
    const std::string missing = GaneshaServer::MissingPrerequisite(options);
    FLOATMOUNT_REQUIRE(missing.empty(), missing);
    FLOATMOUNT_REQUIRE(access("/dev/fuse", W_OK) == 0, "needs /dev/fuse");
    server_ = std::make_unique<GaneshaServer>(options);
    ASSERT_TRUE(server_->Start()) << server_->error();
    char dir[] = "/tmp/floatmount-errors-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    base_ = dir;
    mnt_ = base_ + "/mnt";
    ASSERT_EQ(mkdir(mnt_.c_str(), 0755), 0);
  }
  void TearDown() override {
    if (!mnt_.empty() && MountedAt(mnt_)) {
      RunCommand({FloatmountBinary(), "unmount", mnt_});
      if (MountedAt(mnt_)) RunCommand({"umount", "-l", mnt_});
    }
    if (!base_.empty()) RunCommand({"rm", "-rf", base_});
  }
  std::string Options(uint16_t port = 0) const {
    return "port=" + std::to_string(port ? port : server_->port()) + ",nconnect=2,state_dir=" +
           base_ + "/state";
  }
  CommandResult Mount(const std::string& options, const std::string& spec,
                      const std::string& where) {
    return RunCommand({FloatmountBinary(), "-o", options, spec, where}, "",
                      std::chrono::seconds(60));
  }
  // One line on stderr, the expected code, nothing left mounted at `where`.
  void ExpectFailure(const CommandResult& r, int code, const std::string& where,
                     const std::string& words) {
    EXPECT_EQ(r.exit_code, code) << r.Describe();
    std::string line = r.output;
    while (!line.empty() && line.back() == '\n') line.pop_back();
    EXPECT_EQ(line.find('\n'), std::string::npos) << r.Describe();
    EXPECT_NE(line.find(words), std::string::npos) << r.Describe();
    EXPECT_FALSE(MountedAt(where)) << r.Describe();
  }

  std::unique_ptr<GaneshaServer> server_;
  std::string base_;
  std::string mnt_;
};

TEST_F(MountErrorsTest, EachFailureHasItsExitCode) {
  Start();
  ExpectFailure(Mount(Options(1), "127.0.0.1:/export", mnt_), 3, mnt_, "Connection refused");
  ExpectFailure(Mount(Options(), "127.0.0.1:/nope", mnt_), 4, mnt_, "no such export");
  ExpectFailure(Mount(Options() + ",nconnect=99", "127.0.0.1:/export", mnt_), 2, mnt_,
                "nconnect");
  ExpectFailure(Mount(Options(), "no-such-host.invalid:/export", mnt_), 3, mnt_,
                "no address for 'no-such-host.invalid'");
  const std::string missing = base_ + "/missing";
  ExpectFailure(Mount(Options(), "127.0.0.1:/export", missing), 9, missing, "mkdir -p");
}

TEST_F(MountErrorsTest, ABusyMountPointIsRefused) {
  Start();
  CommandResult first = Mount(Options(), "127.0.0.1:/export", mnt_);
  ASSERT_EQ(first.exit_code, 0) << first.Describe();
  CommandResult second = Mount(Options(), "127.0.0.1:/export", mnt_);
  EXPECT_EQ(second.exit_code, 9) << second.Describe();
  EXPECT_NE(second.output.find("busy"), std::string::npos) << second.Describe();
  // The first mount still works, and is still the only one.
  std::ofstream(mnt_ + "/ok") << "1";
  EXPECT_TRUE(std::ifstream(server_->export_dir() + "/ok").good());
  CommandResult unmounted = RunCommand({FloatmountBinary(), "unmount", mnt_});
  EXPECT_EQ(unmounted.exit_code, 0) << unmounted.Describe();
  EXPECT_FALSE(MountedAt(mnt_));
}

// A server that wants a security flavor we do not offer (AUTH_SYS only)
// refuses with WRONGSEC. (Access_Type = None is not this case: ganesha then
// hides the export, and the answer is "no such export".)
TEST_F(MountErrorsTest, AServerThatRefusesUsIsPermissionDenied) {
  GaneshaOptions options;
  options.sec_type = "krb5";
  Start(options);
  ExpectFailure(Mount(Options(), "127.0.0.1:/export", mnt_), 5, mnt_, "permission denied");
}

TEST_F(MountErrorsTest, RootSquashIsRespected) {
  GaneshaOptions options;
  options.squash = "Root_Squash";
  Start(options);
  CommandResult r = Mount(Options(), "127.0.0.1:/export", mnt_);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(std::ofstream(mnt_ + "/by-root").good());
  struct stat st;
  ASSERT_EQ(stat((server_->export_dir() + "/by-root").c_str(), &st), 0);
  EXPECT_NE(st.st_uid, 0u) << "root was not squashed";
  // Squashed root cannot give a file to root either: whatever the call
  // says, the file must not end up owned by root.
  chown((mnt_ + "/by-root").c_str(), 0, 0);
  ASSERT_EQ(stat((server_->export_dir() + "/by-root").c_str(), &st), 0);
  EXPECT_NE(st.st_uid, 0u) << "chown to root went through a squashed root";
}

}  // namespace
}  // namespace floatmount::testing
