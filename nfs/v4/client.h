// Nfs41Client: the NFSv4.1 engine (RFC 8881), an nfs::Client.
//
// What it does:
//   - Mount(): connects, EXCHANGE_ID with the caller's co_ownerid and boot
//     verifier (18.35), CREATE_SESSION sized for rsize/wsize (18.36),
//     RECLAIM_COMPLETE (18.51), opens `nconnect` connections bound to the
//     session with BIND_CONN_TO_SESSION (18.34), and finds the export root.
//     Every new connection first proves with EXCHANGE_ID that it reaches
//     the same server (server owner, scope and client ID, 2.10.5);
//     otherwise that address is not used (nfs/v4/trunking.h).
//   - Every request is a COMPOUND that starts with SEQUENCE (18.46) on a
//     slot of the session's SlotTable, sent on the connection with the
//     fewest calls outstanding.
//   - Recovery (all inside the engine, see nfs/v4/session.cc and
//     nfs/v4/state_recovery.h):
//       lost connection   -> resend on another connection (or after the
//                            reconnect) with the same slot and sequence id;
//       BADSESSION etc.   -> new session, resend;
//       STALE_CLIENTID    -> new client ID, reclaim every open file and its
//                            byte-range locks in the grace period, then
//                            RECLAIM_COMPLETE, resend; a lock that does not
//                            come back is lost (I/O through its open fails
//                            with NFS4ERR_IO until close);
//       revoked-state SEQUENCE flags, BAD_STATEID and the like
//                         -> TEST_STATEID / FREE_STATEID, repair only the
//                            opens and locks the server lost, once per
//                            episode (nfs/v4/stateid_recovery.h);
//       OLD_STATEID       -> resend with the open's current stateid;
//       DELAY / GRACE     -> back off and retry.
//     Hard by default: calls wait through outages. With `soft`, a call that
//     has not finished after timeo * retrans fails with kTimedOut.
//   - An idle session is kept alive by SEQUENCE-only compounds.
//   - Shutdown(): DESTROY_SESSION and DESTROY_CLIENTID (18.37, 18.50).
//
// Threads:
//   - Callers: any thread. Calls never block on the network.
//   - "fm-rx"/"fm-tx" per connection (RpcConnection); completions run on
//     "fm-rx".
//   - "fm-nfs-maint": reconnects, recovery, lease renewal, timeouts and
//     back-off timers. It is the only thread that creates or destroys
//     connections.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nfs/client.h"
#include "nfs/mounted_client.h"
#include "nfs/v4/id_mapper.h"
#include "nfs/v4/ops.h"
#include "nfs/rpc/connection.h"

namespace floatmount::nfs {

struct Nfs41Options {
  // Addresses of the server (e.g. every A record of its name). Connections
  // are spread over the ones that prove to be the same server.
  std::vector<Endpoint> endpoints;
  std::string export_path = "/";
  // co_ownerid: unique per node and stable across restarts (agent/).
  std::string owner_id;
  // Changes on every start of the agent (RFC 8881 2.4).
  std::array<uint8_t, 8> boot_verifier{};
  int nconnect = 16;  // 1..64
  // At most this many connections per address (0: no limit), for servers
  // that limit connections per client node.
  size_t max_connections_per_address = 0;
  // Called (on an engine thread, with engine locks held: it must only
  // signal) when an address stops answering, e.g. to look the name up
  // again sooner.
  std::function<void(const Endpoint&)> on_address_down;
  uint32_t rsize = kDefaultRsize;
  uint32_t wsize = 1u << 20;
  uint32_t max_slots = 128;  // requested ca_maxrequests
  // How long a connection with calls outstanding may stay silent before it
  // is deemed dead and its calls move elsewhere (nfs(5) timeo).
  std::chrono::milliseconds timeo{60000};
  bool soft = false;  // soft: fail calls with kTimedOut after timeo*retrans
  int retrans = 2;
  std::chrono::milliseconds connect_timeout{10000};
  IdMapperOptions idmap;
  // At most this many new sessions in any minute (the first included); past
  // it, new sessions wait and status shows a session storm.
  uint32_t max_sessions_per_minute = 10;
  std::string machine_name;  // AUTH_SYS machinename; default: hostname
};

class Nfs41Engine;  // nfs/v4/engine.h

class Nfs41Client : public MountedClient {
 public:
  // Connects and sets up the client ID, session and connections; returns a
  // clear Status if the server is unreachable, does not speak NFSv4.1, or
  // has no such export.
  static Result<std::unique_ptr<Nfs41Client>> Mount(const Nfs41Options& options);
  ~Nfs41Client() override;

  // Closes open files, destroys the session and client ID, closes the
  // connections. Calls made afterwards fail with kShutdown. Idempotent.
  void Shutdown() override;
  ServerInfo info() const override;
  // The server's addresses now (re-resolved DNS): see Nfs41Engine.
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
  // SEQUENCE, PUTFH, WRITE, SETATTR, GETATTR: one round trip.
  void WriteThenSetAttr(const Credentials& cred, const FileHandle& fh, const OpenFile* file,
                        uint64_t offset, std::span<const uint8_t> data, Stability stability,
                        const SetAttributes& attrs, WriteSetAttrDone done) override;
  // SEQUENCE, PUTFH, WRITE, GETATTR: one round trip.
  void WriteThenGetAttr(const Credentials& cred, const FileHandle& fh, const OpenFile* file,
                        uint64_t offset, std::span<const uint8_t> data, Stability stability,
                        WriteGetAttrDone done) override;
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
  // Locks: nfs/v4/locks.cc.
  void Lock(const Credentials& cred, const OpenFile* file, uint64_t owner, LockType type,
            uint64_t offset, uint64_t length, Callback<Attributes> done) override;
  void Unlock(const Credentials& cred, const OpenFile* file, uint64_t owner, uint64_t offset,
              uint64_t length, Callback<Unit> done) override;
  void TestLock(const Credentials& cred, const OpenFile* file, uint64_t owner, LockType type,
                uint64_t offset, uint64_t length,
                Callback<std::optional<LockConflict>> done) override;

 private:
  explicit Nfs41Client(std::unique_ptr<Nfs41Engine> engine);
  void DoOpen(const Credentials& cred, const FileHandle& fh, v4::OpenArgs args, bool truncate,
              uint32_t read_first, Callback<OpenResult> done);
  void ReturnDelegation(const Credentials& cred, const FileHandle& fh, const v4::Stateid& stateid);
  // SEQUENCE, PUTFH, WRITE, [SETATTR,] GETATTR: WriteThenSetAttr and
  // WriteThenGetAttr. `done` gets the WRITE's result when it ran, and the
  // compound's outcome: the GETATTR's attributes, or the first error.
  using WriteThenDone =
      std::function<void(std::optional<WriteResult> written, Result<Attributes> rest)>;
  void WriteThen(const Credentials& cred, const FileHandle& fh, const OpenFile* file,
                 uint64_t offset, std::span<const uint8_t> data, Stability stability,
                 std::optional<SetAttributes> then_set, WriteThenDone done);

  std::unique_ptr<Nfs41Engine> engine_;
  FileHandle root_;     // constant after Mount
  uint32_t rsize_ = 0;  // constant after Mount
  uint32_t wsize_ = 0;  // constant after Mount
  uint32_t readdir_max_ = 0;  // the largest READDIR reply; constant after Mount
};

}  // namespace floatmount::nfs
