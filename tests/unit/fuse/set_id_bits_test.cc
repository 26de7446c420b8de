// The kernel's kill of set-user/group-ID bits on a non-owner's write or
// truncate (fuse/set_id_bits.h): recognised, left to the server, and the
// kernel's cached mode dropped once the WRITEs are out.
#include "fuse/set_id_bits.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <vector>

#include "fuse/file_system.h"
#include "tests/fakes/fake_client.h"
#include "tests/unit/reply_waiter.h"

namespace floatmount::fuse {
namespace {

TEST(SetIdBitsTest, OnlyClearsSetIdBits) {
  EXPECT_TRUE(OnlyClearsSetIdBits(06775, 0775));
  EXPECT_TRUE(OnlyClearsSetIdBits(06775, 02775));  // suid only
  EXPECT_TRUE(OnlyClearsSetIdBits(04755, 0755));
  EXPECT_TRUE(OnlyClearsSetIdBits(0106775, 0100775));  // the kernel sends the type too
  EXPECT_FALSE(OnlyClearsSetIdBits(06775, 06775));     // no change
  EXPECT_FALSE(OnlyClearsSetIdBits(0775, 0775));
  EXPECT_FALSE(OnlyClearsSetIdBits(06775, 0755));  // also drops g+w: a real chmod
  EXPECT_FALSE(OnlyClearsSetIdBits(0775, 04775));  // adds a bit
  EXPECT_FALSE(OnlyClearsSetIdBits(01775, 0775));  // sticky is not a set-ID bit
}

TEST(SetIdBitsTest, OnlyANonOwnersKillIsTheServersToRefuse) {
  nfs::Attributes file;
  file.valid = nfs::Attributes::kMode | nfs::Attributes::kUid;
  file.mode = 06775;
  file.uid = 1001;
  const nfs::Credentials bob{1002, 1002, {1500}};
  const nfs::Credentials alice{1001, 1001, {}};
  const nfs::Credentials root{0, 0, {}};
  EXPECT_TRUE(IsSetIdKillTheServerRefuses(bob, file, 0775));
  EXPECT_FALSE(IsSetIdKillTheServerRefuses(alice, file, 0775));  // the owner's goes out
  EXPECT_FALSE(IsSetIdKillTheServerRefuses(root, file, 0775));
  EXPECT_FALSE(IsSetIdKillTheServerRefuses(bob, file, 0755));  // not a kill: the server decides
  nfs::Attributes unknown_owner = file;
  unknown_owner.valid = nfs::Attributes::kMode;
  EXPECT_FALSE(IsSetIdKillTheServerRefuses(bob, unknown_owner, 0775));
}

class SetIdKillFileSystemTest : public ::testing::Test {
 protected:
  SetIdKillFileSystemTest() : fs_(&fake_, FsOptions{}) {
    fs_.SetKernelCacheInvalidator([this](InodeId ino, bool data) {
      std::lock_guard<std::mutex> lock(mu_);
      invalidated_.push_back({ino, data});
    });
  }
  Got<AttrOut> SetMode(const nfs::Credentials& cred, InodeId ino, uint32_t mode,
                       std::optional<uint64_t> size = std::nullopt, uint64_t handle = 0) {
    nfs::SetAttributes a;
    a.mode = mode;
    a.size = size;
    return Call<AttrOut>([&](auto r) { fs_.SetAttr(cred, ino, a, handle, r); });
  }
  std::vector<std::pair<InodeId, bool>> Invalidated() {
    std::lock_guard<std::mutex> lock(mu_);
    return invalidated_;
  }

  const nfs::Credentials bob_{1002, 1002, {1500}};
  const nfs::Credentials alice_{1001, 1001, {1500}};
  fakes::FakeClient fake_;
  FileSystem fs_;
  std::mutex mu_;
  std::vector<std::pair<InodeId, bool>> invalidated_;  // GUARDED_BY(mu_)
};

TEST_F(SetIdKillFileSystemTest, ANonOwnersKillIsLeftOutAndTheTruncateStillGoes) {
  fake_.AddFile("tool", "0123456789", 06775, 1001, 1500);
  auto e = Call<EntryOut>([&](auto r) { fs_.Lookup(bob_, kRootInode, "tool", r); });
  ASSERT_EQ(e.err, 0);
  // Alone: answered with the file's attributes, nothing sent but GETATTR.
  auto kill = SetMode(bob_, e.value.ino, 0775);
  ASSERT_EQ(kill.err, 0);
  EXPECT_EQ(kill.value.attr.mode, 06775u);
  EXPECT_EQ(fake_.calls("SETATTR"), 0u);
  // With ftruncate's size: the size goes, the mode does not.
  auto open = Call<OpenOut>([&](auto r) { fs_.Open(bob_, e.value.ino, {true, true}, r); });
  ASSERT_EQ(open.err, 0);
  auto truncated = SetMode(bob_, e.value.ino, 0775, 4, open.value.handle);
  ASSERT_EQ(truncated.err, 0);
  EXPECT_EQ(truncated.value.attr.size, 4u);
  EXPECT_EQ(fake_.ContentOf("tool"), "0123");
  // A mode change that is not a kill reaches the server, which refuses it.
  EXPECT_EQ(SetMode(bob_, e.value.ino, 0755).err, EPERM);
  EXPECT_EQ(Call<None>([&](auto r) { fs_.Release(open.value.handle, 0, r); }).err, 0);
}

TEST_F(SetIdKillFileSystemTest, TheOwnersKillGoesToTheServer) {
  fake_.AddFile("tool", "x", 06775, 1001, 1500);
  auto e = Call<EntryOut>([&](auto r) { fs_.Lookup(alice_, kRootInode, "tool", r); });
  auto kill = SetMode(alice_, e.value.ino, 0775);
  ASSERT_EQ(kill.err, 0);
  EXPECT_EQ(kill.value.attr.mode, 0775u);
  EXPECT_EQ(fake_.calls("SETATTR"), 1u);
}

// The kernel keeps the mode it had before the server's WRITE cleared the
// bits; the close after a write whose kill was left out drops it.
TEST_F(SetIdKillFileSystemTest, TheFlushAfterALeftOutKillDropsTheKernelsAttributes) {
  fake_.AddFile("tool", "", 06775, 1001, 1500);
  auto e = Call<EntryOut>([&](auto r) { fs_.Lookup(bob_, kRootInode, "tool", r); });
  auto open = Call<OpenOut>([&](auto r) { fs_.Open(bob_, e.value.ino, {false, true}, r); });
  ASSERT_EQ(open.err, 0);
  auto flush = [&] { return Call<None>([&](auto r) { fs_.Flush(open.value.handle, 0, r); }).err; };
  const size_t before = Invalidated().size();
  ASSERT_EQ(flush(), 0);
  EXPECT_EQ(Invalidated().size(), before);  // no kill left out: nothing to drop
  ASSERT_EQ(SetMode(bob_, e.value.ino, 0775).err, 0);
  const std::string data = "x";
  ASSERT_EQ(Call<size_t>([&](auto r) {
              fs_.Write(open.value.handle,
                        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), 1),
                        0, r);
            }).err,
            0);
  ASSERT_EQ(flush(), 0);
  const auto dropped = Invalidated();
  ASSERT_EQ(dropped.size(), before + 1);
  EXPECT_EQ(dropped.back(), std::make_pair(e.value.ino, false));  // attributes, not pages
  ASSERT_EQ(flush(), 0);
  EXPECT_EQ(Invalidated().size(), before + 1);  // once
  EXPECT_EQ(Call<None>([&](auto r) { fs_.Release(open.value.handle, 0, r); }).err, 0);
}

// A truncate's SETATTR reply carries the mode the server left: no write
// follows, so no drop of the kernel's attributes either.
TEST_F(SetIdKillFileSystemTest, ATruncateWithALeftOutKillDropsNothingLater) {
  fake_.AddFile("tool", "0123", 06775, 1001, 1500);
  auto e = Call<EntryOut>([&](auto r) { fs_.Lookup(bob_, kRootInode, "tool", r); });
  auto open = Call<OpenOut>([&](auto r) { fs_.Open(bob_, e.value.ino, {false, true}, r); });
  ASSERT_EQ(open.err, 0);
  const size_t before = Invalidated().size();
  ASSERT_EQ(SetMode(bob_, e.value.ino, 0775, 0, open.value.handle).err, 0);
  EXPECT_EQ(Call<None>([&](auto r) { fs_.Flush(open.value.handle, 0, r); }).err, 0);
  EXPECT_EQ(Invalidated().size(), before);
  EXPECT_EQ(Call<None>([&](auto r) { fs_.Release(open.value.handle, 0, r); }).err, 0);
}

}  // namespace
}  // namespace floatmount::fuse
