// Status and Result<T>: how every error in nfs/ is carried to its caller.
//
// A Status is either OK or an error that names where it came from:
//   - kNfs: the server answered with an nfsstat4 (or NFSv3 nfsstat3) code;
//   - kRpc: the RPC layer rejected the call (program mismatch, auth error);
//   - kTransport: the connection failed and the call could not be finished;
//   - kTimedOut: a soft-mount call ran past its deadline;
//   - kProtocol: the server sent something we could not decode;
//   - kInvalidArgument / kShutdown / kInternal: local causes.
// It carries a human message and whether a retry could succeed. Retries of
// DELAY/GRACE and reconnects stay inside nfs/; what reaches the caller is
// final. fuse/ turns a Status into an errno with one function (errno_map.h).
//
// Thread-safety: plain value type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace floatmount::nfs {

class Status {
 public:
  enum class Kind : uint8_t {
    kOk,
    kNfs,
    kRpc,
    kTransport,
    kTimedOut,
    kProtocol,
    kInvalidArgument,
    kShutdown,
    kInternal,
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status Nfs(uint32_t nfsstat, std::string msg) {
    return Status(Kind::kNfs, nfsstat, std::move(msg));
  }
  static Status Rpc(std::string msg) { return Status(Kind::kRpc, 0, std::move(msg)); }
  static Status Transport(std::string msg) { return Status(Kind::kTransport, 0, std::move(msg)); }
  static Status TimedOut(std::string msg) { return Status(Kind::kTimedOut, 0, std::move(msg)); }
  static Status Protocol(std::string msg) { return Status(Kind::kProtocol, 0, std::move(msg)); }
  static Status InvalidArgument(std::string msg) {
    return Status(Kind::kInvalidArgument, 0, std::move(msg));
  }
  static Status Shutdown(std::string msg) { return Status(Kind::kShutdown, 0, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Kind::kInternal, 0, std::move(msg)); }

  bool ok() const { return kind_ == Kind::kOk; }
  Kind kind() const { return kind_; }
  // The nfsstat4 code for kNfs, 0 otherwise.
  uint32_t nfs_status() const { return nfs_status_; }
  const std::string& message() const { return message_; }
  bool IsNfs(uint32_t code) const { return kind_ == Kind::kNfs && nfs_status_ == code; }

  // "NFS4ERR_NOENT: LOOKUP foo" style, for logs and the CLI.
  std::string ToString() const;

 private:
  Status(Kind kind, uint32_t code, std::string msg)
      : kind_(kind), nfs_status_(code), message_(std::move(msg)) {}

  Kind kind_ = Kind::kOk;
  uint32_t nfs_status_ = 0;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}            // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}    // NOLINT: implicit by design

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;  // OK when value_ is set.
};

// The NFSv4 name of an nfsstat4 code ("NFS4ERR_NOENT"), or "NFS4ERR_<n>".
const char* NfsStatusName(uint32_t nfsstat);

}  // namespace floatmount::nfs
