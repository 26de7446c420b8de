// What fuse/ may rely on from FakeClient (tests/fakes/fake_client.h): each
// test pins one piece of NFSv4.1 server behaviour the fake models, and the
// last ones pin FaultyClient.
#include "tests/fakes/fake_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

#include "nfs/v4/protocol.h"
#include "nfs/sync_client.h"
#include "tests/fakes/faulty_client.h"

namespace floatmount::fakes {
namespace {

using nfs::Attributes;
using nfs::Credentials;
using nfs::FileHandle;
using nfs::FileType;
using nfs::LockType;
using nfs::Result;
using nfs::SetAttributes;
using nfs::Stability;
using nfs::Status;
using nfs::SyncClient;
using namespace nfs::v4;  // NFS4ERR_*

const Credentials kRoot{};
const Credentials kAlice{1000, 1000, {2000}};
const Credentials kBob{1001, 1001, {}};

// Waits for one asynchronous call.
template <typename T, typename Issue>
Result<T> Call(Issue issue) {
  std::promise<Result<T>> promise;
  auto future = promise.get_future();
  issue([&promise](Result<T> r) { promise.set_value(std::move(r)); });
  return future.get();
}

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

nfs::OpenRequest OpenReq(bool read, bool write, nfs::CreateMode create = nfs::CreateMode::kNoCreate,
                         uint32_t mode = 0644) {
  nfs::OpenRequest req;
  req.read = read;
  req.write = write;
  req.create = create;
  if (create != nfs::CreateMode::kNoCreate) req.attrs.mode = mode;
  return req;
}

nfs::CreateRequest Mkdir(uint32_t mode = 0755) {
  nfs::CreateRequest req;
  req.type = FileType::kDirectory;
  req.attrs.mode = mode;
  return req;
}

#define EXPECT_NFS(expr, code) EXPECT_TRUE((expr).IsNfs(code)) << (expr).ToString()

class FakeClientTest : public ::testing::Test {
 protected:
  SyncClient As(const Credentials& cred) { return SyncClient(&fake_, cred); }
  std::string Read(const FileHandle& fh, uint64_t offset = 0, size_t n = 1 << 16) {
    std::string buf(n, '\0');
    auto r = root_.Read(fh, nullptr, offset, {reinterpret_cast<uint8_t*>(buf.data()), n});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    buf.resize(r.ok() ? r->count : 0);
    return buf;
  }
  std::set<std::string> ListAll(const FileHandle& dir) {
    std::set<std::string> names;
    auto all = root_.ReadDirAll(dir);
    EXPECT_TRUE(all.ok());
    for (const auto& e : *all) EXPECT_TRUE(names.insert(e.name).second) << e.name;
    return names;
  }

  FakeClient fake_;
  SyncClient root_{&fake_};
};

TEST_F(FakeClientTest, RootIsADirectoryWithEveryAttribute) {
  auto attr = root_.GetAttr(fake_.root());
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->type, FileType::kDirectory);
  EXPECT_EQ(attr->mode, 0755u);
  EXPECT_EQ(attr->nlink, 2u);
  EXPECT_EQ(attr->fsid_major, 42u);
  for (uint32_t f = Attributes::kType; f <= Attributes::kRdev; f <<= 1) {
    EXPECT_TRUE(attr->Has(static_cast<Attributes::Field>(f))) << f;
  }
  EXPECT_NFS(root_.GetAttr(FileHandle(reinterpret_cast<const uint8_t*>("xy"), 2)).status(),
             NFS4ERR_BADHANDLE);
}

TEST_F(FakeClientTest, LookupErrors) {
  FileHandle file = fake_.AddFile("d/f", "x");
  fake_.AddSymlink("link", "d");
  auto dir = root_.Lookup(fake_.root(), "d");
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(root_.Lookup(dir->fh, "f")->fh, file);
  EXPECT_NFS(root_.Lookup(dir->fh, "nope").status(), NFS4ERR_NOENT);
  EXPECT_NFS(root_.Lookup(file, "x").status(), NFS4ERR_NOTDIR);
  EXPECT_NFS(root_.Lookup(*fake_.Find("link"), "f").status(), NFS4ERR_SYMLINK);
  EXPECT_NFS(root_.Lookup(dir->fh, std::string(256, 'a')).status(), NFS4ERR_NAMETOOLONG);
  EXPECT_NFS(root_.Lookup(dir->fh, "..").status(), NFS4ERR_BADNAME);
  EXPECT_TRUE(root_.Lookup(fake_.root(), "link").ok());  // not followed
  ASSERT_TRUE(root_.Remove(dir->fh, "f").ok());
  EXPECT_NFS(root_.GetAttr(file).status(), NFS4ERR_STALE);
}

TEST_F(FakeClientTest, WriteReadAndChangeAttribute) {
  auto open = root_.Open(fake_.root(), "f", OpenReq(true, true, nfs::CreateMode::kGuarded));
  ASSERT_TRUE(open.ok());
  EXPECT_TRUE(open->created);
  const uint64_t change0 = open->attr.change;
  auto w = root_.Write(open->fh, open->file.get(), 3, Bytes("abc"), Stability::kUnstable);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->count, 3u);
  EXPECT_EQ(w->committed, Stability::kUnstable);
  EXPECT_EQ(w->verifier, fake_.write_verifier());
  auto attr = root_.GetAttr(open->fh);
  EXPECT_EQ(attr->size, 6u);
  EXPECT_GT(attr->change, change0);
  EXPECT_EQ(Read(open->fh), std::string("\0\0\0abc", 6));
  uint8_t buf[4];
  auto r = root_.Read(open->fh, open->file.get(), 4, buf);
  EXPECT_EQ(r->count, 2u);
  EXPECT_TRUE(r->eof);
  EXPECT_EQ(root_.Read(open->fh, nullptr, 100, buf)->count, 0u);
  EXPECT_TRUE(root_.Close(open->file).ok());
  EXPECT_NFS(root_.Close(open->file), NFS4ERR_BAD_STATEID);
  EXPECT_EQ(fake_.open_count(), 0u);
}

TEST_F(FakeClientTest, PermissionsAsNonRoot) {
  fake_.AddDir("pub", 0755);
  fake_.AddDir("priv", 0700);
  fake_.AddFile("priv/f", "x");
  FileHandle secret = fake_.AddFile("pub/secret", "s", 0600, kBob.uid, kBob.gid);
  fake_.AddFile("pub/group", "g", 0640, kBob.uid, 2000);
  SyncClient alice = As(kAlice);
  FileHandle pub = *fake_.Find("pub");
  EXPECT_NFS(alice.Lookup(*fake_.Find("priv"), "f").status(), NFS4ERR_ACCESS);
  EXPECT_NFS(alice.Open(pub, "new", OpenReq(true, true, nfs::CreateMode::kGuarded)).status(),
             NFS4ERR_ACCESS);
  EXPECT_NFS(alice.Create(pub, "d", Mkdir()).status(), NFS4ERR_ACCESS);
  EXPECT_NFS(alice.Open(pub, "secret", OpenReq(true, false)).status(), NFS4ERR_ACCESS);
  EXPECT_TRUE(alice.Open(pub, "group", OpenReq(true, false)).ok());  // supplementary group
  EXPECT_NFS(alice.Open(pub, "group", OpenReq(false, true)).status(), NFS4ERR_ACCESS);
  uint8_t buf[4];
  EXPECT_NFS(alice.Read(secret, nullptr, 0, buf).status(), NFS4ERR_ACCESS);  // anonymous
  EXPECT_NFS(alice.Remove(pub, "secret"), NFS4ERR_ACCESS);
  // Root reads anything but executes only what has an x bit.
  EXPECT_TRUE(root_.Open(pub, "secret", OpenReq(true, true)).ok());
  EXPECT_EQ(*root_.Access(secret, nfs::kAccessRead | nfs::kAccessExecute), nfs::kAccessRead);
  EXPECT_EQ(*alice.Access(pub, 0x3f), nfs::kAccessRead | nfs::kAccessLookup);
  EXPECT_EQ(fake_.last_credentials(), kAlice);
}

TEST_F(FakeClientTest, CreatorMayOpenWhatItsModeForbids) {
  fake_.AddDir("home", 0755, kAlice.uid, kAlice.gid);
  SyncClient alice = As(kAlice);
  auto open =
      alice.Open(*fake_.Find("home"), "ro", OpenReq(true, true, nfs::CreateMode::kGuarded, 0444));
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->attr.mode, 0444u);
  EXPECT_EQ(open->attr.uid, kAlice.uid);
  EXPECT_TRUE(alice.Write(open->fh, open->file.get(), 0, Bytes("x"), Stability::kFileSync).ok());
  EXPECT_NFS(alice.Open(*fake_.Find("home"), "ro", OpenReq(false, true)).status(), NFS4ERR_ACCESS);
}

TEST_F(FakeClientTest, SetAttrOwnershipRules) {
  FileHandle f = fake_.AddFile("f", "0123456789", 06755, kAlice.uid, kAlice.gid);
  SyncClient alice = As(kAlice), bob = As(kBob);
  SetAttributes chmod;
  chmod.mode = 0600;
  EXPECT_NFS(bob.SetAttr(f, chmod).status(), NFS4ERR_PERM);
  SetAttributes chown;
  chown.uid = kBob.uid;
  EXPECT_NFS(alice.SetAttr(f, chown).status(), NFS4ERR_PERM);
  SetAttributes chgrp;
  chgrp.gid = 2000;  // alice's supplementary group
  auto attr = alice.SetAttr(f, chgrp);
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->gid, 2000u);
  EXPECT_EQ(attr->mode, 0755u);  // chgrp drops set-uid and (group x) set-gid
  chgrp.gid = 3000;
  EXPECT_NFS(alice.SetAttr(f, chgrp).status(), NFS4ERR_PERM);
  EXPECT_TRUE(root_.SetAttr(f, chown).ok());
  SetAttributes utimes;
  utimes.mtime_how = SetAttributes::TimeHow::kClientTime;
  utimes.mtime = {1000, 5};
  EXPECT_NFS(alice.SetAttr(f, utimes).status(), NFS4ERR_PERM);  // bob owns it now
  EXPECT_EQ(bob.SetAttr(f, utimes)->mtime, (nfs::Timestamp{1000, 5}));
  SetAttributes touch;
  touch.mtime_how = SetAttributes::TimeHow::kServerTime;
  EXPECT_NFS(alice.SetAttr(f, touch).status(), NFS4ERR_ACCESS);  // 0755: no w for alice
  SetAttributes truncate;
  truncate.size = 4;
  EXPECT_NFS(alice.SetAttr(f, truncate).status(), NFS4ERR_ACCESS);
  const uint64_t change = fake_.AttrOf(f)->change;
  EXPECT_EQ(bob.SetAttr(f, truncate)->size, 4u);
  EXPECT_GT(fake_.AttrOf(f)->change, change);
  truncate.size = 1ull << 33;  // sparse: no memory, no pages
  EXPECT_EQ(root_.SetAttr(f, truncate)->space_used, 4096u);
  EXPECT_EQ(Read(f, (1ull << 33) - 2), std::string(2, '\0'));
}

TEST_F(FakeClientTest, TruncateThroughAnOpenFile) {
  FileHandle f = fake_.AddFile("f", "abcdef", 0644, kAlice.uid, kAlice.gid);
  SyncClient alice = As(kAlice);
  auto rw = alice.OpenHandle(f, true, true);
  auto ro = alice.OpenHandle(f, true, false);
  ASSERT_TRUE(rw.ok() && ro.ok());
  SetAttributes chmod;
  chmod.mode = 0444;
  ASSERT_TRUE(alice.SetAttr(f, chmod).ok());
  SetAttributes truncate;
  truncate.size = 2;
  EXPECT_NFS(alice.SetAttr(f, truncate, ro->file.get()).status(), NFS4ERR_OPENMODE);
  EXPECT_EQ(alice.SetAttr(f, truncate, rw->file.get())->size, 2u);
  EXPECT_NFS(alice.Write(f, ro->file.get(), 0, Bytes("x"), Stability::kUnstable).status(),
             NFS4ERR_OPENMODE);
  EXPECT_TRUE(alice.Write(f, rw->file.get(), 0, Bytes("x"), Stability::kUnstable).ok());
}

TEST_F(FakeClientTest, StickyDirectory) {
  FileHandle tmp = fake_.AddDir("tmp", 01777);
  fake_.AddFile("tmp/bobs", "", 0666, kBob.uid, kBob.gid);
  fake_.AddFile("tmp/alices", "", 0666, kAlice.uid, kAlice.gid);
  SyncClient alice = As(kAlice);
  EXPECT_NFS(alice.Remove(tmp, "bobs"), NFS4ERR_PERM);
  EXPECT_NFS(alice.Rename(tmp, "bobs", tmp, "mine"), NFS4ERR_PERM);
  EXPECT_NFS(alice.Rename(tmp, "alices", tmp, "bobs"), NFS4ERR_PERM);  // replaces bob's
  EXPECT_TRUE(alice.Remove(tmp, "alices").ok());
}

TEST_F(FakeClientTest, SetGidDirectoryGivesItsGroup) {
  FileHandle shared = fake_.AddDir("shared", 02777, 0, 500);
  auto sub = As(kAlice).Create(shared, "sub", Mkdir(0755));
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->attr.gid, 500u);
  EXPECT_EQ(sub->attr.mode, 02755u);
  EXPECT_EQ(sub->attr.uid, kAlice.uid);
}

TEST_F(FakeClientTest, OpenCreateModes) {
  FileHandle root = fake_.root();
  fake_.AddFile("f", "content");
  fake_.AddDir("d");
  using nfs::CreateMode;
  EXPECT_NFS(root_.Open(root, "f", OpenReq(true, true, CreateMode::kGuarded)).status(),
             NFS4ERR_EXIST);
  EXPECT_NFS(root_.Open(root, "f", OpenReq(true, true, CreateMode::kExclusive)).status(),
             NFS4ERR_EXIST);
  EXPECT_NFS(root_.Open(root, "g", OpenReq(true, false)).status(), NFS4ERR_NOENT);
  EXPECT_NFS(root_.Open(root, "d", OpenReq(true, false)).status(), NFS4ERR_ISDIR);
  auto unchecked = root_.Open(root, "f", OpenReq(true, true, CreateMode::kUnchecked));
  ASSERT_TRUE(unchecked.ok());
  EXPECT_FALSE(unchecked->created);
  EXPECT_EQ(unchecked->attr.size, 7u);
  auto trunc = OpenReq(false, true);
  trunc.truncate = true;
  EXPECT_EQ(root_.Open(root, "f", trunc)->attr.size, 0u);
  EXPECT_TRUE(root_.Open(root, "g", OpenReq(true, true, CreateMode::kExclusive))->created);
  EXPECT_EQ(fake_.open_count(*fake_.Find("f")), 2u);
  EXPECT_EQ(fake_.calls("OPEN"), 7u);
}

TEST_F(FakeClientTest, RemovedOpenFileLivesUntilClose) {
  FileHandle f = fake_.AddFile("f", "data");
  auto open = root_.OpenHandle(f, true, true);
  ASSERT_TRUE(root_.Remove(fake_.root(), "f").ok());
  EXPECT_EQ(fake_.AttrOf(f)->nlink, 0u);
  EXPECT_EQ(Read(f), "data");
  ASSERT_TRUE(root_.Close(open->file).ok());
  EXPECT_NFS(root_.GetAttr(f).status(), NFS4ERR_STALE);
}

TEST_F(FakeClientTest, RemoveDirectories) {
  fake_.AddFile("d/f");
  EXPECT_EQ(fake_.AttrOf(fake_.root())->nlink, 3u);
  EXPECT_NFS(root_.Remove(fake_.root(), "d"), NFS4ERR_NOTEMPTY);
  ASSERT_TRUE(root_.Remove(*fake_.Find("d"), "f").ok());
  ASSERT_TRUE(root_.Remove(fake_.root(), "d").ok());
  EXPECT_EQ(fake_.AttrOf(fake_.root())->nlink, 2u);
  EXPECT_NFS(root_.Remove(fake_.root(), "d"), NFS4ERR_NOENT);
}

TEST_F(FakeClientTest, RenameEdgeCases) {
  FileHandle root = fake_.root();
  FileHandle a = fake_.AddFile("a", "A");
  FileHandle b = fake_.AddFile("b", "B");
  fake_.AddFile("full/x");
  fake_.AddDir("empty");
  FileHandle moving = fake_.AddDir("moving");
  fake_.AddDir("moving/inner");
  // Over an existing file: the old target is gone.
  ASSERT_TRUE(root_.Rename(root, "a", root, "b").ok());
  EXPECT_EQ(*fake_.Find("b"), a);
  EXPECT_FALSE(fake_.Find("a"));
  EXPECT_NFS(root_.GetAttr(b).status(), NFS4ERR_STALE);
  // Onto itself, and onto another link to the same file: nothing happens.
  ASSERT_TRUE(root_.Rename(root, "b", root, "b").ok());
  ASSERT_TRUE(root_.Link(a, root, "b2").ok());
  ASSERT_TRUE(root_.Rename(root, "b", root, "b2").ok());
  EXPECT_TRUE(fake_.Find("b") && fake_.Find("b2"));
  // Type mismatches and non-empty directories.
  EXPECT_NFS(root_.Rename(root, "b", root, "empty"), NFS4ERR_EXIST);
  EXPECT_NFS(root_.Rename(root, "empty", root, "b"), NFS4ERR_EXIST);
  EXPECT_NFS(root_.Rename(root, "empty", root, "full"), NFS4ERR_NOTEMPTY);
  EXPECT_NFS(root_.Rename(root, "moving", moving, "x"), NFS4ERR_INVAL);
  EXPECT_NFS(root_.Rename(root, "moving", *fake_.Find("moving/inner"), "x"), NFS4ERR_INVAL);
  EXPECT_NFS(root_.Rename(root, "nope", root, "x"), NFS4ERR_NOENT);
  // A directory over an empty one, into another parent: link counts follow.
  ASSERT_TRUE(root_.Rename(root, "moving", *fake_.Find("full"), "x2").ok());
  ASSERT_TRUE(root_.Rename(*fake_.Find("full"), "x2", root, "empty").ok());
  EXPECT_EQ(*fake_.Find("empty"), moving);
  EXPECT_EQ(fake_.AttrOf(root)->nlink, 4u);  // full, empty (was moving), and ".."
  EXPECT_EQ(fake_.AttrOf("full")->nlink, 2u);
  EXPECT_EQ(root_.LookupPath(root, "empty/inner")->attr.type, FileType::kDirectory);
}

TEST_F(FakeClientTest, LinkCountsAndDirectories) {
  FileHandle f = fake_.AddFile("f", "x");
  FileHandle d = fake_.AddDir("d");
  auto attr = root_.Link(f, d, "g");
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->nlink, 2u);
  EXPECT_NFS(root_.Link(f, d, "g").status(), NFS4ERR_EXIST);
  EXPECT_NFS(root_.Link(d, fake_.root(), "d2").status(), NFS4ERR_ISDIR);
  ASSERT_TRUE(root_.Remove(fake_.root(), "f").ok());
  EXPECT_EQ(fake_.AttrOf(f)->nlink, 1u);
  EXPECT_EQ(fake_.ContentOf("d/g"), "x");
}

TEST_F(FakeClientTest, CreateSpecialFiles) {
  FileHandle root = fake_.root();
  nfs::CreateRequest req;
  req.type = FileType::kSymlink;
  req.symlink_target = "../target";
  auto link = root_.Create(root, "l", req);
  ASSERT_TRUE(link.ok());
  EXPECT_EQ(*root_.ReadLink(link->fh), "../target");
  EXPECT_EQ(link->attr.size, 9u);
  req = {};
  req.type = FileType::kCharDevice;
  req.rdev_major = 1;
  req.rdev_minor = 3;
  auto dev = root_.Create(root, "null", req);
  EXPECT_EQ(dev->attr.rdev_major, 1u);
  EXPECT_EQ(dev->attr.rdev_minor, 3u);
  EXPECT_NFS(root_.ReadLink(dev->fh).status(), NFS4ERR_INVAL);
  EXPECT_NFS(root_.OpenHandle(dev->fh, true, false).status(), NFS4ERR_WRONG_TYPE);
  for (FileType t : {FileType::kFifo, FileType::kSocket}) {
    req = {};
    req.type = t;
    EXPECT_EQ(root_.Create(root, "s" + std::to_string(int(t)), req)->attr.type, t);
  }
  EXPECT_NFS(root_.Create(root, "l", req).status(), NFS4ERR_EXIST);
  req.type = FileType::kRegular;
  EXPECT_EQ(root_.Create(root, "r", req).status().kind(), Status::Kind::kInvalidArgument);
}

TEST_F(FakeClientTest, ReadDirPagesWithStableCookies) {
  FileHandle dir = fake_.AddDir("d");
  for (int i = 0; i < 30; ++i) fake_.AddFile("d/f" + std::to_string(i));
  // ~110 bytes per entry: 5 per 600-byte page.
  auto page = Call<nfs::DirPage>([&](auto cb) { fake_.ReadDir(kRoot, dir, 0, {}, 600, cb); });
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries.size(), 5u);
  EXPECT_FALSE(page->eof);
  EXPECT_EQ(page->entries[0].name, "f0");
  EXPECT_EQ(page->entries[0].attr.type, FileType::kRegular);
  std::set<std::string> seen;
  for (const auto& e : page->entries) seen.insert(e.name);
  // Another client adds and removes entries in the middle of the listing.
  fake_.AddFile("d/late");
  fake_.ExternalRemove("d/f2");   // already listed
  fake_.ExternalRemove("d/f20");  // not yet listed
  fake_.ExternalRename("d/f25", "d/renamed");
  uint64_t cookie = page->entries.back().cookie;
  auto verifier = page->cookie_verifier;
  while (!page->eof) {
    page =
        Call<nfs::DirPage>([&](auto cb) { fake_.ReadDir(kRoot, dir, cookie, verifier, 600, cb); });
    ASSERT_TRUE(page.ok());
    for (const auto& e : page->entries) {
      EXPECT_TRUE(seen.insert(e.name).second) << "twice: " << e.name;
      cookie = e.cookie;
    }
  }
  EXPECT_EQ(seen.size(), 30u);  // 30 - f20 - f25 + late + renamed
  EXPECT_TRUE(seen.count("late") && seen.count("renamed") && !seen.count("f20"));
  EXPECT_FALSE(seen.count(".") || seen.count(".."));
  EXPECT_EQ(fake_.calls("READDIR"), 6u);
  // Bad cookies and verifiers, and a page too small for one entry.
  auto bad = [&](uint64_t c, std::array<uint8_t, 8> v, uint32_t max) {
    return Call<nfs::DirPage>([&](auto cb) { fake_.ReadDir(kRoot, dir, c, v, max, cb); }).status();
  };
  EXPECT_NFS(bad(cookie + 1000, verifier, 600), NFS4ERR_BAD_COOKIE);
  EXPECT_NFS(bad(cookie, {1, 2, 3}, 600), NFS4ERR_NOT_SAME);
  EXPECT_NFS(bad(0, {}, 50), NFS4ERR_TOOSMALL);
  FileHandle closed = fake_.AddDir("closed", 0711);
  EXPECT_NFS(As(kAlice).ReadDirAll(closed).status(), NFS4ERR_ACCESS);
}

class LockTest : public FakeClientTest {
 protected:
  void SetUp() override {
    fh_ = fake_.AddFile("f", "0123456789");
    rw_ = root_.OpenHandle(fh_, true, true)->file;
    rw2_ = root_.OpenHandle(fh_, true, true)->file;
  }
  Status Lock(const nfs::OpenFile* f, uint64_t owner, LockType t, uint64_t off, uint64_t len) {
    return Call<nfs::Attributes>([&](auto cb) { fake_.Lock(kRoot, f, owner, t, off, len, cb); }).status();
  }
  Status Unlock(uint64_t owner, uint64_t off, uint64_t len) {
    return Call<nfs::Unit>([&](auto cb) { fake_.Unlock(kRoot, rw_.get(), owner, off, len, cb); })
        .status();
  }
  std::optional<nfs::LockConflict> Test(uint64_t owner, LockType t, uint64_t off, uint64_t len) {
    auto r = Call<std::optional<nfs::LockConflict>>(
        [&](auto cb) { fake_.TestLock(kRoot, rw_.get(), owner, t, off, len, cb); });
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::nullopt;
  }

  FileHandle fh_;
  std::shared_ptr<nfs::OpenFile> rw_, rw2_;
};

TEST_F(LockTest, ConflictsBetweenOwners) {
  ASSERT_TRUE(Lock(rw_.get(), 1, LockType::kRead, 0, 100).ok());
  EXPECT_TRUE(Lock(rw2_.get(), 2, LockType::kRead, 50, 100).ok());  // readers share
  EXPECT_NFS(Lock(rw2_.get(), 2, LockType::kWrite, 0, 10), NFS4ERR_DENIED);
  EXPECT_NFS(Lock(rw_.get(), 1, LockType::kWrite, 60, 10), NFS4ERR_DENIED);  // upgrade blocked
  EXPECT_TRUE(Lock(rw_.get(), 1, LockType::kWrite, 0, 10).ok());             // own range: upgrade
  auto c = Test(3, LockType::kRead, 5, 1);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->type, LockType::kWrite);
  EXPECT_EQ(c->offset, 0u);
  EXPECT_EQ(c->length, 10u);
  EXPECT_TRUE(c->same_client);
  EXPECT_FALSE(Test(3, LockType::kRead, 10, 5));
  EXPECT_NFS(Lock(rw_.get(), 1, LockType::kRead, 0, 0), NFS4ERR_INVAL);
  auto ro = root_.OpenHandle(fh_, true, false);
  EXPECT_NFS(Lock(ro->file.get(), 4, LockType::kWrite, 0, 1), NFS4ERR_OPENMODE);
}

TEST_F(LockTest, UnlockSplitsAndLocksMerge) {
  ASSERT_TRUE(Lock(rw_.get(), 1, LockType::kWrite, 0, 100).ok());
  ASSERT_TRUE(Unlock(1, 40, 20).ok());
  EXPECT_EQ(fake_.lock_count(fh_), 2u);
  EXPECT_TRUE(Lock(rw2_.get(), 2, LockType::kWrite, 45, 10).ok());
  EXPECT_NFS(Lock(rw2_.get(), 2, LockType::kWrite, 35, 10), NFS4ERR_DENIED);
  auto c = Test(2, LockType::kRead, 60, nfs::kLockToEnd);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 60u);
  EXPECT_EQ(c->length, 40u);
  ASSERT_TRUE(Call<nfs::Unit>([&](auto cb) {
                fake_.Unlock(kRoot, rw2_.get(), 2, 0, nfs::kLockToEnd, cb);
              }).ok());
  ASSERT_TRUE(Lock(rw_.get(), 1, LockType::kWrite, 40, 20).ok());  // fills the hole
  EXPECT_EQ(fake_.lock_count(fh_), 1u);
  ASSERT_TRUE(Lock(rw_.get(), 1, LockType::kRead, 50, nfs::kLockToEnd).ok());  // downgrade tail
  EXPECT_EQ(fake_.lock_count(fh_), 2u);
  EXPECT_TRUE(root_.Close(rw_).ok());  // releases them
  EXPECT_EQ(fake_.lock_count(fh_), 0u);
}

TEST_F(LockTest, OtherClientsLocks) {
  ASSERT_TRUE(fake_.ExternalLock(fh_, LockType::kWrite, 0, nfs::kLockToEnd));
  EXPECT_NFS(Lock(rw_.get(), 1, LockType::kRead, 1000, 1), NFS4ERR_DENIED);
  auto c = Test(1, LockType::kRead, 0, 1);
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->same_client);
  EXPECT_EQ(c->length, nfs::kLockToEnd);
  fake_.ExternalUnlock(fh_, 0, nfs::kLockToEnd);
  EXPECT_TRUE(Lock(rw_.get(), 1, LockType::kRead, 1000, 1).ok());
  EXPECT_FALSE(fake_.ExternalLock(fh_, LockType::kWrite, 0, nfs::kLockToEnd));
}

TEST_F(FakeClientTest, RestartLosesUncommittedWrites) {
  FileHandle f = fake_.AddFile("f", "committed!");
  auto open = root_.OpenHandle(f, true, true);
  const nfs::WriteVerifier boot1 = fake_.write_verifier();
  ASSERT_TRUE(root_.Write(f, open->file.get(), 0, Bytes("UNSTABLE"), Stability::kUnstable).ok());
  ASSERT_TRUE(root_.Write(f, open->file.get(), 8192, Bytes("tail"), Stability::kUnstable).ok());
  EXPECT_TRUE(fake_.HasUncommittedData(f));
  EXPECT_EQ(Read(f, 0, 10), "UNSTABLEd!");
  EXPECT_EQ(fake_.CommittedContentOf(f), "committed!");
  const uint64_t change = fake_.AttrOf(f)->change;
  fake_.SimulateRestart();
  EXPECT_NE(fake_.write_verifier(), boot1);
  EXPECT_EQ(fake_.ContentOf(f), "committed!");
  EXPECT_GT(fake_.AttrOf(f)->change, change);
  // Committed and FILE_SYNC data survive.
  ASSERT_TRUE(root_.Write(f, open->file.get(), 0, Bytes("C"), Stability::kUnstable).ok());
  auto verf = root_.Commit(f);
  ASSERT_TRUE(verf.ok());
  EXPECT_EQ(*verf, fake_.write_verifier());
  auto w = root_.Write(f, open->file.get(), 1, Bytes("S"), Stability::kFileSync);
  EXPECT_EQ(w->committed, Stability::kFileSync);
  ASSERT_TRUE(root_.Write(f, open->file.get(), 2, Bytes("u"), Stability::kUnstable).ok());
  fake_.SimulateRestart();
  EXPECT_EQ(fake_.ContentOf(f), "CSmmitted!");
  EXPECT_FALSE(fake_.HasUncommittedData(f));
  EXPECT_TRUE(root_.Write(f, open->file.get(), 0, Bytes("x"), Stability::kUnstable).ok());
}

TEST_F(FakeClientTest, OtherClientWriteBumpsChange) {
  FileHandle f = fake_.AddFile("f", "old");
  const auto before = *fake_.AttrOf(f);
  fake_.ExternalWrite("f", 0, "new!");
  const auto after = *root_.GetAttr(f);
  EXPECT_GT(after.change, before.change);
  EXPECT_EQ(after.size, 4u);
  EXPECT_EQ(Read(f), "new!");
  SetAttributes chmod;
  chmod.mode = 0600;
  fake_.ExternalSetAttr(f, chmod);
  EXPECT_GT(fake_.AttrOf(f)->change, after.change);
  EXPECT_EQ(fake_.calls("GETATTR"), 1u);  // hooks are not calls
}

TEST_F(FakeClientTest, ShortReadsAndWritesAndCounters) {
  FakeClient::Options options;
  options.max_read = 4;
  options.max_write = 3;
  options.space_total = 1 << 20;
  FakeClient fake(options);
  SyncClient sync(&fake, kAlice);
  FileHandle f = fake.AddFile("f", "0123456789", 0666);
  auto w = sync.Write(f, nullptr, 0, Bytes("abcdef"), Stability::kUnstable);
  EXPECT_EQ(w->count, 3u);
  uint8_t buf[10];
  auto r = sync.Read(f, nullptr, 0, buf);
  EXPECT_EQ(r->count, 4u);
  EXPECT_FALSE(r->eof);
  EXPECT_EQ(fake.calls("READ"), 1u);
  EXPECT_EQ(fake.calls("WRITE"), 1u);
  EXPECT_EQ(fake.bytes_read(), 4u);
  EXPECT_EQ(fake.bytes_written(), 3u);
  EXPECT_EQ(fake.last_credentials(), kAlice);
  auto st = sync.StatFs(fake.root());
  EXPECT_EQ(st->space_total, 1u << 20);
  EXPECT_EQ(st->space_free, (1u << 20) - 2 * 4096);  // root directory + one page
  EXPECT_EQ(st->files_total - st->files_free, 2u);
  fake.ResetCounters();
  EXPECT_EQ(fake.total_calls(), 0u);
}

TEST(FakeClientAsyncTest, CallbacksRunInOrderOnAnotherThread) {
  FakeClient::Options options;
  options.async = true;
  FakeClient fake(options);
  FileHandle f = fake.AddFile("f", "x");
  std::mutex mu;
  std::vector<int> order;
  std::set<std::thread::id> threads;
  for (int i = 0; i < 20; ++i) {
    fake.GetAttr(kRoot, f, [&, i](Result<nfs::Attributes> r) {
      std::lock_guard lock(mu);
      order.push_back(i);
      threads.insert(std::this_thread::get_id());
    });
  }
  fake.WaitIdle();
  std::lock_guard lock(mu);
  ASSERT_EQ(order.size(), 20u);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
  EXPECT_EQ(threads.size(), 1u);
  EXPECT_FALSE(threads.count(std::this_thread::get_id()));
}

TEST(FakeClientAsyncTest, HeldCompletionsRunInAnyOrder) {
  FakeClient fake;
  FileHandle f = fake.AddFile("f", "x");
  std::vector<int> order;
  fake.HoldCompletions();
  for (int i = 0; i < 3; ++i) {
    fake.GetAttr(kRoot, f, [&, i](Result<nfs::Attributes>) { order.push_back(i); });
  }
  EXPECT_TRUE(order.empty());
  EXPECT_EQ(fake.held_completions(), 3u);
  fake.RunHeldCompletion(2);
  fake.ReleaseCompletions();
  EXPECT_EQ(order, (std::vector<int>{2, 0, 1}));
  // A callback may call back into the fake (no lock is held).
  fake.GetAttr(kRoot, f, [&](Result<nfs::Attributes>) {
    fake.GetAttr(kRoot, f, [&](Result<nfs::Attributes>) { order.push_back(9); });
  });
  EXPECT_EQ(order.back(), 9);
}

TEST(FaultyClientTest, FailsTheNthWriteOnly) {
  FakeClient fake;
  FaultyClient faulty(&fake);
  SyncClient sync(&faulty);
  FileHandle f = fake.AddFile("f", "");
  auto open = sync.OpenHandle(f, true, true);
  faulty.FailNth("WRITE", 2, Status::Nfs(NFS4ERR_NOSPC, "WRITE"));
  std::vector<Status> results;
  for (int i = 0; i < 3; ++i) {
    results.push_back(
        sync.Write(f, open->file.get(), i, Bytes("x"), Stability::kUnstable).status());
  }
  EXPECT_TRUE(results[0].ok());
  EXPECT_NFS(results[1], NFS4ERR_NOSPC);
  EXPECT_TRUE(results[2].ok());
  EXPECT_EQ(faulty.calls("WRITE"), 3u);
  EXPECT_EQ(faulty.injected("WRITE"), 1u);
  EXPECT_EQ(fake.calls("WRITE"), 2u);  // the failed one never reached the server
  EXPECT_EQ(fake.ContentOf(f), std::string("x\0x", 3));
  // Forwarded: the server did it, the reply says otherwise.
  faulty.FailNth("WRITE", 1, Status::Transport("reset"), /*forward=*/true);
  EXPECT_FALSE(sync.Write(f, open->file.get(), 1, Bytes("y"), Stability::kUnstable).ok());
  EXPECT_EQ(fake.ContentOf(f), "xyx");
  EXPECT_TRUE(sync.Commit(f).ok());
}

TEST(FaultyClientTest, EveryAndProbability) {
  FakeClient fake;
  FileHandle f = fake.AddFile("f", "x");
  auto count_failures = [&](FaultyClient& faulty) {
    SyncClient sync(&faulty);
    int failed = 0;
    for (int i = 0; i < 200; ++i) failed += sync.GetAttr(f).ok() ? 0 : 1;
    return failed;
  };
  FaultyClient a(&fake, 7), b(&fake, 7);
  a.FailWithProbability("GETATTR", 0.25, Status::Nfs(NFS4ERR_IO, "GETATTR"));
  b.FailWithProbability("*", 0.25, Status::Nfs(NFS4ERR_IO, "GETATTR"));
  const int failed = count_failures(a);
  EXPECT_GT(failed, 20);
  EXPECT_LT(failed, 80);
  EXPECT_EQ(count_failures(b), failed);  // same seed, same calls
  a.ClearFaults();
  a.FailEvery("*", Status::TimedOut("soft"));
  EXPECT_EQ(count_failures(a), 200);
  a.ClearFaults();
  EXPECT_EQ(count_failures(a), 0);
}

TEST(FaultyClientTest, DelaysCompletionsOnTheTimerThread) {
  FakeClient fake;
  FileHandle f = fake.AddFile("f", "x");
  std::atomic<int> done{0};
  std::thread::id callback_thread;
  {
    FaultyClient faulty(&fake);
    faulty.SetDelay("GETATTR", std::chrono::milliseconds(50));
    const auto start = std::chrono::steady_clock::now();
    auto r = SyncClient(&faulty).GetAttr(f);
    EXPECT_TRUE(r.ok());
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
    faulty.SetDelay("*", std::chrono::seconds(30));
    faulty.FailNth("GETATTR", 1, Status::Nfs(NFS4ERR_DELAY, "GETATTR"));
    faulty.GetAttr(kRoot, f, [&](Result<nfs::Attributes> r) {
      callback_thread = std::this_thread::get_id();
      EXPECT_NFS(r.status(), NFS4ERR_DELAY);
      ++done;
    });
    EXPECT_EQ(done, 0);
  }  // the destructor runs pending completions at once
  EXPECT_EQ(done, 1);
  EXPECT_NE(callback_thread, std::this_thread::get_id());
}

}  // namespace
}  // namespace floatmount::fakes
