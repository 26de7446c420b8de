// The op generator, the tree model and the checks of tree_torture.h.
// Threads: single-threaded.
#include "tests/torture/tree_torture.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <set>
#include <sstream>
#include <utility>

#include "tests/torture/args.h"
#include "tests/torture/torture.h"

namespace floatmount::torture {
namespace {

constexpr size_t kRingSize = 20;
constexpr int kNames = 8;  // n0..n7 in each directory
constexpr size_t kMaxHeld = 4;
constexpr mode_t kFileModes[] = {0600, 0644, 0640, 0755};
constexpr mode_t kDirModes[] = {0755, 0700, 0775};

std::string Parent(const std::string& rel) {
  const auto slash = rel.rfind('/');
  return slash == std::string::npos ? "" : rel.substr(0, slash);
}

std::string Join(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

bool Within(const std::string& rel, const std::string& dir) {
  return rel.size() > dir.size() && rel.compare(0, dir.size(), dir) == 0 && rel[dir.size()] == '/';
}

std::string ErrnoName(int err) {
  if (err == 0) return "success";
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : std::to_string(err);
}

std::string Octal(mode_t m) {
  std::ostringstream s;
  s << std::oct << (m & 07777);
  return s.str();
}

// The whole content of `fd` from offset 0, or nullopt with errno set.
std::optional<std::string> ReadAll(int fd) {
  std::string data;
  char buf[4096];
  for (off_t off = 0;;) {
    const ssize_t n = pread(fd, buf, sizeof buf, off);
    if (n < 0) return std::nullopt;
    if (n == 0) return data;
    data.append(buf, static_cast<size_t>(n));
    off += n;
  }
}

// "N bytes "abcdefgh..."" for the op log: enough to tell contents apart.
std::string Sample(const std::string& data) {
  return std::to_string(data.size()) + " bytes \"" + data.substr(0, 8) + "\"";
}

// A call's outcome: 0, or the errno of its failure (read at once, before
// anything else may change it).
int Outcome(long rc) { return rc < 0 ? errno : 0; }

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string TreeUsage() {
  return "usage: tree_torture --dir D [--second-dir D2] [--server-dir S] [--seed N] [--ops N]\n"
         "                    [--max-entries N] [--check-every N] [--no-held] [--alternate]\n"
         "                    [--verbose]\n"
         "                    [--break-model-rename]\n"
         "Random namespace operations under D checked against a model of the tree; the\n"
         "whole tree is compared every --check-every ops and at the end through D, D2\n"
         "(a second mount, noac) and S (the server's export). Exit 0 passed, 1 failed,\n"
         "2 usage. --alternate runs each op through D or D2 at random (mount both noac).\n";
}

std::optional<std::string> ParseTreeOptions(const std::vector<std::string>& args, TreeOptions& o) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    uint64_t n = 0;
    if (a == "--dir") {
      if (!TakeValue(args, i, o.dir)) return "--dir needs a value";
    } else if (a == "--second-dir") {
      if (!TakeValue(args, i, o.second_dir)) return "--second-dir needs a value";
    } else if (a == "--server-dir") {
      if (!TakeValue(args, i, o.server_dir)) return "--server-dir needs a value";
    } else if (a == "--seed") {
      if (!TakeNumber(args, i, o.seed)) return "--seed needs a number";
    } else if (a == "--ops") {
      if (!TakeNumber(args, i, n) || n > 100000000) return "--ops needs a number";
      o.ops = static_cast<int>(n);
    } else if (a == "--max-entries") {
      if (!TakeNumber(args, i, n) || n < 4 || n > 10000)
        return "--max-entries needs a number in 4..10000";
      o.max_entries = n;
    } else if (a == "--check-every") {
      if (!TakeNumber(args, i, n) || n < 1 || n > 1000000)
        return "--check-every needs a positive number";
      o.check_every = static_cast<int>(n);
    } else if (a == "--no-held") {
      o.held = false;
    } else if (a == "--alternate") {
      o.alternate = true;
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--break-model-rename") {
      o.break_model_rename = true;
    } else {
      return "unknown argument " + a;
    }
  }
  if (o.dir.empty()) return "--dir is required";
  if (o.alternate && o.second_dir.empty()) return "--alternate needs --second-dir";
  return std::nullopt;
}

TreeTorture::TreeTorture(TreeOptions options)
    : options_(std::move(options)), rng_(options_.seed), root_(options_.dir) {}

TreeTorture::~TreeTorture() {
  for (const Held& h : held_) close(h.fd);
}

int TreeTorture::Run(std::ostream& out) {
  out_ = &out;
  umask(0);  // modes are the model's exactly
  try {
    // Each seed in a directory of its own, made here.
    if (mkdir(options_.dir.c_str(), 0755) != 0 && errno != EEXIST) {
      Fail("mkdir " + options_.dir + ": " + ErrnoName(errno));
    }
    DIR* d = opendir(options_.dir.c_str());
    if (d == nullptr) Fail("opendir " + options_.dir + ": " + ErrnoName(errno));
    int entries = 0;
    while (const dirent* e = readdir(d))
      entries += std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0;
    closedir(d);
    if (entries != 0) Fail(options_.dir + " is not empty");
    for (op_ = 1; op_ <= options_.ops; ++op_) {
      Step();
      if (op_ % options_.check_every == 0) {
        CheckTree(options_.dir, "mount");
        if (!options_.second_dir.empty()) CheckTree(options_.second_dir, "second mount");
        if (!options_.server_dir.empty()) CheckTree(options_.server_dir, "server");
      }
    }
    --op_;
    for (const Held& h : held_) CheckData("mount", "(held)", h.fd, *h.file);
    CheckTree(options_.dir, "mount");
    if (!options_.second_dir.empty()) CheckTree(options_.second_dir, "second mount");
    if (!options_.server_dir.empty()) CheckTree(options_.server_dir, "server");
  } catch (const Failure& f) {
    out << "tree_torture: FAILED, seed " << options_.seed << ", op " << op_ << ": " << f.what
        << "\nthe last ops:\n";
    for (const auto& line : ring_) out << "  " << line << "\n";
    out << "replay: tree_torture --seed " << options_.seed << " --ops " << op_
        << " --dir <empty dir> [--verbose]\n";
    return kFailed;
  }
  out << "tree_torture: seed " << options_.seed << ", " << options_.ops << " ops passed, "
      << tree_.size() << " names at the end\n";
  return kPassed;
}

void TreeTorture::Step() {
  // Held descriptors stay on the first mount (another mount's change need
  // not show through a descriptor opened before it).
  const bool second = options_.alternate && Below(2) == 1;
  root_ = second ? options_.second_dir : options_.dir;
  view_ = second ? "second mount" : "mount";
  const bool full = tree_.size() >= options_.max_entries;
  // Weights; the ops that make names give way to removals when full.
  struct Choice {
    int weight;
    void (TreeTorture::*op)();
  };
  const Choice choices[] = {
      {full ? 2 : 10, &TreeTorture::OpCreate},
      {5, &TreeTorture::OpRewrite},
      {full ? 14 : 7, &TreeTorture::OpUnlink},
      {full ? 1 : 6, &TreeTorture::OpMkdir},
      {full ? 8 : 5, &TreeTorture::OpRmdir},
      {14, &TreeTorture::OpRename},
      {full ? 1 : 5, &TreeTorture::OpLink},
      {full ? 1 : 3, &TreeTorture::OpSymlink},
      {4, &TreeTorture::OpChmod},
      {14, &TreeTorture::OpStat},
      {7, &TreeTorture::OpRead},
      {7, &TreeTorture::OpReaddir},
      {options_.held && !second ? 3 : 0, &TreeTorture::OpHold},
      {options_.held && !second ? 4 : 0, &TreeTorture::OpReadHeld},
      {options_.held && !second ? 3 : 0, &TreeTorture::OpRelease},
      {full ? 3 : 1, &TreeTorture::OpRemoveTree},
  };
  int total = 0;
  for (const Choice& c : choices) total += c.weight;
  int r = static_cast<int>(Below(static_cast<uint64_t>(total)));
  for (const Choice& c : choices) {
    if (r < c.weight) return (this->*c.op)();
    r -= c.weight;
  }
}

// --- the model -------------------------------------------------------------

std::vector<std::string> TreeTorture::Paths(bool dirs_only, bool files_only) const {
  std::vector<std::string> out;
  for (const auto& [rel, node] : tree_) {
    if (dirs_only && node.type != Type::kDir) continue;
    if (files_only && node.type != Type::kFile) continue;
    out.push_back(rel);
  }
  return out;
}

std::vector<std::string> TreeTorture::Children(const std::string& dir) const {
  std::vector<std::string> out;
  for (const auto& [rel, node] : tree_) {
    if (Parent(rel) == dir) out.push_back(rel.substr(dir.empty() ? 0 : dir.size() + 1));
  }
  return out;
}

int TreeTorture::Subdirs(const std::string& dir) const {
  int n = 0;
  for (const auto& [rel, node] : tree_) n += node.type == Type::kDir && Parent(rel) == dir;
  return n;
}

void TreeTorture::Remove(const std::string& rel) {
  for (auto it = tree_.begin(); it != tree_.end();) {
    if (it->first == rel || Within(it->first, rel)) {
      if (it->second.type == Type::kFile) --it->second.file->nlink;
      it = tree_.erase(it);
    } else {
      ++it;
    }
  }
}

void TreeTorture::Move(const std::string& from, const std::string& to) {
  std::vector<std::pair<std::string, Node>> moved;
  for (auto it = tree_.begin(); it != tree_.end();) {
    const bool under = Within(it->first, from) && !options_.break_model_rename;
    if (it->first == from || under) {
      moved.emplace_back(to + it->first.substr(from.size()), std::move(it->second));
      it = tree_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [rel, node] : moved) tree_[rel] = std::move(node);
}

std::string TreeTorture::AnyDir() {
  std::vector<std::string> dirs = Paths(true, false);
  dirs.push_back("");
  return Pick(dirs);
}

std::string TreeTorture::NewName() {
  const std::string dir = AnyDir();
  return Join(dir, "n" + std::to_string(Below(kNames)));
}

std::string TreeTorture::AnyPath() {
  if (tree_.empty() || Below(4) == 0) return NewName();
  return Pick(Paths(false, false));
}

std::string TreeTorture::RandomData() {
  // Mostly small; sometimes empty or past one page.
  const uint64_t kind = Below(8);
  const size_t len = kind == 0 ? 0 : kind == 1 ? 4096 + Below(9000) : 1 + Below(300);
  std::string data(len, '\0');
  for (char& c : data) c = static_cast<char>('a' + Below(26));
  return data;
}

// --- checks ----------------------------------------------------------------

void TreeTorture::Log(const std::string& line) {
  std::string entry = "#" + std::to_string(op_) + " " + line;
  if (root_ != options_.dir) entry += " [second mount]";
  if (options_.verbose) *out_ << entry << "\n";
  ring_.push_back(std::move(entry));
  if (ring_.size() > kRingSize) ring_.pop_front();
}

void TreeTorture::Fail(const std::string& what) { throw Failure{what}; }

void TreeTorture::Expect(const char* call, const std::string& what, int got,
                         std::vector<int> expected) {
  if (std::find(expected.begin(), expected.end(), got) != expected.end()) return;
  std::string want;
  for (int e : expected) want += (want.empty() ? "" : " or ") + ErrnoName(e);
  Fail(std::string(call) + " " + what + ": expected " + want + ", got " + ErrnoName(got));
}

void TreeTorture::CheckStat(const std::string& view, const std::string& rel, const Node& node,
                            const struct stat& st) {
  const std::string where = rel + " (" + view + ")";
  switch (node.type) {
    case Type::kFile:
      if (!S_ISREG(st.st_mode)) Fail(where + ": not a regular file");
      if (static_cast<size_t>(st.st_size) != node.file->data.size()) {
        Fail(where + ": size " + std::to_string(st.st_size) + ", expected " +
             std::to_string(node.file->data.size()));
      }
      if (static_cast<int>(st.st_nlink) != node.file->nlink) {
        Fail(where + ": " + std::to_string(st.st_nlink) + " links, expected " +
             std::to_string(node.file->nlink));
      }
      if ((st.st_mode & 07777) != node.file->mode) {
        Fail(where + ": mode " + Octal(st.st_mode) + ", expected " + Octal(node.file->mode));
      }
      break;
    case Type::kDir:
      if (!S_ISDIR(st.st_mode)) Fail(where + ": not a directory");
      if ((st.st_mode & 07777) != node.mode) {
        Fail(where + ": mode " + Octal(st.st_mode) + ", expected " + Octal(node.mode));
      }
      if (static_cast<int>(st.st_nlink) != 2 + Subdirs(rel)) {
        Fail(where + ": " + std::to_string(st.st_nlink) + " links, expected " +
             std::to_string(2 + Subdirs(rel)) + " (2 + subdirectories)");
      }
      break;
    case Type::kSymlink:
      if (!S_ISLNK(st.st_mode)) Fail(where + ": not a symlink");
      if (static_cast<size_t>(st.st_size) != node.target.size()) {
        Fail(where + ": symlink size " + std::to_string(st.st_size) + ", expected " +
             std::to_string(node.target.size()));
      }
      break;
  }
}

void TreeTorture::CheckData(const std::string& view, const std::string& rel, int fd,
                            const Inode& file) {
  const auto data = ReadAll(fd);
  if (!data) Fail("read " + rel + " (" + view + "): " + ErrnoName(errno));
  if (*data == file.data) return;
  size_t i = 0;
  while (i < data->size() && i < file.data.size() && (*data)[i] == file.data[i]) ++i;
  // The content is letters: show what differs as text.
  auto at = [i](const std::string& s) { return "\"" + s.substr(std::min(i, s.size()), 16) + "\""; };
  Fail("read " + rel + " (" + view + "): " + std::to_string(data->size()) + " bytes, expected " +
       std::to_string(file.data.size()) + "; from offset " + std::to_string(i) + " got " +
       at(*data) + ", expected " + at(file.data));
}

void TreeTorture::CheckNames(const std::string& root, const std::string& view,
                             const std::string& rel) {
  const std::string path = Under(root, rel);
  DIR* d = opendir(path.c_str());
  if (d == nullptr)
    Fail("opendir " + (rel.empty() ? "." : rel) + " (" + view + "): " + ErrnoName(errno));
  std::set<std::string> got;
  errno = 0;
  while (const dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (!got.insert(name).second) {
      closedir(d);
      Fail("readdir " + (rel.empty() ? "." : rel) + " (" + view + "): " + name + " twice");
    }
    const auto it = tree_.find(Join(rel, name));
    if (it != tree_.end() && e->d_type != DT_UNKNOWN) {
      const unsigned char want = it->second.type == Type::kDir    ? DT_DIR
                                 : it->second.type == Type::kFile ? DT_REG
                                                                  : DT_LNK;
      if (e->d_type != want) {
        closedir(d);
        Fail("readdir " + Join(rel, name) + " (" + view + "): d_type " + std::to_string(e->d_type) +
             ", expected " + std::to_string(want));
      }
    }
  }
  const int err = errno;
  closedir(d);
  if (err != 0) Fail("readdir " + (rel.empty() ? "." : rel) + " (" + view + "): " + ErrnoName(err));
  const auto children = Children(rel);
  const std::set<std::string> want(children.begin(), children.end());
  if (got == want) return;
  std::string missing, extra;
  for (const auto& n : want) {
    if (!got.count(n)) missing += " " + n;
  }
  for (const auto& n : got) {
    if (!want.count(n)) extra += " " + n;
  }
  Fail("readdir " + (rel.empty() ? "." : rel) + " (" + view + "): missing [" + missing +
       " ], unexpected [" + extra + " ]");
}

void TreeTorture::CheckNode(const std::string& root, const std::string& view,
                            const std::string& rel, const Node& node,
                            std::map<ino_t, const Inode*>& inodes,
                            std::map<const Inode*, ino_t>& numbers) {
  const std::string path = Under(root, rel);
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) Fail("lstat " + rel + " (" + view + "): " + ErrnoName(errno));
  CheckStat(view, rel, node, st);
  if (node.type == Type::kSymlink) {
    char buf[4096];
    const ssize_t n = readlink(path.c_str(), buf, sizeof buf);
    if (n < 0) Fail("readlink " + rel + " (" + view + "): " + ErrnoName(errno));
    if (std::string(buf, static_cast<size_t>(n)) != node.target) {
      Fail("readlink " + rel + " (" + view + "): \"" + std::string(buf, static_cast<size_t>(n)) +
           "\", expected \"" + node.target + "\"");
    }
  }
  if (node.type != Type::kFile) return;
  // Hard links: one inode number per file of the model, and no two files
  // with one number.
  const auto [by_number, fresh_number] = inodes.emplace(st.st_ino, node.file.get());
  const auto [by_file, fresh_file] = numbers.emplace(node.file.get(), st.st_ino);
  if (by_number->second != node.file.get() || by_file->second != st.st_ino) {
    Fail(rel + " (" + view + "): inode number " + std::to_string(st.st_ino) +
         (by_number->second != node.file.get()
              ? " is another file's"
              : " is not its other links' " + std::to_string(by_file->second)));
  }
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) Fail("open " + rel + " (" + view + "): " + ErrnoName(errno));
  try {
    CheckData(view, rel, fd, *node.file);
  } catch (...) {
    close(fd);
    throw;
  }
  close(fd);
}

void TreeTorture::CheckTree(const std::string& root, const std::string& view) {
  Log("check the whole tree (" + view + ")");
  CheckNames(root, view, "");
  std::map<ino_t, const Inode*> inodes;
  std::map<const Inode*, ino_t> numbers;
  for (const auto& [rel, node] : tree_) {
    if (node.type == Type::kDir) CheckNames(root, view, rel);
    CheckNode(root, view, rel, node, inodes, numbers);
  }
}

// --- ops -------------------------------------------------------------------

void TreeTorture::OpCreate() {
  const std::string rel = NewName();
  const mode_t mode = kFileModes[Below(std::size(kFileModes))];
  const bool exists = tree_.count(rel) != 0;
  const std::string data = RandomData();
  Log("create " + rel + " mode " + Octal(mode) + ", " + Sample(data) + (exists ? " (exists)" : ""));
  const int fd = open(Abs(rel).c_str(), O_CREAT | O_EXCL | O_WRONLY, mode);
  const int opened = Outcome(fd);
  Expect("open(O_CREAT|O_EXCL)", rel, opened, {exists ? EEXIST : 0});
  if (exists) return;
  auto file = std::make_shared<Inode>();
  file->mode = mode;
  file->nlink = 1;
  tree_[rel] = Node{Type::kFile, file, "", 0};
  const bool wrote = WriteAll(fd, data);
  const int write_err = errno;
  const int closed = Outcome(close(fd));
  if (!wrote) Fail("write " + rel + ": " + ErrnoName(write_err));
  Expect("close", rel, closed, {0});
  file->data = data;
}

void TreeTorture::OpRewrite() {
  const auto files = Paths(false, true);
  if (files.empty()) return OpCreate();
  const std::string rel = Pick(files);
  const std::string data = RandomData();
  Log("rewrite " + rel + " with O_TRUNC, " + Sample(data));
  const int fd = open(Abs(rel).c_str(), O_WRONLY | O_TRUNC);
  const int opened = Outcome(fd);
  Expect("open(O_TRUNC)", rel, opened, {0});
  Inode& file = *tree_[rel].file;
  file.data.clear();
  const bool wrote = WriteAll(fd, data);
  const int write_err = errno;
  const int closed = Outcome(close(fd));
  if (!wrote) Fail("write " + rel + ": " + ErrnoName(write_err));
  Expect("close", rel, closed, {0});
  file.data = data;
}

void TreeTorture::OpUnlink() {
  const std::string rel = AnyPath();
  const auto it = tree_.find(rel);
  const int want = it == tree_.end() ? ENOENT : it->second.type == Type::kDir ? EISDIR : 0;
  Log("unlink " + rel + " (expect " + ErrnoName(want) + ")");
  Expect("unlink", rel, Outcome(unlink(Abs(rel).c_str())), {want});
  if (want == 0) Remove(rel);
}

void TreeTorture::OpMkdir() {
  const std::string rel = NewName();
  const mode_t mode = kDirModes[Below(std::size(kDirModes))];
  const bool exists = tree_.count(rel) != 0;
  Log("mkdir " + rel + " mode " + Octal(mode) + (exists ? " (exists)" : ""));
  Expect("mkdir", rel, Outcome(mkdir(Abs(rel).c_str(), mode)), {exists ? EEXIST : 0});
  if (!exists) tree_[rel] = Node{Type::kDir, nullptr, "", mode};
}

void TreeTorture::OpRmdir() {
  const auto dirs = Paths(true, false);
  const std::string rel = !dirs.empty() && Below(4) != 0 ? Pick(dirs) : AnyPath();
  const auto it = tree_.find(rel);
  std::vector<int> want = {0};
  if (it == tree_.end()) {
    want = {ENOENT};
  } else if (it->second.type != Type::kDir) {
    want = {ENOTDIR};
  } else if (!Children(rel).empty()) {
    want = {ENOTEMPTY, EEXIST};
  }
  Log("rmdir " + rel + " (expect " + ErrnoName(want[0]) + ")");
  Expect("rmdir", rel, Outcome(rmdir(Abs(rel).c_str())), want);
  if (want[0] == 0) Remove(rel);
}

void TreeTorture::OpRename() {
  if (tree_.empty()) return OpMkdir();
  const std::string from = Pick(Paths(false, false));
  // Onto a name that may exist, or over another existing entry.
  const std::string to = Below(3) == 0 ? Pick(Paths(false, false)) : NewName();
  const Node& src = tree_.at(from);
  const auto dst = tree_.find(to);
  std::vector<int> want = {0};
  bool nothing = false;
  if (to == from) {
    nothing = true;
  } else if (Within(to, from)) {
    want = {EINVAL};  // into its own subtree
  } else if (Within(from, to)) {
    want = {ENOTEMPTY};  // over a directory it is in (the VFS checks this first)
  } else if (dst != tree_.end()) {
    const Node& d = dst->second;
    if (src.type != Type::kDir && d.type == Type::kDir) {
      want = {EISDIR};
    } else if (src.type == Type::kDir && d.type != Type::kDir) {
      want = {ENOTDIR};
    } else if (d.type == Type::kDir && !Children(to).empty()) {
      want = {ENOTEMPTY, EEXIST};
    } else if (src.type == Type::kFile && d.type == Type::kFile && src.file == d.file) {
      nothing = true;  // two links of one file: rename(2) does nothing
    }
  }
  Log("rename " + from + " -> " + to + " (expect " + ErrnoName(want[0]) +
      (nothing ? ", no change" : "") + ")");
  Expect("rename", from + " -> " + to, Outcome(rename(Abs(from).c_str(), Abs(to).c_str())), want);
  if (want[0] != 0 || nothing) return;
  if (dst != tree_.end()) Remove(to);
  Move(from, to);
}

void TreeTorture::OpLink() {
  const auto files = Paths(false, true);
  if (files.empty()) return OpCreate();
  const auto dirs = Paths(true, false);
  const bool of_dir = !dirs.empty() && Below(10) == 0;
  const std::string from = of_dir ? Pick(dirs) : Pick(files);
  const std::string to = NewName();
  const bool exists = tree_.count(to) != 0;
  const int want = of_dir ? (exists ? EEXIST : EPERM) : exists ? EEXIST : 0;
  Log("link " + from + " -> " + to + " (expect " + ErrnoName(want) + ")");
  const int got = Outcome(link(Abs(from).c_str(), Abs(to).c_str()));
  // A directory's link fails with EPERM, or EEXIST first when the name exists.
  Expect("link", from + " -> " + to, got,
         of_dir && exists ? std::vector<int>{EEXIST, EPERM} : std::vector<int>{want});
  if (want != 0) return;
  Node node = tree_.at(from);
  ++node.file->nlink;
  tree_[to] = node;
}

void TreeTorture::OpSymlink() {
  const std::string rel = NewName();
  const bool exists = tree_.count(rel) != 0;
  std::string target = Below(2) == 0 ? "../t" + std::to_string(Below(1000)) : NewName();
  if (Below(8) == 0) target += "/" + std::string(Below(200) + 1, 'x');
  Log("symlink " + rel + " -> " + target + (exists ? " (exists)" : ""));
  Expect("symlink", rel, Outcome(symlink(target.c_str(), Abs(rel).c_str())), {exists ? EEXIST : 0});
  if (!exists) tree_[rel] = Node{Type::kSymlink, nullptr, target, 0};
}

void TreeTorture::OpChmod() {
  std::vector<std::string> paths;
  for (const auto& [rel, node] : tree_) {
    if (node.type != Type::kSymlink) paths.push_back(rel);
  }
  if (paths.empty()) return OpMkdir();
  const std::string rel = Pick(paths);
  Node& node = tree_.at(rel);
  const mode_t mode = node.type == Type::kDir ? kDirModes[Below(std::size(kDirModes))]
                                              : kFileModes[Below(std::size(kFileModes))];
  Log("chmod " + rel + " " + Octal(mode));
  Expect("chmod", rel, Outcome(chmod(Abs(rel).c_str(), mode)), {0});
  (node.type == Type::kDir ? node.mode : node.file->mode) = mode;
}

void TreeTorture::OpStat() {
  const std::string rel = AnyPath();
  const auto it = tree_.find(rel);
  Log("lstat " + rel + (it == tree_.end() ? " (missing)" : ""));
  struct stat st {};
  const int got = Outcome(lstat(Abs(rel).c_str(), &st));
  Expect("lstat", rel, got, {it == tree_.end() ? ENOENT : 0});
  if (it != tree_.end()) CheckStat(view_, rel, it->second, st);
}

void TreeTorture::OpRead() {
  const std::string rel = AnyPath();
  const auto it = tree_.find(rel);
  if (it != tree_.end() && it->second.type == Type::kSymlink) return OpStat();
  const int want = it == tree_.end() ? ENOENT : 0;
  Log("read " + rel + (want != 0 ? " (missing)" : ""));
  const bool dir = it != tree_.end() && it->second.type == Type::kDir;
  const int fd = open(Abs(rel).c_str(), O_RDONLY | (dir ? O_DIRECTORY : 0));
  const int opened = Outcome(fd);
  Expect("open", rel, opened, {want});
  if (fd < 0) return;
  try {
    if (!dir) CheckData(view_, rel, fd, *it->second.file);
  } catch (...) {
    close(fd);
    throw;
  }
  close(fd);
}

void TreeTorture::OpReaddir() {
  const std::string rel = AnyDir();
  Log("readdir " + (rel.empty() ? "." : rel));
  CheckNames(root_, view_, rel);
}

void TreeTorture::OpHold() {
  const auto files = Paths(false, true);
  if (held_.size() >= kMaxHeld) return OpReadHeld();
  if (files.empty()) return OpCreate();
  const std::string rel = Pick(files);
  Log("hold " + rel + " open");
  const int fd = open(Abs(rel).c_str(), O_RDONLY);
  const int opened = Outcome(fd);
  Expect("open", rel, opened, {0});
  held_.push_back(Held{fd, tree_.at(rel).file});
}

void TreeTorture::OpReadHeld() {
  if (held_.empty()) return OpHold();
  const size_t i = Below(held_.size());
  const Held& h = held_[i];
  Log("read held descriptor " + std::to_string(i) + " (" + std::to_string(h.file->nlink) +
      " links left)");
  CheckData("mount", "held descriptor " + std::to_string(i), h.fd, *h.file);
}

void TreeTorture::OpRelease() {
  if (held_.empty()) return OpHold();
  const size_t i = Below(held_.size());
  Log("close held descriptor " + std::to_string(i));
  Expect("close", "held descriptor", Outcome(close(held_[i].fd)), {0});
  held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(i));
}

void TreeTorture::OpRemoveTree() {
  const auto dirs = Paths(true, false);
  if (dirs.empty()) return OpRmdir();
  const std::string top = Pick(dirs);
  Log("remove the tree " + top);
  // Deepest first (the model's order: a name sorts before what is under it).
  std::vector<std::string> under;
  for (const auto& [rel, node] : tree_) {
    if (rel == top || Within(rel, top)) under.push_back(rel);
  }
  std::reverse(under.begin(), under.end());
  for (const std::string& rel : under) {
    const bool dir = tree_.at(rel).type == Type::kDir;
    const int got = Outcome(dir ? rmdir(Abs(rel).c_str()) : unlink(Abs(rel).c_str()));
    Expect(dir ? "rmdir" : "unlink", rel, got, {0});
  }
  Remove(top);
}

}  // namespace floatmount::torture
