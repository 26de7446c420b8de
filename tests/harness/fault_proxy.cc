#include "tests/harness/fault_proxy.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <random>
#include <vector>

#include "tests/harness/net_util.h"

namespace floatmount::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kChunkSize = 256 * 1024;
constexpr size_t kSmallRead = kChunkSize / 4;  // copied out so the big buffer is reused
constexpr size_t kMaxQueuedBytes = 8 * 1024 * 1024;
constexpr size_t kMaxQueuedChunks = 4096;
constexpr size_t kMaxFreeBuffers = 8;
constexpr uint64_t kMinBurst = 16 * 1024;
constexpr auto kUpstreamConnectTimeout = std::chrono::seconds(10);

// Per-direction token bucket; touched only by that direction's writer.
struct TokenBucket {
  uint64_t rate = 0;
  double tokens = 0;
  Clock::time_point last;

  // How many of `want` bytes may go now at `new_rate`; if 0, *retry_at says
  // when enough tokens will have accumulated.
  size_t Grant(uint64_t new_rate, size_t want, Clock::time_point* retry_at) {
    const auto now = Clock::now();
    const double burst = static_cast<double>(std::max(new_rate / 100, kMinBurst));
    if (new_rate != rate) {
      rate = new_rate;
      tokens = burst;
      last = now;
    }
    tokens = std::min(burst, tokens + std::chrono::duration<double>(now - last).count() * rate);
    last = now;
    const double need = std::min(static_cast<double>(want), burst);
    if (tokens >= need) return std::min(want, static_cast<size_t>(tokens));
    *retry_at = now + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>((need - tokens) / rate));
    return 0;
  }
};

}  // namespace

struct FaultProxy::Shared {
  std::mutex target_mu;
  Endpoint target;  // GUARDED_BY(target_mu)
  std::atomic<int64_t> one_way_us{0};
  std::atomic<int64_t> jitter_us{0};
  std::atomic<uint64_t> seeds{0};  // one per direction, for its jitter
  std::atomic<uint64_t> bandwidth{0};
  std::atomic<bool> black_hole{false};
  std::atomic<bool> paused{false};
  std::atomic<int> active{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> to_target{0};
  std::atomic<uint64_t> from_target{0};
};

// One proxied connection. Owned by FaultProxy::connections_ (and briefly by
// CutAll); its runner thread closes both sockets and sets closed_ last.
class FaultProxy::Connection {
 public:
  Connection(Shared& shared, int client_fd)
      : shared_(shared), client_fd_(client_fd), cancel_fd_(eventfd(0, EFD_CLOEXEC)) {
    shared_.active.fetch_add(1);
  }
  ~Connection() {
    Abort();
    if (runner_.joinable()) runner_.join();
    if (cancel_fd_ >= 0) close(cancel_fd_);
  }

  void Start() { runner_ = std::thread(&Connection::Run, this); }

  // Resets both sides. Asynchronous; see WaitClosed().
  void Abort() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (aborted_) return;
      aborted_ = true;
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t ignored = write(cancel_fd_, &one, sizeof(one));
    Poke();
  }

  void WaitClosed() {
    std::unique_lock<std::mutex> lock(mutex_);
    closed_cv_.wait(lock, [this] { return closed_; });
  }

  bool closed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return closed_;
  }

  // A control changed: wake waiters so they re-check it.
  void Poke() {
    { std::lock_guard<std::mutex> lock(mutex_); }
    up_.cv.notify_all();
    down_.cv.notify_all();
  }

 private:
  struct Chunk {
    std::unique_ptr<char[]> data;
    size_t size = 0;
    bool recyclable = false;  // data is a kChunkSize buffer
    Clock::time_point due;
  };
  // One direction of the delay line. Fields below `cv` are guarded by mutex_.
  struct Direction {
    int src = -1;
    int dst = -1;
    std::atomic<uint64_t>* forwarded = nullptr;
    std::condition_variable cv;  // queue or space changed, or Poke()
    std::deque<Chunk> queue;     // a chunk with size 0 is EOF
    size_t queued_bytes = 0;
    std::vector<std::unique_ptr<char[]>> free_buffers;
    // Used by the direction's reader only.
    std::minstd_rand jitter_rng;
    bool jitter_seeded = false;
  };

  bool Aborted() {
    std::lock_guard<std::mutex> lock(mutex_);
    return aborted_;
  }

  void Run() {
    int upstream = -1;
    {
      // A black-holed address does not answer: connect once it is lifted.
      std::unique_lock<std::mutex> lock(mutex_);
      up_.cv.wait(lock, [this] { return aborted_ || !shared_.black_hole.load(); });
    }
    if (!Aborted()) upstream = ConnectUpstream();
    if (upstream < 0) {
      Abort();
    } else {
      up_.src = down_.dst = client_fd_;
      up_.dst = down_.src = upstream;
      up_.forwarded = &shared_.to_target;
      down_.forwarded = &shared_.from_target;
      std::thread up_writer(&Connection::WriteLoop, this, std::ref(up_));
      std::thread down_reader(&Connection::ReadLoop, this, std::ref(down_));
      std::thread down_writer(&Connection::WriteLoop, this, std::ref(down_));
      ReadLoop(up_);
      up_writer.join();
      down_reader.join();
      down_writer.join();
    }
    const bool reset = Aborted();
    for (int fd : {client_fd_, upstream}) {
      if (fd < 0) continue;
      if (reset) SetAbortOnClose(fd);
      close(fd);
    }
    shared_.active.fetch_sub(1);
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    closed_cv_.notify_all();
  }

  int ConnectUpstream() {
    Endpoint target;
    {
      std::lock_guard<std::mutex> lock(shared_.target_mu);
      target = shared_.target;
    }
    const int fd = socket(target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, reinterpret_cast<const sockaddr*>(&target.addr), target.len) == 0) {
      return fd;
    }
    int so_error = errno;
    if (so_error == EINPROGRESS) {
      const int ms = std::chrono::milliseconds(kUpstreamConnectTimeout).count();
      so_error = ETIMEDOUT;
      if (WaitFd(fd, POLLOUT, cancel_fd_, ms) == 1) {
        socklen_t len = sizeof(so_error);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
      }
    }
    if (so_error == 0) return fd;
    close(fd);
    return -1;
  }

  // recv() into buf; >0 bytes, 0 EOF, -1 error, -2 aborted.
  ssize_t Receive(int fd, char* buf, size_t size) {
    for (;;) {
      const ssize_t n = recv(fd, buf, size, 0);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return -1;
      const int ready = WaitFd(fd, POLLIN, cancel_fd_, -1);
      if (ready == 0) return -2;
      if (ready < 0) return -1;
    }
  }

  // Arrival plus half the added RTT plus up to the jitter. The writer
  // sends in queue order, so a chunk due earlier than the one ahead of it
  // waits for it: a TCP stream stays in order, while two connections'
  // chunks pass each other.
  Clock::time_point Due(Direction& d) {
    auto due = Clock::now() + std::chrono::microseconds(shared_.one_way_us.load());
    if (const int64_t jitter = shared_.jitter_us.load(); jitter > 0) {
      if (!d.jitter_seeded) d.jitter_rng.seed(shared_.seeds.fetch_add(1) + 1);
      d.jitter_seeded = true;
      due += std::chrono::microseconds(
          std::uniform_int_distribution<int64_t>(0, jitter)(d.jitter_rng));
    }
    return due;
  }

  void ReadLoop(Direction& d) {
    std::unique_ptr<char[]> buffer;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        d.cv.wait(lock, [&] {
          return aborted_ || (!shared_.black_hole.load() && d.queued_bytes < kMaxQueuedBytes &&
                              d.queue.size() < kMaxQueuedChunks);
        });
        if (aborted_) return;
        if (!buffer && !d.free_buffers.empty()) {
          buffer = std::move(d.free_buffers.back());
          d.free_buffers.pop_back();
        }
      }
      if (!buffer) buffer = std::make_unique_for_overwrite<char[]>(kChunkSize);
      const ssize_t n = Receive(d.src, buffer.get(), kChunkSize);
      if (n == -2) return;
      if (n < 0) {
        Abort();  // reset by the peer: pass the reset on
        return;
      }
      Chunk chunk;
      chunk.size = static_cast<size_t>(n);
      chunk.due = Due(d);
      if (chunk.size >= kSmallRead) {
        chunk.data = std::move(buffer);
        chunk.recyclable = true;
      } else if (chunk.size > 0) {
        chunk.data = std::make_unique_for_overwrite<char[]>(chunk.size);
        std::memcpy(chunk.data.get(), buffer.get(), chunk.size);
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        d.queued_bytes += chunk.size;
        d.queue.push_back(std::move(chunk));
      }
      d.cv.notify_all();
      if (n == 0) return;
    }
  }

  void WriteLoop(Direction& d) {
    TokenBucket bucket;
    for (;;) {
      Chunk chunk;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
          if (aborted_) return;
          if (d.queue.empty() || shared_.black_hole.load()) {
            d.cv.wait(lock);
          } else if (Clock::now() < d.queue.front().due) {
            d.cv.wait_until(lock, d.queue.front().due);
          } else {
            break;
          }
        }
        chunk = std::move(d.queue.front());
        d.queue.pop_front();
        d.queued_bytes -= chunk.size;
      }
      d.cv.notify_all();
      if (chunk.size == 0) {
        shutdown(d.dst, SHUT_WR);  // pass the EOF on as a half-close
        return;
      }
      if (!SendPaced(d, chunk.data.get(), chunk.size, bucket)) {
        Abort();
        return;
      }
      if (chunk.recyclable) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (d.free_buffers.size() < kMaxFreeBuffers) {
          d.free_buffers.push_back(std::move(chunk.data));
        }
      }
    }
  }

  // Sends all of data, honoring the black hole and the bandwidth cap.
  // Returns false on a socket error or abort.
  bool SendPaced(Direction& d, const char* data, size_t size, TokenBucket& bucket) {
    while (size > 0) {
      if (shared_.black_hole.load()) {
        std::unique_lock<std::mutex> lock(mutex_);
        if (aborted_) return false;
        if (shared_.black_hole.load()) d.cv.wait(lock);
        continue;
      }
      size_t allowed = size;
      const uint64_t rate = shared_.bandwidth.load();
      if (rate > 0) {
        Clock::time_point retry_at;
        allowed = bucket.Grant(rate, size, &retry_at);
        if (allowed == 0) {
          std::unique_lock<std::mutex> lock(mutex_);
          if (aborted_) return false;
          d.cv.wait_until(lock, retry_at);
          continue;
        }
      }
      const ssize_t n = send(d.dst, data, allowed, MSG_NOSIGNAL);
      if (n > 0) {
        data += n;
        size -= static_cast<size_t>(n);
        bucket.tokens -= static_cast<double>(n);
        d.forwarded->fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      } else if (n < 0 && errno == EAGAIN) {
        if (WaitFd(d.dst, POLLOUT, cancel_fd_, -1) != 1) return false;
      } else if (n < 0 && errno != EINTR) {
        return false;
      }
    }
    return true;
  }

  Shared& shared_;
  const int client_fd_;  // closed by Run()
  const int cancel_fd_;  // eventfd, readable once aborted

  mutable std::mutex mutex_;  // guards the fields below and Direction queues
  std::condition_variable closed_cv_;
  bool aborted_ = false;
  bool closed_ = false;
  Direction up_;    // client -> target
  Direction down_;  // target -> client
  std::thread runner_;
};

FaultProxy::FaultProxy(std::string listen_address, uint16_t listen_port, std::string target_host,
                       uint16_t target_port)
    : listen_address_(std::move(listen_address)),
      requested_port_(listen_port),
      target_host_(std::move(target_host)),
      target_port_(target_port),
      shared_(std::make_unique<Shared>()) {}

FaultProxy::~FaultProxy() { Stop(); }

bool FaultProxy::Start() {
  if (!SetTarget(target_host_, target_port_)) return false;
  Endpoint listen_ep;
  if (!ResolveEndpoint(listen_address_, requested_port_, &listen_ep, &error_)) return false;
  listen_fd_ = socket(listen_ep.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (listen_fd_ < 0 || setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(listen_fd_, reinterpret_cast<const sockaddr*>(&listen_ep.addr), listen_ep.len) != 0 ||
      listen(listen_fd_, 512) != 0) {
    error_ = "listen on " + listen_address_ + ":" + std::to_string(requested_port_) + ": " +
             std::strerror(errno);
    return false;
  }
  port_ = LocalPort(listen_fd_);
  stop_fd_ = eventfd(0, EFD_CLOEXEC);
  accept_thread_ = std::thread(&FaultProxy::AcceptLoop, this);
  return true;
}

void FaultProxy::AcceptLoop() {
  for (;;) {
    if (WaitFd(listen_fd_, POLLIN, stop_fd_, -1) != 1) return;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      // Out of fds: back off instead of spinning on a readable listener.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        WaitFd(stop_fd_, POLLIN, -1, 10);
      }
      continue;
    }
    if (shared_->paused.load()) {
      SetAbortOnClose(fd);
      close(fd);
      shared_->refused.fetch_add(1);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    shared_->accepted.fetch_add(1);
    Reap();
    auto connection = std::make_shared<Connection>(*shared_, fd);
    connection->Start();
    std::lock_guard<std::mutex> lock(mutex_);
    connections_.push_back(std::move(connection));
  }
}

void FaultProxy::Reap() {
  std::list<std::shared_ptr<Connection>> closed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      auto next = std::next(it);
      if ((*it)->closed()) closed.splice(closed.end(), connections_, it);
      it = next;
    }
  }
  // Destroyed here, outside mutex_: each destructor joins a finished runner.
}

void FaultProxy::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (accept_thread_.joinable()) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t ignored = write(stop_fd_, &one, sizeof(one));
    accept_thread_.join();
  }
  std::list<std::shared_ptr<Connection>> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    all.swap(connections_);
  }
  for (auto& connection : all) connection->Abort();
  all.clear();  // joins every runner
  if (listen_fd_ >= 0) close(listen_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
  listen_fd_ = stop_fd_ = -1;
}

void FaultProxy::PokeAll() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& connection : connections_) connection->Poke();
}

void FaultProxy::SetLatency(std::chrono::microseconds added_rtt) {
  shared_->one_way_us.store(added_rtt.count() / 2);
}

void FaultProxy::SetJitter(std::chrono::microseconds max) {
  shared_->jitter_us.store(max.count());
}

std::chrono::microseconds FaultProxy::latency() const {
  return std::chrono::microseconds(shared_->one_way_us.load() * 2);
}

void FaultProxy::SetBandwidth(uint64_t bytes_per_sec) {
  shared_->bandwidth.store(bytes_per_sec);
  PokeAll();
}

bool FaultProxy::SetTarget(const std::string& host, uint16_t port) {
  Endpoint target;
  if (!ResolveEndpoint(host, port, &target, &error_)) return false;
  std::lock_guard<std::mutex> lock(shared_->target_mu);
  shared_->target = target;
  return true;
}

void FaultProxy::CutAll() {
  std::vector<std::shared_ptr<Connection>> victims;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    victims.assign(connections_.begin(), connections_.end());
  }
  for (auto& connection : victims) connection->Abort();
  for (auto& connection : victims) connection->WaitClosed();
}

void FaultProxy::SetBlackHole(bool on) {
  shared_->black_hole.store(on);
  PokeAll();
}

bool FaultProxy::black_hole() const { return shared_->black_hole.load(); }
void FaultProxy::Pause() { shared_->paused.store(true); }
void FaultProxy::Resume() { shared_->paused.store(false); }
int FaultProxy::ActiveConnections() const { return shared_->active.load(); }
uint64_t FaultProxy::TotalAccepted() const { return shared_->accepted.load(); }
uint64_t FaultProxy::TotalRefused() const { return shared_->refused.load(); }
uint64_t FaultProxy::BytesToTarget() const { return shared_->to_target.load(); }
uint64_t FaultProxy::BytesFromTarget() const { return shared_->from_target.load(); }

}  // namespace floatmount::testing
