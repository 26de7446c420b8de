// Nfs3Client: mount, the connection pool, resends and shutdown. The NFSv3
// operations themselves are in nfs/v3/client_ops.cc.
#include "nfs/v3/client.h"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <future>

#include "nfs/v3/mount.h"
#include "nfs/placement.h"

namespace floatmount::nfs {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kAuthSys = 1;
// An address whose connections all failed is tried again after this long
// (sooner if DNS hands it out again).
constexpr auto kRetryDownAddress = std::chrono::seconds(10);
constexpr auto kUnmountTimeout = std::chrono::seconds(2);

std::string HostName() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return host;
}

}  // namespace

Nfs3Client::Nfs3Client(const Nfs3Options& options) : options_([&] {
  Nfs3Options o = options;
  if (o.machine_name.empty()) o.machine_name = HostName();
  o.nconnect = std::clamp(o.nconnect, 1, 64);
  return o;
}()) {}

Nfs3Client::~Nfs3Client() { Shutdown(); }

Result<std::unique_ptr<Nfs3Client>> Nfs3Client::Mount(const Nfs3Options& options) {
  if (options.endpoints.empty()) return Status::InvalidArgument("no server address");
  std::unique_ptr<Nfs3Client> client(new Nfs3Client(options));
  const Nfs3Options& o = client->options_;

  // MOUNT, on the first address that answers.
  Result<v3::MountReply> mounted = Status::Transport("no address tried");
  for (const Endpoint& ep : o.endpoints) {
    mounted = v3::MountExport(ep.address, o.mount_port, o.export_path, o.connect_timeout,
                              o.machine_name);
    if (mounted.ok() || mounted.status().kind() != Status::Kind::kTransport) break;
  }
  if (!mounted.ok()) return mounted.status();
  const auto& flavors = mounted->auth_flavors;
  if (!flavors.empty() && std::find(flavors.begin(), flavors.end(), kAuthSys) == flavors.end()) {
    return Status::Nfs(10011 /* NFS4ERR_WRONGSEC */,
                       "the export does not take AUTH_SYS (sec=sys), the flavor floatmount sends");
  }
  client->root_ = mounted->root;

  // The connections, spread over the addresses.
  {
    std::lock_guard<std::mutex> lock(client->mu_);
    client->endpoints_ = o.endpoints;
    client->usable_.assign(o.endpoints.size(), true);
    client->down_since_.assign(o.endpoints.size(), Clock::time_point{});
    client->placement_ = PlaceConnections(std::vector<int>(size_t(o.nconnect), -1),
                                          client->usable_, o.max_connections_per_address);
  }
  Nfs3ConnectionOptions conn_options;
  conn_options.timeo = o.timeo;
  conn_options.connect_timeout = o.connect_timeout;
  conn_options.machine_name = o.machine_name;
  Nfs3Client* self = client.get();
  Nfs3Connection::Hooks hooks;
  hooks.resend = [self](std::shared_ptr<Nfs3Call> call) { self->Resend(std::move(call)); };
  hooks.state_changed = [self](Nfs3Connection* conn, bool up) { self->OnConnectionState(conn, up); };
  {
    // Under mu_: the first connections report their state (and read
    // connections_) while the later ones are made.
    std::lock_guard<std::mutex> lock(client->mu_);
    for (int i = 0; i < o.nconnect; ++i) {
      const int a = client->placement_[size_t(i)];
      const Endpoint& ep = o.endpoints[size_t(std::max(a, 0))];
      client->connections_.push_back(
          std::make_unique<Nfs3Connection>(i, ep, conn_options, hooks));
    }
  }
  const auto deadline = Clock::now() + o.connect_timeout + std::chrono::seconds(1);
  auto any_up = [&] {
    return std::any_of(client->connections_.begin(), client->connections_.end(),
                       [](const auto& c) { return c->up(); });
  };
  while (!any_up() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!any_up()) {
    std::string why = client->connections_.front()->last_error();
    if (why.empty()) why = "no answer within the connect timeout";
    return Status::Transport("cannot connect to the NFSv3 service at " +
                             o.endpoints.front().ToString() + ": " + why);
  }
  client->maint_ = std::thread([self] { self->Maintain(); });

  // FSINFO: the server's transfer limits, and proof that the root handle works.
  std::promise<Status> fsinfo;
  client->FsInfo(Credentials{}, [&](Status s) { fsinfo.set_value(std::move(s)); });
  if (Status s = fsinfo.get_future().get(); !s.ok()) return s;
  spdlog::debug("NFSv3 mount of {}: rsize {}, wsize {}", o.export_path, client->rsize_,
                client->wsize_);
  return client;
}

void Nfs3Client::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  maint_cv_.notify_all();
  if (maint_.joinable()) maint_.join();
  for (auto& conn : connections_) conn->Stop();
  std::multimap<Clock::time_point, std::shared_ptr<Nfs3Call>> delayed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    delayed.swap(delayed_);
  }
  for (auto& [when, call] : delayed) call->on_error(Status::Shutdown("the mount is being stopped"));
  if (!root_.empty() && !options_.endpoints.empty()) {
    v3::UnmountExport(options_.endpoints.front().address, options_.mount_port,
                      options_.export_path, kUnmountTimeout, options_.machine_name);
  }
}

ServerInfo Nfs3Client::info() const {
  ServerInfo info;
  info.protocol = "3";
  info.impl_name = "NFSv3 (libnfs)";
  info.rsize = rsize_;
  info.wsize = wsize_;
  for (const auto& conn : connections_) {
    info.connections.push_back(conn->Info());
    info.reconnects += conn->reconnects();
  }
  std::lock_guard<std::mutex> lock(mu_);
  info.retries = retries_;
  return info;
}

void Nfs3Client::UpdateEndpoints(const std::vector<Endpoint>& endpoints) {
  if (endpoints.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (endpoints == endpoints_) return;
  // Keep what is known of addresses that stay; new ones start usable.
  std::vector<bool> usable(endpoints.size(), true);
  std::vector<Clock::time_point> down_since(endpoints.size());
  std::vector<int> remap(endpoints_.size(), -1);
  for (size_t i = 0; i < endpoints.size(); ++i) {
    for (size_t j = 0; j < endpoints_.size(); ++j) {
      if (endpoints[i] == endpoints_[j]) {
        usable[i] = usable_[j];
        down_since[i] = down_since_[j];
        remap[j] = int(i);
      }
    }
  }
  for (int& a : placement_) a = a >= 0 ? remap[size_t(a)] : -1;
  endpoints_ = endpoints;
  usable_ = std::move(usable);
  down_since_ = std::move(down_since);
  Place();
}

void Nfs3Client::Place() {
  std::vector<int> next = PlaceConnections(placement_, usable_, options_.max_connections_per_address);
  for (size_t i = 0; i < connections_.size() && i < next.size(); ++i) {
    if (next[i] >= 0 && next[i] != placement_[i]) {
      connections_[i]->MoveTo(endpoints_[size_t(next[i])]);
    }
  }
  placement_ = std::move(next);
}

void Nfs3Client::OnConnectionState(Nfs3Connection* conn, bool up) {
  const Endpoint ep = conn->endpoint();
  std::function<void(const Endpoint&)> notify;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find(endpoints_.begin(), endpoints_.end(), ep);
    if (it == endpoints_.end()) return;
    const size_t a = size_t(it - endpoints_.begin());
    if (up) {
      usable_[a] = true;
      return;
    }
    // Down only if no connection to it lives; one failed attempt on a busy
    // address is not a verdict on it.
    for (const auto& c : connections_) {
      if (c->up() && c->endpoint() == ep) return;
    }
    if (!usable_[a]) return;
    usable_[a] = false;
    down_since_[a] = Clock::now();
    spdlog::warn("NFSv3 server address {} does not answer; using the others", ep.ToString());
    Place();
    notify = options_.on_address_down;
  }
  if (notify) notify(ep);
}

Nfs3Connection* Nfs3Client::Pick() {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t n = connections_.size();
  const size_t start = next_++ % n;
  Nfs3Connection* best = nullptr;
  for (size_t i = 0; i < n; ++i) {
    Nfs3Connection* c = connections_[(start + i) % n].get();
    if (!c->up()) continue;
    if (best == nullptr || c->outstanding() < best->outstanding()) best = c;
  }
  return best != nullptr ? best : connections_[start].get();
}

void Nfs3Client::Send(std::shared_ptr<Nfs3Call> call) { Pick()->Submit(std::move(call)); }

void Nfs3Client::Resend(std::shared_ptr<Nfs3Call> call) {
  if (options_.soft &&
      Clock::now() - call->started > options_.timeo * std::max(1, options_.retrans)) {
    call->on_error(Status::TimedOut(std::string(call->proc) + ": no reply from the server (soft mount)"));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++retries_;
    if (stopping_) {
      call->on_error(Status::Shutdown("the mount is being stopped"));
      return;
    }
  }
  Send(std::move(call));
}

void Nfs3Client::SendLater(std::shared_ptr<Nfs3Call> call, std::chrono::milliseconds delay) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      delayed_.emplace(Clock::now() + delay, std::move(call));
      maint_cv_.notify_all();
      return;
    }
  }
  call->on_error(Status::Shutdown("the mount is being stopped"));
}

void Nfs3Client::Maintain() {
  pthread_setname_np(pthread_self(), "fm-nfs3-maint");
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    auto wake = Clock::now() + std::chrono::seconds(1);
    if (!delayed_.empty()) wake = std::min(wake, delayed_.begin()->first);
    maint_cv_.wait_until(lock, wake);
    if (stopping_) break;
    const auto now = Clock::now();
    std::vector<std::shared_ptr<Nfs3Call>> due;
    while (!delayed_.empty() && delayed_.begin()->first <= now) {
      due.push_back(std::move(delayed_.begin()->second));
      delayed_.erase(delayed_.begin());
    }
    bool replace = false;
    for (size_t a = 0; a < usable_.size(); ++a) {
      if (!usable_[a] && now - down_since_[a] > kRetryDownAddress) {
        usable_[a] = true;  // try it again; a failed connect marks it down anew
        replace = true;
      }
    }
    if (replace) Place();
    lock.unlock();
    for (auto& call : due) Resend(std::move(call));
    lock.lock();
  }
}

}  // namespace floatmount::nfs
