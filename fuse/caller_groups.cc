// See caller_groups.h.
#include "fuse/caller_groups.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string_view>

namespace floatmount::fuse {

std::optional<std::vector<uint32_t>> ParseStatusGroups(const char* text, size_t size) {
  const std::string_view all(text, size);
  size_t at = all.starts_with("Groups:") ? 0 : all.find("\nGroups:");
  if (at == std::string_view::npos) return std::nullopt;
  at += all[at] == '\n' ? 8 : 7;
  const size_t end = all.find('\n', at);
  const std::string_view line = all.substr(at, end == std::string_view::npos ? end : end - at);
  std::vector<uint32_t> groups;
  uint64_t value = 0;
  bool in_number = false;
  for (char c : line) {
    if (c >= '0' && c <= '9') {
      value = value * 10 + static_cast<uint64_t>(c - '0');
      in_number = true;
    } else if (in_number) {
      groups.push_back(static_cast<uint32_t>(value));
      value = 0;
      in_number = false;
    }
  }
  if (in_number) groups.push_back(static_cast<uint32_t>(value));
  return groups;
}

std::optional<std::vector<uint32_t>> ReadCallerGroups(pid_t tid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/task/%d/status", static_cast<int>(tid),
                static_cast<int>(tid));
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  // One read() of a buffer larger than the file returns all of it; a
  // second one would make the kernel format the file again just to find
  // its end. So read again only when the buffer was filled (a process in
  // thousands of groups): with a buffer four times larger, from the start.
  std::vector<char> buf(4096);
  size_t used = 0;
  for (;;) {
    const ssize_t n = pread(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      close(fd);
      return std::nullopt;
    }
    used = static_cast<size_t>(n);
    if (used < buf.size()) break;
    buf.resize(buf.size() * 4);
  }
  close(fd);
  return ParseStatusGroups(buf.data(), used);
}

}  // namespace floatmount::fuse
