// DnsServer: a real DNS server (dnsmasq) for one test, on loopback, that
// answers only from the records the test gives: round-robin names for the
// resolver and placement tests (DESIGN.md, "Round-robin DNS comes from
// dnsmasq on a loopback port").
//
// Each instance owns a fresh directory /tmp/floatmount-dns-XXXXXX with
//   hosts         the records, one "ADDRESS NAME" line each (dnsmasq
//                 --addn-hosts): several lines for one name give several A
//                 (IPv4) or AAAA (IPv6) records, all in one answer
//   dnsmasq.log   dnsmasq's log with every query (--log-queries)
//   dnsmasq.out   its stdout/stderr
// dnsmasq listens on options.listen_address:<free port>, UDP and TCP
// (--bind-interfaces), reads no /etc/resolv.conf, /etc/hosts or config
// file, forwards nothing (--local=/#/: a name it does not have is
// NXDOMAIN, not REFUSED), serves every answer with TTL options.ttl, writes
// no pid file and runs no DHCP. As root it keeps running as root
// (--user=root) so that it can reread the hosts file after SetAddresses.
//
// The server runs as a child process in the foreground, so the pid is exact
// and it is reaped with waitpid; the child has PR_SET_PDEATHSIG SIGKILL, so
// it dies with the test process. PDEATHSIG follows the thread that forked:
// call Start() from a thread that outlives the server. Needs dnsmasq
// (Debian dnsmasq-base), not root.
//
// Use from a gtest:
//   const std::string missing = DnsServer::MissingPrerequisite();
//   FLOATMOUNT_REQUIRE(missing.empty(), missing);
//   DnsServer dns({.names = {{"nfs.test", {"127.0.0.2", "127.0.0.3"}}}, .ttl = 5});
//   ASSERT_TRUE(dns.Start()) << dns.error();
//   ... resolve "nfs.test" with DNS server dns.address():dns.port()
//   ASSERT_TRUE(dns.SetAddresses("nfs.test", {"127.0.0.4"})) << dns.error();
//
// Also here: DnsQuery, a minimal one-question DNS client over UDP. The
// harness uses it to wait for readiness and to confirm a reload; tests of
// the harness use it to check answers without the product's resolver.
//
// Thread-safety: not thread-safe; use one instance from one thread, except
// the const accessors. DnsQuery is safe from any thread.
// Invariant: child_ is running() exactly while a child we started is unreaped.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tests/harness/child_process.h"

namespace floatmount::testing {

struct DnsRecord {
  std::string address;  // numeric, inet_ntop form
  uint32_t ttl = 0;
};

struct DnsReply {
  int rcode = -1;                  // 0 NOERROR, 3 NXDOMAIN, 5 REFUSED, ...
  std::vector<DnsRecord> records;  // the answer's A (or AAAA) records, in order
};

// Asks server:port (numeric) over UDP for the A records of `name`, or the
// AAAA records if `ipv6`, and waits up to `timeout` for the reply. Returns
// true with *reply set if a matching reply came (whatever its rcode);
// false with *error set on a timeout, a refused port or a malformed reply.
bool DnsQuery(const std::string& server, uint16_t port, const std::string& name, bool ipv6,
              std::chrono::milliseconds timeout, DnsReply* reply, std::string* error);

class DnsServer {
 public:
  struct Options {
    // name -> its addresses (IPv4 and/or IPv6); all are returned in one
    // answer, A and AAAA as asked.
    std::map<std::string, std::vector<std::string>> names;
    // TTL of every answer (--local-ttl), in seconds.
    int ttl = 5;
    // Where dnsmasq listens (an address of lo): "127.0.0.1" or "::1".
    std::string listen_address = "127.0.0.1";
    // Bounds for Start() and SetAddresses() readiness and for Stop()'s
    // SIGTERM phase.
    std::chrono::milliseconds start_timeout{10000};
    std::chrono::milliseconds stop_timeout{5000};
  };

  DnsServer();
  explicit DnsServer(Options options);
  ~DnsServer();  // Stop(), then removes the directory unless KeepTestDirs()
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // Empty if this machine can run dnsmasq, else why not. Pass it to
  // FLOATMOUNT_REQUIRE.
  static std::string MissingPrerequisite();
  // Full path of dnsmasq (PATH, then /usr/sbin), or empty if missing.
  static std::string FindBinary();

  // Creates the directory and hosts file, picks a free port, starts dnsmasq
  // and waits until it has logged its start and answers a query (retrying
  // with another port if the port was taken meanwhile). On failure returns
  // false; error() then includes the tail of dnsmasq's log and output.
  bool Start();
  // SIGTERM, SIGKILL after options.stop_timeout, then reaps the child.
  // Returns false if SIGKILL was needed. No-op if not running.
  bool Stop();
  // SIGKILL now and reap. No-op if not running.
  void Kill();

  // Replaces the records of `name` with `addresses` (empty: the name goes
  // away, NXDOMAIN), rewrites the hosts file and, if running, sends dnsmasq
  // SIGHUP (it rereads the file) and waits until it answers the new set for
  // A and AAAA. Returns false with error() on a bad address or a timeout.
  bool SetAddresses(const std::string& name, std::vector<std::string> addresses);

  bool running() const { return child_.running(); }
  pid_t pid() const { return child_.pid(); }
  const std::string& error() const { return error_; }
  const std::string& address() const { return options_.listen_address; }
  uint16_t port() const { return port_; }
  // "127.0.0.1:PORT" or "[::1]:PORT": the form of the dns_server option.
  std::string server_spec() const;
  const std::string& dir() const { return dir_; }
  std::string hosts_path() const { return dir_ + "/hosts"; }
  std::string log_path() const { return dir_ + "/dnsmasq.log"; }

  // The last `lines` lines of the log and of dnsmasq.out, for messages.
  std::string LogTail(int lines = 25) const;

 private:
  bool MakeDirectory();
  bool WriteHosts();
  bool LaunchAndWait(bool* port_in_use);
  // True once dnsmasq answers A and AAAA for `name` with exactly the
  // configured set (NXDOMAIN or no record if the set is empty).
  bool Serves(const std::string& name, std::string* last_error) const;
  bool ReapIfExited();
  bool Fail(const std::string& what);

  Options options_;    // names change with SetAddresses; the rest is constant
  std::string dir_;    // empty until the first Start()
  uint16_t port_ = 0;  // 0 until Start()
  ChildProcess child_;
  std::string error_;
};

}  // namespace floatmount::testing
