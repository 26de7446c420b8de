// Nfs41Engine: the connections over the server's addresses (see
// nfs/v4/engine.h). Each of the `nconnect` connections is placed on one
// address (placement.h); the maintenance thread replaces connections that
// died or went silent, probes addresses that stopped answering, and moves
// connections when an address fails, returns, appears or leaves DNS:
//   - a connection whose address failed is reconnected elsewhere at once
//     (its unanswered calls were already resent on the others);
//   - a live connection that should move (its address left DNS, or another
//     address returned and takes back its share) first drains: it gets no
//     new calls and is closed once its calls are answered.
// An address counts as failed when a connect to it fails while no
// connection to it is alive; it is probed (a connect and the NULL
// procedure: an address may accept connections and answer nothing) with
// back-off, and is usable again once the server answers there.
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "nfs/v4/engine.h"
#include "nfs/placement.h"

namespace floatmount::nfs {
namespace {

std::chrono::milliseconds Growing(int failures, std::chrono::milliseconds first,
                                  std::chrono::milliseconds most) {
  return std::min(most, first * (1 << std::min(failures, 6)));
}

}  // namespace

int Nfs41Engine::AddressIndexLocked(const Endpoint& endpoint) {
  for (size_t a = 0; a < addresses_.size(); ++a) {
    if (addresses_[a].endpoint == endpoint) return int(a);
  }
  addresses_.emplace_back();
  addresses_.back().endpoint = endpoint;
  return int(addresses_.size() - 1);
}

void Nfs41Engine::AssignLocked(size_t i, int a) {
  Conn& c = conns_[i];
  c.address = a;
  c.move_to = -1;
  if (a >= 0) c.endpoint = addresses_[size_t(a)].endpoint;
}

void Nfs41Engine::PlaceLocked() {
  std::vector<int> current(conns_.size());
  for (size_t i = 0; i < conns_.size(); ++i) {
    current[i] = conns_[i].move_to >= 0 ? conns_[i].move_to : conns_[i].address;
  }
  std::vector<bool> usable(addresses_.size());
  for (size_t a = 0; a < addresses_.size(); ++a) usable[a] = addresses_[a].usable();
  const std::vector<int> want =
      PlaceConnections(current, usable, options_.max_connections_per_address);
  for (size_t i = 0; i < conns_.size(); ++i) {
    if (want[i] == current[i]) continue;
    Conn& c = conns_[i];
    if (c.move_to >= 0 && want[i] == c.address) {
      c.move_to = -1;  // it may stay after all
    } else if (c.rpc && c.rpc->alive() && want[i] >= 0) {
      c.move_to = want[i];  // drain first (MaintainConnections closes it when idle)
    } else if (!(c.rpc && c.rpc->alive())) {
      AssignLocked(i, want[i]);
      c.next_attempt = std::chrono::steady_clock::now();
    }
  }
}

void Nfs41Engine::NoteConnectFailureLocked(size_t i) {
  const auto now = std::chrono::steady_clock::now();
  Conn& c = conns_[i];
  ++c.failures;
  c.next_attempt = now + Growing(c.failures, std::chrono::milliseconds(100),
                                 std::chrono::milliseconds(5000));
  if (c.address < 0) return;
  if (addresses_[size_t(c.address)].excluded()) return;  // it answered: another server
  for (const Conn& other : conns_) {
    if (other.address == c.address && other.rpc && other.rpc->alive()) return;  // it answers
  }
  Address& a = addresses_[size_t(c.address)];
  if (a.failures++ == 0) {
    spdlog::warn("{} does not answer; moving its connections to the server's other addresses",
                 a.endpoint.ToString());
    if (options_.on_address_down) options_.on_address_down(a.endpoint);
  }
  a.retry_at = now + Growing(a.failures, std::chrono::milliseconds(500),
                             std::chrono::milliseconds(5000));
}

void Nfs41Engine::ProbeLocked(size_t index) {
  Address& a = addresses_[index];
  if (a.prober.joinable()) a.prober.join();  // finished: `probing` was false
  a.probing = true;
  a.prober = std::thread([this, index, endpoint = a.endpoint] {
    pthread_setname_np(pthread_self(), "fm-nfs-probe");
    auto conn = Connect(endpoint);
    Status answered = conn.status();
    if (conn.ok()) {
      answered = Ping(conn->get());
      (*conn)->Close();
    }
    std::lock_guard<std::mutex> lock(conns_mu_);
    Address& x = addresses_[index];
    x.probing = false;
    if (answered.ok()) {
      spdlog::info("{} answers again", x.endpoint.ToString());
      x.failures = 0;
    } else {
      ++x.failures;
      x.retry_at = std::chrono::steady_clock::now() +
                   Growing(x.failures, std::chrono::milliseconds(500), std::chrono::milliseconds(5000));
    }
    maint_cv_.notify_all();
  });
}

void Nfs41Engine::MaintainConnections() {
  const auto now = std::chrono::steady_clock::now();
  // Destroyed after conns_mu_ is released (declared before the lock): a
  // connection's destructor joins its receiver, which may be finishing a
  // reply whose completion sends the next call and so picks a connection
  // (conns_mu_). Destroyed under the lock, that was a deadlock.
  std::vector<std::shared_ptr<RpcConnection>> dead;
  std::lock_guard<std::mutex> lock(conns_mu_);
  for (size_t i = 0; i < conns_.size(); ++i) {
    Conn& c = conns_[i];
    if (c.rpc && !c.rpc->alive()) {
      graveyard_.push_back(std::move(c.rpc));
      c.rpc.reset();
      c.next_attempt = now;
    }
    if (c.rpc && c.rpc->outstanding() > 0 && now - c.rpc->last_receive() > options_.timeo) {
      spdlog::warn("{} has not answered for {} ms; reconnecting", c.endpoint.ToString(),
                   options_.timeo.count());
      c.rpc->Close();
    }
    if (c.move_to >= 0 && !c.connecting && (!c.rpc || c.rpc->outstanding() == 0)) {
      if (c.rpc) {
        c.rpc->Close();
        graveyard_.push_back(std::move(c.rpc));
        c.rpc.reset();
      }
      AssignLocked(i, c.move_to);
      c.next_attempt = now;
    }
  }
  for (size_t a = 0; a < addresses_.size(); ++a) {
    const Address& x = addresses_[a];
    if (x.listed && !x.excluded() && x.failures > 0 && !x.probing && now >= x.retry_at) {
      ProbeLocked(a);
    }
  }
  // The session's addresses all fail and only other servers' remain: ask
  // those again. One that answers is then a server change (trunking.cc).
  if (!PrimaryAnswersLocked() &&
      std::none_of(addresses_.begin(), addresses_.end(), [](const Address& x) { return x.usable(); })) {
    bool any = false;
    for (Address& x : addresses_) {
      if (x.listed && x.excluded()) {
        x.role = AddressRole::kUnknown;
        any = true;
      }
    }
    if (any) spdlog::warn("the server's addresses do not answer; trying the other servers' addresses");
  }
  PlaceLocked();
  for (size_t i = 0; i < conns_.size(); ++i) {
    Conn& c = conns_[i];
    if (c.rpc || c.connecting || c.address < 0 || now < c.next_attempt) continue;
    if (c.connector.joinable()) c.connector.join();
    c.connecting = true;
    c.connector = std::thread([this, i] {
      pthread_setname_np(pthread_self(), "fm-nfs-conn");
      bool ready;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ready = !shutdown_ && !unmounting_;
      }
      Status s = ready ? SetUpConnection(i) : Status::Shutdown("shutting down");
      std::lock_guard<std::mutex> lock(conns_mu_);
      Conn& c = conns_[i];
      c.connecting = false;
      if (!s.ok()) {
        if (s.kind() != Status::Kind::kShutdown) NoteConnectFailureLocked(i);
        spdlog::debug("connecting to {} failed: {}", c.endpoint.ToString(), s.ToString());
      } else {
        spdlog::debug("connected to {}", c.endpoint.ToString());
      }
      maint_cv_.notify_all();
    });
  }
  // Destroy dead connections once nobody else holds them (never on their
  // own threads, never under conns_mu_).
  std::erase_if(graveyard_, [&dead](std::shared_ptr<RpcConnection>& c) {
    if (c.use_count() != 1) return false;
    dead.push_back(std::move(c));
    return true;
  });
}

void Nfs41Engine::UpdateEndpoints(const std::vector<Endpoint>& endpoints) {
  if (endpoints.empty()) return;  // keep what we have rather than nothing
  {
    std::lock_guard<std::mutex> lock(conns_mu_);
    for (Address& a : addresses_) {
      a.listed = std::find(endpoints.begin(), endpoints.end(), a.endpoint) != endpoints.end();
    }
    for (const Endpoint& ep : endpoints) AddressIndexLocked(ep);
    std::string list;
    for (const Endpoint& ep : endpoints) {
      if (!list.empty()) list += ' ';
      list += ep.ToString();
    }
    spdlog::info("server addresses: {}", list);
  }
  maint_cv_.notify_all();
}

// Connector and prober threads take conns_mu_: join them outside it.
void Nfs41Engine::JoinConnectionThreads() {
  for (size_t i = 0;; ++i) {
    std::thread t;
    {
      std::lock_guard<std::mutex> lock(conns_mu_);
      if (i >= conns_.size() + addresses_.size()) break;
      t = i < conns_.size() ? std::move(conns_[i].connector)
                            : std::move(addresses_[i - conns_.size()].prober);
    }
    if (t.joinable()) t.join();
  }
}

}  // namespace floatmount::nfs
