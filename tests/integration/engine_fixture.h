// Shared pieces of the engine's integration tests: a fixture that starts a
// real ganesha (stopped whatever happens), mounts through Nfs41Client, and
// helpers for bulk I/O with many calls in flight.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nfs/v4/client.h"
#include "nfs/sync_client.h"
#include "tests/harness/ganesha_server.h"
#include "tests/harness/integration_env.h"

namespace floatmount::testing {

// Deterministic pseudo-random bytes (xorshift), fast enough for GiBs.
std::vector<uint8_t> RandomBytes(size_t size, uint64_t seed);

// Reads a whole local file (e.g. from the server's export directory).
std::vector<uint8_t> ReadLocalFile(const std::string& path);

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

  // Options for a mount of the test server (or of `port`, e.g. a proxy).
  nfs::Nfs41Options Options(int nconnect = 4, uint16_t port = 0) const;
  std::unique_ptr<nfs::Nfs41Client> MountOrFail(const nfs::Nfs41Options& options);
  // Creates (or truncates) `name` in the export root, open for read+write.
  nfs::OpenResult CreateFile(nfs::SyncClient& sync, const std::string& name);

  GaneshaOptions server_options_;
  std::unique_ptr<GaneshaServer> server_;
};

}  // namespace floatmount::testing
