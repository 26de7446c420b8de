#include "tests/fakes/faulty_client.h"

#include <condition_variable>
#include <functional>
#include <thread>
#include <utility>

namespace floatmount::fakes {

using nfs::Callback;
using nfs::Credentials;
using nfs::FileHandle;
using nfs::Status;

// Runs functions at their due time on one thread, in due order (ties in
// the order scheduled). After Shutdown, whatever was pending has run and
// Schedule runs its function inline.
class FaultyClient::Timer {
 public:
  using Clock = std::chrono::steady_clock;

  Timer() {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Timer() { Shutdown(); }

  void Schedule(std::chrono::microseconds delay, std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      if (!stopped_) {
        due_.emplace(std::make_pair(Clock::now() + delay, next_seq_++), std::move(fn));
        cv_.notify_one();
        return;
      }
    }
    fn();
  }

  // Runs everything pending now and joins the thread. Not from a callback.
  void Shutdown() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (true) {
      if (due_.empty()) {
        if (stopped_) return;
        cv_.wait(lock);
        continue;
      }
      auto first = due_.begin();
      if (!stopped_ && first->first.first > Clock::now()) {
        cv_.wait_until(lock, first->first.first);
        continue;
      }
      std::function<void()> fn = std::move(first->second);
      due_.erase(first);
      lock.unlock();
      fn();
      fn = nullptr;
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  // GUARDED_BY(mu_): (due time, sequence) -> function.
  std::map<std::pair<Clock::time_point, uint64_t>, std::function<void()>> due_;
  uint64_t next_seq_ = 0;  // GUARDED_BY(mu_)
  bool stopped_ = false;   // GUARDED_BY(mu_)
  std::thread thread_;
};

FaultyClient::FaultyClient(nfs::Client* inner, uint64_t seed)
    : inner_(inner), timer_(std::make_shared<Timer>()), random_(seed) {}

FaultyClient::~FaultyClient() { timer_->Shutdown(); }

void FaultyClient::FailNth(const std::string& op, uint64_t n, Status status, bool forward) {
  std::lock_guard lock(mu_);
  rules_.push_back(Rule{Rule::Kind::kNth, op, calls_[op] + n, 0, std::move(status), forward});
}

void FaultyClient::FailEvery(const std::string& op, Status status, bool forward) {
  std::lock_guard lock(mu_);
  rules_.push_back(Rule{Rule::Kind::kEvery, op, 0, 0, std::move(status), forward});
}

void FaultyClient::FailWithProbability(const std::string& op, double p, Status status,
                                       bool forward) {
  std::lock_guard lock(mu_);
  rules_.push_back(Rule{Rule::Kind::kProbability, op, 0, p, std::move(status), forward});
}

void FaultyClient::SetDelay(const std::string& op, std::chrono::microseconds delay) {
  std::lock_guard lock(mu_);
  delays_[op] = delay;
}

void FaultyClient::BeforeNth(const std::string& op, uint64_t n, std::function<void()> action) {
  std::lock_guard lock(mu_);
  actions_.push_back(Action{op, calls_[op] + n, std::move(action)});
}

void FaultyClient::ClearFaults() {
  std::lock_guard lock(mu_);
  rules_.clear();
  delays_.clear();
  actions_.clear();
}

uint64_t FaultyClient::calls(const std::string& op) const {
  std::lock_guard lock(mu_);
  auto it = calls_.find(op);
  return it == calls_.end() ? 0 : it->second;
}

uint64_t FaultyClient::injected(const std::string& op) const {
  std::lock_guard lock(mu_);
  auto it = injected_.find(op);
  return it == injected_.end() ? 0 : it->second;
}

std::vector<std::string> FaultyClient::call_log() const {
  std::lock_guard lock(mu_);
  return call_log_;
}

FaultyClient::Decision FaultyClient::Decide(const char* op) {
  std::lock_guard lock(mu_);
  ++calls_[op];
  ++calls_["*"];
  call_log_.push_back(op);
  Decision d;
  for (auto it = actions_.begin(); it != actions_.end(); ++it) {
    if (it->op == op && calls_[op] == it->ordinal) {
      d.before = std::move(it->run);
      actions_.erase(it);
      break;
    }
  }
  for (const char* key : {op, "*"}) {
    auto it = delays_.find(key);
    if (it != delays_.end()) d.delay = std::max(d.delay, it->second);
  }
  for (auto it = rules_.begin(); it != rules_.end(); ++it) {
    if (it->op != op && it->op != "*") continue;
    bool fires = false;
    switch (it->kind) {
      case Rule::Kind::kNth:
        fires = calls_[it->op] == it->ordinal;
        break;
      case Rule::Kind::kEvery:
        fires = true;
        break;
      case Rule::Kind::kProbability:
        fires = std::uniform_real_distribution<double>(0.0, 1.0)(random_) < it->p;
        break;
    }
    if (!fires) continue;
    d.fail = true;
    d.forward = it->forward;
    d.status = it->status;
    ++injected_[op];
    if (it->kind == Rule::Kind::kNth) rules_.erase(it);
    break;
  }
  return d;
}

template <typename T, typename Issue>
void FaultyClient::Run(const char* op, Callback<T> done, Issue issue) {
  const Decision d = Decide(op);
  if (d.before) d.before();
  Callback<T> finish = std::move(done);
  if (d.delay.count() > 0) {
    finish = [timer = timer_, delay = d.delay, done = std::move(finish)](nfs::Result<T> r) {
      timer->Schedule(delay, [done, r = std::move(r)]() mutable { done(std::move(r)); });
    };
  }
  if (!d.fail) {
    issue(std::move(finish));
  } else if (!d.forward) {
    finish(nfs::Result<T>(d.status));
  } else {
    issue(Callback<T>([finish = std::move(finish), status = d.status](nfs::Result<T>) {
      finish(nfs::Result<T>(status));
    }));
  }
}

void FaultyClient::Lookup(const Credentials& cred, const FileHandle& dir, const std::string& name,
                          Callback<nfs::Entry> done) {
  Run<nfs::Entry>("LOOKUP", std::move(done),
                  [&](auto cb) { inner_->Lookup(cred, dir, name, std::move(cb)); });
}

void FaultyClient::GetAttr(const Credentials& cred, const FileHandle& fh,
                           Callback<nfs::Attributes> done) {
  Run<nfs::Attributes>("GETATTR", std::move(done),
                       [&](auto cb) { inner_->GetAttr(cred, fh, std::move(cb)); });
}

void FaultyClient::SetAttr(const Credentials& cred, const FileHandle& fh,
                           const nfs::SetAttributes& attrs, const nfs::OpenFile* file,
                           Callback<nfs::Attributes> done) {
  Run<nfs::Attributes>("SETATTR", std::move(done),
                       [&](auto cb) { inner_->SetAttr(cred, fh, attrs, file, std::move(cb)); });
}

void FaultyClient::Access(const Credentials& cred, const FileHandle& fh, uint32_t mask,
                          Callback<uint32_t> done) {
  Run<uint32_t>("ACCESS", std::move(done),
                [&](auto cb) { inner_->Access(cred, fh, mask, std::move(cb)); });
}

void FaultyClient::Open(const Credentials& cred, const FileHandle& dir, const std::string& name,
                        const nfs::OpenRequest& req, Callback<nfs::OpenResult> done) {
  Run<nfs::OpenResult>("OPEN", std::move(done),
                       [&](auto cb) { inner_->Open(cred, dir, name, req, std::move(cb)); });
}

void FaultyClient::OpenHandle(const Credentials& cred, const FileHandle& fh, bool read, bool write,
                              Callback<nfs::OpenResult> done) {
  Run<nfs::OpenResult>("OPEN", std::move(done),
                       [&](auto cb) { inner_->OpenHandle(cred, fh, read, write, std::move(cb)); });
}

void FaultyClient::Upgrade(const Credentials& cred, const nfs::OpenFile* file, bool read,
                           bool write, Callback<nfs::Unit> done) {
  Run<nfs::Unit>("OPEN", std::move(done),
                 [&](auto cb) { inner_->Upgrade(cred, file, read, write, std::move(cb)); });
}

void FaultyClient::Close(const Credentials& cred, std::shared_ptr<nfs::OpenFile> file,
                         Callback<nfs::Unit> done) {
  Run<nfs::Unit>("CLOSE", std::move(done),
                 [&](auto cb) { inner_->Close(cred, std::move(file), std::move(cb)); });
}

void FaultyClient::Read(const Credentials& cred, const FileHandle& fh, const nfs::OpenFile* file,
                        uint64_t offset, std::span<uint8_t> dest, Callback<nfs::ReadResult> done) {
  Run<nfs::ReadResult>("READ", std::move(done),
                       [&](auto cb) { inner_->Read(cred, fh, file, offset, dest, std::move(cb)); });
}

void FaultyClient::Write(const Credentials& cred, const FileHandle& fh, const nfs::OpenFile* file,
                         uint64_t offset, std::span<const uint8_t> data, nfs::Stability stability,
                         Callback<nfs::WriteResult> done) {
  Run<nfs::WriteResult>("WRITE", std::move(done), [&](auto cb) {
    inner_->Write(cred, fh, file, offset, data, stability, std::move(cb));
  });
}

void FaultyClient::Commit(const Credentials& cred, const FileHandle& fh, uint64_t offset,
                          uint32_t count, Callback<nfs::WriteVerifier> done) {
  Run<nfs::WriteVerifier>("COMMIT", std::move(done),
                          [&](auto cb) { inner_->Commit(cred, fh, offset, count, std::move(cb)); });
}

void FaultyClient::WriteThenSetAttr(const Credentials& cred, const FileHandle& fh,
                                    const nfs::OpenFile* file, uint64_t offset,
                                    std::span<const uint8_t> data, nfs::Stability stability,
                                    const nfs::SetAttributes& attrs, WriteSetAttrDone done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_["WRITE, SETATTR"];
    call_log_.push_back("WRITE, SETATTR");
  }
  nfs::Client::WriteThenSetAttr(cred, fh, file, offset, data, stability, attrs, std::move(done));
}

void FaultyClient::WriteThenGetAttr(const Credentials& cred, const FileHandle& fh,
                                    const nfs::OpenFile* file, uint64_t offset,
                                    std::span<const uint8_t> data, nfs::Stability stability,
                                    WriteGetAttrDone done) {
  auto after = std::make_shared<std::optional<nfs::Attributes>>();
  Run<nfs::WriteResult>(
      "WRITE",
      [after, done](nfs::Result<nfs::WriteResult> r) {
        const bool ok = r.ok();
        done(std::move(r), ok ? *after : std::nullopt);
      },
      [&](auto cb) {
        inner_->WriteThenGetAttr(cred, fh, file, offset, data, stability,
                                 [after, cb = std::move(cb)](nfs::Result<nfs::WriteResult> w,
                                                             std::optional<nfs::Attributes> a) {
                                   *after = std::move(a);
                                   cb(std::move(w));
                                 });
      });
}

void FaultyClient::Create(const Credentials& cred, const FileHandle& dir, const std::string& name,
                          const nfs::CreateRequest& req, Callback<nfs::Entry> done) {
  Run<nfs::Entry>("CREATE", std::move(done),
                  [&](auto cb) { inner_->Create(cred, dir, name, req, std::move(cb)); });
}

void FaultyClient::Remove(const Credentials& cred, const FileHandle& dir, const std::string& name,
                          Callback<nfs::Unit> done) {
  Run<nfs::Unit>("REMOVE", std::move(done),
                 [&](auto cb) { inner_->Remove(cred, dir, name, std::move(cb)); });
}

void FaultyClient::Rename(const Credentials& cred, const FileHandle& from_dir,
                          const std::string& from_name, const FileHandle& to_dir,
                          const std::string& to_name, Callback<nfs::Unit> done) {
  Run<nfs::Unit>("RENAME", std::move(done), [&](auto cb) {
    inner_->Rename(cred, from_dir, from_name, to_dir, to_name, std::move(cb));
  });
}

void FaultyClient::Link(const Credentials& cred, const FileHandle& fh, const FileHandle& dir,
                        const std::string& name, Callback<nfs::Attributes> done) {
  Run<nfs::Attributes>("LINK", std::move(done),
                       [&](auto cb) { inner_->Link(cred, fh, dir, name, std::move(cb)); });
}

void FaultyClient::ReadLink(const Credentials& cred, const FileHandle& fh,
                            Callback<std::string> done) {
  Run<std::string>("READLINK", std::move(done),
                   [&](auto cb) { inner_->ReadLink(cred, fh, std::move(cb)); });
}

void FaultyClient::ReadDir(const Credentials& cred, const FileHandle& dir, uint64_t cookie,
                           const std::array<uint8_t, 8>& verifier, uint32_t max_bytes,
                           Callback<nfs::DirPage> done) {
  Run<nfs::DirPage>("READDIR", std::move(done), [&](auto cb) {
    inner_->ReadDir(cred, dir, cookie, verifier, max_bytes, std::move(cb));
  });
}

void FaultyClient::StatFs(const Credentials& cred, const FileHandle& fh,
                          Callback<nfs::FsStats> done) {
  Run<nfs::FsStats>("STATFS", std::move(done),
                    [&](auto cb) { inner_->StatFs(cred, fh, std::move(cb)); });
}

void FaultyClient::Lock(const Credentials& cred, const nfs::OpenFile* file, uint64_t owner,
                        nfs::LockType type, uint64_t offset, uint64_t length,
                        Callback<nfs::Attributes> done) {
  Run<nfs::Attributes>("LOCK", std::move(done), [&](auto cb) {
    inner_->Lock(cred, file, owner, type, offset, length, std::move(cb));
  });
}

void FaultyClient::Unlock(const Credentials& cred, const nfs::OpenFile* file, uint64_t owner,
                          uint64_t offset, uint64_t length, Callback<nfs::Unit> done) {
  Run<nfs::Unit>("LOCKU", std::move(done), [&](auto cb) {
    inner_->Unlock(cred, file, owner, offset, length, std::move(cb));
  });
}

void FaultyClient::TestLock(const Credentials& cred, const nfs::OpenFile* file, uint64_t owner,
                            nfs::LockType type, uint64_t offset, uint64_t length,
                            Callback<std::optional<nfs::LockConflict>> done) {
  Run<std::optional<nfs::LockConflict>>("LOCKT", std::move(done), [&](auto cb) {
    inner_->TestLock(cred, file, owner, type, offset, length, std::move(cb));
  });
}

}  // namespace floatmount::fakes
