// Round trips per operation (issue 18): NFSv4.1 compounds the agent sends
// for each common operation, counted by the agent itself (`floatmount
// status --json`, "calls"), so no machine's noise moves them. Each
// workload runs kOps times on a fresh mount state; the table printed
// shows compounds per operation, by name, next to the protocol's minimum.
// Every compound of a synchronous operation is one round trip on its
// critical path, so these are the figures a slow network multiplies.
//
// The ceilings are today's figures: a change that adds a round trip to an
// operation fails here and must say why; one that saves some lowers them.
// The mount uses actimeo=3600 so that no cached entry expires mid-test
// (the counts would then depend on how fast the machine runs).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/status_json.h"

namespace floatmount::testing {
namespace {

constexpr int kOps = 50;

class RoundTripsTest : public MountTest {
 protected:
  // Names and attributes the kernel caches stay valid for the whole test:
  // with the default actimeo=1 a slow run (ASan) sees entries expire
  // between create and unlink, and the kernel's revalidating LOOKUPs
  // would make the counts depend on the machine's speed.
  RoundTripsTest() { mount_options_ = "actimeo=3600"; }

  // Compounds sent so far, by name, background lease renewals left out.
  std::map<std::string, uint64_t> Calls() {
    const nlohmann::json status = StatusJson(mount().mount_point());
    std::map<std::string, uint64_t> calls;
    try {
      status.at("calls").get_to(calls);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "status without calls: " << e.what() << "\n" << status.dump();
    }
    calls.erase("SEQUENCE (lease renewal)");
    return calls;
  }

  struct Row {
    std::string what;
    double per_op = 0;
    std::string by_name;
    uint64_t total = 0;  // compounds in all
  };

  // Runs `op(i)` for i in [0, kOps) after `setup`; compounds per op.
  Row Measure(const std::string& what, const std::function<void(int)>& op) {
    const auto before = Calls();
    for (int i = 0; i < kOps; ++i) op(i);
    const auto after = Calls();
    Row row{what, 0, ""};
    uint64_t total = 0;
    for (const auto& [name, n] : after) {
      const uint64_t was = before.count(name) ? before.at(name) : 0;
      if (n == was) continue;
      total += n - was;
      char part[96];
      std::snprintf(part, sizeof part, "%s%s %.2f", row.by_name.empty() ? "" : ", ", name.c_str(),
                    double(n - was) / kOps);
      row.by_name += part;
    }
    row.per_op = double(total) / kOps;
    row.total = total;
    return row;
  }

  static void Print(const Row& r, const char* minimum) {
    std::printf("  %-34s %5.2f   (minimum %s)  %s\n", r.what.c_str(), r.per_op, minimum,
                r.by_name.c_str());
  }
};

TEST_F(RoundTripsTest, CompoundsPerOperation) {
  FLOATMOUNT_REQUIRE(!nfs3(), "counts NFSv4.1 compounds");
  const std::string data(4096, 'x');
  ASSERT_SYSCALL(mkdir(Path("d").c_str(), 0755));
  auto name = [this](const char* prefix, int i) { return Path("d/" + std::string(prefix) + std::to_string(i)); };
  // Files created on the server side: the mount has never seen them.
  for (int i = 0; i < kOps; ++i) {
    ASSERT_TRUE(WriteFile(ServerPath("d/cold" + std::to_string(i)), data));
  }
  std::printf("compounds per operation (NFSv4.1, %d each):\n", kOps);

  // LOOKUP is the kernel's: FUSE looks a name up before it creates it
  // (unlike the kernel NFS client, whose OPEN goes by name). The one WRITE
  // goes FILE_SYNC, so no COMMIT follows; CLOSE is the kernel's RELEASE,
  // which close(2) does not wait for.
  const Row create = Measure("create + write 4 KiB + close", [&](int i) {
    UniqueFd fd(open(name("new", i).c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644));
    ASSERT_TRUE(fd.ok()) << ErrnoText();
    ASSERT_TRUE(PwriteAll(fd.get(), data, 0));
    ASSERT_SYSCALL(fd.Close());
  });
  Print(create, "2");

  // As GNU tar extracts: the times, owner and mode set after the write,
  // before the close. The times' SETATTR goes in the compound of the
  // buffered bytes' WRITE, after it; the kernel's GETATTR before the chown
  // is answered from that SETATTR's reply. (In a directory of their own:
  // d's entries are counted below.)
  ASSERT_SYSCALL(mkdir(Path("t").c_str(), 0755));
  const Row extract = Measure("create + write + futimens, fchown, fchmod + close", [&](int i) {
    UniqueFd fd(open(Path("t/" + std::to_string(i)).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600));
    ASSERT_TRUE(fd.ok()) << ErrnoText();
    ASSERT_TRUE(PwriteAll(fd.get(), data, 0));
    const struct timespec times[2] = {{0, UTIME_OMIT}, {1000000000 + i, 0}};
    ASSERT_SYSCALL(futimens(fd.get(), times));
    ASSERT_SYSCALL(fchown(fd.get(), 1000 + i, 1000));
    ASSERT_SYSCALL(fchmod(fd.get(), 0640));
    ASSERT_SYSCALL(fd.Close());
  });
  Print(extract, "2");
  for (int i = 0; i < kOps; ++i) {  // on the server: the bytes, then the times
    struct stat st;
    ASSERT_SYSCALL(stat(ServerPath("t/" + std::to_string(i)).c_str(), &st));
    EXPECT_EQ(st.st_mtime, 1000000000 + i) << "t/" << i;
    EXPECT_EQ(st.st_size, off_t(data.size())) << "t/" << i;
    EXPECT_EQ(st.st_uid, uid_t(1000 + i)) << "t/" << i;
    EXPECT_EQ(st.st_mode & 07777, 0640u) << "t/" << i;
  }

  // As busybox tar extracts: the owner, mode and times set by path after
  // the close. The close's one WRITE brings the file's attributes in its
  // compound, and they answer the kernel's GETATTR before the chown.
  ASSERT_SYSCALL(mkdir(Path("b").c_str(), 0755));
  const Row extract_by_path = Measure("create + write + close, chown, chmod, utimes", [&](int i) {
    const std::string path = Path("b/" + std::to_string(i));
    UniqueFd fd(open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600));
    ASSERT_TRUE(fd.ok()) << ErrnoText();
    ASSERT_TRUE(PwriteAll(fd.get(), data, 0));
    ASSERT_SYSCALL(fd.Close());
    ASSERT_SYSCALL(chown(path.c_str(), 1000 + i, 1000));
    ASSERT_SYSCALL(chmod(path.c_str(), 0640));
    const struct timespec times[2] = {{0, UTIME_OMIT}, {1000000000 + i, 0}};
    ASSERT_SYSCALL(utimensat(AT_FDCWD, path.c_str(), times, 0));
  });
  Print(extract_by_path, "4");
  for (int i = 0; i < kOps; ++i) {
    struct stat st;
    ASSERT_SYSCALL(stat(ServerPath("b/" + std::to_string(i)).c_str(), &st));
    EXPECT_EQ(st.st_mtime, 1000000000 + i) << "b/" << i;
    EXPECT_EQ(st.st_size, off_t(data.size())) << "b/" << i;
    EXPECT_EQ(st.st_uid, uid_t(1000 + i)) << "b/" << i;
    EXPECT_EQ(st.st_mode & 07777, 0640u) << "b/" << i;
  }

  // The READ rides in the OPEN's compound (a file of at most
  // open_read_max); LOOKUP is the kernel's, CLOSE its RELEASE.
  const Row read = Measure("open + read 4 KiB + close (cold)", [&](int i) {
    UniqueFd fd(open(name("cold", i).c_str(), O_RDONLY));
    ASSERT_TRUE(fd.ok()) << ErrnoText();
    char buf[4096];
    ASSERT_EQ(pread(fd.get(), buf, sizeof buf, 0), 4096);
    ASSERT_SYSCALL(fd.Close());
  });
  Print(read, "1");

  // The same files again, as a program does (open, fstat, read, close).
  // The kernel keeps their pages (the OPEN finds them unchanged), and the
  // fstat that follows the atime a read left stale is answered from the
  // OPEN's attributes, not by a GETATTR.
  const Row again = Measure("open + fstat + read + close (again)", [&](int i) {
    UniqueFd fd(open(name("cold", i).c_str(), O_RDONLY));
    ASSERT_TRUE(fd.ok()) << ErrnoText();
    struct stat st;
    ASSERT_SYSCALL(fstat(fd.get(), &st));
    char buf[4096];
    ASSERT_EQ(pread(fd.get(), buf, sizeof buf, 0), 4096);
    ASSERT_SYSCALL(fd.Close());
  });
  Print(again, "1");

  const Row stat_missing = Measure("stat of a missing name", [&](int i) {
    struct stat st;
    ASSERT_NE(stat(name("missing", i).c_str(), &st), 0);
  });
  Print(stat_missing, "1");

  // The kernel remembers the absence (a negative entry, for actimeo).
  const Row stat_again = Measure("stat of it again (within actimeo)", [&](int i) {
    struct stat st;
    ASSERT_NE(stat(name("missing", i).c_str(), &st), 0);
  });
  Print(stat_again, "0");

  // A name looked up while missing and then created (cp, make and editors
  // look first): the negative entry spares the kernel's LOOKUP before the
  // create.
  ASSERT_SYSCALL(mkdir(Path("p").c_str(), 0755));
  auto probed = [this](int i) { return Path("p/probed" + std::to_string(i)); };
  for (int i = 0; i < kOps; ++i) {
    struct stat st;
    ASSERT_NE(stat(probed(i).c_str(), &st), 0);
  }
  const Row create_probed = Measure("create + write + close, looked up", [&](int i) {
    UniqueFd fd(open(probed(i).c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644));
    ASSERT_TRUE(fd.ok()) << ErrnoText();
    ASSERT_TRUE(PwriteAll(fd.get(), data, 0));
    ASSERT_SYSCALL(fd.Close());
  });
  Print(create_probed, "2");

  // LOOKUP here too is the kernel's: a name never seen must be asked for.
  const Row mkdirs = Measure("mkdir", [&](int i) { ASSERT_SYSCALL(mkdir(name("dir", i).c_str(), 0755)); });
  Print(mkdirs, "1");

  // The kernel looks again before mkdir even while it remembers the name
  // as missing; the agent answers that LOOKUP from what it remembers.
  auto probed_dir = [this](int i) { return Path("p/dir" + std::to_string(i)); };
  for (int i = 0; i < kOps; ++i) {
    struct stat st;
    ASSERT_NE(stat(probed_dir(i).c_str(), &st), 0);
  }
  const Row mkdir_probed = Measure("mkdir, looked up", [&](int i) {
    ASSERT_SYSCALL(mkdir(probed_dir(i).c_str(), 0755));
  });
  Print(mkdir_probed, "1");

  const Row unlinks = Measure("unlink", [&](int i) { ASSERT_SYSCALL(unlink(name("new", i).c_str())); });
  Print(unlinks, "1");

  // fcntl write lock + unlock on a file kept open (SQLite's pattern): the
  // lock-time revalidation rides in LOCK's compound (issue 20).
  UniqueFd locked(open(name("cold", 0).c_str(), O_RDWR));
  ASSERT_TRUE(locked.ok()) << ErrnoText();
  const Row lock_unlock = Measure("fcntl lock + unlock (file open)", [&](int) {
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    ASSERT_SYSCALL(fcntl(locked.get(), F_SETLK, &fl));
    fl.l_type = F_UNLCK;
    ASSERT_SYSCALL(fcntl(locked.get(), F_SETLK, &fl));
  });
  Print(lock_unlock, "2");
  ASSERT_SYSCALL(locked.Close());

  // stat of names never seen, in one directory, without listing it first
  // (git status, find): after a few LOOKUPs the directory is read whole
  // and the rest are answered from it (fuse/dir_listings.h).
  for (int i = 0; i < 4 * kOps; ++i) {
    ASSERT_TRUE(WriteFile(ServerPath("d/stat" + std::to_string(i)), ""));
  }
  const Row storm = Measure("stat of never-seen names in one dir", [&](int i) {
    for (int k = 0; k < 4; ++k) {
      struct stat st;
      ASSERT_SYSCALL(lstat(name("stat", 4 * i + k).c_str(), &st));
    }
  });
  Row storm_per_name = storm;
  storm_per_name.per_op = storm.per_op / 4;
  Print(storm_per_name, "0 (a few READDIRs)");

  int listed = 0;
  const Row ls = Measure("ls -l of 300 entries (in all)", [&](int i) {
    if (i != 0) return;  // one listing, spread over kOps
    DIR* dir = opendir(Path("d").c_str());
    ASSERT_NE(dir, nullptr) << ErrnoText();
    while (dirent* e = readdir(dir)) {
      struct stat st;
      if (std::string(e->d_name) == "." || std::string(e->d_name) == "..") continue;
      ASSERT_SYSCALL(lstat((Path("d/") + e->d_name).c_str(), &st));
      ++listed;
    }
    closedir(dir);
  });
  ASSERT_EQ(listed, 6 * kOps);  // cold*, dir* and stat*
  Row ls_all = ls;
  // One listing: its compounds in all (from the count: 7 / 50 * 50 is
  // more than 7 in floating point).
  ls_all.per_op = double(ls.total);
  Print(ls_all, "a few READDIRs");

  // A long listing: the READDIRs grow along the stream (64 KiB, then
  // twice as much each time, up to 1 MiB), so 3,000 names take 4 of them
  // on ganesha and 5 on knfsd, with the opendir's ACCESS and the LOOKUP of
  // the directory; at a fixed 64 KiB they took 9 on ganesha.
  ASSERT_SYSCALL(mkdir(ServerPath("big").c_str(), 0755));
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(WriteFile(ServerPath("big/" + std::to_string(i)), ""));
  int names = 0;
  const Row readdir_long = Measure("readdir of 3,000 names (in all)", [&](int i) {
    if (i != 0) return;  // one listing, spread over kOps
    DIR* dir = opendir(Path("big").c_str());
    ASSERT_NE(dir, nullptr) << ErrnoText();
    while (dirent* e = readdir(dir)) names += e->d_name[0] != '.';
    closedir(dir);
  });
  ASSERT_EQ(names, 3000);
  Row readdir_all = readdir_long;
  readdir_all.per_op = double(readdir_long.total);
  Print(readdir_all, "1 READDIR of 1 MiB");

  // Today's figures (ganesha 4.3): ceilings, not goals. The protocol's
  // minimum is in the table; issue 18 is about closing the gap. Negative
  // entries took the repeat stat of a missing name from 1 to 0, and a
  // create or mkdir of a name looked up before from 4 to 3 and 2 to 1; the
  // READ in the OPEN's compound a cold open + read + close from 4 to 3;
  // the listing of d (the cold reads are a storm of LOOKUPs) to 2.2; the
  // OPEN's attributes answering GETATTR an open + fstat again from 3 to 2.
  EXPECT_LE(create.per_op, 4.0);
  EXPECT_LE(extract.per_op, 6.0);  // 7 with a GETATTR before fchown, 8 with the SETATTR alone
  EXPECT_LE(extract_by_path.per_op, 7.0);  // 8 with a GETATTR before the chown
  EXPECT_LE(read.per_op, 2.5);
  EXPECT_LE(again.per_op, 2.0);  // OPEN and CLOSE; 3 with a GETATTR
  EXPECT_LE(stat_missing.per_op, 1.0);
  EXPECT_LE(stat_again.per_op, 0.0);
  EXPECT_LE(create_probed.per_op, 3.0);
  EXPECT_LE(mkdirs.per_op, 2.0);
  EXPECT_LE(mkdir_probed.per_op, 1.0);
  EXPECT_LE(unlinks.per_op, 1.0);
  EXPECT_LE(ls_all.per_op, 3.0);
  EXPECT_LE(readdir_all.per_op, 7.0);  // 6 on ganesha, 7 on knfsd
  EXPECT_LE(lock_unlock.per_op, 2.0);
  // LOOKUPs go on while the listing is read (about the READDIRs' time over
  // a LOOKUP's): 0.05-0.1 per name on ganesha and an idle knfsd guest,
  // 0.115 once on a loaded CI machine's guest; without listings it is 1.
  EXPECT_LE(storm_per_name.per_op, 0.2);
}

}  // namespace
}  // namespace floatmount::testing
