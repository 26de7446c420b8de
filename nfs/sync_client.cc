#include "nfs/sync_client.h"

namespace floatmount::nfs {

Result<Entry> SyncClient::LookupPath(const FileHandle& dir, const std::string& path) {
  Entry current{dir, {}};
  auto attrs = GetAttr(dir);
  if (!attrs.ok()) return attrs.status();
  current.attr = *attrs;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    const std::string part = path.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    auto next = Lookup(current.fh, part);
    if (!next.ok()) return next.status();
    current = std::move(next).value();
  }
  return current;
}

Result<std::vector<DirEntry>> SyncClient::ReadDirAll(const FileHandle& dir) {
  std::vector<DirEntry> all;
  uint64_t cookie = 0;
  std::array<uint8_t, 8> verifier{};
  while (true) {
    auto page = Wait<DirPage>(
        [&](auto cb) { client_->ReadDir(cred_, dir, cookie, verifier, 64 * 1024, cb); });
    if (!page.ok()) return page.status();
    verifier = page->cookie_verifier;
    for (DirEntry& e : page->entries) {
      cookie = e.cookie;
      all.push_back(std::move(e));
    }
    if (page->eof || page->entries.empty()) break;
  }
  return all;
}

}  // namespace floatmount::nfs
