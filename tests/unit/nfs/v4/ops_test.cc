// NFSv4.1 operation codecs (RFC 8881 section 18, XDR of RFC 5662).
//
// Encodings are compared byte for byte with arrays derived by hand from the
// RFC's XDR; replies are built by hand (the Wire helper, independent of
// XdrEncoder) and decoded, including error arms and every truncation.
#include "nfs/v4/ops.h"
#include "tests/unit/wire.h"

#include <gtest/gtest.h>

#include <functional>
#include <string_view>
#include <vector>

namespace floatmount::nfs::v4 {
namespace {

using testing::Bytes;
using testing::Concat;
using testing::Wire;

IdMapper Ids() {
  IdMapperOptions o;
  o.domain = "example.com";
  return IdMapper(o);
}

SequenceArgs Seq() {
  SequenceArgs s;
  for (uint8_t i = 0; i < 16; ++i) s.sessionid[i] = i;
  s.sequenceid = 7;
  s.slotid = 2;
  s.highest_slotid = 3;
  return s;
}

FileHandle Fh() {
  const uint8_t b[] = {0xaa, 0xbb, 0xcc, 0xdd, 0xee};
  return FileHandle(b, sizeof(b));
}

Stateid Sid(uint32_t seqid, uint8_t fill) {
  Stateid s;
  s.seqid = seqid;
  for (uint8_t i = 0; i < 12; ++i) s.other[i] = static_cast<uint8_t>(fill + i);
  return s;
}

Bytes Header(uint8_t numops) {
  return {
      0x00, 0x00, 0x00, 0x00,    // tag: ""
      0x00, 0x00, 0x00, 0x01,    // minorversion 1
      0x00, 0x00, 0x00, numops,  // numops
  };
}

const Bytes kSequenceAndPutFh = {
    0x00, 0x00, 0x00, 0x35,  // OP_SEQUENCE
    0x00, 0x01, 0x02, 0x03,  // sa_sessionid
    0x04, 0x05, 0x06, 0x07,  //
    0x08, 0x09, 0x0a, 0x0b,  //
    0x0c, 0x0d, 0x0e, 0x0f,  //
    0x00, 0x00, 0x00, 0x07,  // sa_sequenceid
    0x00, 0x00, 0x00, 0x02,  // sa_slotid
    0x00, 0x00, 0x00, 0x03,  // sa_highest_slotid
    0x00, 0x00, 0x00, 0x00,  // sa_cachethis FALSE
    0x00, 0x00, 0x00, 0x16,  // OP_PUTFH
    0x00, 0x00, 0x00, 0x05,  // nfs_fh4 length 5
    0xaa, 0xbb, 0xcc, 0xdd,  //
    0xee, 0x00, 0x00, 0x00,  // + padding
};

// SEQUENCE, PUTFH, READ
TEST(Nfs4OpsTest, EncodeSequencePutFhRead) {
  XdrEncoder e;
  const size_t numops_at = EncodeCompoundHeader(e, "", 1);
  EncodeSequence(e, Seq());
  EncodePutFh(e, Fh());
  EncodeRead(e, Sid(1, 1), 0x100000000ULL, 1 << 20);
  e.PatchUint32(numops_at, 3);
  const Bytes read = {
      0x00, 0x00, 0x00, 0x19,  // OP_READ
      0x00, 0x00, 0x00, 0x01,  // stateid.seqid
      0x01, 0x02, 0x03, 0x04,  // stateid.other
      0x05, 0x06, 0x07, 0x08,  //
      0x09, 0x0a, 0x0b, 0x0c,  //
      0x00, 0x00, 0x00, 0x01,  // offset 4 GiB
      0x00, 0x00, 0x00, 0x00,  //
      0x00, 0x10, 0x00, 0x00,  // count 1 MiB
  };
  EXPECT_EQ(e.Flatten(), Concat({Header(3), kSequenceAndPutFh, read}));
}

// SEQUENCE, PUTFH, WRITE: the payload is its own iovec, not copied.
TEST(Nfs4OpsTest, EncodeSequencePutFhWriteGathersPayload) {
  const std::string payload = "hello";
  XdrEncoder e;
  const size_t numops_at = EncodeCompoundHeader(e, "", 1);
  EncodeSequence(e, Seq());
  EncodePutFh(e, Fh());
  EncodeWrite(e, kAnonymousStateid, 8192, FILE_SYNC4,
              std::span(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
  e.PatchUint32(numops_at, 3);
  const Bytes write = {
      0x00, 0x00, 0x00, 0x26,  // OP_WRITE
      0x00, 0x00, 0x00, 0x00,  // anonymous stateid
      0x00, 0x00, 0x00, 0x00,  //
      0x00, 0x00, 0x00, 0x00,  //
      0x00, 0x00, 0x00, 0x00,  //
      0x00, 0x00, 0x00, 0x00,  // offset 8192
      0x00, 0x00, 0x20, 0x00,  //
      0x00, 0x00, 0x00, 0x02,  // FILE_SYNC4
      0x00, 0x00, 0x00, 0x05,  // data length 5
  };
  const Bytes head = Concat({Header(3), kSequenceAndPutFh, write});
  std::vector<iovec> iov;
  e.Gather(&iov);
  ASSERT_EQ(iov.size(), 3u);
  EXPECT_EQ(Bytes(static_cast<uint8_t*>(iov[0].iov_base),
                  static_cast<uint8_t*>(iov[0].iov_base) + iov[0].iov_len),
            head);
  EXPECT_EQ(iov[1].iov_base, payload.data());
  EXPECT_EQ(iov[1].iov_len, 5u);
  EXPECT_EQ(iov[2].iov_len, 3u);  // padding
  EXPECT_EQ(e.Flatten(), Concat({head, {'h', 'e', 'l', 'l', 'o', 0, 0, 0}}));
}

// SEQUENCE, PUTFH, OPEN(create GUARDED mode 0644), GETFH, GETATTR
TEST(Nfs4OpsTest, EncodeOpenCreateGuarded) {
  OpenArgs open;
  open.share_access = OPEN4_SHARE_ACCESS_BOTH | OPEN4_SHARE_ACCESS_WANT_NO_DELEG;
  open.owner = StateOwner{0x0102030405060708ULL, "own1"};
  open.opentype = OPEN4_CREATE;
  open.createmode = GUARDED4;
  open.createattrs.mode = 0644;
  open.claim = CLAIM_NULL;
  open.name = "file.txt";
  XdrEncoder e;
  const size_t numops_at = EncodeCompoundHeader(e, "", 1);
  EncodeSequence(e, Seq());
  EncodePutFh(e, Fh());
  EncodeOpen(e, open, Ids());
  EncodeGetFh(e);
  EncodeGetAttr(e, StandardAttrs());
  e.PatchUint32(numops_at, 5);
  const Bytes rest = {
      0x00, 0x00, 0x00, 0x12,  // OP_OPEN
      0x00, 0x00, 0x00, 0x00,  // seqid 0
      0x00, 0x00, 0x04, 0x03,  // share_access BOTH | WANT_NO_DELEG
      0x00, 0x00, 0x00, 0x00,  // share_deny NONE
      0x01, 0x02, 0x03, 0x04,  // owner.clientid
      0x05, 0x06, 0x07, 0x08,  //
      0x00, 0x00, 0x00, 0x04,  // owner.owner length 4
      'o',  'w',  'n',  '1',   //
      0x00, 0x00, 0x00, 0x01,  // OPEN4_CREATE
      0x00, 0x00, 0x00, 0x01,  // GUARDED4
      0x00, 0x00, 0x00, 0x02,  // createattrs.attrmask: 2 words
      0x00, 0x00, 0x00, 0x00,  //
      0x00, 0x00, 0x00, 0x02,  // bit 33: mode
      0x00, 0x00, 0x00, 0x04,  // attr_vals: 4 bytes
      0x00, 0x00, 0x01, 0xa4,  // mode 0644
      0x00, 0x00, 0x00, 0x00,  // CLAIM_NULL
      0x00, 0x00, 0x00, 0x08,  // file: 8 bytes
      'f',  'i',  'l',  'e',   //
      '.',  't',  'x',  't',   //
      0x00, 0x00, 0x00, 0x0a,  // OP_GETFH
      0x00, 0x00, 0x00, 0x09,  // OP_GETATTR
      0x00, 0x00, 0x00, 0x02,  // attr_request: 2 words
      0x00, 0x10, 0x01, 0x1a,  // type change size fsid fileid
      0x00, 0x30, 0xa2, 0x3a,  // mode numlinks owner group rawdev space_used times
  };
  EXPECT_EQ(e.Flatten(), Concat({Header(5), kSequenceAndPutFh, rest}));
}

// The other encoders, checked word by word against the RFC 5662 XDR.
void Check(const std::function<void(XdrEncoder&)>& encode, const Wire& want) {
  XdrEncoder e;
  encode(e);
  EXPECT_EQ(e.Flatten(), want.bytes());
}

// clang-format off
TEST(Nfs4OpsTest, EncodeFileOps) {
  Check([](XdrEncoder& e) { EncodePutRootFh(e); }, Wire().U32(24));
  Check([](XdrEncoder& e) { EncodeLookup(e, "abc"); }, Wire().U32(15).Str("abc"));
  Check([](XdrEncoder& e) { EncodeLookupp(e); }, Wire().U32(16));
  Check([](XdrEncoder& e) { EncodeSaveFh(e); }, Wire().U32(32));
  Check([](XdrEncoder& e) { EncodeRestoreFh(e); }, Wire().U32(31));
  Check([](XdrEncoder& e) { EncodeAccess(e, ACCESS4_READ | ACCESS4_LOOKUP); }, Wire().U32(3).U32(3));
  Check([](XdrEncoder& e) { EncodeClose(e, 0, Sid(2, 0x10)); }, Wire().U32(4).U32(0).Sid(2, 0x10));
  Check([](XdrEncoder& e) { EncodeOpenDowngrade(e, Sid(3, 0), 0, 1, 0); },
        Wire().U32(21).Sid(3, 0).U32(0).U32(1).U32(0));
  Check([](XdrEncoder& e) { EncodeDelegReturn(e, Sid(1, 9)); }, Wire().U32(8).Sid(1, 9));
  Check([](XdrEncoder& e) { EncodeCommit(e, 4096, 0); }, Wire().U32(5).U64(4096).U32(0));
  Check([](XdrEncoder& e) { EncodeRemove(e, "x"); }, Wire().U32(28).Str("x"));
  Check([](XdrEncoder& e) { EncodeRename(e, "old", "newer"); }, Wire().U32(29).Str("old").Str("newer"));
  Check([](XdrEncoder& e) { EncodeLink(e, "ln"); }, Wire().U32(11).Str("ln"));
  Check([](XdrEncoder& e) { EncodeReadLink(e); }, Wire().U32(27));
  // cookie, cookieverf, dircount, maxcount, attr_request {type, filehandle}
  Check([](XdrEncoder& e) {
          EncodeReadDir(e, 5, {1, 2, 3, 4, 5, 6, 7, 8}, 8192, 32768, Bitmap{FATTR4_TYPE, FATTR4_FILEHANDLE});
        },
        Wire().U32(26).U64(5).Raw({1, 2, 3, 4, 5, 6, 7, 8}).U32(8192).U32(32768).U32(1).U32(0x00080002));
  CreateRequest link;
  link.type = FileType::kSymlink;
  link.symlink_target = "../t";
  // createtype4 NF4LNK + linkdata, objname, empty createattrs
  Check([&](XdrEncoder& e) { EncodeCreate(e, "l", link, Ids()); },
        Wire().U32(6).U32(NF4LNK).Str("../t").Str("l").U32(0).U32(0));
  CreateRequest dev;
  dev.type = FileType::kCharDevice;
  dev.rdev_major = 1;
  dev.rdev_minor = 3;
  dev.attrs.mode = 0600;
  // createtype4 NF4CHR + specdata4, objname, createattrs {mode}
  Check([&](XdrEncoder& e) { EncodeCreate(e, "null", dev, Ids()); },
        Wire().U32(6).U32(NF4CHR).U32(1).U32(3).Str("null").U32(2).U32(0).U32(2).U32(4).U32(0600));
  Check([&](XdrEncoder& e) { EncodeCreate(e, "d", CreateRequest(), Ids()); },
        Wire().U32(6).U32(NF4DIR).Str("d").U32(0).U32(0));
  SetAttributes truncate;
  truncate.size = 0;
  Check([&](XdrEncoder& e) { EncodeSetAttr(e, Sid(1, 1), truncate, Ids()); },
        Wire().U32(34).Sid(1, 1).U32(1).U32(0x10).U32(8).U64(0));
  LockArgs lock;  // new lock owner: open_to_lock_owner4
  lock.locktype = WRITE_LT;
  lock.offset = 10;
  lock.length = NFS4_UINT64_MAX;
  lock.open_stateid = Sid(1, 0x20);
  lock.lock_owner = StateOwner{7, "lk"};
  Check([&](XdrEncoder& e) { EncodeLock(e, lock); },
        Wire().U32(12).U32(2).U32(0).U64(10).U64(~uint64_t{0}).U32(1).U32(0).Sid(1, 0x20).U32(0).U64(7).Str("lk"));
  lock.new_lock_owner = false;  // exist_lock_owner4
  lock.lock_stateid = Sid(4, 0x30);
  Check([&](XdrEncoder& e) { EncodeLock(e, lock); },
        Wire().U32(12).U32(2).U32(0).U64(10).U64(~uint64_t{0}).U32(0).Sid(4, 0x30).U32(0));
  Check([](XdrEncoder& e) { EncodeLockT(e, READ_LT, 0, 1, StateOwner{7, "lk"}); },
        Wire().U32(13).U32(1).U64(0).U64(1).U64(7).Str("lk"));
  Check([](XdrEncoder& e) { EncodeLockU(e, WRITE_LT, 0, Sid(5, 0), 0, 100); },
        Wire().U32(14).U32(2).U32(0).Sid(5, 0).U64(0).U64(100));
  OpenArgs reopen;  // no create, CLAIM_FH
  reopen.owner = StateOwner{1, "o"};
  reopen.claim = CLAIM_FH;
  Check([&](XdrEncoder& e) { EncodeOpen(e, reopen, Ids()); },
        Wire().U32(18).U32(0).U32(1).U32(0).U64(1).Str("o").U32(OPEN4_NOCREATE).U32(CLAIM_FH));
  OpenArgs excl = reopen;  // EXCLUSIVE4_1 (verifier + empty fattr), CLAIM_PREVIOUS
  excl.opentype = OPEN4_CREATE;
  excl.createmode = EXCLUSIVE4_1;
  excl.createverf = {9, 9, 9, 9, 9, 9, 9, 9};
  excl.claim = CLAIM_PREVIOUS;
  excl.delegate_type = OPEN_DELEGATE_READ;
  Check([&](XdrEncoder& e) { EncodeOpen(e, excl, Ids()); },
        Wire().U32(18).U32(0).U32(1).U32(0).U64(1).Str("o").U32(1).U32(3).Raw(Bytes(8, 9)).U32(0).U32(0)
            .U32(CLAIM_PREVIOUS).U32(OPEN_DELEGATE_READ));
  OpenArgs cur = reopen;  // CLAIM_DELEGATE_CUR: stateid + name
  cur.claim = CLAIM_DELEGATE_CUR;
  cur.delegate_stateid = Sid(2, 0x11);
  cur.name = "f";
  Check([&](XdrEncoder& e) { EncodeOpen(e, cur, Ids()); },
        Wire().U32(18).U32(0).U32(1).U32(0).U64(1).Str("o").U32(0).U32(2).Sid(2, 0x11).Str("f"));
}
// clang-format on

// ---------------------------------------------------------------------------
// Replies.

TEST(Nfs4OpsTest, DecodeReadCompound) {
  Bytes sessionid;
  for (uint8_t i = 0; i < 16; ++i) sessionid.push_back(i);
  // clang-format off
  const Wire reply = Wire()
      .U32(NFS4_OK).Str("").U32(3)                                        // COMPOUND4res
      .U32(OP_SEQUENCE).U32(NFS4_OK).Raw(sessionid).U32(7).U32(2).U32(3)  // SEQUENCE4resok
      .U32(5).U32(SEQ4_STATUS_RECALLABLE_STATE_REVOKED)
      .U32(OP_PUTFH).U32(NFS4_OK)                                         // PUTFH4res
      .U32(OP_READ).U32(NFS4_OK).U32(1).Str("hello");                     // READ4resok
  // clang-format on
  XdrDecoder d(reply.bytes());
  uint32_t status = 1, n = 0;
  ASSERT_TRUE(DecodeCompoundHeader(d, &status, &n).ok());
  EXPECT_EQ(status, NFS4_OK);
  EXPECT_EQ(n, 3u);
  SequenceRes seq;
  ASSERT_TRUE(DecodeSequence(d, &seq).ok());
  EXPECT_EQ(seq.sessionid, Seq().sessionid);
  EXPECT_EQ(seq.sequenceid, 7u);
  EXPECT_EQ(seq.slotid, 2u);
  EXPECT_EQ(seq.highest_slotid, 3u);
  EXPECT_EQ(seq.target_highest_slotid, 5u);
  EXPECT_EQ(seq.status_flags, SEQ4_STATUS_RECALLABLE_STATE_REVOKED);
  ASSERT_TRUE(DecodePutFh(d).ok());
  const size_t read_at = d.position();
  bool eof = false;
  std::span<const uint8_t> data;
  ASSERT_TRUE(DecodeRead(d, &eof, &data).ok());
  EXPECT_TRUE(eof);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()), "hello");
  EXPECT_EQ(data.data(), reply.bytes().data() + read_at + 16);  // a view, not a copy
  EXPECT_EQ(d.remaining(), 0u);

  // The receive-path variant stops right after the length word.
  XdrDecoder h(std::span<const uint8_t>(reply.bytes()).subspan(read_at, 16));
  uint32_t len = 0;
  ASSERT_TRUE(DecodeReadHeader(h, &eof, &len).ok());
  EXPECT_EQ(len, 5u);
  EXPECT_EQ(h.remaining(), 0u);
}

TEST(Nfs4OpsTest, ErrorStatusesAndWrongOpcodes) {
  const Wire noent = Wire().U32(OP_LOOKUP).U32(NFS4ERR_NOENT);
  XdrDecoder d(noent.bytes());
  Status s = DecodeLookup(d);
  EXPECT_TRUE(s.IsNfs(NFS4ERR_NOENT));
  EXPECT_EQ(s.message(), "LOOKUP");

  const Wire wrong = Wire().U32(OP_GETATTR).U32(NFS4_OK);
  XdrDecoder d2(wrong.bytes());
  EXPECT_EQ(DecodePutFh(d2).kind(), Status::Kind::kProtocol);

  const Wire illegal = Wire().U32(OP_ILLEGAL).U32(NFS4ERR_OP_ILLEGAL);
  XdrDecoder d3(illegal.bytes());
  EXPECT_TRUE(DecodePutFh(d3).IsNfs(NFS4ERR_OP_ILLEGAL));
}

TEST(Nfs4OpsTest, SetAttrFailureCarriesAttrsset) {
  const Wire reply = Wire().U32(OP_SETATTR).U32(NFS4ERR_PERM).U32(2).U32(0x10).U32(0x2);
  XdrDecoder d(reply.bytes());
  Bitmap attrsset;
  EXPECT_TRUE(DecodeSetAttr(d, &attrsset).IsNfs(NFS4ERR_PERM));
  EXPECT_EQ(attrsset, (Bitmap{FATTR4_SIZE, FATTR4_MODE}));
  EXPECT_EQ(d.remaining(), 0u);
}

TEST(Nfs4OpsTest, OutParamsUntouchedOnError) {
  const Wire reply = Wire().U32(OP_CLOSE).U32(NFS4ERR_BAD_STATEID);
  XdrDecoder d(reply.bytes());
  Stateid sid = Sid(9, 9);
  EXPECT_TRUE(DecodeClose(d, &sid).IsNfs(NFS4ERR_BAD_STATEID));
  EXPECT_EQ(sid, Sid(9, 9));
}

// A reply, how to decode it (checking what it decoded), and what the whole
// of it must return.
struct ReplyCase {
  const char* name;
  Wire wire;
  std::function<Status(XdrDecoder&)> decode;
  std::function<bool(const Status&)> expect;
};

bool IsOk(const Status& s) { return s.ok(); }

std::function<bool(const Status&)> IsNfs(uint32_t code) {
  return [code](const Status& s) { return s.IsNfs(code); };
}

// clang-format off
std::vector<ReplyCase> Cases() {
  std::vector<ReplyCase> c;
  c.push_back({"read", Wire().U32(OP_READ).U32(0).U32(0).Str("abcdef"), [](XdrDecoder& d) {
    bool eof = true;
    std::span<const uint8_t> data;
    Status s = DecodeRead(d, &eof, &data);
    if (s.ok()) { EXPECT_TRUE(!eof && data.size() == 6); }
    return s;
  }, IsOk});
  c.push_back({"setattr denied", Wire().U32(OP_SETATTR).U32(NFS4ERR_PERM).U32(1).U32(0x10),
               [](XdrDecoder& d) { return DecodeSetAttr(d, nullptr); }, IsNfs(NFS4ERR_PERM)});
  c.push_back({"lock denied",
               Wire().U32(OP_LOCK).U32(NFS4ERR_DENIED).U64(100).U64(50).U32(WRITE_LT).U64(0x55).Str("lockowner"),
               [](XdrDecoder& d) {
    Stateid sid;
    LockDenied denied;
    Status s = DecodeLock(d, &sid, &denied);
    if (s.IsNfs(NFS4ERR_DENIED)) {
      EXPECT_EQ(denied.offset, 100u);
      EXPECT_EQ(denied.length, 50u);
      EXPECT_EQ(denied.locktype, WRITE_LT);
      EXPECT_EQ(denied.owner, (StateOwner{0x55, "lockowner"}));
    }
    return s;
  }, IsNfs(NFS4ERR_DENIED)});
  c.push_back({"lock ok", Wire().U32(OP_LOCK).U32(0).Sid(1, 0x40), [](XdrDecoder& d) {
    Stateid sid;
    Status s = DecodeLock(d, &sid, nullptr);
    if (s.ok()) { EXPECT_EQ(sid, Sid(1, 0x40)); }
    return s;
  }, IsOk});
  c.push_back({"lockt denied", Wire().U32(OP_LOCKT).U32(NFS4ERR_DENIED).U64(0).U64(1).U32(READ_LT).U64(1).Str("o"),
               [](XdrDecoder& d) { return DecodeLockT(d, nullptr); }, IsNfs(NFS4ERR_DENIED)});
  c.push_back({"lockt ok", Wire().U32(OP_LOCKT).U32(0), [](XdrDecoder& d) { return DecodeLockT(d, nullptr); }, IsOk});
  c.push_back({"locku", Wire().U32(OP_LOCKU).U32(0).Sid(2, 0x40),
               [](XdrDecoder& d) { return DecodeLockU(d, nullptr); }, IsOk});
  c.push_back({"open read delegation",
               Wire().U32(OP_OPEN).U32(0)
                   .Sid(1, 0x50)                           // stateid
                   .U32(1).U64(10).U64(11)                 // cinfo
                   .U32(OPEN4_RESULT_LOCKTYPE_POSIX)       // rflags
                   .U32(2).U32(0).U32(2)                   // attrset {mode}
                   .U32(OPEN_DELEGATE_READ).Sid(1, 0x60)   // open_read_delegation4
                   .U32(0)                                 //   recall
                   .U32(0).U32(0).U32(1).Str("EVERYONE@"), //   permissions
               [](XdrDecoder& d) {
    OpenRes r;
    Status s = DecodeOpen(d, &r);
    if (!s.ok()) return s;
    EXPECT_EQ(r.stateid, Sid(1, 0x50));
    EXPECT_EQ(r.cinfo, (ChangeInfo{true, 10, 11}));
    EXPECT_EQ(r.rflags, OPEN4_RESULT_LOCKTYPE_POSIX);
    EXPECT_EQ(r.attrset, Bitmap{FATTR4_MODE});
    EXPECT_EQ(r.delegation.type, OPEN_DELEGATE_READ);
    EXPECT_TRUE(r.delegation.has_stateid());
    EXPECT_EQ(r.delegation.stateid, Sid(1, 0x60));
    EXPECT_FALSE(r.delegation.recall);
    EXPECT_EQ(r.delegation.permissions.access_mask, 1u);
    EXPECT_EQ(r.delegation.permissions.who, "EVERYONE@");
    return s;
  }, IsOk});
  c.push_back({"open write delegation",
               Wire().U32(OP_OPEN).U32(0).Sid(1, 0).U32(0).U64(1).U64(2).U32(0).U32(0)
                   .U32(OPEN_DELEGATE_WRITE).Sid(1, 0x70)  // open_write_delegation4
                   .U32(1)                                 //   recall
                   .U32(NFS_LIMIT_BLOCKS).U32(10).U32(512) //   space_limit
                   .U32(0).U32(0).U32(0x6).Str("OWNER@"),  //   permissions
               [](XdrDecoder& d) {
    OpenRes r;
    Status s = DecodeOpen(d, &r);
    if (!s.ok()) return s;
    EXPECT_EQ(r.delegation.type, OPEN_DELEGATE_WRITE);
    EXPECT_EQ(r.delegation.stateid, Sid(1, 0x70));
    EXPECT_TRUE(r.delegation.recall);
    EXPECT_EQ(r.delegation.limitby, NFS_LIMIT_BLOCKS);
    EXPECT_EQ(r.delegation.num_blocks, 10u);
    EXPECT_EQ(r.delegation.bytes_per_block, 512u);
    EXPECT_EQ(r.delegation.permissions.who, "OWNER@");
    return s;
  }, IsOk});
  c.push_back({"open write delegation by size",
               Wire().U32(OP_OPEN).U32(0).Sid(1, 0).U32(0).U64(1).U64(2).U32(0).U32(0)
                   .U32(OPEN_DELEGATE_WRITE).Sid(1, 0x70).U32(0).U32(NFS_LIMIT_SIZE).U64(1 << 20)
                   .U32(0).U32(0).U32(0x6).Str("OWNER@"),
               [](XdrDecoder& d) {
    OpenRes r;
    Status s = DecodeOpen(d, &r);
    if (s.ok()) { EXPECT_EQ(r.delegation.filesize, 1u << 20); }
    return s;
  }, IsOk});
  c.push_back({"open none_ext contention",
               Wire().U32(OP_OPEN).U32(0).Sid(1, 0).U32(0).U64(1).U64(2).U32(0).U32(0)
                   .U32(OPEN_DELEGATE_NONE_EXT).U32(WND4_CONTENTION).U32(1),
               [](XdrDecoder& d) {
    OpenRes r;
    Status s = DecodeOpen(d, &r);
    if (!s.ok()) return s;
    EXPECT_EQ(r.delegation.why_none, WND4_CONTENTION);
    EXPECT_TRUE(r.delegation.server_will_push_deleg);
    EXPECT_FALSE(r.delegation.has_stateid());
    return s;
  }, IsOk});
  c.push_back({"open none_ext not wanted",
               Wire().U32(OP_OPEN).U32(0).Sid(1, 0).U32(0).U64(1).U64(2).U32(0).U32(0)
                   .U32(OPEN_DELEGATE_NONE_EXT).U32(WND4_NOT_WANTED),
               [](XdrDecoder& d) { return DecodeOpen(d, nullptr); }, IsOk});
  c.push_back({"readdir",
               Wire().U32(OP_READDIR).U32(0).Raw({1, 2, 3, 4, 5, 6, 7, 8})        // cookieverf
                   .U32(1).U64(1).Str("a")                                          // entry: cookie, name
                   .U32(1).U32(0x00180002)                                          //   type, fh, fileid
                   .Opaque(Wire().U32(NF4DIR).Str("\x01\x02").U64(100))
                   .U32(1).U64(2).Str("bb")
                   .U32(1).U32(0x00180002)
                   .Opaque(Wire().U32(NF4REG).Str("\x03\x04\x05\x06").U64(101))
                   .U32(0)                                                          // no more entries
                   .U32(1),                                                         // eof
               [](XdrDecoder& d) {
    DirPage page;
    Status s = DecodeReadDir(d, Ids(), &page);
    if (!s.ok()) return s;
    EXPECT_EQ(page.cookie_verifier, (std::array<uint8_t, 8>{1, 2, 3, 4, 5, 6, 7, 8}));
    EXPECT_TRUE(page.eof);
    EXPECT_EQ(page.entries.size(), 2u);
    if (page.entries.size() != 2) return s;
    EXPECT_EQ(page.entries[0].name, "a");
    EXPECT_EQ(page.entries[0].cookie, 1u);
    EXPECT_EQ(page.entries[0].attr.type, FileType::kDirectory);
    EXPECT_EQ(page.entries[0].attr.fileid, 100u);
    EXPECT_EQ(page.entries[0].fh.size(), 2u);
    EXPECT_EQ(page.entries[1].name, "bb");
    EXPECT_EQ(page.entries[1].cookie, 2u);
    EXPECT_EQ(page.entries[1].attr.type, FileType::kRegular);
    EXPECT_EQ(page.entries[1].attr.fileid, 101u);
    const uint8_t fh2[] = {3, 4, 5, 6};
    EXPECT_EQ(page.entries[1].fh, FileHandle(fh2, 4));
    return s;
  }, IsOk});
  c.push_back({"readdir empty", Wire().U32(OP_READDIR).U32(0).Raw(Bytes(8, 0)).U32(0).U32(1),
               [](XdrDecoder& d) { return DecodeReadDir(d, Ids(), nullptr); }, IsOk});
  c.push_back({"getfh", Wire().U32(OP_GETFH).U32(0).Str("\xaa\xbb\xcc\xdd\xee"), [](XdrDecoder& d) {
    FileHandle fh;
    Status s = DecodeGetFh(d, &fh);
    if (s.ok()) { EXPECT_EQ(fh, Fh()); }
    return s;
  }, IsOk});
  c.push_back({"getattr", Wire().U32(OP_GETATTR).U32(0).U32(1).U32(0x10).Opaque(Wire().U64(99)), [](XdrDecoder& d) {
    Attributes a;
    Status s = DecodeGetAttr(d, Ids(), &a);
    if (s.ok()) { EXPECT_EQ(a.size, 99u); }
    return s;
  }, IsOk});
  c.push_back({"access", Wire().U32(OP_ACCESS).U32(0).U32(0x3f).U32(0x3), [](XdrDecoder& d) {
    AccessRes r;
    Status s = DecodeAccess(d, &r);
    if (s.ok()) { EXPECT_EQ(r.supported, 0x3fu); }
    if (s.ok()) { EXPECT_EQ(r.access, 3u); }
    return s;
  }, IsOk});
  c.push_back({"write", Wire().U32(OP_WRITE).U32(0).U32(4096).U32(DATA_SYNC4).Raw(Bytes(8, 7)), [](XdrDecoder& d) {
    WriteRes r;
    Status s = DecodeWrite(d, &r);
    if (s.ok()) { EXPECT_EQ(r.count, 4096u); }
    if (s.ok()) { EXPECT_EQ(r.committed, DATA_SYNC4); }
    if (s.ok()) { EXPECT_EQ(r.verifier, Verifier({7, 7, 7, 7, 7, 7, 7, 7})); }
    return s;
  }, IsOk});
  c.push_back({"commit", Wire().U32(OP_COMMIT).U32(0).Raw(Bytes(8, 2)), [](XdrDecoder& d) {
    Verifier v{};
    Status s = DecodeCommit(d, &v);
    if (s.ok()) { EXPECT_EQ(v, Verifier({2, 2, 2, 2, 2, 2, 2, 2})); }
    return s;
  }, IsOk});
  c.push_back({"create", Wire().U32(OP_CREATE).U32(0).U32(0).U64(1).U64(2).U32(1).U32(0x10), [](XdrDecoder& d) {
    ChangeInfo ci;
    Bitmap b;
    Status s = DecodeCreate(d, &ci, &b);
    if (s.ok()) { EXPECT_EQ(ci, (ChangeInfo{false, 1, 2})); }
    if (s.ok()) { EXPECT_EQ(b, Bitmap{FATTR4_SIZE}); }
    return s;
  }, IsOk});
  c.push_back({"remove", Wire().U32(OP_REMOVE).U32(0).U32(1).U64(3).U64(4), [](XdrDecoder& d) {
    ChangeInfo ci;
    Status s = DecodeRemove(d, &ci);
    if (s.ok()) { EXPECT_EQ(ci, (ChangeInfo{true, 3, 4})); }
    return s;
  }, IsOk});
  c.push_back({"rename", Wire().U32(OP_RENAME).U32(0).U32(1).U64(3).U64(4).U32(0).U64(5).U64(6), [](XdrDecoder& d) {
    ChangeInfo src, dst;
    Status s = DecodeRename(d, &src, &dst);
    if (s.ok()) { EXPECT_EQ(src, (ChangeInfo{true, 3, 4})); }
    if (s.ok()) { EXPECT_EQ(dst, (ChangeInfo{false, 5, 6})); }
    return s;
  }, IsOk});
  c.push_back({"link", Wire().U32(OP_LINK).U32(0).U32(1).U64(3).U64(4),
               [](XdrDecoder& d) { return DecodeLink(d, nullptr); }, IsOk});
  c.push_back({"readlink", Wire().U32(OP_READLINK).U32(0).Str("../target"), [](XdrDecoder& d) {
    std::string t;
    Status s = DecodeReadLink(d, &t);
    if (s.ok()) { EXPECT_EQ(t, "../target"); }
    return s;
  }, IsOk});
  c.push_back({"close", Wire().U32(OP_CLOSE).U32(0).Sid(2, 0x50), [](XdrDecoder& d) {
    Stateid sid;
    Status s = DecodeClose(d, &sid);
    if (s.ok()) { EXPECT_EQ(sid, Sid(2, 0x50)); }
    return s;
  }, IsOk});
  c.push_back({"open_downgrade", Wire().U32(OP_OPEN_DOWNGRADE).U32(0).Sid(3, 0x50),
               [](XdrDecoder& d) { return DecodeOpenDowngrade(d, nullptr); }, IsOk});
  c.push_back({"remove failed", Wire().U32(OP_REMOVE).U32(NFS4ERR_NOTEMPTY),
               [](XdrDecoder& d) { return DecodeRemove(d, nullptr); }, IsNfs(NFS4ERR_NOTEMPTY)});
  c.push_back({"void ops",
               Wire().U32(OP_PUTROOTFH).U32(0).U32(OP_SAVEFH).U32(0).U32(OP_RESTOREFH).U32(0)
                   .U32(OP_LOOKUPP).U32(0).U32(OP_LOOKUP).U32(0).U32(OP_DELEGRETURN).U32(0),
               [](XdrDecoder& d) {
    for (auto* fn : {DecodePutRootFh, DecodeSaveFh, DecodeRestoreFh, DecodeLookupp, DecodeLookup,
                     DecodeDelegReturn}) {
      Status s = fn(d);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }, IsOk});
  return c;
}
// clang-format on

TEST(Nfs4OpsTest, DecodesHandBuiltReplies) {
  for (const ReplyCase& c : Cases()) {
    SCOPED_TRACE(c.name);
    XdrDecoder d(c.wire.bytes());
    const Status s = c.decode(d);
    EXPECT_TRUE(c.expect(s)) << s.message();
    EXPECT_EQ(d.remaining(), 0u) << "the whole reply is consumed";
  }
}

// Every proper prefix of every reply fails with a Protocol status.
TEST(Nfs4OpsTest, EveryTruncationFailsCleanly) {
  for (const ReplyCase& c : Cases()) {
    const Bytes& b = c.wire.bytes();
    for (size_t n = 0; n < b.size(); ++n) {
      SCOPED_TRACE(std::string(c.name) + " truncated to " + std::to_string(n));
      XdrDecoder d(std::span<const uint8_t>(b.data(), n));
      EXPECT_EQ(c.decode(d).kind(), Status::Kind::kProtocol);
    }
  }
}

bool IsProtocolError(const Wire& w, const std::function<Status(XdrDecoder&)>& decode) {
  XdrDecoder d(w.bytes());
  return decode(d).kind() == Status::Kind::kProtocol;
}

// clang-format off
TEST(Nfs4OpsTest, RejectsMalformedArms) {
  const auto open = [](XdrDecoder& d) { return DecodeOpen(d, nullptr); };
  const Wire head = Wire().U32(OP_OPEN).U32(0).Sid(1, 0).U32(0).U64(1).U64(2).U32(0).U32(0);
  EXPECT_TRUE(IsProtocolError(Wire(head).U32(4), open));  // no open_delegation_type4 4
  EXPECT_TRUE(IsProtocolError(  // no limit_by4 3
      Wire(head).U32(OPEN_DELEGATE_WRITE).Sid(1, 0).U32(0).U32(3).U64(0).U32(0).U32(0).U32(0).Str(""), open));
  EXPECT_TRUE(IsProtocolError(Wire().U32(OP_WRITE).U32(0).U32(1).U32(3).Raw(Bytes(8, 0)),  // stable_how4 3
                              [](XdrDecoder& d) { return DecodeWrite(d, nullptr); }));
  EXPECT_TRUE(IsProtocolError(Wire().U32(OP_GETFH).U32(0).Str(std::string(129, 'x')),  // over NFS4_FHSIZE
                              [](XdrDecoder& d) { return DecodeGetFh(d, nullptr); }));
  EXPECT_TRUE(IsProtocolError(Wire().U32(OP_GETFH).U32(0).U32(0),  // empty handle
                              [](XdrDecoder& d) { return DecodeGetFh(d, nullptr); }));
  EXPECT_TRUE(IsProtocolError(  // a 1025-byte name
      Wire().U32(OP_READDIR).U32(0).Raw(Bytes(8, 0)).U32(1).U64(1).Str(std::string(1025, 'n')).U32(0).U32(0).U32(0).U32(1),
      [](XdrDecoder& d) { return DecodeReadDir(d, Ids(), nullptr); }));
  EXPECT_TRUE(IsProtocolError(  // an entry attribute of unknown shape
      Wire().U32(OP_READDIR).U32(0).Raw(Bytes(8, 0)).U32(1).U64(1).Str("n").U32(3).U32(0).U32(0).U32(0x8)
          .Opaque(Wire()).U32(0).U32(1),
      [](XdrDecoder& d) { return DecodeReadDir(d, Ids(), nullptr); }));
}
// clang-format on

}  // namespace
}  // namespace floatmount::nfs::v4
