// ProcessRuns, which `floatmount unmount` waits on: an agent that exited
// but is not yet reaped (a zombie) has exited, though kill(pid, 0) succeeds.
#include "agent/daemon/run_files.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace floatmount::agent {
namespace {

TEST(ProcessRunsTest, AZombieHasExitedThoughKillStillFindsIt) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[1]);
    char byte;
    (void)!read(ready[0], &byte, 1);  // runs until the test lets it go
    _exit(0);
  }
  close(ready[0]);
  EXPECT_TRUE(ProcessRuns(child));
  close(ready[1]);
  // Not reaped: wait until it is a zombie, which kill(pid, 0) still finds.
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, child, &info, WEXITED | WNOWAIT), 0);
  EXPECT_EQ(kill(child, 0), 0);
  EXPECT_FALSE(ProcessRuns(child));
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  EXPECT_FALSE(ProcessRuns(child));
}

TEST(ProcessRunsTest, ThisProcessRunsAndNoPidDoesNot) {
  EXPECT_TRUE(ProcessRuns(getpid()));
  EXPECT_FALSE(ProcessRuns(0));
  EXPECT_FALSE(ProcessRuns(-1));
}

}  // namespace
}  // namespace floatmount::agent
