// The server name -> the set of its addresses (DESIGN.md, agent/:
// "Resolver"). A floating-IP NFS service publishes one name with several A
// and/or AAAA records; the agent spreads its connections over all of them
// and follows the set as it changes. Three parts:
//
//   Resolver        the interface: one lookup, all addresses with their TTLs.
//                   Tests use a fake; the agent uses AresResolver.
//   AresResolver    the lookup over c-ares (ares_getaddrinfo, AF_UNSPEC), on
//                   the system's resolvers (/etc/resolv.conf, and /etc/hosts
//                   as the system orders them) or on one DNS server given by
//                   the mount option dns_server=HOST:PORT (then DNS only).
//   ResolverLoop    a thread that looks the name up again when the shortest
//                   TTL runs out (within [5 s, 300 s]) or at once when the
//                   engine reports a failing address (Nudge), and calls back
//                   when the set of addresses changes.
//
// Addresses are numeric strings as nfs::Endpoint takes them (inet_ntop
// form, no brackets, no scope id). A result is sorted and free of
// duplicates: IPv4 first, then IPv6, each in numeric (network byte) order.
// A fixed order lets two lookups be compared as sets and makes logs and
// `floatmount status` stable; IPv4 first because a dual-stack floating-IP
// service is in practice reached over IPv4. The order is NOT a preference:
// placement must spread connections itself (if every node used the first
// address, they would all pile onto one server).
//
// Errors (nfs::Status kinds; the agent maps both lookup kinds to exit code 3,
// "unreachable", with ExitCodeFor in engine_setup.h):
//   kTransport        the lookup failed: the name does not exist or has no
//                     A/AAAA record ("no address for NAME (DNS: ...)"), or no
//                     DNS server answered in time / a server refused or
//                     failed ("DNS lookup of NAME failed: ..."). The message
//                     says which, and names dns_server when one was given.
//   kInvalidArgument  an empty or malformed name, or an AresResolver whose
//                     dns_server string is not valid (see ParseDnsServer).
//   kShutdown         ResolveStoppable gave up because stop was requested.
//   kInternal         c-ares could not be initialised.
//
// Threads: Resolver implementations must allow Resolve from any thread and
// from several at once (AresResolver makes one c-ares channel per call, so
// it shares nothing between calls). ResolverLoop runs one thread, named
// "fm-resolver", that calls the resolver and the change callback; its
// public methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "nfs/status.h"

namespace floatmount::agent {

struct ResolvedAddress {
  std::string address;       // numeric IPv4 or IPv6, as nfs::Endpoint::address
  std::chrono::seconds ttl;  // how long the answer may be used; 0 = "do not cache"
  bool operator==(const ResolvedAddress&) const = default;
};

// The TTL given to a numeric address (it never changes): a year, large
// enough to mean "never" yet safe to add to a time point.
inline constexpr std::chrono::seconds kNumericAddressTtl = std::chrono::hours(24 * 365);

// The default for the whole of one AresResolver lookup (all tries, A and
// AAAA together).
inline constexpr std::chrono::milliseconds kDefaultDnsTimeout{5000};

// If `host` is a numeric IPv4 address or an IPv6 address (bare or in
// brackets), that address in canonical form with kNumericAddressTtl;
// otherwise nullopt. Resolvers answer such a host without DNS.
std::optional<ResolvedAddress> NumericAddress(const std::string& host);

// Sorts `addresses` (IPv4 first, then IPv6, numeric order) and merges
// duplicates, keeping the shorter TTL. Entries that are not numeric
// addresses are dropped.
std::vector<ResolvedAddress> SortAndMerge(std::vector<ResolvedAddress> addresses);

// Checks the value of the dns_server option: "IPV4", "IPV4:PORT", "[IPV6]"
// or "[IPV6]:PORT" (a bare IPv6 address is refused: "fd00::1:53" would be
// ambiguous). The port defaults to 53 and must be 1..65535. The server must be a numeric address
// (a name would need DNS to find DNS). On success sets *normalized to
// "IPV4:PORT" or "[IPV6]:PORT" (the form ares_set_servers_ports_csv takes)
// and returns true; otherwise sets *error to a one-line reason that names
// the value and returns false. Either pointer may be null.
bool ParseDnsServer(const std::string& value, std::string* normalized, std::string* error);

class Resolver {
 public:
  virtual ~Resolver() = default;

  // Every A and AAAA address of `host`, sorted and de-duplicated as
  // described above, never empty on success. A numeric `host` resolves to
  // itself (NumericAddress) without DNS.
  virtual nfs::Result<std::vector<ResolvedAddress>> Resolve(const std::string& host) = 0;

  // As Resolve, but returns Status::Shutdown soon after `stop` is requested
  // (ResolverLoop uses it so that its destructor does not wait out a DNS
  // timeout). The default ignores `stop`: right for resolvers that answer
  // at once, such as test fakes.
  virtual nfs::Result<std::vector<ResolvedAddress>> ResolveStoppable(const std::string& host,
                                                                     std::stop_token stop) {
    return Resolve(host);
  }
};

struct AresResolverOptions {
  // The dns_server option (see ParseDnsServer); empty = the system's
  // resolvers. When set, only DNS is asked (c-ares lookups "b": /etc/hosts
  // is not read), only that server, and its answer is final.
  std::string dns_server;
  // Bound on one Resolve: all servers, all tries, A and AAAA. c-ares tries
  // each server up to 3 times within it (this replaces resolv.conf's
  // "options timeout: attempts:").
  std::chrono::milliseconds timeout = kDefaultDnsTimeout;
};

// Resolver over c-ares. Each Resolve makes its own channel (so a changed
// /etc/resolv.conf is seen by the next lookup), runs ares_getaddrinfo and
// waits for it with poll(), then destroys the channel. ares_library_init
// runs once per process, on first use (thread-safe).
class AresResolver : public Resolver {
 public:
  // An invalid options.dns_server makes every Resolve fail with
  // kInvalidArgument; check the option with ParseDnsServer beforehand.
  explicit AresResolver(AresResolverOptions options);
  AresResolver();  // the system's resolvers, kDefaultDnsTimeout

  nfs::Result<std::vector<ResolvedAddress>> Resolve(const std::string& host) override;
  nfs::Result<std::vector<ResolvedAddress>> ResolveStoppable(const std::string& host,
                                                             std::stop_token stop) override;

  // "127.0.0.1:5353", or empty for the system's resolvers.
  const std::string& dns_server() const { return dns_server_; }

 private:
  // All constant after construction.
  std::chrono::milliseconds timeout_;
  std::string dns_server_;        // normalized; empty = system resolvers
  std::string dns_server_error_;  // non-empty if options.dns_server was invalid
};

// Interval rules of ResolverLoop (named so logs and docs can cite them):
// look up again when the shortest TTL of the current set runs out, but not
// more often than every kMinResolveInterval (a TTL of 0 or 1 s must not
// turn into a DNS storm from every node) and at least every
// kMaxResolveInterval (a long TTL must not hide a changed set for hours).
inline constexpr std::chrono::seconds kMinResolveInterval{5};
inline constexpr std::chrono::seconds kMaxResolveInterval{300};
// After a failed lookup the next try comes after kMinResolveInterval,
// doubling with each further failure up to kMaxResolveInterval.
// A Nudge starts a lookup at once, but at most one per kNudgeMinGap: a
// dead address makes every connection to it fail at about the same time.
inline constexpr std::chrono::seconds kNudgeMinGap{1};

struct ResolverLoopOptions {
  std::chrono::milliseconds min_interval = kMinResolveInterval;
  std::chrono::milliseconds max_interval = kMaxResolveInterval;
  std::chrono::milliseconds nudge_min_gap = kNudgeMinGap;
};

class ResolverLoop {
 public:
  // Called on the "fm-resolver" thread, with no lock of the loop held, each
  // time a lookup gives a set of addresses different from the last one
  // (addresses compared, TTLs not). It may call Nudge() and Current(); it
  // must not destroy the loop. It should return soon (the next lookup
  // waits for it).
  using Callback = std::function<void(const std::vector<ResolvedAddress>&)>;

  // Starts the thread. `initial` is the set the caller already uses (the
  // lookup made at mount time); the callback fires only for sets that differ
  // from it. If `initial` is empty, the first lookup runs at once.
  ResolverLoop(std::shared_ptr<Resolver> resolver, std::string host,
               std::vector<ResolvedAddress> initial, Callback on_change,
               ResolverLoopOptions options = {});
  // Stops and joins the thread. Prompt: it interrupts the wait and a lookup
  // under way (ResolveStoppable), and waits for a running callback.
  ~ResolverLoop();
  ResolverLoop(const ResolverLoop&) = delete;
  ResolverLoop& operator=(const ResolverLoop&) = delete;

  // Asks for a lookup now (subject to nudge_min_gap): the engine calls it
  // when connecting to an address fails. Cheap, never blocks on DNS; any
  // thread. Nudges made during a lookup are merged into one next lookup.
  void Nudge();

  // The last good set (the initial one until a lookup succeeds).
  std::vector<ResolvedAddress> Current() const;

  // Lookups finished so far, successful or not (for tests and status).
  uint64_t lookups() const;

  // The wait before the next lookup after a successful one: the shortest
  // TTL of `addresses`, clamped to [min_interval, max_interval].
  static std::chrono::milliseconds IntervalFor(const std::vector<ResolvedAddress>& addresses,
                                               const ResolverLoopOptions& options);

 private:
  void Run(std::stop_token stop);

  // Constant after construction.
  const std::shared_ptr<Resolver> resolver_;
  const std::string host_;
  const Callback on_change_;
  const ResolverLoopOptions options_;

  mutable std::mutex mu_;
  std::condition_variable_any cv_;        // Nudge and stop wake the thread
  std::vector<ResolvedAddress> current_;  // GUARDED_BY(mu_): last good set
  bool nudged_ = false;                   // GUARDED_BY(mu_)
  uint64_t lookups_ = 0;                  // GUARDED_BY(mu_)

  std::jthread thread_;  // last member: started after the fields above exist
};

}  // namespace floatmount::agent
