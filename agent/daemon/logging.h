// Where floatmount's log lines go, and how they look there.
//
// Three targets, one default spdlog logger each:
//   - kTerminal: a command run by hand, or `floatmount -f` in a terminal.
//     spdlog's default console logger with its timestamps, as before.
//   - kJournal: stderr is the stream systemd connected to the journal
//     (`floatmount -f` in a unit; systemd.exec(5) says JOURNAL_STREAM then
//     holds stderr's "device:inode", which is how we tell — INVOCATION_ID
//     alone does not say where stderr goes, e.g. StandardError=file:).
//     Each line is "<priority>message" (sd-daemon(3)): journald strips the
//     prefix and stores the priority (err=3, warning=4, info=6, debug=7), so
//     `journalctl -p warning` works, and it adds its own timestamp and
//     identifier, so we add none.
//   - kSyslog: the forked daemon (no -f), whose stderr is /dev/null:
//     syslog(3) with ident "floatmount", LOG_PID, facility daemon, as before.
//     Under systemd, syslog lands in the journal too, with its priority.
//     FLOATMOUNT_LOG_FILE=PATH sends the daemon's lines to that file
//     instead (appended, with time, pid and level): for hosts and
//     containers where nothing collects syslog, and for the tests, which
//     keep each agent's log next to its state.
//
// Why a prefix on stderr and not spdlog's systemd_sink (sd_journal_send):
// the stream keeps the journal's per-unit rate limits and ordering with
// anything else the process writes to stderr (libfuse's messages), needs no
// journald socket (containers run units without one), and is what a test
// can read back. A message of several lines gets the prefix on every line,
// so no line falls back to the stream's default priority.
//
// Level: FLOATMOUNT_LOG (trace, debug, info, warn, err, critical, off) if
// set, else warn, for every target, as before. A unit that wants the
// mount and stop lines in the journal sets Environment=FLOATMOUNT_LOG=info.
//
// Thread-safety: SetUpLogging before any thread is started; the loggers it
// installs are thread-safe.
#pragma once

#include <spdlog/common.h>
#include <spdlog/formatter.h>

#include <memory>
#include <string>

namespace floatmount::agent {

enum class LogTarget { kTerminal, kJournal, kSyslog };

// kJournal if stderr is the journal stream, else kTerminal (the daemon
// picks kSyslog itself after forking).
LogTarget DetectLogTarget();

// True if `journal_stream` (the value of JOURNAL_STREAM, may be null) names
// the device and inode of `fd`.
bool IsJournalStream(const char* journal_stream, int fd);

// Installs the default logger for `target` and sets the level. For
// kSyslog, `log_file` (FLOATMOUNT_LOG_FILE; empty: none) replaces syslog.
void SetUpLogging(LogTarget target, const std::string& log_file = "");

// The syslog priority of a level: critical 2, err 3, warn 4, info 6,
// debug and trace 7.
int SyslogPriority(spdlog::level::level_enum level);

// "<priority>line\n" for each line of the message, nothing else.
std::unique_ptr<spdlog::formatter> MakeJournalFormatter();

}  // namespace floatmount::agent
