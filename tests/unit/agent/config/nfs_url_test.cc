#include "agent/config/nfs_url.h"

#include <gtest/gtest.h>

namespace floatmount::agent {
namespace {

TEST(NfsUrlTest, HostPortAndPath) {
  std::string error;
  auto url = ParseNfsUrl("nfs://server.example:20490/export/dir/file", &error);
  ASSERT_TRUE(url) << error;
  EXPECT_EQ(url->host, "server.example");
  EXPECT_EQ(url->port, 20490);
  EXPECT_EQ(url->path, "/export/dir/file");
}

TEST(NfsUrlTest, DefaultPortAndRoot) {
  std::string error;
  auto url = ParseNfsUrl("nfs://10.0.0.1", &error);
  ASSERT_TRUE(url);
  EXPECT_EQ(url->port, 2049);
  EXPECT_EQ(url->path, "/");
}

TEST(NfsUrlTest, BracketedIpv6) {
  std::string error;
  auto url = ParseNfsUrl("nfs://[::1]:2050/export", &error);
  ASSERT_TRUE(url) << error;
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 2050);
}

TEST(NfsUrlTest, RejectsBadInput) {
  std::string error;
  EXPECT_FALSE(ParseNfsUrl("/local/path", &error));
  EXPECT_FALSE(ParseNfsUrl("nfs://:2049/x", &error));
  EXPECT_FALSE(ParseNfsUrl("nfs://host:99999/x", &error));
  EXPECT_NE(error.find("bad port"), std::string::npos);
  EXPECT_FALSE(ParseNfsUrl("nfs://host:12ab/x", &error));
  EXPECT_FALSE(ParseNfsUrl("nfs://[::1/x", &error));
}

TEST(NfsUrlTest, PathWithinExport) {
  EXPECT_EQ(PathWithinExport("/export/a/b", "/export"), "a/b");
  EXPECT_EQ(PathWithinExport("/export", "/export/"), "");
  EXPECT_FALSE(PathWithinExport("/exports/a", "/export"));
  EXPECT_FALSE(PathWithinExport("/other/a", "/export"));
  EXPECT_EQ(PathWithinExport("/a/b", "/"), "a/b");
}

}  // namespace
}  // namespace floatmount::agent
