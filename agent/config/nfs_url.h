// NfsUrl: "nfs://HOST[:PORT]/EXPORT[/PATH]" and "HOST:/EXPORT" as the CLI
// takes them.
//
// The export and the path within it cannot be told apart from the URL
// alone, so the parser returns the whole path and the caller decides (the
// probe takes it all as the export; cp mounts the export given by
// --export or the first component and treats the rest as the file path).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace floatmount::agent {

struct NfsUrl {
  std::string host;  // name or address; IPv6 without brackets
  uint16_t port = 2049;
  std::string path;  // absolute, "/" at least
};

// Parses "nfs://host[:port]/path". Returns nullopt (and sets *error) if it
// is not such a URL.
std::optional<NfsUrl> ParseNfsUrl(const std::string& text, std::string* error);
bool LooksLikeNfsUrl(const std::string& text);

// Splits "/export/dir/file" at the end of `export_path` ("/export"):
// returns "dir/file", or nullopt if the path is not under the export.
std::optional<std::string> PathWithinExport(const std::string& path,
                                            const std::string& export_path);

}  // namespace floatmount::agent
