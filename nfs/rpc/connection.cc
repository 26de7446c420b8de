#include "nfs/rpc/connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "nfs/rpc/message.h"

namespace floatmount::nfs {
namespace {

// How much of a reply the receiver reads before deciding where a READ
// payload goes. Longer than any SEQUENCE+PUTFH+READ reply head.
constexpr size_t kPeekBytes = 512;
// The receive buffer: at least a small reply, and no more than a large
// READ's payload should be copied through.
constexpr size_t kReceiveBufferBytes = 64 * 1024;
constexpr size_t kMaxRecord = 64u << 20;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string ErrnoText(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

// Resolves a numeric address; names are the resolver's job (agent/).
bool MakeSockaddr(const Endpoint& ep, sockaddr_storage* ss, socklen_t* len) {
  std::memset(ss, 0, sizeof(*ss));
  auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
  if (inet_pton(AF_INET, ep.address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(ep.port);
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET6, ep.address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(ep.port);
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

}  // namespace

std::string Endpoint::ToString() const {
  if (address.find(':') != std::string::npos) return "[" + address + "]:" + std::to_string(port);
  return address + ":" + std::to_string(port);
}

Result<std::unique_ptr<RpcConnection>> RpcConnection::Connect(const Endpoint& endpoint,
                                                              std::chrono::milliseconds timeout,
                                                              LostHandler on_lost) {
  sockaddr_storage ss;
  socklen_t len;
  if (!MakeSockaddr(endpoint, &ss, &len)) {
    return Status::InvalidArgument("not a numeric IP address: " + endpoint.address);
  }
  const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::Transport(ErrnoText("socket", errno));
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    const int err = errno;
    close(fd);
    return Status::Transport(ErrnoText(("connect to " + endpoint.ToString()).c_str(), err));
  }
  pollfd pfd{fd, POLLOUT, 0};
  const int ready = poll(&pfd, 1, static_cast<int>(timeout.count()));
  int err = 0;
  socklen_t errlen = sizeof(err);
  if (ready <= 0) {
    err = ready == 0 ? ETIMEDOUT : errno;
  } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0) {
    err = errno;
  }
  if (err != 0) {
    close(fd);
    return Status::Transport(ErrnoText(("connect to " + endpoint.ToString()).c_str(), err));
  }
  // Blocking for the receiver; sends use MSG_DONTWAIT.
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  const int idle = 15, interval = 5, count = 3;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
  return std::unique_ptr<RpcConnection>(new RpcConnection(fd, endpoint, std::move(on_lost)));
}

RpcConnection::RpcConnection(int fd, Endpoint endpoint, LostHandler on_lost)
    : fd_(fd), endpoint_(std::move(endpoint)), on_lost_(std::move(on_lost)) {
  std::random_device rd;
  next_xid_ = rd();
  last_receive_ns_.store(NowNs());
  receiver_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "fm-rx");
    ReceiveLoop();
  });
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "fm-tx");
    WriteLoop();
  });
}

RpcConnection::~RpcConnection() {
  Fail(Status::Shutdown("connection closed"));
  if (receiver_.joinable()) receiver_.join();
  if (writer_.joinable()) writer_.join();
  close(fd_);
}

void RpcConnection::Close() { Fail(Status::Transport("connection closed by the client"), true); }

std::chrono::steady_clock::time_point RpcConnection::last_receive() const {
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(last_receive_ns_.load()));
}

void RpcConnection::Fail(const Status& why, bool local) {
  std::call_once(fail_once_, [&] {
    failure_ = why;
    closed_locally_.store(local, std::memory_order_release);
    dead_.store(true, std::memory_order_release);
    shutdown(fd_, SHUT_RDWR);  // wakes the receiver
    {
      std::lock_guard<std::mutex> lock(send_mu_);
      stopping_ = true;
    }
    send_cv_.notify_all();
  });
}

bool RpcConnection::Send(std::shared_ptr<RpcCall> call) {
  std::unique_lock<std::mutex> lock(send_mu_);
  if (stopping_) return false;
  const uint32_t xid = next_xid_++;
  call->message.PatchUint32(rpc::kXidOffset, xid);
  rpc::FinishRecord(call->message);
  {
    std::lock_guard<std::mutex> pending_lock(pending_mu_);
    pending_[xid] = call;
  }
  if (outstanding_.fetch_add(1, std::memory_order_relaxed) == 0) {
    // An idle connection starts waiting now: silence counts from here.
    last_receive_ns_.store(NowNs(), std::memory_order_relaxed);
  }
  Outgoing out;
  out.call = call;
  out.xid = xid;
  call->message.Gather(&out.iov);
  if (send_queue_.empty()) {
    Status error;
    if (SendSome(out, &error)) return true;
    if (!error.ok()) {
      lock.unlock();
      Fail(error);  // the receiver reports this call with the other orphans
      return true;
    }
  }
  send_queue_.push_back(std::move(out));
  lock.unlock();
  send_cv_.notify_one();
  return true;
}

bool RpcConnection::SendSome(Outgoing& out, Status* error) {
  while (out.iov_index < out.iov.size()) {
    msghdr msg{};
    msg.msg_iov = out.iov.data() + out.iov_index;
    msg.msg_iovlen = std::min<size_t>(out.iov.size() - out.iov_index, IOV_MAX);
    const ssize_t n = sendmsg(fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      *error = Status::Transport(ErrnoText(("send to " + endpoint_.ToString()).c_str(), errno));
      return false;
    }
    bytes_sent_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    out.started = true;
    size_t sent = static_cast<size_t>(n);
    while (sent > 0 && out.iov_index < out.iov.size()) {
      iovec& v = out.iov[out.iov_index];
      if (sent >= v.iov_len) {
        sent -= v.iov_len;
        ++out.iov_index;
      } else {
        v.iov_base = static_cast<uint8_t*>(v.iov_base) + sent;
        v.iov_len -= sent;
        sent = 0;
      }
    }
  }
  return true;
}

bool RpcConnection::Withdraw(const RpcCall* call) {
  std::lock_guard<std::mutex> lock(send_mu_);  // no SendSome is under way
  auto it = std::find_if(send_queue_.begin(), send_queue_.end(),
                         [call](const Outgoing& out) { return out.call.get() == call; });
  if (it == send_queue_.end()) return false;  // all sent, or never queued here
  if (!it->started) {
    const uint32_t xid = it->xid;
    send_queue_.erase(it);
    std::lock_guard<std::mutex> pending_lock(pending_mu_);
    if (pending_.erase(xid) != 0) outstanding_.fetch_sub(1, std::memory_order_relaxed);
    return true;
  }
  std::vector<uint8_t> rest;
  for (size_t i = it->iov_index; i < it->iov.size(); ++i) {
    const auto* p = static_cast<const uint8_t*>(it->iov[i].iov_base);
    rest.insert(rest.end(), p, p + it->iov[i].iov_len);
  }
  it->owned = std::move(rest);
  it->iov.assign(1, iovec{it->owned.data(), it->owned.size()});
  it->iov_index = 0;
  return false;
}

void RpcConnection::WriteLoop() {
  std::unique_lock<std::mutex> lock(send_mu_);
  while (true) {
    send_cv_.wait(lock, [&] { return stopping_ || !send_queue_.empty(); });
    if (stopping_) {
      send_queue_.clear();
      return;
    }
    Outgoing& head = send_queue_.front();
    Status error;
    if (SendSome(head, &error)) {
      send_queue_.pop_front();
      continue;
    }
    if (!error.ok()) {
      lock.unlock();
      Fail(error);
      lock.lock();
      continue;
    }
    // Socket full: wait for room without holding the lock, so that other
    // senders can queue behind us.
    lock.unlock();
    pollfd pfd{fd_, POLLOUT, 0};
    poll(&pfd, 1, 1000);
    lock.lock();
  }
}

bool RpcConnection::ReadExact(void* buf, size_t len) {
  auto* p = static_cast<uint8_t*>(buf);
  while (len > 0) {
    if (rx_begin_ < rx_end_) {
      const size_t n = std::min(len, rx_end_ - rx_begin_);
      std::memcpy(p, rx_.data() + rx_begin_, n);
      rx_begin_ += n;
      p += n;
      len -= n;
      continue;
    }
    // Bulk bytes (a large READ's data) go straight to where they belong;
    // anything smaller refills the buffer, so a small reply whole, or
    // several, costs one recv rather than one per part.
    const bool direct = len >= kReceiveBufferBytes;
    if (rx_.empty() && !direct) rx_.resize(kReceiveBufferBytes);
    const ssize_t n = direct ? recv(fd_, p, len, 0) : recv(fd_, rx_.data(), rx_.size(), 0);
    if (n > 0) {
      bytes_received_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      last_receive_ns_.store(NowNs(), std::memory_order_relaxed);
      if (direct) {
        p += n;
        len -= static_cast<size_t>(n);
      } else {
        rx_begin_ = 0;
        rx_end_ = static_cast<size_t>(n);
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
  return true;
}

bool RpcConnection::ReadFragmentHeader(bool* last, uint32_t* length) {
  uint32_t mark;
  if (!ReadExact(&mark, 4)) return false;
  mark = ntohl(mark);
  *last = (mark & rpc::kLastFragment) != 0;
  *length = mark & ~rpc::kLastFragment;
  return true;
}

bool RpcConnection::ReceiveRecord(std::shared_ptr<RpcCall>* call, bool* payload_received) {
  bool last;
  uint32_t length;
  if (!ReadFragmentHeader(&last, &length)) return false;
  if (length < 4 || length > kMaxRecord) {
    Fail(Status::Protocol("bad RPC record length from " + endpoint_.ToString()));
    return false;
  }
  const size_t peek = std::min<size_t>(length, kPeekBytes);
  record_.resize(peek);
  if (!ReadExact(record_.data(), peek)) return false;
  uint32_t xid;
  std::memcpy(&xid, record_.data(), 4);
  xid = ntohl(xid);
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    auto it = pending_.find(xid);
    if (it != pending_.end()) *call = it->second;
  }
  size_t fragment_left = length - peek;
  *payload_received = false;
  size_t offset = 0, payload = 0;
  RpcCall* c = call->get();
  std::unique_lock<std::mutex> sink_lock;
  if (c != nullptr && c->sink.locate) sink_lock = std::unique_lock<std::mutex>(c->sink_mu);
  if (sink_lock.owns_lock() && !c->sink_cancelled && c->sink.locate(record_, &offset, &payload) &&
      payload <= c->sink.dest.size() && offset + payload <= length) {
    // The head [0, offset) stays in record_; the payload goes to dest.
    uint8_t* dest = c->sink.dest.data();
    size_t have = record_.size() > offset ? std::min(record_.size() - offset, payload) : 0;
    if (have > 0) std::memcpy(dest, record_.data() + offset, have);
    std::vector<uint8_t> tail;
    if (record_.size() > offset + payload) {
      tail.assign(record_.begin() + static_cast<ptrdiff_t>(offset + payload), record_.end());
    }
    if (record_.size() < offset) {  // the head was longer than the peek
      const size_t more = offset - record_.size();
      record_.resize(offset);
      if (!ReadExact(record_.data() + offset - more, more)) return false;
      fragment_left -= more;
    }
    record_.resize(offset);
    const size_t rest = payload - have;
    if (rest > 0 && !ReadExact(dest + have, rest)) return false;
    fragment_left -= rest;
    record_.insert(record_.end(), tail.begin(), tail.end());
    *payload_received = true;
  }
  size_t at = record_.size();
  record_.resize(at + fragment_left);
  if (!ReadExact(record_.data() + at, fragment_left)) return false;
  while (!last) {
    if (!ReadFragmentHeader(&last, &length)) return false;
    if (record_.size() + length > kMaxRecord) {
      Fail(Status::Protocol("RPC record too long from " + endpoint_.ToString()));
      return false;
    }
    at = record_.size();
    record_.resize(at + length);
    if (!ReadExact(record_.data() + at, length)) return false;
  }
  return true;
}

void RpcConnection::ReceiveLoop() {
  while (true) {
    std::shared_ptr<RpcCall> call;
    bool payload_received = false;
    if (!ReceiveRecord(&call, &payload_received)) break;
    if (!call) continue;  // a reply to a call we gave up on
    uint32_t xid;
    std::memcpy(&xid, record_.data(), 4);
    {
      std::lock_guard<std::mutex> lock(pending_mu_);
      pending_.erase(ntohl(xid));
    }
    outstanding_.fetch_sub(1, std::memory_order_relaxed);
    XdrDecoder d(record_);
    d.Skip(4);
    const Status header = rpc::DecodeReplyHeader(d);
    call->on_reply(header, d, payload_received);
  }
  Fail(Status::Transport("connection to " + endpoint_.ToString() + " lost"));
  std::vector<std::shared_ptr<RpcCall>> orphans;
  {
    std::lock_guard<std::mutex> lock(send_mu_);
    std::lock_guard<std::mutex> pending_lock(pending_mu_);
    stopping_ = true;
    for (auto& [xid, call] : pending_) orphans.push_back(std::move(call));
    pending_.clear();
  }
  outstanding_.store(0);
  if (on_lost_) on_lost_(this, std::move(orphans), failure_);
}

}  // namespace floatmount::nfs
