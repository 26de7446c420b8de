// floatmount cp: copies one file between a local path and an NFS server
// through the engine alone (no FUSE), keeping many READs or WRITEs in
// flight, and prints the throughput. It measures the engine and debugs a
// server.
//
// Threads: the main thread reads/writes the local file and issues NFS
// calls; completions (on the engine's receiver threads) only queue their
// result for the main thread.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <iostream>
#include <mutex>

#include "agent/cli/cli.h"
#include "agent/daemon/engine_setup.h"
#include "agent/exit_codes.h"
#include "agent/config/nfs_url.h"
#include "nfs/v4/client.h"
#include "nfs/sync_client.h"

namespace floatmount::agent {
namespace {

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;

// Results of NFS calls, handed from receiver threads to the main thread.
template <typename T>
class CompletionQueue {
 public:
  struct Item {
    size_t slot;
    uint64_t offset;
    uint32_t length;
    nfs::Result<T> result;
  };
  void Push(Item item) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      items_.push_back(std::move(item));
    }
    cv_.notify_one();
  }
  Item Pop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !items_.empty(); });
    Item item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> items_;
};

struct Buffers {
  Buffers(size_t count, size_t size) : size(size), data(count * size) {}
  uint8_t* at(size_t slot) { return data.data() + slot * size; }
  size_t size;
  std::vector<uint8_t> data;
};

void PrintRate(uint64_t bytes, Clock::duration elapsed) {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  const double mib = static_cast<double>(bytes) / (1 << 20);
  std::printf("copied %llu bytes in %.3f s: %.1f MiB/s (%.1f MB/s)\n",
              static_cast<unsigned long long>(bytes), seconds, mib / seconds,
              static_cast<double>(bytes) / 1e6 / seconds);
}

int Fail(const std::string& message, int code) {
  std::cerr << "floatmount cp: " << message << "\n";
  return code;
}

// NFS -> local.
int Download(nfs::Nfs41Client& client, const std::string& remote_path, const std::string& local,
             size_t inflight) {
  nfs::SyncClient sync(&client);
  auto entry = sync.LookupPath(client.root(), remote_path);
  if (!entry.ok()) return Fail(remote_path + ": " + entry.status().ToString(), ExitCodeFor(entry.status()));
  auto opened = sync.OpenHandle(entry->fh, true, false);
  if (!opened.ok()) return Fail(remote_path + ": " + opened.status().ToString(), ExitCodeFor(opened.status()));
  const int fd = open(local.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Fail(local + ": " + std::strerror(errno), kExitLocalFile);
  const uint64_t size = opened->attr.size;
  const uint32_t block = client.rsize();
  Buffers buffers(inflight, block);
  CompletionQueue<nfs::ReadResult> done;
  std::vector<size_t> free_slots;
  for (size_t i = 0; i < inflight; ++i) free_slots.push_back(i);
  uint64_t next = 0, copied = 0;
  size_t outstanding = 0;
  int rc = kExitOk;
  const auto start = Clock::now();
  auto issue = [&](size_t slot, uint64_t offset, uint32_t length) {
    ++outstanding;
    client.Read({}, entry->fh, opened->file.get(), offset,
                std::span<uint8_t>(buffers.at(slot), length),
                [&done, slot, offset, length](nfs::Result<nfs::ReadResult> r) {
                  done.Push({slot, offset, length, std::move(r)});
                });
  };
  while (true) {
    while (rc == kExitOk && !free_slots.empty() && next < size) {
      const uint32_t length = static_cast<uint32_t>(std::min<uint64_t>(block, size - next));
      issue(free_slots.back(), next, length);
      free_slots.pop_back();
      next += length;
    }
    if (outstanding == 0) break;
    auto item = done.Pop();
    --outstanding;
    if (!item.result.ok()) {
      rc = Fail("READ at " + std::to_string(item.offset) + ": " + item.result.status().ToString(), kExitIo);
      free_slots.push_back(item.slot);
      continue;
    }
    const uint32_t got = item.result->count;
    if (got > 0 && pwrite(fd, buffers.at(item.slot), got, static_cast<off_t>(item.offset)) != got) {
      rc = Fail(local + ": " + std::strerror(errno), kExitLocalFile);
    }
    copied += got;
    if (rc == kExitOk && got < item.length && !item.result->eof) {
      // Short read: ask for the rest (the part read is already written).
      issue(item.slot, item.offset + got, item.length - got);
      continue;
    }
    free_slots.push_back(item.slot);
  }
  const auto elapsed = Clock::now() - start;
  if (close(fd) != 0 && rc == kExitOk) rc = Fail(local + ": " + std::strerror(errno), kExitLocalFile);
  sync.Close(opened->file);
  if (rc == kExitOk) PrintRate(copied, elapsed);
  return rc;
}

// local -> NFS: UNSTABLE WRITEs in flight, then COMMIT. If the write
// verifier changed (the server restarted and may have lost uncommitted
// data), everything is sent again.
int Upload(nfs::Nfs41Client& client, const std::string& local, const std::string& remote_path,
           size_t inflight) {
  nfs::SyncClient sync(&client);
  const int fd = open(local.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(local + ": " + std::strerror(errno), kExitLocalFile);
  struct stat st;
  fstat(fd, &st);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const size_t cut = remote_path.rfind('/');
  const std::string dir_path = cut == std::string::npos ? "" : remote_path.substr(0, cut);
  const std::string name = cut == std::string::npos ? remote_path : remote_path.substr(cut + 1);
  auto dir = sync.LookupPath(client.root(), dir_path);
  if (!dir.ok()) {
    close(fd);
    return Fail(dir_path + ": " + dir.status().ToString(), ExitCodeFor(dir.status()));
  }
  nfs::OpenRequest req;
  req.read = false;
  req.write = true;
  req.create = nfs::CreateMode::kUnchecked;
  req.attrs.mode = 0644;
  req.truncate = true;
  auto opened = sync.Open(dir->fh, name, req);
  if (!opened.ok()) {
    close(fd);
    return Fail(remote_path + ": " + opened.status().ToString(), ExitCodeFor(opened.status()));
  }
  const uint32_t block = client.wsize();
  Buffers buffers(inflight, block);
  int rc = kExitOk;
  const auto start = Clock::now();
  for (int pass = 0; pass < 3 && rc == kExitOk; ++pass) {
    CompletionQueue<nfs::WriteResult> done;
    std::vector<size_t> free_slots;
    for (size_t i = 0; i < inflight; ++i) free_slots.push_back(i);
    std::optional<nfs::WriteVerifier> verifier;
    bool verifier_changed = false;
    uint64_t next = 0;
    size_t outstanding = 0;
    auto issue = [&](size_t slot, uint64_t offset, uint32_t length) {
      ++outstanding;
      client.Write({}, opened->fh, opened->file.get(), offset,
                   std::span<const uint8_t>(buffers.at(slot), length), nfs::Stability::kUnstable,
                   [&done, slot, offset, length](nfs::Result<nfs::WriteResult> r) {
                     done.Push({slot, offset, length, std::move(r)});
                   });
    };
    while (true) {
      while (rc == kExitOk && !free_slots.empty() && next < size) {
        const uint32_t length = static_cast<uint32_t>(std::min<uint64_t>(block, size - next));
        const size_t slot = free_slots.back();
        if (pread(fd, buffers.at(slot), length, static_cast<off_t>(next)) != length) {
          rc = Fail(local + ": short read", kExitLocalFile);
          break;
        }
        free_slots.pop_back();
        issue(slot, next, length);
        next += length;
      }
      if (outstanding == 0) break;
      auto item = done.Pop();
      --outstanding;
      if (!item.result.ok()) {
        rc = Fail("WRITE at " + std::to_string(item.offset) + ": " + item.result.status().ToString(),
                  ExitCodeFor(item.result.status()) == kExitPermission ? kExitPermission : kExitIo);
        free_slots.push_back(item.slot);
        continue;
      }
      if (verifier && *verifier != item.result->verifier) verifier_changed = true;
      verifier = item.result->verifier;
      if (item.result->count < item.length) {
        const uint32_t sent = item.result->count;
        std::memmove(buffers.at(item.slot), buffers.at(item.slot) + sent, item.length - sent);
        issue(item.slot, item.offset + sent, item.length - sent);
        continue;
      }
      free_slots.push_back(item.slot);
    }
    if (rc != kExitOk) break;
    auto committed = sync.Commit(opened->fh, 0, 0);
    if (!committed.ok()) {
      rc = Fail("COMMIT: " + committed.status().ToString(), kExitIo);
      break;
    }
    if (!verifier_changed && (!verifier || *verifier == *committed)) break;
    std::cerr << "floatmount cp: the server restarted during the copy; sending the data again\n";
    if (pass == 2) rc = Fail("the server kept restarting; the copy is incomplete", kExitIo);
  }
  const auto elapsed = Clock::now() - start;
  close(fd);
  nfs::Status closed = sync.Close(opened->file);
  if (rc == kExitOk && !closed.ok()) rc = Fail("CLOSE: " + closed.ToString(), kExitIo);
  if (rc == kExitOk) PrintRate(size, elapsed);
  return rc;
}

}  // namespace

int RunCp(const std::vector<std::string>& args) {
  po::options_description opts(
      "floatmount cp [options] SRC DST\n"
      "  One of SRC and DST is nfs://HOST[:PORT]/EXPORT/PATH, the other a local path");
  int nconnect = 16;
  int inflight = 0;
  std::string export_path;
  opts.add_options()("help,h", "show this help")(
      "nconnect", po::value<int>(&nconnect)->default_value(16), "TCP connections (1-64)")(
      "inflight", po::value<int>(&inflight)->default_value(0),
      "READs/WRITEs in flight (default: 2 x nconnect, at least 8)")(
      "export", po::value<std::string>(&export_path),
      "the export part of the URL path (default: its first component)");
  po::options_description hidden;
  hidden.add_options()("src", po::value<std::string>())("dst", po::value<std::string>());
  po::positional_options_description pos;
  pos.add("src", 1).add("dst", 1);
  po::options_description all;
  all.add(opts).add(hidden);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return Fail(std::string(e.what()) + ". See 'floatmount cp --help'.", kExitUsage);
  }
  if (vm.count("help")) {
    std::cout << opts;
    return kExitOk;
  }
  if (!vm.count("src") || !vm.count("dst")) return Fail("give SRC and DST.", kExitUsage);
  if (nconnect < 1 || nconnect > 64) return Fail("--nconnect must be 1..64.", kExitUsage);
  if (inflight <= 0) inflight = std::max(8, 2 * nconnect);
  const std::string src = vm["src"].as<std::string>(), dst = vm["dst"].as<std::string>();
  if (LooksLikeNfsUrl(src) == LooksLikeNfsUrl(dst)) {
    return Fail("exactly one of SRC and DST must be an nfs:// URL.", kExitUsage);
  }
  const bool download = LooksLikeNfsUrl(src);
  std::string error;
  auto url = ParseNfsUrl(download ? src : dst, &error);
  if (!url) return Fail(error + ".", kExitUsage);
  if (export_path.empty()) {
    const size_t second = url->path.find('/', 1);
    export_path = url->path.substr(0, second);
  }
  auto within = PathWithinExport(url->path, export_path);
  if (!within || within->empty()) {
    return Fail(url->path + " does not name a file under the export " + export_path + ".", kExitUsage);
  }
  auto addresses = ResolveServer(url->host);
  if (!addresses.ok()) return Fail(addresses.status().message() + ".", kExitUnreachable);
  auto client = nfs::Nfs41Client::Mount(
      OneShotOptions(EndpointsOf(*addresses, url->port), export_path, nconnect));
  if (!client.ok()) {
    return Fail(DescribeMountFailure(url->host, export_path, client.status()),
                ExitCodeFor(client.status()));
  }
  const int rc = download ? Download(**client, *within, dst, static_cast<size_t>(inflight))
                          : Upload(**client, src, *within, static_cast<size_t>(inflight));
  (*client)->Shutdown();
  return rc;
}

}  // namespace floatmount::agent
