#include "agent/daemon/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace floatmount::agent {
namespace {

class JournalFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const char prefix[3] = {'<', static_cast<char>('0' + SyslogPriority(msg.level)), '>'};
    std::string_view rest(msg.payload.data(), msg.payload.size());
    do {
      const size_t end = rest.find('\n');
      const std::string_view line = rest.substr(0, end);
      dest.append(prefix, prefix + sizeof(prefix));
      dest.append(line.data(), line.data() + line.size());
      dest.push_back('\n');
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    } while (!rest.empty());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JournalFormatter>();
  }
};

}  // namespace

bool IsJournalStream(const char* journal_stream, int fd) {
  if (journal_stream == nullptr) return false;
  uintmax_t dev = 0, ino = 0;
  char extra = 0;
  if (std::sscanf(journal_stream, "%ju:%ju%c", &dev, &ino, &extra) != 2) return false;
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  return static_cast<uintmax_t>(st.st_dev) == dev && static_cast<uintmax_t>(st.st_ino) == ino;
}

LogTarget DetectLogTarget() {
  return IsJournalStream(std::getenv("JOURNAL_STREAM"), STDERR_FILENO) ? LogTarget::kJournal
                                                                       : LogTarget::kTerminal;
}

int SyslogPriority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical:
      return 2;  // LOG_CRIT
    case spdlog::level::err:
      return 3;  // LOG_ERR
    case spdlog::level::warn:
      return 4;  // LOG_WARNING
    case spdlog::level::info:
      return 6;  // LOG_INFO
    default:
      return 7;  // LOG_DEBUG (debug, trace)
  }
}

std::unique_ptr<spdlog::formatter> MakeJournalFormatter() {
  return std::make_unique<JournalFormatter>();
}

void SetUpLogging(LogTarget target, const std::string& log_file) {
  bool unwritable_file = false;
  switch (target) {
    case LogTarget::kTerminal:
      break;  // spdlog's default logger
    case LogTarget::kJournal: {
      auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
      sink->set_formatter(MakeJournalFormatter());
      spdlog::set_default_logger(std::make_shared<spdlog::logger>("floatmount", sink));
      break;
    }
    case LogTarget::kSyslog: {
      if (!log_file.empty()) {
        try {
          auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file);
          sink->set_pattern("%Y-%m-%d %H:%M:%S.%e [%P] %l: %v");
          auto logger = std::make_shared<spdlog::logger>("floatmount", sink);
          // Every line reaches the file at once: the daemon ends with
          // _exit(), and a line kept in a buffer is lost with a crash.
          logger->flush_on(spdlog::level::trace);
          spdlog::set_default_logger(logger);
          break;
        } catch (const spdlog::spdlog_ex&) {
          unwritable_file = true;  // syslog then, which says so below
        }
      }
      auto sink =
          std::make_shared<spdlog::sinks::syslog_sink_mt>("floatmount", LOG_PID, LOG_DAEMON, false);
      spdlog::set_default_logger(std::make_shared<spdlog::logger>("floatmount", sink));
      break;
    }
  }
  spdlog::set_level(spdlog::level::warn);
  if (const char* level = std::getenv("FLOATMOUNT_LOG")) {
    spdlog::set_level(spdlog::level::from_str(level));
  }
  if (unwritable_file) {
    spdlog::warn("FLOATMOUNT_LOG_FILE={}: cannot open it for appending; logging to syslog",
                 log_file);
  }
}

}  // namespace floatmount::agent
