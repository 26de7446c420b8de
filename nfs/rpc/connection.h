// RpcConnection: one TCP connection carrying many ONC RPC calls at once,
// with record marking (RFC 5531 section 11).
//
// Threads:
//   - Any thread calls Send(). It never blocks on the network: it writes
//     with MSG_DONTWAIT and, if the socket is full, queues the rest for the
//     connection's writer thread ("fm-tx"). Calls are never interleaved.
//   - The receiver thread ("fm-rx") reads replies and runs each call's
//     on_reply on itself: the thread that decoded a reply also completes it.
//   - When the connection dies (peer closed, error, Close()), the receiver
//     marks it dead and hands every unanswered call to the LostHandler, as
//     its last act. Calls are never completed with an error here: whether
//     to resend (same slot and sequence id) is the session layer's choice.
//
// Ownership and teardown: the owner (Nfs41Client) holds the connection,
// calls Close() to cut it, and destroys it from a thread that is not this
// connection's receiver or writer; the destructor closes and joins both.
//
// Zero copy: a call's payload referenced with XdrEncoder::PutOpaqueRef is
// sent with sendmsg() from the caller's memory. For a READ, a call may name
// a PayloadSink: the receiver peeks at the head of the reply, asks the call
// where the data starts, and reads it straight into the caller's buffer.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "nfs/status.h"
#include "nfs/rpc/xdr.h"

namespace floatmount::nfs {

struct Endpoint {
  std::string address;  // numeric IPv4 or IPv6 address
  uint16_t port = 2049;
  std::string ToString() const;
  bool operator==(const Endpoint&) const = default;
};

// Where a reply's bulk data should land.
struct PayloadSink {
  std::span<uint8_t> dest;
  // Given the first bytes of the reply record (starting at the xid), sets
  // the offset of the payload in the record and its length; returns false
  // if the reply does not carry a payload there (an error reply).
  std::function<bool(std::span<const uint8_t> prefix, size_t* offset, size_t* length)> locate;
};

struct RpcCall {
  virtual ~RpcCall() = default;

  // Stops any later write into sink.dest; returns once no write is under
  // way. Used when a call is given up (soft timeout) before its reply.
  void CancelSink() {
    std::lock_guard<std::mutex> lock(sink_mu);
    sink_cancelled = true;
  }

  // The whole call, laid out by rpc::EncodeCallHeader (record mark and xid
  // are filled in by Send).
  XdrEncoder message;
  PayloadSink sink;  // optional: sink.locate empty means none
  // Runs on the receiver thread. `header` is OK when the server accepted
  // the call; `results` is then positioned at the procedure's results.
  // `payload_received` says the payload went to sink.dest and was removed
  // from the record (its XDR padding is still there).
  std::function<void(const Status& header, XdrDecoder& results, bool payload_received)> on_reply;

  std::mutex sink_mu;           // held by the receiver while it writes into sink.dest
  bool sink_cancelled = false;  // GUARDED_BY(sink_mu)
};

class RpcConnection {
 public:
  using LostHandler = std::function<void(
      RpcConnection* conn, std::vector<std::shared_ptr<RpcCall>> orphans, const Status& why)>;

  // Opens the TCP connection and starts its threads.
  static Result<std::unique_ptr<RpcConnection>> Connect(const Endpoint& endpoint,
                                                        std::chrono::milliseconds timeout,
                                                        LostHandler on_lost);
  ~RpcConnection();
  RpcConnection(const RpcConnection&) = delete;
  RpcConnection& operator=(const RpcConnection&) = delete;

  // Takes the call and sends it; false if the connection is dead (the call
  // was not taken).
  bool Send(std::shared_ptr<RpcCall> call);
  // Takes back a call its owner gave up on (a soft timeout) so that the
  // caller's memory it references (a WRITE payload) may be reused at once.
  // A call none of whose bytes reached the socket is removed: it will not
  // be sent, answered or reported lost, and Withdraw returns true. A call
  // partly written has the rest of its bytes copied (the record must be
  // finished to keep the stream framed): the server may still run it.
  // Either way no byte of the caller's memory is read after this returns.
  bool Withdraw(const RpcCall* call);
  // Cuts the connection; unanswered calls go to the LostHandler.
  void Close();

  bool alive() const { return !dead_.load(std::memory_order_acquire); }
  // Whether this side ended the connection (Close() came before any error
  // of the peer's or the network's). Meaningful once !alive().
  bool closed_locally() const { return closed_locally_.load(std::memory_order_acquire); }
  size_t outstanding() const { return outstanding_.load(std::memory_order_relaxed); }
  const Endpoint& endpoint() const { return endpoint_; }  // constant after construction
  // When the last byte arrived, or when the connection went from idle to
  // waiting for a reply if that is later: a peer silent since then while
  // calls are outstanding has stopped answering.
  std::chrono::steady_clock::time_point last_receive() const;
  uint64_t bytes_sent() const { return bytes_sent_.load(std::memory_order_relaxed); }
  uint64_t bytes_received() const { return bytes_received_.load(std::memory_order_relaxed); }

 private:
  struct Outgoing {
    std::shared_ptr<RpcCall> call;
    uint32_t xid = 0;
    std::vector<iovec> iov;
    size_t iov_index = 0;  // first iovec not fully sent
    bool started = false;  // some bytes are in the socket
    std::vector<uint8_t> owned;  // the unsent rest, once withdrawn mid-record
  };

  RpcConnection(int fd, Endpoint endpoint, LostHandler on_lost);
  void ReceiveLoop();
  void WriteLoop();
  bool ReadExact(void* buf, size_t len);
  bool ReadFragmentHeader(bool* last, uint32_t* length);
  bool ReceiveRecord(std::shared_ptr<RpcCall>* call, bool* payload_received);
  // Sends as much of `out` as the socket takes now; true when all is sent.
  bool SendSome(Outgoing& out, Status* error);
  void Fail(const Status& why, bool local = false);

  const int fd_;
  const Endpoint endpoint_;
  const LostHandler on_lost_;

  std::mutex send_mu_;  // acquired before pending_mu_
  std::condition_variable send_cv_;
  std::deque<Outgoing> send_queue_;  // GUARDED_BY(send_mu_)
  uint32_t next_xid_;                // GUARDED_BY(send_mu_)
  bool stopping_ = false;            // GUARDED_BY(send_mu_)

  std::mutex pending_mu_;
  std::unordered_map<uint32_t, std::shared_ptr<RpcCall>> pending_;  // GUARDED_BY(pending_mu_)

  std::atomic<bool> dead_{false};
  std::atomic<bool> closed_locally_{false};  // set once, with failure_
  std::atomic<size_t> outstanding_{0};
  std::atomic<int64_t> last_receive_ns_;
  std::atomic<uint64_t> bytes_sent_{0};
  std::atomic<uint64_t> bytes_received_{0};
  Status failure_;  // set once by Fail() before dead_; read by the receiver at exit
  std::once_flag fail_once_;

  std::vector<uint8_t> record_;  // receiver thread only
  // Bytes received and not yet taken by ReadExact: rx_[rx_begin_, rx_end_).
  std::vector<uint8_t> rx_;  // receiver thread only
  size_t rx_begin_ = 0;
  size_t rx_end_ = 0;
  std::thread receiver_;
  std::thread writer_;
};

}  // namespace floatmount::nfs
