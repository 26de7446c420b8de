// The mount command's contract, seen from a shell: a failing mount exits
// non-zero with one line on stderr and leaves nothing mounted and no agent
// running; the documented -o options are accepted; `floatmount unmount`
// flushes, and a new mount finds the data; the agent holds none of its
// caller's descriptors.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

constexpr auto kFailureBound = std::chrono::seconds(30);

// A mount point and a state directory for a mount attempt that should fail;
// whatever it leaves mounted is forced away at the end.
class Scratch {
 public:
  Scratch() : mount_point_(MakeTestDir("mnt")), state_dir_(MakeTestDir("state")) {}
  ~Scratch() {
    if (!MountedFsType(mount_point_).empty()) {
      RunCommand({"fusermount3", "-u", "-z", mount_point_}, "", std::chrono::seconds(10));
      RunCommand({"umount", "-l", mount_point_}, "", std::chrono::seconds(10));
    }
    if (MountedFsType(mount_point_).empty()) rmdir(mount_point_.c_str());
    std::error_code ignored;
    std::filesystem::remove_all(state_dir_, ignored);
  }
  const std::string& mount_point() const { return mount_point_; }
  const std::string& state_dir() const { return state_dir_; }

 private:
  std::string mount_point_;
  std::string state_dir_;
};

// A loopback port nothing listens on.
uint16_t UnusedPort() {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return 1;
  }
  return ntohs(addr.sin_port);
}

void ExpectCleanFailure(const CommandResult& r, const std::string& mount_point) {
  EXPECT_FALSE(r.timed_out) << "no answer within " << kFailureBound.count()
                            << " s: " << r.Describe();
  EXPECT_GT(r.exit_code, 0) << r.Describe();
  std::string message = r.output;
  while (!message.empty() && message.back() == '\n') message.pop_back();
  EXPECT_FALSE(message.empty()) << "no error message: " << r.Describe();
  EXPECT_EQ(message.find('\n'), std::string::npos) << "more than one line: " << r.Describe();
  EXPECT_EQ(MountedFsType(mount_point), "") << "left mounted: " << r.Describe();
  EXPECT_TRUE(
      WaitFor([&] { return ProcessesNaming(mount_point).empty(); }, std::chrono::seconds(5)))
      << "an agent process is still running for " << mount_point;
}

class MountCommandTest : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    if (reference_mount() || kernel_client()) GTEST_SKIP() << "tests the floatmount command itself";
  }
  CommandResult Mount(const std::string& options, const std::string& server,
                      const std::string& mount_point) {
    return RunCommand({FloatmountBinary(), "-o", options, server, mount_point}, "", kFailureBound);
  }
  // The export under test, or `path` on the same server.
  std::string ServerSpec(const std::string& path = "") {
    return path.empty() ? server_spec() : "127.0.0.1:" + path;
  }
  std::string Options(const Scratch& scratch, uint16_t port) {
    return "port=" + std::to_string(port) + ",state_dir=" + scratch.state_dir();
  }
};

TEST_F(MountCommandTest, MissingExportFailsCleanly) {
  Scratch scratch;
  const CommandResult r = Mount(Options(scratch, server_port()), ServerSpec("/no/such/export"),
                                scratch.mount_point());
  ExpectCleanFailure(r, scratch.mount_point());
}

TEST_F(MountCommandTest, UnreachableServerFailsCleanly) {
  Scratch scratch;
  const CommandResult r =
      Mount(Options(scratch, UnusedPort()), ServerSpec(), scratch.mount_point());
  ExpectCleanFailure(r, scratch.mount_point());
}

TEST_F(MountCommandTest, BadArgumentsFailCleanly) {
  {
    SCOPED_TRACE("unknown option");
    Scratch scratch;
    ExpectCleanFailure(Mount(Options(scratch, server_port()) + ",no_such_option=1", ServerSpec(),
                             scratch.mount_point()),
                       scratch.mount_point());
  }
  {
    SCOPED_TRACE("bad nconnect");
    Scratch scratch;
    ExpectCleanFailure(Mount(Options(scratch, server_port()) + ",nconnect=zero", ServerSpec(),
                             scratch.mount_point()),
                       scratch.mount_point());
  }
  {
    SCOPED_TRACE("server without :/export");
    Scratch scratch;
    ExpectCleanFailure(Mount(Options(scratch, server_port()), "127.0.0.1", scratch.mount_point()),
                       scratch.mount_point());
  }
  {
    SCOPED_TRACE("missing mount point");
    Scratch scratch;
    const std::string missing = scratch.mount_point() + "/does-not-exist";
    ExpectCleanFailure(Mount(Options(scratch, server_port()), ServerSpec(), missing), missing);
  }
  // The test's own mount is unaffected.
  ASSERT_TRUE(WriteFile(Path("still-works"), "yes"));
  EXPECT_EQ(ReadFile(ServerPath("still-works")).value_or("<error>"), "yes");
}

TEST_F(MountCommandTest, DocumentedOptionsAreAccepted) {
  for (const char* extra :
       {"nconnect=2,actimeo=5,hard,timeo=600", "soft,timeo=50,noac", "allow_other"}) {
    SCOPED_TRACE(extra);
    FloatMount* m = MountSecond(extra);
    ASSERT_NE(m, nullptr);
    const std::string name = std::string("written-with-") + extra;
    ASSERT_TRUE(WriteFile(m->Path(name), extra));
    EXPECT_EQ(ReadFile(ServerPath(name)).value_or("<error>"), extra);
    EXPECT_EQ(ReadFile(Path(name)).value_or("<error>"), extra);
  }
}

TEST_F(MountCommandTest, UnmountFlushesAndANewMountFindsTheData) {
  const std::string data = TestData(5 << 20, 3);
  ASSERT_SYSCALL(mkdir(Path("kept").c_str(), 0755));
  ASSERT_TRUE(WriteFile(Path("kept/data"), data));
  ASSERT_SYSCALL(symlink("data", Path("kept/link").c_str()));
  // Unmount checks that the command succeeds, the mount is gone and the
  // agent has exited.
  ASSERT_TRUE(mount().Unmount());
  EXPECT_TRUE(SameBytes(ReadFile(ServerPath("kept/data")).value_or(""), data));

  FloatMount* again = MountSecond();
  ASSERT_NE(again, nullptr);
  EXPECT_TRUE(SameBytes(ReadFile(again->Path("kept/data")).value_or(""), data));
  EXPECT_TRUE(SameBytes(ReadFile(again->Path("kept/link")).value_or(""), data));
}

// The agent a mount command leaves running keeps none of its caller's
// descriptors (daemon(7)): a file the caller had open on another mount
// while it mounted must not keep that other mount busy once the caller
// closes it. (Found against knfsd: the fixture's second mount, made while
// a test held a file open, made the first mount's unmount fail with EBUSY.)
TEST_F(MountCommandTest, AgentKeepsNoDescriptorOfItsCaller) {
  ASSERT_TRUE(WriteFile(Path("held"), "open while mounting"));
  UniqueFd held(open(Path("held").c_str(), O_RDONLY));  // inheritable on purpose
  ASSERT_SYSCALL(held.get());
  FloatMount* other = MountSecond();
  ASSERT_NE(other, nullptr);
  ASSERT_SYSCALL(held.Close());
  EXPECT_TRUE(mount().Unmount()) << "the new agent keeps the first mount busy";
  EXPECT_EQ(ReadFile(other->Path("held")).value_or("<error>"), "open while mounting");
}

}  // namespace
}  // namespace floatmount::testing
