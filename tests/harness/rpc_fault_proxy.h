// RpcFaultProxy: a TCP proxy between an NFSv4.1 client and a real server
// that works on whole ONC RPC records, so a test can make the server
// appear to answer chosen COMPOUNDs with a SEQUENCE error, or set
// SEQUENCE status flags, while the real server does everything else.
//
// A call the rule picks is answered by the proxy itself with that error
// (COMPOUND status and a lone SEQUENCE result, RFC 8881 15.1, 18.46) and
// never reaches the server: exactly what a server that refuses a request
// in SEQUENCE does (BADSLOT, SEQ_MISORDERED, CONN_NOT_BOUND_TO_SESSION...:
// nothing executed, the slot unchanged). With kInOperation, the call goes
// to the server and its reply is cut after PUTFH, the next operation
// failing with that error instead (an operation's error, e.g. EXPIRED on a
// READ; use it on idempotent calls: the server did run it). Replies pass
// through otherwise, with `status_flags` ORed into every successful
// SEQUENCE result while set (RESTART_RECLAIM_NEEDED, revoked-state flags).
//
// FaultProxy (fault_proxy.h) shapes bytes (latency, cuts, black holes);
// this one understands records. Single-fragment records only (what
// floatmount and the servers send).
//
// Threads: an accept thread and, per client connection, one thread per
// direction, in blocking I/O; Stop() (and the destructor) shut every
// socket down and join them. SetRule / SetStatusFlags from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace floatmount::testing {

class RpcFaultProxy {
 public:
  // What a rule sees of one COMPOUND call.
  struct Call {
    uint32_t xid = 0;
    int connection = 0;         // client connection number, in accept order
    std::vector<uint32_t> ops;  // opcodes, as far as they could be read
    bool has_sequence = false;  // first op is SEQUENCE; then:
    uint32_t slot = 0, seqid = 0;
  };
  // 0: forward the call; otherwise answer it with this nfsstat4 (in
  // SEQUENCE, or with kInOperation ORed in, in the operation after PUTFH;
  // with kAfterRun ORed in, in SEQUENCE but only after the server ran the
  // call, its real reply dropped: NFS4ERR_RETRY_UNCACHED_REP as a server
  // answers the retry of a request whose reply it did not keep), or,
  // kHoldReply, forward it and hold its reply back until ReleaseReplies()
  // (replies on other connections pass meanwhile: the client sees them in
  // another order than the server ran the calls), or DropHeldReplies()
  // (the client never gets them).
  using Rule = std::function<uint32_t(const Call&)>;
  static constexpr uint32_t kInOperation = 0x80000000u;
  static constexpr uint32_t kHoldReply = 0x40000000u;
  static constexpr uint32_t kAfterRun = 0x20000000u;

  RpcFaultProxy(std::string target_host, uint16_t target_port);
  ~RpcFaultProxy();
  RpcFaultProxy(const RpcFaultProxy&) = delete;
  RpcFaultProxy& operator=(const RpcFaultProxy&) = delete;

  // Listens on 127.0.0.1 (a free port) and starts accepting.
  bool Start();
  void Stop();
  uint16_t port() const { return port_; }
  const std::string& error() const { return error_; }

  void SetRule(Rule rule);
  void SetStatusFlags(uint32_t flags) { status_flags_.store(flags); }
  // While nonzero, every CREATE_SESSION reply grants this many fore-channel
  // slots (ca_maxrequests), whatever the client asked for and the server
  // granted: a server that grants more than it was asked for.
  void SetSlotGrant(uint32_t slots) { slot_grant_.store(slots); }
  uint64_t injected() const { return injected_.load(); }
  // Replies held back (kHoldReply) so far; waits up to `timeout` for `n`.
  bool WaitHeld(uint64_t n, std::chrono::milliseconds timeout);
  void ReleaseReplies();
  // Drops the replies held back and cuts their connections, as a server
  // that ran the calls and died before answering (the client resends).
  void DropHeldReplies();
  // Calls whose opcodes include `op`, forwarded or not, since Start.
  uint64_t CallsWith(uint32_t op) const;

 private:
  struct Link;
  void AcceptLoop();
  void ClientToServer(Link* link);
  void ServerToClient(Link* link);
  bool Inject(Link* link, const std::vector<uint8_t>& call, uint32_t status);
  // The reply of a COMPOUND refused in SEQUENCE with `status`; empty if
  // the call cannot be read.
  static std::vector<uint8_t> SequenceErrorReply(const std::vector<uint8_t>& call, uint32_t status);
  void PatchStatusFlags(std::vector<uint8_t>& reply) const;
  void PatchSlotGrant(std::vector<uint8_t>& reply) const;
  // Until ReleaseReplies or Stop (true: forward it) or DropHeldReplies.
  bool HoldReply();
  // Cuts a COMPOUND reply after SEQUENCE and PUTFH, then `op` fails with
  // `status`.
  static void FailOperation(std::vector<uint8_t>& reply, uint32_t op, uint32_t status);

  const std::string target_host_;
  const uint16_t target_port_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::string error_;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint32_t> status_flags_{0};
  std::atomic<uint32_t> slot_grant_{0};
  std::atomic<uint64_t> injected_{0};

  std::mutex hold_mu_;
  std::condition_variable hold_cv_;
  uint64_t held_ = 0;      // GUARDED_BY(hold_mu_)
  bool released_ = false;  // GUARDED_BY(hold_mu_)
  bool dropped_ = false;   // GUARDED_BY(hold_mu_)

  mutable std::mutex mu_;
  Rule rule_;                               // GUARDED_BY(mu_)
  std::list<std::unique_ptr<Link>> links_;  // GUARDED_BY(mu_)
  int accepted_ = 0;                        // GUARDED_BY(mu_)
  std::vector<uint64_t> op_counts_;         // GUARDED_BY(mu_): by opcode
};

}  // namespace floatmount::testing
