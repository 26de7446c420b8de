#include "tests/integration/engine_fixture.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <future>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>

#include "tests/integration/shared_knfsd.h"

namespace floatmount::testing {

nfs::Status Lock(nfs::Client& client, const nfs::OpenResult& file, uint64_t owner,
                 nfs::LockType type, uint64_t offset, uint64_t length, nfs::Attributes* attr) {
  std::promise<nfs::Status> p;
  client.Lock({}, file.file.get(), owner, type, offset, length,
              [&](nfs::Result<nfs::Attributes> r) {
                if (r.ok() && attr != nullptr) *attr = *r;
                p.set_value(r.status());
              });
  return p.get_future().get();
}

nfs::Status Unlock(nfs::Client& client, const nfs::OpenResult& file, uint64_t owner,
                   uint64_t offset, uint64_t length) {
  std::promise<nfs::Status> p;
  client.Unlock({}, file.file.get(), owner, offset, length,
                [&](nfs::Result<nfs::Unit> r) { p.set_value(r.status()); });
  return p.get_future().get();
}

std::vector<uint8_t> RandomBytes(size_t size, uint64_t seed) {
  std::vector<uint8_t> out(size);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(out.data() + i, &x, 8);
  }
  for (; i < size; ++i) out[i] = static_cast<uint8_t>(x >> (8 * (i % 8)));
  return out;
}

std::vector<uint8_t> ReadLocalFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

namespace {

// Counts calls in flight and collects the first error.
class Window {
 public:
  explicit Window(size_t limit) : limit_(limit) {}
  void Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return inflight_ < limit_; });
    ++inflight_;
  }
  void Release(const nfs::Status& s) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      --inflight_;
      if (!s.ok() && first_error_.ok()) first_error_ = s;
    }
    cv_.notify_all();
  }
  nfs::Status Drain() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return inflight_ == 0; });
    return first_error_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t limit_;
  size_t inflight_ = 0;
  nfs::Status first_error_;
};

}  // namespace

nfs::Status WriteAll(nfs::Nfs41Client& client, const nfs::FileHandle& fh, const nfs::OpenFile* file,
                     const std::vector<uint8_t>& data, size_t inflight) {
  const size_t block = client.wsize();
  for (int pass = 0; pass < 5; ++pass) {
    Window window(inflight);
    std::mutex mu;
    std::vector<nfs::WriteVerifier> verifiers;
    for (size_t off = 0; off < data.size(); off += block) {
      const size_t len = std::min(block, data.size() - off);
      window.Acquire();
      client.Write({}, fh, file, off, std::span<const uint8_t>(data.data() + off, len),
                   nfs::Stability::kUnstable, [&, len](nfs::Result<nfs::WriteResult> r) {
                     nfs::Status s = r.status();
                     if (r.ok()) {
                       std::lock_guard<std::mutex> lock(mu);
                       verifiers.push_back(r->verifier);
                       if (r->count != len) s = nfs::Status::Internal("short write");
                     }
                     window.Release(s);
                   });
    }
    if (nfs::Status s = window.Drain(); !s.ok()) return s;
    nfs::SyncClient sync(&client);
    auto committed = sync.Commit(fh);
    if (!committed.ok()) return committed.status();
    bool same = true;
    for (const auto& v : verifiers) same &= (v == *committed);
    if (same) return nfs::Status::Ok();
  }
  return nfs::Status::Internal("write verifier kept changing");
}

nfs::Result<std::vector<uint8_t>> ReadAll(nfs::Nfs41Client& client, const nfs::FileHandle& fh,
                                          const nfs::OpenFile* file, uint64_t size,
                                          size_t inflight) {
  std::vector<uint8_t> out(size);
  const size_t block = client.rsize();
  Window window(inflight);
  for (size_t off = 0; off < size; off += block) {
    const size_t len = std::min<size_t>(block, size - off);
    window.Acquire();
    client.Read({}, fh, file, off, std::span<uint8_t>(out.data() + off, len),
                [&window, len](nfs::Result<nfs::ReadResult> r) {
                  nfs::Status s = r.status();
                  if (r.ok() && r->count != len) s = nfs::Status::Internal("short read");
                  window.Release(s);
                });
  }
  if (nfs::Status s = window.Drain(); !s.ok()) return s;
  return out;
}

namespace {

// `s` as one word for the guest's /bin/sh.
std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

void EngineTest::SetUp() {
  // As the agent does (agent/daemon/logging.h): FLOATMOUNT_LOG=debug shows
  // each status the server answered and what the engine did about it.
  if (const char* level = std::getenv("FLOATMOUNT_LOG")) {
    spdlog::set_level(spdlog::level::from_str(level));
  }
  if (KnfsdRequested()) {
    if (!ganesha_only_.empty()) GTEST_SKIP() << "ganesha only: " << ganesha_only_;
    std::string why;
    knfsd_ = SharedKnfsd(&why);
    FLOATMOUNT_REQUIRE(knfsd_ != nullptr, why);
    ASSERT_TRUE(EmptyGuestExport(*knfsd_));
    return;
  }
  const std::string missing = GaneshaServer::MissingPrerequisite(server_options_);
  FLOATMOUNT_REQUIRE(missing.empty(), missing);
  server_ = std::make_unique<GaneshaServer>(server_options_);
  ASSERT_TRUE(server_->Start()) << server_->error();
}

void EngineTest::TearDown() {
  if (HasFailure()) std::fprintf(stderr, "%s\n", ServerLogTail().c_str());
  server_.reset();
  knfsd_ = nullptr;  // shared: stays up for the next test
}

const std::string& EngineTest::server_address() const {
  return knfsd_ != nullptr ? knfsd_->address() : server_->address();
}

uint16_t EngineTest::server_port() const {
  return knfsd_ != nullptr ? knfsd_->port() : server_->port();
}

std::string EngineTest::pseudo_path() const {
  return knfsd_ != nullptr ? knfsd_->pseudo_path() : server_->pseudo_path();
}

std::string EngineTest::ServerLogTail(int lines) const {
  if (knfsd_ != nullptr) return "--- knfsd guest console ---\n" + knfsd_->LogTail(lines);
  if (server_ != nullptr) return "--- ganesha ---\n" + server_->LogTail(lines);
  return "";
}

std::vector<uint8_t> EngineTest::ReadServerFile(const std::string& rel) {
  if (knfsd_ == nullptr) return ReadLocalFile(server_->export_dir() + "/" + rel);
  auto client = MountOrFail(Options(4));
  if (!client) return {};
  nfs::SyncClient sync(client.get());
  std::vector<uint8_t> out;
  auto entry = sync.LookupPath(sync.root(), rel);
  auto opened = entry.ok() ? sync.OpenHandle(entry->fh, true, false)
                           : nfs::Result<nfs::OpenResult>(entry.status());
  if (opened.ok()) {
    auto read = ReadAll(*client, opened->fh, opened->file.get(), entry->attr.size);
    if (read.ok()) out = std::move(read).value();
    EXPECT_TRUE(read.ok()) << "reading " << rel << " back: " << read.status().ToString();
    (void)sync.Close(opened->file);
  }
  EXPECT_TRUE(opened.ok()) << "opening " << rel
                           << " to read it back: " << opened.status().ToString();
  client->Shutdown();
  return out;
}

std::optional<struct stat> EngineTest::ServerStat(const std::string& rel) {
  const std::string path =
      (knfsd_ != nullptr ? knfsd_->guest_export_dir() : server_->export_dir()) + "/" + rel;
  struct stat st {};
  if (knfsd_ == nullptr) {
    if (lstat(path.c_str(), &st) != 0) return std::nullopt;
    return st;
  }
  // %f: st_mode in hex; busybox stat does not follow links (no -L).
  std::string out;
  if (knfsd_->RunInGuest("stat -c '%f %s %u %g %Y' -- " + ShellQuote(path), &out) != 0) {
    return std::nullopt;
  }
  std::istringstream fields(out);
  unsigned mode = 0;
  long long size = 0, mtime = 0;
  unsigned uid = 0, gid = 0;
  if (!(fields >> std::hex >> mode >> std::dec >> size >> uid >> gid >> mtime)) {
    ADD_FAILURE() << "stat in the guest said: " << out;
    return std::nullopt;
  }
  st.st_mode = mode;
  st.st_size = size;
  st.st_uid = uid;
  st.st_gid = gid;
  st.st_mtim.tv_sec = mtime;
  return st;
}

::testing::AssertionResult EngineTest::MakeServerDirs(const std::string& rel) {
  if (knfsd_ == nullptr) {
    std::error_code ec;
    std::filesystem::create_directories(server_->export_dir() + "/" + rel, ec);
    if (!ec) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "mkdir -p " << rel << ": " << ec.message();
  }
  std::string out;
  const int rc =
      knfsd_->RunInGuest("mkdir -p -- " + ShellQuote(knfsd_->guest_export_dir() + "/" + rel), &out);
  if (rc == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "mkdir -p " << rel << " in the guest (" << rc << "): " << out;
}

size_t EngineTest::DataSize(size_t bytes) const {
  const size_t divisor = knfsd() ? 8 : 1;
  return bytes / divisor / std::max<uint64_t>(EnvNumber("FLOATMOUNT_BULK_DIVISOR", 1), 1);
}

nfs::Nfs41Options EngineTest::Options(int nconnect, uint16_t port) const {
  nfs::Nfs41Options options;
  options.endpoints = {{server_address(), port != 0 ? port : server_port()}};
  options.export_path = pseudo_path();
  options.nconnect = nconnect;
  std::random_device rd;
  options.owner_id = "floatmount-test/" + std::to_string(rd()) + std::to_string(rd());
  for (auto& b : options.boot_verifier) b = static_cast<uint8_t>(rd());
  options.timeo = std::chrono::seconds(5);
  options.connect_timeout = std::chrono::seconds(2);
  return options;
}

std::unique_ptr<nfs::Nfs41Client> EngineTest::MountOrFail(const nfs::Nfs41Options& options) {
  auto client = nfs::Nfs41Client::Mount(options);
  EXPECT_TRUE(client.ok()) << client.status().ToString() << "\n" << ServerLogTail();
  if (!client.ok()) return nullptr;
  return std::move(client).value();
}

nfs::OpenResult EngineTest::CreateFile(nfs::SyncClient& sync, const std::string& name) {
  nfs::OpenRequest req;
  req.read = true;
  req.write = true;
  req.create = nfs::CreateMode::kUnchecked;
  req.attrs.mode = 0644;
  req.truncate = true;
  auto opened = sync.Open(sync.root(), name, req);
  EXPECT_TRUE(opened.ok()) << opened.status().ToString();
  return opened.ok() ? std::move(opened).value() : nfs::OpenResult{};
}

nfs::OpenResult EngineTest::CreateFileWith(nfs::SyncClient& sync, const std::string& name,
                                           const std::vector<uint8_t>& data) {
  nfs::OpenResult file = CreateFile(sync, name);
  if (!file.file) return file;
  auto wrote = sync.Write(file.fh, file.file.get(), 0, data, nfs::Stability::kFileSync);
  EXPECT_TRUE(wrote.ok()) << wrote.status().ToString();
  return file;
}

}  // namespace floatmount::testing
