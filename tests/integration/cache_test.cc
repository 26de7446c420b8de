// floatmount's read-ahead and write-back on a real mount of nfs-ganesha:
// fio with crc32c verification over a large sequential file and over random
// writes (read back through the cold cache, not the kernel's page cache),
// every connection cut while write-back is under way, and a file handed to
// a second mount while the first still holds read-ahead for it.
//
// Sizes: FLOATMOUNT_FIO_MIB (default 4096) for the sequential file, a
// sixteenth of it for the random one; the sanitizer run of tests/run.sh
// uses less, as ASan makes every copy several times slower.
//
// Needs fio (Debian package) and root (drop_caches); a missing tool skips
// the test (fails under FLOATMOUNT_REQUIRE_INTEGRATION).
#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include "tests/harness/fault_proxy.h"
#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

constexpr auto kFioTimeout = std::chrono::seconds(900);

uint64_t FioMib() {
  const uint64_t mib = EnvNumber("FLOATMOUNT_FIO_MIB", 4096);
  return mib > 0 ? mib : 4096;
}

// Empties the kernel's page cache, so reads go through floatmount again.
bool DropCaches() {
  sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  f << "3\n";
  return bool(f.flush());
}

class CacheTest : public MountTest {
 protected:
  CacheTest() { test_timeout_ = std::chrono::seconds(1200); }
  void SetUp() override {
    MountTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    FLOATMOUNT_REQUIRE(!FindOnPath("fio").empty(), "fio not found (apt-get install fio)");
    FLOATMOUNT_REQUIRE(geteuid() == 0, "needs root to drop the page cache");
  }
  // Runs fio with `args` on the mount's `name`; checks it exits 0.
  void Fio(const std::string& name, std::vector<std::string> args) {
    std::vector<std::string> argv = {"fio", "--name=" + name, "--filename=" + Path(name),
                                     "--ioengine=psync", "--verify=crc32c",
                                     "--verify_fatal=1", "--output-format=terse"};
    argv.insert(argv.end(), args.begin(), args.end());
    const CommandResult r = RunCommand(argv, "", kFioTimeout);
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
  }
};

TEST_F(CacheTest, FioVerifiesALargeSequentialWriteReadBackCold) {
  const std::string size = "--size=" + std::to_string(FioMib()) + "M";
  // Write (buffered by floatmount, committed by end_fsync and close), then
  // fio's own read-back, which the kernel's page cache may serve.
  Fio("seq", {"--rw=write", "--bs=1M", size, "--end_fsync=1", "--do_verify=1"});
  // Now every byte comes through floatmount's read-ahead.
  ASSERT_TRUE(DropCaches());
  Fio("seq", {"--rw=read", "--bs=1M", size, "--verify_only=1"});
  // And the server has it all.
  struct stat st {};
  ASSERT_SYSCALL(stat(ServerPath("seq").c_str(), &st));
  EXPECT_EQ(uint64_t(st.st_size), FioMib() << 20);
}

TEST_F(CacheTest, FioVerifiesRandomWritesOfMixedSizes) {
  const std::string size = "--size=" + std::to_string(std::max<uint64_t>(FioMib() / 16, 64)) + "M";
  Fio("rand", {"--rw=randwrite", "--bsrange=4k-256k", "--bs_unaligned=0", size,
               "--end_fsync=1", "--do_verify=1"});
  ASSERT_TRUE(DropCaches());
  Fio("rand", {"--rw=randread", "--bsrange=4k-256k", size, "--verify_only=1"});
}

TEST_F(CacheTest, CuttingEveryConnectionDuringWriteBackLosesNothing) {
  // On knfsd, cuts under bulk data can abort QEMU's user network (see
  // RecoveryTest); knfsd_posix cuts small writes instead (LocksUnder*).
  if (knfsd() || kernel_client()) GTEST_SKIP() << "ganesha only (a FaultProxy before ganesha)";
  FaultProxy proxy("127.0.0.1", 0, server().address(), server().port());
  ASSERT_TRUE(proxy.Start()) << proxy.error();
  FloatMount via_proxy;
  FloatMount::Config config = MountConfig("");
  config.port = proxy.port();  // NFS through the proxy (NFSv3's MOUNT goes direct)
  config.nconnect = 4;
  ASSERT_TRUE(via_proxy.Mount(config));

  const size_t kSize = size_t(std::min<uint64_t>(FioMib(), 1024)) << 20;
  const std::string data = TestData(kSize, 41);
  UniqueFd fd(open(via_proxy.Path("ckpt").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644));
  ASSERT_SYSCALL(fd.get());
  int cuts = 0;
  for (size_t off = 0; off < kSize; off += 1 << 20) {
    ASSERT_TRUE(PwriteAll(fd.get(), std::string_view(data).substr(off, 1 << 20), off_t(off)));
    // Four times, while chunks are on the wire and others wait for COMMIT.
    if (off % (kSize / 4) == kSize / 8) {
      proxy.CutAll();
      ++cuts;
    }
  }
  EXPECT_EQ(cuts, 4);
  ASSERT_SYSCALL(fsync(fd.get()));
  proxy.CutAll();  // and once between fsync and close
  ASSERT_EQ(fd.Close(), 0) << ErrnoText();
  EXPECT_TRUE(SameBytes(ReadFile(ServerPath("ckpt")).value_or(""), data));
  // A second mount (another client) reads it all, cold.
  ASSERT_TRUE(DropCaches());
  EXPECT_TRUE(SameBytes(ReadFile(Path("ckpt")).value_or(""), data));
  EXPECT_TRUE(via_proxy.Unmount());
}

// Buffered bytes sent UNSTABLE before an O_DIRECT write over them must be
// committed before that write, not merely sent: if the server restarts
// before their COMMIT, a new write verifier says they may be lost, and the
// cache sends them again, over the direct write's newer bytes, undoing it
// (found by TortureUnderRestartsTest: 6 seeds of 6 failed so).
TEST_F(CacheTest, ADirectWriteIsNotUndoneByBufferedBytesResentAfterARestart) {
  if (knfsd() || kernel_client()) GTEST_SKIP() << "ganesha only (kills and restarts ganesha)";
  constexpr size_t kSize = 256 * 1024;
  const std::string old_bytes = TestData(kSize, 51);
  const std::string new_bytes = TestData(kSize, 52);
  UniqueFd buffered(open(Path("undone").c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644));
  ASSERT_SYSCALL(buffered.get());
  ASSERT_TRUE(PwriteAll(buffered.get(), old_bytes, 0));
  UniqueFd direct(open(Path("undone").c_str(), O_RDWR | O_DIRECT));
  ASSERT_SYSCALL(direct.get());
  void* raw = nullptr;
  ASSERT_EQ(posix_memalign(&raw, 4096, kSize), 0);
  std::unique_ptr<char, decltype(&free)> buf(static_cast<char*>(raw), &free);
  std::copy(new_bytes.begin(), new_bytes.end(), buf.get());
  ASSERT_EQ(pwrite(direct.get(), buf.get(), kSize, 0), static_cast<ssize_t>(kSize)) << ErrnoText();
  ASSERT_TRUE(SameBytes(ReadFile(ServerPath("undone")).value_or(""), new_bytes));

  server().Kill();  // a crash: a new write verifier when it is back
  ASSERT_TRUE(server().Restart()) << server().error();
  ASSERT_SYSCALL(fsync(buffered.get()));
  EXPECT_EQ(direct.Close(), 0) << ErrnoText();
  EXPECT_EQ(buffered.Close(), 0) << ErrnoText();
  EXPECT_TRUE(SameBytes(ReadFile(ServerPath("undone")).value_or(""), new_bytes));
}

TEST_F(CacheTest, AReaderOnAnotherMountSeesTheNewContentAfterClose) {
  FloatMount* other = MountSecond();
  ASSERT_NE(other, nullptr);
  const std::string first = TestData(24 << 20, 5), second = TestData(24 << 20, 6);
  ASSERT_TRUE(WriteFile(Path("model.bin"), first));
  // The other mount reads it sequentially (read-ahead fills) and keeps it open.
  UniqueFd reader(open(other->Path("model.bin").c_str(), O_RDONLY));
  ASSERT_SYSCALL(reader.get());
  EXPECT_TRUE(SameBytes(PreadUpTo(reader.get(), 8 << 20, 0).value_or(""), first.substr(0, 8 << 20)));
  // The first mount rewrites it; close-to-open: a new open on the other
  // mount sees all of the new bytes, none of its read-ahead of the old.
  ASSERT_TRUE(WriteFile(Path("model.bin"), second));
  ASSERT_TRUE(DropCaches());
  EXPECT_TRUE(SameBytes(ReadFile(other->Path("model.bin")).value_or(""), second));
}

}  // namespace
}  // namespace floatmount::testing
