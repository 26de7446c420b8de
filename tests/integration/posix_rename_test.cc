// rename(2) and renameat2(2) on a floatmount mount: files over files,
// across directories, directories, the error cases, RENAME_NOREPLACE and
// RENAME_EXCHANGE, and a renamed file that is still open.
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

class PosixRenameTest : public MountTest {
 protected:
  ino_t Inode(const std::string& path) {
    struct stat st {};
    EXPECT_SYSCALL(lstat(path.c_str(), &st)) << " " << path;
    return st.st_ino;
  }
  bool Exists(const std::string& path) {
    struct stat st {};
    return lstat(path.c_str(), &st) == 0;
  }
};

int Rename2(const std::string& from, const std::string& to, unsigned flags) {
  return renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags);
}

TEST_F(PosixRenameTest, FileOverAnExistingFile) {
  ASSERT_TRUE(WriteFile(Path("src"), "source"));
  ASSERT_TRUE(WriteFile(Path("dst"), "old destination"));
  const ino_t ino = Inode(Path("src"));
  ASSERT_SYSCALL(rename(Path("src").c_str(), Path("dst").c_str()));
  EXPECT_FALSE(Exists(Path("src")));
  EXPECT_EQ(Inode(Path("dst")), ino);
  EXPECT_EQ(ReadFile(Path("dst")).value_or("<error>"), "source");
  EXPECT_FALSE(Exists(ServerPath("src")));
  EXPECT_EQ(ReadFile(ServerPath("dst")).value_or("<error>"), "source");
  EXPECT_EQ(ListDir(Path("")).value_or(std::vector<std::string>{}),
            std::vector<std::string>{"dst"});
}

TEST_F(PosixRenameTest, FileIntoAnotherDirectory) {
  ASSERT_SYSCALL(mkdir(Path("a").c_str(), 0755));
  ASSERT_SYSCALL(mkdir(Path("b").c_str(), 0755));
  ASSERT_TRUE(WriteFile(Path("a/f"), "moving"));
  ASSERT_SYSCALL(rename(Path("a/f").c_str(), Path("b/g").c_str()));
  EXPECT_FALSE(Exists(Path("a/f")));
  EXPECT_EQ(ReadFile(Path("b/g")).value_or("<error>"), "moving");
  EXPECT_EQ(ListDir(Path("a")).value_or(std::vector<std::string>{"<error>"}),
            std::vector<std::string>{});
  EXPECT_FALSE(Exists(ServerPath("a/f")));
  EXPECT_EQ(ReadFile(ServerPath("b/g")).value_or("<error>"), "moving");
}

TEST_F(PosixRenameTest, DirectoryWithItsContents) {
  ASSERT_SYSCALL(mkdir(Path("old").c_str(), 0755));
  ASSERT_SYSCALL(mkdir(Path("old/sub").c_str(), 0755));
  ASSERT_TRUE(WriteFile(Path("old/sub/f"), "inside"));
  ASSERT_SYSCALL(mkdir(Path("elsewhere").c_str(), 0755));
  ASSERT_SYSCALL(rename(Path("old").c_str(), Path("elsewhere/new").c_str()));
  EXPECT_FALSE(Exists(Path("old")));
  EXPECT_FALSE(Exists(Path("old/sub/f")));
  EXPECT_EQ(ReadFile(Path("elsewhere/new/sub/f")).value_or("<error>"), "inside");
  EXPECT_EQ(ReadFile(ServerPath("elsewhere/new/sub/f")).value_or("<error>"), "inside");
  // ".." of the moved directory is its new parent.
  struct stat dotdot {
  }, parent{};
  ASSERT_SYSCALL(stat(Path("elsewhere/new/..").c_str(), &dotdot));
  ASSERT_SYSCALL(stat(Path("elsewhere").c_str(), &parent));
  EXPECT_EQ(dotdot.st_ino, parent.st_ino);
  // New entries go to the new place.
  ASSERT_TRUE(WriteFile(Path("elsewhere/new/g"), "later"));
  EXPECT_EQ(ReadFile(ServerPath("elsewhere/new/g")).value_or("<error>"), "later");
}

TEST_F(PosixRenameTest, DirectoryOverDirectories) {
  ASSERT_SYSCALL(mkdir(Path("src").c_str(), 0755));
  ASSERT_TRUE(WriteFile(Path("src/f"), "payload"));
  ASSERT_SYSCALL(mkdir(Path("full").c_str(), 0755));
  ASSERT_TRUE(WriteFile(Path("full/keep"), "keep"));
  EXPECT_FAILS_WITH(rename(Path("src").c_str(), Path("full").c_str()), ENOTEMPTY, EEXIST);
  EXPECT_EQ(ReadFile(Path("full/keep")).value_or("<error>"), "keep");
  EXPECT_EQ(ReadFile(Path("src/f")).value_or("<error>"), "payload");

  // An empty directory is replaced.
  ASSERT_SYSCALL(mkdir(Path("empty").c_str(), 0755));
  ASSERT_SYSCALL(rename(Path("src").c_str(), Path("empty").c_str()));
  EXPECT_FALSE(Exists(Path("src")));
  EXPECT_EQ(ReadFile(Path("empty/f")).value_or("<error>"), "payload");
  EXPECT_EQ(ReadFile(ServerPath("empty/f")).value_or("<error>"), "payload");
}

TEST_F(PosixRenameTest, ErrorCases) {
  ASSERT_TRUE(WriteFile(Path("file"), "f"));
  ASSERT_SYSCALL(mkdir(Path("dir").c_str(), 0755));
  ASSERT_SYSCALL(mkdir(Path("dir/child").c_str(), 0755));
  EXPECT_FAILS_WITH(rename(Path("file").c_str(), Path("dir").c_str()), EISDIR);
  EXPECT_FAILS_WITH(rename(Path("dir").c_str(), Path("file").c_str()), ENOTDIR);
  EXPECT_FAILS_WITH(rename(Path("missing").c_str(), Path("x").c_str()), ENOENT);
  EXPECT_FAILS_WITH(rename(Path("file").c_str(), Path("nodir/x").c_str()), ENOENT);
  EXPECT_FAILS_WITH(rename(Path("dir").c_str(), Path("dir/child/inside").c_str()), EINVAL);
  EXPECT_EQ(ReadFile(Path("file")).value_or("<error>"), "f");
  EXPECT_TRUE(Exists(Path("dir/child")));
}

// POSIX: renaming a name to itself, or to another link of the same file,
// does nothing and succeeds.
TEST_F(PosixRenameTest, RenameToTheSameFileDoesNothing) {
  ASSERT_TRUE(WriteFile(Path("a"), "same"));
  ASSERT_SYSCALL(rename(Path("a").c_str(), Path("a").c_str()));
  EXPECT_EQ(ReadFile(Path("a")).value_or("<error>"), "same");
  ASSERT_SYSCALL(link(Path("a").c_str(), Path("b").c_str()));
  ASSERT_SYSCALL(rename(Path("a").c_str(), Path("b").c_str()));
  EXPECT_TRUE(Exists(Path("a")));
  EXPECT_TRUE(Exists(Path("b")));
  EXPECT_EQ(ReadFile(Path("b")).value_or("<error>"), "same");
}

TEST_F(PosixRenameTest, NoReplaceRefusesAnExistingTarget) {
  ASSERT_TRUE(WriteFile(Path("src"), "source"));
  ASSERT_TRUE(WriteFile(Path("dst"), "destination"));
  EXPECT_FAILS_WITH(Rename2(Path("src"), Path("dst"), RENAME_NOREPLACE), EEXIST);
  EXPECT_EQ(ReadFile(Path("src")).value_or("<error>"), "source");
  EXPECT_EQ(ReadFile(Path("dst")).value_or("<error>"), "destination");
  EXPECT_EQ(ReadFile(ServerPath("dst")).value_or("<error>"), "destination");
  ASSERT_SYSCALL(mkdir(Path("dir").c_str(), 0755));
  EXPECT_FAILS_WITH(Rename2(Path("src"), Path("dir"), RENAME_NOREPLACE), EEXIST);
  if (kernel_client()) {
    // The kernel NFS client takes no rename flags at all (nfs_rename
    // answers EINVAL to any, as renameat2(2) allows for a file system that
    // lacks one): the EEXISTs above came from the VFS, which refuses an
    // existing target it knows of before asking the file system. So to a
    // free name it fails, and nothing moves.
    EXPECT_FAILS_WITH(Rename2(Path("src"), Path("free"), RENAME_NOREPLACE), EINVAL);
    EXPECT_TRUE(Exists(ServerPath("src")));
    EXPECT_FALSE(Exists(ServerPath("free")));
    return;
  }
  // To a free name it is an ordinary rename.
  ASSERT_SYSCALL(Rename2(Path("src"), Path("free"), RENAME_NOREPLACE));
  EXPECT_FALSE(Exists(Path("src")));
  EXPECT_EQ(ReadFile(Path("free")).value_or("<error>"), "source");
  EXPECT_EQ(ReadFile(ServerPath("free")).value_or("<error>"), "source");
}

// NFS has no atomic exchange: RENAME_EXCHANGE is refused with EINVAL (as on
// the kernel NFS client) and changes nothing.
TEST_F(PosixRenameTest, ExchangeIsNotSupported) {
  if (reference_mount()) GTEST_SKIP() << "local file systems support RENAME_EXCHANGE";
  ASSERT_TRUE(WriteFile(Path("one"), "1"));
  ASSERT_TRUE(WriteFile(Path("two"), "2"));
  EXPECT_FAILS_WITH(Rename2(Path("one"), Path("two"), RENAME_EXCHANGE), EINVAL);
  EXPECT_EQ(ReadFile(Path("one")).value_or("<error>"), "1");
  EXPECT_EQ(ReadFile(Path("two")).value_or("<error>"), "2");
  EXPECT_EQ(ReadFile(ServerPath("one")).value_or("<error>"), "1");
  EXPECT_EQ(ReadFile(ServerPath("two")).value_or("<error>"), "2");
}

TEST_F(PosixRenameTest, RenamedOpenFileKeepsWorking) {
  ASSERT_SYSCALL(mkdir(Path("d").c_str(), 0755));
  UniqueFd fd(open(Path("before").c_str(), O_CREAT | O_RDWR, 0644));
  ASSERT_SYSCALL(fd.get());
  ASSERT_TRUE(PwriteAll(fd.get(), "written before|", 0));
  ASSERT_SYSCALL(rename(Path("before").c_str(), Path("d/after").c_str()));
  ASSERT_TRUE(PwriteAll(fd.get(), "written after", 15));
  const auto back = PreadUpTo(fd.get(), 100, 0);
  ASSERT_TRUE(back) << ErrnoText();
  EXPECT_EQ(*back, "written before|written after");
  struct stat by_fd {
  }, by_name{};
  ASSERT_SYSCALL(fstat(fd.get(), &by_fd));
  ASSERT_SYSCALL(stat(Path("d/after").c_str(), &by_name));
  EXPECT_EQ(by_fd.st_ino, by_name.st_ino);
  ASSERT_EQ(fd.Close(), 0) << ErrnoText();
  EXPECT_EQ(ReadFile(Path("d/after")).value_or("<error>"), "written before|written after");
  EXPECT_EQ(ReadFile(ServerPath("d/after")).value_or("<error>"), "written before|written after");
  EXPECT_FALSE(Exists(ServerPath("before")));
}

// The common "write a temporary file, then rename it over the real one"
// pattern (editors, package managers, git): readers see the old or the new
// content, and afterwards the new.
TEST_F(PosixRenameTest, AtomicReplaceOfAFileThatIsOpen) {
  ASSERT_TRUE(WriteFile(Path("config"), "version 1"));
  UniqueFd old_reader(open(Path("config").c_str(), O_RDONLY));
  ASSERT_SYSCALL(old_reader.get());
  for (int i = 2; i <= 20; ++i) {
    const std::string text = "version " + std::to_string(i);
    ASSERT_TRUE(WriteFile(Path("config.tmp"), text));
    ASSERT_SYSCALL(rename(Path("config.tmp").c_str(), Path("config").c_str()));
    EXPECT_EQ(ReadFile(Path("config")).value_or("<error>"), text);
  }
  // The descriptor opened first still reads the first version.
  const auto first = PreadUpTo(old_reader.get(), 100, 0);
  ASSERT_TRUE(first) << ErrnoText();
  EXPECT_EQ(*first, "version 1");
  EXPECT_EQ(ReadFile(ServerPath("config")).value_or("<error>"), "version 20");
  EXPECT_FALSE(Exists(Path("config.tmp")));
}

}  // namespace
}  // namespace floatmount::testing
