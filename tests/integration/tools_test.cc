// Real programs on a floatmount mount: git (many small files, renames,
// links, mmap, fsync), tar + diff -r on a few thousand files of this
// machine's /usr/include, sqlite3 (fcntl locks, journal, fsync), and a file
// handed from one mount to another (two NFSv4 client IDs).
//
// Needs the Debian packages git, sqlite3, tar and diffutils; a missing tool
// skips the test (fails under FLOATMOUNT_REQUIRE_INTEGRATION).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

constexpr auto kToolTimeout = std::chrono::seconds(60);

class ToolsTest : public MountTest {
 protected:
  ToolsTest() { test_timeout_ = std::chrono::seconds(150); }
  void SetUp() override {
    MountTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    local_ = MakeTestDir("tools");
    ASSERT_FALSE(local_.empty()) << ErrnoText();
  }
  void TearDown() override {
    if (!local_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(local_, ignored);
    }
    MountTest::TearDown();
  }
  // Runs a tool and checks it exits 0; returns its output.
  std::string Run(const std::vector<std::string>& argv, const std::string& cwd = "",
                  const std::vector<std::string>& env = {}) {
    const CommandResult r = RunCommand(argv, cwd, kToolTimeout, env);
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    return r.output;
  }

  std::string local_;  // a local scratch directory (not on the mount)
};

#define REQUIRE_TOOL(tool, package) \
  FLOATMOUNT_REQUIRE(!FindOnPath(tool).empty(), tool " not found (apt-get install " package ")")

// A fixed identity and no user or system configuration, so git behaves the
// same on every machine.
std::vector<std::string> GitEnv(const std::string& home) {
  return {"HOME=" + home,
          "GIT_CONFIG_NOSYSTEM=1",
          "GIT_CONFIG_GLOBAL=/dev/null",
          "GIT_AUTHOR_NAME=floatmount test",
          "GIT_AUTHOR_EMAIL=test@floatmount.invalid",
          "GIT_COMMITTER_NAME=floatmount test",
          "GIT_COMMITTER_EMAIL=test@floatmount.invalid",
          "LC_ALL=C"};
}

size_t Lines(const std::string& text) {
  size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

TEST_F(ToolsTest, GitInitAddCommitFsck) {
  REQUIRE_TOOL("git", "git");
  REQUIRE_TOOL("diff", "diffutils");
  const std::vector<std::string> env = GitEnv(local_);
  const std::string repo = Path("repo");
  ASSERT_SYSCALL(mkdir(repo.c_str(), 0755));
  // 200 text files in 20 directories, a 2 MiB binary, a script, a symlink.
  for (int d = 0; d < 20; ++d) {
    const std::string dir = repo + "/dir" + std::to_string(d);
    ASSERT_SYSCALL(mkdir(dir.c_str(), 0755));
    for (int f = 0; f < 10; ++f) {
      std::string text;
      for (int line = 0; line < 20 + f; ++line) {
        text += "line " + std::to_string(line) + " of file " + std::to_string(f) + " in dir " +
                std::to_string(d) + "\n";
      }
      ASSERT_TRUE(WriteFile(dir + "/file" + std::to_string(f) + ".txt", text));
    }
  }
  ASSERT_TRUE(WriteFile(repo + "/blob.bin", TestData(2 << 20, 1)));
  ASSERT_TRUE(WriteFile(repo + "/run.sh", "#!/bin/sh\necho hello\n", 0755));
  ASSERT_SYSCALL(symlink("dir0/file0.txt", (repo + "/link").c_str()));

  Run({"git", "init", "-q", "-b", "main"}, repo, env);
  Run({"git", "add", "-A"}, repo, env);
  Run({"git", "commit", "-q", "-m", "first"}, repo, env);
  // A second commit: edits, a removal, a rename.
  ASSERT_TRUE(WriteFile(repo + "/dir3/file3.txt", "rewritten\n"));
  ASSERT_SYSCALL(unlink((repo + "/dir4/file4.txt").c_str()));
  Run({"git", "mv", "dir5/file5.txt", "dir6/moved.txt"}, repo, env);
  Run({"git", "commit", "-q", "-a", "-m", "second"}, repo, env);

  Run({"git", "fsck", "--full", "--strict", "--no-progress"}, repo, env);
  Run({"git", "gc", "-q", "--prune=now"}, repo, env);
  Run({"git", "fsck", "--full", "--strict", "--no-progress"}, repo, env);
  EXPECT_EQ(Run({"git", "status", "--porcelain"}, repo, env), "");
  EXPECT_EQ(Lines(Run({"git", "log", "--oneline"}, repo, env)), 2u);
  EXPECT_EQ(Run({"git", "show", "HEAD:dir3/file3.txt"}, repo, env), "rewritten\n");

  // A clone on the mount has the same files.
  Run({"git", "clone", "-q", "repo", "clone"}, Path(""), env);
  Run({"git", "fsck", "--full", "--no-progress"}, Path("clone"), env);
  Run({"diff", "-r", "--no-dereference", "--exclude=.git", "repo", "clone"}, Path(""), env);
  // What the server holds is a valid repository too.
  Run({"git", "-c", "safe.directory=*", "fsck", "--full", "--no-progress"}, ServerPath("repo"),
      env);
}

// Unpacks a tarball of a real source tree into the mount and compares it
// with the same tarball unpacked on the local disk: contents (diff -r) and
// metadata (tar --compare: sizes, modes, owners, mtimes, link targets).
TEST_F(ToolsTest, TarUnpackMatchesTheOriginal) {
  REQUIRE_TOOL("tar", "tar");
  REQUIRE_TOOL("diff", "diffutils");
  // About 2000 headers from this machine (g++ and linux-libc-dev).
  std::vector<std::string> parts;
  size_t files = 0;
  for (const char* dir : {"linux", "asm-generic", "c++", "x86_64-linux-gnu", "aarch64-linux-gnu",
                          "boost/asio", "gtest", "spdlog"}) {
    const std::string full = std::string("/usr/include/") + dir;
    std::error_code ec;
    if (files >= 2000 || !std::filesystem::is_directory(full, ec)) continue;
    parts.push_back(dir);
    for (auto it = std::filesystem::recursive_directory_iterator(full, ec);
         it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      files += it->is_regular_file(ec) ? 1 : 0;
    }
  }
  FLOATMOUNT_REQUIRE(files >= 500, "needs a source tree under /usr/include (apt-get install g++)");
  // Plus the odd cases: symlinks, a hard link pair, empty file and directory,
  // an executable, a deep path, a file with a space in its name.
  const std::string extra = local_ + "/extra";
  ASSERT_SYSCALL(mkdir(extra.c_str(), 0755));
  ASSERT_SYSCALL(mkdir((extra + "/empty-dir").c_str(), 0700));
  ASSERT_SYSCALL(mkdir((extra + "/a").c_str(), 0755));
  ASSERT_SYSCALL(mkdir((extra + "/a/b").c_str(), 0755));
  ASSERT_SYSCALL(mkdir((extra + "/a/b/c").c_str(), 0755));
  ASSERT_TRUE(WriteFile(extra + "/a/b/c/deep file.txt", "deep\n"));
  ASSERT_TRUE(WriteFile(extra + "/empty", ""));
  ASSERT_TRUE(WriteFile(extra + "/tool", "#!/bin/sh\n", 0755));
  ASSERT_TRUE(WriteFile(extra + "/linked", TestData(100000, 2)));
  ASSERT_SYSCALL(link((extra + "/linked").c_str(), (extra + "/hardlink").c_str()));
  ASSERT_SYSCALL(symlink("a/b/c/deep file.txt", (extra + "/symlink").c_str()));
  ASSERT_SYSCALL(symlink("nowhere", (extra + "/dangling").c_str()));

  const std::string tarball = local_ + "/tree.tar";
  std::vector<std::string> create = {"tar", "-cf", tarball, "-C", "/usr/include"};
  create.insert(create.end(), parts.begin(), parts.end());
  create.insert(create.end(), {"-C", local_, "extra"});
  Run(create);
  ASSERT_SYSCALL(mkdir((local_ + "/orig").c_str(), 0755));
  Run({"tar", "-xf", tarball, "-C", local_ + "/orig"});

  ASSERT_SYSCALL(mkdir(Path("tree").c_str(), 0755));
  const auto start = std::chrono::steady_clock::now();
  Run({"tar", "-xf", tarball, "-C", Path("tree")});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("unpack_seconds", std::to_string(seconds));
  std::printf("unpacked %zu+ files in %.1f s\n", files, seconds);

  const std::string diff = Run({"diff", "-r", "--no-dereference", local_ + "/orig", Path("tree")});
  EXPECT_EQ(diff, "");
  Run({"tar", "--compare", "-f", tarball, "-C", Path("tree")});
  // And what reached the server is the same.
  Run({"diff", "-r", "--no-dereference", local_ + "/orig", ServerPath("tree")});
  struct stat a {
  }, b{};
  ASSERT_SYSCALL(stat(Path("tree/extra/linked").c_str(), &a));
  ASSERT_SYSCALL(stat(Path("tree/extra/hardlink").c_str(), &b));
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
}

// sqlite3 takes fcntl locks and fsyncs its rollback journal for every
// transaction; it fails with "database is locked" or "disk I/O error" if
// either does not work.
TEST_F(ToolsTest, Sqlite3TransactionsAndQueries) {
  REQUIRE_TOOL("sqlite3", "sqlite3");
  const std::string script = local_ + "/load.sql";
  {
    std::ofstream sql(script);
    sql << "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, value INTEGER);\n"
        << "BEGIN;\n";
    for (int i = 1; i <= 1000; ++i) {
      sql << "INSERT INTO t(name, value) VALUES('row-" << i << "', " << i << ");\n";
    }
    sql << "COMMIT;\n"
        << "CREATE INDEX t_name ON t(name);\n";
  }
  const std::string db = Path("test.db");
  Run({"sqlite3", "-bail", db, ".read " + script});
  EXPECT_EQ(Run({"sqlite3", db, "SELECT count(*), sum(value) FROM t;"}), "1000|500500\n");
  // A rolled-back transaction leaves nothing behind.
  Run({"sqlite3", "-bail", db, "BEGIN; DELETE FROM t; ROLLBACK;"});
  EXPECT_EQ(Run({"sqlite3", db, "SELECT count(*) FROM t;"}), "1000\n");
  Run({"sqlite3", "-bail", db, "UPDATE t SET value = value * 2 WHERE id <= 10;"});
  EXPECT_EQ(Run({"sqlite3", db, "SELECT sum(value) FROM t;"}), "500555\n");
  EXPECT_EQ(Run({"sqlite3", db, "PRAGMA integrity_check;"}), "ok\n");
  EXPECT_EQ(Run({"sqlite3", db, "SELECT name FROM t WHERE name = 'row-777';"}), "row-777\n");
  // The server's copy is a complete, consistent database.
  const std::string on_server = ServerPath("test.db");
  EXPECT_EQ(Run({"sqlite3", "-readonly", on_server, "PRAGMA integrity_check;"}), "ok\n");
  EXPECT_EQ(Run({"sqlite3", "-readonly", on_server, "SELECT count(*) FROM t;"}), "1000\n");
  struct stat st {};
  EXPECT_FAILS_WITH(stat(Path("test.db-journal").c_str(), &st), ENOENT);
}

// Two mounts, two client IDs: a file written and closed on one is read on
// the other byte for byte.
TEST_F(ToolsTest, FileWrittenOnOneMountReadsIdenticallyOnAnother) {
  FloatMount* other = MountSecond();
  ASSERT_NE(other, nullptr);
  const std::string data = TestData((8 << 20) + 4097, 3);
  UniqueFd fd(open(Path("handoff").c_str(), O_CREAT | O_WRONLY | O_EXCL, 0644));
  ASSERT_SYSCALL(fd.get());
  for (size_t off = 0; off < data.size(); off += 1 << 20) {
    const size_t len = std::min<size_t>(1 << 20, data.size() - off);
    ASSERT_EQ(write(fd.get(), data.data() + off, len), static_cast<ssize_t>(len)) << ErrnoText();
  }
  ASSERT_EQ(fd.Close(), 0) << ErrnoText();

  struct stat st {};
  ASSERT_SYSCALL(stat(other->Path("handoff").c_str(), &st));
  EXPECT_EQ(st.st_size, static_cast<off_t>(data.size()));
  const auto read_there = ReadFile(other->Path("handoff"));
  ASSERT_TRUE(read_there) << ErrnoText();
  EXPECT_TRUE(SameBytes(*read_there, data));
  EXPECT_TRUE(SameBytes(ReadFile(ServerPath("handoff")).value_or(""), data));
  if (!reference_mount() && !kernel_client()) {
    EXPECT_NE(other->state_dir(), mount().state_dir());
  }
}

}  // namespace
}  // namespace floatmount::testing
