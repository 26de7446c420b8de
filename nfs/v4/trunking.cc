// Trunking by the server owner, and the session bound; see
// nfs/v4/trunking.h. The Nfs41Engine members here decide, per new
// connection, whether it joins the session.
#include "nfs/v4/trunking.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "nfs/v4/engine.h"
#include "nfs/v4/protocol.h"

namespace floatmount::nfs {

using namespace v4;  // NOLINT: RFC names read best unqualified here

namespace {

std::string PrintableOwner(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  bool printable = true;
  for (unsigned char c : bytes) printable &= c >= 0x20 && c <= 0x7e;
  if (printable) return bytes;
  std::string hex;
  for (unsigned char b : bytes) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

bool IsSessionGone(const Status& s) {
  return s.IsNfs(NFS4ERR_BADSESSION) || s.IsNfs(NFS4ERR_DEADSESSION) ||
         s.IsNfs(NFS4ERR_STALE_CLIENTID) || s.IsNfs(NFS4ERR_EXPIRED);
}

}  // namespace

const char* AddressRoleName(AddressRole role) {
  switch (role) {
    case AddressRole::kUnknown:
      return "unknown";
    case AddressRole::kSession:
      return "session";
    case AddressRole::kClientId:
      return "client-id";
    case AddressRole::kOtherServer:
      return "other-server";
  }
  return "unknown";
}

AddressRole ClassifyExchangeId(const ExchangeIdRes& primary, const ExchangeIdRes& answer) {
  // An unconfirmed record is one the server made just now: it does not
  // know our client ID, whatever number it gave the new one (RFC 8881
  // 18.35.4). A server restarted within the second of its last start may
  // hand out the same numbers again.
  if ((answer.flags & EXCHGID4_FLAG_CONFIRMED_R) == 0) return AddressRole::kOtherServer;
  if (answer.server_owner_major != primary.server_owner_major ||
      answer.server_scope != primary.server_scope || answer.clientid != primary.clientid) {
    return AddressRole::kOtherServer;
  }
  if (answer.server_owner_minor != primary.server_owner_minor) return AddressRole::kClientId;
  return AddressRole::kSession;
}

bool IsPendingRecord(const ExchangeIdRes& primary, const ExchangeIdRes& answer) {
  return (answer.flags & EXCHGID4_FLAG_CONFIRMED_R) == 0 &&
         answer.server_owner_major == primary.server_owner_major &&
         answer.server_scope == primary.server_scope && answer.clientid == primary.clientid;
}

std::string DescribeServerOwner(const ExchangeIdRes& answer) {
  return PrintableOwner(answer.server_owner_major) + " minor " +
         std::to_string(answer.server_owner_minor);
}

SessionBudget::SessionBudget(uint32_t per_minute) : per_minute_(std::max<uint32_t>(1, per_minute)) {}

bool SessionBudget::Allow(Clock::time_point now) {
  while (!recent_.empty() && now - recent_.front() >= kWindow) recent_.pop_front();
  if (recent_.size() < per_minute_) return true;
  ++refused_;
  if (!in_storm_) {
    in_storm_ = true;
    storm_start_ = true;
  }
  return false;
}

void SessionBudget::Record(Clock::time_point now) {
  recent_.push_back(now);
  ++created_;
  in_storm_ = false;
}

bool SessionBudget::TakeStormStart() { return std::exchange(storm_start_, false); }

// Needs mu_.
bool Nfs41Engine::SessionAllowedLocked() {
  if (budget_.Allow(std::chrono::steady_clock::now())) return true;
  if (budget_.TakeStormStart()) {
    spdlog::error(
        "session storm: {} sessions created within a minute; new sessions wait (this is a bug, "
        "please report it with the log)",
        budget_.per_minute());
  }
  return false;
}

// Needs mu_.
ExchangeIdRes Nfs41Engine::OurRecordLocked() const {
  ExchangeIdRes ours = server_;
  ours.clientid = clientid_;
  return ours;
}

// Needs conns_mu_. A connection that joined the session is alive.
bool Nfs41Engine::PrimaryAnswersLocked() const {
  for (const Conn& c : conns_) {
    if (c.rpc && c.rpc->alive() && c.address >= 0 &&
        addresses_[size_t(c.address)].role == AddressRole::kSession) {
      return true;
    }
  }
  return false;
}

// Needs conns_mu_. Records what EXCHANGE_ID said about `a`; an address that
// is kept out of the session is logged the first time it is.
void Nfs41Engine::NoteAddressRoleLocked(size_t a, AddressRole role, const ExchangeIdRes& answer) {
  Address& x = addresses_[a];
  x.role = role;
  x.owner = DescribeServerOwner(answer);
  x.scope = PrintableOwner(answer.server_scope);
  if (!x.excluded() || x.logged == role) return;
  x.logged = role;
  if (role == AddressRole::kClientId) {
    spdlog::warn("{} leads to another node of the server that does not share this session; "
                 "not using it",
                 x.endpoint.ToString());
  } else {
    spdlog::warn("{} leads to another server (its own client and session state); not using it",
                 x.endpoint.ToString());
  }
  spdlog::debug("{}: server owner {}, scope {}, client ID {:016x}", x.endpoint.ToString(), x.owner,
                x.scope, answer.clientid);
}

// Needs conns_mu_. After a new session or client ID, or once no connection
// to the session is left, every address is asked again.
void Nfs41Engine::ForgetAddressRolesLocked() {
  for (Address& a : addresses_) a.role = AddressRole::kUnknown;
}

Status Nfs41Engine::SetUpConnection(size_t index) {
  Endpoint endpoint;
  {
    std::lock_guard<std::mutex> lock(conns_mu_);
    endpoint = conns_[index].endpoint;
  }
  auto conn = Connect(endpoint);
  if (!conn.ok()) return conn.status();
  // RFC 8881 2.10.5: who answers at this address now (a floating IP may
  // have moved since the last connection to it). The answer is judged
  // against the client ID and session of the moment it was asked: if a
  // recovery made others meanwhile, it may describe the record before
  // (unconfirmed, or another client ID) and is asked again. Judged against
  // the new ones, it reported the client ID lost again after a recovery,
  // or marked our only address as another server's, and the next pass
  // reclaimed what the last had reclaimed (LocksUnderRestartsTest).
  ExchangeIdRes answer;
  ExchangeIdRes primary;
  uint64_t gen = 0;
  bool session_works = false;
  bool recovering_clientid = false;
  for (int attempt = 0;; ++attempt) {
    uint64_t gen_asked, clientid_asked;
    {
      std::lock_guard<std::mutex> lock(mu_);
      gen_asked = session_gen_;
      clientid_asked = clientid_;
    }
    Status s = ExchangeId(conn->get(), &answer);
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    // Unmounting: the answer may be a client ID made anew after
    // DESTROY_CLIENTID. Nothing to join or recover.
    if (shutdown_ || unmounting_) return Status::Shutdown("unmounting");
    const bool moved_on = session_gen_ != gen_asked || clientid_ != clientid_asked;
    if (moved_on && attempt < 3) continue;
    primary = OurRecordLocked();
    gen = gen_asked;  // a loss it reports is of the session of the question
    session_works = ready_ && recovery_ == Recovery::kNone;
    recovering_clientid = recovery_ == Recovery::kClientId;
    break;
  }
  Status s = Status::Ok();
  if (recovering_clientid && IsPendingRecord(primary, answer)) {
    // The record a client-ID recovery is confirming right now (its
    // EXCHANGE_ID came first, its CREATE_SESSION not yet): ours, not
    // another server's, and no new loss. The recovery binds the connection.
    std::lock_guard<std::mutex> lock(conns_mu_);
    conns_[index].rpc = std::move(conn).value();
    conns_[index].failures = 0;
    return Status::Ok();
  }
  const AddressRole role = ClassifyExchangeId(primary, answer);
  bool change = false;  // no connection to our server is left: a server change
  {
    std::lock_guard<std::mutex> lock(conns_mu_);
    const size_t a = size_t(AddressIndexLocked(endpoint));
    if (role != AddressRole::kSession) {
      if (PrimaryAnswersLocked()) {
        NoteAddressRoleLocked(a, role, answer);
        return Status::InvalidArgument(endpoint.ToString() + " is another server (" +
                                       AddressRoleName(role) + ")");
      }
      // Not the session's (yet): recovery decides (RunRecovery).
      addresses_[a].role = AddressRole::kUnknown;
      change = true;
    }
  }
  if (change) {
    // Our server restarted, or its addresses now lead to another one: the
    // client ID is made anew there and the state recovered as after a
    // restart (nfs/v4/session.cc RunRecovery). The connection is kept
    // unbound: recovery binds it.
    bool first;
    {
      std::lock_guard<std::mutex> lock(mu_);
      first = recovery_ != Recovery::kClientId;
    }
    if (first) {
      spdlog::warn("{} answers with another client ID and no connection to our session is left; "
                   "recovering state against it",
                   endpoint.ToString());
    }
    RequestRecovery(Recovery::kClientId, gen);
  } else {
    s = BindConnection(conn->get());
    if (IsSessionGone(s)) {
      std::lock_guard<std::mutex> lock(conns_mu_);
      if (session_works && PrimaryAnswersLocked()) {
        // The session serves our other connections: this node knows our
        // client but not the session. Not a reason to recover.
        NoteAddressRoleLocked(size_t(AddressIndexLocked(endpoint)), AddressRole::kClientId,
                              answer);
        return Status::InvalidArgument(endpoint.ToString() + " does not share the session");
      }
    }
    if (IsSessionGone(s)) {
      // Our server lost the session (it restarted). Keep the connection:
      // it is how recovery reaches the server to make a new one.
      const bool client_lost = s.IsNfs(NFS4ERR_STALE_CLIENTID) || s.IsNfs(NFS4ERR_EXPIRED);
      RequestRecovery(client_lost ? Recovery::kClientId : Recovery::kSession, gen);
    } else if (!s.ok()) {
      return s;
    }
  }
  std::lock_guard<std::mutex> lock(conns_mu_);
  if (!change) {
    NoteAddressRoleLocked(size_t(AddressIndexLocked(endpoint)), AddressRole::kSession, answer);
  }
  conns_[index].rpc = std::move(conn).value();
  conns_[index].failures = 0;
  return Status::Ok();
}

}  // namespace floatmount::nfs
