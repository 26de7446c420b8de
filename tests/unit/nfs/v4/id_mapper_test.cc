// IdMapper: numeric and name@domain owners, both directions. Relies on the
// root (0), nobody (65534) and nogroup (65534) entries every Debian system
// has.
#include "nfs/v4/id_mapper.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace floatmount::nfs {
namespace {

IdMapper Numeric() {
  IdMapperOptions o;
  o.numeric_owners = true;
  o.domain = "example.com";
  return IdMapper(o);
}

IdMapper Named() {
  IdMapperOptions o;
  o.numeric_owners = false;
  o.domain = "Example.COM";
  return IdMapper(o);
}

TEST(IdMapperTest, NumericOutgoing) {
  const IdMapper m = Numeric();
  EXPECT_EQ(m.OwnerString(1000), "1000");
  EXPECT_EQ(m.OwnerString(0), "0");
  EXPECT_EQ(m.GroupString(4294967295u), "4294967295");
  EXPECT_TRUE(m.numeric_owners());
}

TEST(IdMapperTest, NamedOutgoing) {
  const IdMapper m = Named();
  EXPECT_EQ(m.OwnerString(0), "root@Example.COM");
  EXPECT_EQ(m.GroupString(0), "root@Example.COM");
  EXPECT_EQ(m.GroupString(65534), "nogroup@Example.COM");
  // No such id in passwd/group: falls back to the number.
  EXPECT_EQ(m.OwnerString(3999999), "3999999");
  EXPECT_EQ(m.GroupString(3999999), "3999999");
}

TEST(IdMapperTest, DecimalIncoming) {
  for (const IdMapper& m : {Numeric(), Named()}) {
    EXPECT_EQ(m.UidFromOwner("1000"), 1000u);
    EXPECT_EQ(m.UidFromOwner("0"), 0u);
    EXPECT_EQ(m.UidFromOwner("4294967295"), 4294967295u);
    EXPECT_EQ(m.GidFromGroup("100"), 100u);
  }
}

TEST(IdMapperTest, NameAtDomainIncoming) {
  for (const IdMapper& m : {Numeric(), Named()}) {
    EXPECT_EQ(m.UidFromOwner("root@example.com"), 0u);
    EXPECT_EQ(m.UidFromOwner("root@EXAMPLE.com"), 0u);  // domain is case-insensitive
    EXPECT_EQ(m.GidFromGroup("root@example.com"), 0u);
    EXPECT_EQ(m.GidFromGroup("nogroup@example.com"), 65534u);
    EXPECT_EQ(m.UidFromOwner("1000@example.com"), 1000u);
  }
}

TEST(IdMapperTest, MismatchAndUnknownMapToNobody) {
  const IdMapper m = Numeric();
  EXPECT_EQ(m.UidFromOwner("root@other.org"), IdMapper::kNobodyUid);
  EXPECT_EQ(m.GidFromGroup("root@other.org"), IdMapper::kNobodyGid);
  EXPECT_EQ(m.UidFromOwner("no-such-user-xyz@example.com"), IdMapper::kNobodyUid);
  EXPECT_EQ(m.GidFromGroup("no-such-group-xyz@example.com"), IdMapper::kNobodyGid);
  EXPECT_EQ(m.UidFromOwner("nobody"), 65534u);
  EXPECT_EQ(m.UidFromOwner("nobody@example.com"), 65534u);
  EXPECT_EQ(m.UidFromOwner(""), 65534u);
  EXPECT_EQ(m.UidFromOwner("@example.com"), 65534u);
  EXPECT_EQ(m.UidFromOwner("-1"), 65534u);
  EXPECT_EQ(m.UidFromOwner("4294967296"), 65534u);  // does not fit
  EXPECT_EQ(m.UidFromOwner("12ab"), 65534u);
  EXPECT_EQ(m.UidFromOwner(std::string_view("root\0x@example.com", 19)), 65534u);
}

TEST(IdMapperTest, BareNameIsLookedUp) {
  const IdMapper m = Numeric();
  EXPECT_EQ(m.UidFromOwner("root"), 0u);
  EXPECT_EQ(m.GidFromGroup("nogroup"), 65534u);
}

TEST(IdMapperTest, RoundTripNamed) {
  const IdMapper m = Named();
  EXPECT_EQ(m.UidFromOwner(m.OwnerString(0)), 0u);
  EXPECT_EQ(m.GidFromGroup(m.GroupString(65534)), 65534u);
  EXPECT_EQ(m.UidFromOwner(m.OwnerString(3999999)), 3999999u);
}

TEST(IdMapperTest, DomainFromIdmapdConf) {
  EXPECT_EQ(IdMapper::DomainFromIdmapdConf("[General]\nDomain = corp.example\n"), "corp.example");
  EXPECT_EQ(IdMapper::DomainFromIdmapdConf("[general]\r\n  domain=a.b  \r\n"), "a.b");
  EXPECT_EQ(IdMapper::DomainFromIdmapdConf("[General]\n# Domain = commented\n"), "");
  EXPECT_EQ(IdMapper::DomainFromIdmapdConf("[Mapping]\nDomain = wrong.section\n"), "");
  EXPECT_EQ(IdMapper::DomainFromIdmapdConf("[Mapping]\nNobody-User = nobody\n[General]\n"
                                           "Verbosity = 0\nDomain = x.y\n"),
            "x.y");
  EXPECT_EQ(IdMapper::DomainFromIdmapdConf(""), "");
}

TEST(IdMapperTest, DomainFromConfigFile) {
  char path[] = "/tmp/idmapd_test_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream out(path);
    out << "[General]\nDomain = Corp.Example\n";
  }
  IdMapperOptions o;
  o.idmapd_conf = path;
  const IdMapper m(o);
  EXPECT_EQ(m.domain(), "Corp.Example");
  EXPECT_EQ(m.UidFromOwner("root@corp.example"), 0u);
  // A configured domain wins over the file.
  o.domain = "given.example";
  EXPECT_EQ(IdMapper(o).domain(), "given.example");
  std::remove(path);
}

}  // namespace
}  // namespace floatmount::nfs
