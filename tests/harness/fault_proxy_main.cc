// fault_proxy: FaultProxy as a command for shell benchmarks and manual tests.
//
//   fault_proxy --listen 127.0.0.1:0 --target 127.0.0.1:2049
//               [--latency-us N] [--bandwidth BYTES_PER_SEC]
//
// Prints "port=NNNN" as the first line of stdout (flushed) once listening,
// then runs until SIGTERM or SIGINT. SIGUSR1 cuts all connections; SIGUSR2
// toggles the black hole. Addresses may be IPv6 in brackets: [::1]:0.
//
// Threads: the main thread waits in sigwait(); the signals are blocked in
// every thread, so they are only ever taken there.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/harness/fault_proxy.h"

namespace {

using floatmount::testing::FaultProxy;

int Usage(const char* problem) {
  std::fprintf(stderr,
               "fault_proxy: %s\nusage: fault_proxy --listen HOST:PORT --target HOST:PORT "
               "[--latency-us N] [--bandwidth BYTES_PER_SEC]\n",
               problem);
  return 2;
}

// Splits "host:port" or "[v6]:port".
bool SplitHostPort(const std::string& text, std::string* host, uint16_t* port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) return false;
  *host = text.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  char* end = nullptr;
  const unsigned long value = std::strtoul(text.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return !host->empty();
}

bool ParseNumber(const char* text, unsigned long long* out) {
  char* end = nullptr;
  *out = std::strtoull(text, &end, 10);
  return end != text && *end == '\0';
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen_host, target_host;
  uint16_t listen_port = 0, target_port = 0;
  unsigned long long latency_us = 0, bandwidth = 0;
  bool have_listen = false, have_target = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return Usage(("missing value for " + arg).c_str());
    const char* value = argv[++i];
    if (arg == "--listen") {
      have_listen = SplitHostPort(value, &listen_host, &listen_port);
      if (!have_listen) return Usage("bad --listen");
    } else if (arg == "--target") {
      have_target = SplitHostPort(value, &target_host, &target_port);
      if (!have_target) return Usage("bad --target");
    } else if (arg == "--latency-us") {
      if (!ParseNumber(value, &latency_us)) return Usage("bad --latency-us");
    } else if (arg == "--bandwidth") {
      if (!ParseNumber(value, &bandwidth)) return Usage("bad --bandwidth");
    } else {
      return Usage(("unknown option " + arg).c_str());
    }
  }
  if (!have_listen || !have_target) return Usage("--listen and --target are required");

  // Block before any thread exists so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGTERM, SIGINT, SIGUSR1, SIGUSR2}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  FaultProxy proxy(listen_host, listen_port, target_host, target_port);
  proxy.SetLatency(std::chrono::microseconds(latency_us));
  proxy.SetBandwidth(bandwidth);
  if (!proxy.Start()) {
    std::fprintf(stderr, "fault_proxy: %s\n", proxy.error().c_str());
    return 1;
  }
  std::printf("port=%u\n", proxy.port());
  std::fflush(stdout);

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGUSR1) {
      proxy.CutAll();
      std::fprintf(stderr, "fault_proxy: cut all connections\n");
    } else if (sig == SIGUSR2) {
      proxy.SetBlackHole(!proxy.black_hole());
      std::fprintf(stderr, "fault_proxy: black hole %s\n", proxy.black_hole() ? "on" : "off");
    } else {
      break;
    }
  }
  proxy.Stop();
  std::fprintf(stderr, "fault_proxy: stopped; accepted %llu, bytes to target %llu, from %llu\n",
               static_cast<unsigned long long>(proxy.TotalAccepted()),
               static_cast<unsigned long long>(proxy.BytesToTarget()),
               static_cast<unsigned long long>(proxy.BytesFromTarget()));
  return 0;
}
