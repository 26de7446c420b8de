// torture: the command-line front end of tests/torture/torture.h. Runs one
// seed; see Usage() for the options. Used by hand and by the integration
// test tests/integration/torture_test.cc.
// Threads: single-threaded.
#include <iostream>
#include <string>
#include <vector>

#include "tests/torture/torture.h"

int main(int argc, char** argv) {
  using floatmount::torture::Options;
  Options options;
  const std::vector<std::string> args(argv + 1, argv + argc);
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << floatmount::torture::Usage();
      return floatmount::torture::kPassed;
    }
  }
  if (const auto error = floatmount::torture::ParseOptions(args, options)) {
    std::cerr << "torture: " << *error << "\n" << floatmount::torture::Usage();
    return floatmount::torture::kUsage;
  }
  floatmount::torture::Torture torture(options);
  return torture.Run(std::cout);
}
