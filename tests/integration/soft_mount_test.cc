// Soft mounts through a server freeze (issue 15, "soft mounts that never
// wedge or corrupt"): 8 writers of distinct byte patterns on a
// `soft,timeo=20,retrans=2` mount while ganesha is stopped (SIGSTOP) for
// 20 s. Calls fail with ETIMEDOUT during the freeze; afterwards new writes
// and fsyncs work within 5 s, no session slot is left unusable, and no
// file on the server holds another file's bytes (a WRITE given up while
// queued must never go out later with a buffer the cache reused).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/status_json.h"

namespace floatmount::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kWriters = 8;
constexpr size_t kChunk = 1 << 20;

char Pattern(int writer) { return static_cast<char>(0x11 * (writer + 1)); }

class SoftMountTest : public MountTest {
 protected:
  SoftMountTest() {
    mount_options_ = "soft,timeo=20,retrans=2";
    test_timeout_ = std::chrono::seconds(180);
  }
  void TearDown() override {
    if (frozen_) kill(server().pid(), SIGCONT);
    MountTest::TearDown();
  }

  nlohmann::json Session() {
    const nlohmann::json status = StatusJson(mount().mount_point());
    if (!status.is_object() || !status.contains("session")) {
      ADD_FAILURE() << "status without a session: " << status.dump();
      return {};
    }
    return status["session"];
  }

  bool frozen_ = false;
};

TEST_F(SoftMountTest, WritersThroughAFreezeTimeOutThenWorkAndNoFileHoldsAnothersBytes) {
  FLOATMOUNT_REQUIRE(!nfs3() && !knfsd(), "freezes the ganesha process");
  std::vector<UniqueFd> fds;
  for (int i = 0; i < kWriters; ++i) {
    fds.emplace_back(open(Path("w" + std::to_string(i)).c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644));
    ASSERT_TRUE(fds.back().ok()) << ErrnoText();
    ASSERT_TRUE(PwriteAll(fds.back().get(), std::string(kChunk, Pattern(i)), 0));
    ASSERT_SYSCALL(fsync(fds.back().get()));
  }

  ASSERT_EQ(0, kill(server().pid(), SIGSTOP));
  frozen_ = true;
  const auto frozen_at = std::chrono::steady_clock::now();
  std::atomic<int> timed_out{0}, other_errors{0};
  std::vector<std::thread> writers;
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&, i] {
      // Write on until a call fails or the freeze ends; each call fails
      // or succeeds, none hangs (the test's watchdog would say so).
      const std::string data(kChunk, Pattern(i));
      off_t at = kChunk;
      while (std::chrono::steady_clock::now() - frozen_at < 18s) {
        const bool written = pwrite(fds[i].get(), data.data(), data.size(), at) ==
                             static_cast<ssize_t>(data.size());
        if (written && (at / kChunk) % 4 != 0) {
          at += kChunk;
          continue;
        }
        if (written && fsync(fds[i].get()) == 0) {
          at += kChunk;
          continue;
        }
        (errno == ETIMEDOUT ? timed_out : other_errors)++;
        return;
      }
    });
  }
  for (auto& t : writers) t.join();
  std::this_thread::sleep_for(20s - (std::chrono::steady_clock::now() - frozen_at));
  ASSERT_EQ(0, kill(server().pid(), SIGCONT));
  frozen_ = false;
  EXPECT_EQ(timed_out.load(), kWriters) << other_errors.load() << " writers saw another error";

  // Afterwards: each writer writes and fsyncs again within 5 s.
  const auto thawed = std::chrono::steady_clock::now();
  for (int i = 0; i < kWriters; ++i) {
    fds[i].Close();  // may report the failed write once more
    const std::string data(kChunk, Pattern(i));
    bool ok = false;
    while (!ok && std::chrono::steady_clock::now() - thawed < 5s) {
      UniqueFd fd(open(Path("w" + std::to_string(i)).c_str(), O_WRONLY));
      ok = fd.ok() && PwriteAll(fd.get(), data, 0) && fsync(fd.get()) == 0 && fd.Close() == 0;
      if (!ok) std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(ok) << "writer " << i << " could not write and fsync within 5 s: " << ErrnoText();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - thawed, 5s);
  const nlohmann::json session = Session();
  EXPECT_EQ(session.value("slots_interrupted", 1u), 0u) << session.dump();

  // No file holds a byte it was never given: each is its own pattern
  // where written, zeros in any hole a failed write left.
  for (int i = 0; i < kWriters; ++i) {
    const std::optional<std::string> got = ReadFile(ServerPath("w" + std::to_string(i)));
    ASSERT_TRUE(got);
    for (size_t at = 0; at < got->size(); ++at) {
      const char c = (*got)[at];
      if (c != Pattern(i) && c != 0) {
        ADD_FAILURE() << "w" << i << " holds byte 0x" << std::hex << (c & 0xff) << " at "
                      << std::dec << at << " (its pattern is 0x" << std::hex
                      << (Pattern(i) & 0xff) << ")";
        break;
      }
    }
  }
}

}  // namespace
}  // namespace floatmount::testing
