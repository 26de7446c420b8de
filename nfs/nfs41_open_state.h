// OpenState: an open file on the server, as the engine tracks it.
//
// Holds the open stateid (RFC 8881 8.2) and what is needed to open the file
// again after the server lost its state (client ID recovery, 8.4.2): the
// handle, the share access and the open owner. The stateid changes under
// recovery, so every compound reads it when it is encoded.
//
// Threads: any; the stateid is guarded by mu_. Registered with the engine
// from Open until Close.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "nfs/client.h"
#include "nfs/nfs4_ops.h"

namespace floatmount::nfs {

class OpenState : public OpenFile {
 public:
  OpenState(FileHandle fh, std::string owner, uint32_t share_access, Credentials cred)
      : fh_(std::move(fh)),
        owner_(std::move(owner)),
        share_access_(share_access),
        cred_(std::move(cred)) {}

  const FileHandle& fh() const override { return fh_; }
  const std::string& owner() const { return owner_; }  // constant after construction
  uint32_t share_access() const { return share_access_; }
  const Credentials& cred() const { return cred_; }  // who opened it; reopen uses it

  v4::Stateid stateid() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stateid_;
  }
  void set_stateid(const v4::Stateid& stateid) {
    std::lock_guard<std::mutex> lock(mu_);
    stateid_ = stateid;
  }

 private:
  const FileHandle fh_;
  const std::string owner_;
  const uint32_t share_access_;
  const Credentials cred_;
  mutable std::mutex mu_;
  v4::Stateid stateid_;  // GUARDED_BY(mu_)
};

}  // namespace floatmount::nfs
