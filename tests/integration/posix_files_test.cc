// POSIX behaviour of regular files on a floatmount mount: create, write and
// read back, O_APPEND, O_EXCL, O_TRUNC, truncate, sparse files, offsets past
// 4 GiB, mmap, fsync and close-to-open (checked in the server's export
// directory), and unlink of an open file.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

constexpr off_t kKiB = 1024;
constexpr off_t kMiB = 1024 * kKiB;
constexpr off_t kGiB = 1024 * kMiB;

class PosixFilesTest : public MountTest {};

TEST_F(PosixFilesTest, CreateWriteReadBack) {
  const std::string data = TestData(3 * kMiB + 17, 1);
  UniqueFd fd(open(Path("f").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0640));
  ASSERT_SYSCALL(fd.get());
  // Odd-sized writes, so they line up with neither pages nor the wsize.
  for (size_t off = 0; off < data.size(); off += 4099) {
    const size_t len = std::min<size_t>(4099, data.size() - off);
    ASSERT_EQ(write(fd.get(), data.data() + off, len), static_cast<ssize_t>(len)) << ErrnoText();
  }
  struct stat st {};
  ASSERT_SYSCALL(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, static_cast<off_t>(data.size()));
  ASSERT_SYSCALL(fd.Close());

  ASSERT_SYSCALL(stat(Path("f").c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_size, static_cast<off_t>(data.size()));
  EXPECT_EQ(st.st_nlink, 1u);
  const auto back = ReadFile(Path("f"));
  ASSERT_TRUE(back) << ErrnoText();
  EXPECT_TRUE(SameBytes(*back, data));
  const auto on_server = ReadFile(ServerPath("f"));
  ASSERT_TRUE(on_server) << ErrnoText();
  EXPECT_TRUE(SameBytes(*on_server, data));

  // Reads at and past the end of file return 0 bytes.
  UniqueFd rd(open(Path("f").c_str(), O_RDONLY));
  ASSERT_SYSCALL(rd.get());
  char c;
  EXPECT_EQ(pread(rd.get(), &c, 1, st.st_size), 0);
  EXPECT_EQ(pread(rd.get(), &c, 1, st.st_size + kMiB), 0);
  const auto tail = PreadUpTo(rd.get(), 100, st.st_size - 10);
  ASSERT_TRUE(tail);
  EXPECT_TRUE(SameBytes(*tail, std::string_view(data).substr(data.size() - 10)));
}

TEST_F(PosixFilesTest, TwoDescriptorsSeeEachOthersWrites) {
  UniqueFd writer(open(Path("shared").c_str(), O_CREAT | O_RDWR, 0644));
  ASSERT_SYSCALL(writer.get());
  UniqueFd reader(open(Path("shared").c_str(), O_RDONLY));
  ASSERT_SYSCALL(reader.get());
  const std::string first = TestData(10000, 2);
  ASSERT_TRUE(PwriteAll(writer.get(), first, 0));
  // The other descriptor sees the data before any close or fsync.
  auto seen = PreadUpTo(reader.get(), 20000, 0);
  ASSERT_TRUE(seen);
  EXPECT_TRUE(SameBytes(*seen, first));
  ASSERT_TRUE(PwriteAll(writer.get(), "XYZ", 5000));
  seen = PreadUpTo(reader.get(), 3, 5000);
  ASSERT_TRUE(seen);
  EXPECT_EQ(*seen, "XYZ");
}

TEST_F(PosixFilesTest, OverwriteInTheMiddleKeepsTheRest) {
  std::string data = TestData(200 * kKiB, 3);
  ASSERT_TRUE(WriteFile(Path("f"), data));
  UniqueFd fd(open(Path("f").c_str(), O_WRONLY));
  ASSERT_SYSCALL(fd.get());
  const std::string patch = TestData(5000, 4);
  ASSERT_TRUE(PwriteAll(fd.get(), patch, 70001));
  ASSERT_SYSCALL(fd.Close());
  data.replace(70001, patch.size(), patch);
  const auto back = ReadFile(Path("f"));
  ASSERT_TRUE(back);
  EXPECT_TRUE(SameBytes(*back, data));
  const auto on_server = ReadFile(ServerPath("f"));
  ASSERT_TRUE(on_server);
  EXPECT_TRUE(SameBytes(*on_server, data));
}

TEST_F(PosixFilesTest, AppendWritesAtTheEnd) {
  ASSERT_TRUE(WriteFile(Path("log"), "start|"));
  UniqueFd a(open(Path("log").c_str(), O_WRONLY | O_APPEND));
  UniqueFd b(open(Path("log").c_str(), O_WRONLY | O_APPEND));
  ASSERT_SYSCALL(a.get());
  ASSERT_SYSCALL(b.get());
  ASSERT_EQ(write(a.get(), "aaa|", 4), 4);
  ASSERT_EQ(write(b.get(), "bbb|", 4), 4);
  // The file offset does not matter: every write goes to the end.
  ASSERT_SYSCALL(lseek(a.get(), 0, SEEK_SET));
  ASSERT_EQ(write(a.get(), "ccc|", 4), 4);
  EXPECT_EQ(lseek(a.get(), 0, SEEK_CUR), 18);
  ASSERT_EQ(write(b.get(), "ddd", 3), 3);
  ASSERT_SYSCALL(a.Close());
  ASSERT_SYSCALL(b.Close());
  EXPECT_EQ(ReadFile(Path("log")).value_or("<error>"), "start|aaa|bbb|ccc|ddd");
  EXPECT_EQ(ReadFile(ServerPath("log")).value_or("<error>"), "start|aaa|bbb|ccc|ddd");
}

TEST_F(PosixFilesTest, ExclusiveCreateOfAnExistingNameFails) {
  UniqueFd first(open(Path("x").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644));
  ASSERT_SYSCALL(first.get());
  ASSERT_EQ(write(first.get(), "keep", 4), 4);
  ASSERT_SYSCALL(first.Close());
  EXPECT_FAILS_WITH(open(Path("x").c_str(), O_CREAT | O_EXCL | O_WRONLY | O_TRUNC, 0644), EEXIST);
  ASSERT_SYSCALL(mkdir(Path("dir").c_str(), 0755));
  EXPECT_FAILS_WITH(open(Path("dir").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
  // O_EXCL does not follow symlinks, dangling or not.
  ASSERT_SYSCALL(symlink("nowhere", Path("dangling").c_str()));
  EXPECT_FAILS_WITH(open(Path("dangling").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
  struct stat st {};
  EXPECT_FAILS_WITH(stat(Path("nowhere").c_str(), &st), ENOENT);
  EXPECT_EQ(ReadFile(Path("x")).value_or("<error>"), "keep");
}

TEST_F(PosixFilesTest, OpenWithTruncEmptiesTheFile) {
  ASSERT_TRUE(WriteFile(Path("t"), TestData(100 * kKiB, 5)));
  UniqueFd fd(open(Path("t").c_str(), O_WRONLY | O_TRUNC));
  ASSERT_SYSCALL(fd.get());
  struct stat st {};
  ASSERT_SYSCALL(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 0);
  ASSERT_EQ(write(fd.get(), "x", 1), 1);
  ASSERT_SYSCALL(fd.Close());
  ASSERT_SYSCALL(stat(Path("t").c_str(), &st));
  EXPECT_EQ(st.st_size, 1);
  EXPECT_TRUE(SameBytes(ReadFile(Path("t")).value_or("<error>"), "x"));
  EXPECT_TRUE(SameBytes(ReadFile(ServerPath("t")).value_or("<error>"), "x"));
}

TEST_F(PosixFilesTest, TruncateShrinksAndExtendsWithZeros) {
  const std::string data = TestData(100 * kKiB, 6);
  ASSERT_TRUE(WriteFile(Path("t"), data));
  ASSERT_SYSCALL(truncate(Path("t").c_str(), 10000));
  struct stat st {};
  ASSERT_SYSCALL(stat(Path("t").c_str(), &st));
  EXPECT_EQ(st.st_size, 10000);
  EXPECT_TRUE(SameBytes(ReadFile(Path("t")).value_or(""), data.substr(0, 10000)));

  UniqueFd fd(open(Path("t").c_str(), O_RDWR));
  ASSERT_SYSCALL(fd.get());
  ASSERT_SYSCALL(ftruncate(fd.get(), 300000));
  ASSERT_SYSCALL(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 300000);
  ASSERT_SYSCALL(fd.Close());
  const std::string expected = data.substr(0, 10000) + std::string(290000, '\0');
  EXPECT_TRUE(SameBytes(ReadFile(Path("t")).value_or(""), expected));
  EXPECT_TRUE(SameBytes(ReadFile(ServerPath("t")).value_or(""), expected));
  ASSERT_SYSCALL(stat(ServerPath("t").c_str(), &st));
  EXPECT_EQ(st.st_size, 300000);
}

// Data written but not yet flushed must not reappear past a shrinking
// truncate, and the gap before a later write reads as zeros.
TEST_F(PosixFilesTest, TruncateDropsCachedWritesBeyondTheNewSize) {
  UniqueFd fd(open(Path("t").c_str(), O_CREAT | O_RDWR, 0644));
  ASSERT_SYSCALL(fd.get());
  const std::string data = TestData(2 * kMiB, 7);
  ASSERT_TRUE(PwriteAll(fd.get(), data, 0));
  ASSERT_SYSCALL(ftruncate(fd.get(), 1000));
  ASSERT_TRUE(PwriteAll(fd.get(), "tail", 5000));
  ASSERT_SYSCALL(fd.Close());
  const std::string expected = data.substr(0, 1000) + std::string(4000, '\0') + "tail";
  EXPECT_TRUE(SameBytes(ReadFile(Path("t")).value_or(""), expected));
  EXPECT_TRUE(SameBytes(ReadFile(ServerPath("t")).value_or(""), expected));
}

TEST_F(PosixFilesTest, SparseFileAtOneGiB) {
  const std::string tail = TestData(4096, 8);
  UniqueFd fd(open(Path("sparse").c_str(), O_CREAT | O_RDWR, 0644));
  ASSERT_SYSCALL(fd.get());
  ASSERT_TRUE(PwriteAll(fd.get(), tail, kGiB));
  struct stat st {};
  ASSERT_SYSCALL(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, kGiB + 4096);
  ASSERT_SYSCALL(fd.Close());

  // Only the written block takes space, on the mount and on the server
  // (nobody sent 1 GiB of zeros).
  ASSERT_SYSCALL(stat(Path("sparse").c_str(), &st));
  EXPECT_EQ(st.st_size, kGiB + 4096);
  EXPECT_LT(st.st_blocks * 512, 16 * kMiB) << "st_blocks " << st.st_blocks;
  struct stat server_st {};
  ASSERT_SYSCALL(stat(ServerPath("sparse").c_str(), &server_st));
  EXPECT_EQ(server_st.st_size, kGiB + 4096);
  EXPECT_LT(server_st.st_blocks * 512, 16 * kMiB) << "server st_blocks " << server_st.st_blocks;

  UniqueFd rd(open(Path("sparse").c_str(), O_RDONLY));
  ASSERT_SYSCALL(rd.get());
  const std::string zeros(kMiB, '\0');
  for (off_t at : {off_t{0}, 512 * kMiB, kGiB - kMiB}) {
    const auto hole = PreadUpTo(rd.get(), kMiB, at);
    ASSERT_TRUE(hole) << ErrnoText();
    EXPECT_TRUE(SameBytes(*hole, zeros)) << "hole at " << at;
  }
  const auto edge = PreadUpTo(rd.get(), 8192, kGiB - 4096);
  ASSERT_TRUE(edge);
  EXPECT_TRUE(SameBytes(*edge, std::string(4096, '\0') + tail));
}

TEST_F(PosixFilesTest, OffsetsBeyondFourGiB) {
  const off_t far = 5 * kGiB + 12345;
  const off_t straddle = 4 * kGiB - 4096;
  const std::string a = TestData(kMiB, 9);
  const std::string b = TestData(8192, 10);
  UniqueFd fd(open(Path("big").c_str(), O_CREAT | O_RDWR, 0644));
  ASSERT_SYSCALL(fd.get());
  ASSERT_TRUE(PwriteAll(fd.get(), a, far));
  ASSERT_TRUE(PwriteAll(fd.get(), b, straddle));
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_END), far + kMiB);
  auto back = PreadUpTo(fd.get(), kMiB, far);
  ASSERT_TRUE(back);
  EXPECT_TRUE(SameBytes(*back, a));
  ASSERT_SYSCALL(fd.Close());

  struct stat st {};
  ASSERT_SYSCALL(stat(Path("big").c_str(), &st));
  EXPECT_EQ(st.st_size, far + kMiB);
  UniqueFd rd(open(Path("big").c_str(), O_RDONLY));
  ASSERT_SYSCALL(rd.get());
  back = PreadUpTo(rd.get(), kMiB, far);
  ASSERT_TRUE(back);
  EXPECT_TRUE(SameBytes(*back, a));
  back = PreadUpTo(rd.get(), 8192, straddle);
  ASSERT_TRUE(back);
  EXPECT_TRUE(SameBytes(*back, b));
  back = PreadUpTo(rd.get(), 100, far - 50);
  ASSERT_TRUE(back);
  EXPECT_TRUE(SameBytes(*back, std::string(50, '\0') + a.substr(0, 50)));

  // The bytes landed at the same 64-bit offsets on the server.
  UniqueFd server(open(ServerPath("big").c_str(), O_RDONLY));
  ASSERT_SYSCALL(server.get());
  back = PreadUpTo(server.get(), kMiB, far);
  ASSERT_TRUE(back);
  EXPECT_TRUE(SameBytes(*back, a));
  back = PreadUpTo(server.get(), 8192, straddle);
  ASSERT_TRUE(back);
  EXPECT_TRUE(SameBytes(*back, b));
}

TEST_F(PosixFilesTest, FsyncPutsTheDataOnTheServer) {
  UniqueFd fd(open(Path("synced").c_str(), O_CREAT | O_WRONLY, 0644));
  ASSERT_SYSCALL(fd.get());
  const std::string first = TestData(kMiB + 5, 11);
  ASSERT_TRUE(PwriteAll(fd.get(), first, 0));
  EXPECT_EQ(fsync(fd.get()), 0) << ErrnoText();
  // The file is still open: the server has the data because of fsync alone.
  EXPECT_TRUE(SameBytes(ReadFile(ServerPath("synced")).value_or(""), first));
  const std::string second = TestData(300 * kKiB, 12);
  ASSERT_TRUE(PwriteAll(fd.get(), second, static_cast<off_t>(first.size())));
  EXPECT_EQ(fdatasync(fd.get()), 0) << ErrnoText();
  EXPECT_TRUE(SameBytes(ReadFile(ServerPath("synced")).value_or(""), first + second));
  EXPECT_EQ(fd.Close(), 0) << ErrnoText();
}

// O_DIRECT writes reach the server before they return (FILE_SYNC WRITEs,
// or a COMMIT after a weaker answer), after the buffered writes before
// them; O_DIRECT reads come from the server.
TEST_F(PosixFilesTest, DirectWritesAreOnTheServerWhenTheyReturn) {
  const std::string buffered = TestData(64 * kKiB, 15);
  ASSERT_TRUE(WriteFile(Path("direct"), buffered));
  UniqueFd fd(open(Path("direct").c_str(), O_RDWR | O_DIRECT));
  ASSERT_SYSCALL(fd.get());
  constexpr size_t kSize = kMiB;
  void* raw = nullptr;
  ASSERT_EQ(posix_memalign(&raw, 4096, kSize), 0);
  std::unique_ptr<char, decltype(&free)> buf(static_cast<char*>(raw), &free);
  const std::string data = TestData(kSize, 16);
  std::copy(data.begin(), data.end(), buf.get());
  ASSERT_EQ(pwrite(fd.get(), buf.get(), kSize, 32 * kKiB), static_cast<ssize_t>(kSize))
      << ErrnoText();
  // Still open, no fsync: the server has both.
  const std::string want = buffered.substr(0, 32 * kKiB) + data;
  EXPECT_TRUE(SameBytes(ReadFile(ServerPath("direct")).value_or(""), want));
  std::fill(buf.get(), buf.get() + kSize, 0);
  ASSERT_EQ(pread(fd.get(), buf.get(), kSize, 32 * kKiB), static_cast<ssize_t>(kSize))
      << ErrnoText();
  EXPECT_TRUE(SameBytes(std::string(buf.get(), kSize), data));
  EXPECT_EQ(fd.Close(), 0) << ErrnoText();
}

TEST_F(PosixFilesTest, CloseToOpenTheServerHasTheDataAfterClose) {
  const std::string data = TestData(2 * kMiB + 3, 13);
  UniqueFd fd(open(Path("c2o").c_str(), O_CREAT | O_WRONLY, 0644));
  ASSERT_SYSCALL(fd.get());
  ASSERT_TRUE(PwriteAll(fd.get(), data, 0));
  // close() returns only after the data is written: no fsync here.
  ASSERT_EQ(fd.Close(), 0) << ErrnoText();
  EXPECT_TRUE(SameBytes(ReadFile(ServerPath("c2o")).value_or(""), data));
  struct stat st {};
  ASSERT_SYSCALL(stat(ServerPath("c2o").c_str(), &st));
  EXPECT_EQ(st.st_size, static_cast<off_t>(data.size()));
}

TEST_F(PosixFilesTest, LargeFileRoundTrips) {
  const std::string data = TestData(48 * kMiB + 4097, 14);
  ASSERT_TRUE(WriteFile(Path("large"), data));
  EXPECT_TRUE(SameBytes(ReadFile(Path("large")).value_or(""), data));
  EXPECT_TRUE(SameBytes(ReadFile(ServerPath("large")).value_or(""), data));
}

TEST_F(PosixFilesTest, SharedMmapWritesReachTheServer) {
  const size_t size = 256 * kKiB;
  const std::string data = TestData(size, 15);
  UniqueFd fd(open(Path("mapped").c_str(), O_CREAT | O_RDWR, 0644));
  ASSERT_SYSCALL(fd.get());
  ASSERT_SYSCALL(ftruncate(fd.get(), static_cast<off_t>(size)));
  void* map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(map, MAP_FAILED) << ErrnoText();
  std::copy(data.begin(), data.end(), static_cast<char*>(map));
  EXPECT_EQ(msync(map, size, MS_SYNC), 0) << ErrnoText();
  ASSERT_SYSCALL(munmap(map, size));
  ASSERT_EQ(fd.Close(), 0) << ErrnoText();
  EXPECT_TRUE(SameBytes(ReadFile(ServerPath("mapped")).value_or(""), data));

  UniqueFd rd(open(Path("mapped").c_str(), O_RDONLY));
  ASSERT_SYSCALL(rd.get());
  map = mmap(nullptr, size, PROT_READ, MAP_SHARED, rd.get(), 0);
  ASSERT_NE(map, MAP_FAILED) << ErrnoText();
  EXPECT_TRUE(SameBytes(std::string_view(static_cast<const char*>(map), size), data));
  munmap(map, size);
}

// An unlinked file stays readable and writable through descriptors that
// were open (as with the kernel NFS client, which renames it to a hidden
// .nfsXXXX name until the last close); its name is gone at once, and nothing
// is left behind after the last close.
TEST_F(PosixFilesTest, UnlinkOfAnOpenFileKeepsTheDescriptorWorking) {
  const std::string data = TestData(300 * kKiB, 16);
  ASSERT_TRUE(WriteFile(Path("victim"), data));
  UniqueFd fd(open(Path("victim").c_str(), O_RDWR));
  ASSERT_SYSCALL(fd.get());
  ASSERT_SYSCALL(unlink(Path("victim").c_str()));

  struct stat st {};
  EXPECT_FAILS_WITH(stat(Path("victim").c_str(), &st), ENOENT);
  const auto names = ListDir(Path(""));
  ASSERT_TRUE(names) << ErrnoText();
  EXPECT_EQ(std::count(names->begin(), names->end(), "victim"), 0);

  auto back = PreadUpTo(fd.get(), data.size() + 10, 0);
  ASSERT_TRUE(back) << "pread after unlink: " << ErrnoText();
  EXPECT_TRUE(SameBytes(*back, data));
  ASSERT_SYSCALL(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, static_cast<off_t>(data.size()));
  ASSERT_TRUE(PwriteAll(fd.get(), "more", static_cast<off_t>(data.size())));
  back = PreadUpTo(fd.get(), 4, static_cast<off_t>(data.size()));
  ASSERT_TRUE(back) << ErrnoText();
  EXPECT_EQ(*back, "more");

  // A new file under the old name is a different file.
  ASSERT_TRUE(WriteFile(Path("victim"), "new"));
  back = PreadUpTo(fd.get(), 8, 0);
  ASSERT_TRUE(back);
  EXPECT_TRUE(SameBytes(*back, data.substr(0, 8)));
  EXPECT_EQ(ReadFile(Path("victim")).value_or("<error>"), "new");

  EXPECT_EQ(fd.Close(), 0) << ErrnoText();
  ASSERT_SYSCALL(unlink(Path("victim").c_str()));
  // After the last close no hidden file remains, on the mount or the server.
  auto entries = [](const std::string& dir) {
    return ListDir(dir).value_or(std::vector<std::string>{"<error>"});
  };
  EXPECT_TRUE(WaitFor([&] { return entries(Path("")).empty(); }, std::chrono::seconds(5)))
      << "left on the mount: " << ::testing::PrintToString(entries(Path("")));
  EXPECT_TRUE(WaitFor([&] { return entries(ServerPath("")).empty(); }, std::chrono::seconds(5)))
      << "left on the server: " << ::testing::PrintToString(entries(ServerPath("")));
}

}  // namespace
}  // namespace floatmount::testing
