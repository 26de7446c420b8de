// KillableRequest: a FUSE request that a dying process stops waiting for.
//
// Once the daemon has read a request, the kernel waits for its answer
// uninterruptibly: a process blocked in read, write, open or fsync on a hard
// mount whose server is down could not be killed, not even with SIGKILL
// (issue 14). The kernel tells the daemon about a signal with
// FUSE_INTERRUPT, once, for the first signal. The kernel NFS client lets
// only fatal signals end such a wait (TASK_KILLABLE, since Linux 2.6.25):
// a program's SIGALRM or SIGCHLD handler must not turn a read into an EINTR
// error most programs treat as failure. So does this: on an interrupt, and
// every kPollInterval after it while the request is unanswered (the first
// signal may have been a harmless one, and the kernel sends no second
// interrupt), the caller's pending signals are read from /proc; once a
// fatal one is pending (the kernel marks every thread of a process that a
// signal kills with SIGKILL) the request is answered EINTR at once.
//
// The operation itself goes on; its answer is dropped (Claim returns
// false). A write or create the server performs still lands, as the kernel
// client's do when their process dies mid-call.
//
// The FUSE specifics (how to answer, how to stop interrupt callbacks) come
// in as functions: fuse_adapter.cc is the only file that includes libfuse.
//
// Threads: Claim runs on whichever thread answers; Interrupted on libfuse's
// thread, which must not answer the request from inside its interrupt
// callback (libfuse may hold the request's lock there), so the check and
// the EINTR answer run on a timer thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

namespace floatmount::fuse {

class KillableRequest : public std::enable_shared_from_this<KillableRequest> {
 public:
  static constexpr std::chrono::milliseconds kPollInterval{200};

  // `tid`: the calling thread (FUSE's ctx->pid); 0 if unknown (never
  // answered early). `answer_eintr` answers the request with EINTR;
  // `stop_interrupts` stops interrupt callbacks and waits for a running
  // one to return.
  KillableRequest(pid_t tid, std::function<void()> answer_eintr,
                  std::function<void()> stop_interrupts);

  // The operation's answer may go out: true once, for the first of the
  // operation and the EINTR answer. After a true, no interrupt callback
  // runs any more.
  bool Claim();
  // FUSE_INTERRUPT arrived (libfuse's callback).
  void Interrupted();

  bool answered_eintr() const { return eintr_.load(); }
  // Whether any signal interrupted the request (a lock wait ends with
  // EINTR on any signal, as F_SETLKW does).
  bool interrupted() const { return interrupted_.load(); }

 private:
  void Check();

  const pid_t tid_;
  const std::function<void()> answer_eintr_;
  const std::function<void()> stop_interrupts_;
  std::atomic<bool> claimed_{false};
  std::atomic<bool> eintr_{false};
  std::atomic<bool> polling_{false};
  std::atomic<bool> interrupted_{false};
};

// Whether a signal that ends the process is pending for thread `tid`
// (SIGKILL in its pending or its process's shared pending set).
bool FatalSignalPending(pid_t tid);

}  // namespace floatmount::fuse
