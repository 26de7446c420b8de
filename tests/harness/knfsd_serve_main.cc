// knfsd_serve: runs the Linux kernel NFS server in a QEMU guest
// (KnfsdServer) for manual runs and shell scripts.
//
//   knfsd_serve
// builds or reuses the guest image, boots it and prints "port=N" and
// "pseudo=/" (one per line, flushed) once knfsd answers; then runs until
// SIGTERM/SIGINT, when it stops the guest. Mount with e.g.
//   floatmount -o port=N 127.0.0.1:/ /mnt
// Lines on stdin run in the guest's shell (RunInGuest) and print their
// output, e.g. `cat /proc/fs/nfsd/clients/*/info`.
#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <string>

#include "tests/harness/knfsd_server.h"

int main(int argc, char** argv) {
  if (argc > 1) {
    std::cerr << "usage: " << argv[0] << "\n";
    return 2;
  }
  const std::string missing = floatmount::testing::KnfsdServer::MissingPrerequisite();
  if (!missing.empty()) {
    std::cerr << "knfsd_serve: " << missing << "\n";
    return 1;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigprocmask(SIG_BLOCK, &stop, nullptr);  // before QEMU inherits the mask
  floatmount::testing::KnfsdServer server;
  if (!server.Start()) {
    std::cerr << "knfsd_serve: " << server.error() << "\n";
    return 1;
  }
  std::cout << "port=" << server.port() << "\npseudo=" << server.pseudo_path()
            << "\ndir=" << server.dir() << "\n"
            << std::flush;
  // Signals are taken with sigtimedwait between stdin lines.
  for (;;) {
    const timespec zero{0, 0};
    if (sigtimedwait(&stop, nullptr, &zero) > 0) break;
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    std::string line;
    if (!std::getline(std::cin, line)) {
      // stdin closed (e.g. run in the background): just wait for a signal.
      int sig = 0;
      sigwait(&stop, &sig);
      break;
    }
    if (line.empty()) continue;
    std::string output;
    const int rc = server.RunInGuest(line, &output);
    std::cout << output << "[exit " << rc << "]\n" << std::flush;
  }
  server.Stop();
  return 0;
}
