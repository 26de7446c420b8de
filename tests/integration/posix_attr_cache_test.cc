// Attributes from a file's OPEN answer the kernel's GETATTR while fresh
// (FileSystem::GetAttr, issue 18): the kernel asks for them again after a
// read only because the read may have moved the atime, so `cat f; stat f`
// and the fstat of a reopened file each cost a round trip before. What
// must hold: every change through this mount (a link, unlink or rename
// over another name of the file, chmod, truncate, another descriptor's
// write) shows at once, and another mount's within actimeo. The same for
// the attributes of a SETATTR's reply, which also answer while the file is
// open to write, until its next write.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <string>

#include "tests/harness/fault_proxy.h"
#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

class PosixAttrCacheTest : public MountTest {
 protected:
  // An hour: nothing expires during a test, so only a change made here
  // can end an answer from the OPEN's attributes.
  PosixAttrCacheTest() { mount_options_ = "actimeo=3600"; }

  // Opens `path` to read and reads from it, through the server: the
  // kernel then asks for the attributes at the next fstat.
  UniqueFd OpenAndRead(const std::string& path) {
    UniqueFd fd(open(path.c_str(), O_RDONLY));
    EXPECT_TRUE(fd.ok()) << path << ": " << ErrnoText();
    Touch(fd.get());
    return fd;
  }
  // A read of the first byte: the kernel's atime is stale after it.
  static void Touch(int fd) {
    char c;
    EXPECT_EQ(pread(fd, &c, 1, 0), 1) << ErrnoText();
  }
  static struct stat FStat(int fd) {
    struct stat st {};
    EXPECT_SYSCALL(fstat(fd, &st));
    return st;
  }
};

// The answer from the OPEN's attributes is a whole one: every field as
// the server has it.
TEST_F(PosixAttrCacheTest, TheOpensAttributesCarryEveryField) {
  ASSERT_TRUE(WriteFile(Path("f"), "0123456789"));
  ASSERT_SYSCALL(chmod(Path("f").c_str(), 0640));
  const timespec times[2] = {{1000000000, 5000}, {1500000000, 7000}};
  ASSERT_SYSCALL(utimensat(AT_FDCWD, Path("f").c_str(), times, 0));
  UniqueFd fd = OpenAndRead(Path("f"));
  ASSERT_TRUE(fd.ok());
  const struct stat here = FStat(fd.get());
  struct stat server {};
  ASSERT_SYSCALL(lstat(ServerPath("f").c_str(), &server));
  EXPECT_EQ(here.st_mode, server.st_mode);
  EXPECT_EQ(here.st_uid, server.st_uid);
  EXPECT_EQ(here.st_gid, server.st_gid);
  EXPECT_EQ(here.st_nlink, server.st_nlink);
  EXPECT_EQ(here.st_size, server.st_size);
  EXPECT_EQ(here.st_mtim.tv_sec, server.st_mtim.tv_sec);
  EXPECT_EQ(here.st_mtim.tv_nsec, server.st_mtim.tv_nsec);
  EXPECT_EQ(here.st_ctim.tv_sec, server.st_ctim.tv_sec);
  EXPECT_EQ(here.st_blocks, server.st_blocks);
}

TEST_F(PosixAttrCacheTest, LinkCountFollowsThisMountsLinksUnlinksAndRenamesOver) {
  ASSERT_TRUE(WriteFile(Path("a"), "data"));
  ASSERT_SYSCALL(link(Path("a").c_str(), Path("b").c_str()));
  UniqueFd fd = OpenAndRead(Path("a"));
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(FStat(fd.get()).st_nlink, 2u);
  ASSERT_SYSCALL(unlink(Path("b").c_str()));
  Touch(fd.get());
  EXPECT_EQ(FStat(fd.get()).st_nlink, 1u) << "the OPEN's link count, from before the unlink";

  ASSERT_SYSCALL(link(Path("a").c_str(), Path("c").c_str()));
  UniqueFd again = OpenAndRead(Path("a"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(FStat(again.get()).st_nlink, 2u);
  ASSERT_TRUE(WriteFile(Path("d"), "other"));
  ASSERT_SYSCALL(rename(Path("d").c_str(), Path("c").c_str()));  // c no longer names a
  Touch(again.get());
  EXPECT_EQ(FStat(again.get()).st_nlink, 1u) << "the OPEN's link count, from before the rename";
  EXPECT_EQ(FStat(fd.get()).st_nlink, 1u);
}

TEST_F(PosixAttrCacheTest, AnotherDescriptorsWriteShowsInTheSizeAndMtime) {
  ASSERT_TRUE(WriteFile(Path("f"), "data"));
  const timespec old_times[2] = {{1000000000, 0}, {1500000000, 0}};
  ASSERT_SYSCALL(utimensat(AT_FDCWD, Path("f").c_str(), old_times, 0));
  UniqueFd reader = OpenAndRead(Path("f"));
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(FStat(reader.get()).st_size, 4);
  {
    UniqueFd writer(open(Path("f").c_str(), O_WRONLY | O_APPEND));
    ASSERT_TRUE(writer.ok()) << ErrnoText();
    ASSERT_EQ(write(writer.get(), "more", 4), 4) << ErrnoText();
    ASSERT_SYSCALL(writer.Close());
  }
  Touch(reader.get());
  const struct stat st = FStat(reader.get());
  EXPECT_EQ(st.st_size, 8) << "the OPEN's size, from before the write";
  EXPECT_GT(st.st_mtim.tv_sec, old_times[1].tv_sec) << "the OPEN's mtime, from before the write";
  char back[8];
  EXPECT_EQ(pread(reader.get(), back, sizeof back, 0), 8) << ErrnoText();
  EXPECT_EQ(std::string(back, 8), "datamore");
}

TEST_F(PosixAttrCacheTest, ChmodAndTruncateShowAtOnce) {
  ASSERT_TRUE(WriteFile(Path("f"), "0123456789"));
  ASSERT_SYSCALL(chmod(Path("f").c_str(), 0644));
  UniqueFd fd = OpenAndRead(Path("f"));
  ASSERT_TRUE(fd.ok());
  ASSERT_SYSCALL(chmod(Path("f").c_str(), 0600));
  Touch(fd.get());
  EXPECT_EQ(FStat(fd.get()).st_mode & 07777, 0600u);
  ASSERT_SYSCALL(truncate(Path("f").c_str(), 2));
  char c;
  EXPECT_EQ(pread(fd.get(), &c, 1, 0), 1) << ErrnoText();
  EXPECT_EQ(FStat(fd.get()).st_size, 2);
  struct stat by_path {};
  ASSERT_SYSCALL(stat(Path("f").c_str(), &by_path));
  EXPECT_EQ(by_path.st_size, 2);
}

// As tar extracts: write, set the times, the owner and the mode through
// the one descriptor. The kernel's GETATTR before the chown is answered
// from the times' SETATTR reply; the set-ID bits are still cleared, and a
// write after it shows in the mtime once it reached the server.
TEST_F(PosixAttrCacheTest, AWriteAfterTheSetAttrsShowsOnceItReachedTheServer) {
  UniqueFd fd(open(Path("f").c_str(), O_CREAT | O_EXCL | O_RDWR, 0600));
  ASSERT_TRUE(fd.ok()) << ErrnoText();
  ASSERT_EQ(pwrite(fd.get(), "data", 4, 0), 4) << ErrnoText();
  ASSERT_SYSCALL(fchmod(fd.get(), 04755));
  const timespec times[2] = {{UTIME_OMIT, UTIME_OMIT}, {1000000000, 0}};
  ASSERT_SYSCALL(futimens(fd.get(), times));
  ASSERT_SYSCALL(fchown(fd.get(), 1000, 1000));
  struct stat st = FStat(fd.get());
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_mode & 07777, 0755u) << "chown clears the set-user-ID bit";
  EXPECT_EQ(st.st_mtim.tv_sec, 1000000000);
  EXPECT_EQ(st.st_size, 4);
  struct stat server {};
  ASSERT_SYSCALL(lstat(ServerPath("f").c_str(), &server));
  EXPECT_EQ(server.st_mode & 07777, 0755u);
  EXPECT_EQ(server.st_mtim.tv_sec, 1000000000);

  // Buffered, then sent when the file has been idle for a second.
  ASSERT_EQ(pwrite(fd.get(), "more", 4, 4), 4) << ErrnoText();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (server.st_size != 8 && std::chrono::steady_clock::now() < deadline) {
    usleep(50 * 1000);
    ASSERT_SYSCALL(lstat(ServerPath("f").c_str(), &server));
  }
  ASSERT_EQ(server.st_size, 8) << "the write never reached the server";
  st = FStat(fd.get());
  EXPECT_EQ(st.st_size, 8);
  EXPECT_EQ(st.st_mtim.tv_sec, server.st_mtim.tv_sec)
      << "the SETATTR's mtime, from before the write";
  EXPECT_NE(st.st_mtim.tv_sec, 1000000000);
}

// Another mount's change, with nothing happening here but reads and
// fstat: it shows once actimeo (2 s) ran out, as for any attribute.
class PosixAttrCacheExpiryTest : public PosixAttrCacheTest {
 protected:
  PosixAttrCacheExpiryTest() { mount_options_ = "actimeo=2"; }
};

TEST_F(PosixAttrCacheExpiryTest, AnotherMountsWriteShowsWithinActimeo) {
  FloatMount* other = MountSecond();
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(WriteFile(Path("f"), "data"));
  UniqueFd fd = OpenAndRead(Path("f"));
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(FStat(fd.get()).st_size, 4);
  ASSERT_TRUE(WriteFile(other->Path("f"), "data and more"));
  const auto start = std::chrono::steady_clock::now();
  while (FStat(fd.get()).st_size != 13 &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(6)) {
    Touch(fd.get());
    usleep(100 * 1000);
  }
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(FStat(fd.get()).st_size, 13);
  EXPECT_LE(waited, Scaled(std::chrono::milliseconds(3000))) << "actimeo=2";
}

// While another mount appends, no process on this one may see the file's
// size go back (`tail -f` would say the file was truncated). Every chunk
// through the proxy waits up to 3 ms more (FaultProxy::SetJitter), so two
// requests about the file are often out at once. The kernel takes a
// reply's attributes only if none came since its request went out, and
// only when the thread that asked runs again: of two replies it may keep
// the older while the other's caller saw the newer, and answer the next
// stat from it (InodeTable::UpdateAttributes). Found so, and fixed: that,
// and an OPEN's attributes, older than a GETATTR's applied before them,
// answering GETATTR (the shared-file stress's watcher saw a file shrink,
// once, in an ASan run). A third process lists the directory, whose
// READDIRPLUS entries carry attributes too. And found so: a GETATTR's
// reply the same as a listing's applied just before it, but not as an
// OPEN's older size handed to an fstat since it was asked for, which the
// kernel kept (about 1 run in 10 with the agent tracing every reply).
class PosixAttrOrderTest : public MountTest {};

// Loops until `deadline`, each step reading the size as `size_of` does;
// 0 if it never went back, 1 (with a line on stderr) if it did.
int SizesNeverGoBack(const char* who, std::chrono::steady_clock::time_point deadline,
                     const std::function<off_t()>& size_of) {
  off_t seen = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const off_t size = size_of();
    if (size < 0) return 2;
    if (size < seen) {
      std::fprintf(stderr, "%s: the size went back from %lld to %lld\n", who,
                   static_cast<long long>(seen), static_cast<long long>(size));
      return 1;
    }
    seen = size;
  }
  return 0;
}

TEST_F(PosixAttrOrderTest, SizesSeenNeverGoBackWhileAnotherMountAppends) {
  if (kernel_client()) GTEST_SKIP() << "no floatmount mount";
  FaultProxy proxy("127.0.0.1", 0, knfsd() ? knfsd_server().address() : server().address(),
                   server_port());
  ASSERT_TRUE(proxy.Start()) << proxy.error();
  proxy.SetJitter(std::chrono::milliseconds(3));
  FloatMount* jittery = MountSecond("", proxy.port());
  ASSERT_NE(jittery, nullptr);
  // Names enough for several READDIRPLUS replies, so a listing's entries
  // wait in a buffer between the kernel's requests (FileSystem::ReadDir).
  ASSERT_EQ(mkdir(Path("d").c_str(), 0755), 0) << std::strerror(errno);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(WriteFile(Path("d/pad-" + std::to_string(i)), ""));
  ASSERT_TRUE(WriteFile(Path("d/f"), "x"));
  const std::string here = Path("d/f"), there = jittery->Path("d/f");
  const std::string listed = jittery->Path("d");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  const auto timeout = std::chrono::seconds(30);
  auto appender = std::async(std::launch::async, [&] {
    return RunInChild([&] {
      UniqueFd fd(open(here.c_str(), O_WRONLY | O_APPEND));
      const std::string block(512, 'a');
      while (fd.ok() && std::chrono::steady_clock::now() < deadline) {
        if (write(fd.get(), block.data(), block.size()) != 512 || fsync(fd.get()) != 0) return 2;
      }
      return fd.ok() ? 0 : 2;
    }, timeout);
  });
  auto opener = std::async(std::launch::async, [&] {
    return RunInChild([&] {
      return SizesNeverGoBack("open, read, fstat", deadline, [&]() -> off_t {
        UniqueFd fd(open(there.c_str(), O_RDONLY));
        char c;
        struct stat st {};
        if (!fd.ok() || pread(fd.get(), &c, 1, 0) != 1 || fstat(fd.get(), &st) != 0) return -1;
        return st.st_size;
      });
    }, timeout);
  });
  auto lister = std::async(std::launch::async, [&] {
    return RunInChild([&] {
      return SizesNeverGoBack("ls -l", deadline, [&]() -> off_t {
        DIR* dir = opendir(listed.c_str());
        if (dir == nullptr) return -1;
        while (readdir(dir) != nullptr) {
        }
        closedir(dir);
        struct stat st {};
        return stat(there.c_str(), &st) == 0 ? st.st_size : -1;
      });
    }, timeout);
  });
  const int watcher = RunInChild([&] {
    return SizesNeverGoBack("stat", deadline, [&]() -> off_t {
      struct stat st {};
      return stat(there.c_str(), &st) == 0 ? st.st_size : -1;
    });
  }, timeout);
  EXPECT_EQ(appender.get(), 0) << "the appender failed";
  EXPECT_EQ(opener.get(), 0) << "1: a size went back (stderr); 2: an error";
  EXPECT_EQ(lister.get(), 0) << "1: a size went back (stderr); 2: an error";
  EXPECT_EQ(watcher, 0) << "1: a size went back (stderr); 2: an error";
}

}  // namespace
}  // namespace floatmount::testing
