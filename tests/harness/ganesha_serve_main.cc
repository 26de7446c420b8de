// ganesha_serve: runs one loopback nfs-ganesha (GaneshaServer) for shell
// scripts — the README's demo and the benchmarks — so that the server's
// configuration lives in one place.
//
//   ganesha_serve [--nfsv3]
// prints "port=N", "export_dir=D", "pseudo=/export" and with --nfsv3
// "mount_port=N" (NFSv3's MOUNT; rpcbind is started if none runs) (one per line,
// flushed) once the server answers, then runs until SIGTERM/SIGINT, when it
// stops the server and removes its directory (FLOATMOUNT_KEEP_TEST_DIRS=1
// keeps it).
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "tests/harness/ganesha_server.h"

int main(int argc, char** argv) {
  floatmount::testing::GaneshaOptions options;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--nfsv3") == 0) {
      options.enable_nfsv3 = true;
    } else {
      std::cerr << "usage: ganesha_serve [--nfsv3]\n";
      return 2;
    }
  }
  const std::string missing = floatmount::testing::GaneshaServer::MissingPrerequisite(options);
  if (!missing.empty()) {
    std::cerr << "ganesha_serve: " << missing << "\n";
    return 1;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigprocmask(SIG_BLOCK, &stop, nullptr);  // before the server's child inherits the mask
  floatmount::testing::GaneshaServer server(options);
  if (!server.Start()) {
    std::cerr << "ganesha_serve: " << server.error() << "\n";
    return 1;
  }
  std::cout << "port=" << server.port() << "\nexport_dir=" << server.export_dir()
            << "\npseudo=" << server.pseudo_path() << "\n";
  if (options.enable_nfsv3) std::cout << "mount_port=" << server.mount_port() << "\n";
  std::cout << std::flush;
  int sig = 0;
  sigwait(&stop, &sig);
  server.Stop();
  return 0;
}
