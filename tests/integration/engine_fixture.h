// Shared pieces of the engine's integration tests: a fixture that starts a
// real server (stopped whatever happens), mounts through Nfs41Client, and
// helpers for bulk I/O with many calls in flight.
//
// Server: a ganesha of the test's own by default. With
// FLOATMOUNT_TEST_SERVER=knfsd, the Linux kernel server in the QEMU guest
// the process shares with the FUSE suites (shared_knfsd.h): SetUp empties
// its export instead of starting a server. Tests reach the server through
// server_address()/server_port()/pseudo_path() and check what reached it
// through ReadServerFile()/ServerStat()/MakeServerDirs(), which work on
// both. A test of a ganesha-only hook (killing the process, its options)
// checks knfsd() and skips with the reason; a fixture that needs ganesha
// throughout sets ganesha_only_ in its constructor.
//
// Thread-safety: the fixture is used from the test's main thread.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nfs/v4/client.h"
#include "nfs/sync_client.h"
#include "tests/harness/ganesha_server.h"
#include "tests/harness/integration_env.h"
#include "tests/harness/knfsd_server.h"

namespace floatmount::testing {

// Deterministic pseudo-random bytes (xorshift), fast enough for GiBs.
std::vector<uint8_t> RandomBytes(size_t size, uint64_t seed);

// Reads a whole local file (e.g. from the server's export directory).
std::vector<uint8_t> ReadLocalFile(const std::string& path);

// Byte-range lock calls that wait for their answer (SyncClient has none).
// `attr`, if given, receives the attributes that came with the grant.
nfs::Status Lock(nfs::Client& client, const nfs::OpenResult& file, uint64_t owner,
                 nfs::LockType type, uint64_t offset, uint64_t length,
                 nfs::Attributes* attr = nullptr);
nfs::Status Unlock(nfs::Client& client, const nfs::OpenResult& file, uint64_t owner,
                   uint64_t offset, uint64_t length);

// Writes `data` at offset 0 with UNSTABLE WRITEs, `inflight` at a time,
// then COMMITs. If the write verifier changes (server restart), sends it
// all again, as a client must. Returns the first error.
nfs::Status WriteAll(nfs::Nfs41Client& client, const nfs::FileHandle& fh,
                     const nfs::OpenFile* file, const std::vector<uint8_t>& data,
                     size_t inflight = 32);
// Reads `size` bytes from offset 0, `inflight` READs at a time.
nfs::Result<std::vector<uint8_t>> ReadAll(nfs::Nfs41Client& client, const nfs::FileHandle& fh,
                                          const nfs::OpenFile* file, uint64_t size,
                                          size_t inflight = 32);

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // The server under test, whichever it is.
  bool knfsd() const { return knfsd_ != nullptr; }
  const std::string& server_address() const;
  uint16_t server_port() const;
  // The NFSv4 path of the export: "/export" (ganesha) or "/" (knfsd).
  std::string pseudo_path() const;
  // The last lines of ganesha's log or of the guest's console.
  std::string ServerLogTail(int lines = 30) const;

  // Options for a mount of the test server (or of `port`, e.g. a proxy).
  nfs::Nfs41Options Options(int nconnect = 4, uint16_t port = 0) const;
  std::unique_ptr<nfs::Nfs41Client> MountOrFail(const nfs::Nfs41Options& options);
  // Creates (or truncates) `name` in the export root, open for read+write.
  nfs::OpenResult CreateFile(nfs::SyncClient& sync, const std::string& name);
  // CreateFile, then `data` written FILE_SYNC (a test failure if not).
  nfs::OpenResult CreateFileWith(nfs::SyncClient& sync, const std::string& name,
                                 const std::vector<uint8_t>& data);

  // What reached the server. `rel` is relative to the export root.
  // The whole file: ganesha's export directory read locally; under knfsd
  // (whose export is a tmpfs in the guest) read by a client of its own, a
  // new Nfs41Client straight to the server. Empty, and a test failure, if
  // it cannot be read.
  std::vector<uint8_t> ReadServerFile(const std::string& rel);
  // lstat(2) of the file as the server's file system has it (under knfsd,
  // busybox stat in the guest, which fills st_mode, st_size, st_uid,
  // st_gid and st_mtim.tv_sec only). Nullopt if it does not exist.
  std::optional<struct stat> ServerStat(const std::string& rel);
  // mkdir -p in the export, behind the server's back.
  ::testing::AssertionResult MakeServerDirs(const std::string& rel);
  // `bytes` for ganesha on loopback; an eighth of it under knfsd, whose
  // export is a tmpfs of at most 512 MiB reached through QEMU's user
  // network; divided again by FLOATMOUNT_BULK_DIVISOR if set (the ASan
  // pass, where every copy is several times slower). For tests of bulk I/O
  // whose point is not the size itself.
  size_t DataSize(size_t bytes) const;

  GaneshaOptions server_options_;
  // Set (to the reason) in the constructor of a fixture that needs a
  // ganesha of its own: under knfsd its tests skip.
  std::string ganesha_only_;
  std::unique_ptr<GaneshaServer> server_;  // null under knfsd
  KnfsdServer* knfsd_ = nullptr;           // the shared guest, or null
};

}  // namespace floatmount::testing
