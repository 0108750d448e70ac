#include "plugins/plugin_config.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "config/config_error.hpp"

using namespace ecm::host;

namespace {
std::filesystem::path write_temp(const std::string& text) {
  auto p = std::filesystem::temp_directory_path() /
           ("ecm-plugin-config-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(p) << text;
  return p;
}
}  // namespace

TEST(PluginConfig, FlattensTablesAndLists) {
  auto p = write_temp(
      "shell = \"/bin/sh\"\nn = 3\nflag = true\nallowed = [\"a\", \"b\"]\n[env]\nLANG = \"C\"\n");
  auto c = load_plugin_config(p);
  std::filesystem::remove(p);
  EXPECT_EQ(c.get("shell"), "/bin/sh");
  EXPECT_EQ(c.get("n"), "3");
  EXPECT_EQ(c.get("flag"), "true");
  EXPECT_EQ(c.get("env.LANG"), "C");
  EXPECT_EQ(c.list("allowed"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.table("env"), (std::map<std::string, std::string>{{"LANG", "C"}}));
  EXPECT_EQ(c.get_or("missing", "x"), "x");
}

TEST(PluginConfig, MissingFileIsEmpty) {
  auto c = load_plugin_config("/nonexistent/x.toml");
  EXPECT_TRUE(c.values.empty());
}

TEST(PluginConfig, NestedArraysAreRefused) {
  auto p = write_temp("a = [[1]]\n");
  EXPECT_THROW(load_plugin_config(p), ConfigError);
  std::filesystem::remove(p);
}
