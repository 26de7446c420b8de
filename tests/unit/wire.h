// Wire: builds XDR by hand, independently of nfs/rpc/xdr.h, so the codec tests
// compare XdrEncoder's output (and feed XdrDecoder) with bytes written the
// way RFC 4506 spells them out.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

namespace floatmount::testing {

using Bytes = std::vector<uint8_t>;

class Wire {
 public:
  Wire& U32(uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) b_.push_back(static_cast<uint8_t>(v >> shift));
    return *this;
  }
  Wire& U64(uint64_t v) {
    U32(static_cast<uint32_t>(v >> 32));
    return U32(static_cast<uint32_t>(v));
  }
  Wire& Raw(const Bytes& bytes) {
    b_.insert(b_.end(), bytes.begin(), bytes.end());
    return *this;
  }
  // string / variable-length opaque: length, bytes, zero padding to 4.
  Wire& Str(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    b_.insert(b_.end(), s.begin(), s.end());
    while (b_.size() % 4 != 0) b_.push_back(0);
    return *this;
  }
  // A length word and the bytes of `inner` (e.g. attr_vals).
  Wire& Opaque(const Wire& inner) {
    U32(static_cast<uint32_t>(inner.b_.size()));
    return Raw(inner.b_);
  }
  // stateid4 with other = {fill, fill + 1, ...}.
  Wire& Sid(uint32_t seqid, uint8_t fill) {
    U32(seqid);
    for (uint8_t i = 0; i < 12; ++i) b_.push_back(static_cast<uint8_t>(fill + i));
    return *this;
  }
  const Bytes& bytes() const { return b_; }

 private:
  Bytes b_;
};

inline Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace floatmount::testing
