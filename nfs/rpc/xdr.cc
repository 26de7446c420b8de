#include "nfs/rpc/xdr.h"

#include <arpa/inet.h>

#include <cstring>

namespace floatmount::nfs {
namespace {
constexpr uint8_t kZeros[4] = {0, 0, 0, 0};
}

void XdrEncoder::PutUint32(uint32_t v) {
  const uint32_t be = htonl(v);
  const auto* p = reinterpret_cast<const uint8_t*>(&be);
  inline_.insert(inline_.end(), p, p + 4);
}

void XdrEncoder::PutUint64(uint64_t v) {
  PutUint32(static_cast<uint32_t>(v >> 32));
  PutUint32(static_cast<uint32_t>(v));
}

void XdrEncoder::PutFixedOpaque(const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (len > 0) inline_.insert(inline_.end(), p, p + len);
  inline_.insert(inline_.end(), kZeros, kZeros + XdrPad(len));
}

void XdrEncoder::PutOpaque(const void* data, size_t len) {
  PutUint32(static_cast<uint32_t>(len));
  PutFixedOpaque(data, len);
}

void XdrEncoder::PutOpaqueRef(const void* data, size_t len) {
  PutUint32(static_cast<uint32_t>(len));
  if (len > 0) {
    refs_.push_back(Ref{inline_.size(), static_cast<const uint8_t*>(data), len});
    ref_bytes_ += len;
  }
  inline_.insert(inline_.end(), kZeros, kZeros + XdrPad(len));
}

size_t XdrEncoder::ReserveUint32() {
  const size_t offset = inline_.size();
  PutUint32(0);
  return offset;
}

void XdrEncoder::PatchUint32(size_t offset, uint32_t v) {
  const uint32_t be = htonl(v);
  std::memcpy(inline_.data() + offset, &be, 4);
}

void XdrEncoder::Gather(std::vector<iovec>* out) const {
  size_t pos = 0;
  for (const Ref& ref : refs_) {
    if (ref.inline_offset > pos) {
      out->push_back(iovec{const_cast<uint8_t*>(inline_.data() + pos), ref.inline_offset - pos});
    }
    out->push_back(iovec{const_cast<uint8_t*>(ref.data), ref.len});
    pos = ref.inline_offset;
  }
  if (inline_.size() > pos) {
    out->push_back(iovec{const_cast<uint8_t*>(inline_.data() + pos), inline_.size() - pos});
  }
}

std::vector<uint8_t> XdrEncoder::Flatten() const {
  std::vector<iovec> iov;
  Gather(&iov);
  std::vector<uint8_t> flat;
  flat.reserve(size());
  for (const iovec& v : iov) {
    const auto* p = static_cast<const uint8_t*>(v.iov_base);
    flat.insert(flat.end(), p, p + v.iov_len);
  }
  return flat;
}

void XdrEncoder::Clear() {
  inline_.clear();
  refs_.clear();
  ref_bytes_ = 0;
}

bool XdrDecoder::Need(size_t n) {
  if (!ok_ || data_.size() - pos_ < n) {
    ok_ = false;
    return false;
  }
  return true;
}

uint32_t XdrDecoder::GetUint32() {
  if (!Need(4)) return 0;
  uint32_t be;
  std::memcpy(&be, data_.data() + pos_, 4);
  pos_ += 4;
  return ntohl(be);
}

uint64_t XdrDecoder::GetUint64() {
  const uint64_t hi = GetUint32();
  const uint64_t lo = GetUint32();
  return (hi << 32) | lo;
}

std::span<const uint8_t> XdrDecoder::GetFixedOpaque(size_t len) {
  const size_t padded = len + XdrPad(len);
  if (padded < len || !Need(padded)) {
    ok_ = false;  // also on overflow, where Need() was not reached
    return {};
  }
  std::span<const uint8_t> view = data_.subspan(pos_, len);
  pos_ += padded;
  return view;
}

std::span<const uint8_t> XdrDecoder::GetOpaque(size_t max_len) {
  const uint32_t len = GetUint32();
  if (!ok_) return {};
  if (len > max_len) {
    ok_ = false;
    return {};
  }
  return GetFixedOpaque(len);
}

std::string XdrDecoder::GetString(size_t max_len) {
  std::span<const uint8_t> view = GetOpaque(max_len);
  return std::string(reinterpret_cast<const char*>(view.data()), view.size());
}

void XdrDecoder::Skip(size_t len) {
  if (Need(len)) pos_ += len;
}

}  // namespace floatmount::nfs
