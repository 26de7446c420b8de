#include "agent/config/nfs_url.h"

#include <charconv>

namespace floatmount::agent {

bool LooksLikeNfsUrl(const std::string& text) { return text.rfind("nfs://", 0) == 0; }

std::optional<NfsUrl> ParseNfsUrl(const std::string& text, std::string* error) {
  if (!LooksLikeNfsUrl(text)) {
    *error = "not an nfs:// URL: " + text;
    return std::nullopt;
  }
  NfsUrl url;
  std::string rest = text.substr(6);
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  url.path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string port;
  if (!authority.empty() && authority[0] == '[') {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == std::string::npos) {
      *error = "unterminated IPv6 address in " + text;
      return std::nullopt;
    }
    url.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') {
      port = authority.substr(close + 2);
    }
  } else {
    const size_t colon = authority.rfind(':');
    url.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (url.host.empty()) {
    *error = "no server in " + text;
    return std::nullopt;
  }
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      *error = "bad port '" + port + "' in " + text;
      return std::nullopt;
    }
    url.port = static_cast<uint16_t>(value);
  }
  return url;
}

std::optional<std::string> PathWithinExport(const std::string& path,
                                            const std::string& export_path) {
  std::string exp = export_path;
  while (exp.size() > 1 && exp.back() == '/') exp.pop_back();
  if (exp == "/") return path.size() > 1 ? path.substr(1) : "";
  if (path.rfind(exp, 0) != 0) return std::nullopt;
  if (path.size() == exp.size()) return std::string();
  if (path[exp.size()] != '/') return std::nullopt;
  return path.substr(exp.size() + 1);
}

}  // namespace floatmount::agent
