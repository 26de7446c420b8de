#include "tests/harness/dns_server.h"

#include "tests/harness/child_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "tests/harness/integration_env.h"
#include "tests/harness/net_util.h"

namespace floatmount::testing {
namespace {

constexpr int kStartAttempts = 5;
constexpr auto kPollInterval = std::chrono::milliseconds(20);
constexpr auto kQueryTimeout = std::chrono::milliseconds(500);
constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeAaaa = 28;
constexpr uint16_t kClassIn = 1;
// A name dnsmasq does not have: the readiness probe expects NXDOMAIN.
constexpr const char* kProbeName = "floatmount-probe.invalid";

bool IsExecutable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

std::string LastLines(const std::string& text, int count) {
  std::deque<std::string> kept;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    kept.push_back(line);
    if (static_cast<int>(kept.size()) > count) kept.pop_front();
  }
  std::string out;
  for (const std::string& line : kept) out += line + "\n";
  return out;
}

// The canonical text of a numeric address and whether it is IPv6; false if
// `text` is not one.
bool Canonical(const std::string& text, std::string* out, bool* ipv6) {
  std::array<uint8_t, 16> bytes{};
  char buf[INET6_ADDRSTRLEN] = {};
  for (int family : {AF_INET, AF_INET6}) {
    if (inet_pton(family, text.c_str(), bytes.data()) == 1 &&
        inet_ntop(family, bytes.data(), buf, sizeof(buf)) != nullptr) {
      *out = buf;
      *ipv6 = family == AF_INET6;
      return true;
    }
  }
  return false;
}

void PutU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xff));
}

// Reads a big-endian integer of `size` bytes at *pos; false past the end.
bool GetUint(const uint8_t* data, size_t len, size_t* pos, size_t size, uint32_t* v) {
  if (*pos + size > len) return false;
  *v = 0;
  for (size_t i = 0; i < size; ++i) *v = (*v << 8) | data[*pos + i];
  *pos += size;
  return true;
}

// Steps over a (possibly compressed) domain name at *pos.
bool SkipName(const uint8_t* data, size_t len, size_t* pos) {
  while (*pos < len) {
    const uint8_t label = data[*pos];
    if ((label & 0xc0) == 0xc0) {  // a pointer ends the name
      *pos += 2;
      return *pos <= len;
    }
    *pos += 1 + label;
    if (label == 0) return *pos <= len;
  }
  return false;
}

}  // namespace

bool DnsQuery(const std::string& server, uint16_t port, const std::string& name, bool ipv6,
              std::chrono::milliseconds timeout, DnsReply* reply, std::string* error) {
  Endpoint to;
  if (!ResolveEndpoint(server, port, &to, error)) return false;

  // Header: id, flags (RD), QDCOUNT 1, AN/NS/ARCOUNT 0; then the question.
  static thread_local std::mt19937 rng(std::random_device{}());
  const uint16_t id = static_cast<uint16_t>(rng());
  const uint16_t qtype = ipv6 ? kTypeAaaa : kTypeA;
  std::string query;
  for (uint16_t v : {id, uint16_t{0x0100}, uint16_t{1}, uint16_t{0}, uint16_t{0}, uint16_t{0}}) {
    PutU16(&query, v);
  }
  std::istringstream labels(name);
  for (std::string label; std::getline(labels, label, '.');) {
    if (label.empty()) continue;
    if (label.size() > 63) {
      *error = "DNS label too long in '" + name + "'";
      return false;
    }
    query.push_back(static_cast<char>(label.size()));
    query += label;
  }
  query.push_back('\0');
  PutU16(&query, qtype);
  PutU16(&query, kClassIn);

  const int fd = socket(to.family(), SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  // Connected, so an ICMP port unreachable comes back as ECONNREFUSED.
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to.addr), to.len) != 0 ||
      send(fd, query.data(), query.size(), 0) != static_cast<ssize_t>(query.size())) {
    *error = std::string("send to DNS server: ") + std::strerror(errno);
    close(fd);
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<uint8_t, 4096> buf{};
  for (;;) {
    const int ready = WaitFd(fd, POLLIN, -1, MillisUntil(deadline));
    if (ready != 1) {
      *error = "no DNS reply from " + server + ":" + std::to_string(port) + " within " +
               std::to_string(timeout.count()) + " ms";
      close(fd);
      return false;
    }
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      *error = std::string("DNS reply: ") + std::strerror(errno);
      close(fd);
      return false;
    }
    const size_t len = static_cast<size_t>(n);
    size_t pos = 0;
    uint32_t rid, flags, qd, an;
    if (!GetUint(buf.data(), len, &pos, 2, &rid) || rid != id) continue;  // not ours
    close(fd);
    if (!GetUint(buf.data(), len, &pos, 2, &flags) || !GetUint(buf.data(), len, &pos, 2, &qd) ||
        !GetUint(buf.data(), len, &pos, 2, &an) || (flags & 0x8000) == 0) {
      *error = "malformed DNS reply";
      return false;
    }
    pos = 12;
    for (uint32_t i = 0; i < qd; ++i) {
      if (!SkipName(buf.data(), len, &pos) || (pos += 4) > len) {
        *error = "malformed DNS reply (question)";
        return false;
      }
    }
    reply->rcode = static_cast<int>(flags & 0xf);
    reply->records.clear();
    for (uint32_t i = 0; i < an; ++i) {
      uint32_t type, klass, ttl, rdlen;
      if (!SkipName(buf.data(), len, &pos) || !GetUint(buf.data(), len, &pos, 2, &type) ||
          !GetUint(buf.data(), len, &pos, 2, &klass) || !GetUint(buf.data(), len, &pos, 4, &ttl) ||
          !GetUint(buf.data(), len, &pos, 2, &rdlen) || pos + rdlen > len) {
        *error = "malformed DNS reply (answer)";
        return false;
      }
      const size_t want = ipv6 ? 16 : 4;
      if (type == qtype && klass == kClassIn && rdlen == want) {
        char text[INET6_ADDRSTRLEN] = {};
        inet_ntop(ipv6 ? AF_INET6 : AF_INET, buf.data() + pos, text, sizeof(text));
        reply->records.push_back({text, ttl});
      }
      pos += rdlen;
    }
    return true;
  }
}

DnsServer::DnsServer() : DnsServer(Options{}) {}

DnsServer::DnsServer(Options options) : options_(std::move(options)) {}

DnsServer::~DnsServer() {
  Stop();
  if (dir_.empty()) return;
  if (KeepTestDirs()) {
    std::fprintf(stderr, "FLOATMOUNT_KEEP_TEST_DIRS: kept %s\n", dir_.c_str());
    return;
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string DnsServer::FindBinary() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && IsExecutable(dir + "/dnsmasq")) return dir + "/dnsmasq";
  }
  return IsExecutable("/usr/sbin/dnsmasq") ? "/usr/sbin/dnsmasq" : "";
}

std::string DnsServer::MissingPrerequisite() {
  if (FindBinary().empty()) {
    return "dnsmasq not found on PATH or in /usr/sbin (apt-get install dnsmasq-base)";
  }
  return "";
}

std::string DnsServer::server_spec() const {
  const bool ipv6 = options_.listen_address.find(':') != std::string::npos;
  const std::string host = ipv6 ? "[" + options_.listen_address + "]" : options_.listen_address;
  return host + ":" + std::to_string(port_);
}

bool DnsServer::Fail(const std::string& what) {
  error_ = what;
  if (!dir_.empty()) error_ += "\n--- dnsmasq log tail (" + log_path() + ") ---\n" + LogTail();
  return false;
}

bool DnsServer::MakeDirectory() {
  if (!dir_.empty()) return true;
  char tmpl[] = "/tmp/floatmount-dns-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return Fail(std::string("mkdtemp: ") + std::strerror(errno));
  dir_ = tmpl;
  // Readable whatever user dnsmasq ends up as.
  if (chmod(dir_.c_str(), 0755) != 0) {
    return Fail("cannot prepare " + dir_ + ": " + std::strerror(errno));
  }
  return true;
}

bool DnsServer::WriteHosts() {
  std::ostringstream text;
  text << "# Generated by floatmount's test harness (tests/harness/dns_server.cc).\n";
  for (const auto& [name, addresses] : options_.names) {
    if (name.empty() || name.find_first_of(" \t\n#") != std::string::npos) {
      return Fail("DnsServer: bad name '" + name + "'");
    }
    for (const std::string& address : addresses) {
      std::string canonical;
      bool ipv6 = false;
      if (!Canonical(address, &canonical, &ipv6)) {
        return Fail("DnsServer: '" + address + "' (for " + name + ") is not a numeric address");
      }
      text << canonical << " " << name << "\n";
    }
  }
  // Written aside and renamed, so a reload never sees half a file.
  const std::string tmp = hosts_path() + ".tmp";
  std::ofstream out(tmp, std::ios::trunc);
  out << text.str();
  out.close();
  if (!out || chmod(tmp.c_str(), 0644) != 0 || rename(tmp.c_str(), hosts_path().c_str()) != 0) {
    return Fail("cannot write " + hosts_path());
  }
  return true;
}

bool DnsServer::Start() {
  error_.clear();
  if (running()) return Fail("Start(): dnsmasq already running (pid " + std::to_string(child_.pid()) + ")");
  if (!MakeDirectory() || !WriteHosts()) return false;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    std::string pick_error;
    port_ = PickFreePort(options_.listen_address, &pick_error);
    if (port_ == 0) return Fail(pick_error);
    bool port_in_use = false;
    if (LaunchAndWait(&port_in_use)) return true;
    if (!port_in_use) return false;
  }
  return false;
}

bool DnsServer::LaunchAndWait(bool* port_in_use) {
  *port_in_use = false;
  const std::string binary = FindBinary();
  if (binary.empty()) return Fail(MissingPrerequisite());

  // Everything the child touches is prepared before fork(): between fork and
  // exec only async-signal-safe calls are allowed (the test may run threads).
  std::vector<std::string> args = {
      binary,
      "--keep-in-foreground",
      "--conf-file=/dev/null",  // no /etc/dnsmasq.conf
      "--pid-file=",            // no pid file
      "--no-resolv",            // no upstream servers from /etc/resolv.conf
      "--no-hosts",             // not /etc/hosts
      "--local=/#/",            // every domain is local: unknown names get NXDOMAIN
      "--addn-hosts=" + hosts_path(),
      "--local-ttl=" + std::to_string(options_.ttl),
      "--port=" + std::to_string(port_),
      "--listen-address=" + options_.listen_address,
      "--bind-interfaces",  // only that address, so instances on other ports coexist
      "--log-facility=" + log_path(),
      "--log-queries",
  };
  // As root dnsmasq would switch to "nobody"; stay root (ignored otherwise).
  if (geteuid() == 0) args.push_back("--user=root");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);

  const std::string out_path = dir_ + "/dnsmasq.out";
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (null_fd < 0 || out_fd < 0) {
    if (null_fd >= 0) close(null_fd);
    if (out_fd >= 0) close(out_fd);
    return Fail(std::string("open: ") + std::strerror(errno));
  }
  const size_t out_start = FileText(out_path).size();
  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) signal(sig, SIG_DFL);
    dup2(null_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    close_range(3, ~0u, 0);
    execv(argv[0], const_cast<char* const*>(argv.data()));
    _exit(127);
  }
  const int fork_errno = errno;
  close(null_fd);
  close(out_fd);
  if (child < 0) return Fail(std::string("fork: ") + std::strerror(fork_errno));
  child_.Adopt(child);

  // Ours has logged its start (the log names its pid; another server on the
  // port would not) and answers.
  const std::string started = "dnsmasq[" + std::to_string(child) + "]: started";
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  std::string query_error = "not started";
  while (std::chrono::steady_clock::now() < deadline) {
    if (ReapIfExited()) {
      const std::string out = FileText(out_path).substr(out_start);
      *port_in_use = out.find("Address already in use") != std::string::npos;
      return Fail("dnsmasq exited during startup (" + DescribeExit(child_.last_status()) + ") on " +
                  server_spec());
    }
    DnsReply reply;
    if (FileText(log_path()).find(started) != std::string::npos &&
        DnsQuery(options_.listen_address, port_, kProbeName, false, kQueryTimeout, &reply,
                 &query_error) &&
        !ReapIfExited()) {
      return true;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  Kill();
  return Fail("dnsmasq did not answer on " + server_spec() + " within " +
              std::to_string(options_.start_timeout.count()) + " ms (last: " + query_error + ")");
}

bool DnsServer::SetAddresses(const std::string& name, std::vector<std::string> addresses) {
  error_.clear();
  if (addresses.empty()) {
    options_.names.erase(name);
  } else {
    options_.names[name] = std::move(addresses);
  }
  if (dir_.empty()) return true;  // written by Start()
  if (!WriteHosts()) return false;
  if (!running()) return true;
  if (kill(child_.pid(), SIGHUP) != 0) return Fail(std::string("kill(SIGHUP): ") + std::strerror(errno));
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  std::string last_error;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Serves(name, &last_error)) return true;
    if (ReapIfExited()) {
      return Fail("dnsmasq exited after SIGHUP (" + DescribeExit(child_.last_status()) + ")");
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return Fail("dnsmasq did not serve the new records of " + name + " within " +
              std::to_string(options_.start_timeout.count()) + " ms (last: " + last_error + ")");
}

bool DnsServer::Serves(const std::string& name, std::string* last_error) const {
  std::vector<std::string> want[2];  // [0] IPv4, [1] IPv6
  if (auto it = options_.names.find(name); it != options_.names.end()) {
    for (const std::string& address : it->second) {
      std::string canonical;
      bool ipv6 = false;
      if (Canonical(address, &canonical, &ipv6)) want[ipv6 ? 1 : 0].push_back(canonical);
    }
  }
  for (int family = 0; family < 2; ++family) {
    DnsReply reply;
    if (!DnsQuery(options_.listen_address, port_, name, family == 1, kQueryTimeout, &reply,
                  last_error)) {
      return false;
    }
    std::vector<std::string> got;
    for (const DnsRecord& r : reply.records) got.push_back(r.address);
    std::sort(got.begin(), got.end());
    std::sort(want[family].begin(), want[family].end());
    want[family].erase(std::unique(want[family].begin(), want[family].end()), want[family].end());
    if (got != want[family] || (reply.rcode != 0 && reply.rcode != 3)) {
      *last_error = "answer for " + name + " (rcode " + std::to_string(reply.rcode) + ", " +
                    std::to_string(got.size()) + " records) is not the new set yet";
      return false;
    }
  }
  return true;
}

bool DnsServer::ReapIfExited() { return child_.ReapIfExited(); }

bool DnsServer::Stop() { return child_.Stop(options_.stop_timeout); }

void DnsServer::Kill() { child_.Kill(); }

std::string DnsServer::LogTail(int lines) const {
  if (dir_.empty()) return "";
  std::string tail = LastLines(FileText(log_path()), lines);
  const std::string out = LastLines(FileText(dir_ + "/dnsmasq.out"), lines);
  if (!out.empty()) tail += "--- dnsmasq stdout/stderr ---\n" + out;
  return tail;
}

}  // namespace floatmount::testing
