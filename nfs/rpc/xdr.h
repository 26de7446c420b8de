// XDR (RFC 4506) encoder and decoder.
//
// XdrEncoder appends big-endian words to an inline buffer. Large payloads
// (WRITE data) are not copied: PutOpaqueRef() records a reference to the
// caller's memory as its own segment, and Gather() hands the message to
// writev() as [inline bytes][caller bytes][inline bytes]... The referenced
// memory must outlive the send.
//
// XdrDecoder reads from a byte span without copying; views it returns point
// into that span. Errors are sticky: a read past the end (or a length over
// its limit) sets !ok() and returns zeros/empty views from then on, so a
// decoder of a whole structure checks ok() once at the end.
//
// Thread-safety: none; one thread uses an instance at a time.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace floatmount::nfs {

inline constexpr size_t XdrPad(size_t n) { return (4 - (n & 3)) & 3; }

class XdrEncoder {
 public:
  XdrEncoder() { inline_.reserve(512); }

  void PutUint32(uint32_t v);
  void PutInt32(int32_t v) { PutUint32(static_cast<uint32_t>(v)); }
  void PutUint64(uint64_t v);
  void PutInt64(int64_t v) { PutUint64(static_cast<uint64_t>(v)); }
  void PutBool(bool v) { PutUint32(v ? 1 : 0); }
  // Fixed-length opaque: the bytes and padding, no length word.
  void PutFixedOpaque(const void* data, size_t len);
  // Variable-length opaque / string: length word, bytes, padding.
  void PutOpaque(const void* data, size_t len);
  void PutOpaque(std::span<const uint8_t> data) { PutOpaque(data.data(), data.size()); }
  void PutString(std::string_view s) { PutOpaque(s.data(), s.size()); }
  // Variable-length opaque whose bytes stay in the caller's memory.
  void PutOpaqueRef(const void* data, size_t len);

  // Reserves a word to fill in later (a count, a record mark).
  size_t ReserveUint32();
  void PatchUint32(size_t offset, uint32_t v);

  // Total encoded size, inline and referenced bytes.
  size_t size() const { return inline_.size() + ref_bytes_; }
  // Appends the iovecs that describe the message, in order.
  void Gather(std::vector<iovec>* out) const;
  // A flat copy of the message (tests, small messages).
  std::vector<uint8_t> Flatten() const;
  void Clear();

 private:
  struct Ref {
    size_t inline_offset;  // position in inline_ where the reference sits
    const uint8_t* data;
    size_t len;
  };
  std::vector<uint8_t> inline_;
  std::vector<Ref> refs_;
  size_t ref_bytes_ = 0;
};

class XdrDecoder {
 public:
  XdrDecoder() = default;
  explicit XdrDecoder(std::span<const uint8_t> data) : data_(data) {}

  uint32_t GetUint32();
  int32_t GetInt32() { return static_cast<int32_t>(GetUint32()); }
  uint64_t GetUint64();
  int64_t GetInt64() { return static_cast<int64_t>(GetUint64()); }
  bool GetBool() { return GetUint32() != 0; }
  // Fixed-length opaque of `len` bytes (padding skipped).
  std::span<const uint8_t> GetFixedOpaque(size_t len);
  // Variable-length opaque; fails if longer than `max_len`.
  std::span<const uint8_t> GetOpaque(size_t max_len = SIZE_MAX);
  std::string GetString(size_t max_len = SIZE_MAX);
  void Skip(size_t len);
  // Marks the decode as failed (a value out of range, an unknown union arm).
  void Fail() { ok_ = false; }

  bool ok() const { return ok_; }
  size_t position() const { return pos_; }
  size_t remaining() const { return ok_ ? data_.size() - pos_ : 0; }

 private:
  bool Need(size_t n);
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace floatmount::nfs
