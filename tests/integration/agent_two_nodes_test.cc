// The agent with a name that DNS (dnsmasq) answers with two addresses that
// lead to two server nodes with their own state (two ganesha processes, same
// server owner and scope, other client IDs): `floatmount status` says which
// address belongs to which server, one session is made, and no session or
// reconnect storm follows (RFC 8881 2.10.5; nfs/v4/trunking.h).
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/harness/dns_server.h"
#include "tests/harness/fault_proxy.h"
#include "tests/integration/engine_fixture.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/status_json.h"

namespace floatmount::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class AgentTwoNodesTest : public MountTest {
 protected:
  AgentTwoNodesTest() { test_timeout_ = 180s; }
};

TEST_F(AgentTwoNodesTest, StatusNamesEachAddressesServerAndOneSessionServesTheMount) {
  if (reference_mount() || kernel_client()) {
    GTEST_SKIP() << "no agent in reference or kernel-client mode";
  }
  FLOATMOUNT_REQUIRE(DnsServer::MissingPrerequisite().empty(), DnsServer::MissingPrerequisite());
  // ganesha's client IDs start from its boot time in seconds.
  std::this_thread::sleep_for(1100ms);
  GaneshaServer other(server_options_);
  ASSERT_TRUE(other.Start()) << other.error();
  const std::vector<std::string> ips = {"127.0.0.2", "127.0.0.3"};
  FaultProxy first(ips[0], 0, server().address(), server().port());
  ASSERT_TRUE(first.Start()) << first.error();
  FaultProxy second(ips[1], first.port(), other.address(), other.port());
  ASSERT_TRUE(second.Start()) << second.error();
  DnsServer::Options dns_options;
  dns_options.names["nfs.test"] = ips;
  dns_options.ttl = 2;
  DnsServer dns(dns_options);
  ASSERT_TRUE(dns.Start()) << dns.error();

  FloatMount mount;
  FloatMount::Config config;
  config.server = "nfs.test:" + server().pseudo_path();
  config.port = first.port();
  config.nconnect = 8;
  config.extra = "dns_server=127.0.0.1:" + std::to_string(dns.port());
  ASSERT_TRUE(mount.Mount(config));

  const std::vector<uint8_t> data = RandomBytes(32 << 20, 41);
  {
    std::ofstream out(mount.Path("two-nodes.bin"), std::ios::binary);
    out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
    out.close();
    ASSERT_TRUE(out.good());
  }
  // The file is on the node of the session, and only there.
  const std::vector<uint8_t> on_first = ReadLocalFile(server().export_dir() + "/two-nodes.bin");
  const std::vector<uint8_t> on_other = ReadLocalFile(other.export_dir() + "/two-nodes.bin");
  EXPECT_TRUE((on_first == data && on_other.empty()) || (on_other == data && on_first.empty()));
  EXPECT_TRUE(ReadLocalFile(mount.Path("two-nodes.bin")) == data);

  const json before = StatusJson(mount.mount_point());
  ASSERT_TRUE(before.is_object());
  std::map<std::string, std::string> roles;
  for (const json& a : before["addresses"]) {
    roles[a["address"].get<std::string>()] = a["role"].get<std::string>();
    EXPECT_FALSE(a["server_owner"].get<std::string>().empty()) << a.dump();
  }
  const std::string session_ip = on_first.empty() ? ips[1] : ips[0];
  const std::string other_ip = on_first.empty() ? ips[0] : ips[1];
  EXPECT_EQ(roles[session_ip], "session") << before["addresses"].dump();
  EXPECT_EQ(roles[other_ip], "other-server") << before["addresses"].dump();
  EXPECT_LE(before["recovery"]["sessions_created"].get<uint64_t>(), 2u) << before["recovery"].dump();
  EXPECT_EQ(before["recovery"]["session_storm"].get<std::string>(), "");
  const CommandResult human = RunCommand({FloatmountBinary(), "status", mount.mount_point()}, "", 20s);
  EXPECT_NE(human.output.find(other_ip), std::string::npos) << human.output;
  EXPECT_NE(human.output.find("other-server"), std::string::npos) << human.output;

  // No storm while both nodes answer.
  std::this_thread::sleep_for(10s);
  const json after = StatusJson(mount.mount_point());
  ASSERT_TRUE(after.is_object());
  EXPECT_EQ(after["recovery"]["sessions_created"], before["recovery"]["sessions_created"])
      << after["recovery"].dump();
  EXPECT_LE(after["recovery"]["reconnects"].get<uint64_t>(),
            before["recovery"]["reconnects"].get<uint64_t>() + 2)
      << after["recovery"].dump();
  EXPECT_EQ(after["recovery"]["session_recoveries"].get<uint64_t>(), 0u) << after["recovery"].dump();
  EXPECT_TRUE(mount.Unmount());
}

}  // namespace
}  // namespace floatmount::testing
