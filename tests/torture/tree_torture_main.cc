// tree_torture: the command-line front end of tests/torture/tree_torture.h.
// Runs one seed; see TreeUsage() for the options. Used by hand and by the
// integration test tests/integration/tree_torture_test.cc.
// Threads: single-threaded.
#include <iostream>
#include <string>
#include <vector>

#include "tests/torture/torture.h"
#include "tests/torture/tree_torture.h"

int main(int argc, char** argv) {
  namespace torture = floatmount::torture;
  torture::TreeOptions options;
  const std::vector<std::string> args(argv + 1, argv + argc);
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << torture::TreeUsage();
      return torture::kPassed;
    }
  }
  if (const auto error = torture::ParseTreeOptions(args, options)) {
    std::cerr << "tree_torture: " << *error << "\n" << torture::TreeUsage();
    return torture::kUsage;
  }
  torture::TreeTorture tree(options);
  return tree.Run(std::cout);
}
