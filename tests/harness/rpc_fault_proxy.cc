#include "tests/harness/rpc_fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "tests/harness/net_util.h"

namespace floatmount::testing {
namespace {

constexpr uint32_t kNfsProgram = 100003;
constexpr uint32_t kCompoundProc = 1;
constexpr uint32_t kOpSequence = 53;
constexpr uint32_t kOpPutFh = 22;
constexpr uint32_t kOpRestoreFh = 31;
constexpr uint32_t kOpSaveFh = 32;
constexpr uint32_t kOpCreateSession = 43;
constexpr uint32_t kLastFragment = 0x80000000u;

bool ReadExact(int fd, void* buf, size_t len) {
  auto* p = static_cast<uint8_t*>(buf);
  while (len > 0) {
    const ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool WriteAll(int fd, const void* buf, size_t len) {
  const auto* p = static_cast<const uint8_t*>(buf);
  while (len > 0) {
    const ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// One record, its fragments joined, without the marks.
bool ReadRecord(int fd, std::vector<uint8_t>* record) {
  record->clear();
  while (true) {
    uint32_t mark;
    if (!ReadExact(fd, &mark, 4)) return false;
    mark = ntohl(mark);
    const size_t len = mark & ~kLastFragment;
    const size_t at = record->size();
    record->resize(at + len);
    if (!ReadExact(fd, record->data() + at, len)) return false;
    if (mark & kLastFragment) return true;
  }
}

bool WriteRecord(int fd, const std::vector<uint8_t>& record) {
  const uint32_t mark = htonl(kLastFragment | static_cast<uint32_t>(record.size()));
  return WriteAll(fd, &mark, 4) && WriteAll(fd, record.data(), record.size());
}

// Reads XDR words and opaques from a record; any overrun makes ok() false.
class Reader {
 public:
  explicit Reader(const std::vector<uint8_t>& b) : b_(b) {}
  uint32_t U32() {
    if (at_ + 4 > b_.size()) {
      ok_ = false;
      return 0;
    }
    uint32_t v;
    std::memcpy(&v, b_.data() + at_, 4);
    at_ += 4;
    return ntohl(v);
  }
  void Skip(size_t n) {
    if (at_ + n > b_.size()) ok_ = false;
    at_ = std::min(at_ + n, b_.size());
  }
  // An opaque<>: its bounds in the record.
  std::pair<size_t, size_t> Opaque() {
    const uint32_t len = U32();
    const size_t start = at_;
    Skip((len + 3u) & ~3u);
    return {start, len};
  }
  size_t at() const { return at_; }
  bool ok() const { return ok_; }

 private:
  const std::vector<uint8_t>& b_;
  size_t at_ = 0;
  bool ok_ = true;
};

// Reads an accepted reply's RPC header and a COMPOUND reply's status, tag
// and result count, leaving `r` at the first result. False for anything
// else (a rejected call, an error before COMPOUND ran, no result).
// `status_at` and `count_at`, if given: where the COMPOUND status and the
// count are in the record.
bool SkipToFirstResult(Reader& r, size_t* status_at = nullptr, size_t* count_at = nullptr) {
  r.Skip(4);                                       // xid
  if (r.U32() != 1 || r.U32() != 0) return false;  // not an accepted reply
  r.U32();                                         // verifier flavor
  r.Opaque();                                      // verifier
  if (r.U32() != 0) return false;                  // accept_stat
  if (status_at != nullptr) *status_at = r.at();
  r.U32();     // COMPOUND status
  r.Opaque();  // tag
  if (count_at != nullptr) *count_at = r.at();
  return r.U32() != 0 && r.ok();
}

void PutU32(std::vector<uint8_t>& out, uint32_t v) {
  v = htonl(v);
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + 4);
}

}  // namespace

struct RpcFaultProxy::Link {
  int number = 0;
  int client_fd = -1;
  int server_fd = -1;
  std::mutex write_mu;  // both directions may write to the client
  std::thread up, down;
  // Replies to rewrite, by xid: the operation and the error it fails with.
  std::mutex rewrite_mu;
  std::unordered_map<uint32_t, std::pair<uint32_t, uint32_t>> rewrite;  // GUARDED_BY(rewrite_mu)
  std::unordered_set<uint32_t> hold;  // GUARDED_BY(rewrite_mu): replies to hold back
  // GUARDED_BY(rewrite_mu): replies to replace (kAfterRun), by xid.
  std::unordered_map<uint32_t, std::vector<uint8_t>> replace;
};

RpcFaultProxy::RpcFaultProxy(std::string target_host, uint16_t target_port)
    : target_host_(std::move(target_host)), target_port_(target_port), op_counts_(128, 0) {}

RpcFaultProxy::~RpcFaultProxy() { Stop(); }

bool RpcFaultProxy::Start() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 64) != 0) {
    error_ = std::string("listen: ") + std::strerror(errno);
    return false;
  }
  port_ = LocalPort(listen_fd_);
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return true;
}

void RpcFaultProxy::Stop() {
  if (stopping_.exchange(true)) return;
  ReleaseReplies();
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  std::list<std::unique_ptr<Link>> links;
  {
    std::lock_guard<std::mutex> lock(mu_);
    links.swap(links_);
  }
  for (auto& l : links) {
    shutdown(l->client_fd, SHUT_RDWR);
    if (l->server_fd >= 0) shutdown(l->server_fd, SHUT_RDWR);
    if (l->up.joinable()) l->up.join();
    if (l->down.joinable()) l->down.join();
    close(l->client_fd);
    if (l->server_fd >= 0) close(l->server_fd);
  }
}

void RpcFaultProxy::SetRule(Rule rule) {
  std::lock_guard<std::mutex> lock(mu_);
  rule_ = std::move(rule);
}

bool RpcFaultProxy::WaitHeld(uint64_t n, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(hold_mu_);
  return hold_cv_.wait_for(lock, timeout, [&] { return held_ >= n; });
}

void RpcFaultProxy::ReleaseReplies() {
  std::lock_guard<std::mutex> lock(hold_mu_);
  released_ = true;
  hold_cv_.notify_all();
}

void RpcFaultProxy::DropHeldReplies() {
  std::lock_guard<std::mutex> lock(hold_mu_);
  dropped_ = true;
  released_ = true;
  hold_cv_.notify_all();
}

bool RpcFaultProxy::HoldReply() {
  std::unique_lock<std::mutex> lock(hold_mu_);
  ++held_;
  hold_cv_.notify_all();
  hold_cv_.wait(lock, [&] { return released_; });
  return !dropped_;
}

uint64_t RpcFaultProxy::CallsWith(uint32_t op) const {
  std::lock_guard<std::mutex> lock(mu_);
  return op < op_counts_.size() ? op_counts_[op] : 0;
}

void RpcFaultProxy::AcceptLoop() {
  while (!stopping_.load()) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      return;
    }
    Endpoint target;
    std::string error;
    int server_fd = -1;
    if (ResolveEndpoint(target_host_, target_port_, &target, &error)) {
      server_fd = ConnectWithTimeout(target, std::chrono::seconds(10), &error);
    }
    if (server_fd < 0) {
      close(fd);
      continue;
    }
    fcntl(server_fd, F_SETFL, fcntl(server_fd, F_GETFL) & ~O_NONBLOCK);
    auto link = std::make_unique<Link>();
    link->client_fd = fd;
    link->server_fd = server_fd;
    Link* l = link.get();
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_.load()) {
      close(fd);
      close(server_fd);
      return;
    }
    l->number = accepted_++;
    l->up = std::thread([this, l] { ClientToServer(l); });
    l->down = std::thread([this, l] { ServerToClient(l); });
    links_.push_back(std::move(link));
  }
}

void RpcFaultProxy::ClientToServer(Link* link) {
  std::vector<uint8_t> record;
  while (ReadRecord(link->client_fd, &record)) {
    Reader r(record);
    Call call;
    call.xid = r.U32();
    r.Skip(8);  // msg_type, rpcvers
    const uint32_t prog = r.U32();
    r.Skip(4);  // vers
    const uint32_t proc = r.U32();
    r.U32();
    r.Opaque();  // credential
    r.U32();
    r.Opaque();  // verifier
    uint32_t answer = 0;
    if (r.ok() && prog == kNfsProgram && proc == kCompoundProc) {
      call.connection = link->number;
      r.Opaque();  // tag
      r.Skip(4);   // minorversion
      const uint32_t count = r.U32();
      for (uint32_t i = 0; i < count && r.ok(); ++i) {
        const uint32_t op = r.U32();
        if (!r.ok()) break;
        call.ops.push_back(op);
        if (op == kOpSequence && i == 0) {
          r.Skip(16);
          call.seqid = r.U32();
          call.slot = r.U32();
          r.Skip(8);  // highest slot, cachethis
          call.has_sequence = r.ok();
        } else if (op == kOpPutFh) {
          r.Opaque();
        } else if (op == kOpSaveFh || op == kOpRestoreFh) {
          // no arguments
        } else {
          break;  // other arguments are not parsed: the rest is unknown
        }
      }
      Rule rule;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (uint32_t op : call.ops) {
          if (op < op_counts_.size()) ++op_counts_[op];
        }
        rule = rule_;
      }
      if (rule) answer = rule(call);
    }
    if ((answer & kAfterRun) != 0) {
      std::vector<uint8_t> reply = SequenceErrorReply(record, answer & ~kAfterRun);
      std::lock_guard<std::mutex> lock(link->rewrite_mu);
      if (!reply.empty()) link->replace[call.xid] = std::move(reply);
      answer = 0;
    }
    if (answer == kHoldReply) {
      std::lock_guard<std::mutex> lock(link->rewrite_mu);
      link->hold.insert(call.xid);
      answer = 0;
    }
    if ((answer & kInOperation) != 0 && call.ops.size() >= 3 && call.ops[1] == kOpPutFh) {
      std::lock_guard<std::mutex> lock(link->rewrite_mu);
      link->rewrite[call.xid] = {call.ops[2], answer & ~kInOperation};
      injected_.fetch_add(1);
      answer = 0;
    }
    const bool ok =
        answer != 0 ? Inject(link, record, answer) : WriteRecord(link->server_fd, record);
    if (!ok) break;
  }
  shutdown(link->client_fd, SHUT_RDWR);
  shutdown(link->server_fd, SHUT_RDWR);
}

void RpcFaultProxy::ServerToClient(Link* link) {
  std::vector<uint8_t> record;
  while (ReadRecord(link->server_fd, &record)) {
    PatchStatusFlags(record);
    PatchSlotGrant(record);
    bool hold = false;
    if (record.size() >= 4) {
      uint32_t xid;
      std::memcpy(&xid, record.data(), 4);
      std::lock_guard<std::mutex> lock(link->rewrite_mu);
      auto it = link->rewrite.find(ntohl(xid));
      if (it != link->rewrite.end()) {
        FailOperation(record, it->second.first, it->second.second);
        link->rewrite.erase(it);
      }
      hold = link->hold.erase(ntohl(xid)) > 0;
      auto replaced = link->replace.find(ntohl(xid));
      if (replaced != link->replace.end()) {
        record = std::move(replaced->second);
        link->replace.erase(replaced);
        injected_.fetch_add(1);
      }
    }
    if (hold && !HoldReply()) break;  // dropped: the connection goes with it
    std::lock_guard<std::mutex> lock(link->write_mu);
    if (!WriteRecord(link->client_fd, record)) break;
  }
  shutdown(link->client_fd, SHUT_RDWR);
  shutdown(link->server_fd, SHUT_RDWR);
}

// The reply a server gives to a COMPOUND refused in SEQUENCE: COMPOUND
// status and one result, SEQUENCE's, both `status`; the call's tag echoed.
bool RpcFaultProxy::Inject(Link* link, const std::vector<uint8_t>& call, uint32_t status) {
  const std::vector<uint8_t> reply = SequenceErrorReply(call, status);
  if (reply.empty()) return false;
  injected_.fetch_add(1);
  std::lock_guard<std::mutex> lock(link->write_mu);
  return WriteRecord(link->client_fd, reply);
}

std::vector<uint8_t> RpcFaultProxy::SequenceErrorReply(const std::vector<uint8_t>& call,
                                                       uint32_t status) {
  Reader r(call);
  const uint32_t xid = r.U32();
  r.Skip(20);
  r.U32();
  r.Opaque();
  r.U32();
  r.Opaque();
  const auto [tag_at, tag_len] = r.Opaque();
  if (!r.ok()) return {};
  std::vector<uint8_t> reply;
  PutU32(reply, xid);
  PutU32(reply, 1);  // REPLY
  PutU32(reply, 0);  // MSG_ACCEPTED
  PutU32(reply, 0);  // verifier: AUTH_NONE
  PutU32(reply, 0);
  PutU32(reply, 0);  // SUCCESS
  PutU32(reply, status);
  PutU32(reply, static_cast<uint32_t>(tag_len));
  reply.insert(reply.end(), call.begin() + tag_at, call.begin() + tag_at + ((tag_len + 3) & ~3u));
  PutU32(reply, 1);
  PutU32(reply, kOpSequence);
  PutU32(reply, status);
  return reply;
}

void RpcFaultProxy::FailOperation(std::vector<uint8_t>& reply, uint32_t op, uint32_t status) {
  Reader r(reply);
  size_t status_at = 0, count_at = 0;
  if (!SkipToFirstResult(r, &status_at, &count_at)) return;
  if (r.U32() != kOpSequence || r.U32() != 0) return;
  r.Skip(16 + 5 * 4);
  if (r.U32() != kOpPutFh || r.U32() != 0 || !r.ok()) return;
  reply.resize(r.at());
  PutU32(reply, op);
  PutU32(reply, status);
  const uint32_t st = htonl(status), three = htonl(3);
  std::memcpy(reply.data() + status_at, &st, 4);
  std::memcpy(reply.data() + count_at, &three, 4);
}

void RpcFaultProxy::PatchStatusFlags(std::vector<uint8_t>& reply) const {
  const uint32_t flags = status_flags_.load();
  if (flags == 0) return;
  Reader r(reply);
  if (!SkipToFirstResult(r) || r.U32() != kOpSequence || r.U32() != 0) return;
  r.Skip(16 + 4 * 4);  // sessionid, sequenceid, slotid, highest, target
  const size_t at = r.at();
  if (!r.ok() || at + 4 > reply.size()) return;
  uint32_t v;
  std::memcpy(&v, reply.data() + at, 4);
  v = htonl(ntohl(v) | flags);
  std::memcpy(reply.data() + at, &v, 4);
}

// RFC 8881 18.36.2: csr_sessionid, csr_sequence, csr_flags, then the fore
// channel's attributes, ca_maxrequests the sixth of them.
void RpcFaultProxy::PatchSlotGrant(std::vector<uint8_t>& reply) const {
  const uint32_t slots = slot_grant_.load();
  if (slots == 0) return;
  Reader r(reply);
  if (!SkipToFirstResult(r) || r.U32() != kOpCreateSession || r.U32() != 0) return;
  r.Skip(16 + 4 + 4 + 5 * 4);  // sessionid, sequence, flags, five channel attributes
  const size_t at = r.at();
  if (!r.ok() || at + 4 > reply.size()) return;
  const uint32_t v = htonl(slots);
  std::memcpy(reply.data() + at, &v, 4);
}

}  // namespace floatmount::testing
