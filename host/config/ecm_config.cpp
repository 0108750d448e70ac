#include "config/ecm_config.hpp"

#include <spdlog/common.h>

#include <optional>
#include <tuple>
#include <utility>

#include "config/toml_reader.hpp"
#include "ecm/core/names.hpp"

namespace ecm::host {
namespace {

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
  std::filesystem::path path(p);
  return (path.is_absolute() ? path : base / path).lexically_normal();
}

// "HOST:PORT" with a port 0..65535 (0: any free port).
std::optional<std::pair<std::string, std::uint16_t>> read_listen(TomlReader& t,
                                                                 const std::string& key) {
  auto listen = t.string(key);
  if (!listen) return std::nullopt;
  auto colon = listen->rfind(':');
  if (colon == std::string::npos || colon == 0) t.fail(key, "'" + *listen + "' is not HOST:PORT");
  const auto port_text = listen->substr(colon + 1);
  int port = -1;
  try {
    std::size_t used = 0;
    port = std::stoi(port_text, &used);
    if (used != port_text.size()) port = -1;
  } catch (...) {
    port = -1;
  }
  if (port < 0 || port > 65535) t.fail(key, "'" + port_text + "' is not a port 0..65535");
  return std::pair{listen->substr(0, colon), static_cast<std::uint16_t>(port)};
}

void read_server(TomlReader& t, EcmConfig& c) {
  if (auto l = read_listen(t, "listen")) std::tie(c.listen_host, c.listen_port) = *l;
  if (auto l = read_listen(t, "callback_listen")) {
    std::tie(c.callback_host, c.callback_port) = *l;
  }
  if (auto n = t.integer("io_threads", 1, 64)) c.io_threads = static_cast<unsigned>(*n);
  t.refuse_unknown_keys();
}

void read_paths(TomlReader& t, EcmConfig& c, const std::filesystem::path& base) {
  if (auto v = t.string("work_root")) c.work_root = resolve(base, *v);
  if (auto v = t.string("state_dir")) c.state_dir = resolve(base, *v);
  t.refuse_unknown_keys();
}

void read_plugins(TomlReader& t, EcmConfig& c, const std::filesystem::path& base) {
  if (auto v = t.string("dir")) c.plugin_dir = resolve(base, *v);
  if (auto v = t.string("conf_dir")) c.plugin_conf_dir = resolve(base, *v);
  if (auto v = t.string_list("enabled")) {
    for (const auto& name : *v) {
      if (!core::is_safe_name(name)) t.fail("enabled", "'" + name + "' is not a plugin name");
    }
    c.enabled_plugins = *v;
  }
  t.refuse_unknown_keys();
}

void read_engines(TomlReader& t, EcmConfig& c) {
  if (auto v = t.duration("stop_grace")) c.stop_grace = *v;
  if (auto v = t.duration("launch_timeout")) {
    if (v->count() == 0) t.fail("launch_timeout", "must be more than 0s");
    c.launch_timeout = *v;
  }
  if (auto v = t.boolean("stop_on_shutdown")) c.stop_on_shutdown = *v;
  t.refuse_unknown_keys();
}

void read_resources(TomlReader& t, EcmConfig& c) {
  if (auto v = t.auto_or_size("memory")) {
    if (*v) c.capacity.memory_bytes = **v;
  }
  if (auto v = t.auto_or_count("cores", 1 << 20)) {
    if (*v) c.capacity.cores = **v;
  }
  if (auto v = t.integer("instances", 0, 1 << 20))
    c.capacity.instances = static_cast<std::uint64_t>(*v);
  if (auto v = t.size("protected_memory")) c.protected_.memory_bytes = *v;
  if (auto v = t.integer("protected_cores", 0, 1 << 20))
    c.protected_.cores = static_cast<std::uint64_t>(*v);
  if (auto v = t.size("engine_memory")) c.engine_default.memory_bytes = *v;
  if (auto v = t.integer("engine_cores", 0, 1 << 20))
    c.engine_default.cores = static_cast<std::uint64_t>(*v);
  t.refuse_unknown_keys();
}

void read_log(TomlReader& t, EcmConfig& c) {
  if (auto v = t.string("level")) {
    if (spdlog::level::from_str(*v) == spdlog::level::off && *v != "off") {
      t.fail("level", "'" + *v + "' is not one of trace, debug, info, warn, error, critical, off");
    }
    c.log_level = *v;
  }
  t.refuse_unknown_keys();
}

EcmConfig read(const toml::table& root, const std::string& source_name,
               const std::filesystem::path& base) {
  EcmConfig c;
  c.work_root = resolve(base, "work");
  c.state_dir = resolve(base, "state");
  c.plugin_dir = resolve(base, "plugins");
  c.plugin_conf_dir = resolve(base, "plugins");
  c.capacity = core::detect_machine_resources();
  c.capacity.instances = 200;
  TomlReader top(root, source_name);
  if (auto t = top.table("server")) read_server(*t, c);
  if (auto t = top.table("paths")) read_paths(*t, c, base);
  if (auto t = top.table("plugins")) read_plugins(*t, c, base);
  if (auto t = top.table("engines")) read_engines(*t, c);
  if (auto t = top.table("resources")) read_resources(*t, c);
  if (auto t = top.table("log")) read_log(*t, c);
  top.refuse_unknown_keys();
  return c;
}

}  // namespace

EcmConfig load_config(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    throw ConfigError(file.string(), 0, "", "cannot read the config file (missing or not a file)");
  }
  auto abs = std::filesystem::absolute(file);
  auto root = TomlReader::parse_file(abs);
  auto c = read(root, file.string(), abs.parent_path());
  c.source = abs;
  return c;
}

EcmConfig parse_config(std::string_view text, const std::string& source_name,
                       const std::filesystem::path& base_dir) {
  auto root = TomlReader::parse_text(text, source_name);
  auto c = read(root, source_name, base_dir);
  c.source = source_name;
  return c;
}

}  // namespace ecm::host
