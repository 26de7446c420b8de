#include "agent/dns/resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>

namespace floatmount::agent {
namespace {

using Clock = std::chrono::steady_clock;

// c-ares tries per server within one lookup. Its timeout doubles per round
// (T, 2T, 4T for one server), so with T = timeout / kTriesShare the third
// try is still under way when our own deadline ends the lookup.
constexpr int kAresTries = 3;
constexpr int kTriesShare = 4;
constexpr std::chrono::milliseconds kMinTryTimeout{100};

// Which address family and bytes a numeric address is; the sort key.
struct BinaryAddress {
  int family = AF_UNSPEC;
  std::array<uint8_t, 16> bytes{};
  size_t size = 0;

  bool operator<(const BinaryAddress& other) const {
    if (family != other.family) return family == AF_INET;  // IPv4 first
    return std::memcmp(bytes.data(), other.bytes.data(), size) < 0;
  }
  bool operator==(const BinaryAddress& other) const {
    return family == other.family && std::memcmp(bytes.data(), other.bytes.data(), size) == 0;
  }
  std::string ToString() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (inet_ntop(family, bytes.data(), buf, sizeof(buf)) == nullptr) return "";
    return buf;
  }
};

std::optional<BinaryAddress> ParseBinary(const std::string& text) {
  BinaryAddress a;
  if (inet_pton(AF_INET, text.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
    a.size = 4;
    return a;
  }
  if (inet_pton(AF_INET6, text.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
    a.size = 16;
    return a;
  }
  return std::nullopt;
}

// ares_library_init once per process; its result for every caller.
int AresLibraryInit() {
  static const int rc = ares_library_init(ARES_LIB_INIT_ALL);
  return rc;
}

// What the ares_getaddrinfo callback leaves for the waiting thread. Lives on
// the stack of ResolveStoppable, declared before the channel, so that it
// outlives the callback run by ares_cancel/ares_destroy.
struct Lookup {
  bool done = false;
  int status = ARES_SUCCESS;
  std::vector<ResolvedAddress> addresses;
};

void OnAddrInfo(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
  auto* lookup = static_cast<Lookup*>(arg);
  lookup->done = true;
  lookup->status = status;
  if (result == nullptr) return;
  // An answer reached through CNAMEs lasts no longer than the shortest link.
  int cname_ttl = INT_MAX;
  for (const ares_addrinfo_cname* c = result->cnames; c != nullptr; c = c->next) {
    cname_ttl = std::min(cname_ttl, c->ttl);
  }
  for (const ares_addrinfo_node* n = result->nodes; n != nullptr; n = n->ai_next) {
    const void* raw = nullptr;
    if (n->ai_family == AF_INET && n->ai_addr != nullptr) {
      raw = &reinterpret_cast<const sockaddr_in*>(n->ai_addr)->sin_addr;
    } else if (n->ai_family == AF_INET6 && n->ai_addr != nullptr) {
      raw = &reinterpret_cast<const sockaddr_in6*>(n->ai_addr)->sin6_addr;
    } else {
      continue;
    }
    char buf[INET6_ADDRSTRLEN] = {};
    if (inet_ntop(n->ai_family, raw, buf, sizeof(buf)) == nullptr) continue;
    const int ttl = std::max(0, std::min(n->ai_ttl, cname_ttl));
    lookup->addresses.push_back({buf, std::chrono::seconds(ttl)});
  }
  ares_freeaddrinfo(result);
}

struct ChannelDeleter {
  void operator()(ares_channel channel) const { ares_destroy(channel); }
};
using Channel = std::unique_ptr<std::remove_pointer_t<ares_channel>, ChannelDeleter>;

// An eventfd that a std::stop_callback writes to, so poll() wakes on stop.
class WakeFd {
 public:
  WakeFd() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~WakeFd() {
    if (fd_ >= 0) close(fd_);
  }
  WakeFd(const WakeFd&) = delete;
  WakeFd& operator=(const WakeFd&) = delete;
  int fd() const { return fd_; }
  void Signal() const {
    const uint64_t one = 1;
    if (fd_ >= 0 && write(fd_, &one, sizeof(one)) < 0) {
      // EAGAIN: the counter is already non-zero, poll() will wake anyway.
    }
  }

 private:
  const int fd_;
};

bool IsDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string Join(const std::vector<ResolvedAddress>& addresses) {
  std::string out;
  for (const auto& a : addresses) out += (out.empty() ? "" : ", ") + a.address;
  return out;
}

bool SameAddresses(const std::vector<ResolvedAddress>& a, const std::vector<ResolvedAddress>& b) {
  return std::equal(
      a.begin(), a.end(), b.begin(), b.end(),
      [](const ResolvedAddress& x, const ResolvedAddress& y) { return x.address == y.address; });
}

}  // namespace

std::optional<ResolvedAddress> NumericAddress(const std::string& host) {
  std::optional<BinaryAddress> binary;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    binary = ParseBinary(host.substr(1, host.size() - 2));
    if (binary && binary->family != AF_INET6) return std::nullopt;  // "[1.2.3.4]"
  } else {
    binary = ParseBinary(host);
  }
  if (!binary) return std::nullopt;
  return ResolvedAddress{binary->ToString(), kNumericAddressTtl};
}

std::vector<ResolvedAddress> SortAndMerge(std::vector<ResolvedAddress> addresses) {
  std::vector<std::pair<BinaryAddress, std::chrono::seconds>> keyed;
  keyed.reserve(addresses.size());
  for (const auto& a : addresses) {
    if (auto binary = ParseBinary(a.address)) keyed.emplace_back(*binary, a.ttl);
  }
  std::sort(keyed.begin(), keyed.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<ResolvedAddress> out;
  for (size_t i = 0; i < keyed.size(); ++i) {
    if (i > 0 && keyed[i].first == keyed[i - 1].first) {
      out.back().ttl = std::min(out.back().ttl, keyed[i].second);
      continue;
    }
    out.push_back({keyed[i].first.ToString(), keyed[i].second});
  }
  return out;
}

bool ParseDnsServer(const std::string& value, std::string* normalized, std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error != nullptr) *error = "dns_server '" + value + "': " + why;
    return false;
  };
  const std::string usage = " (use IPV4[:PORT] or [IPV6][:PORT])";
  if (value.empty()) return fail("empty" + usage);

  std::string host, port = "53";
  int family = AF_UNSPEC;
  if (value.front() == '[') {
    const size_t close = value.find(']');
    if (close == std::string::npos) return fail("missing ']'" + usage);
    host = value.substr(1, close - 1);
    const std::string rest = value.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail("expected ':PORT' after ']'" + usage);
      port = rest.substr(1);
    }
    family = AF_INET6;
  } else if (std::count(value.begin(), value.end(), ':') > 1) {
    // A bare IPv6 address: "fd00::1:53" could be meant as [fd00::1]:53.
    return fail("an IPv6 address must be in brackets, as [" + value + "] or [ADDRESS]:PORT");
  } else {
    const size_t colon = value.find(':');
    host = value.substr(0, colon);
    if (colon != std::string::npos) port = value.substr(colon + 1);
    family = AF_INET;
  }

  std::array<uint8_t, 16> bytes{};
  if (inet_pton(family, host.c_str(), bytes.data()) != 1) {
    return fail("'" + host + "' is not a numeric " + (family == AF_INET ? "IPv4" : "IPv6") +
                " address" + usage);
  }
  if (!IsDigits(port) || port.size() > 5 || std::stoi(port) < 1 || std::stoi(port) > 65535) {
    return fail("port '" + port + "' is not a number from 1 to 65535");
  }
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, bytes.data(), buf, sizeof(buf));
  const std::string canonical_port = std::to_string(std::stoi(port));
  if (normalized != nullptr) {
    *normalized = family == AF_INET6 ? "[" + std::string(buf) + "]:" + canonical_port
                                     : std::string(buf) + ":" + canonical_port;
  }
  return true;
}

AresResolver::AresResolver() : AresResolver(AresResolverOptions{}) {}

AresResolver::AresResolver(AresResolverOptions options) : timeout_(options.timeout) {
  if (!options.dns_server.empty()) {
    ParseDnsServer(options.dns_server, &dns_server_, &dns_server_error_);
  }
}

nfs::Result<std::vector<ResolvedAddress>> AresResolver::Resolve(const std::string& host) {
  return ResolveStoppable(host, std::stop_token());
}

nfs::Result<std::vector<ResolvedAddress>> AresResolver::ResolveStoppable(const std::string& host,
                                                                         std::stop_token stop) {
  if (!dns_server_error_.empty()) return nfs::Status::InvalidArgument(dns_server_error_);
  if (host.empty()) return nfs::Status::InvalidArgument("empty server name");
  if (auto numeric = NumericAddress(host)) return std::vector<ResolvedAddress>{*numeric};

  const std::string where =
      dns_server_.empty() ? "the system's resolvers" : "DNS server " + dns_server_;
  if (const int rc = AresLibraryInit(); rc != ARES_SUCCESS) {
    return nfs::Status::Internal(std::string("cannot initialise c-ares: ") + ares_strerror(rc));
  }

  ares_options opts{};
  int optmask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  opts.timeout = static_cast<int>(std::max(kMinTryTimeout, timeout_ / kTriesShare).count());
  opts.tries = kAresTries;
  char dns_only[] = "b";
  if (!dns_server_.empty()) {
    opts.lookups = dns_only;
    optmask |= ARES_OPT_LOOKUPS;
  }

  Lookup lookup;  // before `channel`: ares_destroy may still call OnAddrInfo
  ares_channel raw_channel = nullptr;
  if (const int rc = ares_init_options(&raw_channel, &opts, optmask); rc != ARES_SUCCESS) {
    return nfs::Status::Internal(std::string("cannot initialise c-ares: ") + ares_strerror(rc));
  }
  Channel channel(raw_channel);
  if (!dns_server_.empty()) {
    if (const int rc = ares_set_servers_ports_csv(channel.get(), dns_server_.c_str());
        rc != ARES_SUCCESS) {
      return nfs::Status::InvalidArgument("c-ares does not accept dns_server '" + dns_server_ +
                                          "': " + ares_strerror(rc));
    }
  }

  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;      // A and AAAA
  hints.ai_flags = ARES_AI_NOSORT;  // we sort ourselves; skips RFC 6724 probing
  ares_getaddrinfo(channel.get(), host.c_str(), nullptr, &hints, OnAddrInfo, &lookup);

  WakeFd wake;
  std::stop_callback on_stop(stop, [&wake] { wake.Signal(); });
  const auto deadline = Clock::now() + timeout_;
  bool timed_out = false, stopped = false;
  while (!lookup.done) {
    if (stop.stop_requested()) {
      stopped = true;
      break;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    std::array<ares_socket_t, ARES_GETSOCK_MAXNUM> socks{};
    const int bits = ares_getsock(channel.get(), socks.data(), ARES_GETSOCK_MAXNUM);
    std::array<pollfd, ARES_GETSOCK_MAXNUM + 1> fds{};
    nfds_t count = 0;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      short events = 0;
      if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
      if (events != 0) fds[count++] = {socks[i], events, 0};
    }
    const nfds_t ares_count = count;
    if (wake.fd() >= 0) fds[count++] = {wake.fd(), POLLIN, 0};

    timeval max_tv{static_cast<time_t>(left.count() / 1000000),
                   static_cast<suseconds_t>(left.count() % 1000000)};
    timeval tv_buf{};
    const timeval* tv = ares_timeout(channel.get(), &max_tv, &tv_buf);
    const int wait_ms = static_cast<int>(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000);
    const int rc = poll(fds.data(), count, wait_ms);
    if (rc < 0 && errno != EINTR) {
      return nfs::Status::Internal(std::string("poll during DNS lookup: ") + std::strerror(errno));
    }
    if (rc <= 0) {
      ares_process_fd(channel.get(), ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts only
      continue;
    }
    for (nfds_t i = 0; i < ares_count && !lookup.done; ++i) {
      const short re = fds[i].revents;
      if (re == 0) continue;
      const bool readable = (re & (POLLIN | POLLERR | POLLHUP)) != 0;
      const bool writable = (re & POLLOUT) != 0;
      ares_process_fd(channel.get(), readable ? fds[i].fd : ARES_SOCKET_BAD,
                      writable ? fds[i].fd : ARES_SOCKET_BAD);
    }
  }
  if (!lookup.done) ares_cancel(channel.get());  // runs OnAddrInfo with ARES_ECANCELLED
  if (stopped) return nfs::Status::Shutdown("DNS lookup of '" + host + "' stopped");
  if (timed_out) {
    return nfs::Status::Transport("DNS lookup of '" + host + "' failed: no answer from " + where +
                                  " within " + std::to_string(timeout_.count()) + " ms");
  }

  switch (lookup.status) {
    case ARES_SUCCESS:
      break;
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_ENONAME:
      return nfs::Status::Transport("no address for '" + host + "' (DNS: " +
                                    ares_strerror(lookup.status) + ", asked " + where + ")");
    case ARES_EBADNAME:
      return nfs::Status::InvalidArgument(
          "'" + host + "' is not a valid host name (DNS: " + ares_strerror(lookup.status) + ")");
    default:
      return nfs::Status::Transport("DNS lookup of '" + host + "' failed: " +
                                    ares_strerror(lookup.status) + " (asked " + where + ")");
  }
  std::vector<ResolvedAddress> addresses = SortAndMerge(std::move(lookup.addresses));
  if (addresses.empty()) {
    return nfs::Status::Transport("no address for '" + host +
                                  "' (DNS: no A or AAAA record, asked " + where + ")");
  }
  return addresses;
}

ResolverLoop::ResolverLoop(std::shared_ptr<Resolver> resolver, std::string host,
                           std::vector<ResolvedAddress> initial, Callback on_change,
                           ResolverLoopOptions options)
    : resolver_(std::move(resolver)),
      host_(std::move(host)),
      on_change_(std::move(on_change)),
      options_(options),
      current_(SortAndMerge(std::move(initial))),
      thread_([this](std::stop_token stop) { Run(stop); }) {}

ResolverLoop::~ResolverLoop() {
  thread_.request_stop();  // wakes the wait (cv_) and a lookup (ResolveStoppable)
  if (thread_.joinable()) thread_.join();
}

void ResolverLoop::Nudge() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    nudged_ = true;
  }
  cv_.notify_all();
}

std::vector<ResolvedAddress> ResolverLoop::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

uint64_t ResolverLoop::lookups() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lookups_;
}

std::chrono::milliseconds ResolverLoop::IntervalFor(const std::vector<ResolvedAddress>& addresses,
                                                    const ResolverLoopOptions& options) {
  if (addresses.empty()) return options.min_interval;
  std::chrono::seconds shortest = addresses.front().ttl;
  for (const auto& a : addresses) shortest = std::min(shortest, a.ttl);
  const std::chrono::milliseconds wait = shortest;
  return std::min(std::max(wait, options.min_interval),
                  std::max(options.max_interval, options.min_interval));
}

void ResolverLoop::Run(std::stop_token stop) {
  pthread_setname_np(pthread_self(), "fm-resolver");
  auto next = Clock::now();  // when the next periodic lookup is due
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!current_.empty()) next += IntervalFor(current_, options_);
  }
  // The end of the last lookup, for nudge_min_gap; none yet.
  auto last_end = Clock::now() - options_.nudge_min_gap;
  auto failure_wait = options_.min_interval;  // after a failure; doubles

  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        if (stop.stop_requested()) return;
        auto due = next;
        if (nudged_) due = std::min(due, last_end + options_.nudge_min_gap);
        if (Clock::now() >= due) break;
        const bool was_nudged = nudged_;
        // Returns early on stop or when a Nudge arrives; then `due` is
        // recomputed.
        cv_.wait_until(lock, stop, due, [&] { return nudged_ != was_nudged; });
      }
      nudged_ = false;  // this lookup answers every nudge so far
    }

    auto result = resolver_->ResolveStoppable(host_, stop);
    if (stop.stop_requested()) return;
    last_end = Clock::now();

    if (result.ok() && !result->empty()) {
      std::vector<ResolvedAddress> addresses = SortAndMerge(std::move(result.value()));
      bool changed;
      {
        std::lock_guard<std::mutex> lock(mu_);
        changed = !SameAddresses(addresses, current_);
        current_ = addresses;  // fresh TTLs even when the set is the same
      }
      failure_wait = options_.min_interval;
      next = last_end + IntervalFor(addresses, options_);
      if (changed) {
        spdlog::info("server name {} now resolves to {}", host_, Join(addresses));
        if (on_change_) on_change_(addresses);
      }
    } else {
      const std::string why = result.ok() ? "an empty answer" : result.status().message();
      const auto known = Current();
      next = last_end + failure_wait;
      spdlog::warn(
          "cannot resolve server name {}: {}; keeping {} known address(es) ({}), next try "
          "in {} ms",
          host_, why, known.size(), Join(known), failure_wait.count());
      failure_wait = std::min(failure_wait * 2, options_.max_interval);
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++lookups_;
  }
}

}  // namespace floatmount::agent
