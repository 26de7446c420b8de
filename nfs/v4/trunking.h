// Trunking (RFC 8881 2.10.5): what an address's EXCHANGE_ID answer says
// about it, and a bound on how many sessions the engine may create.
//
// Every new connection, also a reconnect to an address seen before (a
// floating IP can move to another server node), first sends EXCHANGE_ID
// with this client's owner and verifier. Compared with the primary's answer
// (the one the session was made with):
//   - same so_major_id, so_minor_id, scope and client ID: session trunking,
//     the connection joins the session (BIND_CONN_TO_SESSION);
//   - same so_major_id, scope and client ID, another so_minor_id: client-ID
//     trunking. The node knows our client but not our session; the address
//     is kept out of the session (it could carry a session of its own; not
//     done yet);
//   - anything else (another owner or scope, a client ID the primary did
//     not give us, or a client record the server has not confirmed, made
//     anew by this EXCHANGE_ID): another server. The address is kept out of this mount,
//     and nothing it answers makes the engine recover its session or client
//     ID: a BADSESSION from another node says nothing about ours. Only when
//     no connection to the primary is left does such an answer mean the
//     server restarted or the address moved (a server change): then the
//     engine recovers its state against it (nfs/v4/trunking.cc).
//
// SessionBudget bounds CREATE_SESSION calls per minute, so that no bug
// (a loop between two nodes, a server that loses sessions) can make a
// session storm: once the bound is hit, new sessions wait for the window to
// slide, the storm is logged once and shown in status.
//
// Threads: ClassifyExchangeId is a pure function, any thread.
// SessionBudget is not thread-safe: the engine holds its mu_ around it.
// The engine's part (Nfs41Engine::SetUpConnection and helpers in
// nfs/v4/trunking.cc) runs on the connector threads ("fm-nfs-conn") and on
// the thread of Nfs41Engine::Start; it takes mu_ and conns_mu_, never both.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>

#include "nfs/v4/ops.h"

namespace floatmount::nfs {

enum class AddressRole {
  kUnknown,      // not asked yet (or asked again after a recovery)
  kSession,      // session trunking: joins the session
  kClientId,     // client-ID trunking: same client, not this session
  kOtherServer,  // another server: not part of this mount's state
};

// "unknown", "session", "client-id", "other-server" (status and logs).
const char* AddressRoleName(AddressRole role);

// What `answer` (EXCHANGE_ID on a new connection) says about its address,
// compared with `primary` (the answer the session was made with, its
// clientid the client ID in use now). RFC 8881 2.10.5.
AddressRole ClassifyExchangeId(const v4::ExchangeIdRes& primary, const v4::ExchangeIdRes& answer);
// True if `answer` is the unconfirmed record of `primary`'s client ID: the
// one a client-ID recovery made with its EXCHANGE_ID and has not yet
// confirmed with CREATE_SESSION. Only then is such an answer ours; at any
// other time an unconfirmed record is another server's (or a restarted
// one's that reused the number).
bool IsPendingRecord(const v4::ExchangeIdRes& primary, const v4::ExchangeIdRes& answer);

// "owner MAJOR minor N" in printable form (hex if binary), for status.
std::string DescribeServerOwner(const v4::ExchangeIdRes& answer);

class SessionBudget {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kWindow{60};

  // At most `per_minute` sessions in any 60 s (at least 1).
  explicit SessionBudget(uint32_t per_minute);

  // True if a session may be created at `now`; false (and counts a
  // refusal) if `per_minute` were created in the last 60 s.
  bool Allow(Clock::time_point now);
  // A session was created at `now`.
  void Record(Clock::time_point now);
  // True exactly once per storm: after the first refusal that follows a
  // creation, so that the caller logs each storm once.
  bool TakeStormStart();

  uint64_t created() const { return created_; }
  uint64_t refused() const { return refused_; }
  // Refused at least once: the status shows it as an error.
  bool stormed() const { return refused_ > 0; }
  uint32_t per_minute() const { return per_minute_; }

 private:
  const uint32_t per_minute_;
  std::deque<Clock::time_point> recent_;  // creations in the window, oldest first
  uint64_t created_ = 0;
  uint64_t refused_ = 0;
  bool in_storm_ = false;    // refused since the last success
  bool storm_start_ = false;  // a new storm not yet reported
};

}  // namespace floatmount::nfs
