#include "nfs/v4/open_state.h"

#include <gtest/gtest.h>

#include "nfs/v4/protocol.h"

namespace floatmount::nfs {
namespace {

using v4::OPEN4_SHARE_ACCESS_BOTH;
using v4::OPEN4_SHARE_ACCESS_READ;
using v4::OPEN4_SHARE_ACCESS_WRITE;

v4::Stateid Sid(uint32_t seqid, uint8_t tag = 1) {
  v4::Stateid s;
  s.seqid = seqid;
  s.other[0] = tag;
  return s;
}

TEST(SeqidTest, NewerWrapsPastTheTop) {
  EXPECT_TRUE(v4::SeqidNewer(3, 2));
  EXPECT_FALSE(v4::SeqidNewer(2, 3));
  EXPECT_FALSE(v4::SeqidNewer(2, 2));
  EXPECT_TRUE(v4::SeqidNewer(1, 0xffffffffu));  // the server wraps to 1
  EXPECT_FALSE(v4::SeqidNewer(0xffffffffu, 1));
}

// Two upgrades answered out of order: the open keeps the server's (newer)
// stateid and the access of both.
TEST(OpenStateTest, AnUpgradeAnsweredLateKeepsTheNewerStateid) {
  OpenState open(FileHandle{}, "owner", OPEN4_SHARE_ACCESS_READ, Credentials{});
  open.set_stateid(Sid(1));
  open.Upgraded(Sid(3), OPEN4_SHARE_ACCESS_BOTH);
  open.Upgraded(Sid(2), OPEN4_SHARE_ACCESS_WRITE);
  EXPECT_EQ(open.stateid(), Sid(3));
  EXPECT_EQ(open.share_access(), OPEN4_SHARE_ACCESS_BOTH);
}

// Another `other` is another open (made again by recovery): taken as is.
TEST(OpenStateTest, AnUpgradeOfANewOpenIsTakenWhateverItsSeqid) {
  OpenState open(FileHandle{}, "owner", OPEN4_SHARE_ACCESS_READ, Credentials{});
  open.set_stateid(Sid(7, 1));
  open.Upgraded(Sid(2, 2), OPEN4_SHARE_ACCESS_BOTH);
  EXPECT_EQ(open.stateid(), Sid(2, 2));
}

}  // namespace
}  // namespace floatmount::nfs
