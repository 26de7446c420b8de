// How the integration tests run the torture exercisers (tests/torture/):
// on `dir`, checked through a second mount's `second_dir` and the server's
// `server_dir` (torture_test.cc, torture_faults_test.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#ifndef FLOATMOUNT_TORTURE_BINARY
#define FLOATMOUNT_TORTURE_BINARY "torture"
#endif
#ifndef FLOATMOUNT_TREE_TORTURE_BINARY
#define FLOATMOUNT_TREE_TORTURE_BINARY "tree_torture"
#endif

namespace floatmount::testing {

// Longer than any seed takes at the ops counts the tests use.
constexpr auto kTortureSeedTimeout = std::chrono::seconds(500);

// The command line. An empty `second_dir` or `server_dir`: no compare
// through a second mount, or on the server (a server whose directory this
// host cannot read). `extra` (e.g.
// "--max-size", "65536") goes at the end.
inline std::vector<std::string> TortureCommand(const std::string& dir,
                                               const std::string& second_dir,
                                               const std::string& server_dir, uint64_t seed,
                                               uint64_t ops, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {FLOATMOUNT_TORTURE_BINARY, "--dir", dir};
  if (!second_dir.empty()) argv.insert(argv.end(), {"--second-dir", second_dir});
  if (!server_dir.empty()) argv.insert(argv.end(), {"--server-dir", server_dir});
  argv.insert(argv.end(), {"--seed", std::to_string(seed), "--ops", std::to_string(ops)});
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// The same for the names exerciser (tests/torture/tree_torture.h), whose
// `dir` it makes itself; `second_dir` is best a noac mount's.
inline std::vector<std::string> TreeTortureCommand(const std::string& dir,
                                                   const std::string& second_dir,
                                                   const std::string& server_dir, uint64_t seed,
                                                   uint64_t ops,
                                                   std::vector<std::string> extra = {}) {
  std::vector<std::string> argv =
      TortureCommand(dir, second_dir, server_dir, seed, ops, std::move(extra));
  argv[0] = FLOATMOUNT_TREE_TORTURE_BINARY;
  return argv;
}

}  // namespace floatmount::testing
