// floatmount status [--json | --prometheus] [MOUNTPOINT...]: asks each
// mount's agent over its control socket (status_server.h) and prints a
// summary, JSON (an object for one mount point named on the command line,
// else an array), or the Prometheus text format (for node_exporter's
// textfile collector: `floatmount status --prometheus > DIR/floatmount.prom`).
//
// Exit: 0; kExitMountPoint when a named mount point is not a floatmount
// mount or its agent does not answer; kExitFailure when there is no mount.
// Sockets left by killed agents (nobody listening) are passed over.
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "agent/cli/cli.h"
#include "agent/exit_codes.h"
#include "agent/daemon/run_files.h"
#include "agent/status/status.h"

namespace floatmount::agent {
namespace {

constexpr int kTimeoutMs = 5000;

// The agent's answer to "status" on `socket_path`.
nfs::Result<MountStatus> Ask(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) return nfs::Status::InvalidArgument("path too long");
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return nfs::Status::Internal(std::strerror(errno));
  auto fail = [fd](const std::string& what) {
    close(fd);
    return nfs::Status::Transport(what);
  };
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    close(fd);
    // Nobody listens: an agent that was killed left its socket behind.
    if (err == ECONNREFUSED || err == ENOENT) return nfs::Status::Shutdown("no agent answers");
    return nfs::Status::Transport(std::string("no agent answers (") + std::strerror(err) + ")");
  }
  const char request[] = "status\n";
  if (send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL) != ssize_t(sizeof(request) - 1)) {
    return fail("the agent closed the control socket");
  }
  std::string reply;
  char buf[4096];
  pollfd pfd{fd, POLLIN, 0};
  for (;;) {
    if (poll(&pfd, 1, kTimeoutMs) <= 0) return fail("the agent did not answer within 5 s");
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) return fail(std::strerror(errno));
    if (n == 0) break;
    reply.append(buf, size_t(n));
  }
  close(fd);
  if (reply.rfind("error: ", 0) == 0) return nfs::Status::Protocol(reply.substr(7));
  return ParseStatusJson(reply);
}

}  // namespace

int RunStatus(const std::vector<std::string>& args) {
  bool json = false, prometheus = false;
  std::vector<std::string> mountpoints;
  for (const std::string& a : args) {
    if (a == "--json") {
      json = true;
    } else if (a == "--prometheus") {
      prometheus = true;
    } else if (a == "-h" || a == "--help") {
      std::cout << "usage: floatmount status [--json | --prometheus] [MOUNTPOINT...]\n"
                   "  without a mount point: every floatmount mount on this machine\n";
      return kExitOk;
    } else if (!a.empty() && a[0] == '-') {
      std::cerr << "floatmount status: unknown option " << a << " (try --help)\n";
      return kExitUsage;
    } else {
      mountpoints.push_back(a);
    }
  }
  if (json && prometheus) {
    std::cerr << "floatmount status: choose one of --json and --prometheus\n";
    return kExitUsage;
  }
  std::vector<std::pair<std::string, std::string>> targets;  // (what, socket)
  for (const std::string& mp : mountpoints) {
    char real[PATH_MAX];
    const std::string abs = realpath(mp.c_str(), real) != nullptr ? real : mp;
    targets.emplace_back(abs, RunFileFor(abs, ".sock"));
  }
  if (mountpoints.empty()) {
    for (const std::string& sock : RunFiles(".sock")) targets.emplace_back(sock, sock);
    if (targets.empty()) {
      std::cerr << "floatmount status: no floatmount mounts on this machine (no control socket in "
                << RunDir() << ")\n";
      return kExitFailure;
    }
  }
  std::vector<MountStatus> found;
  int code = kExitOk;
  for (const auto& [what, sock] : targets) {
    auto s = Ask(sock);
    if (!s.ok() && mountpoints.empty() && s.status().kind() == nfs::Status::Kind::kShutdown) {
      continue;  // a stale socket of a killed agent: not a mount
    }
    if (!s.ok()) {
      std::cerr << "floatmount status: " << what << ": " << s.status().message()
                << (mountpoints.empty() ? "" : ". Is it mounted with floatmount?") << "\n";
      code = mountpoints.empty() ? code : kExitMountPoint;
      continue;
    }
    found.push_back(std::move(*s));
  }
  if (found.empty() && mountpoints.empty()) {
    std::cerr << "floatmount status: no floatmount mounts on this machine\n";
    return kExitFailure;
  }
  if (prometheus) {
    std::cout << FormatPrometheus(found);
  } else if (json) {
    if (mountpoints.size() == 1 && found.size() == 1) {
      std::cout << FormatJson(found[0]) << "\n";
    } else {
      std::cout << "[";
      for (size_t i = 0; i < found.size(); ++i) std::cout << (i ? "," : "") << FormatJson(found[i]);
      std::cout << "]\n";
    }
  } else {
    for (size_t i = 0; i < found.size(); ++i) std::cout << (i ? "\n" : "") << FormatHuman(found[i]);
  }
  return code;
}

}  // namespace floatmount::agent
