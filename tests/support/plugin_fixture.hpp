// A test of one built plugin: its library loaded straight from ECM_PLUGIN_DIR with Boost.DLL, its
// descriptor, and a temp dir of its own for each test. Objects a test makes from the descriptor
// must be locals of the test body: deleted before the library handle.
#pragma once

#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <boost/dll/shared_library.hpp>

#include "ecm/sdk/plugin.hpp"

namespace ecm::test {

class PluginFixture : public ::testing::Test {
 protected:
  // `name`: the plugin's file is ECM_PLUGIN_DIR/<name>.so; its tests' dirs are named after it.
  explicit PluginFixture(std::string name) : name_(std::move(name)) {}

  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("ecm-" + name_ + "-" + std::to_string(::getpid()) + "-" + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    library_ = std::make_unique<boost::dll::shared_library>(
        (std::filesystem::path(ECM_PLUGIN_DIR) / (name_ + ".so")).string(),
        boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
    descriptor_ = &library_->get_alias<const sdk::PluginDescriptor>("ecm_plugin_descriptor");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string name_;
  std::filesystem::path dir_;
  std::unique_ptr<boost::dll::shared_library> library_;
  const sdk::PluginDescriptor* descriptor_ = nullptr;
};

// A whole file's bytes ("" when it cannot be read).
inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace ecm::test
