// Client identity: generation, persistence, clone detection, pinning, and
// the boot verifier. Each test works in its own directory under $TMPDIR.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "agent/identity/client_identity.h"

namespace floatmount::agent {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/agent-identity-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Write(dir_ + "/machine-id", "3d1219c7c4c5404aaa1f6d2a48adfda4\n");
    Write(dir_ + "/product_uuid", "4C4C4544-0042-3510-8054-B4C04F4E3732\n");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Options for a state directory `name` under the test's directory.
  IdentityOptions Options(const std::string& name, const std::string& machine_id = "machine-id") {
    return IdentityOptions{dir_ + "/" + name, dir_ + "/" + machine_id, dir_ + "/product_uuid", ""};
  }
  NodeIdentity Load(const IdentityOptions& options) {
    auto identity = LoadNodeIdentity(options);
    EXPECT_TRUE(identity.ok()) << identity.status().message();
    return identity.ok() ? *identity : NodeIdentity{};
  }

  std::string dir_;
};

TEST_F(IdentityTest, GeneratedOnceWithPrivateModes) {
  const IdentityOptions options = Options("var/lib/floatmount");
  const NodeIdentity identity = Load(options);
  EXPECT_EQ(identity.source, IdSource::kGenerated);
  EXPECT_EQ(identity.node_id.size(), 36u);  // a UUID
  EXPECT_EQ(identity.id_file, options.state_dir + "/node-id");
  EXPECT_EQ(ModeOf(options.state_dir), 0700u);
  EXPECT_EQ(ModeOf(identity.id_file), 0600u);
  EXPECT_EQ(Slurp(identity.id_file),
            identity.node_id + "\nfingerprint=" + identity.fingerprint.value + "\n");
  EXPECT_TRUE(identity.fingerprint.machine_id_read);
  EXPECT_TRUE(identity.fingerprint.product_uuid_read);
  EXPECT_EQ(std::distance(fs::directory_iterator(options.state_dir), {}), 1);  // no temp file
}

TEST_F(IdentityTest, SameMachineKeepsItsIdAcrossRestarts) {
  const NodeIdentity first = Load(Options("state"));
  const NodeIdentity second = Load(Options("state"));
  EXPECT_EQ(second.source, IdSource::kLoaded);
  EXPECT_FALSE(second.fingerprint_added);
  EXPECT_EQ(second.node_id, first.node_id);
  // A copy on the same machine (same fingerprint) is the same node, too.
  fs::copy(dir_ + "/state", dir_ + "/copy");
  EXPECT_EQ(Load(Options("copy")).node_id, first.node_id);
}

TEST_F(IdentityTest, CopiedStateWithAnotherMachineIdGetsANewId) {
  const NodeIdentity original = Load(Options("state"));
  fs::copy(dir_ + "/state", dir_ + "/clone");
  Write(dir_ + "/other-machine-id", "0123456789abcdef0123456789abcdef\n");

  const NodeIdentity clone = Load(Options("clone", "other-machine-id"));
  EXPECT_EQ(clone.source, IdSource::kRegenerated);
  EXPECT_NE(clone.node_id, original.node_id);
  EXPECT_NE(clone.fingerprint.value, original.fingerprint.value);
  EXPECT_EQ(Slurp(clone.id_file).substr(0, 37), clone.node_id + "\n");
  // The clone keeps its new ID from now on; the original is untouched.
  const NodeIdentity again = Load(Options("clone", "other-machine-id"));
  EXPECT_EQ(again.source, IdSource::kLoaded);
  EXPECT_EQ(again.node_id, clone.node_id);
  EXPECT_EQ(Load(Options("state")).node_id, original.node_id);
}

TEST_F(IdentityTest, ProductUuidIsPartOfTheFingerprint) {
  const NodeIdentity original = Load(Options("state"));
  Write(dir_ + "/product_uuid", "4C4C4544-0042-3510-8054-B4C04F4E3733\n");
  const NodeIdentity cloned = Load(Options("state"));
  EXPECT_EQ(cloned.source, IdSource::kRegenerated);
  EXPECT_NE(cloned.node_id, original.node_id);
}

TEST_F(IdentityTest, FingerprintIgnoresCaseAndSurroundingBlanks) {
  const MachineFingerprint a = ComputeFingerprint(dir_ + "/machine-id", dir_ + "/product_uuid");
  Write(dir_ + "/machine-id", "  3D1219C7C4C5404AAA1F6D2A48ADFDA4");
  const MachineFingerprint b = ComputeFingerprint(dir_ + "/machine-id", dir_ + "/product_uuid");
  EXPECT_EQ(a.value, b.value);
  EXPECT_EQ(a.value.rfind("fnv1a64:", 0), 0u);
  EXPECT_EQ(a.value.size(), 8u + 16u);
}

TEST_F(IdentityTest, MissingFingerprintFilesCountAsEmptyAndAreNamed) {
  IdentityOptions options = Options("state", "no-such-machine-id");
  options.product_uuid_file = dir_ + "/no-such-uuid";
  const NodeIdentity identity = Load(options);
  EXPECT_FALSE(identity.fingerprint.machine_id_read);
  EXPECT_FALSE(identity.fingerprint.product_uuid_read);
  EXPECT_EQ(Load(options).node_id, identity.node_id);  // still stable
  const std::vector<std::string> lines = DescribeIdentity(identity);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[1].find(options.machine_id_file + " (unreadable or empty)"), std::string::npos);
  EXPECT_NE(lines[2].find("cannot be detected"), std::string::npos);
}

TEST_F(IdentityTest, DescriptionTellsTheSourceButNeverTheId) {
  const NodeIdentity generated = Load(Options("state"));
  const NodeIdentity loaded = Load(Options("state"));
  Write(dir_ + "/machine-id", "another machine");
  const NodeIdentity regenerated = Load(Options("state"));
  const std::pair<const NodeIdentity*, const char*> cases[] = {
      {&generated, "generated now"}, {&loaded, "loaded from"}, {&regenerated, "cloned state"}};
  for (const auto& [identity, words] : cases) {
    const std::vector<std::string> lines = DescribeIdentity(*identity);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_NE(lines[0].find(words), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find(identity->id_file), std::string::npos) << lines[0];
    for (const auto& line : lines) {
      EXPECT_EQ(line.find(identity->node_id), std::string::npos) << line;
    }
  }
}

TEST_F(IdentityTest, FileWithoutFingerprintKeepsItsIdAndGainsOne) {
  fs::create_directory(dir_ + "/state");
  Write(dir_ + "/state/node-id", "0f2c3b1e-8a4d-4e5f-9a6b-7c8d9e0f1a2b\n");  // older agent
  const NodeIdentity identity = Load(Options("state"));
  EXPECT_EQ(identity.source, IdSource::kLoaded);
  EXPECT_TRUE(identity.fingerprint_added);
  EXPECT_EQ(identity.node_id, "0f2c3b1e-8a4d-4e5f-9a6b-7c8d9e0f1a2b");
  EXPECT_NE(Slurp(identity.id_file).find("fingerprint=fnv1a64:"), std::string::npos);
  EXPECT_FALSE(Load(Options("state")).fingerprint_added);
}

TEST_F(IdentityTest, DamagedFileIsReplaced) {
  fs::create_directory(dir_ + "/state");
  Write(dir_ + "/state/node-id", "\n");
  const NodeIdentity identity = Load(Options("state"));
  EXPECT_EQ(identity.source, IdSource::kGenerated);
  EXPECT_EQ(identity.node_id.size(), 36u);
}

TEST_F(IdentityTest, PinnedIdLeavesTheStateDirectoryAlone) {
  IdentityOptions options = Options("state");
  options.pinned_id = "rack7-node12";
  const NodeIdentity identity = Load(options);
  EXPECT_EQ(identity.source, IdSource::kPinned);
  EXPECT_EQ(identity.node_id, "rack7-node12");
  EXPECT_FALSE(fs::exists(options.state_dir));
  ASSERT_EQ(DescribeIdentity(identity).size(), 1u);
  EXPECT_NE(DescribeIdentity(identity)[0].find("pinned"), std::string::npos);
}

TEST_F(IdentityTest, UnusableStateDirectoryIsAnError) {
  Write(dir_ + "/a-file", "x");
  auto identity = LoadNodeIdentity(Options("a-file/state"));
  ASSERT_FALSE(identity.ok());
  EXPECT_NE(identity.status().message().find("cannot create the state directory"),
            std::string::npos)
      << identity.status().message();
}

TEST_F(IdentityTest, ConcurrentFirstLoadsAgree) {
  std::vector<std::string> ids(4);
  std::vector<std::thread> threads;
  for (auto& id : ids) {
    threads.emplace_back([&] { id = Load(Options("state")).node_id; });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 1u);
}

TEST_F(IdentityTest, OptionsComeFromTheMountConfig) {
  MountConfig config;
  config.state_dir = "/s";
  config.machine_id_file = "/m";
  config.product_uuid_file = "/p";
  config.client_id = "pinned-id";
  const IdentityOptions options = IdentityOptionsFor(config);
  EXPECT_EQ(options.state_dir, "/s");
  EXPECT_EQ(options.machine_id_file, "/m");
  EXPECT_EQ(options.product_uuid_file, "/p");
  EXPECT_EQ(options.pinned_id, "pinned-id");
}

TEST(IdentityHashTest, Fnv1a64KnownVectors) {
  EXPECT_EQ(Fnv1a64Hex(""), "cbf29ce484222325");
  EXPECT_EQ(Fnv1a64Hex("a"), "af63dc4c8601ec8c");
  EXPECT_EQ(Fnv1a64Hex("foobar"), "85944171f73967e8");
}

TEST(IdentityOwnerTest, OwnerStringFormat) {
  EXPECT_EQ(OwnerIdFor("node", "/mnt/x"), "floatmount/node//mnt/x");
}

TEST(IdentityBootVerifierTest, DiffersBetweenStarts) {
  EXPECT_NE(NewBootVerifier(), NewBootVerifier());
}

}  // namespace
}  // namespace floatmount::agent
