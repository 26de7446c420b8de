// `floatmount status` against a real mount: the agent's control socket
// answers with the session, every connection and the cache's figures, in
// the three formats, and the figures move with the I/O done.
#include <fcntl.h>
#include <unistd.h>

#include <regex>

#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

class StatusCommandTest : public MountTest {
 protected:
  CommandResult Status(std::vector<std::string> args) {
    std::vector<std::string> argv = {FloatmountBinary(), "status"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, "", std::chrono::seconds(20));
  }
};

TEST_F(StatusCommandTest, ShowsTheSessionConnectionsAndCache) {
  if (reference_mount() || kernel_client()) {
    GTEST_SKIP() << "no agent in reference or kernel-client mode";
  }
  const std::string data = TestData(24 << 20, 9);
  ASSERT_TRUE(WriteFile(Path("f"), data));
  ASSERT_TRUE(SameBytes(ReadFile(Path("f")).value_or(""), data));

  const CommandResult human = Status({mount().mount_point()});
  ASSERT_EQ(human.exit_code, 0) << human.Describe();
  EXPECT_NE(human.output.find(mount().mount_point() + ": 127.0.0.1:/export"), std::string::npos)
      << human.output;
  EXPECT_NE(human.output.find("4 of 4 up"), std::string::npos) << human.output;
  EXPECT_NE(human.output.find("127.0.0.1:" + std::to_string(server().port())), std::string::npos)
      << human.output;
  EXPECT_NE(human.output.find("floatmount/"), std::string::npos) << human.output;  // the owner

  const CommandResult json = Status({"--json", mount().mount_point()});
  ASSERT_EQ(json.exit_code, 0) << json.Describe();
  EXPECT_NE(json.output.find("\"written_back_bytes\":" + std::to_string(data.size())),
            std::string::npos)
      << json.output;
  EXPECT_NE(json.output.find("\"session\":{\"clientid\":"), std::string::npos) << json.output;

  const CommandResult prom = Status({"--prometheus"});  // every mount on the machine
  ASSERT_EQ(prom.exit_code, 0) << prom.Describe();
  const std::string up = "floatmount_connections_up{mountpoint=\"" + mount().mount_point() +
                         "\",server=\"127.0.0.1\"} 4";
  EXPECT_NE(prom.output.find(up), std::string::npos) << prom.output;
  EXPECT_NE(prom.output.find("# TYPE floatmount_commits_total counter"), std::string::npos);
}

TEST_F(StatusCommandTest, ANonFloatmountDirectoryIsAClearError) {
  const std::string dir = MakeTestDir("status");
  ASSERT_FALSE(dir.empty());
  const CommandResult r = Status({dir});
  EXPECT_EQ(r.exit_code, 9) << r.Describe();
  EXPECT_NE(r.output.find("Is it mounted with floatmount?"), std::string::npos) << r.output;
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace floatmount::testing
