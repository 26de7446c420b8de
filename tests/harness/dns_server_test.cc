// Tests of DnsServer with the real dnsmasq, checked with the harness's own
// DnsQuery (not the product's resolver): several A records in one answer
// with the configured TTL, AAAA, NXDOMAIN for other names, reload after
// SetAddresses, two servers at once, IPv6 listening, cleanup. Skipped when
// dnsmasq is missing, failed instead under FLOATMOUNT_REQUIRE_INTEGRATION.
#include "tests/harness/dns_server.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "tests/harness/integration_env.h"

namespace floatmount::testing {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kTimeout{2000};

// The sorted addresses of the answer, or {"error: ..."}.
std::vector<std::string> Ask(const DnsServer& dns, const std::string& name, bool ipv6,
                             DnsReply* reply_out = nullptr) {
  DnsReply reply;
  std::string error;
  if (!DnsQuery(dns.address(), dns.port(), name, ipv6, kTimeout, &reply, &error)) {
    return {"error: " + error};
  }
  std::vector<std::string> out;
  for (const DnsRecord& r : reply.records) out.push_back(r.address);
  std::sort(out.begin(), out.end());
  if (reply_out != nullptr) *reply_out = reply;
  return out;
}

class DnsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string missing = DnsServer::MissingPrerequisite();
    FLOATMOUNT_REQUIRE(missing.empty(), missing);
  }
};

TEST_F(DnsServerTest, AnswersAllRecordsOfANameInOneReply) {
  DnsServer dns({.names = {{"nfs.test", {"127.0.0.2", "127.0.0.3", "127.0.0.4"}},
                           {"dual.test", {"127.0.0.5", "fd00::5"}}},
                 .ttl = 7});
  ASSERT_TRUE(dns.Start()) << dns.error();
  EXPECT_TRUE(dns.running());
  EXPECT_GT(dns.port(), 0);
  EXPECT_EQ(dns.server_spec(), "127.0.0.1:" + std::to_string(dns.port()));

  DnsReply reply;
  EXPECT_EQ(Ask(dns, "nfs.test", false, &reply),
            (std::vector<std::string>{"127.0.0.2", "127.0.0.3", "127.0.0.4"}));
  EXPECT_EQ(reply.rcode, 0);
  for (const DnsRecord& r : reply.records) EXPECT_EQ(r.ttl, 7u) << r.address;
  EXPECT_EQ(Ask(dns, "nfs.test", true), std::vector<std::string>{});  // no AAAA
  EXPECT_EQ(Ask(dns, "dual.test", false), std::vector<std::string>{"127.0.0.5"});
  EXPECT_EQ(Ask(dns, "dual.test", true), std::vector<std::string>{"fd00::5"});

  // Anything else is NXDOMAIN: no upstream, no /etc/hosts.
  EXPECT_EQ(Ask(dns, "other.test", false, &reply), std::vector<std::string>{});
  EXPECT_EQ(reply.rcode, 3);
  EXPECT_EQ(Ask(dns, "localhost", false, &reply), std::vector<std::string>{});
  EXPECT_EQ(reply.rcode, 3);

  EXPECT_TRUE(dns.Stop()) << "needed SIGKILL";
  EXPECT_FALSE(dns.running());
}

TEST_F(DnsServerTest, SetAddressesReloadsTheRecords) {
  DnsServer dns({.names = {{"nfs.test", {"127.0.0.2", "127.0.0.3", "127.0.0.4"}}}});
  ASSERT_TRUE(dns.Start()) << dns.error();
  const pid_t pid = dns.pid();

  ASSERT_TRUE(dns.SetAddresses("nfs.test", {"127.0.0.4", "127.0.0.9"})) << dns.error();
  EXPECT_EQ(Ask(dns, "nfs.test", false), (std::vector<std::string>{"127.0.0.4", "127.0.0.9"}));
  ASSERT_TRUE(dns.SetAddresses("new.test", {"::2"})) << dns.error();
  EXPECT_EQ(Ask(dns, "new.test", true), std::vector<std::string>{"::2"});
  EXPECT_EQ(Ask(dns, "nfs.test", false), (std::vector<std::string>{"127.0.0.4", "127.0.0.9"}));

  DnsReply reply;
  ASSERT_TRUE(dns.SetAddresses("nfs.test", {})) << dns.error();
  EXPECT_EQ(Ask(dns, "nfs.test", false, &reply), std::vector<std::string>{});
  EXPECT_EQ(reply.rcode, 3);
  EXPECT_EQ(dns.pid(), pid);  // reloaded, not restarted
}

TEST_F(DnsServerTest, RejectsANonNumericAddress) {
  DnsServer dns({.names = {{"nfs.test", {"not-an-address"}}}});
  EXPECT_FALSE(dns.Start());
  EXPECT_NE(dns.error().find("not-an-address"), std::string::npos) << dns.error();
  EXPECT_FALSE(dns.running());
}

TEST_F(DnsServerTest, TwoServersRunAtOnceOnTheirOwnPorts) {
  DnsServer a({.names = {{"nfs.test", {"127.0.0.2"}}}});
  DnsServer b({.names = {{"nfs.test", {"127.0.0.3"}}}});
  ASSERT_TRUE(a.Start()) << a.error();
  ASSERT_TRUE(b.Start()) << b.error();
  EXPECT_NE(a.port(), b.port());
  EXPECT_EQ(Ask(a, "nfs.test", false), std::vector<std::string>{"127.0.0.2"});
  EXPECT_EQ(Ask(b, "nfs.test", false), std::vector<std::string>{"127.0.0.3"});
}

TEST_F(DnsServerTest, ListensOnIpv6Loopback) {
  DnsServer dns({.names = {{"nfs.test", {"127.0.0.2"}}}, .listen_address = "::1"});
  ASSERT_TRUE(dns.Start()) << dns.error();
  EXPECT_EQ(dns.server_spec(), "[::1]:" + std::to_string(dns.port()));
  EXPECT_EQ(Ask(dns, "nfs.test", false), std::vector<std::string>{"127.0.0.2"});
}

TEST_F(DnsServerTest, DestructorStopsTheServerAndRemovesItsDirectory) {
  pid_t pid;
  std::string dir;
  uint16_t port;
  {
    DnsServer dns({.names = {{"nfs.test", {"127.0.0.2"}}}});
    ASSERT_TRUE(dns.Start()) << dns.error();
    pid = dns.pid();
    dir = dns.dir();
    port = dns.port();
    EXPECT_TRUE(std::filesystem::exists(dns.hosts_path()));
    EXPECT_TRUE(std::filesystem::exists(dns.log_path()));
  }
  EXPECT_TRUE(kill(pid, 0) != 0 && errno == ESRCH) << "dnsmasq " << pid << " still runs";
  if (!KeepTestDirs()) {
    EXPECT_FALSE(std::filesystem::exists(dir));
  }
  DnsReply reply;
  std::string error;
  EXPECT_FALSE(DnsQuery("127.0.0.1", port, "nfs.test", false, milliseconds(300), &reply, &error));
}

}  // namespace
}  // namespace floatmount::testing
