// Mount options and config files: every option, every validation error,
// and the precedence of defaults < file < -o < SERVER:/EXPORT MOUNTPOINT.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "agent/config/config_file.h"
#include "agent/exit_codes.h"
#include "agent/config/mount_args.h"

namespace floatmount::agent {
namespace {

MountArgs Parse(std::vector<std::string> args) { return ParseMountArgs(args); }

std::string Joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// The one problem of `args`, which must fail with kExitUsage.
std::string OnlyProblem(std::vector<std::string> args) {
  const MountArgs r = ParseMountArgs(args);
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_EQ(r.problems.size(), 1u) << Joined(r.problems);
  return r.problems.empty() ? "" : r.problems[0];
}

TEST(MountOptionsTest, DefaultsFromTheCommandLine) {
  const MountArgs r = Parse({"nfs.example.com:/export", "/mnt/x"});
  ASSERT_EQ(r.exit_code, kExitOk) << Joined(r.problems);
  const MountConfig& c = r.config;
  EXPECT_EQ(c.server, "nfs.example.com");
  EXPECT_EQ(c.export_path, "/export");
  EXPECT_EQ(c.mountpoint, "/mnt/x");
  EXPECT_EQ(c.port, 2049);
  EXPECT_EQ(c.nconnect, 16);
  EXPECT_EQ(c.cache_size, 0u);
  EXPECT_EQ(c.readahead, kDefaultReadahead);
  EXPECT_EQ(c.state_dir, "/var/lib/floatmount");
  EXPECT_EQ(c.machine_id_file, "/etc/machine-id");
  EXPECT_EQ(c.product_uuid_file, "/sys/class/dmi/id/product_uuid");
  EXPECT_FALSE(c.soft);
  EXPECT_FALSE(c.foreground);
}

TEST(MountOptionsTest, VersTakesNfs3AndAuto) {
  EXPECT_EQ(Parse({"-o", "vers=3", "h:/e", "m"}).config.vers, "3");
  EXPECT_EQ(Parse({"-o", "nfsvers=auto", "h:/e", "m"}).config.vers, "auto");
  EXPECT_EQ(Parse({"-o", "vers=4.2", "h:/e", "m"}).config.vers, "4.1");
  EXPECT_EQ(Parse({"-o", "vers=3,minorversion=1", "h:/e", "m"}).config.vers, "4.1");
}

TEST(MountOptionsTest, EveryOptionIsApplied) {
  const MountArgs r =
      Parse({"-f", "-o",
             "port=20490,nconnect=8,rsize=65536,wsize=131072,actimeo=5,soft,timeo=50,retrans=3,"
             "vers=4.1,allow_other,ro,cache_size=2G,readahead=16M,state_dir=/s,client_id=pinned-1,"
             "machine_id_file=/m,product_uuid_file=/p,nfsvers=4,minorversion=1,mountport=635,"
             "lookupcache=pos",
             "-o", "noac,debug,_netdev,nofail,x-systemd.automount", "[::1]:/e", "m"});
  ASSERT_EQ(r.exit_code, kExitOk) << Joined(r.problems);
  const MountConfig& c = r.config;
  EXPECT_EQ(c.server, "::1");
  EXPECT_EQ(c.export_path, "/e");
  EXPECT_EQ(c.port, 20490);
  EXPECT_EQ(c.nconnect, 8);
  EXPECT_EQ(c.rsize, 65536u);
  EXPECT_EQ(c.wsize, 131072u);
  EXPECT_EQ(c.actimeo, 0);  // noac
  EXPECT_TRUE(c.soft);
  EXPECT_EQ(c.timeo_deciseconds, 50);
  EXPECT_EQ(c.retrans, 3);
  EXPECT_EQ(c.vers, "4.1");
  EXPECT_EQ(c.mount_port, 635);
  EXPECT_TRUE(c.allow_other);
  EXPECT_TRUE(c.read_only);
  EXPECT_EQ(c.cache_size, 2ull << 30);
  EXPECT_EQ(c.readahead, 16ull << 20);
  EXPECT_EQ(c.state_dir, "/s");
  EXPECT_EQ(c.client_id, "pinned-1");
  EXPECT_EQ(c.machine_id_file, "/m");
  EXPECT_EQ(c.product_uuid_file, "/p");
  EXPECT_TRUE(c.debug);
  EXPECT_TRUE(c.foreground);
  EXPECT_EQ(c.lookupcache, "positive");
  EXPECT_EQ(MountConfig{}.lookupcache, "all");  // the kernel NFS client's default
}

TEST(MountOptionsTest, LaterOptionsWinAndFlagsTakeBooleans) {
  const MountArgs r =
      Parse({"-o", "ro,soft,actimeo=7", "-o", "rw,hard,allow_other=false,debug=no", "h:/e", "/m"});
  ASSERT_EQ(r.exit_code, kExitOk) << Joined(r.problems);
  EXPECT_FALSE(r.config.read_only);
  EXPECT_FALSE(r.config.soft);
  EXPECT_FALSE(r.config.allow_other);
  EXPECT_EQ(r.config.actimeo, 7);
}

// Every check of a single option, and the words its line must contain.
TEST(MountOptionsTest, EveryBadValueIsOneLineNamingTheOption) {
  const std::pair<const char*, const char*> cases[] = {
      {"server=a b", "server takes a host name"},
      {"export=relative", "export takes an absolute path"},
      {"mountpoint=", "mountpoint takes a directory"},
      {"port=0", "port takes a number from 1 to 65535"},
      {"port=http", "port takes a number"},
      {"nconnect=99", "nconnect takes a number from 1 to 64"},
      {"nconnect=8x", "nconnect takes a number"},
      {"max_connections_per_address=65", "max_connections_per_address takes a number from 0 to 64"},
      {"dns_server=::1:53", "dns_server takes"},
      {"rsize=100", "rsize takes a number from 4096 to 1048576"},
      {"wsize=2097152", "wsize takes a number from 4096 to 1048576"},
      {"actimeo=-1", "actimeo takes a number from 0 to 3600"},
      {"lookupcache=none", "lookupcache takes all or positive"},
      {"timeo=0", "timeo takes a number from 1 to 36000"},
      {"retrans=101", "retrans takes a number from 1 to 100"},
      {"max_sessions=0", "max_sessions takes a number from 1 to 1000"},
      {"vers=2", "vers takes 4.1, 3 or auto"},
      {"nfsvers=4.0", "nfsvers takes 4.1, 3 or auto"},
      {"mountport=70000", "mountport"},
      {"minorversion=2", "minorversion takes 1 only"},
      {"cache_size=12Q", "cache_size takes a size"},
      {"cache_size=512K", "cache_size takes a size from 1M to 1T"},
      {"cache_size=2T", "cache_size takes a size"},
      {"readahead=512K", "readahead takes a size from 1M to 16G"},
      {"readahead=0", "readahead takes a size"},
      {"readahead=99999999999999999999", "readahead takes a size"},
      {"state_dir=var/lib", "state_dir takes an absolute path"},
      {"client_id=short", "client_id takes 8 to 512 characters"},
      {"machine_id_file=machine-id", "machine_id_file takes an absolute path"},
      {"product_uuid_file=", "product_uuid_file takes an absolute path"},
      {"ro=maybe", "ro is a flag: give no value, or true or false"},
      {"nconnect", "nconnect needs a value: nconnect=N"},
  };
  std::set<std::string> covered;
  for (const auto& [option, words] : cases) {
    const std::string line = OnlyProblem({"-o", option, "h:/e", "/m"});
    EXPECT_EQ(line.rfind(std::string("bad option '") + option + "': " + words, 0), 0u) << line;
    covered.insert(std::string(option).substr(0, std::string(option).find('=')));
  }
  for (const auto& o : MountOptionTable()) {  // each option with a value has a bad case
    if (o.value_name == nullptr) continue;
    EXPECT_TRUE(covered.count(o.name)) << o.name;
  }
}

TEST(MountOptionsTest, UnknownOptionsAndFlags) {
  EXPECT_EQ(OnlyProblem({"-o", "nconect=4", "h:/e", "/m"}),
            "unknown option 'nconect=4'. See 'floatmount --help' for the options.");
  EXPECT_EQ(OnlyProblem({"--bogus", "h:/e", "/m"}),
            "unknown flag '--bogus'. See 'floatmount --help'.");
  EXPECT_NE(OnlyProblem({"h:/e", "/m", "-o"}).find("-o needs a list"), std::string::npos);
}

TEST(MountOptionsTest, EveryProblemIsReported) {
  const MountArgs r = Parse({"-o", "nconnect=0,rsize=1,bogus", "h:/e", "/m"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  ASSERT_EQ(r.problems.size(), 3u) << Joined(r.problems);
  EXPECT_NE(r.problems[0].find("nconnect"), std::string::npos);
  EXPECT_NE(r.problems[1].find("rsize"), std::string::npos);
  EXPECT_NE(r.problems[2].find("bogus"), std::string::npos);
}

TEST(MountOptionsTest, ExportAndMountPointAreRequired) {
  EXPECT_NE(OnlyProblem({"h:/e"}).find("give the export and the mount point"), std::string::npos);
  EXPECT_NE(OnlyProblem({}).find("give the export and the mount point"), std::string::npos);
  EXPECT_NE(OnlyProblem({"nfs.example.com", "/m"}).find("is not SERVER:/EXPORT"),
            std::string::npos);
  EXPECT_NE(OnlyProblem({"-o", "server=h,export=/e"}).find("no mount point given"),
            std::string::npos);
  const MountArgs r = Parse({"-o", "server=h,export=/e,mountpoint=/m"});
  EXPECT_EQ(r.exit_code, kExitOk) << Joined(r.problems);
}

TEST(MountOptionsTest, ReadaheadFitsTheCache) {
  EXPECT_EQ(OnlyProblem({"-o", "cache_size=32M,readahead=64M", "h:/e", "/m"}),
            "readahead=64M is larger than cache_size=32M: lower readahead or raise cache_size");
  const MountArgs r = Parse({"-o", "cache_size=16M", "h:/e", "/m"});
  ASSERT_EQ(r.exit_code, kExitOk) << Joined(r.problems);
  EXPECT_EQ(r.config.readahead, 16ull << 20);  // the default, cut to the cache
}

TEST(MountOptionsTest, Sizes) {
  EXPECT_EQ(ParseSize("4096"), 4096u);
  EXPECT_EQ(ParseSize("64M"), 64ull << 20);
  EXPECT_EQ(ParseSize("2g"), 2ull << 30);
  EXPECT_EQ(ParseSize("1T"), 1ull << 40);
  EXPECT_EQ(ParseSize("512k"), 512ull << 10);
  EXPECT_FALSE(ParseSize(""));
  EXPECT_FALSE(ParseSize("M"));
  EXPECT_FALSE(ParseSize("-1M"));
  EXPECT_FALSE(ParseSize("1MB"));
  EXPECT_FALSE(ParseSize("20000000000T"));
  EXPECT_EQ(FormatSize(64ull << 20), "64M");
  EXPECT_EQ(FormatSize(1536ull << 10), "1536K");
  EXPECT_EQ(FormatSize(1000), "1000");
  EXPECT_EQ(FormatSize(0), "0");
}

TEST(MountOptionsTest, HelpListsEveryOptionWithItsDefault) {
  const std::string help = MountHelp();
  for (const auto& o : MountOptionTable()) {
    if (o.help == nullptr) continue;
    EXPECT_NE(help.find(std::string("  ") + o.name), std::string::npos) << o.name;
  }
  EXPECT_NE(help.find("nconnect=N"), std::string::npos);
  EXPECT_NE(help.find("(default: 16)"), std::string::npos);
  EXPECT_NE(help.find("(default: 64M)"), std::string::npos);
  EXPECT_NE(help.find("--config NAME|FILE"), std::string::npos);
  EXPECT_TRUE(Parse({"--help"}).help);
  EXPECT_TRUE(Parse({"h:/e", "-h"}).help);
}

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/agent-config-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `text` to DIR/NAME.conf and returns its path.
  std::string WriteConfig(const std::string& text, const std::string& name = "data") {
    const std::string path = dir_ + "/" + name + ".conf";
    std::ofstream(path) << text;
    return path;
  }

  std::string dir_;
};

constexpr const char* kGoodConfig =
    "# checkpoints for the training cluster\n"
    "server = nfs.example.com\n"
    "export = /checkpoints\n"
    "\n"
    "mountpoint = /mnt/checkpoints   # made by the unit\n"
    "nconnect = 8\n"
    "ro = true\n"
    "noac =\n"
    "cache_size = 2G\n"
    "state_dir = /var/lib/fm\n";

TEST_F(ConfigFileTest, MountsWhatTheFileSays) {
  const MountArgs r = Parse({"--config", WriteConfig(kGoodConfig)});
  ASSERT_EQ(r.exit_code, kExitOk) << Joined(r.problems);
  EXPECT_EQ(r.config_file, dir_ + "/data.conf");
  EXPECT_EQ(r.config.server, "nfs.example.com");
  EXPECT_EQ(r.config.export_path, "/checkpoints");
  EXPECT_EQ(r.config.mountpoint, "/mnt/checkpoints");
  EXPECT_EQ(r.config.nconnect, 8);
  EXPECT_TRUE(r.config.read_only);
  EXPECT_EQ(r.config.actimeo, 0);
  EXPECT_EQ(r.config.cache_size, 2ull << 30);
  EXPECT_EQ(r.config.state_dir, "/var/lib/fm");
}

TEST_F(ConfigFileTest, NameResolvesInTheConfigDirectory) {
  WriteConfig(kGoodConfig, "ckpt");
  const MountArgs r = Parse({"--config-dir", dir_, "--config=ckpt"});
  ASSERT_EQ(r.exit_code, kExitOk) << Joined(r.problems);
  EXPECT_EQ(r.config_file, dir_ + "/ckpt.conf");
  EXPECT_EQ(ResolveConfigPath("ckpt", "/etc/floatmount"), "/etc/floatmount/ckpt.conf");
  EXPECT_EQ(ResolveConfigPath("./ckpt.conf", "/etc/floatmount"), "./ckpt.conf");
}

TEST_F(ConfigFileTest, CommandLineOverridesTheFile) {
  const std::string path = WriteConfig(kGoodConfig);
  const MountArgs r =
      Parse({"-o", "nconnect=4,rw", "--config", path, "-o", "cache_size=0", "h2:/e2", "/m2"});
  ASSERT_EQ(r.exit_code, kExitOk) << Joined(r.problems);
  EXPECT_EQ(r.config.nconnect, 4);  // -o before --config still wins
  EXPECT_FALSE(r.config.read_only);
  EXPECT_EQ(r.config.cache_size, 0u);
  EXPECT_EQ(r.config.server, "h2");
  EXPECT_EQ(r.config.export_path, "/e2");
  EXPECT_EQ(r.config.mountpoint, "/m2");
  EXPECT_EQ(r.config.state_dir, "/var/lib/fm");  // not overridden: from the file
}

TEST_F(ConfigFileTest, UnknownKeyNamesFileAndLine) {
  const std::string path = WriteConfig(std::string(kGoodConfig) + "nconect = 4\n");
  EXPECT_EQ(OnlyProblem({"--config", path}),
            path +
                ":11: unknown key 'nconect'. The keys are the -o options: see "
                "'floatmount --help'.");
}

TEST_F(ConfigFileTest, BadValuesNameFileLineAndKey) {
  const std::string path = WriteConfig(std::string(kGoodConfig) + "nconnect = 99\n");
  EXPECT_EQ(OnlyProblem({"--config", path}),
            path + ":11: bad value in 'nconnect = 99': nconnect takes a number from 1 to 64");
  const std::string sizes = WriteConfig(std::string(kGoodConfig) + "readahead = lots\n", "s");
  EXPECT_NE(OnlyProblem({"--config", sizes}).find(sizes + ":11: bad value in 'readahead = lots'"),
            std::string::npos);
  const std::string flag = WriteConfig(std::string(kGoodConfig) + "soft = sometimes\n", "f");
  EXPECT_NE(OnlyProblem({"--config", flag}).find("soft is a flag"), std::string::npos);
}

TEST_F(ConfigFileTest, EveryBadLineIsReported) {
  const std::string path = WriteConfig(
      "server = h\nexport = /e\nmountpoint = /m\nport = 0\nnconnect\n[mount]\nbogus = 1\n");
  const MountArgs r = Parse({"--config", path});
  EXPECT_EQ(r.exit_code, kExitUsage);
  ASSERT_EQ(r.problems.size(), 4u) << Joined(r.problems);
  EXPECT_EQ(r.problems[0].rfind(path + ":4: bad value in 'port = 0'", 0), 0u) << r.problems[0];
  EXPECT_EQ(r.problems[1].rfind(path + ":5: cannot read 'nconnect'", 0), 0u) << r.problems[1];
  EXPECT_EQ(r.problems[2].rfind(path + ":6: sections ('[mount]') are not used", 0), 0u)
      << r.problems[2];
  EXPECT_EQ(r.problems[3].rfind(path + ":7: unknown key 'bogus'", 0), 0u) << r.problems[3];
}

TEST_F(ConfigFileTest, MissingServerAndMountPoint) {
  const MountArgs r = Parse({"--config", WriteConfig("export = /e\nnconnect = 2\n")});
  EXPECT_EQ(r.exit_code, kExitUsage);
  ASSERT_EQ(r.problems.size(), 2u) << Joined(r.problems);
  EXPECT_NE(r.problems[0].find("no server given"), std::string::npos);
  EXPECT_NE(r.problems[1].find("no mount point given"), std::string::npos);
}

TEST_F(ConfigFileTest, CrossChecksApplyToTheFile) {
  const std::string path =
      WriteConfig(std::string(kGoodConfig) + "cache_size = 8M\nreadahead = 9M\n");
  EXPECT_NE(OnlyProblem({"--config", path}).find("readahead=9M is larger than cache_size=8M"),
            std::string::npos);
}

TEST_F(ConfigFileTest, UnreadableFileHasItsOwnExitCode) {
  const MountArgs missing = Parse({"--config", "nope", "--config-dir", dir_});
  EXPECT_EQ(missing.exit_code, kExitLocalFile);
  ASSERT_EQ(missing.problems.size(), 1u) << Joined(missing.problems);
  EXPECT_EQ(missing.problems[0], "cannot read the config file " + dir_ +
                                     "/nope.conf: No such file or directory. Check the name, or "
                                     "give the file's path to --config.");
  const MountArgs directory = Parse({"--config", dir_});
  EXPECT_EQ(directory.exit_code, kExitLocalFile);
  EXPECT_NE(Joined(directory.problems).find("is not a regular file"), std::string::npos);
  if (geteuid() != 0) {  // root reads anything
    const std::string path = WriteConfig(kGoodConfig);
    chmod(path.c_str(), 0);
    const MountArgs denied = Parse({"--config", path});
    EXPECT_EQ(denied.exit_code, kExitLocalFile);
    EXPECT_NE(Joined(denied.problems).find("Permission denied"), std::string::npos);
  }
  EXPECT_NE(OnlyProblem({"--config="}).find("--config needs a NAME or a FILE"), std::string::npos);
}

}  // namespace
}  // namespace floatmount::agent
