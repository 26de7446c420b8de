// FaultyClient: an nfs::Client that wraps another one and injects failures
// and latency, so tests can see what fuse/ does when the server says no at
// a bad moment (a background WRITE that fails must surface on fsync/close).
//
// Rules are per operation name, the NFSv4 names FakeClient counts under:
// LOOKUP GETATTR SETATTR ACCESS OPEN (Open and OpenHandle) CLOSE READ WRITE
// COMMIT CREATE REMOVE RENAME LINK READLINK READDIR STATFS LOCK LOCKU LOCKT,
// or "*" for every operation. A call is failed by the first rule (in the
// order they were added) that fires for it:
//   - FailNth: the n-th call of that operation from now on (1 = the next),
//     once;
//   - FailEvery: every call, until ClearFaults;
//   - FailWithProbability: each call with probability p, drawn from a
//     generator seeded at construction (the same seed, the same calls).
// A failed call is not sent to the wrapped client (the server never saw
// it) unless the rule says `forward`: then it runs there and its result is
// replaced by the failure (the server did it but the reply was lost or
// wrong). Nothing is dropped: every callback runs exactly once.
//
// SetDelay holds the completion of every call of an operation for a while
// (the longest of its own delay and the "*" delay): the wrapped call runs
// at once; its result is delivered by the timer thread after the delay.
// Without a delay, completions come as the wrapped client delivers them,
// and an injected failure that is not forwarded completes inline, on the
// calling thread (which nfs::Client allows for calls failed before sending).
//
// Threads: any thread may call in. One mutex guards the rules and counters
// (never held while calling the wrapped client or a callback); the timer
// has its own. The destructor runs every pending delayed completion at once
// and joins the timer thread; a completion the wrapped client delivers
// after that runs inline on its thread. The wrapped client must outlive
// this one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "nfs/client.h"

namespace floatmount::fakes {

class FaultyClient : public nfs::Client {
 public:
  explicit FaultyClient(nfs::Client* inner, uint64_t seed = 1);
  ~FaultyClient() override;
  FaultyClient(const FaultyClient&) = delete;
  FaultyClient& operator=(const FaultyClient&) = delete;

  // Fault rules (see the top of this file).
  void FailNth(const std::string& op, uint64_t n, nfs::Status status, bool forward = false);
  void FailEvery(const std::string& op, nfs::Status status, bool forward = false);
  void FailWithProbability(const std::string& op, double p, nfs::Status status,
                           bool forward = false);
  void SetDelay(const std::string& op, std::chrono::microseconds delay);
  // Runs `action` just before the n-th call of `op` from now on goes to the
  // wrapped client (e.g. the fake server restarts between a WRITE and its
  // COMMIT), once.
  void BeforeNth(const std::string& op, uint64_t n, std::function<void()> action);
  void ClearFaults();  // rules, delays and actions

  uint64_t calls(const std::string& op) const;     // calls made through this client
  uint64_t injected(const std::string& op) const;  // of them, failed by a rule
  std::vector<std::string> call_log() const;        // every call's op, in call order

  // nfs::Client.
  const nfs::FileHandle& root() const override { return inner_->root(); }
  void Lookup(const nfs::Credentials& cred, const nfs::FileHandle& dir, const std::string& name,
              nfs::Callback<nfs::Entry> done) override;
  void GetAttr(const nfs::Credentials& cred, const nfs::FileHandle& fh,
               nfs::Callback<nfs::Attributes> done) override;
  void SetAttr(const nfs::Credentials& cred, const nfs::FileHandle& fh,
               const nfs::SetAttributes& attrs, const nfs::OpenFile* file,
               nfs::Callback<nfs::Attributes> done) override;
  void Access(const nfs::Credentials& cred, const nfs::FileHandle& fh, uint32_t mask,
              nfs::Callback<uint32_t> done) override;
  void Open(const nfs::Credentials& cred, const nfs::FileHandle& dir, const std::string& name,
            const nfs::OpenRequest& req, nfs::Callback<nfs::OpenResult> done) override;
  void Upgrade(const nfs::Credentials& cred, const nfs::OpenFile* file, bool read, bool write,
               nfs::Callback<nfs::Unit> done) override;
  void OpenHandle(const nfs::Credentials& cred, const nfs::FileHandle& fh, bool read, bool write,
                  nfs::Callback<nfs::OpenResult> done) override;
  void Close(const nfs::Credentials& cred, std::shared_ptr<nfs::OpenFile> file,
             nfs::Callback<nfs::Unit> done) override;
  void Read(const nfs::Credentials& cred, const nfs::FileHandle& fh, const nfs::OpenFile* file,
            uint64_t offset, std::span<uint8_t> dest, nfs::Callback<nfs::ReadResult> done) override;
  void Write(const nfs::Credentials& cred, const nfs::FileHandle& fh, const nfs::OpenFile* file,
             uint64_t offset, std::span<const uint8_t> data, nfs::Stability stability,
             nfs::Callback<nfs::WriteResult> done) override;
  void Commit(const nfs::Credentials& cred, const nfs::FileHandle& fh, uint64_t offset,
              uint32_t count, nfs::Callback<nfs::WriteVerifier> done) override;
  // Counted as "WRITE, SETATTR" (no rule applies to it), then sent as
  // nfs::Client's default does: a WRITE and a SETATTR, each under its rules.
  void WriteThenSetAttr(const nfs::Credentials& cred, const nfs::FileHandle& fh,
                        const nfs::OpenFile* file, uint64_t offset, std::span<const uint8_t> data,
                        nfs::Stability stability, const nfs::SetAttributes& attrs,
                        WriteSetAttrDone done) override;
  // Under WRITE's rules and counted as a WRITE; the attributes come along
  // when the inner client's WRITE succeeded and no failure was injected.
  void WriteThenGetAttr(const nfs::Credentials& cred, const nfs::FileHandle& fh,
                        const nfs::OpenFile* file, uint64_t offset, std::span<const uint8_t> data,
                        nfs::Stability stability, WriteGetAttrDone done) override;
  void Create(const nfs::Credentials& cred, const nfs::FileHandle& dir, const std::string& name,
              const nfs::CreateRequest& req, nfs::Callback<nfs::Entry> done) override;
  void Remove(const nfs::Credentials& cred, const nfs::FileHandle& dir, const std::string& name,
              nfs::Callback<nfs::Unit> done) override;
  void Rename(const nfs::Credentials& cred, const nfs::FileHandle& from_dir,
              const std::string& from_name, const nfs::FileHandle& to_dir,
              const std::string& to_name, nfs::Callback<nfs::Unit> done) override;
  void Link(const nfs::Credentials& cred, const nfs::FileHandle& fh, const nfs::FileHandle& dir,
            const std::string& name, nfs::Callback<nfs::Attributes> done) override;
  void ReadLink(const nfs::Credentials& cred, const nfs::FileHandle& fh,
                nfs::Callback<std::string> done) override;
  void ReadDir(const nfs::Credentials& cred, const nfs::FileHandle& dir, uint64_t cookie,
               const std::array<uint8_t, 8>& verifier, uint32_t max_bytes,
               nfs::Callback<nfs::DirPage> done) override;
  void StatFs(const nfs::Credentials& cred, const nfs::FileHandle& fh,
              nfs::Callback<nfs::FsStats> done) override;
  void Lock(const nfs::Credentials& cred, const nfs::OpenFile* file, uint64_t owner,
            nfs::LockType type, uint64_t offset, uint64_t length,
            nfs::Callback<nfs::Attributes> done) override;
  void Unlock(const nfs::Credentials& cred, const nfs::OpenFile* file, uint64_t owner,
              uint64_t offset, uint64_t length, nfs::Callback<nfs::Unit> done) override;
  void TestLock(const nfs::Credentials& cred, const nfs::OpenFile* file, uint64_t owner,
                nfs::LockType type, uint64_t offset, uint64_t length,
                nfs::Callback<std::optional<nfs::LockConflict>> done) override;

 private:
  class Timer;  // faulty_client.cc: runs delayed completions
  struct Rule {
    enum class Kind { kNth, kEvery, kProbability } kind;
    std::string op;
    uint64_t ordinal = 0;  // kNth: the op's call number that fails
    double p = 0;          // kProbability
    nfs::Status status;
    bool forward = false;
  };
  // What happens to one call.
  struct Decision {
    bool fail = false;
    bool forward = false;
    nfs::Status status;
    std::chrono::microseconds delay{0};
    std::function<void()> before;  // BeforeNth
  };
  struct Action {
    std::string op;
    uint64_t ordinal = 0;
    std::function<void()> run;
  };

  Decision Decide(const char* op);
  // Issues the call through `issue(callback)` as `d` says.
  template <typename T, typename Issue>
  void Run(const char* op, nfs::Callback<T> done, Issue issue);

  nfs::Client* const inner_;
  const std::shared_ptr<Timer> timer_;  // shared with callbacks in flight

  mutable std::mutex mu_;
  std::vector<Rule> rules_;                                  // GUARDED_BY(mu_)
  std::vector<Action> actions_;                              // GUARDED_BY(mu_)
  std::map<std::string, std::chrono::microseconds> delays_;  // GUARDED_BY(mu_)
  std::map<std::string, uint64_t> calls_;                    // GUARDED_BY(mu_)
  std::vector<std::string> call_log_;                        // GUARDED_BY(mu_)
  std::map<std::string, uint64_t> injected_;                 // GUARDED_BY(mu_)
  std::mt19937_64 random_;                                   // GUARDED_BY(mu_)
};

}  // namespace floatmount::fakes
