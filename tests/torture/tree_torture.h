// TreeTorture: a seeded random exerciser of names, in the spirit of
// fsstress, with a shadow model of a directory tree (torture.h is its twin
// for bytes in a few files). It finds what the mount's caches of names and
// attributes get wrong: the kernel's dentries and attributes, the agent's
// negative names, listings and inode table, after this mount's own changes.
//
// Under `dir` it makes a small tree of a handful of names per directory
// (n0..n7, so that names are reused: a name removed, renamed away or
// replaced is soon looked up, created or renamed onto again) and applies
// random operations: create (O_EXCL), rewrite with O_TRUNC, unlink, mkdir,
// rmdir, rename (files and directories, onto missing names, over files,
// over empty and non-empty directories, into their own subtree), hard link,
// symlink, chmod, lstat, read, readdir, and a recursive removal. Each op's
// outcome is checked exactly against the model: success or the errno
// rename(2), unlink(2) and the others document, and for lstat the type,
// mode, size and link count. A few files stay open across all of it; reads
// through them must keep returning the file's bytes after its names are
// removed or renamed over, and after a rewrite through another name.
//
// Every `check_every` ops and at the end the whole tree is compared with
// the model through `dir`, through a second mount's `second_dir` (mount it
// noac: with attribute caching another mount may see old names for
// actimeo, as the kernel NFS client does) and in the server's `server_dir`:
// names (readdir), types, modes, sizes, link counts, bytes, symlink
// targets, and hard links sharing one inode number. With `alternate` the
// ops themselves go through either mount, as two clients taking turns.
//
// Determinism: every choice comes from one std::mt19937_64 seeded with
// TreeOptions::seed and depends only on the model, so `--seed S --ops N`
// replays a failure. The run stops at the first failure and prints the
// seed, the op, what was wrong and the last 20 ops.
//
// Threads: single-threaded.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace floatmount::torture {

struct TreeOptions {
  std::string dir;         // where the tree lives (the mount under test)
  std::string second_dir;  // the same directory through another mount; "" to skip
  std::string server_dir;  // the same directory in the server's export; "" to skip
  uint64_t seed = 1;
  int ops = 2000;
  size_t max_entries = 60;  // past this, ops that make names give way to removals
  int check_every = 100;    // whole-tree compare every this many ops
  bool held = true;         // descriptors kept open across unlinks and renames
  // Each op through `dir` or `second_dir` at random: two clients taking
  // turns, exact only if neither caches names or attributes (noac).
  bool alternate = false;
  bool verbose = false;     // print every op as it runs
  // Testing the tool: the model forgets to move a renamed directory's
  // contents, so a run must fail.
  bool break_model_rename = false;
};

std::optional<std::string> ParseTreeOptions(const std::vector<std::string>& args,
                                            TreeOptions& options);
std::string TreeUsage();

class TreeTorture {
 public:
  explicit TreeTorture(TreeOptions options);
  ~TreeTorture();
  TreeTorture(const TreeTorture&) = delete;
  TreeTorture& operator=(const TreeTorture&) = delete;

  // Runs options.ops operations; kPassed or kFailed (torture.h).
  int Run(std::ostream& out);

 private:
  enum class Type { kFile, kDir, kSymlink };
  // A file's content and attributes, shared by its hard links.
  struct Inode {
    std::string data;
    mode_t mode = 0644;
    int nlink = 0;
  };
  struct Node {
    Type type = Type::kFile;
    std::shared_ptr<Inode> file;  // kFile
    std::string target;           // kSymlink
    mode_t mode = 0755;           // kDir
  };
  struct Held {
    int fd = -1;
    std::shared_ptr<Inode> file;
  };
  struct Failure {
    std::string what;
  };

  void Step();
  void OpCreate();
  void OpRewrite();
  void OpUnlink();
  void OpMkdir();
  void OpRmdir();
  void OpRename();
  void OpLink();
  void OpSymlink();
  void OpChmod();
  void OpStat();
  void OpRead();
  void OpReaddir();
  void OpHold();
  void OpReadHeld();
  void OpRelease();
  void OpRemoveTree();

  // The whole tree against the model, under `root` ("mount", "second
  // mount", "server" in messages).
  void CheckTree(const std::string& root, const std::string& view);
  void CheckNode(const std::string& root, const std::string& view, const std::string& rel,
                 const Node& node, std::map<ino_t, const Inode*>& inodes,
                 std::map<const Inode*, ino_t>& numbers);
  void CheckNames(const std::string& root, const std::string& view, const std::string& rel);
  void CheckStat(const std::string& view, const std::string& rel, const Node& node,
                 const struct stat& st);
  void CheckData(const std::string& view, const std::string& rel, int fd, const Inode& file);

  // The model.
  std::vector<std::string> Paths(bool dirs_only, bool files_only) const;
  std::vector<std::string> Children(const std::string& dir) const;
  int Subdirs(const std::string& dir) const;
  void Remove(const std::string& rel);  // and, for a directory, all under it
  void Move(const std::string& from, const std::string& to);

  // Random choices (from the model only).
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  std::string Pick(const std::vector<std::string>& from) { return from[Below(from.size())]; }
  std::string AnyDir();
  std::string NewName();  // a directory and a name in it, existing or not
  std::string AnyPath();  // existing most of the time
  std::string RandomData();

  // Where the op runs: `dir`, or `second_dir` with --alternate.
  std::string Abs(const std::string& rel) const { return Under(root_, rel); }
  static std::string Under(const std::string& root, const std::string& rel) {
    return rel.empty() ? root : root + "/" + rel;
  }
  // The op's outcome (0 or an errno) against what the model expects: one
  // of `expected` (0: success).
  void Expect(const char* call, const std::string& what, int got, std::vector<int> expected);
  [[noreturn]] void Fail(const std::string& what);
  void Log(const std::string& line);

  const TreeOptions options_;
  std::mt19937_64 rng_;
  std::map<std::string, Node> tree_;  // relative path -> node; the root is not in it
  std::vector<Held> held_;            // open on `dir`
  std::string root_;                  // this op's mount: `dir` or `second_dir`
  std::string view_ = "mount";
  int op_ = 0;
  std::deque<std::string> ring_;
  std::ostream* out_ = nullptr;
};

}  // namespace floatmount::torture
