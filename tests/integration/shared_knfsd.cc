#include "tests/integration/shared_knfsd.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace floatmount::testing {

bool KnfsdRequested() {
  const char* value = std::getenv("FLOATMOUNT_TEST_SERVER");
  return value != nullptr && std::string(value) == "knfsd";
}

KnfsdServer* SharedKnfsd(std::string* error) {
  // A function-local static: destroyed at exit after any static that was
  // built later and still uses the guest (mount_fixture.cc's server view).
  static std::unique_ptr<KnfsdServer> server;
  static std::string failure;
  static bool tried = false;
  if (!tried) {
    tried = true;
    failure = KnfsdServer::MissingPrerequisite();
    if (failure.empty()) {
      server = std::make_unique<KnfsdServer>();
      const auto start = std::chrono::steady_clock::now();
      if (server->Start()) {
        std::fprintf(
            stderr, "shared_knfsd: knfsd guest booted in %.1f s on 127.0.0.1:%u (%s)\n",
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
            server->port(), server->dir().c_str());
      } else {
        failure = "the knfsd guest did not boot: " + server->error();
        server.reset();
      }
    }
  }
  if (server != nullptr && !server->running()) {
    failure = "the knfsd guest is gone:\n" + server->LogTail();
    server.reset();
  }
  *error = failure;
  return server.get();
}

::testing::AssertionResult EmptyGuestExport(KnfsdServer& server) {
  const std::string dir = server.guest_export_dir();
  std::string output;
  const int rc = server.RunInGuest("cd " + dir + " && rm -rf -- * .[!.]* ..?* && chmod 0777 . &&" +
                                       " chown 0:0 . && [ -z \"$(ls -A)\" ]",
                                   &output);
  if (rc == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "emptying the guest's " << dir << " failed (" << rc << "): " << output;
}

}  // namespace floatmount::testing
