// A storm of LOOKUPs in one directory is answered from one listing of it
// (DirListings, issue 18), through FileSystem against the fake server:
// the saving, and every way an answer from a listing could be wrong.
#include "fuse/dir_listings.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "fuse/file_system.h"
#include "tests/fakes/fake_client.h"
#include "tests/fakes/faulty_client.h"
#include "tests/unit/reply_waiter.h"

namespace floatmount::fuse {
namespace {

using fakes::FakeClient;
using fakes::FaultyClient;

constexpr int kFiles = 100;

class DirListingsTest : public ::testing::Test {
 protected:
  DirListingsTest() : faulty_(&fake_), fs_(&faulty_, Options()) {
    fake_.AddDir("d", 0755);
    for (int i = 0; i < kFiles; ++i) fake_.AddFile(Name(i), std::string(i, 'x'));
    dir_ = Lookup(kRootInode, "d").value.ino;
  }
  static FsOptions Options() {
    FsOptions o;
    o.entry_timeout = 60;
    o.attr_timeout = 60;
    return o;
  }
  static std::string Name(int i) { return "d/f" + std::to_string(i); }
  Got<EntryOut> Lookup(InodeId parent, const std::string& name,
                       const nfs::Credentials& cred = {}) {
    return Call<EntryOut>([&](auto r) { fs_.Lookup(cred, parent, name, r); });
  }
  // Looks up every file of d; checks what comes back.
  void LookUpAll(const nfs::Credentials& cred = {}) {
    for (int i = 0; i < kFiles; ++i) {
      auto e = Lookup(dir_, "f" + std::to_string(i), cred);
      ASSERT_EQ(e.err, 0);
      ASSERT_NE(e.value.ino, 0u) << i;
      EXPECT_EQ(e.value.attr.size, uint64_t(i));
    }
  }

  FakeClient fake_;
  FaultyClient faulty_;
  FileSystem fs_;
  InodeId dir_ = 0;
};

TEST_F(DirListingsTest, AStormOfLookupsIsAnsweredFromOneListing) {
  LookUpAll();
  EXPECT_LE(faulty_.calls("LOOKUP"), 1u + DirListings::Options{}.trigger);
  EXPECT_GE(faulty_.calls("READDIR"), 1u);
}

// A name not in the listing is asked of the server: another client may
// have made it since (close-to-open for new files).
TEST_F(DirListingsTest, ANameTheListingLacksIsAskedOfTheServer) {
  LookUpAll();
  fake_.AddFile("d/made-elsewhere", "hello");
  auto e = Lookup(dir_, "made-elsewhere");
  ASSERT_EQ(e.err, 0);
  EXPECT_NE(e.value.ino, 0u);
  EXPECT_EQ(e.value.attr.size, 5u);
}

TEST_F(DirListingsTest, NamesThisMountMakesOrRemovesAreNeverAnsweredFromAnOldListing) {
  LookUpAll();
  auto made = Call<CreateOut>([&](auto r) { fs_.Create({}, dir_, "new", 0644, {true, true}, r); });
  ASSERT_EQ(made.err, 0);
  ASSERT_EQ(Call<None>([&](auto r) { fs_.Release(made.value.open.handle, 0, r); }).err, 0);
  EXPECT_NE(Lookup(dir_, "new").value.ino, 0u);
  ASSERT_EQ(Call<None>([&](auto r) { fs_.Unlink({}, dir_, "f5", r); }).err, 0);
  EXPECT_EQ(Lookup(dir_, "f5").value.ino, 0u);
}

// The listing is read while a create of this mount is on its way: it may
// predate the create, so it must not be kept.
TEST_F(DirListingsTest, AChangeWhileTheListingIsReadRefusesIt) {
  faulty_.SetDelay("READDIR", std::chrono::milliseconds(300));
  for (int i = 0; i < DirListings::Options{}.trigger; ++i) {
    ASSERT_EQ(Lookup(dir_, "f" + std::to_string(i)).err, 0);
  }
  // The READDIR ran on the (fake) server; its answer is held.
  ASSERT_EQ(faulty_.calls("READDIR"), 1u);
  auto made = Call<CreateOut>([&](auto r) { fs_.Create({}, dir_, "late", 0644, {true, true}, r); });
  ASSERT_EQ(made.err, 0);
  ASSERT_EQ(Call<None>([&](auto r) { fs_.Release(made.value.open.handle, 0, r); }).err, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_NE(Lookup(dir_, "late").value.ino, 0u);
}

// Someone who may not search the directory gets EACCES for every name,
// storm or not: no listing is made for them.
TEST_F(DirListingsTest, AUserWhoMayNotSearchTheDirectoryGetsNoListing) {
  fake_.AddDir("closed", 0744);
  for (int i = 0; i < 20; ++i) fake_.AddFile("closed/g" + std::to_string(i), "x");
  const InodeId closed = Lookup(kRootInode, "closed").value.ino;
  const nfs::Credentials bob{4321, 4321, {}};
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Lookup(closed, "g" + std::to_string(i), bob).err, EACCES);
  EXPECT_EQ(faulty_.calls("READDIR"), 0u);
  // Nor does a listing made for root answer bob.
  for (int i = 0; i < 20; ++i) ASSERT_EQ(Lookup(closed, "g" + std::to_string(i)).err, 0);
  EXPECT_EQ(Lookup(closed, "g3", bob).err, EACCES);
}

// An inode the mount already knows may have changed here since the listing
// was read: its name goes to the server, which has its new attributes.
TEST_F(DirListingsTest, AKnownInodeIsAskedForAgain) {
  ASSERT_EQ(Lookup(dir_, "f77").value.attr.size, 77u);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(Lookup(dir_, "f" + std::to_string(i)).err, 0);
  ASSERT_EQ(faulty_.calls("READDIR"), 1u);  // the listing has f77, as it was
  fake_.ExternalWrite(std::string("d/f77"), 0, std::string(100, 'y'));
  const uint64_t before = faulty_.calls("LOOKUP");
  EXPECT_EQ(Lookup(dir_, "f77").value.attr.size, 100u);
  EXPECT_EQ(faulty_.calls("LOOKUP"), before + 1);
}

TEST(DirListingsOff, WithNoacEveryLookupGoesToTheServer) {
  FakeClient fake;
  fake.AddDir("d");
  for (int i = 0; i < 20; ++i) fake.AddFile("d/f" + std::to_string(i), "x");
  FaultyClient faulty(&fake);
  FsOptions o;
  o.entry_timeout = 0;
  o.attr_timeout = 0;
  FileSystem fs(&faulty, o);
  auto d = Call<EntryOut>([&](auto r) { fs.Lookup({}, kRootInode, "d", r); });
  for (int i = 0; i < 20; ++i) {
    auto e = Call<EntryOut>([&](auto r) { fs.Lookup({}, d.value.ino, "f" + std::to_string(i), r); });
    EXPECT_EQ(e.err, 0);
  }
  EXPECT_EQ(faulty.calls("READDIR"), 0u);
  EXPECT_EQ(faulty.calls("LOOKUP"), 21u);
}

}  // namespace
}  // namespace floatmount::fuse
