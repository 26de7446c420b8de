// Hard links and symbolic links on a floatmount mount: link counts, shared
// inode numbers and data, readlink/lstat, dangling links, symlinks to
// directories, O_NOFOLLOW and O_CREAT through a dangling link.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

class PosixLinksTest : public MountTest {};

std::string ReadLink(const std::string& path) {
  char buf[8192];
  const ssize_t n = readlink(path.c_str(), buf, sizeof(buf));
  if (n < 0) return "<error " + ErrnoText() + ">";
  return std::string(buf, static_cast<size_t>(n));
}

TEST_F(PosixLinksTest, HardLinksShareTheInodeAndTheData) {
  ASSERT_TRUE(WriteFile(Path("first"), "shared data"));
  ASSERT_SYSCALL(mkdir(Path("d").c_str(), 0755));
  ASSERT_SYSCALL(link(Path("first").c_str(), Path("d/second").c_str()));

  struct stat a {
  }, b{};
  ASSERT_SYSCALL(stat(Path("first").c_str(), &a));
  ASSERT_SYSCALL(stat(Path("d/second").c_str(), &b));
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  EXPECT_EQ(b.st_nlink, 2u);
  struct stat sa {
  }, sb{};
  ASSERT_SYSCALL(stat(ServerPath("first").c_str(), &sa));
  ASSERT_SYSCALL(stat(ServerPath("d/second").c_str(), &sb));
  EXPECT_EQ(sa.st_ino, sb.st_ino) << "not a hard link on the server";
  EXPECT_EQ(sa.st_nlink, 2u);

  // A write through one name is read through the other.
  UniqueFd fd(open(Path("d/second").c_str(), O_WRONLY | O_APPEND));
  ASSERT_SYSCALL(fd.get());
  ASSERT_EQ(write(fd.get(), "+more", 5), 5);
  ASSERT_EQ(fd.Close(), 0) << ErrnoText();
  EXPECT_EQ(ReadFile(Path("first")).value_or("<error>"), "shared data+more");
  ASSERT_SYSCALL(stat(Path("first").c_str(), &a));
  EXPECT_EQ(a.st_size, 16);

  // Unlinking one name keeps the other.
  ASSERT_SYSCALL(unlink(Path("first").c_str()));
  ASSERT_SYSCALL(stat(Path("d/second").c_str(), &b));
  EXPECT_EQ(b.st_nlink, 1u);
  EXPECT_EQ(ReadFile(Path("d/second")).value_or("<error>"), "shared data+more");
  EXPECT_EQ(ReadFile(ServerPath("d/second")).value_or("<error>"), "shared data+more");
  ASSERT_SYSCALL(stat(ServerPath("d/second").c_str(), &sb));
  EXPECT_EQ(sb.st_nlink, 1u);
}

TEST_F(PosixLinksTest, ManyLinksCountUpAndDown) {
  ASSERT_TRUE(WriteFile(Path("f"), "x"));
  for (int i = 0; i < 10; ++i) {
    ASSERT_SYSCALL(link(Path("f").c_str(), Path("l" + std::to_string(i)).c_str()));
  }
  struct stat st {};
  ASSERT_SYSCALL(stat(Path("f").c_str(), &st));
  EXPECT_EQ(st.st_nlink, 11u);
  for (int i = 0; i < 10; i += 2) ASSERT_SYSCALL(unlink(Path("l" + std::to_string(i)).c_str()));
  ASSERT_SYSCALL(stat(Path("l1").c_str(), &st));
  EXPECT_EQ(st.st_nlink, 6u);
  ASSERT_SYSCALL(stat(ServerPath("l1").c_str(), &st));
  EXPECT_EQ(st.st_nlink, 6u);
}

TEST_F(PosixLinksTest, HardLinkErrors) {
  ASSERT_TRUE(WriteFile(Path("f"), "x"));
  ASSERT_TRUE(WriteFile(Path("g"), "y"));
  ASSERT_SYSCALL(mkdir(Path("dir").c_str(), 0755));
  EXPECT_FAILS_WITH(link(Path("f").c_str(), Path("g").c_str()), EEXIST);
  EXPECT_FAILS_WITH(link(Path("dir").c_str(), Path("dirlink").c_str()), EPERM);
  EXPECT_FAILS_WITH(link(Path("missing").c_str(), Path("h").c_str()), ENOENT);
  EXPECT_EQ(ReadFile(Path("g")).value_or("<error>"), "y");
}

TEST_F(PosixLinksTest, SymlinkReadlinkAndLstat) {
  ASSERT_TRUE(WriteFile(Path("target"), "through the link"));
  ASSERT_SYSCALL(symlink("target", Path("link").c_str()));
  EXPECT_EQ(ReadLink(Path("link")), "target");
  EXPECT_EQ(ReadLink(ServerPath("link")), "target");

  struct stat lst {
  }, st{}, target{};
  ASSERT_SYSCALL(lstat(Path("link").c_str(), &lst));
  EXPECT_TRUE(S_ISLNK(lst.st_mode));
  EXPECT_EQ(lst.st_size, 6);  // strlen("target")
  ASSERT_SYSCALL(stat(Path("link").c_str(), &st));
  ASSERT_SYSCALL(stat(Path("target").c_str(), &target));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_ino, target.st_ino);
  EXPECT_NE(lst.st_ino, target.st_ino);
  EXPECT_EQ(ReadFile(Path("link")).value_or("<error>"), "through the link");

  // readlink on a non-link, and O_NOFOLLOW on a link.
  char buf[16];
  EXPECT_FAILS_WITH(readlink(Path("target").c_str(), buf, sizeof(buf)), EINVAL);
  EXPECT_FAILS_WITH(open(Path("link").c_str(), O_RDONLY | O_NOFOLLOW), ELOOP);
  // Removing the link leaves the target.
  ASSERT_SYSCALL(unlink(Path("link").c_str()));
  EXPECT_EQ(ReadFile(Path("target")).value_or("<error>"), "through the link");
}

TEST_F(PosixLinksTest, DanglingSymlink) {
  ASSERT_SYSCALL(symlink("not-there-yet", Path("dangling").c_str()));
  struct stat st {};
  EXPECT_FAILS_WITH(stat(Path("dangling").c_str(), &st), ENOENT);
  ASSERT_SYSCALL(lstat(Path("dangling").c_str(), &st));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(ReadLink(Path("dangling")), "not-there-yet");
  EXPECT_FAILS_WITH(open(Path("dangling").c_str(), O_RDONLY), ENOENT);

  // O_CREAT without O_EXCL follows the link and creates its target.
  UniqueFd fd(open(Path("dangling").c_str(), O_CREAT | O_WRONLY, 0644));
  ASSERT_SYSCALL(fd.get());
  ASSERT_EQ(write(fd.get(), "made", 4), 4);
  ASSERT_EQ(fd.Close(), 0) << ErrnoText();
  EXPECT_EQ(ReadFile(Path("not-there-yet")).value_or("<error>"), "made");
  EXPECT_EQ(ReadFile(ServerPath("not-there-yet")).value_or("<error>"), "made");
  ASSERT_SYSCALL(stat(Path("dangling").c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(PosixLinksTest, SymlinksToDirectoriesAndLongTargets) {
  ASSERT_SYSCALL(mkdir(Path("real").c_str(), 0755));
  ASSERT_SYSCALL(symlink("real", Path("alias").c_str()));
  ASSERT_TRUE(WriteFile(Path("alias/f"), "via alias"));
  EXPECT_EQ(ReadFile(Path("real/f")).value_or("<error>"), "via alias");
  EXPECT_EQ(ReadFile(ServerPath("real/f")).value_or("<error>"), "via alias");
  EXPECT_EQ(ListDir(Path("alias")).value_or(std::vector<std::string>{}),
            std::vector<std::string>{"f"});
  // rmdir does not follow the link; unlink removes the link only.
  EXPECT_FAILS_WITH(rmdir(Path("alias").c_str()), ENOTDIR);
  ASSERT_SYSCALL(unlink(Path("alias").c_str()));
  EXPECT_EQ(ReadFile(Path("real/f")).value_or("<error>"), "via alias");

  // Absolute and long targets are stored verbatim.
  const std::string absolute = "/somewhere/else/entirely";
  ASSERT_SYSCALL(symlink(absolute.c_str(), Path("abs").c_str()));
  EXPECT_EQ(ReadLink(Path("abs")), absolute);
  std::string long_target;
  while (long_target.size() < 1000) long_target += "component/";
  ASSERT_SYSCALL(symlink(long_target.c_str(), Path("long").c_str()));
  EXPECT_EQ(ReadLink(Path("long")), long_target);
  EXPECT_EQ(ReadLink(ServerPath("long")), long_target);
  struct stat st {};
  ASSERT_SYSCALL(lstat(Path("long").c_str(), &st));
  EXPECT_EQ(st.st_size, static_cast<off_t>(long_target.size()));
  // A loop is detected.
  ASSERT_SYSCALL(symlink("loop2", Path("loop1").c_str()));
  ASSERT_SYSCALL(symlink("loop1", Path("loop2").c_str()));
  EXPECT_FAILS_WITH(stat(Path("loop1").c_str(), &st), ELOOP);
}

}  // namespace
}  // namespace floatmount::testing
