// File names on a floatmount mount: the 255-byte limit (ENAMETOOLONG past
// it), UTF-8 names stored byte for byte (no normalization, case kept), and
// names with spaces, newlines and shell metacharacters; a name remembered
// as missing (negative entry) stops being missing at once when this mount
// makes it, whichever way.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

class PosixNamesTest : public MountTest {
 protected:
  // Creates `name` with content `name`, then checks stat, readdir, reading
  // back, and that the server has a file with exactly these bytes as name.
  void CheckRoundTrip(const std::string& name) {
    SCOPED_TRACE("name '" + name + "' (" + std::to_string(name.size()) + " bytes)");
    ASSERT_TRUE(WriteFile(Path(name), name));
    struct stat st {};
    EXPECT_SYSCALL(stat(Path(name).c_str(), &st));
    EXPECT_EQ(ReadFile(Path(name)).value_or("<error>"), name);
    EXPECT_EQ(ReadFile(ServerPath(name)).value_or("<error>"), name);
    const auto listed = ListDir(Path(""));
    ASSERT_TRUE(listed) << ErrnoText();
    EXPECT_EQ(std::count(listed->begin(), listed->end(), name), 1);
  }
  std::set<std::string> Listing(const std::string& dir) {
    const auto names = ListDir(dir);
    if (!names) return {"<error " + ErrnoText() + ">"};
    return std::set<std::string>(names->begin(), names->end());
  }
};

// A missing name is remembered as missing (a negative entry, issue 18) for
// actimeo, here an hour; every way this mount makes the name must end that
// at once, and one that already exists on the server must still be found
// by O_EXCL and O_CREAT.
class PosixNamesNegativeEntryTest : public MountTest {
 protected:
  PosixNamesNegativeEntryTest() { mount_options_ = "actimeo=3600"; }
  // stat(2) says ENOENT, which the kernel then remembers.
  void Missing(const std::string& name) {
    struct stat st {};
    EXPECT_FAILS_WITH(lstat(Path(name).c_str(), &st), ENOENT) << name;
  }
  void Present(const std::string& name) {
    struct stat st {};
    EXPECT_SYSCALL(lstat(Path(name).c_str(), &st)) << name << " right after this mount made it";
  }
};

TEST_F(PosixNamesNegativeEntryTest, EveryWayThisMountMakesANameEndsItsNegativeEntry) {
  Missing("created");
  ASSERT_TRUE(WriteFile(Path("created"), "x"));
  Present("created");

  Missing("dir");
  ASSERT_SYSCALL(mkdir(Path("dir").c_str(), 0755));
  Present("dir");

  Missing("symlink");
  ASSERT_SYSCALL(symlink("created", Path("symlink").c_str()));
  Present("symlink");

  Missing("link");
  ASSERT_SYSCALL(link(Path("created").c_str(), Path("link").c_str()));
  Present("link");

  Missing("fifo");
  ASSERT_SYSCALL(mknod(Path("fifo").c_str(), S_IFIFO | 0644, 0));
  Present("fifo");

  ASSERT_TRUE(WriteFile(Path("source"), "moved"));
  Missing("target");
  ASSERT_SYSCALL(rename(Path("source").c_str(), Path("target").c_str()));
  Present("target");
  EXPECT_EQ(ReadFile(Path("target")).value_or("<error>"), "moved");
  Missing("source");  // the old name is now the missing one

  ASSERT_SYSCALL(unlink(Path("created").c_str()));
  Missing("created");
  ASSERT_TRUE(WriteFile(Path("created"), "again"));
  EXPECT_EQ(ReadFile(Path("created")).value_or("<error>"), "again");
}

// The name was made behind the kernel's back (on the server) while it was
// remembered as missing: O_EXCL and mkdir fail with EEXIST (the server
// checks: OPEN EXCLUSIVE4_1 and CREATE), and the file is untouched; O_CREAT
// opens the file that is there and keeps its bytes (OPEN with UNCHECKED4
// creates only what is missing).
TEST_F(PosixNamesNegativeEntryTest, CreatesOfANameMadeElsewhereFindIt) {
  Missing("excl");
  Missing("creat");
  Missing("dir");
  ASSERT_TRUE(WriteFile(ServerPath("excl"), "theirs"));
  ASSERT_TRUE(WriteFile(ServerPath("creat"), "theirs"));
  ASSERT_TRUE(WriteFile(ServerPath("dir"), "theirs"));
  EXPECT_FAILS_WITH(open(Path("excl").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
  EXPECT_FAILS_WITH(mkdir(Path("dir").c_str(), 0755), EEXIST);
  EXPECT_EQ(ReadFile(ServerPath("excl")).value_or("<error>"), "theirs");
  EXPECT_EQ(ReadFile(ServerPath("dir")).value_or("<error>"), "theirs");
  {
    UniqueFd fd(open(Path("creat").c_str(), O_CREAT | O_RDONLY, 0644));
    ASSERT_TRUE(fd.ok()) << ErrnoText();
    const auto got = PreadUpTo(fd.get(), 100, 0);
    ASSERT_TRUE(got) << ErrnoText();
    EXPECT_EQ(*got, "theirs");
  }
  EXPECT_EQ(ReadFile(ServerPath("creat")).value_or("<error>"), "theirs");
}

TEST_F(PosixNamesTest, NamesOf255BytesWork) {
  const std::string ascii(255, 'a');
  CheckRoundTrip(ascii);
  // 127 two-byte characters and one byte: 255 bytes, 128 characters.
  std::string utf8;
  for (int i = 0; i < 127; ++i) utf8 += "\xC3\xA9";  // é
  utf8 += "z";
  ASSERT_EQ(utf8.size(), 255u);
  CheckRoundTrip(utf8);
  const std::string dir(255, 'd');
  ASSERT_SYSCALL(mkdir(Path(dir).c_str(), 0755));
  ASSERT_TRUE(WriteFile(Path(dir + "/" + ascii), "nested"));
  EXPECT_EQ(ReadFile(ServerPath(dir + "/" + ascii)).value_or("<error>"), "nested");
  ASSERT_SYSCALL(rename(Path(ascii).c_str(), Path(std::string(255, 'r')).c_str()));
  ASSERT_SYSCALL(symlink(ascii.c_str(), Path(std::string(255, 's')).c_str()));
}

TEST_F(PosixNamesTest, NamesOf256BytesAreTooLong) {
  const std::string name(256, 'n');
  EXPECT_FAILS_WITH(open(Path(name).c_str(), O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
  EXPECT_FAILS_WITH(mkdir(Path(name).c_str(), 0755), ENAMETOOLONG);
  EXPECT_FAILS_WITH(symlink("target", Path(name).c_str()), ENAMETOOLONG);
  ASSERT_TRUE(WriteFile(Path("short"), "x"));
  EXPECT_FAILS_WITH(rename(Path("short").c_str(), Path(name).c_str()), ENAMETOOLONG);
  EXPECT_FAILS_WITH(link(Path("short").c_str(), Path(name).c_str()), ENAMETOOLONG);
  struct stat st {};
  EXPECT_FAILS_WITH(stat(Path(name).c_str(), &st), ENAMETOOLONG);
  // Nothing was created, here or on the server.
  EXPECT_EQ(Listing(Path("")), (std::set<std::string>{"short"}));
  EXPECT_EQ(Listing(ServerPath("")), (std::set<std::string>{"short"}));
}

TEST_F(PosixNamesTest, UnicodeNames) {
  const std::vector<std::string> names = {
      "h\xC3\xA9llo w\xC3\xB6rld",                                         // héllo wörld
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",                              // 日本語
      "\xCE\x95\xCE\xBB\xCE\xBB\xCE\xB7\xCE\xBD\xCE\xB9\xCE\xBA\xCE\xAC",  // Ελληνικά
      "emoji-\xF0\x9F\x99\x82.txt",                                        // 🙂 (4-byte UTF-8)
      "\xD7\xA2\xD7\x91\xD7\xA8\xD7\x99\xD7\xAA",  // עברית (right-to-left)
  };
  for (const std::string& name : names) CheckRoundTrip(name);
  ASSERT_SYSCALL(mkdir(Path("\xD0\xBF\xD0\xB0\xD0\xBF\xD0\xBA\xD0\xB0").c_str(), 0755));  // папка
  ASSERT_TRUE(WriteFile(Path("\xD0\xBF\xD0\xB0\xD0\xBF\xD0\xBA\xD0\xB0/\xC3\xBC"), "nested"));
  EXPECT_EQ(
      ReadFile(ServerPath("\xD0\xBF\xD0\xB0\xD0\xBF\xD0\xBA\xD0\xB0/\xC3\xBC")).value_or("<error>"),
      "nested");
}

// Names are bytes: precomposed and decomposed forms, and different cases,
// are different files.
TEST_F(PosixNamesTest, NoNormalizationAndCaseIsKept) {
  const std::string precomposed = "caf\xC3\xA9";  // U+00E9
  const std::string decomposed = "cafe\xCC\x81";  // e + U+0301
  ASSERT_TRUE(WriteFile(Path(precomposed), "one"));
  ASSERT_TRUE(WriteFile(Path(decomposed), "two"));
  ASSERT_TRUE(WriteFile(Path("File"), "upper"));
  ASSERT_TRUE(WriteFile(Path("file"), "lower"));
  EXPECT_EQ(ReadFile(Path(precomposed)).value_or("<error>"), "one");
  EXPECT_EQ(ReadFile(Path(decomposed)).value_or("<error>"), "two");
  EXPECT_EQ(ReadFile(Path("File")).value_or("<error>"), "upper");
  EXPECT_EQ(ReadFile(Path("file")).value_or("<error>"), "lower");
  const std::set<std::string> expected = {precomposed, decomposed, "File", "file"};
  EXPECT_EQ(Listing(Path("")), expected);
  EXPECT_EQ(Listing(ServerPath("")), expected);
}

TEST_F(PosixNamesTest, NamesWithSpecialCharacters) {
  const std::vector<std::string> names = {" leading space",
                                          "trailing space ",
                                          "two  spaces",
                                          "new\nline",
                                          "tab\tname",
                                          "-starts-with-dash",
                                          "#hash",
                                          "percent%20sign",
                                          "back\\slash",
                                          "colon:name",
                                          "star*question?",
                                          "quotes'\"`",
                                          "semi;colon&amp|pipe",
                                          "dollar$HOME",
                                          "...",
                                          ".hidden",
                                          "x",
                                          "[brackets]{braces}(parens)",
                                          "tilde~",
                                          "\x7F"
                                          "del"};
  for (const std::string& name : names) CheckRoundTrip(name);
  std::set<std::string> expected(names.begin(), names.end());
  EXPECT_EQ(Listing(Path("")), expected);
  EXPECT_EQ(Listing(ServerPath("")), expected);
  for (const std::string& name : names) EXPECT_SYSCALL(unlink(Path(name).c_str())) << name;
  EXPECT_EQ(Listing(ServerPath("")), std::set<std::string>{});
}

}  // namespace
}  // namespace floatmount::testing
