// One plugin shared object, loaded from a private content-addressed copy and checked before use.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include <boost/dll/shared_library.hpp>

#include "ecm/sdk/plugin.hpp"

namespace ecm::host {

class PluginLoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PluginLibrary {
  std::string name;
  std::string version;
  std::uint32_t abi_major = 0;
  std::uint32_t abi_minor = 0;
  std::uint32_t kinds = 0;
  std::string build_tag;
  std::string sha256;
  std::filesystem::path source_path;  // the file the administrator installed
  std::filesystem::path loaded_path;  // the private copy actually dlopen'ed
  std::chrono::system_clock::time_point loaded_at;
  // Everything the plugin made holds this (library-holding deleters): the library is unloaded
  // when the last plugin-made object is gone.
  std::shared_ptr<boost::dll::shared_library> library;
  const sdk::PluginDescriptor* descriptor = nullptr;  // points into `library`
};

// Copies `source` to `<private_dir>/<name>-<sha256>.so` (dlopen of a path already open would return
// the old handle), loads the copy, and checks the descriptor: the symbol exists, the ABI major
// matches (read before anything else of the library is used), the build tag matches, the name is
// `name`. Throws PluginLoadError with a message naming the file and what is wrong.
std::shared_ptr<PluginLibrary> open_plugin_library(const std::string& name,
                                                   const std::filesystem::path& source,
                                                   const std::filesystem::path& private_dir);

}  // namespace ecm::host
