// XdrEncoder / XdrDecoder (RFC 4506): primitives, padding, sticky errors
// and the zero-copy gather of PutOpaqueRef.
#include "nfs/rpc/xdr.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace floatmount::nfs {
namespace {

using Bytes = std::vector<uint8_t>;

TEST(XdrTest, Pad) {
  EXPECT_EQ(XdrPad(0), 0u);
  EXPECT_EQ(XdrPad(1), 3u);
  EXPECT_EQ(XdrPad(2), 2u);
  EXPECT_EQ(XdrPad(3), 1u);
  EXPECT_EQ(XdrPad(4), 0u);
  EXPECT_EQ(XdrPad(5), 3u);
}

TEST(XdrTest, IntegersAreBigEndian) {
  XdrEncoder e;
  e.PutUint32(0x01020304);
  e.PutInt32(-2);
  e.PutUint64(0x0102030405060708ULL);
  e.PutInt64(-3);
  e.PutBool(true);
  e.PutBool(false);
  const Bytes expected = {
      0x01, 0x02, 0x03, 0x04,                          // uint32
      0xff, 0xff, 0xff, 0xfe,                          // int32 -2
      0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // uint64
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd,  // int64 -3
      0x00, 0x00, 0x00, 0x01,                          // TRUE
      0x00, 0x00, 0x00, 0x00,                          // FALSE
  };
  EXPECT_EQ(e.Flatten(), expected);
  EXPECT_EQ(e.size(), expected.size());

  XdrDecoder d(expected);
  EXPECT_EQ(d.GetUint32(), 0x01020304u);
  EXPECT_EQ(d.GetInt32(), -2);
  EXPECT_EQ(d.GetUint64(), 0x0102030405060708ULL);
  EXPECT_EQ(d.GetInt64(), -3);
  EXPECT_TRUE(d.GetBool());
  EXPECT_FALSE(d.GetBool());
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(d.remaining(), 0u);
}

TEST(XdrTest, ExtremeValuesRoundTrip) {
  XdrEncoder e;
  e.PutUint32(0xffffffff);
  e.PutInt32(INT32_MIN);
  e.PutUint64(UINT64_MAX);
  e.PutInt64(INT64_MIN);
  const Bytes b = e.Flatten();
  XdrDecoder d(b);
  EXPECT_EQ(d.GetUint32(), 0xffffffffu);
  EXPECT_EQ(d.GetInt32(), INT32_MIN);
  EXPECT_EQ(d.GetUint64(), UINT64_MAX);
  EXPECT_EQ(d.GetInt64(), INT64_MIN);
  EXPECT_TRUE(d.ok());
}

// Variable and fixed opaques of every length 0..5: padding to 4 with zeros.
TEST(XdrTest, OpaquePaddingForLengthsZeroToFive) {
  const uint8_t src[5] = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5};
  for (size_t len = 0; len <= 5; ++len) {
    SCOPED_TRACE(len);
    XdrEncoder e;
    e.PutOpaque(src, len);
    e.PutFixedOpaque(src, len);
    e.PutUint32(0xdeadbeef);  // sentinel after the padding
    const Bytes b = e.Flatten();
    const size_t padded = len + XdrPad(len);
    ASSERT_EQ(b.size(), 4 + padded + padded + 4);
    EXPECT_EQ(b[0], 0);
    EXPECT_EQ(b[3], len);
    EXPECT_EQ(0, std::memcmp(b.data() + 4, src, len));
    for (size_t i = len; i < padded; ++i) EXPECT_EQ(b[4 + i], 0) << i;
    EXPECT_EQ(0, std::memcmp(b.data() + 4 + padded, src, len));
    for (size_t i = len; i < padded; ++i) EXPECT_EQ(b[4 + padded + i], 0) << i;

    XdrDecoder d(b);
    std::span<const uint8_t> var = d.GetOpaque(5);
    std::span<const uint8_t> fixed = d.GetFixedOpaque(len);
    EXPECT_EQ(d.GetUint32(), 0xdeadbeefu);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(Bytes(var.begin(), var.end()), Bytes(src, src + len));
    EXPECT_EQ(Bytes(fixed.begin(), fixed.end()), Bytes(src, src + len));
    // Views point into the buffer, not into a copy.
    if (len > 0) {
      EXPECT_EQ(var.data(), b.data() + 4);
    }
  }
}

TEST(XdrTest, StringRoundTrip) {
  for (const std::string s : {"", "a", "ab", "abc", "abcd", "abcde"}) {
    XdrEncoder e;
    e.PutString(s);
    const Bytes b = e.Flatten();
    EXPECT_EQ(b.size(), 4 + s.size() + XdrPad(s.size()));
    XdrDecoder d(b);
    EXPECT_EQ(d.GetString(), s);
    EXPECT_TRUE(d.ok());
    EXPECT_EQ(d.remaining(), 0u);
  }
}

TEST(XdrTest, SpanOverload) {
  const Bytes data = {1, 2, 3};
  XdrEncoder e;
  e.PutOpaque(std::span<const uint8_t>(data));
  EXPECT_EQ(e.Flatten(), (Bytes{0, 0, 0, 3, 1, 2, 3, 0}));
}

TEST(XdrTest, ReadPastEndIsSticky) {
  const Bytes b = {0, 0, 0, 7, 0, 0};
  XdrDecoder d(b);
  EXPECT_EQ(d.GetUint32(), 7u);
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(d.GetUint32(), 0u);  // only 2 bytes left
  EXPECT_FALSE(d.ok());
  EXPECT_EQ(d.remaining(), 0u);
  EXPECT_EQ(d.GetUint64(), 0u);
  EXPECT_TRUE(d.GetOpaque().empty());
  EXPECT_EQ(d.GetString(), "");
  EXPECT_FALSE(d.ok());
}

TEST(XdrTest, Uint64NeedsEightBytes) {
  const Bytes b = {0, 0, 0, 1, 0, 0, 0};
  XdrDecoder d(b);
  d.GetUint64();
  EXPECT_FALSE(d.ok());
}

TEST(XdrTest, OpaqueLongerThanLimitFails) {
  const Bytes b = {0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e', 0, 0, 0};
  XdrDecoder ok_decoder(b);
  EXPECT_EQ(ok_decoder.GetString(5), "abcde");
  EXPECT_TRUE(ok_decoder.ok());
  XdrDecoder d(b);
  EXPECT_EQ(d.GetString(4), "");
  EXPECT_FALSE(d.ok());
}

TEST(XdrTest, OpaqueLengthBeyondBufferFails) {
  const Bytes huge = {0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c', 'd'};
  XdrDecoder d(huge);
  EXPECT_TRUE(d.GetOpaque().empty());
  EXPECT_FALSE(d.ok());
  // The padding must be present too.
  const Bytes no_pad = {0, 0, 0, 1, 'a'};
  XdrDecoder d2(no_pad);
  d2.GetOpaque();
  EXPECT_FALSE(d2.ok());
}

TEST(XdrTest, FixedOpaqueOfHugeLengthFails) {
  const Bytes b = {1, 2, 3, 4};
  XdrDecoder d(b);
  EXPECT_TRUE(d.GetFixedOpaque(SIZE_MAX).empty());
  EXPECT_FALSE(d.ok());
}

TEST(XdrTest, SkipAndFail) {
  const Bytes b = {0, 0, 0, 1, 0, 0, 0, 2};
  XdrDecoder d(b);
  d.Skip(4);
  EXPECT_EQ(d.position(), 4u);
  EXPECT_EQ(d.GetUint32(), 2u);
  d.Skip(1);
  EXPECT_FALSE(d.ok());
  XdrDecoder d2(b);
  d2.Fail();
  EXPECT_FALSE(d2.ok());
  EXPECT_EQ(d2.GetUint32(), 0u);
}

TEST(XdrTest, EmptyDecoder) {
  XdrDecoder d;
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(d.remaining(), 0u);
  d.GetBool();
  EXPECT_FALSE(d.ok());
}

TEST(XdrTest, ReserveAndPatch) {
  XdrEncoder e;
  e.PutUint32(1);
  const size_t at = e.ReserveUint32();
  e.PutUint32(3);
  e.PatchUint32(at, 0xcafef00d);
  EXPECT_EQ(at, 4u);
  EXPECT_EQ(e.Flatten(), (Bytes{0, 0, 0, 1, 0xca, 0xfe, 0xf0, 0x0d, 0, 0, 0, 3}));
}

// [inline][ref 6][inline][ref 4][inline]: referenced bytes are not copied,
// the length words and padding stay inline, in order.
TEST(XdrTest, OpaqueRefGathersInOrder) {
  const uint8_t first[6] = {'a', 'b', 'c', 'd', 'e', 'f'};
  const uint8_t second[4] = {'w', 'x', 'y', 'z'};
  XdrEncoder e;
  e.PutUint32(0x11111111);
  e.PutOpaqueRef(first, sizeof(first));
  e.PutUint32(0x22222222);
  e.PutOpaqueRef(second, sizeof(second));
  e.PutUint32(0x33333333);
  EXPECT_EQ(e.size(), 4 + 4 + 8 + 4 + 4 + 4 + 4u);

  std::vector<iovec> iov;
  e.Gather(&iov);
  ASSERT_EQ(iov.size(), 5u);
  EXPECT_EQ(iov[0].iov_len, 8u);  // 0x11111111, length 6
  EXPECT_EQ(iov[1].iov_base, first);
  EXPECT_EQ(iov[1].iov_len, 6u);
  EXPECT_EQ(iov[2].iov_len, 2 + 4 + 4u);  // padding, 0x22222222, length 4
  EXPECT_EQ(iov[3].iov_base, second);
  EXPECT_EQ(iov[3].iov_len, 4u);
  EXPECT_EQ(iov[4].iov_len, 4u);  // 0x33333333

  const Bytes expected = {
      0x11, 0x11, 0x11, 0x11,  //
      0x00, 0x00, 0x00, 0x06,  // length 6
      'a',  'b',  'c',  'd',   //
      'e',  'f',  0x00, 0x00,  // + padding
      0x22, 0x22, 0x22, 0x22,  //
      0x00, 0x00, 0x00, 0x04,  // length 4
      'w',  'x',  'y',  'z',   // no padding
      0x33, 0x33, 0x33, 0x33,  //
  };
  EXPECT_EQ(e.Flatten(), expected);

  // Same bytes as a copying PutOpaque.
  XdrEncoder copy;
  copy.PutUint32(0x11111111);
  copy.PutOpaque(first, sizeof(first));
  copy.PutUint32(0x22222222);
  copy.PutOpaque(second, sizeof(second));
  copy.PutUint32(0x33333333);
  EXPECT_EQ(copy.Flatten(), expected);
}

TEST(XdrTest, OpaqueRefAtEndAndBackToBack) {
  const uint8_t a[4] = {1, 2, 3, 4};
  const uint8_t b[1] = {5};
  XdrEncoder e;
  e.PutOpaqueRef(a, 4);
  e.PutOpaqueRef(b, 1);
  std::vector<iovec> iov;
  e.Gather(&iov);
  // [len a][a][len b][b][pad]
  ASSERT_EQ(iov.size(), 5u);
  EXPECT_EQ(iov[1].iov_base, a);
  EXPECT_EQ(iov[3].iov_base, b);
  EXPECT_EQ(iov[4].iov_len, 3u);
  EXPECT_EQ(e.Flatten(), (Bytes{0, 0, 0, 4, 1, 2, 3, 4, 0, 0, 0, 1, 5, 0, 0, 0}));
}

TEST(XdrTest, EmptyOpaqueRefAddsNoSegment) {
  XdrEncoder e;
  e.PutOpaqueRef(nullptr, 0);
  std::vector<iovec> iov;
  e.Gather(&iov);
  ASSERT_EQ(iov.size(), 1u);
  EXPECT_EQ(e.Flatten(), (Bytes{0, 0, 0, 0}));
}

TEST(XdrTest, GatherAppendsAndClearResets) {
  const uint8_t a[3] = {7, 8, 9};
  XdrEncoder e;
  e.PutOpaqueRef(a, 3);
  std::vector<iovec> iov(1);  // existing entries are kept
  e.Gather(&iov);
  EXPECT_EQ(iov.size(), 4u);
  e.Clear();
  EXPECT_EQ(e.size(), 0u);
  EXPECT_TRUE(e.Flatten().empty());
  e.PutUint32(9);
  EXPECT_EQ(e.Flatten(), (Bytes{0, 0, 0, 9}));
}

}  // namespace
}  // namespace floatmount::nfs
