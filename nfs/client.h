// nfs::Client: the interface fuse/ (and the CLI) use to talk to a server.
//
// Implementations: the NFSv4.1 engine (nfs/v4/client.h), later an NFSv3
// backend over libnfs, and fakes in tests/fakes/.
//
// Every call is asynchronous: it returns at once and the callback runs
// exactly once, on a network thread (or, for calls that fail before being
// sent, on the calling thread). Callbacks must not block: they hand the
// result on (e.g. reply to FUSE) and return. Buffers passed to Read/Write
// must stay valid until the callback has run. Every call carries the
// caller's Credentials, which the server uses for its permission checks.
//
// Errors: a final Status. DELAY/GRACE back-off, reconnects and session or
// client-ID recovery happen inside the implementation and are not visible
// here, except as latency (hard mount) or kTimedOut (soft mount).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "nfs/status.h"
#include "nfs/types.h"

namespace floatmount::nfs {

template <typename T>
using Callback = std::function<void(Result<T>)>;

struct Unit {};

// An open file on the server (an NFSv4 open stateid, or nothing for NFSv3).
// Hold it from Open until Close; the engine keeps it valid across recovery.
class OpenFile {
 public:
  virtual ~OpenFile() = default;
  virtual const FileHandle& fh() const = 0;
  // False once this open can serve no new opener: its locks were lost, so
  // its I/O fails with EIO until it is closed; a new open of the file must
  // make a new NFS open.
  virtual bool usable() const { return true; }
};

// The file's first bytes, read in the OPEN's compound (OpenRequest::read_first).
struct FirstRead {
  std::vector<uint8_t> data;
  bool eof = false;  // `data` is the whole file
};

struct OpenResult {
  std::shared_ptr<OpenFile> file;
  FileHandle fh;
  Attributes attr;
  bool created = false;
  // With read_first: the bytes, read after `attr` was (so they are at least
  // as new). Empty when the READ failed; the open stands either way.
  std::optional<FirstRead> first_read;
};

class Client {
 public:
  virtual ~Client() = default;

  // The export's root, found at mount time.
  virtual const FileHandle& root() const = 0;

  virtual void Lookup(const Credentials& cred, const FileHandle& dir, const std::string& name,
                      Callback<Entry> done) = 0;
  virtual void GetAttr(const Credentials& cred, const FileHandle& fh,
                       Callback<Attributes> done) = 0;
  // `file` may be null; with it, a size change uses its stateid.
  virtual void SetAttr(const Credentials& cred, const FileHandle& fh, const SetAttributes& attrs,
                       const OpenFile* file, Callback<Attributes> done) = 0;
  // Returns the subset of `mask` (AccessBits) the caller is granted.
  virtual void Access(const Credentials& cred, const FileHandle& fh, uint32_t mask,
                      Callback<uint32_t> done) = 0;

  virtual void Open(const Credentials& cred, const FileHandle& dir, const std::string& name,
                    const OpenRequest& req, Callback<OpenResult> done) = 0;
  // Opens a file known by handle (no create).
  virtual void OpenHandle(const Credentials& cred, const FileHandle& fh, bool read, bool write,
                          Callback<OpenResult> done) = 0;
  virtual void Close(const Credentials& cred, std::shared_ptr<OpenFile> file,
                     Callback<Unit> done) = 0;
  // Widens what an open file may do: read and/or write are added, never
  // removed (an OPEN of the same file by the same open owner, RFC 8881
  // 9.11). The server checks the caller's permission for what is added.
  virtual void Upgrade(const Credentials& cred, const OpenFile* file, bool read, bool write,
                       Callback<Unit> done) = 0;

  // Reads up to dest.size() bytes at `offset` straight into `dest`.
  // `file` may be null (anonymous stateid).
  virtual void Read(const Credentials& cred, const FileHandle& fh, const OpenFile* file,
                    uint64_t offset, std::span<uint8_t> dest, Callback<ReadResult> done) = 0;
  // Sends `data` from the caller's memory (no copy). May write less than asked.
  virtual void Write(const Credentials& cred, const FileHandle& fh, const OpenFile* file,
                     uint64_t offset, std::span<const uint8_t> data, Stability stability,
                     Callback<WriteResult> done) = 0;
  virtual void Commit(const Credentials& cred, const FileHandle& fh, uint64_t offset,
                      uint32_t count, Callback<WriteVerifier> done) = 0;
  // A WRITE, then a SETATTR of the same file that must come after it (a
  // program's write followed by futimens or fchmod: tar, cp -p), as one
  // request where the protocol allows. `attrs` must not set the size (the
  // SETATTR goes without a stateid). `done` gets the WRITE's outcome and
  // the SETATTR's, or nullopt for the SETATTR when it did not run or ran
  // before all the bytes were written (an error, a short WRITE): the
  // caller then sends it alone once the rest is written. This default
  // sends the two one after the other.
  using WriteSetAttrDone =
      std::function<void(Result<WriteResult> written, std::optional<Result<Attributes>> set)>;
  virtual void WriteThenSetAttr(const Credentials& cred, const FileHandle& fh, const OpenFile* file,
                                uint64_t offset, std::span<const uint8_t> data, Stability stability,
                                const SetAttributes& attrs, WriteSetAttrDone done) {
    Write(cred, fh, file, offset, data, stability,
          [this, cred, fh, attrs, asked = data.size(), done](Result<WriteResult> w) {
            if (!w.ok() || w->count < asked) return done(std::move(w), std::nullopt);
            SetAttr(cred, fh, attrs, nullptr, [w, done](Result<Attributes> a) {
              done(w, std::optional<Result<Attributes>>(std::move(a)));
            });
          });
  }

  // A WRITE, then the file's attributes as they are after it, in one
  // request where the protocol allows (a WRITE's reply has none in
  // NFSv4.1): for the last WRITE a close or fsync waits for, as the kernel
  // client sends it, so that the stat or chown that follows needs no
  // round trip of its own. `done` gets the WRITE's outcome, and the
  // attributes when they came (nullopt: not asked for by this client, or
  // the GETATTR failed after the WRITE). This default sends the WRITE alone.
  using WriteGetAttrDone =
      std::function<void(Result<WriteResult> written, std::optional<Attributes> after)>;
  virtual void WriteThenGetAttr(const Credentials& cred, const FileHandle& fh, const OpenFile* file,
                                uint64_t offset, std::span<const uint8_t> data, Stability stability,
                                WriteGetAttrDone done) {
    Write(cred, fh, file, offset, data, stability,
          [done](Result<WriteResult> w) { done(std::move(w), std::nullopt); });
  }

  // Directories, symlinks and special files.
  virtual void Create(const Credentials& cred, const FileHandle& dir, const std::string& name,
                      const CreateRequest& req, Callback<Entry> done) = 0;
  virtual void Remove(const Credentials& cred, const FileHandle& dir, const std::string& name,
                      Callback<Unit> done) = 0;
  virtual void Rename(const Credentials& cred, const FileHandle& from_dir,
                      const std::string& from_name, const FileHandle& to_dir,
                      const std::string& to_name, Callback<Unit> done) = 0;
  // Makes `dir`/`name` a new link to `fh`; returns the file's new attributes.
  virtual void Link(const Credentials& cred, const FileHandle& fh, const FileHandle& dir,
                    const std::string& name, Callback<Attributes> done) = 0;
  virtual void ReadLink(const Credentials& cred, const FileHandle& fh,
                        Callback<std::string> done) = 0;
  // One page of entries after `cookie` (0: from the start), with attributes.
  virtual void ReadDir(const Credentials& cred, const FileHandle& dir, uint64_t cookie,
                       const std::array<uint8_t, 8>& verifier, uint32_t max_bytes,
                       Callback<DirPage> done) = 0;
  virtual void StatFs(const Credentials& cred, const FileHandle& fh, Callback<FsStats> done) = 0;

  // Byte-range locks on an open file, held by `owner` (a local lock owner,
  // e.g. the one FUSE passes per process/file description). Non-blocking:
  // a conflict fails with NFS4ERR_DENIED; the caller polls to wait. A
  // grant answers with the file's attributes as the server had them right
  // after it (NFSv4.1: GETATTR in LOCK's compound), so a caller can tell
  // whether the file changed without another round trip; no attribute is
  // set (Attributes::Has false) if the server did not return them.
  virtual void Lock(const Credentials& cred, const OpenFile* file, uint64_t owner, LockType type,
                    uint64_t offset, uint64_t length, Callback<Attributes> done) = 0;
  virtual void Unlock(const Credentials& cred, const OpenFile* file, uint64_t owner,
                      uint64_t offset, uint64_t length, Callback<Unit> done) = 0;
  // The conflicting lock, or nullopt when `type` could be taken now.
  virtual void TestLock(const Credentials& cred, const OpenFile* file, uint64_t owner,
                        LockType type, uint64_t offset, uint64_t length,
                        Callback<std::optional<LockConflict>> done) = 0;
};

}  // namespace floatmount::nfs
