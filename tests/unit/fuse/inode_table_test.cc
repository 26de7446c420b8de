#include "fuse/inode_table.h"

#include <gtest/gtest.h>

#include <chrono>

namespace floatmount::fuse {
namespace {

nfs::FileHandle Fh(uint8_t b) { return nfs::FileHandle(&b, 1); }

TEST(InodeTableTest, RootIsInodeOneAndNeverForgotten) {
  InodeTable t(Fh(0));
  EXPECT_EQ(t.Handle(kRootInode), Fh(0));
  t.Forget(kRootInode, 100);
  EXPECT_TRUE(t.Handle(kRootInode));
  EXPECT_EQ(t.Learn(Fh(0), {}, t.Mark()), kRootInode);
}

TEST(InodeTableTest, OneInodePerHandleUntilForgotten) {
  InodeTable t(Fh(0));
  const InodeId a = t.Learn(Fh(1), {}, t.Mark());
  EXPECT_EQ(t.Learn(Fh(1), {}, t.Mark()), a);
  const InodeId b = t.Learn(Fh(2), {}, t.Mark());
  EXPECT_NE(a, b);
  EXPECT_EQ(t.lookups(a), 2u);
  t.Forget(a, 1);
  EXPECT_TRUE(t.Handle(a));
  t.Forget(a, 1);
  EXPECT_FALSE(t.Handle(a));
  EXPECT_EQ(t.size(), 2u);  // root and b
  EXPECT_NE(t.Learn(Fh(1), {}, t.Mark()), a);  // a fresh number after it was forgotten
}

TEST(InodeTableTest, RemembersTheLastAttributes) {
  InodeTable t(Fh(0));
  nfs::Attributes attr;
  attr.valid = nfs::Attributes::kChange;
  attr.change = 5;
  const InodeId a = t.Learn(Fh(1), attr, t.Mark());
  attr.change = 6;
  EXPECT_EQ(t.UpdateAttributes(a, attr, t.Mark()).previous_change, 5u);
  EXPECT_EQ(t.Attributes(a)->change, 6u);
  EXPECT_EQ(t.VersionOf(a).change, 6u);
  EXPECT_FALSE(t.UpdateAttributes(999, attr, t.Mark()).previous_change);
}

// The OPEN's reply: its attributes are applied (to no kernel thread, as
// FileSystem::FinishOpen does), then marked fresh.
void Opened(InodeTable& t, InodeId ino, InodeTable::SendMark sent, const nfs::Attributes& attr,
            InodeTable::Clock::time_point until) {
  InodeTable::SendMark opened = sent;
  opened.caller = InodeTable::kNoThread;
  t.UpdateAttributes(ino, attr, opened);
  t.FreshUntil(ino, sent, until);
}

nfs::Attributes Size(uint64_t size) {
  nfs::Attributes attr;
  attr.valid = nfs::Attributes::kSize;
  attr.size = size;
  return attr;
}

// Attributes from an OPEN answer GETATTR until their time runs out, and
// never after a change that started since the OPEN was sent (Changed, at
// the start and the end of each change this mount makes).
TEST(InodeTableTest, FreshAttributesLastUntilTheirTimeOrTheNextChange) {
  using namespace std::chrono_literals;
  InodeTable t(Fh(0));
  const InodeId a = t.Learn(Fh(1), Size(3), t.Mark());
  const auto now = InodeTable::Clock::now();
  EXPECT_FALSE(t.FreshAttributes(a, now)) << "nothing marked yet";

  Opened(t, a, t.Mark(), Size(7), now + 10s);
  auto fresh = t.FreshAttributes(a, now + 4s);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->attr.size, 7u);
  EXPECT_EQ(fresh->left, 6s);
  EXPECT_FALSE(t.FreshAttributes(a, now + 10s)) << "past its time";

  Opened(t, a, t.Mark(), Size(7), now + 10s);
  t.Changed();
  EXPECT_FALSE(t.FreshAttributes(a, now)) << "a change through this mount ended it";

  // The OPEN was sent before a change started: its reply may predate it.
  const auto before = t.Mark();
  t.Changed();
  Opened(t, a, before, Size(7), now + 10s);
  EXPECT_FALSE(t.FreshAttributes(a, now));

  EXPECT_FALSE(t.FreshAttributes(999, now)) << "an unknown inode";
}

// Replies on several connections are applied out of the server's order.
// The size the kernel last saw must never be answered with an older one.
TEST(InodeTableTest, FreshAttributesAreOnlyTheNewestApplied) {
  using namespace std::chrono_literals;
  InodeTable t(Fh(0));
  const InodeId a = t.Learn(Fh(1), Size(3), t.Mark());
  const InodeId b = t.Learn(Fh(2), Size(3), t.Mark());
  const auto now = InodeTable::Clock::now();

  // A GETATTR sent after the OPEN, answered after it (size 9), applied
  // before it (size 7): the OPEN's attributes are older than the kernel's.
  auto sent = t.Mark();
  t.UpdateAttributes(a, Size(9), t.Mark());
  Opened(t, a, sent, Size(7), now + 10s);
  EXPECT_FALSE(t.FreshAttributes(a, now)) << "another reply came between";

  // Any reply applied after the mark, older or newer, ends it.
  Opened(t, a, t.Mark(), Size(7), now + 10s);
  ASSERT_TRUE(t.FreshAttributes(a, now));
  t.UpdateAttributes(a, Size(5), t.Mark());
  EXPECT_FALSE(t.FreshAttributes(a, now)) << "a GETATTR's";
  Opened(t, a, t.Mark(), Size(7), now + 10s);
  t.Learn(Fh(1), Size(5), t.Mark());
  EXPECT_FALSE(t.FreshAttributes(a, now)) << "a LOOKUP's";

  // Other files' replies do not.
  Opened(t, a, t.Mark(), Size(7), now + 10s);
  t.UpdateAttributes(b, Size(1), t.Mark());
  EXPECT_TRUE(t.FreshAttributes(a, now));
  sent = t.Mark();
  t.UpdateAttributes(b, Size(2), t.Mark());
  Opened(t, a, sent, Size(7), now + 10s);
  EXPECT_TRUE(t.FreshAttributes(a, now));

  // A mark with no application of the OPEN's own is refused.
  t.Changed();
  t.FreshUntil(a, t.Mark(), now + 10s);
  EXPECT_FALSE(t.FreshAttributes(a, now));
}

// A SETATTR's reply: marked as it comes, after the change's first
// Changed() (Set takes the mark) and before its last.
InodeTable::SendMark Set(InodeTable& t) {
  t.Changed();
  return t.Mark();
}
void SetReplied(InodeTable& t, InodeId ino, InodeTable::SendMark sent, const nfs::Attributes& attr,
                InodeTable::Clock::time_point until) {
  t.UpdateAttributes(ino, attr, sent);
  t.FreshAfterChange(ino, sent, until);
  t.Changed();
}

// tar sets a file's times, then its owner, through the descriptor it
// wrote: the kernel's GETATTR before the chown is answered from the
// SETATTR's reply, also while the file is open to write, until the next
// write or any other change.
TEST(InodeTableTest, AChangesAttributesAnswerWhileOpenToWriteUntilTheNextWrite) {
  using namespace std::chrono_literals;
  InodeTable t(Fh(0));
  const InodeId a = t.Learn(Fh(1), Size(3), t.Mark());
  const auto now = InodeTable::Clock::now();

  SetReplied(t, a, Set(t), Size(7), now + 10s);
  auto fresh = t.FreshAttributes(a, now, /*open_for_writing=*/true);
  ASSERT_TRUE(fresh) << "its own end of change does not end it";
  EXPECT_EQ(fresh->attr.size, 7u);
  EXPECT_FALSE(t.FreshAttributes(a, now + 10s, true)) << "past its time";

  SetReplied(t, a, Set(t), Size(7), now + 10s);
  t.Written(a);
  EXPECT_FALSE(t.FreshAttributes(a, now, true)) << "a write since";
  EXPECT_FALSE(t.FreshAttributes(a, now, false)) << "a write since";

  // A write between the SETATTR's sending and its reply may not be in it.
  auto sent = Set(t);
  t.Written(a);
  SetReplied(t, a, sent, Size(7), now + 10s);
  EXPECT_FALSE(t.FreshAttributes(a, now, true));

  // Another change between: its effect may not be in them.
  sent = Set(t);
  t.Changed();
  SetReplied(t, a, sent, Size(7), now + 10s);
  EXPECT_FALSE(t.FreshAttributes(a, now, true));
  SetReplied(t, a, Set(t), Size(7), now + 10s);
  t.Changed();
  EXPECT_FALSE(t.FreshAttributes(a, now, true)) << "a change after it";

  // An OPEN's attributes never answer while the file is open to write:
  // bytes written before the OPEN may reach the server after it.
  Opened(t, a, t.Mark(), Size(7), now + 10s);
  EXPECT_FALSE(t.FreshAttributes(a, now, true));
  EXPECT_TRUE(t.FreshAttributes(a, now, false));
  // And a write ends them too.
  Opened(t, a, t.Mark(), Size(7), now + 10s);
  t.Written(a);
  EXPECT_FALSE(t.FreshAttributes(a, now, false));
}

nfs::Attributes Version(uint64_t change) {
  nfs::Attributes attr;
  attr.valid = nfs::Attributes::kChange | nfs::Attributes::kSize;
  attr.change = change;
  attr.size = change * 100;
  return attr;
}

// A request that went out long after every attribute was handed out.
InodeTable::SendMark Later(const InodeTable& t) {
  auto mark = t.Mark();
  mark.at += std::chrono::seconds(1);
  return mark;
}

// Two replies whose requests were out at once may be applied in either
// order: the second is flagged (FileSystem then drops the kernel's copy)
// and the file's version is uncertain until attributes asked for after
// both come.
TEST(InodeTableTest, OverlappingRepliesAreFlaggedAndLeaveTheVersionUncertain) {
  using namespace std::chrono_literals;
  InodeTable t(Fh(0));
  const InodeId a = t.Learn(Fh(1), Version(1), t.Mark());
  const InodeId b = t.Learn(Fh(2), Version(1), t.Mark());

  const auto first = Later(t);
  const auto second = Later(t);
  EXPECT_FALSE(t.UpdateAttributes(a, Version(3), second).overlapped) << "nothing since";
  EXPECT_EQ(t.VersionOf(a).change, 3u);
  const auto older = t.UpdateAttributes(a, Version(2), first);
  EXPECT_TRUE(older.overlapped);
  EXPECT_EQ(older.previous_change, 3u);
  EXPECT_EQ(t.VersionOf(a).change, InodeTable::kUncertainChange);
  EXPECT_EQ(t.VersionOf(a).size, 200u);
  EXPECT_EQ(t.VersionOf(b).change, 1u) << "another file";
  const auto now = InodeTable::Clock::now();
  Opened(t, a, first, Version(2), now + 10s);
  EXPECT_FALSE(t.FreshAttributes(a, now)) << "uncertain";

  const uint64_t uncertain_at = t.VersionOf(a).uncertain_at;
  EXPECT_NE(uncertain_at, 0u);

  // The same version again, from a request out before: no news, still
  // uncertain, but data read before is not to answer after it. Version 3
  // was handed out since that request went out: the kernel may keep it.
  EXPECT_TRUE(t.UpdateAttributes(a, Version(2), first).overlapped);
  EXPECT_EQ(t.VersionOf(a).change, InodeTable::kUncertainChange);
  EXPECT_NE(t.VersionOf(a).uncertain_at, 0u);
  EXPECT_NE(t.VersionOf(a).uncertain_at, uncertain_at);
  // Asked for after both: certain.
  EXPECT_FALSE(t.UpdateAttributes(a, Version(4), Later(t)).overlapped);
  EXPECT_EQ(t.VersionOf(a).change, 4u);
  EXPECT_EQ(t.VersionOf(a).uncertain_at, 0u);

  // Through LOOKUP (Learn) too.
  const auto out = t.Mark();
  t.UpdateAttributes(a, Version(6), t.Mark());
  InodeTable::Applied applied;
  EXPECT_EQ(t.Learn(Fh(1), Version(5), out, &applied), a);
  EXPECT_TRUE(applied.overlapped);
  EXPECT_EQ(t.VersionOf(a).change, InodeTable::kUncertainChange);

  // Attributes handed out from an OPEN's count as applied ones: a GETATTR
  // out meanwhile overlaps them.
  t.UpdateAttributes(a, Version(7), t.Mark());
  const auto later = InodeTable::Clock::now();
  Opened(t, a, t.Mark(), Version(7), later + 10s);
  const auto getattr = t.Mark();
  ASSERT_TRUE(t.FreshAttributes(a, later));
  EXPECT_TRUE(t.UpdateAttributes(a, Version(8), getattr).overlapped);

  // Handed out just before a request went out: the kernel may take them
  // only after, so they overlap it too. Not a second later.
  t.UpdateAttributes(a, Version(9), Later(t));
  EXPECT_TRUE(t.UpdateAttributes(a, Version(10), t.Mark()).overlapped);
  EXPECT_FALSE(t.UpdateAttributes(a, Version(11), Later(t)).overlapped);
  EXPECT_EQ(t.VersionOf(a).change, 11u);
}

// A reply the same as the attributes applied last still overlaps other
// ones handed out since its request went out: the kernel may have kept
// those. Seen in PosixAttrOrderTest's trace: a GETATTR out, an OPEN's
// older size handed to an fstat, a listing's newer one, then the GETATTR's
// (the same as the listing's) went to the kernel without dropping the
// OPEN's, which the kernel had kept and answered the next stat from.
TEST(InodeTableTest, ARepliesSameAttributesOverlapOthersHandedOutSince) {
  using namespace std::chrono_literals;
  InodeTable t(Fh(0));
  const InodeId a = t.Learn(Fh(1), Version(1), t.Mark());
  const auto getattr = Later(t);
  const auto now = InodeTable::Clock::now();
  Opened(t, a, Later(t), Version(2), now + 10s);
  ASSERT_TRUE(t.FreshAttributes(a, now));
  EXPECT_TRUE(t.UpdateAttributes(a, Version(3), getattr).overlapped) << "a listing's";
  EXPECT_TRUE(t.UpdateAttributes(a, Version(3), getattr).overlapped)
      << "the same as the listing's, but version 2 was handed out since it was asked for";
  // Only the same version handed out since: nothing the kernel could
  // have kept is different.
  const auto again = Later(t);
  EXPECT_FALSE(t.UpdateAttributes(a, Version(3), Later(t)).overlapped);
  EXPECT_FALSE(t.UpdateAttributes(a, Version(3), again).overlapped);

  // The window before a request counts for the last attributes handed
  // out only: the kernel drops every overlapped reply, and a file read
  // at once after it changed would never get its new size there (knfsd's
  // PosixLinksTest read the old bytes through a noac mount).
  t.UpdateAttributes(a, Version(4), t.Mark());
  EXPECT_TRUE(t.UpdateAttributes(a, Version(5), t.Mark()).overlapped) << "4 was handed just before";
  EXPECT_FALSE(t.UpdateAttributes(a, Version(5), t.Mark()).overlapped)
      << "the same as the last, asked for after every other was handed out";
}

// The window before a request spares the thread the last attributes went
// to: the kernel applies a reply in the thread that asked, before that
// thread can ask again. A reader's revalidating GETATTR right after its
// own last one, overlapped, kept the kernel's old size and pages (the
// names torture: another mount's rewrite read as the old bytes).
TEST(InodeTableTest, TheWindowSparesTheThreadTheLastAttributesWentTo) {
  using namespace std::chrono_literals;
  InodeTable t(Fh(0));
  const InodeId a = t.Learn(Fh(1), Version(1), t.Mark(7));
  EXPECT_FALSE(t.UpdateAttributes(a, Version(2), t.Mark(7)).overlapped)
      << "1 went to thread 7, which took it before it asked again";
  EXPECT_TRUE(t.UpdateAttributes(a, Version(3), t.Mark(9)).overlapped)
      << "2 went to thread 7, which may not have taken it yet";
  EXPECT_TRUE(t.UpdateAttributes(a, Version(4), t.Mark()).overlapped)
      << "3 went to thread 9; the asker is unknown";
  EXPECT_TRUE(t.UpdateAttributes(a, Version(5), t.Mark()).overlapped)
      << "4 went to an unknown thread, not this one";
  // Hand-outs from an OPEN's fresh attributes name their thread too.
  const InodeId b = t.Learn(Fh(2), Version(5), t.Mark(11));
  const auto now = InodeTable::Clock::now();
  Opened(t, b, t.Mark(), Version(6), now + 10s);
  ASSERT_TRUE(t.FreshAttributes(b, now, false, 11));
  EXPECT_FALSE(t.UpdateAttributes(b, Version(7), t.Mark(11)).overlapped);
  // Hand-outs since the request still overlap it, whoever asked.
  const auto asked = t.Mark(11);
  t.UpdateAttributes(b, Version(8), t.Mark(11));
  EXPECT_TRUE(t.UpdateAttributes(b, Version(9), asked).overlapped);
}

// ... but only if no other thread got any within the window: that one may
// take its attributes after this request went out. An OPEN's attributes go
// to no thread (FUSE's open reply carries none).
TEST(InodeTableTest, TheWindowSparesTheAskerOnlyIfNoOtherThreadGotAny) {
  InodeTable t(Fh(0));
  const InodeId a = t.Learn(Fh(1), Version(1), t.Mark(21));
  t.UpdateAttributes(a, Version(2), t.Mark(22));
  EXPECT_TRUE(t.UpdateAttributes(a, Version(3), t.Mark(22)).overlapped)
      << "1 went to thread 21 within the window";
  const InodeId b = t.Learn(Fh(2), Version(1), t.Mark(7));
  InodeTable::SendMark open = t.Mark();
  open.caller = InodeTable::kNoThread;
  t.UpdateAttributes(b, Version(2), open);
  EXPECT_FALSE(t.UpdateAttributes(b, Version(3), t.Mark(7)).overlapped)
      << "the open's went to no thread, 1 to this one";
}

}  // namespace
}  // namespace floatmount::fuse
