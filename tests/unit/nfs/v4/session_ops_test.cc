// NFSv4.1 client ID, session and state-management codecs (RFC 8881
// sections 18.34-18.38, 18.45, 18.46, 18.48, 18.50, 18.51), COMPOUND
// framing and the protocol names. Same method as tests/unit/nfs/v4/ops_test.cc:
// byte-exact encodings derived by hand from RFC 5662, hand-built replies,
// every truncation.
#include <gtest/gtest.h>

#include <functional>
#include <string_view>
#include <vector>

#include "nfs/v4/ops.h"
#include "tests/unit/wire.h"

namespace floatmount::nfs::v4 {
namespace {

using testing::Bytes;
using testing::Concat;
using testing::Wire;

Stateid Sid(uint32_t seqid, uint8_t fill) {
  Stateid s;
  s.seqid = seqid;
  for (uint8_t i = 0; i < 12; ++i) s.other[i] = static_cast<uint8_t>(fill + i);
  return s;
}

SessionId Session() {
  SessionId s;
  for (uint8_t i = 0; i < 16; ++i) s[i] = i;
  return s;
}

const Bytes kSessionBytes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

void Check(const std::function<void(XdrEncoder&)>& encode, const Wire& want) {
  XdrEncoder e;
  encode(e);
  EXPECT_EQ(e.Flatten(), want.bytes());
}

// EXCHANGE_ID alone, with a tag.
TEST(Nfs4SessionOpsTest, EncodeExchangeId) {
  ExchangeIdArgs args;
  args.verifier = {1, 2, 3, 4, 5, 6, 7, 8};
  args.owner_id = "node-1";
  args.flags = EXCHGID4_FLAG_SUPP_MOVED_REFER | EXCHGID4_FLAG_SUPP_MOVED_MIGR;
  args.impl_id = ImplId{"floatmount.dev", "floatmount 0.1", {1700000000, 0}};
  XdrEncoder e;
  const size_t numops_at = EncodeCompoundHeader(e, "exid", 1);
  EncodeExchangeId(e, args);
  e.PatchUint32(numops_at, 1);
  const Bytes expected = {
      0x00, 0x00, 0x00, 0x04,  // tag: 4 bytes
      'e',  'x',  'i',  'd',   //
      0x00, 0x00, 0x00, 0x01,  // minorversion 1
      0x00, 0x00, 0x00, 0x01,  // numops 1
      0x00, 0x00, 0x00, 0x2a,  // OP_EXCHANGE_ID
      0x01, 0x02, 0x03, 0x04,  // co_verifier
      0x05, 0x06, 0x07, 0x08,  //
      0x00, 0x00, 0x00, 0x06,  // co_ownerid: 6 bytes
      'n',  'o',  'd',  'e',   //
      '-',  '1',  0x00, 0x00,  // + padding
      0x00, 0x00, 0x00, 0x03,  // eia_flags SUPP_MOVED_REFER | SUPP_MOVED_MIGR
      0x00, 0x00, 0x00, 0x00,  // SP4_NONE
      0x00, 0x00, 0x00, 0x01,  // eia_client_impl_id<1>: 1 entry
      0x00, 0x00, 0x00, 0x0e,  // nii_domain: 14 bytes
      'f',  'l',  'o',  'a',   //
      't',  'm',  'o',  'u',   //
      'n',  't',  '.',  'd',   //
      'e',  'v',  0x00, 0x00,  // + padding
      0x00, 0x00, 0x00, 0x0e,  // nii_name: 14 bytes
      'f',  'l',  'o',  'a',   //
      't',  'm',  'o',  'u',   //
      'n',  't',  ' ',  '0',   //
      '.',  '1',  0x00, 0x00,  // + padding
      0x00, 0x00, 0x00, 0x00,  // nii_date.seconds 1700000000
      0x65, 0x53, 0xf1, 0x00,  //
      0x00, 0x00, 0x00, 0x00,  // nii_date.nseconds
  };
  EXPECT_EQ(e.Flatten(), expected);
}

TEST(Nfs4SessionOpsTest, EncodeCreateSession) {
  CreateSessionArgs args;
  args.clientid = 0x1122334455667788ULL;
  args.sequence = 1;
  args.flags = CREATE_SESSION4_FLAG_PERSIST;
  args.fore = ChannelAttrs{0, 0x00100400, 0x00100400, 0x1000, 16, 64, std::nullopt};
  args.back = ChannelAttrs{0, 4096, 4096, 0, 2, 1, 5};
  args.sec_parms.push_back(CallbackSecParms{});
  args.sec_parms.push_back(CallbackSecParms{kAuthSys, 0x12345678, "host", 1000, 1000, {4, 27}});
  XdrEncoder e;
  EncodeCreateSession(e, args);
  const Bytes expected = {
      0x00, 0x00, 0x00, 0x2b,  // OP_CREATE_SESSION
      0x11, 0x22, 0x33, 0x44,  // csa_clientid
      0x55, 0x66, 0x77, 0x88,  //
      0x00, 0x00, 0x00, 0x01,  // csa_sequence
      0x00, 0x00, 0x00, 0x01,  // csa_flags PERSIST
      0x00, 0x00, 0x00, 0x00,  // fore: headerpadsize
      0x00, 0x10, 0x04, 0x00,  //   maxrequestsize
      0x00, 0x10, 0x04, 0x00,  //   maxresponsesize
      0x00, 0x00, 0x10, 0x00,  //   maxresponsesize_cached
      0x00, 0x00, 0x00, 0x10,  //   maxoperations
      0x00, 0x00, 0x00, 0x40,  //   maxrequests
      0x00, 0x00, 0x00, 0x00,  //   rdma_ird<1>: empty
      0x00, 0x00, 0x00, 0x00,  // back: headerpadsize
      0x00, 0x00, 0x10, 0x00,  //   maxrequestsize
      0x00, 0x00, 0x10, 0x00,  //   maxresponsesize
      0x00, 0x00, 0x00, 0x00,  //   maxresponsesize_cached
      0x00, 0x00, 0x00, 0x02,  //   maxoperations
      0x00, 0x00, 0x00, 0x01,  //   maxrequests
      0x00, 0x00, 0x00, 0x01,  //   rdma_ird<1>: 1 entry
      0x00, 0x00, 0x00, 0x05,  //   5
      0x40, 0x00, 0x00, 0x00,  // csa_cb_program
      0x00, 0x00, 0x00, 0x02,  // csa_sec_parms: 2 entries
      0x00, 0x00, 0x00, 0x00,  // AUTH_NONE
      0x00, 0x00, 0x00, 0x01,  // AUTH_SYS
      0x12, 0x34, 0x56, 0x78,  //   stamp
      0x00, 0x00, 0x00, 0x04,  //   machinename: 4 bytes
      'h',  'o',  's',  't',   //
      0x00, 0x00, 0x03, 0xe8,  //   uid 1000
      0x00, 0x00, 0x03, 0xe8,  //   gid 1000
      0x00, 0x00, 0x00, 0x02,  //   gids: 2
      0x00, 0x00, 0x00, 0x04,  //
      0x00, 0x00, 0x00, 0x1b,  //
  };
  EXPECT_EQ(e.Flatten(), expected);
}

// clang-format off
TEST(Nfs4SessionOpsTest, EncodeOtherSessionOps) {
  SequenceArgs seq;
  seq.sessionid = Session();
  seq.sequenceid = 0xfffffffe;
  seq.slotid = 0;
  seq.highest_slotid = 63;
  seq.cachethis = true;
  Check([&](XdrEncoder& e) { EncodeSequence(e, seq); },
        Wire().U32(53).Raw(kSessionBytes).U32(0xfffffffe).U32(0).U32(63).U32(1));
  Check([](XdrEncoder& e) { EncodeBindConnToSession(e, Session(), CDFC4_FORE_OR_BOTH, false); },
        Wire().U32(41).Raw(kSessionBytes).U32(3).U32(0));
  Check([](XdrEncoder& e) { EncodeDestroySession(e, Session()); }, Wire().U32(44).Raw(kSessionBytes));
  Check([](XdrEncoder& e) { EncodeDestroyClientId(e, 0xabc); }, Wire().U32(57).U64(0xabc));
  Check([](XdrEncoder& e) { EncodeReclaimComplete(e, false); }, Wire().U32(58).U32(0));
  const Stateid two[] = {Sid(1, 0), Sid(2, 1)};
  Check([&](XdrEncoder& e) { EncodeTestStateid(e, two); }, Wire().U32(55).U32(2).Sid(1, 0).Sid(2, 1));
  Check([](XdrEncoder& e) { EncodeFreeStateid(e, Sid(1, 2)); }, Wire().U32(45).Sid(1, 2));
  Check([](XdrEncoder& e) { EncodeSecinfoNoName(e, SECINFO_STYLE4_CURRENT_FH); }, Wire().U32(52).U32(0));
  ExchangeIdArgs bare;  // no impl_id
  bare.owner_id = "x";
  Check([&](XdrEncoder& e) { EncodeExchangeId(e, bare); },
        Wire().U32(42).Raw(Bytes(8, 0)).Str("x").U32(0).U32(SP4_NONE).U32(0));
  CallbackSecParms sys{kAuthSys, 1, std::string(300, 'm'), 0, 0, std::vector<uint32_t>(20, 5)};
  CreateSessionArgs cs;  // machinename and gids are cut to the RFC 5531 limits
  cs.sec_parms = {sys};
  Wire want = Wire().U32(43).U64(0).U32(0).U32(0);
  for (int i = 0; i < 2; ++i) want.U32(0).U32(0).U32(0).U32(0).U32(0).U32(0).U32(0);
  want.U32(NFS4_CALLBACK).U32(1).U32(kAuthSys).U32(1).Str(std::string(255, 'm')).U32(0).U32(0).U32(16);
  for (int i = 0; i < 16; ++i) want.U32(5);
  Check([&](XdrEncoder& e) { EncodeCreateSession(e, cs); }, want);
}
// clang-format on

TEST(Nfs4SessionOpsTest, CompoundHeader) {
  XdrEncoder e;
  EXPECT_EQ(EncodeCompoundHeader(e, "abcde", 1), 16u);
  EXPECT_EQ(e.Flatten(), (Wire().Str("abcde").U32(1).U32(0).bytes()));

  const Wire reply = Wire().U32(NFS4ERR_DELAY).Str("tag").U32(2);
  XdrDecoder d(reply.bytes());
  uint32_t status = 0, n = 0;
  ASSERT_TRUE(DecodeCompoundHeader(d, &status, &n).ok());
  EXPECT_EQ(status, NFS4ERR_DELAY);
  EXPECT_EQ(n, 2u);
  for (size_t len = 0; len < reply.bytes().size(); ++len) {
    XdrDecoder t(std::span<const uint8_t>(reply.bytes().data(), len));
    EXPECT_EQ(DecodeCompoundHeader(t, &status, &n).kind(), Status::Kind::kProtocol);
  }
}

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
  c.push_back({"sequence",
               Wire().U32(OP_SEQUENCE).U32(0).Raw(kSessionBytes).U32(7).U32(2).U32(3).U32(5)
                   .U32(SEQ4_STATUS_RECALLABLE_STATE_REVOKED),
               [](XdrDecoder& d) {
    SequenceRes r;
    Status s = DecodeSequence(d, &r);
    if (!s.ok()) return s;
    EXPECT_EQ(r.sessionid, Session());
    EXPECT_EQ(r.sequenceid, 7u);
    EXPECT_EQ(r.slotid, 2u);
    EXPECT_EQ(r.highest_slotid, 3u);
    EXPECT_EQ(r.target_highest_slotid, 5u);
    EXPECT_EQ(r.status_flags, SEQ4_STATUS_RECALLABLE_STATE_REVOKED);
    return s;
  }, IsOk});
  c.push_back({"sequence badsession", Wire().U32(OP_SEQUENCE).U32(NFS4ERR_BADSESSION), [](XdrDecoder& d) {
    Status s = DecodeSequence(d, nullptr);
    if (s.IsNfs(NFS4ERR_BADSESSION)) { EXPECT_EQ(s.message(), "SEQUENCE"); }
    return s;
  }, IsNfs(NFS4ERR_BADSESSION)});
  c.push_back({"exchange_id",
               Wire().U32(OP_EXCHANGE_ID).U32(0)
                   .U64(0xabc)                                                 // eir_clientid
                   .U32(1)                                                     // eir_sequenceid
                   .U32(EXCHGID4_FLAG_CONFIRMED_R | EXCHGID4_FLAG_USE_NON_PNFS)
                   .U32(SP4_NONE)
                   .U64(9).Str("major-id")                                     // eir_server_owner
                   .Str("scope")                                               // eir_server_scope
                   .U32(1).Str("ganesha.org").Str("NFS-Ganesha 4.3").U64(0).U32(0),
               [](XdrDecoder& d) {
    ExchangeIdRes r;
    Status s = DecodeExchangeId(d, &r);
    if (!s.ok()) return s;
    EXPECT_EQ(r.clientid, 0xabcu);
    EXPECT_EQ(r.sequenceid, 1u);
    EXPECT_EQ(r.flags, 0x80010000u);
    EXPECT_EQ(r.state_protect, SP4_NONE);
    EXPECT_EQ(r.server_owner_minor, 9u);
    EXPECT_EQ(r.server_owner_major, "major-id");
    EXPECT_EQ(r.server_scope, "scope");
    EXPECT_EQ(r.server_impl_id, (ImplId{"ganesha.org", "NFS-Ganesha 4.3", {}}));
    return s;
  }, IsOk});
  c.push_back({"exchange_id mach_cred",
               Wire().U32(OP_EXCHANGE_ID).U32(0).U64(1).U32(1).U32(0)
                   .U32(SP4_MACH_CRED).U32(1).U32(0x1).U32(0)   // spo_must_enforce, spo_must_allow
                   .U64(0).Str("m").Str("s").U32(0),
               [](XdrDecoder& d) {
    ExchangeIdRes r;
    Status s = DecodeExchangeId(d, &r);
    if (!s.ok()) return s;
    EXPECT_EQ(r.must_enforce.words, std::vector<uint32_t>{1});
    EXPECT_FALSE(r.server_impl_id.has_value());
    return s;
  }, IsOk});
  c.push_back({"exchange_id failed", Wire().U32(OP_EXCHANGE_ID).U32(NFS4ERR_CLID_INUSE),
               [](XdrDecoder& d) { return DecodeExchangeId(d, nullptr); }, IsNfs(NFS4ERR_CLID_INUSE)});
  c.push_back({"create_session",
               Wire().U32(OP_CREATE_SESSION).U32(0).Raw(Bytes(16, 0xab)).U32(1).U32(0)
                   .U32(0).U32(1 << 20).U32(1 << 20).U32(4096).U32(8).U32(32).U32(0)     // fore
                   .U32(0).U32(4096).U32(4096).U32(0).U32(2).U32(1).U32(1).U32(3),       // back
               [](XdrDecoder& d) {
    CreateSessionRes r;
    Status s = DecodeCreateSession(d, &r);
    if (!s.ok()) return s;
    SessionId expected;
    expected.fill(0xab);
    EXPECT_EQ(r.sessionid, expected);
    EXPECT_EQ(r.sequence, 1u);
    EXPECT_EQ(r.fore, (ChannelAttrs{0, 1 << 20, 1 << 20, 4096, 8, 32, std::nullopt}));
    EXPECT_EQ(r.back, (ChannelAttrs{0, 4096, 4096, 0, 2, 1, 3}));
    return s;
  }, IsOk});
  c.push_back({"bind_conn", Wire().U32(OP_BIND_CONN_TO_SESSION).U32(0).Raw(kSessionBytes).U32(3).U32(0),
               [](XdrDecoder& d) {
    BindConnToSessionRes r;
    Status s = DecodeBindConnToSession(d, &r);
    if (s.ok()) { EXPECT_EQ(r.dir, CDFS4_BOTH); }
    if (s.ok()) { EXPECT_EQ(r.sessionid, Session()); }
    return s;
  }, IsOk});
  c.push_back({"test_stateid", Wire().U32(OP_TEST_STATEID).U32(0).U32(2).U32(0).U32(NFS4ERR_BAD_STATEID),
               [](XdrDecoder& d) {
    std::vector<uint32_t> codes;
    Status s = DecodeTestStateid(d, &codes);
    if (s.ok()) { EXPECT_EQ(codes, (std::vector<uint32_t>{0, NFS4ERR_BAD_STATEID})); }
    return s;
  }, IsOk});
  c.push_back({"secinfo_no_name",
               Wire().U32(OP_SECINFO_NO_NAME).U32(0).U32(2)
                   .U32(kRpcsecGss).Str("\x2a\x86\x48\x86\xf7\x12\x01\x02\x02").U32(0).U32(RPC_GSS_SVC_NONE)
                   .U32(kAuthSys),
               [](XdrDecoder& d) {
    std::vector<SecInfo> f;
    Status s = DecodeSecinfoNoName(d, &f);
    if (!s.ok()) return s;
    EXPECT_EQ(f.size(), 2u);
    if (f.size() != 2) return s;
    EXPECT_EQ(f[0].flavor, kRpcsecGss);
    EXPECT_EQ(f[0].oid.size(), 9u);
    EXPECT_EQ(f[0].service, RPC_GSS_SVC_NONE);
    EXPECT_EQ(f[1].flavor, kAuthSys);
    return s;
  }, IsOk});
  c.push_back({"destroy_session delayed", Wire().U32(OP_DESTROY_SESSION).U32(NFS4ERR_DELAY),
               [](XdrDecoder& d) { return DecodeDestroySession(d); }, IsNfs(NFS4ERR_DELAY)});
  c.push_back({"void ops",
               Wire().U32(OP_DESTROY_SESSION).U32(0).U32(OP_DESTROY_CLIENTID).U32(0)
                   .U32(OP_RECLAIM_COMPLETE).U32(0).U32(OP_FREE_STATEID).U32(0),
               [](XdrDecoder& d) {
    for (auto* fn : {DecodeDestroySession, DecodeDestroyClientId, DecodeReclaimComplete, DecodeFreeStateid}) {
      Status s = fn(d);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }, IsOk});
  return c;
}
// clang-format on

TEST(Nfs4SessionOpsTest, DecodesHandBuiltReplies) {
  for (const ReplyCase& c : Cases()) {
    SCOPED_TRACE(c.name);
    XdrDecoder d(c.wire.bytes());
    const Status s = c.decode(d);
    EXPECT_TRUE(c.expect(s)) << s.message();
    EXPECT_EQ(d.remaining(), 0u) << "the whole reply is consumed";
  }
}

TEST(Nfs4SessionOpsTest, EveryTruncationFailsCleanly) {
  for (const ReplyCase& c : Cases()) {
    const Bytes& b = c.wire.bytes();
    for (size_t n = 0; n < b.size(); ++n) {
      SCOPED_TRACE(std::string(c.name) + " truncated to " + std::to_string(n));
      XdrDecoder d(std::span<const uint8_t>(b.data(), n));
      EXPECT_EQ(c.decode(d).kind(), Status::Kind::kProtocol);
    }
  }
}

// clang-format off
TEST(Nfs4SessionOpsTest, RejectsMalformedArms) {
  const auto protocol = [](const Wire& w, const std::function<Status(XdrDecoder&)>& fn) {
    XdrDecoder d(w.bytes());
    return fn(d).kind() == Status::Kind::kProtocol;
  };
  const auto exid = [](XdrDecoder& d) { return DecodeExchangeId(d, nullptr); };
  EXPECT_TRUE(protocol(Wire().U32(OP_EXCHANGE_ID).U32(0).U64(1).U32(1).U32(0).U32(SP4_SSV), exid));
  EXPECT_TRUE(protocol(Wire().U32(OP_EXCHANGE_ID).U32(0).U64(1).U32(1).U32(0).U32(7), exid));
  EXPECT_TRUE(protocol(  // eir_server_impl_id<1> with 2 entries
      Wire().U32(OP_EXCHANGE_ID).U32(0).U64(1).U32(1).U32(0).U32(0).U64(0).Str("").Str("").U32(2), exid));
  EXPECT_TRUE(protocol(  // so_major_id over NFS4_OPAQUE_LIMIT
      Wire().U32(OP_EXCHANGE_ID).U32(0).U64(1).U32(1).U32(0).U32(0).U64(0).Str(std::string(1025, 'x'))
          .Str("").U32(0), exid));
  Wire cs = Wire().U32(OP_CREATE_SESSION).U32(0).Raw(Bytes(16, 0)).U32(1).U32(0);
  cs.U32(0).U32(0).U32(0).U32(0).U32(0).U32(0).U32(2).U32(1).U32(1);  // ca_rdma_ird<1> with 2
  EXPECT_TRUE(protocol(cs, [](XdrDecoder& d) { return DecodeCreateSession(d, nullptr); }));
  EXPECT_TRUE(protocol(Wire().U32(OP_BIND_CONN_TO_SESSION).U32(0).Raw(kSessionBytes).U32(7).U32(0),
                       [](XdrDecoder& d) { return DecodeBindConnToSession(d, nullptr); }));
  EXPECT_TRUE(protocol(Wire().U32(OP_TEST_STATEID).U32(0).U32(0x40000000),
                       [](XdrDecoder& d) { return DecodeTestStateid(d, nullptr); }));
  EXPECT_TRUE(protocol(Wire().U32(OP_SEQUENCE).U32(0).Raw(kSessionBytes),  // cut short
                       [](XdrDecoder& d) { return DecodeSequence(d, nullptr); }));
}
// clang-format on

TEST(Nfs4SessionOpsTest, Names) {
  EXPECT_STREQ(OpName(OP_LOOKUP), "LOOKUP");
  EXPECT_STREQ(OpName(OP_SEQUENCE), "SEQUENCE");
  EXPECT_STREQ(OpName(OP_ILLEGAL), "ILLEGAL");
  EXPECT_STREQ(OpName(9999), "OP_9999");
  EXPECT_STREQ(NfsStatusName(NFS4_OK), "NFS4_OK");
  EXPECT_STREQ(NfsStatusName(NFS4ERR_DELAY), "NFS4ERR_DELAY");
  EXPECT_STREQ(NfsStatusName(NFS4ERR_STALE), "NFS4ERR_STALE");
  EXPECT_STREQ(NfsStatusName(NFS4ERR_DELEG_REVOKED), "NFS4ERR_DELEG_REVOKED");
  EXPECT_STREQ(NfsStatusName(10073), "NFS4ERR_10073");
  for (uint32_t op = OP_ACCESS; op <= OP_RECLAIM_COMPLETE; ++op) {
    EXPECT_NE(std::string(OpName(op)).rfind("OP_", 0), 0u) << op;
  }
  // Every code of RFC 8881 section 15.1 has a name.
  for (uint32_t code = NFS4ERR_BADHANDLE; code <= NFS4ERR_DELEG_REVOKED; ++code) {
    if (code == 10002 || code == 10073) continue;  // unused numbers
    EXPECT_NE(std::string(NfsStatusName(code)).find_first_not_of("NFS4ER_0123456789"),
              std::string::npos)
        << code;
  }
}

TEST(Nfs4SessionOpsTest, SpecialStateids) {
  EXPECT_EQ(kAnonymousStateid, (Stateid{0, {}}));
  EXPECT_EQ(kCurrentStateid, (Stateid{1, {}}));
  EXPECT_EQ(kInvalidStateid.seqid, 0xffffffffu);
  XdrEncoder e;
  EncodeStateid(e, kReadBypassStateid);
  EXPECT_EQ(e.Flatten(), Bytes(16, 0xff));
}

}  // namespace
}  // namespace floatmount::nfs::v4
