// Client ID, session, connections, recovery and the maintenance thread of
// the NFSv4.1 engine; see nfs/v4/engine.h.
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <future>

#include "nfs/v4/engine.h"
#include "nfs/v4/ops_util.h"
#include "nfs/v4/protocol.h"
#include "nfs/rpc/message.h"

namespace floatmount::nfs {

using namespace v4;  // NOLINT: RFC names read best unqualified here

// A setup call sent without SEQUENCE (EXCHANGE_ID, CREATE_SESSION,
// BIND_CONN_TO_SESSION, DESTROY_*), answered through a promise.
struct Nfs41Engine::DirectCall : RpcCall {
  std::promise<Status> done;
  std::atomic<bool> answered{false};
};

namespace {

constexpr uint32_t kRequestOverhead = 8192;  // headers around a 1 MiB payload
constexpr std::chrono::milliseconds kTick{50};

std::string HostName() {
  char buf[256] = {};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

template <typename Bytes>
std::string Hex(const Bytes& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : bytes) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

std::string Printable(const std::string& bytes) {
  for (unsigned char c : bytes) {
    if (c < 0x20 || c > 0x7e) return Hex(bytes);
  }
  return bytes;
}

bool IsClientIdLostStatus(const Status& s) {
  return s.IsNfs(NFS4ERR_STALE_CLIENTID) || s.IsNfs(NFS4ERR_EXPIRED);
}

constexpr std::chrono::seconds kShutdownWait{10};
// How long a mount waits for its other nconnect connections (Start).
constexpr std::chrono::seconds kMountWidthWait{2};
// DESTROY_SESSION and DESTROY_CLIENTID at unmount are courtesy: every byte
// is committed and every file closed by then, and a server that does not
// answer frees our state when the lease runs out. Waiting timeo (60 s by
// default) for each kept `floatmount unmount` past its own bound when a
// connection died at the wrong moment (issue 19).
constexpr std::chrono::seconds kCourtesyWait{5};

}  // namespace

Nfs41Engine::Nfs41Engine(Nfs41Options options)
    : options_(std::move(options)),
      id_mapper_(options_.idmap),
      machine_name_(options_.machine_name.empty() ? HostName() : options_.machine_name),
      budget_(options_.max_sessions_per_minute) {}

Nfs41Engine::~Nfs41Engine() { Shutdown(); }

uint64_t Nfs41Engine::clientid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return clientid_;
}

std::string Nfs41Engine::NewOpenOwner() {
  return "fm-open-" + std::to_string(next_owner_.fetch_add(1));
}

void Nfs41Engine::set_lease_time(uint32_t seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  if (seconds > 0) lease_time_ = seconds;
}

void Nfs41Engine::RegisterOpen(const std::shared_ptr<OpenState>& open) {
  std::lock_guard<std::mutex> lock(mu_);
  opens_[open.get()] = open;
}

void Nfs41Engine::UnregisterOpen(OpenState* open) {
  std::lock_guard<std::mutex> lock(mu_);
  opens_.erase(open);
}

Status Nfs41Engine::CallDirect(RpcConnection* conn, const char* name,
                               const std::function<void(XdrEncoder&)>& encode_ops,
                               uint32_t num_ops,
                               const std::function<Status(XdrDecoder&)>& decode_ops,
                               std::chrono::milliseconds wait) {
  auto call = std::make_shared<DirectCall>();
  rpc::EncodeCallHeader(call->message, NFS4_PROGRAM, NFS_V4, NFSPROC4_COMPOUND, Credentials{},
                        machine_name_);
  const size_t numops_at = EncodeCompoundHeader(call->message, "", NFS4_MINOR_VERSION);
  encode_ops(call->message);
  call->message.PatchUint32(numops_at, num_ops);
  DirectCall* raw = call.get();
  call->on_reply = [raw, decode_ops, name](const Status& header, XdrDecoder& d, bool) {
    if (raw->answered.exchange(true)) return;
    if (!header.ok()) {
      raw->done.set_value(header);
      return;
    }
    uint32_t compound_status = 0, results = 0;
    Status s = DecodeCompoundHeader(d, &compound_status, &results);
    if (s.ok() && results == 0) s = Status::Nfs(compound_status, name);
    if (s.ok()) s = decode_ops(d);
    if (s.ok() && !d.ok()) s = Status::Protocol(std::string("bad reply to ") + name);
    raw->done.set_value(s);
  };
  return SendDirect(conn, call, name, wait);
}

Status Nfs41Engine::SendDirect(RpcConnection* conn, const std::shared_ptr<DirectCall>& call,
                               const char* name, std::chrono::milliseconds wait) {
  std::future<Status> future = call->done.get_future();
  if (!conn->Send(call)) return Status::Transport("connection lost");
  if (wait == std::chrono::milliseconds::zero()) {
    wait = std::max(options_.timeo, std::chrono::milliseconds(1000));
  }
  // Waited in ticks: at unmount a set-up call to an address that does not
  // answer must not hold Shutdown (which joins its thread) for timeo.
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (future.wait_for(std::min<std::chrono::steady_clock::duration>(
             kTick, deadline - std::chrono::steady_clock::now())) != std::future_status::ready) {
    if (stopping_.load()) {
      conn->Close();
      return Status::Shutdown(std::string(name) + ": the NFS client is shut down");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      conn->Close();  // a server that does not answer setup calls is not usable
      return Status::TimedOut(std::string(name) + ": no answer from " +
                              conn->endpoint().ToString());
    }
  }
  return future.get();
}

// The NFSv4 NULL procedure (RFC 8881 16.1): whether an NFS server answers
// at this connection's address at all. A TCP connect is not enough: an
// address whose node went silent, or a proxy in front of it, may accept
// connections and never answer a call.
Status Nfs41Engine::Ping(RpcConnection* conn) {
  auto call = std::make_shared<DirectCall>();
  rpc::EncodeCallHeader(call->message, NFS4_PROGRAM, NFS_V4, NFSPROC4_NULL, Credentials{},
                        machine_name_);
  DirectCall* raw = call.get();
  call->on_reply = [raw](const Status& header, XdrDecoder&, bool) {
    if (!raw->answered.exchange(true)) raw->done.set_value(header);
  };
  // Bounded apart from timeo: an address that cannot answer NULL within
  // this is not one to move connections to, and the probe is repeated.
  const auto wait = std::min(std::max(options_.timeo, std::chrono::milliseconds(1000)),
                             std::chrono::milliseconds(10000));
  return SendDirect(conn, call, "NULL", wait);
}

Result<std::shared_ptr<RpcConnection>> Nfs41Engine::Connect(const Endpoint& endpoint) {
  auto conn = RpcConnection::Connect(
      endpoint, options_.connect_timeout,
      [this](RpcConnection* c, std::vector<std::shared_ptr<RpcCall>> orphans, const Status& why) {
        OnConnectionLost(c, std::move(orphans), why);
      });
  if (!conn.ok()) return conn.status();
  return std::shared_ptr<RpcConnection>(std::move(conn).value());
}

// RFC 8881 18.35. Sent on every new address: the same owner and verifier
// return the same client ID from the same server, and server_owner tells
// whether this address reaches it.
Status Nfs41Engine::ExchangeId(RpcConnection* conn, ExchangeIdRes* res) {
  ExchangeIdArgs args;
  std::copy(options_.boot_verifier.begin(), options_.boot_verifier.end(), args.verifier.begin());
  args.owner_id = options_.owner_id;
  args.flags = 0;
  args.impl_id = ImplId{"floatmount.dev", "floatmount 0.1", Timestamp{}};
  return CallDirect(
      conn, "EXCHANGE_ID", [&](XdrEncoder& e) { EncodeExchangeId(e, args); }, 1,
      [&](XdrDecoder& d) { return DecodeExchangeId(d, res); });
}

// RFC 8881 18.36: fore channel sized for rsize/wsize (and a 1 MiB READDIR
// reply) plus headers.
Status Nfs41Engine::CreateSession(RpcConnection* conn) {
  CreateSessionArgs args;
  {
    std::lock_guard<std::mutex> lock(mu_);
    args.clientid = clientid_;
    args.sequence = create_session_seq_;
  }
  args.flags = 0;  // no persistence, no back channel on this connection
  args.fore.maxrequestsize = options_.wsize + kRequestOverhead;
  args.fore.maxresponsesize = std::max(options_.rsize, kMaxReadDirReply) + kRequestOverhead;
  args.fore.maxresponsesize_cached = 8192;
  args.fore.maxoperations = 16;
  args.fore.maxrequests = std::max<uint32_t>(1, options_.max_slots);
  args.back.maxrequestsize = 4096;
  args.back.maxresponsesize = 4096;
  args.back.maxresponsesize_cached = 0;
  args.back.maxoperations = 2;
  args.back.maxrequests = 1;
  args.cb_program = NFS4_CALLBACK;
  args.sec_parms.push_back(CallbackSecParms{});  // AUTH_NONE
  CreateSessionRes res;
  Status s = CallDirect(
      conn, "CREATE_SESSION", [&](XdrEncoder& e) { EncodeCreateSession(e, args); }, 1,
      [&](XdrDecoder& d) { return DecodeCreateSession(d, &res); });
  if (!s.ok()) return s;
  // RFC 8881 18.36.3: the server may grant fewer slots than asked for,
  // never more; a server that grants more gets what was asked (a slot
  // table of whatever a reply says would be memory the server decides).
  const uint32_t slots = std::clamp<uint32_t>(res.fore.maxrequests, 1, args.fore.maxrequests);
  if (res.fore.maxrequests > args.fore.maxrequests) {
    spdlog::debug("CREATE_SESSION granted {} slots, more than the {} asked for; using {}",
                  res.fore.maxrequests, args.fore.maxrequests, slots);
  }
  std::lock_guard<std::mutex> lock(mu_);
  budget_.Record(std::chrono::steady_clock::now());
  ++create_session_seq_;
  session_id_ = res.sessionid;
  fore_attrs_ = res.fore;
  slots_ = std::make_shared<SlotTable>(slots);
  ++session_gen_;
  return Status::Ok();
}

// RFC 8881 18.34: BIND_CONN_TO_SESSION, alone in its compound.
Status Nfs41Engine::BindConnection(RpcConnection* conn) {
  SessionId session;
  {
    std::lock_guard<std::mutex> lock(mu_);
    session = session_id_;
  }
  BindConnToSessionRes res;
  return CallDirect(
      conn, "BIND_CONN_TO_SESSION",
      [&](XdrEncoder& e) { EncodeBindConnToSession(e, session, CDFC4_FORE, false); }, 1,
      [&](XdrDecoder& d) { return DecodeBindConnToSession(d, &res); });
}

Status Nfs41Engine::Start() {
  if (options_.endpoints.empty()) return Status::InvalidArgument("no server address");
  if (options_.owner_id.empty()) return Status::InvalidArgument("no client owner ID");
  // The first address that answers becomes the primary: it defines which
  // server this mount talks to.
  std::shared_ptr<RpcConnection> primary;
  Status last = Status::Transport("no address answered");
  Endpoint primary_endpoint;
  for (const Endpoint& ep : options_.endpoints) {
    auto conn = Connect(ep);
    if (conn.ok()) {
      primary = std::move(conn).value();
      primary_endpoint = ep;
      break;
    }
    last = conn.status();
  }
  if (!primary) return last;
  ExchangeIdRes res;
  Status s = ExchangeId(primary.get(), &res);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    server_ = res;
    clientid_ = res.clientid;
    create_session_seq_ = res.sequenceid;
  }
  for (int attempt = 0;; ++attempt) {
    s = CreateSession(primary.get());
    if (!s.IsNfs(NFS4ERR_DELAY) || attempt > 50) break;
    std::this_thread::sleep_for(Backoff(attempt));
  }
  if (!s.ok()) return s;
  int primary_index;
  {
    std::lock_guard<std::mutex> lock(conns_mu_);
    for (const Endpoint& ep : options_.endpoints) AddressIndexLocked(ep);
    primary_index = AddressIndexLocked(primary_endpoint);
    conns_.resize(size_t(std::clamp(options_.nconnect, 1, 64)));
    AssignLocked(0, primary_index);
    conns_[0].rpc = primary;  // bound to the session by CREATE_SESSION
    NoteAddressRoleLocked(size_t(primary_index), AddressRole::kSession, res);
    // The others spread over the addresses (set up below, not by the
    // maintenance thread).
    PlaceLocked();
    for (size_t i = 1; i < conns_.size(); ++i) conns_[i].connecting = true;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ready_ = true;
    last_renewal_ = std::chrono::steady_clock::now();
  }
  maintenance_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "fm-nfs-maint");
    MaintenanceLoop();
  });
  s = ReclaimComplete();
  if (!s.ok()) return s;
  // The other connections, now and side by side (the maintenance thread
  // sets each up on its own thread), so the mount starts at full width.
  // The mount waits for them only as long as a working network needs: one
  // at an address that does not answer (a connect or an EXCHANGE_ID that
  // waits connect_timeout or timeo) is set up, or moved elsewhere, after
  // the mount, instead of holding it once per connection placed there.
  {
    std::lock_guard<std::mutex> lock(conns_mu_);
    for (size_t i = 1; i < conns_.size(); ++i) {
      conns_[i].connecting = false;
      conns_[i].next_attempt = std::chrono::steady_clock::now();
    }
  }
  maint_cv_.notify_all();
  const auto width_deadline = std::chrono::steady_clock::now() + kMountWidthWait;
  while (std::chrono::steady_clock::now() < width_deadline) {
    {
      std::lock_guard<std::mutex> lock(conns_mu_);
      if (std::all_of(conns_.begin(), conns_.end(), [](const Conn& c) {
            return (c.rpc && c.rpc->alive()) || c.failures > 0 || c.address < 0;
          })) {
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return Status::Ok();
}

std::chrono::milliseconds Nfs41Engine::SetupTimeout() const {
  return std::max<std::chrono::milliseconds>(options_.timeo * 2, std::chrono::seconds(10));
}

// RFC 8881 18.51: tells the server we reclaim nothing more.
Status Nfs41Engine::ReclaimComplete() {
  auto c = std::make_shared<Compound>();
  c->name = "RECLAIM_COMPLETE";
  c->recovery = true;
  c->encode = [](XdrEncoder& e) {  // SEQUENCE, RECLAIM_COMPLETE
    EncodeReclaimComplete(e, false);
    return 1u;
  };
  c->decode = [](XdrDecoder& d, bool) { return DecodeReclaimComplete(d); };
  Status s = SubmitAndWait(c, SetupTimeout());
  if (s.IsNfs(NFS4ERR_COMPLETE_ALREADY)) return Status::Ok();
  return s;
}

// Every registered open that is still in use.
std::vector<std::shared_ptr<OpenState>> Nfs41Engine::LiveOpens() const {
  std::vector<std::shared_ptr<OpenState>> opens;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [raw, weak] : opens_) {
    if (auto open = weak.lock()) opens.push_back(std::move(open));
  }
  return opens;
}

void Nfs41Engine::RequestRecovery(Recovery level, uint64_t session_gen) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_ || unmounting_) return;
    if (session_gen != session_gen_ && level != Recovery::kState) return;  // already done
    if (level >= Recovery::kSession) ++losses_reported_;
    if (level == Recovery::kState) opens_pending_ = true;
    if (static_cast<int>(level) > static_cast<int>(recovery_)) {
      static const char* kWhat[] = {"", "open state", "session", "client ID"};
      spdlog::info("the server lost our {}; recovering", kWhat[static_cast<int>(level)]);
      recovery_ = level;
    }
    if (level != Recovery::kState) ready_ = false;
  }
  maint_cv_.notify_all();
}

void Nfs41Engine::RunRecovery() {
  Recovery level;
  {
    std::lock_guard<std::mutex> lock(mu_);
    level = recovery_;
  }
  std::shared_ptr<RpcConnection> conn = PickConnection();
  if (!conn) return;  // wait for a connection
  bool new_client = false;
  Status s = Status::Ok();
  if (level >= Recovery::kSession) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!SessionAllowedLocked()) return;  // a storm: wait for the window
    }
    bool other_server = false;
    ExchangeIdRes answer;  // what this connection's server said
    if (level == Recovery::kSession) {
      // Who answers on this connection now (RFC 8881 2.10.5): a floating
      // IP may have moved it to another node. A node with client IDs of its
      // own can know our number as another client's (ganesha numbers them
      // from the second it started), and a session made there for it would
      // carry that client's state: our stateids unknown or, worse, taken
      // for its (TortureUnderFailoverTest: READs failed BAD_STATEID until
      // EIO while TEST_STATEID called the stateid valid).
      s = ExchangeId(conn.get(), &answer);
      if (s.ok()) {
        ExchangeIdRes primary;
        {
          std::lock_guard<std::mutex> lock(mu_);
          primary = OurRecordLocked();
        }
        other_server = ClassifyExchangeId(primary, answer) == AddressRole::kOtherServer;
        if (other_server) {
          spdlog::info("recovery: the server answers with another client ID; recovering the "
                       "state against it");
        } else {
          s = CreateSession(conn.get());
        }
      }
      if (s.ok() && !other_server) {
        std::lock_guard<std::mutex> lock(mu_);
        ++session_recoveries_;
      }
    }
    // SEQ_MISORDERED: the server's record of our client ID expects another
    // CREATE_SESSION sequence than ours, so it is not the record our
    // sequence counts for (one made anew, RFC 8881 18.36.4): EXCHANGE_ID
    // tells the sequence it expects, and everything is recovered.
    if (level == Recovery::kClientId || other_server || IsClientIdLostStatus(s) ||
        s.IsNfs(NFS4ERR_SEQ_MISORDERED)) {
      // Another server's answer is already the one to recover against;
      // otherwise the server's record may have changed since: ask again.
      if (!other_server) s = ExchangeId(conn.get(), &answer);
      bool kept = false;
      if (s.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        const ExchangeIdRes ours = OurRecordLocked();
        // The server still has our confirmed record (a loss reported by a
        // connection that asked while the last pass was confirming it): its
        // opens and locks are what the last pass left, so they are not
        // reclaimed again. After a RECLAIM_COMPLETE the server refuses
        // reclaims (NO_GRACE) and they would be opened anew and their
        // locks called lost (LocksUnderRestartsTest).
        kept = ClassifyExchangeId(ours, answer) != AddressRole::kOtherServer;
        server_ = answer;  // the server we recover against (maybe another one)
        clientid_ = answer.clientid;
        create_session_seq_ = answer.sequenceid;
        if (kept) {
          ++session_recoveries_;
        } else {
          ++clientid_recoveries_;
          opens_pending_ = true;  // the old client ID's opens are gone
        }
      }
      if (s.ok()) s = CreateSession(conn.get());
      new_client = s.ok() && !kept;
    }
    if (!s.ok()) {
      spdlog::warn("recovery: {}; will retry", s.ToString());
      return;
    }
    // Every connection joins the new session.
    std::vector<std::shared_ptr<RpcConnection>> all;
    {
      std::lock_guard<std::mutex> lock(conns_mu_);
      for (Conn& c : conns_) {
        if (c.rpc && c.rpc->alive()) all.push_back(c.rpc);
      }
    }
    std::set<RpcConnection*> bound = {conn.get()};
    for (auto& c : all) {
      if (c == conn) continue;
      if (BindConnection(c.get()).ok()) {
        bound.insert(c.get());
      } else {
        c->Close();
      }
    }
    {
      // Every address is asked again; those whose connections joined are
      // the session's.
      ExchangeIdRes server;
      {
        std::lock_guard<std::mutex> lock(mu_);
        server = server_;
      }
      std::lock_guard<std::mutex> lock(conns_mu_);
      ForgetAddressRolesLocked();
      for (const Conn& c : conns_) {
        if (c.rpc && c.address >= 0 && bound.count(c.rpc.get()) > 0) {
          NoteAddressRoleLocked(size_t(c.address), AddressRole::kSession, server);
        }
      }
    }
    spdlog::info("recovery: new {} established", new_client ? "client ID and session" : "session");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ready_ = false;  // only recovery compounds until the state is back
  }
  // Recovery compounds need a usable session; let them through. With a
  // new client ID: reclaim opens and locks, RECLAIM_COMPLETE, then open
  // anew what could not be reclaimed (nfs/v4/state_recovery.h).
  // Opens are pending after a new client ID or the server's request for a
  // reclaim (RESTART_RECLAIM_NEEDED), until one pass got through them all;
  // such a pass leaves them done even if a loss was reported meanwhile (the
  // next pass's EXCHANGE_ID says whether the server still has them), and a
  // request for a reclaim during it makes them pending again. Losses
  // counted from here on are of the session this pass uses (older
  // sessions' reports are dropped by RequestRecovery): one means the pass
  // must run again.
  bool pending;
  uint64_t losses;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending = opens_pending_;
    opens_pending_ = false;
    losses = losses_reported_;
  }
  const bool recovered = !pending || RecoverOpens(true);
  if (level == Recovery::kState) reclaim_epoch_.fetch_add(1);
  std::deque<std::shared_ptr<Flight>> parked;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!recovered) opens_pending_ = true;
    if (!recovered || losses_reported_ != losses) {
      // The session or client ID was lost again during this pass: the
      // maintenance thread runs recovery again (recovery_ says at which
      // level); requests stay parked meanwhile.
      spdlog::info("recovery: the server lost our state again meanwhile; starting over");
      if (recovery_ == Recovery::kNone) recovery_ = Recovery::kSession;
      return;
    }
    recovery_ = Recovery::kNone;
    ready_ = true;
    parked.swap(parked_);
  }
  for (auto& f : parked) Start(std::move(f));
}

void Nfs41Engine::BindUnboundConnections() {
  std::vector<std::weak_ptr<RpcConnection>> unbound;
  {
    std::lock_guard<std::mutex> lock(mu_);
    unbound.swap(unbound_);
  }
  std::set<RpcConnection*> done;
  for (const auto& weak : unbound) {
    std::shared_ptr<RpcConnection> conn = weak.lock();
    if (!conn || !conn->alive() || !done.insert(conn.get()).second) continue;
    Status s = BindConnection(conn.get());
    if (s.ok()) {
      spdlog::info("{}: bound to the session again", conn->endpoint().ToString());
    } else {
      spdlog::warn("{}: cannot bind to the session ({}); reconnecting",
                   conn->endpoint().ToString(), s.ToString());
      conn->Close();
    }
  }
}

void Nfs41Engine::MaintenanceLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!shutdown_) {
    maint_cv_.wait_for(lock, kTick);
    if (shutdown_) break;
    // Recovery waits on compounds that may need this thread (resends,
    // back-off timers), so it runs on a thread of its own.
    // State recovery comes first; per-stateid work waits for it (and
    // needs a usable session).
    const bool full = recovery_ != Recovery::kNone;
    const bool recover =
        (full || (ready_ && (StateidWorkLocked() || !unbound_.empty()))) && !recovery_running_;
    if (recover) recovery_running_ = true;
    lock.unlock();
    if (recover) {
      if (recovery_thread_.joinable()) recovery_thread_.join();
      recovery_thread_ = std::thread([this, full] {
        pthread_setname_np(pthread_self(), "fm-nfs-recover");
        if (full) {
          RunRecovery();
        } else {
          BindUnboundConnections();
          bool stateid_work;
          {
            std::lock_guard<std::mutex> lock(mu_);
            stateid_work = StateidWorkLocked();
          }
          if (stateid_work) RunStateidRecovery();
        }
        std::lock_guard<std::mutex> lock(mu_);
        recovery_running_ = false;
      });
    }
    MaintainConnections();
    FlushResends();
    RunTimers();
    RenewLeaseIfIdle();
    CheckDeadlines();
    ResyncInterruptedSlots();
    lock.lock();
  }
  lock.unlock();
  if (recovery_thread_.joinable()) recovery_thread_.join();
}

void Nfs41Engine::FlushResends() {
  if (!PickConnection()) return;
  std::deque<std::shared_ptr<Flight>> resend;
  uint64_t gen;
  bool ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    resend.swap(resend_);
    gen = session_gen_;
    ready = ready_;
  }
  for (auto& f : resend) {
    if (f->finished.load()) {
      InterruptSlot(*f);  // sent on a connection that died: outcome unknown
      continue;
    }
    if (f->encoded && f->session_gen == gen) {
      Transmit(std::move(f));  // same slot and sequence id: exactly-once
    } else if (ready || f->compound->recovery) {
      Start(std::move(f));
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      parked_.push_back(std::move(f));
    }
  }
}

void Nfs41Engine::RunTimers() {
  std::vector<std::shared_ptr<Flight>> due;
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      due.push_back(std::move(timers_.begin()->second));
      timers_.erase(timers_.begin());
    }
    gen = session_gen_;
  }
  for (auto& f : due) {
    if (f->has_slot && f->encoded && f->session_gen == gen) {
      Transmit(std::move(f));  // SEQUENCE said DELAY: same slot, same seqid
    } else {
      if (f->has_slot) f->table->Release(f->slot);
      f->has_slot = false;
      Start(std::move(f));
    }
  }
}

void Nfs41Engine::RenewLeaseIfIdle() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    const auto third = std::chrono::seconds(std::max<uint32_t>(lease_time_ / 3, 1));
    // A renewal unanswered for a third of the lease does not hold back the
    // next: it may sit on a connection that died without a word (a path
    // black-holed, a node powered off), which only timeo (60 s) reveals,
    // while the lease runs out. The next goes out on a connection with
    // fewer calls waiting (PickConnection), where an answer can come.
    if (!ready_ || now - last_renewal_ < third ||
        (renewal_sent_ != std::chrono::steady_clock::time_point{} && now - renewal_sent_ < third)) {
      return;
    }
    renewal_sent_ = now;
  }
  auto c = std::make_shared<Compound>();
  c->name = "SEQUENCE (lease renewal)";
  c->encode = [](XdrEncoder&) { return 0u; };  // SEQUENCE alone
  c->decode = [](XdrDecoder&, bool) { return Status::Ok(); };
  c->complete = [this](const Status&) {
    std::lock_guard<std::mutex> lock(mu_);
    renewal_sent_ = {};
  };
  Submit(std::move(c));
}

void Nfs41Engine::CheckDeadlines() {
  if (!options_.soft) return;
  std::vector<std::shared_ptr<Flight>> expired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    for (Flight* f : live_) {
      if (f->deadline > now) continue;
      if (auto held = f->weak_from_this().lock()) expired.push_back(std::move(held));
    }
  }
  for (const std::shared_ptr<Flight>& f : expired) {
    f->CancelSink();  // no more bytes into the caller's buffer
    {
      // No more bytes out of it either: the caller may reuse a WRITE's
      // payload as soon as the call fails.
      std::lock_guard<std::mutex> lock(f->send_mu);
      f->withdrawn = true;
      std::shared_ptr<RpcConnection> conn = f->sent_on.lock();
      if (conn && conn->Withdraw(f.get())) InterruptSlot(*f);  // unsent there; maybe sent before
    }
    Finish(f.get(), Status::TimedOut(std::string(f->compound->name) + ": no answer from the server"));
  }
}

void Nfs41Engine::InterruptSlot(Flight& f) {
  if (!f.has_slot) return;
  f.table->Interrupt(f.slot);
  f.has_slot = false;
  maint_cv_.notify_all();
}

// RFC 8881 2.10.6.2: a slot whose last request may or may not have run is
// brought back with a lone SEQUENCE (see SlotTable::TakeInterrupted), so a
// long outage on a soft mount does not use up the slot table.
void Nfs41Engine::ResyncInterruptedSlots() {
  std::shared_ptr<SlotTable> table;
  SessionId session;
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ready_ || shutdown_ || !slots_) return;
    table = slots_;
    session = session_id_;
    gen = session_gen_;
  }
  uint32_t slot, seqid;
  while (table->TakeInterrupted(&slot, &seqid)) {
    auto c = std::make_shared<Compound>();
    c->name = "SEQUENCE (slot resync)";
    c->encode = [](XdrEncoder&) { return 0u; };  // SEQUENCE alone
    c->decode = [](XdrDecoder&, bool) { return Status::Ok(); };
    {
      std::lock_guard<std::mutex> lock(calls_mu_);
      ++calls_[c->name];
    }
    auto f = std::make_shared<Flight>();
    f->compound = std::move(c);
    f->table = table;
    f->session_gen = gen;
    f->slot = slot;
    f->seqid = seqid;
    f->has_slot = true;
    f->resync = true;
    f->submitted = std::chrono::steady_clock::now();
    slot_resyncs_.fetch_add(1, std::memory_order_relaxed);
    Encode(*f, session, std::max(slot, table->limit() - 1));
    Transmit(std::move(f));
  }
}

void Nfs41Engine::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) return;
  }
  // Close what is still open, then tear down session and client ID
  // (RFC 8881 18.37, 18.50), each alone in its compound.
  std::vector<std::shared_ptr<OpenState>> opens = LiveOpens();
  std::shared_ptr<RpcConnection> conn = PickConnection();
  bool ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ready = ready_;
  }
  if (conn && ready) {
    SessionId session;
    uint64_t client;
    {
      std::lock_guard<std::mutex> lock(mu_);
      session = session_id_;
      client = clientid_;
    }
    for (const std::shared_ptr<OpenState>& open : opens) {
      // Servers may refuse CLOSE while locks are held (RFC 8881 18.2.4).
      std::promise<void> unlocked;
      ReleaseLocks(this, open->cred(), open, [&unlocked] { unlocked.set_value(); });
      unlocked.get_future().wait_for(kShutdownWait);
      auto c = std::make_shared<Compound>();
      c->name = "CLOSE";
      c->cred = open->cred();
      c->encode = [open](XdrEncoder& e) {  // SEQUENCE, PUTFH, CLOSE
        EncodePutFh(e, open->fh());
        EncodeClose(e, 0, open->stateid());
        return 2u;
      };
      c->decode = [](XdrDecoder& d, bool) {
        Status s = DecodePutFh(d);
        Stateid ignored;
        return s.ok() ? DecodeClose(d, &ignored) : s;
      };
      SubmitAndWait(c, kShutdownWait);
    }
    {
      // From here on a session or client ID the server no longer knows is
      // ours going away, not a loss to recover from.
      std::lock_guard<std::mutex> lock(mu_);
      unmounting_ = true;
    }
    Status s = CallDirect(
        conn.get(), "DESTROY_SESSION", [&](XdrEncoder& e) { EncodeDestroySession(e, session); },
        1, [](XdrDecoder& d) { return DecodeDestroySession(d); }, kCourtesyWait);
    if (!s.ok()) spdlog::info("at unmount, DESTROY_SESSION: {} (the lease frees it)", s.ToString());
    s = CallDirect(
        conn.get(), "DESTROY_CLIENTID", [&](XdrEncoder& e) { EncodeDestroyClientId(e, client); },
        1, [](XdrDecoder& d) { return DecodeDestroyClientId(d); }, kCourtesyWait);
    if (!s.ok()) spdlog::info("at unmount, DESTROY_CLIENTID: {} (the lease frees it)", s.ToString());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
    ready_ = false;
  }
  stopping_.store(true);
  maint_cv_.notify_all();
  // Cut the connections: their receivers hand unanswered calls to resend_.
  {
    std::lock_guard<std::mutex> lock(conns_mu_);
    for (Conn& c : conns_) {
      if (c.rpc) c.rpc->Close();
    }
  }
  // Fail whatever still waits, so that a recovery thread blocked on one of
  // these calls can finish; then join the threads.
  FailStranded();
  if (maintenance_.joinable()) maintenance_.join();
  JoinConnectionThreads();
  std::vector<Conn> conns;
  std::vector<std::shared_ptr<RpcConnection>> dead;
  {
    std::lock_guard<std::mutex> lock(conns_mu_);
    conns = std::move(conns_);
    conns_.clear();
    dead.swap(graveyard_);
  }
  // Outside conns_mu_: these join the receiver threads, which may need it.
  conns.clear();
  dead.clear();
  FailStranded();
}

void Nfs41Engine::FailStranded() {
  std::vector<std::shared_ptr<Flight>> stranded;
  std::deque<SlotTable::Grant> waiters;
  std::vector<StateidWaiter> waiting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& f : parked_) stranded.push_back(std::move(f));
    for (auto& f : resend_) stranded.push_back(std::move(f));
    for (auto& [when, f] : timers_) stranded.push_back(std::move(f));
    waiting.swap(stateid_waiters_);  // freed outside mu_: an open's deleter takes it
    for (auto& w : waiting) stranded.push_back(std::move(w.flight));
    parked_.clear();
    resend_.clear();
    timers_.clear();
    if (slots_) waiters = slots_->TakeWaiters();
  }
  for (auto& grant : waiters) grant(UINT32_MAX, 0, 0);  // each finishes its Flight
  for (auto& f : stranded) Finish(f.get(), Status::Shutdown("the NFS client is shut down"));
}

ServerInfo Nfs41Engine::Info() const {
  ServerInfo info;
  {
    std::lock_guard<std::mutex> lock(mu_);
    info.server_owner_major = Printable(server_.server_owner_major);
    info.server_owner_minor = server_.server_owner_minor;
    info.clientid = clientid_;
    info.session_id = Hex(session_id_);
    info.server_scope = Printable(server_.server_scope);
    if (server_.server_impl_id) {
      info.impl_domain = server_.server_impl_id->domain;
      info.impl_name = server_.server_impl_id->name;
    }
    info.max_request_size = fore_attrs_.maxrequestsize;
    info.max_response_size = fore_attrs_.maxresponsesize;
    info.max_response_size_cached = fore_attrs_.maxresponsesize_cached;
    info.max_operations = fore_attrs_.maxoperations;
    info.slots = slots_ ? slots_->size() : 0;
    info.slot_limit = slots_ ? slots_->limit() : 0;
    info.slots_interrupted = slots_ ? slots_->interrupted() : 0;
    info.lease_time = lease_time_;
    info.reconnects = reconnects_;
    info.session_recoveries = session_recoveries_;
    info.clientid_recoveries = clientid_recoveries_;
    info.stateid_recoveries = stateid_recoveries_;
    info.stateids_revoked = stateids_revoked_;
    info.sessions_created = budget_.created();
    if (budget_.stormed()) {
      info.session_storm = std::to_string(budget_.refused()) +
                           " new sessions held back: more than " +
                           std::to_string(budget_.per_minute()) + " in a minute";
    }
  }
  info.retries = retries_.load();
  info.slot_resyncs = slot_resyncs_.load();
  info.reruns_done = reruns_done_.load();
  {
    std::lock_guard<std::mutex> lock(calls_mu_);
    for (const auto& [name, n] : calls_) info.calls[std::string(name)] = n;
    for (const auto& [name, h] : latency_) {
      info.latency[std::string(name)] = Summarise(h.first, h.second);
    }
  }
  std::lock_guard<std::mutex> lock(conns_mu_);
  for (const Address& a : addresses_) {
    if (a.excluded()) info.excluded.push_back(a.endpoint);
    AddressInfo ai;
    ai.endpoint = a.endpoint;
    ai.role = AddressRoleName(a.role);
    ai.server_owner = a.owner;
    ai.server_scope = a.scope;
    ai.listed = a.listed;
    ai.answering = a.failures == 0;
    info.addresses.push_back(std::move(ai));
  }
  for (const Conn& c : conns_) {
    ConnectionInfo ci;
    ci.endpoint = c.endpoint;
    ci.up = c.rpc && c.rpc->alive();
    ci.draining = c.move_to >= 0;
    if (c.rpc) {
      ci.outstanding = c.rpc->outstanding();
      ci.bytes_sent = c.rpc->bytes_sent();
      ci.bytes_received = c.rpc->bytes_received();
    }
    info.connections.push_back(ci);
  }
  return info;
}

}  // namespace floatmount::nfs
