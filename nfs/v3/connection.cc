#include "nfs/v3/connection.h"

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "nfs/v3/convert.h"

namespace floatmount::nfs {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kPollMs = 100;
constexpr size_t kMaxGroups = 16;  // AUTH_SYS (RFC 5531 appendix A)
constexpr auto kMinReconnectDelay = std::chrono::milliseconds(100);
constexpr auto kMaxReconnectDelay = std::chrono::seconds(5);

// Runs libnfs's connect (TCP, then a NULL call of the program) to the end
// on this thread's private context.
struct ConnectWait {
  bool done = false;
  bool ok = false;
  std::string error;
};

void OnConnected(rpc_context*, int status, void* data, void* private_data) {
  auto* wait = static_cast<ConnectWait*>(private_data);
  wait->done = true;
  wait->ok = status == RPC_STATUS_SUCCESS;
  if (!wait->ok) wait->error = data != nullptr ? static_cast<const char*>(data) : "cancelled";
}

}  // namespace

Nfs3Connection::Nfs3Connection(int index, Endpoint endpoint, Nfs3ConnectionOptions options,
                               Hooks hooks)
    : index_(index),
      options_(std::move(options)),
      hooks_(std::move(hooks)),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      endpoint_(std::move(endpoint)),
      thread_([this] { Run(); }) {}

Nfs3Connection::~Nfs3Connection() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

Endpoint Nfs3Connection::endpoint() const {
  std::lock_guard<std::mutex> lock(mu_);
  return endpoint_;
}

std::string Nfs3Connection::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

ConnectionInfo Nfs3Connection::Info() const {
  ConnectionInfo info;
  std::lock_guard<std::mutex> lock(mu_);
  info.endpoint = endpoint_;
  info.up = up_.load();
  info.draining = move_to_.has_value();
  info.outstanding = outstanding_.load();
  info.bytes_sent = bytes_sent_;
  info.bytes_received = bytes_received_;
  return info;
}

void Nfs3Connection::Submit(std::shared_ptr<Nfs3Call> call) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stop_) {
      queue_.push_back(std::move(call));
      call = nullptr;
    }
  }
  if (call) {
    call->on_error(Status::Shutdown("the mount is being stopped"));
    return;
  }
  if (sleeping_.exchange(false)) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
}

void Nfs3Connection::MoveTo(const Endpoint& endpoint) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (endpoint == endpoint_ && !move_to_) return;
    move_to_ = endpoint;
  }
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void Nfs3Connection::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

void Nfs3Connection::WaitBeforeReconnect(std::chrono::milliseconds delay) {
  std::unique_lock<std::mutex> lock(mu_);
  stop_cv_.wait_for(lock, delay, [this] { return stop_ || move_to_.has_value(); });
}

bool Nfs3Connection::Connect(const Endpoint& endpoint) {
  rpc_ = rpc_init_context();
  if (rpc_ == nullptr) return false;
  std::random_device rd;
  rpc_set_next_xid(rpc_, rd());  // distinct xids across the pool's contexts
  ConnectWait wait;
  if (rpc_connect_port_async(rpc_, endpoint.address.c_str(), endpoint.port, int(options_.program),
                             int(options_.version), OnConnected, &wait) != 0) {
    wait.error = v3::RpcError(rpc_);
    wait.done = true;
  }
  const auto deadline = Clock::now() + options_.connect_timeout;
  while (!wait.done && Clock::now() < deadline) {
    pollfd pfd{rpc_get_fd(rpc_), static_cast<short>(rpc_which_events(rpc_)), 0};
    if (poll(&pfd, 1, kPollMs) < 0 && errno != EINTR) break;
    if (rpc_service(rpc_, pfd.revents) < 0) {
      if (!wait.done) wait.error = v3::RpcError(rpc_);
      break;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) break;
  }
  if (!wait.ok) {
    if (wait.error.empty()) wait.error = "no answer within the connect timeout";
    spdlog::debug("NFSv3 connection {} to {}: {}", index_, endpoint.ToString(), wait.error);
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_error_ = wait.error;
    }
    rpc_destroy_context(rpc_);  // the connect callback may run (cancelled) here
    rpc_ = nullptr;
    return false;
  }
  last_progress_ = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  last_error_.clear();
  return true;
}

void Nfs3Connection::Issue(std::shared_ptr<Nfs3Call> call) {
  uint32_t groups[kMaxGroups];
  const size_t n = std::min(call->cred.groups.size(), kMaxGroups);
  std::copy_n(call->cred.groups.begin(), n, groups);
  rpc_set_auth(rpc_, libnfs_authunix_create(options_.machine_name.c_str(), call->cred.uid,
                                            call->cred.gid, uint32_t(n), groups));
  auto send = std::make_unique<Send>(Send{this, call});
  Send* key = send.get();
  ++call->sends;
  if (call->issue(rpc_, &Nfs3Connection::OnReply, key) != 0) {
    const std::string why = v3::RpcError(rpc_);
    call->on_error(Status::Internal(std::string(call->proc) + ": " + why));
    return;
  }
  if (in_flight_.empty()) last_progress_ = Clock::now();
  in_flight_.emplace(key, std::move(send));
  outstanding_.store(in_flight_.size());
  std::lock_guard<std::mutex> lock(mu_);
  bytes_sent_ += call->bytes_out;
}

void Nfs3Connection::IssueQueued() {
  std::deque<std::shared_ptr<Nfs3Call>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(queue_);
  }
  for (auto& call : batch) Issue(std::move(call));
}

void Nfs3Connection::Finish(Send* send) { in_flight_.erase(send); }

void Nfs3Connection::OnReply(rpc_context*, int status, void* data, void* private_data) {
  auto* send = static_cast<Send*>(private_data);
  Nfs3Connection* self = send->conn;
  if (self->in_flight_.count(send) == 0) return;  // already resent
  self->last_progress_ = Clock::now();
  if (status == RPC_STATUS_SUCCESS) {
    std::shared_ptr<Nfs3Call> call = send->call;
    self->Finish(send);
    self->outstanding_.store(self->in_flight_.size());
    call->on_reply(data);  // sets bytes_in for a READ
    std::lock_guard<std::mutex> lock(self->mu_);
    self->bytes_received_ += call->bytes_in;
    return;
  }
  if (self->tearing_down_ || status == RPC_STATUS_CANCEL) return;  // Teardown resends it
  // An error of this call (the server refused it) or of the connection:
  // rpc_service's result tells, once the round is over.
  self->errored_.emplace_back(send, data != nullptr ? static_cast<const char*>(data)
                                                    : "RPC error");
}

void Nfs3Connection::Teardown(const std::string& why) {
  if (rpc_ != nullptr) {
    tearing_down_ = true;
    rpc_destroy_context(rpc_);  // cancels what is outstanding
    tearing_down_ = false;
    rpc_ = nullptr;
  }
  errored_.clear();
  up_.store(false);
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping = stop_;
  }
  auto lost = std::move(in_flight_);
  in_flight_.clear();
  outstanding_.store(0);
  if (!lost.empty()) {
    spdlog::debug("NFSv3 connection {}: {}; {} calls to send again", index_, why, lost.size());
  }
  for (auto& [key, send] : lost) {
    if (stopping) {
      send->call->on_error(Status::Shutdown("the mount is being stopped"));
    } else {
      hooks_.resend(send->call);
    }
  }
}

void Nfs3Connection::Run() {
  pthread_setname_np(pthread_self(), "fm-nfs3-io");
  auto delay = kMinReconnectDelay;
  for (;;) {
    Endpoint target;
    bool move_now = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
      if (move_to_ && in_flight_.empty()) {
        endpoint_ = *move_to_;
        move_to_.reset();
        move_now = rpc_ != nullptr;
      }
      target = endpoint_;
    }
    if (move_now) Teardown("moving to " + target.ToString());
    if (rpc_ == nullptr) {
      if (!Connect(target)) {
        hooks_.state_changed(this, false);
        // What waits here goes back to the pool: another connection may be
        // up, and a soft mount's calls must time out while none is.
        std::deque<std::shared_ptr<Nfs3Call>> waiting;
        {
          std::lock_guard<std::mutex> lock(mu_);
          waiting.swap(queue_);
        }
        for (auto& call : waiting) hooks_.resend(std::move(call));
        WaitBeforeReconnect(delay);
        delay = std::min<std::chrono::milliseconds>(delay * 2, kMaxReconnectDelay);
        continue;
      }
      delay = kMinReconnectDelay;
      up_.store(true);
      hooks_.state_changed(this, true);
    }
    IssueQueued();

    pollfd fds[2] = {{rpc_get_fd(rpc_), static_cast<short>(rpc_which_events(rpc_)), 0},
                     {wake_fd_, POLLIN, 0}};
    sleeping_.store(true);
    int timeout = kPollMs;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!queue_.empty() || stop_) timeout = 0;
    }
    const int ready = poll(fds, 2, timeout);
    sleeping_.store(false);
    if (ready < 0 && errno != EINTR) {
      Teardown(std::string("poll: ") + std::strerror(errno));
      continue;
    }
    if (fds[1].revents & POLLIN) {
      uint64_t n;
      (void)!read(wake_fd_, &n, sizeof(n));
    }
    const int rc = rpc_service(rpc_, fds[0].revents);
    if (rc < 0) {
      const std::string why = v3::RpcError(rpc_);
      Teardown("connection lost (" + why + ")");
      reconnects_.fetch_add(1);
      continue;
    }
    // Errors reported while the connection stays up are the calls' own.
    auto errored = std::move(errored_);
    errored_.clear();
    for (auto& [send, why] : errored) {
      auto it = in_flight_.find(send);
      if (it == in_flight_.end()) continue;
      std::shared_ptr<Nfs3Call> call = it->second->call;
      in_flight_.erase(it);
      call->on_error(Status::Rpc(std::string(call->proc) + ": " + why));
    }
    outstanding_.store(in_flight_.size());
    if (!in_flight_.empty() && Clock::now() - last_progress_ > options_.timeo) {
      spdlog::warn("NFSv3 server {} has not answered for {} s; reconnecting",
                   target.ToString(),
                   std::chrono::duration_cast<std::chrono::seconds>(options_.timeo).count());
      Teardown("no reply within timeo");
      reconnects_.fetch_add(1);
      continue;
    }
  }
  Teardown("stopped");
  std::deque<std::shared_ptr<Nfs3Call>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(queue_);
  }
  for (auto& call : left) call->on_error(Status::Shutdown("the mount is being stopped"));
}

}  // namespace floatmount::nfs
