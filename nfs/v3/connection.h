// Nfs3Connection: one TCP connection to an NFSv3 server, a libnfs
// rpc_context driven by its own I/O thread ("fm-nfs3-io").
//
// libnfs contexts are not thread-safe, so exactly one thread touches a
// context: this connection's. Other threads hand calls over with Submit()
// (a queue and an eventfd); the I/O thread sets each call's AUTH_SYS
// credentials on the context (rpc_set_auth, which encodes them into the
// call header as the call is queued), queues it with libnfs, polls the
// socket and runs the replies' handlers. Handlers run on the I/O thread
// and must not block; they may Submit() more calls (to any connection).
//
// A connect attempt that fails hands the calls queued here back to the pool
// (Hooks::resend), which sends them on a live connection, or times them out
// on a soft mount.
//
// Lost connections: when the socket fails, or calls are outstanding and
// nothing has come back for `timeo`, the context is destroyed and every
// call without a reply goes back to the pool (Hooks::resend), which sends
// it again, here after the reconnect or on another connection. NFSv3 has
// no sessions: a resent non-idempotent call (REMOVE, RENAME, CREATE
// GUARDED) may have run already, and then fails the way the kernel client's
// retransmissions can (the server's duplicate request cache does not
// recognise a call that comes on a new connection with a new xid).
//
// Thread-safety: Submit, MoveTo, Info, up and outstanding from any thread;
// Stop from one owner thread, once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "nfs/mounted_client.h"
#include "nfs/status.h"
#include "nfs/types.h"

struct rpc_context;

namespace floatmount::nfs {

// One RPC as the pool tracks it, from Submit until its handler ran.
struct Nfs3Call {
  const char* proc = "";  // "READ", for logs
  Credentials cred;
  // Builds the arguments (from memory the closure owns) and queues the RPC
  // with rpc_nfs3_*_async(rpc, cb, &args, data); returns libnfs's result
  // (0: queued). Called again for every resend.
  std::function<int(rpc_context* rpc, void (*cb)(rpc_context*, int, void*, void*), void* data)>
      issue;
  // The reply libnfs decoded (a READ3res* etc., valid during the call).
  std::function<void(void* result)> on_reply;
  // The call cannot be finished: shutdown, a soft timeout, an RPC error.
  std::function<void(Status)> on_error;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  uint64_t bytes_out = 0;  // WRITE payload, for the byte counters
  uint64_t bytes_in = 0;   // READ payload received (set by the reply handler)
  int sends = 0;
};

struct Nfs3ConnectionOptions {
  uint32_t program = 100003;  // NFS
  uint32_t version = 3;
  std::chrono::milliseconds timeo{60000};
  std::chrono::milliseconds connect_timeout{10000};
  std::string machine_name;  // AUTH_SYS machinename
};

class Nfs3Connection {
 public:
  struct Hooks {
    // A call whose connection was lost before its reply came.
    std::function<void(std::shared_ptr<Nfs3Call>)> resend;
    // The connection came up (true) or a connect attempt failed (false).
    std::function<void(Nfs3Connection*, bool up)> state_changed;
  };

  Nfs3Connection(int index, Endpoint endpoint, Nfs3ConnectionOptions options, Hooks hooks);
  ~Nfs3Connection();  // Stop()
  Nfs3Connection(const Nfs3Connection&) = delete;
  Nfs3Connection& operator=(const Nfs3Connection&) = delete;

  void Submit(std::shared_ptr<Nfs3Call> call);
  // Reconnects to `endpoint` once the calls in flight have their replies.
  void MoveTo(const Endpoint& endpoint);
  // Ends the thread; queued and outstanding calls fail with kShutdown.
  void Stop();

  int index() const { return index_; }
  bool up() const { return up_.load(); }
  size_t outstanding() const { return outstanding_.load(); }
  uint64_t reconnects() const { return reconnects_.load(); }
  Endpoint endpoint() const;
  ConnectionInfo Info() const;
  // Why the last connect attempt failed ("" if it did not).
  std::string last_error() const;

 private:
  struct Send {
    Nfs3Connection* conn;
    std::shared_ptr<Nfs3Call> call;
  };

  void Run();
  bool Connect(const Endpoint& endpoint);  // I/O thread
  void IssueQueued();                      // I/O thread
  void Issue(std::shared_ptr<Nfs3Call> call);
  // Destroys the context; calls without replies go to Hooks::resend (or
  // fail with kShutdown when stopping).
  void Teardown(const std::string& why);
  void Finish(Send* send);
  static void OnReply(rpc_context* rpc, int status, void* data, void* private_data);
  void WaitBeforeReconnect(std::chrono::milliseconds delay);

  const int index_;
  const Nfs3ConnectionOptions options_;
  const Hooks hooks_;
  int wake_fd_ = -1;  // eventfd; constant after construction

  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  std::deque<std::shared_ptr<Nfs3Call>> queue_;  // GUARDED_BY(mu_)
  Endpoint endpoint_;                             // GUARDED_BY(mu_)
  std::optional<Endpoint> move_to_;               // GUARDED_BY(mu_)
  bool stop_ = false;                             // GUARDED_BY(mu_)
  uint64_t bytes_sent_ = 0;                       // GUARDED_BY(mu_)
  uint64_t bytes_received_ = 0;                   // GUARDED_BY(mu_)
  std::string last_error_;                        // GUARDED_BY(mu_)

  std::atomic<bool> sleeping_{false};  // the I/O thread is (about to be) in poll
  std::atomic<bool> up_{false};
  std::atomic<size_t> outstanding_{0};
  std::atomic<uint64_t> reconnects_{0};

  // I/O thread only.
  rpc_context* rpc_ = nullptr;
  std::unordered_map<Send*, std::unique_ptr<Send>> in_flight_;
  std::vector<std::pair<Send*, std::string>> errored_;  // RPC_STATUS_ERROR in this service round
  bool tearing_down_ = false;
  std::chrono::steady_clock::time_point last_progress_;

  std::thread thread_;  // last: it uses the fields above
};

}  // namespace floatmount::nfs
