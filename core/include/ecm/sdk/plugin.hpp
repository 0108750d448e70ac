// What a plugin library exports: one descriptor, found by the host under the alias
// `ecm_plugin_descriptor` (see ECM_PLUGIN below).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/dll/alias.hpp>

#include "ecm/sdk/hook.hpp"
#include "ecm/sdk/launcher.hpp"
#include "ecm/sdk/listener.hpp"
#include "ecm/sdk/localizer.hpp"
#include "ecm/sdk/version.hpp"

namespace ecm::sdk {

// The plugin's own config file (conf/plugins/NAME.toml), flattened by the host: scalars under their
// dotted key ("env.LANG"), arrays of scalars as lists. Values are given as strings.
struct PluginConfig {
  std::map<std::string, std::string> values;
  std::map<std::string, std::vector<std::string>> lists;

  std::optional<std::string> get(const std::string& key) const {
    auto it = values.find(key);
    if (it == values.end()) return std::nullopt;
    return it->second;
  }
  std::string get_or(const std::string& key, std::string fallback) const {
    auto v = get(key);
    return v ? *v : fallback;
  }
  std::vector<std::string> list(const std::string& key) const {
    auto it = lists.find(key);
    return it == lists.end() ? std::vector<std::string>{} : it->second;
  }
  // Every scalar under `prefix.` with the prefix removed ("env" -> {"LANG": "C.UTF-8"}).
  std::map<std::string, std::string> table(const std::string& prefix) const {
    std::map<std::string, std::string> out;
    const std::string p = prefix + ".";
    for (auto it = values.lower_bound(p); it != values.end() && it->first.rfind(p, 0) == 0; ++it) {
      out.emplace(it->first.substr(p.size()), it->second);
    }
    return out;
  }
};

// The kinds a plugin may provide. A plugin provides one or several.
enum PluginKind : std::uint32_t {
  kLauncherKind = 1u << 0,
  kHookKind = 1u << 1,       // ABI 1.2: before/after launch hooks
  kListenerKind = 1u << 2,   // ABI 1.3: an ECM event listener
  kLocalizerKind = 1u << 3,  // ABI 1.4: a resource localizer (URI schemes)
};

// Layout rule: abi_major and abi_minor stay the first two fields forever (the host reads them
// before anything else); new fields are only appended, with an ABI minor bump.
struct PluginDescriptor {
  std::uint32_t abi_major;
  std::uint32_t abi_minor;
  const char* build_tag;  // ECM_SDK_BUILD_TAG as the plugin was compiled
  const char* name;       // must equal the name the host loads it under
  const char* version;    // the plugin's own version, free form ("1.4.2")
  std::uint32_t kinds;    // PluginKind bits
  // Creates the launcher; the host owns the object and deletes it. Null when kinds lacks launcher.
  LauncherPlugin* (*create_launcher)(const PluginConfig& config);
  // ABI 1.2. Creates the launch hook; null when kinds lacks kHookKind. The host reads this field
  // only from plugins built against 1.2 or later.
  LaunchHook* (*create_hook)(const PluginConfig& config);
  // ABI 1.3. Creates the event listener; null when kinds lacks kListenerKind. Read only from
  // plugins built against 1.3 or later.
  EventListener* (*create_listener)(const PluginConfig& config);
  // ABI 1.4. Creates the resource localizer; null when kinds lacks kLocalizerKind. Read only from
  // plugins built against 1.4 or later.
  ResourceLocalizer* (*create_localizer)(const PluginConfig& config);
};

}  // namespace ecm::sdk

// Declares the plugin's descriptor. Use exactly once per plugin library, at namespace scope:
//   ECM_PLUGIN(my_descriptor)
// where `my_descriptor` is a `const ecm::sdk::PluginDescriptor` with static storage.
#define ECM_PLUGIN(descriptor) BOOST_DLL_ALIAS(descriptor, ecm_plugin_descriptor)

// Fills the fixed head of a descriptor for the SDK this plugin is compiled against.
#define ECM_SDK_DESCRIPTOR_HEAD ::ecm::sdk::kAbiMajor, ::ecm::sdk::kAbiMinor, ECM_SDK_BUILD_TAG
