// A small file is read in the compound of its OPEN (FsOptions::open_read_max,
// issue 18): the first read then needs no READ of its own. These check the
// saving and, above all, that it never serves bytes older than what this
// mount has done to the file since the OPEN went out.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
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

class OpenReadTest : public ::testing::Test {
 protected:
  OpenReadTest() : faulty_(&fake_), fs_(&faulty_, FsOptions{}) {}

  InodeId Learn(const std::string& name) {
    auto e = Call<EntryOut>([&](auto r) { fs_.Lookup(root_, kRootInode, name, r); });
    EXPECT_EQ(e.err, 0);
    return e.value.ino;
  }
  uint64_t Open(InodeId ino, OpenFlags flags, const nfs::Credentials& cred) {
    auto o = Call<OpenOut>([&](auto r) { fs_.Open(cred, ino, flags, r); });
    EXPECT_EQ(o.err, 0);
    return o.value.handle;
  }
  std::string Read(uint64_t h, size_t size) {
    auto got = Call<ReadOut>([&](auto r) { fs_.Read(h, size, 0, r); });
    EXPECT_EQ(got.err, 0);
    return std::string(reinterpret_cast<const char*>(got.value.data.get()), got.value.size);
  }
  void Release(uint64_t h) {
    EXPECT_EQ(Call<None>([&](auto r) { fs_.Release(h, 0, r); }).err, 0);
  }

  nfs::Credentials root_{};
  nfs::Credentials user_{1000, 1000, {}};
  FakeClient fake_;
  FaultyClient faulty_;
  FileSystem fs_;
};

TEST_F(OpenReadTest, ASmallFileIsReadWithItsOpen) {
  fake_.AddFile("f", "hello");
  const InodeId ino = Learn("f");
  const uint64_t h = Open(ino, {}, root_);
  EXPECT_EQ(Read(h, 4096), "hello");
  EXPECT_EQ(faulty_.calls("OPEN"), 1u);
  EXPECT_EQ(faulty_.calls("READ"), 0u);
  Release(h);
}

TEST_F(OpenReadTest, AFileLargerThanTheLimitIsReadOnItsOwn) {
  const std::string big(FsOptions{}.open_read_max + 1, 'b');
  fake_.AddFile("big", big);
  const uint64_t h = Open(Learn("big"), {}, root_);
  EXPECT_EQ(Read(h, big.size()), big);
  EXPECT_GT(faulty_.calls("READ"), 0u);
  Release(h);
}

// The size the mount knows is older than the file: the bytes read with the
// OPEN are not the whole file, and a part of it must never be served as if
// it were (a short read the kernel would take for the end).
TEST_F(OpenReadTest, AFileThatGrewSinceItWasSeenIsReadWhole) {
  const nfs::FileHandle fh = fake_.AddFile("grew", "small");
  const InodeId ino = Learn("grew");
  const std::string more(64 << 10, 'm');
  fake_.ExternalWrite(fh, 5, more);
  const uint64_t h = Open(ino, {}, root_);
  EXPECT_EQ(Read(h, 5 + more.size()), "small" + more);
  Release(h);
}

// One user truncates the file while another user's OPEN (with its READ) is
// on the way back: the READ ran before the truncate, so its bytes must not
// be served after it.
TEST_F(OpenReadTest, ATruncateWhileTheOpenIsOnTheWayIsNotUndone) {
  fake_.AddFile("t", "stale bytes", 0666);
  const InodeId ino = Learn("t");
  OpenFlags rw;
  rw.write = true;
  const uint64_t writer = Open(ino, rw, root_);
  faulty_.SetDelay("OPEN", std::chrono::milliseconds(300));
  auto opened = std::make_shared<std::promise<Got<OpenOut>>>();
  fs_.Open(user_, ino, {}, [opened](int err, OpenOut out) {
    opened->set_value(Got<OpenOut>{err, out});
  });
  // The OPEN ran on the (fake) server at once; its reply is held.
  ASSERT_EQ(faulty_.calls("OPEN"), 2u);
  nfs::SetAttributes size0;
  size0.size = 0;
  auto t = Call<AttrOut>([&](auto r) { fs_.SetAttr(root_, ino, size0, writer, r); });
  ASSERT_EQ(t.err, 0);
  auto reader = opened->get_future();
  ASSERT_EQ(reader.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  const Got<OpenOut> o = reader.get();
  ASSERT_EQ(o.err, 0);
  EXPECT_EQ(Read(o.value.handle, 4096), "");
  Release(o.value.handle);
  Release(writer);
}

TEST_F(OpenReadTest, OffWithAZeroLimit) {
  FsOptions options;
  options.open_read_max = 0;
  FileSystem fs(&faulty_, options);
  fake_.AddFile("f", "hello");
  auto e = Call<EntryOut>([&](auto r) { fs.Lookup(root_, kRootInode, "f", r); });
  auto o = Call<OpenOut>([&](auto r) { fs.Open(root_, e.value.ino, {}, r); });
  ASSERT_EQ(o.err, 0);
  auto got = Call<ReadOut>([&](auto r) { fs.Read(o.value.handle, 4096, 0, r); });
  EXPECT_EQ(got.value.size, 5u);
  EXPECT_EQ(faulty_.calls("READ"), 1u);
  EXPECT_EQ(Call<None>([&](auto r) { fs.Release(o.value.handle, 0, r); }).err, 0);
}

}  // namespace
}  // namespace floatmount::fuse
