// Tests of GaneshaServer with the real nfs-ganesha: start, RPC NULL, crash
// and restart on the same port, two servers at once, cleanup, and the
// connection count the server sees (also through a FaultProxy). Skipped when
// ganesha cannot run here, failed instead under FLOATMOUNT_REQUIRE_INTEGRATION.
#include "tests/harness/ganesha_server.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/harness/fault_proxy.h"
#include "tests/harness/integration_env.h"
#include "tests/harness/net_util.h"
#include "tests/harness/rpc_ping.h"
#include "tests/harness/test_sockets.h"

namespace floatmount::testing {
namespace {

using std::chrono::milliseconds;

bool Pings(const GaneshaServer& server) {
  std::string error;
  const bool ok =
      RpcNullPing(server.address(), server.port(), kNfsProgram, 4, milliseconds(2000), &error);
  if (!ok) ADD_FAILURE() << "RPC NULL to " << server.port() << ": " << error;
  return ok;
}

bool ProcessGone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class GaneshaServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string missing = GaneshaServer::MissingPrerequisite();
    FLOATMOUNT_REQUIRE(missing.empty(), missing);
  }
};

TEST_F(GaneshaServerTest, StartsAndAnswersRpcNull) {
  GaneshaServer server;
  ASSERT_TRUE(server.Start()) << server.error();
  EXPECT_TRUE(server.running());
  EXPECT_GT(server.port(), 0);
  EXPECT_EQ(server.address(), "127.0.0.1");
  EXPECT_EQ(server.pseudo_path(), "/export");
  EXPECT_TRUE(Pings(server));
  EXPECT_TRUE(std::filesystem::is_directory(server.export_dir()));
  EXPECT_TRUE(std::filesystem::exists(server.log_path()));
  // Recovery state stays inside the instance's directory.
  EXPECT_NE(Slurp(server.config_path()).find("RecoveryRoot = " + server.dir() + "/recovery"),
            std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(server.dir() + "/recovery/v4recov"));
  EXPECT_TRUE(server.Stop()) << "needed SIGKILL";
  EXPECT_FALSE(server.running());
}

TEST_F(GaneshaServerTest, KillAndRestartOnSamePortKeepsData) {
  GaneshaServer server;
  ASSERT_TRUE(server.Start()) << server.error();
  const uint16_t port = server.port();
  const pid_t first_pid = server.pid();
  std::ofstream(server.export_dir() + "/kept") << "survives a crash";

  // A connection open across the crash leaves the port in FIN_WAIT/TIME_WAIT.
  const int fd = ConnectTo(port);
  ASSERT_GE(fd, 0);
  server.Kill();
  EXPECT_FALSE(server.running());
  EXPECT_TRUE(ProcessGone(first_pid));
  EXPECT_FALSE(RpcNullPing(server.address(), port, kNfsProgram, 4, milliseconds(300)));
  close(fd);

  ASSERT_TRUE(server.Restart()) << server.error();
  EXPECT_EQ(server.port(), port);
  EXPECT_NE(server.pid(), first_pid);
  EXPECT_TRUE(Pings(server));
  EXPECT_EQ(Slurp(server.export_dir() + "/kept"), "survives a crash");

  // Restart of a running server stops it cleanly first.
  ASSERT_TRUE(server.Restart()) << server.error();
  EXPECT_EQ(server.port(), port);
  EXPECT_TRUE(Pings(server));
}

TEST_F(GaneshaServerTest, RestartWaitsUntilThePortIsFree) {
  GaneshaServer server;
  ASSERT_TRUE(server.Start()) << server.error();
  const uint16_t port = server.port();
  server.Kill();

  // Someone else holds the port for a while; Restart() keeps trying.
  Endpoint ep;
  std::string error;
  ASSERT_TRUE(ResolveEndpoint(server.address(), port, &ep, &error)) << error;
  const int squatter = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(squatter, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  ASSERT_EQ(bind(squatter, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len), 0);
  ASSERT_EQ(listen(squatter, 1), 0);
  std::thread release([squatter] {
    std::this_thread::sleep_for(milliseconds(700));
    close(squatter);
  });
  const auto start = std::chrono::steady_clock::now();
  const bool restarted = server.Restart();
  release.join();
  ASSERT_TRUE(restarted) << server.error();
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(700));
  EXPECT_EQ(server.port(), port);
  EXPECT_TRUE(Pings(server));
}

TEST_F(GaneshaServerTest, TwoServersRunAtOnce) {
  GaneshaServer a, b;
  ASSERT_TRUE(a.Start()) << a.error();
  ASSERT_TRUE(b.Start()) << b.error();
  EXPECT_NE(a.port(), b.port());
  EXPECT_NE(a.dir(), b.dir());
  EXPECT_TRUE(Pings(a));
  EXPECT_TRUE(Pings(b));
  a.Kill();
  EXPECT_TRUE(Pings(b));
}

TEST_F(GaneshaServerTest, DestructorStopsServerAndRemovesDirectory) {
  pid_t pid = 0;
  std::string dir;
  {
    GaneshaServer server;
    ASSERT_TRUE(server.Start()) << server.error();
    pid = server.pid();
    dir = server.dir();
    ASSERT_FALSE(ProcessGone(pid));
  }
  EXPECT_TRUE(ProcessGone(pid));
  if (!KeepTestDirs()) {
    EXPECT_FALSE(std::filesystem::exists(dir));
  }
}

TEST_F(GaneshaServerTest, CountsEstablishedConnections) {
  GaneshaServer server;
  ASSERT_TRUE(server.Start()) << server.error();
  EXPECT_TRUE(WaitFor([&] { return server.EstablishedConnections() == 0; }));

  std::vector<int> direct;
  for (int i = 0; i < 3; ++i) direct.push_back(ConnectTo(server.port()));
  EXPECT_TRUE(WaitFor([&] { return server.EstablishedConnections() == 3; }))
      << server.EstablishedConnections();

  // Through a proxy, the server sees the proxy's upstream connections.
  FaultProxy proxy("127.0.0.1", 0, server.address(), server.port());
  ASSERT_TRUE(proxy.Start()) << proxy.error();
  std::string error;
  EXPECT_TRUE(
      RpcNullPing(proxy.address(), proxy.port(), kNfsProgram, 4, milliseconds(2000), &error))
      << error;
  std::vector<int> proxied;
  for (int i = 0; i < 4; ++i) proxied.push_back(ConnectTo(proxy.port()));
  EXPECT_TRUE(WaitFor([&] { return server.EstablishedConnections() == 7; }))
      << server.EstablishedConnections();
  proxy.CutAll();
  EXPECT_TRUE(WaitFor([&] { return server.EstablishedConnections() == 3; }))
      << server.EstablishedConnections();
  for (int fd : direct) close(fd);
  for (int fd : proxied) close(fd);
  EXPECT_TRUE(WaitFor([&] { return server.EstablishedConnections() == 0; }))
      << server.EstablishedConnections();
}

TEST_F(GaneshaServerTest, OptionsReachTheConfig) {
  GaneshaOptions options;
  options.minor_versions = {0, 2};  // a server without NFSv4.1
  options.squash = "Root_Squash";
  options.numeric_owners = false;
  options.lease_lifetime_s = 15;
  options.attr_expiration_s = 0;
  GaneshaServer server(options);
  ASSERT_TRUE(server.Start()) << server.error();
  EXPECT_TRUE(Pings(server));
  const std::string config = Slurp(server.config_path());
  for (const char* expected :
       {"Minor_Versions = 0, 2;", "Squash = Root_Squash;", "Only_Numeric_Owners = false;",
        "Lease_Lifetime = 15;", "Attr_Expiration_Time = 0;", "Protocols = 4;"}) {
    EXPECT_NE(config.find(expected), std::string::npos) << expected << " missing in\n" << config;
  }
}

TEST_F(GaneshaServerTest, StartFailureReportsLogTail) {
  GaneshaOptions options;
  options.squash = "Not_A_Squash_Value";
  options.start_timeout = milliseconds(5000);
  GaneshaServer server(options);
  EXPECT_FALSE(server.Start());
  EXPECT_FALSE(server.running());
  EXPECT_NE(server.error().find("ganesha log tail"), std::string::npos) << server.error();
}

}  // namespace
}  // namespace floatmount::testing
