// The agent on a node: a server name that DNS (dnsmasq) answers with three
// floating IPs, each a proxy in front of the one ganesha; and two cloned
// nodes (a copied state directory, another machine fingerprint).
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/harness/dns_server.h"
#include "tests/harness/fault_proxy.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/status_json.h"

namespace floatmount::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Live connections per address, from the status.
std::map<std::string, int> Spread(const json& status) {
  std::map<std::string, int> spread;
  if (!status.is_object()) return spread;
  for (const json& c : status["connections"]) {
    if (c["up"].get<bool>()) ++spread[c["address"].get<std::string>()];
  }
  return spread;
}

std::string Show(const std::map<std::string, int>& spread) {
  std::string out;
  for (const auto& [a, n] : spread) out += a + "=" + std::to_string(n) + " ";
  return out;
}

class AgentTest : public MountTest {
 protected:
  AgentTest() { test_timeout_ = 300s; }
};

TEST_F(AgentTest, FloatingIpsShareTheConnectionsAndOneDyingMovesThemWithoutAnError) {
  if (reference_mount() || kernel_client()) {
    GTEST_SKIP() << "no agent in reference or kernel-client mode";
  }
  FLOATMOUNT_REQUIRE(DnsServer::MissingPrerequisite().empty(), DnsServer::MissingPrerequisite());
  FLOATMOUNT_REQUIRE(!FindOnPath("fio").empty(), "fio not found (apt-get install fio)");
  const std::vector<std::string> ips = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};
  std::unique_ptr<FaultProxy> proxies[3];
  uint16_t port = 0;
  for (int i = 0; i < 3; ++i) {
    proxies[i] = std::make_unique<FaultProxy>(ips[size_t(i)], port, server().address(), server().port());
    ASSERT_TRUE(proxies[i]->Start()) << proxies[i]->error();
    port = proxies[i]->port();
  }
  DnsServer::Options dns_options;
  dns_options.names["nfs.test"] = ips;
  dns_options.ttl = 2;
  DnsServer dns(dns_options);
  ASSERT_TRUE(dns.Start()) << dns.error();

  FloatMount mount;
  FloatMount::Config config;
  config.server = "nfs.test:" + server().pseudo_path();
  config.port = port;
  config.nconnect = 6;
  config.extra = "dns_server=127.0.0.1:" + std::to_string(dns.port());
  ASSERT_TRUE(mount.Mount(config));
  ASSERT_TRUE(WaitFor([&] { return Spread(StatusJson(mount.mount_point())).size() == 3; }, 10s))
      << Show(Spread(StatusJson(mount.mount_point())));
  const auto before = Spread(StatusJson(mount.mount_point()));
  for (const std::string& ip : ips) EXPECT_EQ(before.at(ip), 2) << Show(before);

  // fio writes 1 GiB with crc32c blocks and reads it back to verify; one
  // floating IP dies a third of the way in.
  const std::string file = mount.Path("ckpt");
  auto fio = std::async(std::launch::async, [&] {
    return RunCommand({"fio", "--name=ckpt", "--filename=" + file, "--rw=write", "--bs=1M",
                       "--size=1G", "--ioengine=psync", "--verify=crc32c", "--do_verify=1",
                       "--verify_fatal=1", "--end_fsync=1"},
                      "", 240s);
  });
  while (proxies[1]->BytesToTarget() < (96u << 20) && fio.wait_for(0ms) != std::future_status::ready) {
    std::this_thread::sleep_for(10ms);
  }
  proxies[1]->Stop();
  EXPECT_TRUE(WaitFor([&] {
    const auto s = Spread(StatusJson(mount.mount_point()));
    return s.count(ips[1]) == 0 && s.count(ips[0]) && s.count(ips[2]) && s.at(ips[0]) + s.at(ips[2]) == 6;
  }, 20s)) << "the status does not show the move: " << Show(Spread(StatusJson(mount.mount_point())));
  const CommandResult r = fio.get();
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  // Cold, through floatmount's read-ahead, over the two addresses left.
  std::ofstream("/proc/sys/vm/drop_caches") << "3\n";
  const CommandResult verify = RunCommand({"fio", "--name=ckpt", "--filename=" + file, "--rw=read",
                                           "--bs=1M", "--size=1G", "--ioengine=psync",
                                           "--verify=crc32c", "--verify_only=1", "--verify_fatal=1"},
                                          "", 240s);
  EXPECT_EQ(verify.exit_code, 0) << verify.Describe();
  EXPECT_TRUE(mount.Unmount());
}

TEST_F(AgentTest, ClonedNodesGetTheirOwnClientIdsAndKeepTheirState) {
  if (reference_mount() || kernel_client()) {
    GTEST_SKIP() << "no agent in reference or kernel-client mode";
  }
  const std::string dir = MakeTestDir("clone");
  ASSERT_FALSE(dir.empty());
  std::filesystem::create_directories(dir + "/node-a");
  std::ofstream(dir + "/machine-id-a") << "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";
  std::ofstream(dir + "/machine-id-b") << "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n";
  const std::string no_uuid = ",product_uuid_file=" + dir + "/none";

  FloatMount* a = MountSecond("state_dir=" + dir + "/node-a,machine_id_file=" + dir + "/machine-id-a" + no_uuid);
  ASSERT_NE(a, nullptr);
  // Node B is a clone: its state directory is a copy of A's.
  std::filesystem::copy(dir + "/node-a", dir + "/node-b", std::filesystem::copy_options::recursive);
  const std::string path_a = a->Path("shared.db");
  ASSERT_TRUE(WriteFile(path_a, std::string(4096, 'x')));
  UniqueFd fd_a(open(path_a.c_str(), O_RDWR));
  ASSERT_SYSCALL(fd_a.get());
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_len = 100;
  ASSERT_SYSCALL(fcntl(fd_a.get(), F_SETLK, &lock));

  FloatMount* b = MountSecond("state_dir=" + dir + "/node-b,machine_id_file=" + dir + "/machine-id-b" + no_uuid);
  ASSERT_NE(b, nullptr);
  const json sa = StatusJson(a->mount_point()), sb = StatusJson(b->mount_point());
  ASSERT_TRUE(sa.is_object() && sb.is_object());
  // The node ID is what two cloned machines would share; on one machine
  // the owners differ anyway (the mount point is part of them), so this is
  // the check that matters.
  EXPECT_NE(sa["node_id"], sb["node_id"]) << "the clone kept the original's node ID";
  EXPECT_NE(sa["owner_id"], sb["owner_id"]);
  // Both keep their state on the one server: A's lock holds against B,
  // and A's open goes on working.
  const std::string path_b = b->Path("shared.db");
  EXPECT_EQ(RunInChild([&] {
              UniqueFd fd(open(path_b.c_str(), O_RDWR));
              struct flock want {};
              want.l_type = F_WRLCK;
              want.l_whence = SEEK_SET;
              want.l_len = 100;
              return fcntl(fd.get(), F_SETLK, &want) == 0 ? 0 : errno;
            }),
            EAGAIN);
  // And A's open still works.
  EXPECT_TRUE(PwriteAll(fd_a.get(), "still mine", 0));
  EXPECT_SYSCALL(fsync(fd_a.get()));
  EXPECT_EQ(fd_a.Close(), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace floatmount::testing
