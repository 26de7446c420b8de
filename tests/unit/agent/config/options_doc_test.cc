// docs/options.md documents every mount option: each name of the option
// table (agent/config/mount_option_table.cc, the one source of truth for -o, the
// config file and --help) must appear in it as a code span, `name` or
// `name=VALUE`, in a heading or in a table cell. An option added to the
// table without a line in the doc fails here, so the doc cannot fall
// behind the program.
//
// The doc is found through FLOATMOUNT_SOURCE_DIR (tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "agent/config/mount_options.h"

namespace floatmount::agent {
namespace {

const std::string kDocPath = std::string(FLOATMOUNT_SOURCE_DIR) + "/docs/options.md";

std::string ReadDoc() {
  std::ifstream in(kDocPath);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The places where an option counts as documented: the text of each
// Markdown heading ("## ...") and of each table cell ("| a | b |"; an
// escaped "\|" does not end a cell).
std::vector<std::string> HeadingsAndCells(const std::string& doc) {
  std::vector<std::string> places;
  std::istringstream lines(doc);
  std::string line;
  bool in_code_block = false;
  while (std::getline(lines, line)) {
    if (line.rfind("```", 0) == 0) in_code_block = !in_code_block;
    if (in_code_block) continue;
    if (line.rfind("#", 0) == 0) {
      places.push_back(line);
    } else if (line.rfind("|", 0) == 0) {
      std::string cell;
      for (size_t i = 1; i < line.size(); ++i) {
        if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
          cell += '|';
          ++i;
        } else if (line[i] == '|') {
          places.push_back(cell);
          cell.clear();
        } else {
          cell += line[i];
        }
      }
      if (!cell.empty()) places.push_back(cell);
    }
  }
  return places;
}

// True if `place` holds `name` or `name=...` as a code span.
bool NamesOption(const std::string& place, const std::string& name) {
  const std::string open = "`" + name;
  for (size_t at = place.find(open); at != std::string::npos; at = place.find(open, at + 1)) {
    const size_t next = at + open.size();
    if (next < place.size() && (place[next] == '`' || place[next] == '=')) return true;
  }
  return false;
}

TEST(OptionsDocTest, HeadingsAndCellsAreFound) {
  const auto places = HeadingsAndCells(
      "## `a`\n"
      "text `b`\n"
      "| `c=N` | x \\| `d` |\n"
      "```\n"
      "| `e` |\n"
      "```\n");
  ASSERT_EQ(places.size(), 3u);
  EXPECT_TRUE(NamesOption(places[0], "a"));
  EXPECT_TRUE(NamesOption(places[1], "c"));
  EXPECT_TRUE(NamesOption(places[2], "d"));
  EXPECT_FALSE(NamesOption("c=N, not as code", "c"));
  EXPECT_FALSE(NamesOption("`cache_size`", "cache"));  // a longer name is not the option
}

TEST(OptionsDocTest, EveryOptionOfTheTableIsDocumented) {
  const std::string doc = ReadDoc();
  ASSERT_FALSE(doc.empty()) << "cannot read " << kDocPath;
  const std::vector<std::string> places = HeadingsAndCells(doc);
  ASSERT_FALSE(MountOptionTable().empty());
  for (const MountOption& option : MountOptionTable()) {
    bool found = false;
    for (const std::string& place : places) found = found || NamesOption(place, option.name);
    EXPECT_TRUE(found) << "the mount option '" << option.name
                       << "' is in agent/config/mount_option_table.cc but not in " << kDocPath
                       << ": give it a row (`" << option.name
                       << "` in a table cell) with its default and what it is for";
  }
}

}  // namespace
}  // namespace floatmount::agent
