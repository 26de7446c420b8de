// Reading the exercisers' command lines (torture, tree_torture): the value
// after args[i] ("--seed 7"), advancing i past it.
// Threads: any (no state).
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace floatmount::torture {

inline bool TakeValue(const std::vector<std::string>& args, size_t& i, std::string& v) {
  if (i + 1 >= args.size()) return false;
  v = args[++i];
  return true;
}

// A whole number (decimal, 0x hex or 0 octal), nothing after it.
inline bool TakeNumber(const std::vector<std::string>& args, size_t& i, uint64_t& v) {
  std::string s;
  if (!TakeValue(args, i, s) || s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  v = std::strtoull(s.c_str(), &end, 0);
  return errno == 0 && *end == '\0';
}

}  // namespace floatmount::torture
