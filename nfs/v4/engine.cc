// Dispatch and reply handling of the NFSv4.1 engine; see nfs/v4/engine.h.
#include "nfs/v4/engine.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <future>
#include <string_view>

#include "nfs/log_limiter.h"
#include "nfs/rpc/message.h"
#include "nfs/v4/connection_pick.h"
#include "nfs/v4/ops_util.h"
#include "nfs/v4/protocol.h"

namespace floatmount::nfs {

using namespace v4;  // NOLINT: RFC names read best unqualified here

namespace {

// SEQUENCE status flags (18.46.3) that say the server revoked some of our
// stateids, without saying which: TEST_STATEID tells (stateid_recovery.h).
constexpr uint32_t kRevokedFlags =
    SEQ4_STATUS_EXPIRED_ALL_STATE_REVOKED | SEQ4_STATUS_EXPIRED_SOME_STATE_REVOKED |
    SEQ4_STATUS_ADMIN_STATE_REVOKED | SEQ4_STATUS_RECALLABLE_STATE_REVOKED;

// A stateid the request used is gone (revoked, expired, unknown). In
// NFSv4.1 a lapsed lease shows in SEQUENCE (flags, STALE_CLIENTID,
// BADSESSION); EXPIRED from an operation is about that operation's
// stateid, tested and repaired alone, as Linux does.
bool IsStateidLost(const Status& s) {
  return s.IsNfs(NFS4ERR_BAD_STATEID) || s.IsNfs(NFS4ERR_STALE_STATEID) ||
         s.IsNfs(NFS4ERR_ADMIN_REVOKED) || s.IsNfs(NFS4ERR_DELEG_REVOKED) ||
         s.IsNfs(NFS4ERR_EXPIRED);
}

bool IsSessionLost(const Status& s) {
  return s.IsNfs(NFS4ERR_BADSESSION) || s.IsNfs(NFS4ERR_DEADSESSION) ||
         s.IsNfs(NFS4ERR_BADSLOT) || s.IsNfs(NFS4ERR_SEQ_MISORDERED) ||
         s.IsNfs(NFS4ERR_SEQ_FALSE_RETRY) || s.IsNfs(NFS4ERR_CONN_NOT_BOUND_TO_SESSION);
}

bool IsClientIdLost(const Status& s) {
  return s.IsNfs(NFS4ERR_STALE_CLIENTID) || s.IsNfs(NFS4ERR_EXPIRED);
}

constexpr int kMaxStateRetries = 8;

}  // namespace

void Nfs41Engine::Submit(std::shared_ptr<Compound> compound) {
  {
    // Names are string literals: counted without a copy.
    std::lock_guard<std::mutex> lock(calls_mu_);
    ++calls_[compound->name];
  }
  auto f = std::make_shared<Flight>();
  f->compound = std::move(compound);
  f->submitted = std::chrono::steady_clock::now();
  if (options_.soft) {
    f->deadline = std::chrono::steady_clock::now() + options_.timeo * options_.retrans;
    std::lock_guard<std::mutex> lock(mu_);
    live_.insert(f.get());
  }
  Start(std::move(f));
}

Status Nfs41Engine::SubmitAndWait(std::shared_ptr<Compound> compound,
                                  std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> future = promise->get_future();
  auto inner = std::move(compound->complete);
  compound->complete = [promise, inner](const Status& s) {
    if (inner) inner(s);
    promise->set_value(s);
  };
  const char* name = compound->name;
  Submit(std::move(compound));
  if (timeout != std::chrono::milliseconds::max() &&
      future.wait_for(timeout) != std::future_status::ready) {
    return Status::TimedOut(std::string(name) + ": no answer from the server");
  }
  return future.get();
}

void Nfs41Engine::Start(std::shared_ptr<Flight> f) {
  if (f->finished.load()) return;
  if (f->compound->io) {
    if (Status lost = LockLostStatus(f->compound->open); !lost.ok()) {
      Finish(f.get(), lost);
      return;
    }
  }
  std::shared_ptr<SlotTable> table;
  SessionId session;
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) {
      // fall through to Finish below, outside the lock
    } else if (!ready_ && !f->compound->recovery) {
      parked_.push_back(std::move(f));
      return;
    } else {
      table = slots_;
      session = session_id_;
      gen = session_gen_;
    }
  }
  if (!table) {
    Finish(f.get(), Status::Shutdown("the NFS client is shut down"));
    return;
  }
  f->has_slot = false;
  f->encoded = false;
  // A new slot's sequence id is not a retry the reply cache would answer.
  if (f->unanswered) f->compound->may_have_run = true;
  // WRITEs leave a few slots to small calls (nfs/v4/slot_table.h).
  const bool bulk = f->compound->io && std::string_view(f->compound->name) == "WRITE";
  table->Acquire([this, f, table, session, gen](uint32_t slot, uint32_t seqid,
                                                uint32_t highest) {
    f->table = table;
    f->session_gen = gen;
    f->slot = slot;
    f->seqid = seqid;
    f->has_slot = true;
    if (f->finished.load() || stopping_.load()) {  // timed out, or shutting down
      table->Release(slot);  // a waiter drained at shutdown has no real slot
      f->has_slot = false;
      Finish(f.get(), Status::Shutdown("the NFS client is shut down"));
      return;
    }
    Encode(*f, session, highest);
    Transmit(f);
  }, bulk);
}

void Nfs41Engine::Encode(Flight& f, const SessionId& session, uint32_t highest_slot) {
  const Compound& c = *f.compound;
  f.message.Clear();
  rpc::EncodeCallHeader(f.message, NFS4_PROGRAM, NFS_V4, NFSPROC4_COMPOUND, c.cred,
                        machine_name_);
  const size_t numops_at = EncodeCompoundHeader(f.message, "", NFS4_MINOR_VERSION);
  SequenceArgs seq;
  seq.sessionid = session;
  seq.sequenceid = f.seqid;
  seq.slotid = f.slot;
  seq.highest_slotid = highest_slot;
  seq.cachethis = c.cachethis;
  EncodeSequence(f.message, seq);
  if (c.open != nullptr) f.open_stateid = c.open->stateid();
  const uint32_t ops = 1 + c.encode(f.message);
  f.message.PatchUint32(numops_at, ops);
  f.sink = c.sink;
  f.reclaim_epoch = reclaim_epoch_.load();
  f.on_reply = [this, raw = &f](const Status& header, XdrDecoder& d, bool payload_received) {
    OnReply(raw, header, d, payload_received);
  };
  f.encoded = true;
}

// The live connection connection_pick.h chooses: least outstanding; one
// that is draining (moving to another address) only if no other is usable,
// and a stalled one (calls waiting, nothing received for StallAfter) only
// after those.
std::shared_ptr<RpcConnection> Nfs41Engine::PickConnection(bool bulk) {
  const auto now = std::chrono::steady_clock::now();
  const auto stall = StallAfter(options_.timeo);
  std::lock_guard<std::mutex> lock(conns_mu_);
  std::vector<ConnLoad> loads(conns_.size());
  for (size_t i = 0; i < conns_.size(); ++i) {
    const Conn& c = conns_[i];
    if (!c.rpc || !c.rpc->alive()) continue;
    const size_t outstanding = c.rpc->outstanding();
    const bool stalled = outstanding > 0 && now - c.rpc->last_receive() > stall;
    loads[i] = ConnLoad{true, c.move_to >= 0, outstanding, stalled};
  }
  const int i = nfs::PickConnection(loads, bulk);
  return i < 0 ? nullptr : conns_[i].rpc;
}

void Nfs41Engine::Transmit(std::shared_ptr<Flight> f) {
  const bool bulk = f->message.size() >= kBulkCallBytes || f->sink.dest.size() >= kBulkCallBytes;
  std::shared_ptr<RpcConnection> conn = PickConnection(bulk);
  {
    std::lock_guard<std::mutex> lock(f->send_mu);
    if (f->withdrawn) {
      // Given up while waiting to be (re)sent: an earlier send may have
      // reached the server, so the slot's state is unknown.
      InterruptSlot(*f);
      return;
    }
    f->sent_at = std::chrono::steady_clock::now();  // before Send: the reply may come at once
    if (conn && conn->Send(f)) {
      f->sent_on = conn;
      return;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    resend_.push_back(std::move(f));
  }
  maint_cv_.notify_all();
}

std::chrono::steady_clock::time_point Nfs41Engine::RecordLatency(Flight& f) {
  std::chrono::steady_clock::time_point sent;
  {
    std::lock_guard<std::mutex> lock(f.send_mu);
    sent = f.sent_at;
  }
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - sent);
  std::lock_guard<std::mutex> lock(calls_mu_);
  latency_[f.compound->name].first.Add(static_cast<uint64_t>(us.count()));
  return sent;
}

void Nfs41Engine::OnReply(Flight* raw, const Status& header, XdrDecoder& d,
                          bool payload_received) {
  std::shared_ptr<Flight> f = raw->shared_from_this();
  const std::chrono::steady_clock::time_point sent = RecordLatency(*f);
  if (!header.ok()) {  // rejected at the RPC level: SEQUENCE never ran
    f->table->Release(f->slot);
    f->has_slot = false;
    Finish(f.get(), header);
    return;
  }
  uint32_t compound_status = 0, results = 0;
  Status status = DecodeCompoundHeader(d, &compound_status, &results);
  SequenceRes seq;
  if (status.ok()) {
    if (results == 0) {
      status = compound_status == NFS4_OK
                   ? Status::Protocol("empty COMPOUND reply")
                   : Status::Nfs(compound_status, "COMPOUND");
    } else {
      status = DecodeSequence(d, &seq);
    }
  }
  if (!status.ok()) {
    OnSequenceError(std::move(f), status);
    return;
  }
  f->table->Complete(f->slot, seq.highest_slotid, seq.target_highest_slotid);
  f->has_slot = false;
  bool revoked;  // this reply starts a revoked-state episode
  {
    std::lock_guard<std::mutex> lock(mu_);
    // From when it was sent, as Linux does: a late answer's SEQUENCE may
    // have renewed the lease long before it arrived.
    last_renewal_ = std::max(last_renewal_, sent);
    revoked = revoked_flags_.OnReply((seq.status_flags & kRevokedFlags) != 0);
  }
  if (revoked) {
    spdlog::warn("the server revoked some of our state (SEQUENCE flags {:#x}); testing our "
                 "stateids", seq.status_flags);
    maint_cv_.notify_all();
  }
  // Set on every reply until our RECLAIM_COMPLETE (RFC 8881 18.46.3): only
  // a request encoded after the last reclaim pass ended asks for another.
  if ((seq.status_flags & SEQ4_STATUS_RESTART_RECLAIM_NEEDED) != 0 &&
      f->reclaim_epoch == reclaim_epoch_.load()) {
    spdlog::warn("server asks us to reclaim (SEQUENCE flags {:#x}); reclaiming our opens and locks",
                 seq.status_flags);
    RequestRecovery(Recovery::kState, f->session_gen);
  }
  if (f->finished.load()) return;  // given up (soft timeout); the slot is freed
  status = f->compound->decode(d, payload_received);
  if (status.ok() && !d.ok()) status = Status::Protocol(std::string("bad reply to ") + f->compound->name);
  OnResult(std::move(f), status);
}

void Nfs41Engine::OnSequenceError(std::shared_ptr<Flight> f, const Status& status) {
  if (status.IsNfs(NFS4ERR_DELAY)) {
    // The server is still working on an earlier send of this request (or is
    // busy): ask again later on the same slot and sequence id.
    RetryLater(std::move(f), /*same_slot=*/true);
    return;
  }
  if (f->resync && !f->stepped_back && status.IsNfs(NFS4ERR_SEQ_MISORDERED)) {
    // The server never ran the interrupted request: its own sequence id
    // is the next one the server expects.
    f->stepped_back = true;
    f->seqid = f->table->StepBack(f->slot);
    spdlog::debug("resynchronising slot {}: {}; the interrupted request never ran, so {}", f->slot,
                  status.ToString(), f->seqid);
    v4::SessionId session;
    bool same_session;
    {
      std::lock_guard<std::mutex> lock(mu_);
      same_session = f->session_gen == session_gen_;
      session = session_id_;
    }
    if (same_session) {
      Encode(*f, session, std::max(f->slot, f->table->limit() - 1));
      Transmit(std::move(f));
      return;
    }
  }
  // Errors of one slot or one connection are repaired there (RFC 8881
  // 2.10.6); the request did not run, so it is sent again on another slot.
  if (status.IsNfs(NFS4ERR_BADSLOT) && f->slot > 0) {
    spdlog::debug("{}: BADSLOT for slot {}; using fewer slots", f->compound->name, f->slot);
    f->table->Refuse(f->slot);
    f->has_slot = false;
    RetryLater(std::move(f), /*same_slot=*/false);
    return;
  }
  if (!f->resync &&
      (status.IsNfs(NFS4ERR_SEQ_MISORDERED) || status.IsNfs(NFS4ERR_SEQ_FALSE_RETRY))) {
    spdlog::debug("{}: {} on slot {}; resynchronising it", f->compound->name, status.ToString(),
                  f->slot);
    InterruptSlot(*f);
    RetryLater(std::move(f), /*same_slot=*/false);
    return;
  }
  if (status.IsNfs(NFS4ERR_CONN_NOT_BOUND_TO_SESSION)) {
    std::weak_ptr<RpcConnection> conn;
    {
      std::lock_guard<std::mutex> lock(f->send_mu);
      conn = f->sent_on;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      unbound_.push_back(std::move(conn));
    }
    f->table->Release(f->slot);
    f->has_slot = false;
    RetryLater(std::move(f), /*same_slot=*/false);  // also wakes the maintenance thread
    return;
  }
  if (IsSessionLost(status) || IsClientIdLost(status)) {
    spdlog::debug("{}: {}", f->compound->name, status.ToString());
    f->has_slot = false;  // the slot dies with the session
    RequestRecovery(IsClientIdLost(status) ? Recovery::kClientId : Recovery::kSession,
                    f->session_gen);
    if (f->compound->recovery) {
      // Recovery's own call: fail it now, so that the pass waiting for it
      // ends and starts over (parked, it would wait for itself).
      Finish(f.get(), status);
      return;
    }
    Park(std::move(f));
    return;
  }
  if (status.IsNfs(NFS4ERR_RETRY_UNCACHED_REP) && !f->compound->cachethis) {
    // Executed before, reply not kept: an idempotent request can run again.
    // The slot moved on; the server's slot targets are unchanged (this
    // reply carries none).
    const uint32_t highest = f->table->limit() - 1;
    f->table->Complete(f->slot, highest, highest);
    f->has_slot = false;
    RetryLater(std::move(f), /*same_slot=*/false);
    return;
  }
  f->table->Release(f->slot);
  f->has_slot = false;
  Finish(f.get(), status);
}

void Nfs41Engine::OnResult(std::shared_ptr<Flight> f, const Status& status) {
  if (status.IsNfs(NFS4ERR_DELAY) || status.IsNfs(NFS4ERR_GRACE)) {
    RetryLater(std::move(f), /*same_slot=*/false);
    return;
  }
  if (status.IsNfs(NFS4ERR_RETRY_UNCACHED_REP) && !f->compound->cachethis) {
    // A resend of a request the server ran but did not cache (we did not
    // ask it to: the request is idempotent). Run it again on a new slot.
    RetryLater(std::move(f), /*same_slot=*/false);
    return;
  }
  const bool stateid_expired = status.IsNfs(NFS4ERR_EXPIRED) && f->compound->open != nullptr;
  if (IsClientIdLost(status) && !stateid_expired && f->attempts < kMaxStateRetries) {
    ++f->attempts;
    RequestRecovery(Recovery::kClientId, f->session_gen);
    if (f->compound->recovery) {  // as in OnSequenceError
      Finish(f.get(), status);
      return;
    }
    Park(std::move(f));
    return;
  }
  if (f->compound->open != nullptr && f->attempts < kMaxStateRetries) {
    if (status.IsNfs(NFS4ERR_OLD_STATEID)) {
      // The open's stateid moved on (an upgrade) after this was encoded:
      // encoding it again reads the current one (8.2.2). Bounded: a server
      // that keeps answering OLD_STATEID gets the error back.
      ++f->attempts;
      RetryLater(std::move(f), /*same_slot=*/false);
      return;
    }
    if (IsStateidLost(status)) {
      ++f->attempts;
      WaitForStateidRecovery(std::move(f), status);
      return;
    }
  }
  Finish(f.get(), status);
}

// Only this request waits; a closed open (no longer registered) gets no
// recovery and the request fails with the server's answer.
void Nfs41Engine::WaitForStateidRecovery(std::shared_ptr<Flight> f, const Status& status) {
  std::shared_ptr<OpenState> open;  // dropped outside mu_ (its deleter takes mu_)
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = opens_.find(f->compound->open);
    if (it != opens_.end()) open = it->second.lock();
    if (open && !open->closing() && !shutdown_) {
      spdlog::debug("{}: {}; testing that open's stateids", f->compound->name, status.ToString());
      stateid_waiters_.push_back(StateidWaiter{open, std::move(f), status});
    }
  }
  if (f) {
    Finish(f.get(), status);
    return;
  }
  maint_cv_.notify_all();
}

void Nfs41Engine::Park(std::shared_ptr<Flight> f) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ready_ && f->session_gen != session_gen_ && recovery_ == Recovery::kNone) {
      // Recovery already finished while this reply was on its way.
    } else {
      parked_.push_back(std::move(f));
      return;
    }
  }
  Start(std::move(f));
}

std::chrono::milliseconds Nfs41Engine::Backoff(int attempts) const {
  // 10 ms doubling to 2 s: DELAY and GRACE are usually short.
  const int shift = std::min(attempts, 8);
  return std::chrono::milliseconds(std::min(10 << shift, 2000));
}

void Nfs41Engine::RetryLater(std::shared_ptr<Flight> f, bool same_slot) {
  retries_.fetch_add(1, std::memory_order_relaxed);
  const auto due = std::chrono::steady_clock::now() + Backoff(f->attempts++);
  if (!same_slot) f->encoded = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    timers_.emplace(due, std::move(f));
  }
  maint_cv_.notify_all();
}

void Nfs41Engine::Finish(Flight* f, const Status& status) {
  if (f->finished.exchange(true)) return;
  if (f->submitted != std::chrono::steady_clock::time_point{}) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - f->submitted);
    std::lock_guard<std::mutex> lock(calls_mu_);
    latency_[f->compound->name].second.Add(static_cast<uint64_t>(us.count()));
  }
  if (options_.soft) {
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(f);
  }
  if (!status.ok() && status.kind() != Status::Kind::kNfs) {
    spdlog::debug("{} failed: {}", f->compound->name, status.ToString());
  } else if (f->compound->open != nullptr &&
             (IsStateidLost(status) || status.IsNfs(NFS4ERR_OLD_STATEID))) {
    // An open's stateid the engine could not repair: the caller gets EIO,
    // and the log says why (it would otherwise be an EIO out of nowhere).
    static LogLimiter limiter(5, std::chrono::seconds(60));
    LogLimited(limiter, spdlog::level::warn, f->compound->name, "{} failed after {} tries: {}",
               f->compound->name, f->attempts + 1, status.ToString());
  }
  auto complete = std::move(f->compound->complete);
  if (complete) complete(status);
}

void Nfs41Engine::OnConnectionLost(RpcConnection* conn,
                                   std::vector<std::shared_ptr<RpcCall>> orphans,
                                   const Status& why) {
  std::vector<std::shared_ptr<RpcCall>> direct;
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t resent = 0;
    for (auto& call : orphans) {
      if (auto f = std::dynamic_pointer_cast<Flight>(call)) {
        f->unanswered = true;
        resend_.push_back(std::move(f));
        ++resent;
      } else {
        direct.push_back(std::move(call));
      }
    }
    if (!shutdown_) {
      ++reconnects_;
      // A connection this client closed had its reason logged by whoever
      // closed it (silence, a move, a set-up call unanswered): only the
      // resent calls are news. One the server or the network cut is.
      const bool news = !conn->closed_locally() || resent > 0;
      spdlog::log(news ? spdlog::level::warn : spdlog::level::debug,
                  "connection to {} lost ({}); {} calls will be resent",
                  conn->endpoint().ToString(), why.message(), resent);
    }
  }
  // Setup calls (EXCHANGE_ID, CREATE_SESSION...) fail; their caller retries.
  for (auto& call : direct) {
    XdrDecoder empty;
    call->on_reply(Status::Transport("connection lost"), empty, false);
  }
  maint_cv_.notify_all();
}

}  // namespace floatmount::nfs
