// ChildProcess: a server the harness started (ganesha, dnsmasq), reaped,
// stopped or killed without leaving a zombie; and the small helpers the
// server classes share for their logs and exit statuses.
//
// Thread-safety: one owner thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

namespace floatmount::testing {

class ChildProcess {
 public:
  void Adopt(pid_t pid) { pid_ = pid; }
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  int last_status() const { return last_status_; }  // waitpid status of the last one reaped

  // Reaps the child if it has exited; true if none is running now.
  bool ReapIfExited();
  // SIGTERM, then SIGKILL after `timeout`; true if it exited in time.
  bool Stop(std::chrono::milliseconds timeout);
  void Kill();

 private:
  pid_t pid_ = -1;
  int last_status_ = 0;
};

// The whole file ("" if it cannot be read).
std::string FileText(const std::string& path);
// "exit code 1", "signal 9".
std::string DescribeExit(int status);

}  // namespace floatmount::testing
