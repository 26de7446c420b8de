// `floatmount status`: the three renderings of a MountStatus, the JSON
// round trip the command relies on, and the control socket.
#include "agent/status/status.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <regex>
#include <sstream>

#include "agent/daemon/run_files.h"
#include "agent/status/status_server.h"

namespace floatmount::agent {
namespace {

MountStatus Sample(const std::string& mountpoint) {
  MountStatus s;
  s.mountpoint = mountpoint;
  s.server = "nfs.example.com";
  s.export_path = "/export";
  s.node_id = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
  s.owner_id = "floatmount/1b4e28ba-2fa1-11d2-883f-0016d3cca427" + mountpoint;
  s.nconnect = 2;
  s.uptime_s = 3723;
  s.engine.session_id = "00112233445566778899aabbccddeeff";
  s.engine.clientid = 0x1234;
  s.engine.server_owner_major = "ganesha";
  s.engine.server_scope = "scope";
  s.engine.impl_name = "nfs-ganesha 4.3";
  s.engine.lease_time = 90;
  s.engine.slots = 64;
  s.engine.rsize = s.engine.wsize = 1 << 20;
  for (int i = 0; i < 2; ++i) {
    nfs::ConnectionInfo c;
    c.endpoint = {"127.0.0." + std::to_string(2 + i), 2049};
    c.up = i == 0;
    c.outstanding = size_t(3 + i);
    c.bytes_sent = 1000u * (i + 1);
    c.bytes_received = 5000u * (i + 1);
    s.engine.connections.push_back(c);
  }
  s.engine.excluded.push_back({"10.0.0.9", 2049});
  s.engine.reconnects = 4;
  s.engine.retries = 17;
  s.engine.stateid_recoveries = 2;
  s.engine.stateids_revoked = 3;
  s.engine.reruns_done = 5;
  s.engine.calls = {{"OPEN", 12}, {"WRITE", 30}};
  s.throughput = {812.5 * (1 << 20), 2.0 * (1 << 20)};
  s.cache.budget = 1ull << 30;
  s.cache.in_use = 64ull << 20;
  s.cache.dirty = 3 << 20;
  s.cache.unstable = 5 << 20;
  s.cache.read_from_cache = 7ull << 30;
  s.cache.prefetched = 7ull << 30;
  s.cache.commits = 9;
  s.cache.flush_seconds_max = 0.25;
  return s;
}

TEST(StatusTest, JsonReadsBackAsWritten) {
  const MountStatus s = Sample("/mnt/data");
  const std::string json = FormatJson(s);
  EXPECT_EQ(json.find('\n'), std::string::npos);  // one line on the socket
  auto back = ParseStatusJson(json);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(FormatJson(*back), json);
  EXPECT_EQ(back->engine.connections.size(), 2u);
  EXPECT_EQ(back->engine.excluded.at(0).ToString(), s.engine.excluded[0].ToString());
  EXPECT_EQ(back->engine.calls, s.engine.calls);
  EXPECT_FALSE(ParseStatusJson("{\"mountpoint\": 1}").ok());
  EXPECT_FALSE(ParseStatusJson("not json").ok());
}

TEST(StatusTest, HumanSummaryNamesEveryConnection) {
  const std::string text = FormatHuman(Sample("/mnt/data"));
  EXPECT_NE(text.find("/mnt/data: nfs.example.com:/export (up 1h02m)"), std::string::npos) << text;
  EXPECT_NE(text.find("1 of 2 up"), std::string::npos) << text;
  EXPECT_NE(text.find("127.0.0.2:2049"), std::string::npos) << text;
  EXPECT_NE(text.find("calls        42 in all: OPEN 12, WRITE 30"), std::string::npos) << text;
  EXPECT_NE(text.find("127.0.0.3:2049"), std::string::npos) << text;
  EXPECT_NE(text.find("4 in flight"), std::string::npos) << text;
  EXPECT_NE(text.find("10.0.0.9:2049 not used"), std::string::npos) << text;
  EXPECT_NE(text.find("read 812.5 MiB/s"), std::string::npos) << text;
  EXPECT_NE(text.find("4 reconnects"), std::string::npos) << text;
  EXPECT_NE(text.find("2 stateid repairs (3 stateids revoked or lost)"), std::string::npos) << text;
  EXPECT_NE(text.find("5 reruns reported done"), std::string::npos) << text;
}

// Two server nodes behind one name: status says which address leads to
// which server owner, and a session storm is an error.
MountStatus TwoNodes() {
  MountStatus s = Sample("/mnt/data");
  s.engine.excluded = {{"127.0.0.3", 2049}};
  s.engine.addresses.push_back({{"127.0.0.2", 2049}, "session", "node-a minor 0", "scope", true, true});
  s.engine.addresses.push_back(
      {{"127.0.0.3", 2049}, "other-server", "node-a minor 0", "scope", true, true});
  s.engine.sessions_created = 12;
  s.engine.session_storm = "3 new sessions held back: more than 10 in a minute";
  return s;
}

TEST(StatusTest, AddressesAndSessionStormReadBackAndShow) {
  const MountStatus s = TwoNodes();
  auto back = ParseStatusJson(FormatJson(s));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(FormatJson(*back), FormatJson(s));
  ASSERT_EQ(back->engine.addresses.size(), 2u);
  EXPECT_EQ(back->engine.addresses[1].role, "other-server");
  EXPECT_EQ(back->engine.addresses[1].server_owner, "node-a minor 0");
  EXPECT_EQ(back->engine.sessions_created, 12u);
  const std::string text = FormatHuman(s);
  EXPECT_NE(text.find("127.0.0.2:2049  session, server owner node-a minor 0"), std::string::npos)
      << text;
  EXPECT_NE(text.find("127.0.0.3:2049  other-server, server owner node-a minor 0: another server"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ERROR        session storm: 3 new sessions held back"), std::string::npos)
      << text;
  EXPECT_NE(text.find("(12 created in all)"), std::string::npos) << text;
  EXPECT_NE(FormatPrometheus({s}).find("floatmount_session_storm{"), std::string::npos);
}

TEST(StatusTest, PrometheusGroupsEachFamilyOnceAcrossMounts) {
  MountStatus b = Sample("/mnt/we\"ird");
  const std::string text = FormatPrometheus({Sample("/mnt/a"), b});
  std::istringstream in(text);
  std::string line, family;
  std::map<std::string, int> help, type;
  std::vector<std::string> order;
  const std::regex sample(R"(^([a-z_]+)\{([a-z_]+="([^"\\]|\\.)*",?)+\} -?[0-9.e+]+$)");
  int samples = 0;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
      ++help[family];
      order.push_back(family);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      ++type[line.substr(7, line.find(' ', 7) - 7)];
      continue;
    }
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, sample)) << line;
    EXPECT_EQ(m[1].str(), family) << "a sample away from its family: " << line;
    ++samples;
  }
  for (const auto& [name, n] : help) {
    EXPECT_EQ(n, 1) << name;
    EXPECT_EQ(type[name], 1) << name;
  }
  EXPECT_GT(samples, 2 * 20);
  EXPECT_NE(text.find(",op=\"WRITE\"} 30\n"), std::string::npos) << text;
  EXPECT_NE(text.find("mountpoint=\"/mnt/we\\\"ird\""), std::string::npos);
  EXPECT_NE(text.find("floatmount_connection_in_flight{mountpoint=\"/mnt/a\",server=\"nfs.example.com\","
                      "address=\"127.0.0.3:2049\",connection=\"1\"} 4"),
            std::string::npos);
}

TEST(StatusTest, RunFilesEscapeTheMountPoint) {
  setenv("FLOATMOUNT_RUN_DIR", "/tmp/x", 1);
  EXPECT_EQ(RunFileFor("/mnt/data", ".sock"), "/tmp/x/mnt-data.sock");
  EXPECT_EQ(RunFileFor("/mnt/a b", ".pid"), "/tmp/x/mnt-a\\x20b.pid");
  EXPECT_EQ(RunFileFor("/", ".sock"), "/tmp/x/-.sock");
  unsetenv("FLOATMOUNT_RUN_DIR");
}

std::string Ask(const std::string& path, const std::string& request) {
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "connect failed";
  }
  (void)!write(fd, request.data(), request.size());
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) reply.append(buf, size_t(n));
  close(fd);
  return reply;
}

TEST(StatusServerTest, AnswersWithTheStatusAndItsThroughput) {
  char dir[] = "/tmp/floatmount-status-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/m.sock";
  std::atomic<uint64_t> read{0};
  std::string error;
  auto server = StatusServer::Start(
      path,
      [&] {
        MountStatus s = Sample("/mnt/data");
        s.cache.read_from_cache = read.fetch_add(100 << 20);  // 100 MiB per look
        return s;
      },
      &error);
  ASSERT_NE(server, nullptr) << error;
  usleep(1300 * 1000);  // two samples, a second apart
  auto s = ParseStatusJson(Ask(path, "status\n"));
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->mountpoint, "/mnt/data");
  EXPECT_GT(s->throughput.read_bytes_per_s, 50.0 * (1 << 20));
  EXPECT_EQ(Ask(path, "bogus\n"), "error: unknown request 'bogus'\n");
  server.reset();
  EXPECT_NE(access(path.c_str(), F_OK), 0);  // removed
  rmdir(dir);
}

}  // namespace
}  // namespace floatmount::agent

namespace floatmount::agent {
namespace {

TEST(StatusTest, PrometheusCountersKeepEveryDigit) {
  MountStatus s;
  s.mountpoint = "/mnt/a";
  s.server = "h";
  s.cache.written_back = 334574123457;  // 311.6 GiB: six digits would print 3.34574e+11
  const std::string text = FormatPrometheus({s});
  EXPECT_NE(text.find("floatmount_written_back_bytes_total{mountpoint=\"/mnt/a\",server=\"h\"} "
                      "334574123457\n"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace floatmount::agent
