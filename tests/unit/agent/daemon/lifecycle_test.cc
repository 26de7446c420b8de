// The agent's lifecycle pieces without a mount: the journal log format
// (priority prefixes, no timestamps), the detection of systemd's journal
// stream, and the Notifier speaking sd_notify to a socket this test owns.
// (The whole agent under a notify socket and signals: tests/integration/
// lifecycle_test.cc.)
#include "agent/daemon/lifecycle.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "agent/daemon/logging.h"

namespace floatmount::agent {
namespace {

using namespace std::chrono_literals;

// ---- logging -----------------------------------------------------------------

TEST(LoggingTest, LevelsMapToSyslogPriorities) {
  EXPECT_EQ(2, SyslogPriority(spdlog::level::critical));
  EXPECT_EQ(3, SyslogPriority(spdlog::level::err));
  EXPECT_EQ(4, SyslogPriority(spdlog::level::warn));
  EXPECT_EQ(6, SyslogPriority(spdlog::level::info));
  EXPECT_EQ(7, SyslogPriority(spdlog::level::debug));
  EXPECT_EQ(7, SyslogPriority(spdlog::level::trace));
}

std::string Format(spdlog::level::level_enum level, std::string_view text) {
  const spdlog::details::log_msg msg("floatmount", level,
                                     spdlog::string_view_t(text.data(), text.size()));
  spdlog::memory_buf_t out;
  MakeJournalFormatter()->format(msg, out);
  return std::string(out.data(), out.size());
}

TEST(LoggingTest, JournalLinesCarryThePriorityAndNoTimestamp) {
  EXPECT_EQ("<3>WRITE failed: NFS4ERR_IO\n",
            Format(spdlog::level::err, "WRITE failed: NFS4ERR_IO"));
  EXPECT_EQ("<6>mounted\n", Format(spdlog::level::info, "mounted"));
  EXPECT_EQ("<4>\n", Format(spdlog::level::warn, ""));
}

TEST(LoggingTest, EveryLineOfAMessageGetsThePrefix) {
  EXPECT_EQ("<4>first\n<4>second\n", Format(spdlog::level::warn, "first\nsecond"));
  EXPECT_EQ("<7>one\n", Format(spdlog::level::debug, "one\n"));
}

// SetUpLogging replaces the process's default logger; these tests put the
// previous one back.
class LogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/floatmount-unit-log-XXXXXX";
    ASSERT_NE(nullptr, mkdtemp(dir));
    dir_ = dir;
  }
  void TearDown() override {
    spdlog::set_default_logger(previous_);
    spdlog::set_level(previous_level_);
    std::filesystem::remove_all(dir_);
  }
  // Without flushing: the daemon ends with _exit(), so every line must be
  // in the file when the call returns.
  std::string Read(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::string dir_;
  std::shared_ptr<spdlog::logger> previous_ = spdlog::default_logger();
  spdlog::level::level_enum previous_level_ = spdlog::get_level();
};

TEST_F(LogFileTest, TheDaemonWritesToTheFileItIsGivenAndAppends) {
  const std::string path = dir_ + "/agent.log";
  { std::ofstream(path) << "an earlier agent's line\n"; }
  SetUpLogging(LogTarget::kSyslog, path);
  spdlog::warn("127.0.0.1 has not answered for 60000 ms; reconnecting");
  spdlog::info("below the default level");
  const std::string text = Read(path);
  EXPECT_EQ(0u, text.find("an earlier agent's line\n")) << text;
  EXPECT_NE(std::string::npos,
            text.find("[" + std::to_string(getpid()) +
                      "] warning: 127.0.0.1 has not answered for 60000 ms; reconnecting\n"))
      << text;
  EXPECT_EQ(std::string::npos, text.find("below the default level")) << text;
}

TEST_F(LogFileTest, AFileThatCannotBeOpenedFallsBackToSyslog) {
  // A regular file where the directory should be (spdlog creates missing
  // directories).
  { std::ofstream(dir_ + "/file"); }
  const std::string path = dir_ + "/file/agent.log";
  SetUpLogging(LogTarget::kSyslog, path);
  spdlog::warn("a line");
  EXPECT_FALSE(std::filesystem::exists(path));
  ASSERT_EQ(1u, spdlog::default_logger()->sinks().size());
  EXPECT_NE(nullptr, std::dynamic_pointer_cast<spdlog::sinks::syslog_sink_mt>(
                         spdlog::default_logger()->sinks().front()));
}

TEST(LoggingTest, JournalStreamMustNameTheFd) {
  char path[] = "/tmp/floatmount-unit-stream-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  struct stat st;
  ASSERT_EQ(0, fstat(fd, &st));
  const std::string dev = std::to_string(st.st_dev);
  const std::string ino = std::to_string(st.st_ino);
  EXPECT_TRUE(IsJournalStream((dev + ":" + ino).c_str(), fd));
  EXPECT_FALSE(IsJournalStream((dev + ":" + std::to_string(st.st_ino + 1)).c_str(), fd));
  EXPECT_FALSE(IsJournalStream((dev + ":" + ino + "x").c_str(), fd));
  EXPECT_FALSE(IsJournalStream("", fd));
  EXPECT_FALSE(IsJournalStream("journal", fd));
  EXPECT_FALSE(IsJournalStream(nullptr, fd));
  close(fd);
}

// ---- Notifier ----------------------------------------------------------------

// Sets (or unsets, with nullptr) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A unix datagram socket in a temporary directory: the service manager's
// end of NOTIFY_SOCKET.
class NotifySocket {
 public:
  NotifySocket() {
    char dir[] = "/tmp/floatmount-unit-notify-XXXXXX";
    if (mkdtemp(dir) == nullptr) return;
    dir_ = dir;
    path_ = dir_ + "/notify";
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~NotifySocket() {
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  bool ok() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

  // The next message, or nullopt after `timeout`.
  std::optional<std::string> Receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buf[4096];
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  }
  // Messages until one contains `field`; that one, or nullopt.
  std::optional<std::string> ReceiveUntil(const std::string& field,
                                          std::chrono::milliseconds timeout,
                                          std::vector<std::string>* seen = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto m = Receive(left);
      if (!m) return std::nullopt;
      if (seen) seen->push_back(*m);
      if (HasField(*m, field)) return m;
    }
  }
  // True if a line of `message` starts with `field` ("READY=1", "STATUS=").
  static bool HasField(const std::string& message, const std::string& field) {
    size_t start = 0;
    while (start <= message.size()) {
      const size_t end = message.find('\n', start);
      const std::string line = message.substr(start, end == std::string::npos ? end : end - start);
      if (line.rfind(field, 0) == 0) return true;
      if (end == std::string::npos) break;
      start = end + 1;
    }
    return false;
  }

 private:
  std::string dir_;
  std::string path_;
  int fd_ = -1;
};

TEST(NotifierTest, WithoutNotifySocketEverythingIsANoOp) {
  ScopedEnv socket("NOTIFY_SOCKET", nullptr);
  ScopedEnv usec("WATCHDOG_USEC", "100000");
  const NotifySettings settings = NotifySettings::FromEnvironment();
  EXPECT_FALSE(settings.enabled);
  EXPECT_EQ(0, settings.watchdog.count());
  Notifier notifier(settings);
  notifier.Status("mounting");
  notifier.Ready([] { return std::string("status"); }, [] { return true; });
  notifier.Stopping(kStopBound);
}

TEST(NotifierTest, SendsReadyStatusWatchdogAndStoppingInOrder) {
  NotifySocket sock;
  ASSERT_TRUE(sock.ok()) << "cannot bind a unix socket in /tmp";
  ScopedEnv socket("NOTIFY_SOCKET", sock.path().c_str());
  ScopedEnv usec("WATCHDOG_USEC", "200000");
  ScopedEnv pid("WATCHDOG_PID", nullptr);
  const NotifySettings settings = NotifySettings::FromEnvironment();
  ASSERT_TRUE(settings.enabled);
  EXPECT_EQ(200ms, settings.watchdog);
  EXPECT_EQ(getpid(), settings.launcher);

  std::atomic<bool> healthy{true};
  std::atomic<int> status_calls{0};
  Notifier notifier(settings);
  notifier.Status("mounting\nsomething");
  auto m = sock.Receive(2s);
  ASSERT_TRUE(m);
  EXPECT_EQ("STATUS=mounting something", *m) << "one line per STATUS";

  notifier.Ready(
      [&] {
        ++status_calls;
        return std::string("serving");
      },
      [&] { return healthy.load(); });
  m = sock.Receive(2s);
  ASSERT_TRUE(m);
  EXPECT_EQ("READY=1", *m) << "no MAINPID: we are the process that was started";
  m = sock.ReceiveUntil("STATUS=", 2s);
  ASSERT_TRUE(m);
  EXPECT_EQ("STATUS=serving", *m);
  // Pings every half interval (100 ms): several within a second.
  int pings = 0;
  const auto until = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < until) {
    auto p = sock.Receive(300ms);
    if (p && *p == "WATCHDOG=1") ++pings;
  }
  EXPECT_GE(pings, 5);
  EXPECT_LE(pings, 12);

  // Unhealthy: the pings stop.
  healthy = false;
  std::this_thread::sleep_for(150ms);
  while (sock.Receive(50ms)) {
  }
  std::vector<std::string> seen;
  EXPECT_FALSE(sock.ReceiveUntil("WATCHDOG=1", 500ms, &seen));

  notifier.Stopping(std::chrono::seconds(120));
  m = sock.ReceiveUntil("STOPPING=1", 2s);
  ASSERT_TRUE(m);
  EXPECT_TRUE(NotifySocket::HasField(*m, "EXTEND_TIMEOUT_USEC=130000000")) << *m;
  EXPECT_TRUE(NotifySocket::HasField(*m, "STATUS=stopping")) << *m;
  notifier.Stopping(std::chrono::seconds(120));
  EXPECT_FALSE(sock.ReceiveUntil("STOPPING=1", 300ms)) << "STOPPING=1 is sent once";
  EXPECT_GE(status_calls.load(), 1);
}

TEST(NotifierTest, WatchdogOfAnotherProcessIsNotOurs) {
  NotifySocket sock;
  ASSERT_TRUE(sock.ok());
  ScopedEnv socket("NOTIFY_SOCKET", sock.path().c_str());
  ScopedEnv usec("WATCHDOG_USEC", "200000");
  const std::string other = std::to_string(getpid() + 1);
  ScopedEnv pid("WATCHDOG_PID", other.c_str());
  const NotifySettings settings = NotifySettings::FromEnvironment();
  EXPECT_TRUE(settings.enabled);
  EXPECT_EQ(0, settings.watchdog.count());
}

}  // namespace
}  // namespace floatmount::agent

namespace floatmount::agent {
namespace {

TEST(MountinfoTest, EscapedPathsReadAsThePathsTheyName) {
  EXPECT_EQ(UnescapeMountinfo("/mnt/plain"), "/mnt/plain");
  EXPECT_EQ(UnescapeMountinfo("/mnt/run\\0401\\011tab"), "/mnt/run 1\ttab");
  EXPECT_EQ(UnescapeMountinfo("/mnt/back\\134slash\\012"), "/mnt/back\\slash\n");
  EXPECT_EQ(UnescapeMountinfo("/mnt/not\\09escape\\04"), "/mnt/not\\09escape\\04");
}

}  // namespace
}  // namespace floatmount::agent
