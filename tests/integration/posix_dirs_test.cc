// POSIX behaviour of directories on a floatmount mount: mkdir/rmdir and
// their errors, readdir listing exactly the entries (also after a thousand
// creates), telldir/seekdir offsets, rewinddir, deep paths and link counts.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

class PosixDirsTest : public MountTest {};

std::vector<std::string> Sorted(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return names;
}

// The sorted listing of `dir`, or one "<error ...>" entry.
std::vector<std::string> SortedListing(const std::string& dir) {
  const auto names = ListDir(dir);
  if (!names) return {"<error " + ErrnoText() + ">"};
  return Sorted(*names);
}

std::string Numbered(const char* prefix, int i) {
  char name[64];
  std::snprintf(name, sizeof(name), "%s%04d", prefix, i);
  return name;
}

TEST_F(PosixDirsTest, MkdirAndRmdir) {
  ASSERT_SYSCALL(mkdir(Path("d").c_str(), 0750));
  struct stat st {};
  ASSERT_SYSCALL(stat(Path("d").c_str(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  ASSERT_SYSCALL(stat(ServerPath("d").c_str(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);

  EXPECT_FAILS_WITH(mkdir(Path("d").c_str(), 0755), EEXIST);
  EXPECT_FAILS_WITH(mkdir(Path("missing/sub").c_str(), 0755), ENOENT);
  EXPECT_EQ(ListDir(Path("d")).value_or(std::vector<std::string>{"<error>"}),
            std::vector<std::string>{});

  ASSERT_SYSCALL(rmdir(Path("d").c_str()));
  EXPECT_FAILS_WITH(stat(Path("d").c_str(), &st), ENOENT);
  EXPECT_FAILS_WITH(stat(ServerPath("d").c_str(), &st), ENOENT);
  EXPECT_FAILS_WITH(rmdir(Path("d").c_str()), ENOENT);
  // The name can be used again at once.
  ASSERT_SYSCALL(mkdir(Path("d").c_str(), 0700));
  ASSERT_SYSCALL(stat(Path("d").c_str(), &st));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(PosixDirsTest, RmdirOfANonEmptyDirectoryFails) {
  ASSERT_SYSCALL(mkdir(Path("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(Path("d/f"), "x"));
  EXPECT_FAILS_WITH(rmdir(Path("d").c_str()), ENOTEMPTY, EEXIST);
  ASSERT_SYSCALL(mkdir(Path("e").c_str(), 0755));
  ASSERT_SYSCALL(mkdir(Path("e/sub").c_str(), 0755));
  EXPECT_FAILS_WITH(rmdir(Path("e").c_str()), ENOTEMPTY, EEXIST);
  // Nothing was removed.
  EXPECT_EQ(ReadFile(Path("d/f")).value_or("<error>"), "x");
  EXPECT_EQ(ReadFile(ServerPath("d/f")).value_or("<error>"), "x");
  struct stat st {};
  EXPECT_SYSCALL(stat(Path("e/sub").c_str(), &st));
  // Emptied, it goes.
  ASSERT_SYSCALL(unlink(Path("d/f").c_str()));
  EXPECT_SYSCALL(rmdir(Path("d").c_str()));
}

TEST_F(PosixDirsTest, OperationsOnTheWrongTypeFail) {
  ASSERT_TRUE(WriteFile(Path("file"), "x"));
  ASSERT_SYSCALL(mkdir(Path("dir").c_str(), 0755));
  EXPECT_FAILS_WITH(rmdir(Path("file").c_str()), ENOTDIR);
  EXPECT_FAILS_WITH(unlink(Path("dir").c_str()), EISDIR);
  EXPECT_FAILS_WITH(open(Path("dir").c_str(), O_WRONLY), EISDIR);
  EXPECT_FAILS_WITH(mkdir(Path("file/sub").c_str(), 0755), ENOTDIR);
  EXPECT_FAILS_WITH(open(Path("file/x").c_str(), O_CREAT | O_WRONLY, 0644), ENOTDIR);
  EXPECT_FAILS_WITH(open(Path("file").c_str(), O_RDONLY | O_DIRECTORY), ENOTDIR);
  errno = 0;
  EXPECT_EQ(opendir(Path("file").c_str()), nullptr);
  EXPECT_EQ(errno, ENOTDIR) << ErrnoText();
  EXPECT_FAILS_WITH(rmdir(Path(".").c_str()), EINVAL, EBUSY);
}

// Every entry once, with its type and inode number, and "." and ".." as on
// every Linux file system (the kernel NFS client adds them, as NFSv4 READDIR
// does not return them).
TEST_F(PosixDirsTest, ReaddirListsExactlyTheEntries) {
  ASSERT_TRUE(WriteFile(Path("a"), "1"));
  ASSERT_TRUE(WriteFile(Path("b"), ""));
  ASSERT_SYSCALL(mkdir(Path("sub").c_str(), 0755));
  ASSERT_SYSCALL(symlink("a", Path("link").c_str()));
  ASSERT_SYSCALL(mkfifo(Path("fifo").c_str(), 0644));
  ASSERT_TRUE(WriteFile(Path("sub/inner"), "not listed at the top"));
  const std::map<std::string, unsigned char> expected = {
      {".", DT_DIR},   {"..", DT_DIR},   {"a", DT_REG},    {"b", DT_REG},
      {"sub", DT_DIR}, {"link", DT_LNK}, {"fifo", DT_FIFO}};

  DIR* dir = opendir(Path("").c_str());
  ASSERT_NE(dir, nullptr) << ErrnoText();
  std::map<std::string, int> seen;
  for (;;) {
    errno = 0;
    const dirent* e = readdir(dir);
    if (e == nullptr) {
      EXPECT_EQ(errno, 0) << ErrnoText();
      break;
    }
    ++seen[e->d_name];
    const auto it = expected.find(e->d_name);
    if (it == expected.end()) {
      ADD_FAILURE() << "unexpected entry '" << e->d_name << "'";
      continue;
    }
    if (e->d_type != DT_UNKNOWN) {
      EXPECT_EQ(e->d_type, it->second) << e->d_name;
    }
    if (it->first != "." && it->first != "..") {
      struct stat st {};
      EXPECT_SYSCALL(lstat(Path(it->first).c_str(), &st));
      EXPECT_EQ(e->d_ino, st.st_ino) << e->d_name;
    }
  }
  closedir(dir);
  for (const auto& [name, type] : expected) EXPECT_EQ(seen[name], 1) << "entry " << name;
}

TEST_F(PosixDirsTest, ReaddirAfterAThousandCreates) {
  ASSERT_SYSCALL(mkdir(Path("many").c_str(), 0755));
  std::vector<std::string> expected;
  for (int i = 0; i < 1000; ++i) {
    expected.push_back(Numbered("file-", i));
    UniqueFd fd(open(Path("many/" + expected.back()).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644));
    ASSERT_SYSCALL(fd.get()) << " creating #" << i;
    ASSERT_EQ(fd.Close(), 0) << ErrnoText();
  }
  auto listed = ListDir(Path("many"));
  ASSERT_TRUE(listed) << ErrnoText();
  EXPECT_EQ(listed->size(), 1000u) << "duplicates or missing entries";
  EXPECT_EQ(Sorted(*listed), expected);
  EXPECT_EQ(SortedListing(ServerPath("many")), expected);

  // Remove every other one; the listing follows.
  std::vector<std::string> kept;
  for (int i = 0; i < 1000; ++i) {
    if (i % 2 == 0) {
      ASSERT_SYSCALL(unlink(Path("many/" + expected[i]).c_str()));
    } else {
      kept.push_back(expected[i]);
    }
  }
  listed = ListDir(Path("many"));
  ASSERT_TRUE(listed) << ErrnoText();
  EXPECT_EQ(listed->size(), 500u);
  EXPECT_EQ(Sorted(*listed), kept);
  EXPECT_EQ(SortedListing(ServerPath("many")), kept);
}

TEST_F(PosixDirsTest, TelldirAndSeekdirOffsetsAreStable) {
  ASSERT_SYSCALL(mkdir(Path("d").c_str(), 0755));
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(WriteFile(Path("d/" + Numbered("entry-", i)), ""));

  DIR* dir = opendir(Path("d").c_str());
  ASSERT_NE(dir, nullptr) << ErrnoText();
  std::vector<std::pair<long, std::string>> positions;  // telldir before each readdir
  for (;;) {
    const long pos = telldir(dir);
    const dirent* e = readdir(dir);
    if (e == nullptr) break;
    positions.emplace_back(pos, e->d_name);
  }
  ASSERT_EQ(positions.size(), 302u);  // with "." and ".."

  // Back to every 7th position, in reverse order: the same entry comes next.
  for (size_t i = positions.size(); i-- > 0;) {
    if (i % 7 != 0 && i != positions.size() - 1) continue;
    seekdir(dir, positions[i].first);
    const dirent* e = readdir(dir);
    ASSERT_NE(e, nullptr) << "after seekdir to position #" << i;
    EXPECT_EQ(e->d_name, positions[i].second) << "position #" << i;
  }
  // From the middle, the rest of the listing is exactly the tail.
  const size_t middle = positions.size() / 2;
  seekdir(dir, positions[middle].first);
  std::vector<std::string> rest;
  while (const dirent* e = readdir(dir)) rest.push_back(e->d_name);
  std::vector<std::string> tail;
  for (size_t i = middle; i < positions.size(); ++i) tail.push_back(positions[i].second);
  EXPECT_EQ(rest, tail);
  // And at the end, readdir keeps returning null.
  EXPECT_EQ(readdir(dir), nullptr);
  closedir(dir);
}

TEST_F(PosixDirsTest, RewinddirSeesEntriesCreatedMeanwhile) {
  ASSERT_SYSCALL(mkdir(Path("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(Path("d/old"), ""));
  DIR* dir = opendir(Path("d").c_str());
  ASSERT_NE(dir, nullptr) << ErrnoText();
  auto read_all = [dir] {
    std::set<std::string> names;
    while (const dirent* e = readdir(dir)) names.insert(e->d_name);
    return names;
  };
  EXPECT_EQ(read_all(), (std::set<std::string>{".", "..", "old"}));
  ASSERT_TRUE(WriteFile(Path("d/new"), ""));
  ASSERT_SYSCALL(unlink(Path("d/old").c_str()));
  rewinddir(dir);
  EXPECT_EQ(read_all(), (std::set<std::string>{".", "..", "new"}));
  closedir(dir);
}

TEST_F(PosixDirsTest, DeepPathsAndLinkCounts) {
  std::string path;
  for (int depth = 0; depth < 16; ++depth) {
    path += (path.empty() ? "" : "/") + Numbered("level-", depth);
    ASSERT_SYSCALL(mkdir(Path(path).c_str(), 0755)) << " at " << path;
  }
  ASSERT_TRUE(WriteFile(Path(path + "/bottom"), "deep"));
  EXPECT_EQ(ReadFile(Path(path + "/bottom")).value_or("<error>"), "deep");
  EXPECT_EQ(ReadFile(ServerPath(path + "/bottom")).value_or("<error>"), "deep");

  // A directory's link count is 2 plus its subdirectories.
  ASSERT_SYSCALL(mkdir(Path("parent").c_str(), 0755));
  struct stat st {};
  ASSERT_SYSCALL(stat(Path("parent").c_str(), &st));
  EXPECT_EQ(st.st_nlink, 2u);
  ASSERT_SYSCALL(mkdir(Path("parent/a").c_str(), 0755));
  ASSERT_SYSCALL(mkdir(Path("parent/b").c_str(), 0755));
  ASSERT_TRUE(WriteFile(Path("parent/file"), ""));
  ASSERT_SYSCALL(stat(Path("parent").c_str(), &st));
  EXPECT_EQ(st.st_nlink, 4u);
  ASSERT_SYSCALL(rmdir(Path("parent/a").c_str()));
  ASSERT_SYSCALL(stat(Path("parent").c_str(), &st));
  EXPECT_EQ(st.st_nlink, 3u);

  // Relative paths from a working directory inside the mount (in a child,
  // so this process never holds the mount busy).
  const std::string deep = Path(path);
  const int rc = RunInChild([&] {
    if (chdir(deep.c_str()) != 0) return 1;
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) == nullptr || deep != cwd) return 2;
    const auto data = ReadFile("bottom");
    if (!data || *data != "deep") return 3;
    if (!WriteFile("../sibling", "rel")) return 4;
    return 0;
  });
  EXPECT_EQ(rc, 0) << "1 chdir, 2 getcwd, 3 relative read, 4 relative create";
  const std::string parent_of_deep = path.substr(0, path.rfind('/'));
  EXPECT_EQ(ReadFile(ServerPath(parent_of_deep + "/sibling")).value_or("<error>"), "rel");
}

}  // namespace
}  // namespace floatmount::testing
