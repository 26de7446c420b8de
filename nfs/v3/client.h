// Nfs3Client: NFSv3 (RFC 1813) through libnfs's raw asynchronous API, an
// nfs::Client, for exports that are not served over NFSv4.1 (vers=3).
//
// What it does:
//   - Mount(): asks the server's MOUNT service (RFC 1813 appendix I; its
//     port from `mount_port`, or from rpcbind on port 111) for the export's
//     root handle, checks that the export takes AUTH_SYS, opens `nconnect`
//     connections to the NFS port (Nfs3Connection, one libnfs context and
//     I/O thread each) spread over the server's addresses, and bounds
//     rsize/wsize by FSINFO's rtmax/wtmax.
//   - Every call is one NFSv3 RPC, sent with the caller's AUTH_SYS
//     credentials on the connection with the fewest calls outstanding.
//   - File handles, not paths: LOOKUP, READDIRPLUS, CREATE etc. work on the
//     handles fuse/ keeps.
//   - Opens: NFSv3 has no OPEN. Open/OpenHandle check the caller's access
//     with ACCESS (as the Linux client does on open(2)), except for a file
//     the call itself created; O_TRUNC is a SETATTR of the size; Close sends
//     nothing. CREATE is GUARDED first, so `created` is exact.
//   - Unlinking an open file: an NFSv3 server forgets a removed file at
//     once, open or not, so (as the Linux client does, "silly rename") a
//     REMOVE of the last name of a file this client holds open, or a
//     RENAME over it, first renames it to .nfs<fileid><n> in its
//     directory; the last Close removes that name. Another of its names
//     (a hard link) is removed as it is: the file stays.
//   - Locks: NFSv3 locking is a separate protocol (NLM) that floatmount does
//     not speak; Lock/Unlock/TestLock fail with NFS4ERR_LOCK_NOTSUPP (ENOLCK)
//     and one log line says so, once per mount.
//   - Retries inside: JUKEBOX (the server is busy, e.g. recalling data from
//     tape) is retried with back-off; calls of a lost connection are sent
//     again. Hard by default; `soft` fails a call after timeo * retrans.
//   - Shutdown(): UMNT, then closes the connections.
//
// Threads: callers any; replies on the connections' "fm-nfs3-io" threads;
// "fm-nfs3-maint" resends delayed calls and retries addresses that failed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nfs/mounted_client.h"
#include "nfs/v3/connection.h"

namespace floatmount::nfs {

struct Nfs3Options {
  std::vector<Endpoint> endpoints;  // the NFS service: every address of the server
  std::string export_path = "/";
  uint16_t mount_port = 0;  // MOUNT's port; 0: ask rpcbind on the server
  int nconnect = 16;
  size_t max_connections_per_address = 0;  // 0: no limit
  std::function<void(const Endpoint&)> on_address_down;  // must only signal
  uint32_t rsize = kDefaultRsize;
  uint32_t wsize = 1u << 20;
  std::chrono::milliseconds timeo{60000};
  bool soft = false;
  int retrans = 2;
  std::chrono::milliseconds connect_timeout{10000};
  std::string machine_name;  // AUTH_SYS machinename; default: hostname
};

class Nfs3Client : public MountedClient {
 public:
  // MOUNT, connections, FSINFO; a clear Status if the server is unreachable,
  // does not serve NFSv3 or MOUNT, refuses us, or has no such export.
  static Result<std::unique_ptr<Nfs3Client>> Mount(const Nfs3Options& options);
  ~Nfs3Client() override;

  void Shutdown() override;
  ServerInfo info() const override;
  void UpdateEndpoints(const std::vector<Endpoint>& endpoints) override;
  uint32_t rsize() const override { return rsize_; }
  uint32_t wsize() const override { return wsize_; }

  const FileHandle& root() const override { return root_; }
  void Lookup(const Credentials& cred, const FileHandle& dir, const std::string& name,
              Callback<Entry> done) override;
  void GetAttr(const Credentials& cred, const FileHandle& fh, Callback<Attributes> done) override;
  void SetAttr(const Credentials& cred, const FileHandle& fh, const SetAttributes& attrs,
               const OpenFile* file, Callback<Attributes> done) override;
  void Access(const Credentials& cred, const FileHandle& fh, uint32_t mask,
              Callback<uint32_t> done) override;
  void Open(const Credentials& cred, const FileHandle& dir, const std::string& name,
            const OpenRequest& req, Callback<OpenResult> done) override;
  void OpenHandle(const Credentials& cred, const FileHandle& fh, bool read, bool write,
                  Callback<OpenResult> done) override;
  void Close(const Credentials& cred, std::shared_ptr<OpenFile> file, Callback<Unit> done) override;
  void Upgrade(const Credentials& cred, const OpenFile* file, bool read, bool write,
               Callback<Unit> done) override;
  void Read(const Credentials& cred, const FileHandle& fh, const OpenFile* file, uint64_t offset,
            std::span<uint8_t> dest, Callback<ReadResult> done) override;
  void Write(const Credentials& cred, const FileHandle& fh, const OpenFile* file, uint64_t offset,
             std::span<const uint8_t> data, Stability stability,
             Callback<WriteResult> done) override;
  void Commit(const Credentials& cred, const FileHandle& fh, uint64_t offset, uint32_t count,
              Callback<WriteVerifier> done) override;
  void Create(const Credentials& cred, const FileHandle& dir, const std::string& name,
              const CreateRequest& req, Callback<Entry> done) override;
  void Remove(const Credentials& cred, const FileHandle& dir, const std::string& name,
              Callback<Unit> done) override;
  void Rename(const Credentials& cred, const FileHandle& from_dir, const std::string& from_name,
              const FileHandle& to_dir, const std::string& to_name, Callback<Unit> done) override;
  void Link(const Credentials& cred, const FileHandle& fh, const FileHandle& dir,
            const std::string& name, Callback<Attributes> done) override;
  void ReadLink(const Credentials& cred, const FileHandle& fh, Callback<std::string> done) override;
  void ReadDir(const Credentials& cred, const FileHandle& dir, uint64_t cookie,
               const std::array<uint8_t, 8>& verifier, uint32_t max_bytes,
               Callback<DirPage> done) override;
  void StatFs(const Credentials& cred, const FileHandle& fh, Callback<FsStats> done) override;
  void Lock(const Credentials& cred, const OpenFile* file, uint64_t owner, LockType type,
            uint64_t offset, uint64_t length, Callback<Attributes> done) override;
  void Unlock(const Credentials& cred, const OpenFile* file, uint64_t owner, uint64_t offset,
              uint64_t length, Callback<Unit> done) override;
  void TestLock(const Credentials& cred, const OpenFile* file, uint64_t owner, LockType type,
                uint64_t offset, uint64_t length,
                Callback<std::optional<LockConflict>> done) override;

 private:
  explicit Nfs3Client(const Nfs3Options& options);

  // Sends one RPC. `issue` queues it on a libnfs context (see Nfs3Call);
  // `on_reply` gets the decoded result (a Res*), already checked for
  // JUKEBOX, which is retried here; `fail` gets a final error.
  template <typename Res>
  void Call(const Credentials& cred, const char* proc,
            decltype(Nfs3Call::issue) issue, std::function<void(const Res&)> on_reply,
            std::function<void(Status)> fail, uint64_t bytes_out = 0);
  void Send(std::shared_ptr<Nfs3Call> call);
  void Resend(std::shared_ptr<Nfs3Call> call);
  void SendLater(std::shared_ptr<Nfs3Call> call, std::chrono::milliseconds delay);
  Nfs3Connection* Pick();
  void OnConnectionState(Nfs3Connection* conn, bool up);
  void Place();  // GUARDED_BY(mu_): assigns the connections to usable addresses
  void Maintain();

  // Open's steps: after the name is known to exist / was created.
  void OpenExisting(const Credentials& cred, const FileHandle& fh, const OpenRequest& req,
                    Callback<OpenResult> done);
  void FinishCreated(const Credentials& cred, const FileHandle& dir, const std::string& name,
                     std::optional<FileHandle> fh, std::optional<Attributes> attr,
                     std::function<void(Result<Entry>)> done);
  // FSINFO of the root: sets rsize_/wsize_ within the server's limits.
  void FsInfo(const Credentials& cred, std::function<void(Status)> done);
  void CheckAccess(const Credentials& cred, const FileHandle& fh, bool read, bool write,
                   std::function<void(Result<Attributes>)> done);

  // Open files (by handle bytes) and their silly-renamed names.
  struct OpenCount {
    int opens = 0;
    FileHandle silly_dir;   // set once the file was silly-renamed
    std::string silly_name;
  };
  void RemoveNow(const Credentials& cred, const FileHandle& dir, const std::string& name,
                 Callback<Unit> done);
  void RenameNow(const Credentials& cred, const FileHandle& from_dir, const std::string& from_name,
                 const FileHandle& to_dir, const std::string& to_name, Callback<Unit> done);
  std::shared_ptr<OpenFile> MakeOpenFile(const FileHandle& fh);
  // Renames dir/name to a hidden .nfs name if it is a file held open here;
  // then `next` (renamed: whether it did).
  void SillyRenameIfOpen(const Credentials& cred, const FileHandle& dir, const std::string& name,
                         std::function<void(Status, bool renamed)> next);

  const Nfs3Options options_;
  FileHandle root_;     // constant after Mount
  uint32_t rsize_ = 0;  // constant after Mount
  uint32_t wsize_ = 0;  // constant after Mount
  // Filled under mu_ in Mount, constant afterwards.
  std::vector<std::unique_ptr<Nfs3Connection>> connections_;

  mutable std::mutex mu_;
  std::condition_variable maint_cv_;
  std::vector<Endpoint> endpoints_;                         // GUARDED_BY(mu_)
  std::vector<bool> usable_;                                // GUARDED_BY(mu_)
  std::vector<std::chrono::steady_clock::time_point> down_since_;  // GUARDED_BY(mu_)
  std::vector<int> placement_;                              // GUARDED_BY(mu_)
  std::multimap<std::chrono::steady_clock::time_point, std::shared_ptr<Nfs3Call>>
      delayed_;                                             // GUARDED_BY(mu_)
  bool stopping_ = false;                                   // GUARDED_BY(mu_)
  bool lock_warned_ = false;                                // GUARDED_BY(mu_)
  size_t next_ = 0;                                         // GUARDED_BY(mu_)
  uint64_t retries_ = 0;                                    // GUARDED_BY(mu_)
  std::map<std::string, OpenCount> open_;                   // GUARDED_BY(mu_)
  uint64_t silly_counter_ = 0;                              // GUARDED_BY(mu_)
  std::thread maint_;
};

}  // namespace floatmount::nfs
