// SyncClient: blocking calls over an nfs::Client, for the CLI and tests.
//
// Each method sends the asynchronous call and waits for its callback. Not
// for fuse/ (whose threads must never wait on the network).
//
// Threads: any thread except a network thread of the client it wraps.
#pragma once

#include <future>
#include <memory>
#include <string>

#include "nfs/client.h"

namespace floatmount::nfs {

class SyncClient {
 public:
  explicit SyncClient(Client* client, Credentials cred = {}) : client_(client), cred_(cred) {}

  const FileHandle& root() const { return client_->root(); }
  void set_credentials(const Credentials& cred) { cred_ = cred; }

  Result<Entry> Lookup(const FileHandle& dir, const std::string& name) {
    return Wait<Entry>([&](auto cb) { client_->Lookup(cred_, dir, name, cb); });
  }
  // Walks a relative path ("a/b/c") from `dir`.
  Result<Entry> LookupPath(const FileHandle& dir, const std::string& path);
  Result<Attributes> GetAttr(const FileHandle& fh) {
    return Wait<Attributes>([&](auto cb) { client_->GetAttr(cred_, fh, cb); });
  }
  Result<Attributes> SetAttr(const FileHandle& fh, const SetAttributes& attrs,
                             const OpenFile* file = nullptr) {
    return Wait<Attributes>([&](auto cb) { client_->SetAttr(cred_, fh, attrs, file, cb); });
  }
  Result<uint32_t> Access(const FileHandle& fh, uint32_t mask) {
    return Wait<uint32_t>([&](auto cb) { client_->Access(cred_, fh, mask, cb); });
  }
  Result<OpenResult> Open(const FileHandle& dir, const std::string& name, const OpenRequest& req) {
    return Wait<OpenResult>([&](auto cb) { client_->Open(cred_, dir, name, req, cb); });
  }
  Result<OpenResult> OpenHandle(const FileHandle& fh, bool read, bool write) {
    return Wait<OpenResult>([&](auto cb) { client_->OpenHandle(cred_, fh, read, write, cb); });
  }
  Status Close(std::shared_ptr<OpenFile> file) {
    return Wait<Unit>([&](auto cb) { client_->Close(cred_, file, cb); }).status();
  }
  Result<ReadResult> Read(const FileHandle& fh, const OpenFile* file, uint64_t offset,
                          std::span<uint8_t> dest) {
    return Wait<ReadResult>([&](auto cb) { client_->Read(cred_, fh, file, offset, dest, cb); });
  }
  Result<WriteResult> Write(const FileHandle& fh, const OpenFile* file, uint64_t offset,
                            std::span<const uint8_t> data, Stability stability) {
    return Wait<WriteResult>(
        [&](auto cb) { client_->Write(cred_, fh, file, offset, data, stability, cb); });
  }
  Result<WriteVerifier> Commit(const FileHandle& fh, uint64_t offset = 0, uint32_t count = 0) {
    return Wait<WriteVerifier>([&](auto cb) { client_->Commit(cred_, fh, offset, count, cb); });
  }
  Result<Entry> Create(const FileHandle& dir, const std::string& name, const CreateRequest& req) {
    return Wait<Entry>([&](auto cb) { client_->Create(cred_, dir, name, req, cb); });
  }
  Status Remove(const FileHandle& dir, const std::string& name) {
    return Wait<Unit>([&](auto cb) { client_->Remove(cred_, dir, name, cb); }).status();
  }
  Status Rename(const FileHandle& from_dir, const std::string& from, const FileHandle& to_dir,
                const std::string& to) {
    return Wait<Unit>([&](auto cb) { client_->Rename(cred_, from_dir, from, to_dir, to, cb); })
        .status();
  }
  Result<Attributes> Link(const FileHandle& fh, const FileHandle& dir, const std::string& name) {
    return Wait<Attributes>([&](auto cb) { client_->Link(cred_, fh, dir, name, cb); });
  }
  Result<std::string> ReadLink(const FileHandle& fh) {
    return Wait<std::string>([&](auto cb) { client_->ReadLink(cred_, fh, cb); });
  }
  // Every entry of a directory, following cookies to the end.
  Result<std::vector<DirEntry>> ReadDirAll(const FileHandle& dir);
  Result<FsStats> StatFs(const FileHandle& fh) {
    return Wait<FsStats>([&](auto cb) { client_->StatFs(cred_, fh, cb); });
  }

 private:
  template <typename T, typename Issue>
  Result<T> Wait(Issue issue) {
    auto promise = std::make_shared<std::promise<Result<T>>>();
    auto future = promise->get_future();
    issue([promise](Result<T> r) { promise->set_value(std::move(r)); });
    return future.get();
  }

  Client* client_;
  Credentials cred_;
};

}  // namespace floatmount::nfs
