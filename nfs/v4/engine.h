// Nfs41Engine: the session machinery behind Nfs41Client (internal to nfs/).
//
// It owns the connections, the client ID and session, the slot table, the
// open-state registry, and the maintenance thread. Operations hand it
// Compounds (compound.h); it adds SEQUENCE, sends, decodes SEQUENCE, and
// either completes the Compound or retries it:
//
//   Submit -> Start: wait for a slot (or park while recovering)
//          -> Encode (RPC header, COMPOUND header, SEQUENCE, the ops)
//          -> Transmit on the least-loaded connection (bulk calls keep
//             one free for small ones: nfs/v4/connection_pick.h)
//   reply  -> OnReply (receiver thread): SEQUENCE result decides between
//             done / retry same slot (DELAY) / park for recovery; then the
//             ops' own status decides between done / back off (DELAY,
//             GRACE) / wait for that one open's stateid repair (stale
//             stateid; nfs/v4/stateid_recovery.h).
//   lost connection -> the unanswered Flights are resent unchanged (same
//             slot and sequence id, RFC 8881 2.10.6.2) once a connection is
//             up again.
//
// Files: nfs/v4/engine.cc (dispatch, replies), nfs/v4/session.cc (client ID,
// session, recovery, maintenance thread), nfs/v4/state_recovery.cc (opens
// and locks after state loss), nfs/v4/stateid_recovery.cc (revoked or
// lost single stateids), nfs/v4/connections.cc (the connections over
// the server's addresses: health, placement, reconnects),
// nfs/v4/trunking.cc (which addresses join the session; the session bound).
//
// Threads: see nfs/v4/client.h. Lock order: mu_ before conns_mu_; no lock is
// held while calling into a SlotTable, an RpcConnection or a callback.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "nfs/latency.h"
#include "nfs/v4/compound.h"
#include "nfs/v4/id_mapper.h"
#include "nfs/v4/client.h"
#include "nfs/v4/open_state.h"
#include "nfs/v4/ops.h"
#include "nfs/rpc/connection.h"
#include "nfs/v4/slot_table.h"
#include "nfs/v4/stateid_recovery.h"
#include "nfs/v4/trunking.h"

namespace floatmount::nfs {

class Nfs41Engine {
 public:
  explicit Nfs41Engine(Nfs41Options options);
  ~Nfs41Engine();

  // Connects, establishes client ID and session, opens the connections.
  Status Start();
  // Sends a compound; its `complete` runs exactly once.
  void Submit(std::shared_ptr<Compound> compound);
  // Submits and waits, at most `timeout` (recovery, Start and Shutdown use
  // it; never the maintenance thread, which the compound may need).
  Status SubmitAndWait(std::shared_ptr<Compound> compound,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds::max());
  void Shutdown();
  // How long mount-time calls may take before the server counts as not
  // answering (a hard mount waits through outages, but a mount attempt
  // must end): twice timeo, at least 10 s.
  std::chrono::milliseconds SetupTimeout() const;

  ServerInfo Info() const;
  // The server's addresses now (e.g. after DNS changed): connections move
  // off addresses no longer listed and spread over new ones.
  void UpdateEndpoints(const std::vector<Endpoint>& endpoints);
  const IdMapper& id_mapper() const { return id_mapper_; }
  const Nfs41Options& options() const { return options_; }
  uint64_t clientid() const;
  // A new open owner string, unique within this client ID.
  std::string NewOpenOwner();
  // The server's lease (FATTR4_LEASE_TIME), read at mount.
  void set_lease_time(uint32_t seconds);
  void RegisterOpen(const std::shared_ptr<OpenState>& open);
  // A rerun's error was its own first run's work (nfs/v4/replay.h).
  void NoteRerunDone() { reruns_done_.fetch_add(1, std::memory_order_relaxed); }
  void UnregisterOpen(OpenState* open);

 private:
  struct Flight;
  struct DirectCall;
  class StateRecoveryOps;  // nfs/v4/state_recovery.cc
  struct Conn {
    Endpoint endpoint;
    int address = -1;                    // index in addresses_; -1: placed nowhere
    std::shared_ptr<RpcConnection> rpc;  // null while down
    bool connecting = false;
    int move_to = -1;  // draining: no new calls; reconnects there once idle
    int failures = 0;
    std::chrono::steady_clock::time_point next_attempt{};
    std::thread connector;
  };
  // One address of the server. Usable while it answers, is the same server
  // (EXCHANGE_ID, nfs/v4/trunking.h), and is still listed.
  struct Address {
    Endpoint endpoint;
    AddressRole role = AddressRole::kUnknown;    // what its last EXCHANGE_ID said
    AddressRole logged = AddressRole::kUnknown;  // the exclusion last logged
    std::string owner, scope;                    // from its last EXCHANGE_ID, printable
    bool listed = true;         // in the latest UpdateEndpoints
    int failures = 0;           // connects that failed since it last answered
    std::chrono::steady_clock::time_point retry_at{};
    bool probing = false;
    std::thread prober;
    bool excluded() const {
      return role == AddressRole::kClientId || role == AddressRole::kOtherServer;
    }
    bool usable() const { return listed && !excluded() && failures == 0; }
  };
  enum class Recovery { kNone = 0, kState = 1, kSession = 2, kClientId = 3 };
  // A request that failed with a stateid error on `open`, waiting for that
  // open's stateids to be tested and repaired.
  struct StateidWaiter {
    std::shared_ptr<OpenState> open;
    std::shared_ptr<Flight> flight;
    Status status;  // what it fails with if the open is closed meanwhile
  };

  // --- dispatch (nfs/v4/engine.cc) ---
  void Start(std::shared_ptr<Flight> f);
  void Encode(Flight& f, const v4::SessionId& session, uint32_t highest_slot);
  void Transmit(std::shared_ptr<Flight> f);
  // Counts the time from the last send of f to its reply, by compound
  // name; returns when f was sent.
  std::chrono::steady_clock::time_point RecordLatency(Flight& f);
  void OnReply(Flight* f, const Status& header, XdrDecoder& d, bool payload_received);
  void OnSequenceError(std::shared_ptr<Flight> f, const Status& status);
  void OnResult(std::shared_ptr<Flight> f, const Status& status);
  void Park(std::shared_ptr<Flight> f);
  // Per-stateid recovery (nfs/v4/stateid_recovery.h): a request's stateid
  // error on its open; the request waits for that open's repair.
  void WaitForStateidRecovery(std::shared_ptr<Flight> f, const Status& status);
  void RetryLater(std::shared_ptr<Flight> f, bool same_slot);
  void Finish(Flight* f, const Status& status);
  // Bulk calls keep off one connection (nfs/v4/connection_pick.h).
  std::shared_ptr<RpcConnection> PickConnection(bool bulk = false);
  void OnConnectionLost(RpcConnection* conn, std::vector<std::shared_ptr<RpcCall>> orphans,
                        const Status& why);

  // --- client ID, session, connections, recovery (nfs/v4/session.cc) ---
  // `wait`: how long to wait for the answer (zero: timeo, at least 1 s).
  Status CallDirect(RpcConnection* conn, const char* name,
                    const std::function<void(XdrEncoder&)>& encode_ops, uint32_t num_ops,
                    const std::function<Status(XdrDecoder&)>& decode_ops,
                    std::chrono::milliseconds wait = std::chrono::milliseconds::zero());
  Status SendDirect(RpcConnection* conn, const std::shared_ptr<DirectCall>& call, const char* name,
                    std::chrono::milliseconds wait);
  Status Ping(RpcConnection* conn);  // NFSPROC4_NULL
  Result<std::shared_ptr<RpcConnection>> Connect(const Endpoint& endpoint);
  Status ExchangeId(RpcConnection* conn, v4::ExchangeIdRes* res);
  Status CreateSession(RpcConnection* conn);
  Status BindConnection(RpcConnection* conn);
  // --- trunking (nfs/v4/trunking.cc) ---
  // Connects conns_[index]; EXCHANGE_ID decides whether it joins the
  // session (RFC 8881 2.10.5).
  Status SetUpConnection(size_t index);
  bool SessionAllowedLocked();        // needs mu_: the session bound
  // Our record as the primary described it, with our current client ID:
  // what an EXCHANGE_ID answer is judged against. Needs mu_.
  v4::ExchangeIdRes OurRecordLocked() const;
  bool PrimaryAnswersLocked() const;  // needs conns_mu_
  void NoteAddressRoleLocked(size_t a, AddressRole role, const v4::ExchangeIdRes& answer);
  void ForgetAddressRolesLocked();  // needs conns_mu_

  // --- connections over addresses (nfs/v4/connections.cc) ---
  // Points connection `i` at address `a` (-1: nowhere). Needs conns_mu_.
  void AssignLocked(size_t i, int a);
  int AddressIndexLocked(const Endpoint& endpoint);
  void PlaceLocked();
  void ProbeLocked(size_t a);
  void NoteConnectFailureLocked(size_t i);
  void JoinConnectionThreads();
  Status ReclaimComplete();
  // Reopens every open and reclaims its locks (nfs/v4/state_recovery.cc).
  // False if a call of it found the session or client ID lost again.
  bool RecoverOpens(bool reclaim);
  // Tests and repairs single stateids (nfs/v4/state_recovery.cc).
  void RunStateidRecovery();
  bool StateidWorkLocked() const {  // needs mu_
    return revoked_flags_.pending() || !stateid_waiters_.empty();
  }
  // BIND_CONN_TO_SESSION for each connection in unbound_; one that will
  // not bind is closed (and made again, bound, by the usual reconnect).
  void BindUnboundConnections();
  std::vector<std::shared_ptr<OpenState>> LiveOpens() const;
  void RequestRecovery(Recovery level, uint64_t session_gen);
  void RunRecovery();
  void MaintenanceLoop();
  void MaintainConnections();
  void FlushResends();
  void RunTimers();
  void RenewLeaseIfIdle();
  void CheckDeadlines();
  // A slot whose request's outcome is unknown (soft mounts): kept out of
  // use until a lone SEQUENCE has resynchronised it (slot_table.h).
  void InterruptSlot(Flight& f);
  void ResyncInterruptedSlots();
  void FailStranded();
  std::chrono::milliseconds Backoff(int attempts) const;

  const Nfs41Options options_;
  const IdMapper id_mapper_;
  std::string machine_name_;  // constant after construction

  mutable std::mutex mu_;
  std::condition_variable maint_cv_;
  bool shutdown_ = false;                       // GUARDED_BY(mu_)
  bool unmounting_ = false;                     // GUARDED_BY(mu_): DESTROY_SESSION sent
  bool ready_ = false;                          // GUARDED_BY(mu_): session usable
  Recovery recovery_ = Recovery::kNone;         // GUARDED_BY(mu_): requested
  RevokedFlagEpisode revoked_flags_;                  // GUARDED_BY(mu_)
  std::vector<StateidWaiter> stateid_waiters_;        // GUARDED_BY(mu_)
  uint64_t stateid_recoveries_ = 0, stateids_revoked_ = 0;  // GUARDED_BY(mu_)
  uint64_t clientid_ = 0;                       // GUARDED_BY(mu_)
  uint32_t create_session_seq_ = 0;             // GUARDED_BY(mu_): csa_sequence
  v4::SessionId session_id_{};                  // GUARDED_BY(mu_)
  uint64_t session_gen_ = 0;                    // GUARDED_BY(mu_): bumps per new session
  std::shared_ptr<SlotTable> slots_;            // GUARDED_BY(mu_)
  v4::ChannelAttrs fore_attrs_{};               // GUARDED_BY(mu_)
  v4::ExchangeIdRes server_;                    // GUARDED_BY(mu_): the primary's EXCHANGE_ID
  SessionBudget budget_;                        // GUARDED_BY(mu_): sessions per minute
  std::deque<std::shared_ptr<Flight>> parked_;  // GUARDED_BY(mu_): wait for recovery
  std::deque<std::shared_ptr<Flight>> resend_;  // GUARDED_BY(mu_): wait for a connection
  std::multimap<std::chrono::steady_clock::time_point, std::shared_ptr<Flight>>
      timers_;                        // GUARDED_BY(mu_): back-off
  std::unordered_set<Flight*> live_;  // GUARDED_BY(mu_): soft mode only
  std::unordered_map<OpenState*, std::weak_ptr<OpenState>> opens_;              // GUARDED_BY(mu_)
  // When the last request the server answered was sent: the lease runs
  // from there at the latest (RFC 8881 8.3).
  std::chrono::steady_clock::time_point last_renewal_;  // GUARDED_BY(mu_)
  uint32_t lease_time_ = 90;                            // GUARDED_BY(mu_)
  // When the lease renewal in flight was sent ({} if none).
  std::chrono::steady_clock::time_point renewal_sent_;                          // GUARDED_BY(mu_)
  uint64_t reconnects_ = 0, session_recoveries_ = 0, clientid_recoveries_ = 0;  // GUARDED_BY(mu_)
  std::atomic<bool> stopping_{false};  // set once by Shutdown
  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> slot_resyncs_{0};
  std::atomic<uint64_t> reruns_done_{0};
  std::atomic<uint64_t> reclaim_epoch_{0};  // reclaim passes (RESTART_RECLAIM_NEEDED) ended
  // Connections the server called not bound to the session, to bind again.
  std::vector<std::weak_ptr<RpcConnection>> unbound_;  // GUARDED_BY(mu_)
  mutable std::mutex calls_mu_;
  std::map<std::string_view, uint64_t> calls_;  // GUARDED_BY(calls_mu_): by compound name
  // Round trip of the last send, and submission to completion, by name.
  std::map<std::string_view, std::pair<LatencyHistogram, LatencyHistogram>>
      latency_;  // GUARDED_BY(calls_mu_)
  std::atomic<uint64_t> next_owner_{1};

  mutable std::mutex conns_mu_;
  std::vector<Conn> conns_;                                // GUARDED_BY(conns_mu_)
  std::vector<Address> addresses_;                         // GUARDED_BY(conns_mu_)
  std::vector<std::shared_ptr<RpcConnection>> graveyard_;  // GUARDED_BY(conns_mu_)

  bool recovery_running_ = false;  // GUARDED_BY(mu_)
  // Session or client ID losses reported (RequestRecovery): one during a
  // recovery pass means the pass must run again.
  uint64_t losses_reported_ = 0;  // GUARDED_BY(mu_)
  // Opens wait to be reclaimed or reopened (a new client ID, the server's
  // RESTART_RECLAIM_NEEDED), until a recovery pass gets through them all.
  bool opens_pending_ = false;  // GUARDED_BY(mu_)
  std::thread recovery_thread_;    // started and joined by the maintenance thread
  std::thread maintenance_;
};

// One Compound on its way: the RpcCall that carries it plus where it is in
// the session (slot, sequence id, which session).
struct Nfs41Engine::Flight : RpcCall, std::enable_shared_from_this<Flight> {
  std::shared_ptr<Compound> compound;
  std::shared_ptr<SlotTable> table;  // the session's table the slot is from
  uint64_t session_gen = 0;
  uint32_t slot = 0;
  uint32_t seqid = 0;
  bool has_slot = false;  // holds `slot` of `table`
  bool encoded = false;   // message holds a sendable call for session_gen
  // A send went out on a connection that was lost before its reply came:
  // the server may have run it. Sent on another slot or session from then
  // on, the compound `may_have_run` (compound.h).
  bool unanswered = false;
  int attempts = 0;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::atomic<bool> finished{false};
  // A lone SEQUENCE resynchronising an interrupted slot (SlotTable::
  // TakeInterrupted); `stepped_back` once it resent with the older id.
  bool resync = false;
  bool stepped_back = false;
  uint64_t reclaim_epoch = 0;  // Nfs41Engine::reclaim_epoch_ when encoded
  v4::Stateid open_stateid;    // the open's stateid when encoded (what I/O carries)
  std::chrono::steady_clock::time_point submitted{};  // for the latency figures
  std::chrono::steady_clock::time_point sent_at{};    // GUARDED_BY(send_mu): the last send

  // Sending vs. giving up (soft timeout): Transmit sends only while not
  // `withdrawn`; CheckDeadlines sets it and takes the call back from
  // `sent_on`, so no byte of the caller's payload is read once the call
  // has failed (the caller may reuse the buffer at once).
  std::mutex send_mu;
  bool withdrawn = false;                  // GUARDED_BY(send_mu)
  std::weak_ptr<RpcConnection> sent_on;    // GUARDED_BY(send_mu)
};

}  // namespace floatmount::nfs
