// Bulk I/O through the NFSv4.1 engine against a real server (ganesha, or
// knfsd with FLOATMOUNT_TEST_SERVER=knfsd: engine_fixture.h).
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "tests/integration/engine_fixture.h"

namespace floatmount::testing {
namespace {

using namespace std::chrono_literals;

TEST_F(EngineTest, OneGibRandomFileRoundTripsByteIdentical) {
  auto client = MountOrFail(Options(16));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  const std::vector<uint8_t> data = RandomBytes(DataSize(size_t{1} << 30), 42);
  nfs::OpenResult file = CreateFile(sync, "big.bin");
  ASSERT_TRUE(file.file);
  ASSERT_TRUE(WriteAll(*client, file.fh, file.file.get(), data).ok());
  ASSERT_TRUE(sync.Close(file.file).ok());

  // What the server stored, byte for byte.
  EXPECT_TRUE(ReadServerFile("big.bin") == data);

  // And what the engine reads back (straight into our buffers).
  auto reopened = sync.Lookup(sync.root(), "big.bin");
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(reopened->attr.size, data.size());
  auto back = ReadAll(*client, reopened->fh, nullptr, data.size());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(*back == data);
}

// The server's TCP connections in state ESTABLISHED on its NFS port: ganesha's
// on this machine, or knfsd's in the guest (/proc/net/tcp there: local port
// 2049 is 0801, state 01), where connections of earlier tests' clients may
// take a moment to close, hence the wait for the count to settle at `want`.
int EstablishedConnections(KnfsdServer* knfsd, GaneshaServer* ganesha, int want) {
  if (knfsd == nullptr) return ganesha->EstablishedConnections();
  int count = -1;
  for (int attempt = 0; attempt < 20 && count != want; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(250ms);
    std::string out;
    knfsd->RunInGuest(
        "grep -cE '^ *[0-9]+: [0-9A-F]{8}:0801 [0-9A-F]{8}:[0-9A-F]{4} 01 ' "
        "/proc/net/tcp",
        &out);
    count = std::atoi(out.c_str());
  }
  return count;
}

TEST_F(EngineTest, SixteenConnectionsShareOneSession) {
  auto client = MountOrFail(Options(16));
  ASSERT_TRUE(client);
  EXPECT_EQ(EstablishedConnections(knfsd_, server_.get(), 16), 16);
  const nfs::ServerInfo info = client->info();
  ASSERT_EQ(info.connections.size(), 16u);
  for (const auto& c : info.connections) EXPECT_TRUE(c.up);
  // Traffic spreads: 64 reads in flight land on more than one connection.
  nfs::SyncClient sync(client.get());
  const std::vector<uint8_t> data = RandomBytes(64 << 20, 7);
  nfs::OpenResult file = CreateFile(sync, "spread.bin");
  ASSERT_TRUE(WriteAll(*client, file.fh, file.file.get(), data, 64).ok());
  int used = 0;
  for (const auto& c : client->info().connections) used += c.bytes_sent > (1 << 20) ? 1 : 0;
  EXPECT_GT(used, 4);
  ASSERT_TRUE(sync.Close(file.file).ok());
}

TEST_F(EngineTest, OffsetsBeyondFourGibAndSparseFiles) {
  auto client = MountOrFail(Options(2));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  nfs::OpenResult file = CreateFile(sync, "sparse.bin");
  const uint64_t offset = (uint64_t{5} << 30) + 12345;
  const std::vector<uint8_t> tail = RandomBytes(100000, 3);
  auto written = sync.Write(file.fh, file.file.get(), offset, tail, nfs::Stability::kFileSync);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(written->count, tail.size());
  auto attr = sync.GetAttr(file.fh);
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->size, offset + tail.size());
  EXPECT_LT(attr->space_used, uint64_t{1} << 20);  // a hole, not 5 GiB of zeros

  std::vector<uint8_t> back(tail.size());
  auto read = sync.Read(file.fh, file.file.get(), offset, back);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->count, tail.size());
  EXPECT_TRUE(back == tail);
  std::vector<uint8_t> hole(4096, 0xff);
  read = sync.Read(file.fh, file.file.get(), uint64_t{3} << 30, hole);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->count, hole.size());
  EXPECT_TRUE(std::all_of(hole.begin(), hole.end(), [](uint8_t b) { return b == 0; }));
  // Reading at the end says eof.
  read = sync.Read(file.fh, file.file.get(), offset + tail.size(), back);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->count, 0u);
  EXPECT_TRUE(read->eof);
  ASSERT_TRUE(sync.Close(file.file).ok());
}

TEST_F(EngineTest, CallsCarryTheCallersUidAndGid) {
  auto client = MountOrFail(Options(1));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  nfs::CreateRequest dir;
  dir.type = nfs::FileType::kDirectory;
  dir.attrs.mode = 0777;
  auto shared = sync.Create(sync.root(), "shared", dir);
  ASSERT_TRUE(shared.ok()) << shared.status().ToString();
  ASSERT_TRUE(sync.SetAttr(shared->fh,
                           [] {
                             nfs::SetAttributes a;
                             a.mode = 0777;
                             return a;
                           }())
                  .ok());

  nfs::SyncClient alice(client.get(), nfs::Credentials{1234, 2345, {3456}});
  nfs::OpenRequest req;
  req.write = true;
  req.create = nfs::CreateMode::kGuarded;
  req.attrs.mode = 0600;
  auto file = alice.Open(shared->fh, "alice.txt", req);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_TRUE(alice.Close(file->file).ok());
  const auto st = ServerStat("shared/alice.txt");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->st_uid, 1234u);
  EXPECT_EQ(st->st_gid, 2345u);
  EXPECT_EQ(file->attr.uid, 1234u);

  // Another user is refused by the server's permission check.
  nfs::SyncClient bob(client.get(), nfs::Credentials{4321, 4321, {}});
  auto denied = bob.OpenHandle(file->fh, true, false);
  ASSERT_FALSE(denied.ok());
  EXPECT_TRUE(denied.status().IsNfs(13)) << denied.status().ToString();  // NFS4ERR_ACCESS
}

// OPEN with a READ in its compound (OpenRequest::read_first, issue 18): the
// server answers both, with the current stateid, and the open is a usable
// one. A file larger than asked comes back in part, not marked eof.
TEST_F(EngineTest, AnOpenReadsTheFirstBytesInItsCompound) {
  auto client = MountOrFail(Options(1));
  ASSERT_TRUE(client);
  nfs::SyncClient sync(client.get());
  const std::vector<uint8_t> small = RandomBytes(5000, 11);
  const std::vector<uint8_t> large = RandomBytes(300000, 12);
  for (const auto& [name, data] : {std::pair{"small", &small}, std::pair{"large", &large}}) {
    nfs::OpenResult made = CreateFile(sync, name);
    ASSERT_TRUE(made.file);
    ASSERT_TRUE(WriteAll(*client, made.fh, made.file.get(), *data).ok());
    ASSERT_TRUE(sync.Close(made.file).ok());
  }
  nfs::OpenRequest req;
  req.read_first = 64 << 10;
  auto opened = sync.Open(sync.root(), "small", req);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  ASSERT_TRUE(opened->first_read.has_value());
  EXPECT_TRUE(opened->first_read->eof);
  EXPECT_TRUE(opened->first_read->data == small);
  EXPECT_EQ(opened->attr.size, small.size());
  // The open works for a READ of its own afterwards (its stateid is right).
  std::vector<uint8_t> back(100);
  auto read = sync.Read(opened->fh, opened->file.get(), 4900, back);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->count, 100u);
  ASSERT_TRUE(sync.Close(opened->file).ok());

  auto part = sync.Open(sync.root(), "large", req);
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  ASSERT_TRUE(part->first_read.has_value());
  EXPECT_FALSE(part->first_read->eof);
  EXPECT_TRUE(part->first_read->data ==
              std::vector<uint8_t>(large.begin(), large.begin() + req.read_first));
  ASSERT_TRUE(sync.Close(part->file).ok());
}

}  // namespace
}  // namespace floatmount::testing
