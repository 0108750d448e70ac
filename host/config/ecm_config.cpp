#include "config/ecm_config.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <spdlog/common.h>
#include <spdlog/fmt/fmt.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <tuple>
#include <utility>

#include "config/toml_reader.hpp"
#include "ecm/core/log_rotation.hpp"
#include "ecm/core/names.hpp"

#include <stdexcept>

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

// The token in `file`: refused unless a regular file of mode 0600 or stricter holding a token
// (trailing white space dropped).
std::string read_token_file(TomlReader& t, const std::filesystem::path& file) {
  const auto bad = [&](const std::string& why) {
    t.fail("token_file", file.string() + ": " + why);
  };
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) bad(std::strerror(errno));
  std::string token;
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  if (stat_ok && S_ISREG(st.st_mode) && (st.st_mode & 077) == 0 && st.st_size <= 4096) {
    token.resize(static_cast<std::size_t>(st.st_size));
    const auto n = ::read(fd, token.data(), token.size());
    token.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  ::close(fd);
  if (!stat_ok || !S_ISREG(st.st_mode)) bad("not a regular file");
  if ((st.st_mode & 077) != 0) {
    bad(fmt::format("mode {:04o}: group and others must have no access (chmod 600)",
                    st.st_mode & 07777));
  }
  if (st.st_size > 4096) bad("larger than 4KiB: not a token");
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
    token.pop_back();
  if (token.empty()) bad("empty");
  return token;
}

void read_server(TomlReader& t, EcmConfig& c, const std::filesystem::path& base) {
  if (auto l = read_listen(t, "listen")) std::tie(c.listen_host, c.listen_port) = *l;
  if (auto l = read_listen(t, "callback_listen")) {
    std::tie(c.callback_host, c.callback_port) = *l;
  }
  if (auto n = t.integer("io_threads", 1, 64)) c.io_threads = static_cast<unsigned>(*n);
  for (auto [key, path] : {std::pair{"tls_cert", &c.tls_cert}, std::pair{"tls_key", &c.tls_key},
                           std::pair{"tls_client_ca", &c.tls_client_ca}}) {
    if (auto v = t.string(key)) {
      if (v->empty()) t.fail(key, "must not be empty");
      *path = resolve(base, *v);
    }
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    const bool cert = !c.tls_cert.empty();
    t.fail(cert ? "tls_cert" : "tls_key", std::string("tls_cert and tls_key go together: give ") +
                                              (cert ? "tls_key" : "tls_cert") +
                                              " too (TLS) or neither");
  }
  if (!c.tls_client_ca.empty() && c.tls_cert.empty()) {
    t.fail("tls_client_ca",
           "needs tls_cert and tls_key (client certificates are checked over TLS)");
  }
  if (auto v = t.string("token_file")) {
    if (v->empty()) t.fail("token_file", "must not be empty");
    c.token_file = resolve(base, *v);
    c.token = read_token_file(t, c.token_file);
  }
  if (auto v = t.size("max_message_size")) {
    if (*v < 1024 || *v > (1ull << 30)) t.fail("max_message_size", "must be from 1KiB to 1GiB");
    c.max_message_bytes = *v;
  }
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
  if (auto v = t.boolean("watch")) c.watch_plugins = *v;
  if (auto v = t.duration("watch_debounce")) {
    if (v->count() < 10 || *v > std::chrono::minutes(1)) {
      t.fail("watch_debounce", "must be from 10ms to 1m");
    }
    c.watch_debounce = *v;
  }
  if (auto v = t.duration("call_timeout")) c.plugin_call_timeout = *v;  // 0s: no deadline
  t.refuse_unknown_keys();
}

void read_events(TomlReader& t, EcmConfig& c) {
  if (auto v = t.integer("queue_capacity", 16, 1'000'000))
    c.event_queue_capacity = static_cast<std::size_t>(*v);
  t.refuse_unknown_keys();
}

void read_cache(TomlReader& t, EcmConfig& c, const std::filesystem::path& base) {
  if (auto v = t.string("dir")) c.cache_dir = resolve(base, *v);
  if (auto v = t.size("max_size")) c.cache_max_bytes = *v;
  t.refuse_unknown_keys();
}

void read_localization(TomlReader& t, EcmConfig& c) {
  if (auto v = t.boolean("allow_unverified")) c.allow_unverified = *v;
  if (auto v = t.size("max_unpacked_size")) {
    if (*v == 0) t.fail("max_unpacked_size", "must be more than 0B");
    c.max_unpacked_bytes = *v;
  }
  if (auto v = t.integer("max_archive_entries", 1, 10'000'000))
    c.max_archive_entries = static_cast<std::uint64_t>(*v);
  t.refuse_unknown_keys();
}

void read_engines(TomlReader& t, EcmConfig& c, const std::filesystem::path& base) {
  if (auto v = t.duration("stop_grace")) c.stop_grace = *v;
  if (auto v = t.duration("launch_timeout")) {
    if (v->count() == 0) t.fail("launch_timeout", "must be more than 0s");
    c.launch_timeout = *v;
  }
  if (auto v = t.boolean("stop_on_shutdown")) c.stop_on_shutdown = *v;
  if (auto v = t.duration("retention")) c.retention = *v;
  if (auto v = t.string("boot_id_file")) {
    if (v->empty()) t.fail("boot_id_file", "must not be empty");
    c.boot_id_file = resolve(base, *v);
  }
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

void read_users(TomlReader& t, EcmConfig& c) {
  if (auto v = t.string("run_as")) {
    if (*v != "auto" && *v != "requested" && *v != "ecm") {
      t.fail("run_as", "'" + *v + "' is not one of auto, requested, ecm");
    }
    c.run_as = *v;
  }
  auto names = [&](const std::string& key) {
    auto list = t.string_list(key);
    if (!list) return std::vector<std::string>{};
    for (const auto& n : *list) {
      if (!core::is_valid_user_name(n)) t.fail(key, "'" + n + "' is not a valid user name");
    }
    return *list;
  };
  c.user_policy.allow = names("allow");
  c.user_policy.deny = names("deny");
  if (auto v = t.boolean("allow_root")) c.user_policy.allow_root = *v;
  if (auto v = t.integer("min_uid", 0, 4294967295LL)) {
    c.user_policy.min_uid = static_cast<std::uint32_t>(*v);
  }
  t.refuse_unknown_keys();
}

void read_ports(TomlReader& t, EcmConfig& c) {
  if (auto v = t.string("host")) {
    in_addr ignored{};
    if (inet_pton(AF_INET, v->c_str(), &ignored) != 1) {
      t.fail("host", "'" + *v + "' is not an IPv4 address (like 127.0.0.1 or 0.0.0.0)");
    }
    c.port_host = *v;
  }
  if (auto v = t.string("range")) {
    try {
      c.port_range = core::parse_port_range(*v);
    } catch (const std::invalid_argument& e) {
      t.fail("range", "'" + *v + "': " + e.what());
    }
  }
  t.refuse_unknown_keys();
}

// "90%" (or "92.5%"): a percentage of a disk, 1..100.
std::optional<double> read_percent(TomlReader& t, const std::string& key) {
  auto text = t.string(key);
  if (!text) return std::nullopt;
  double v = -1;
  const char* end = text->data() + text->size();
  auto [ptr, ec] = std::from_chars(text->data(), end, v, std::chars_format::fixed);
  if (ec != std::errc() || ptr + 1 != end || *ptr != '%' || !(v >= 1 && v <= 100)) {
    t.fail(key, "'" + *text + "' is not a percentage 1%..100% (like \"90%\")");
  }
  return v;
}

void read_cleanup(TomlReader& t, EcmConfig& c) {
  if (auto v = t.duration("interval")) {
    if (v->count() == 0) t.fail("interval", "must be more than 0s");
    c.cleanup_interval = *v;
  }
  auto high = read_percent(t, "disk_high_watermark");
  auto low = read_percent(t, "disk_low_watermark");
  if (high) c.disk_high_watermark = *high;
  if (low) c.disk_low_watermark = *low;
  if (c.disk_low_watermark >= c.disk_high_watermark) {
    t.fail(low ? "disk_low_watermark" : "disk_high_watermark",
           fmt::format("the low watermark ({}%) must be below the high watermark ({}%)",
                       c.disk_low_watermark, c.disk_high_watermark));
  }
  t.refuse_unknown_keys();
}

void read_logs(TomlReader& t, EcmConfig& c) {
  if (auto v = t.size("rotate_size")) {
    if (*v == 0) t.fail("rotate_size", "must be more than 0B");
    c.log_rotate_size = *v;
  }
  if (auto v = t.integer("rotate_keep", 1, core::kMaxRotatedLogFiles)) {
    c.log_rotate_keep = static_cast<int>(*v);
  }
  if (auto v = t.duration("rotate_check_interval")) {
    if (v->count() == 0) t.fail("rotate_check_interval", "must be more than 0s");
    c.log_rotate_check_interval = *v;
  }
  if (auto v = t.integer("max_read_lines", 1, 1000000)) c.log_max_read_lines = *v;
  t.refuse_unknown_keys();
}

void read_health(TomlReader& t, EcmConfig& c, const std::filesystem::path& base) {
  if (auto v = t.duration("sample_interval")) {
    if (v->count() == 0) t.fail("sample_interval", "must be more than 0s");
    c.health_sample_interval = *v;
  }
  if (auto v = t.integer("cpu_overload_percent", 1, 100)) {
    c.cpu_overload_percent = static_cast<double>(*v);
  }
  if (auto v = t.integer("memory_min_available_percent", 0, 99)) {
    c.memory_min_available_percent = static_cast<double>(*v);
  }
  if (auto v = t.integer("launch_failures_unhealthy", 0, 1000000)) {
    c.launch_failures_unhealthy = static_cast<int>(*v);
  }
  for (auto [key, path] :
       {std::pair{"proc_meminfo", &c.proc_meminfo}, std::pair{"proc_stat", &c.proc_stat},
        std::pair{"proc_loadavg", &c.proc_loadavg}}) {
    if (auto v = t.string(key)) {
      if (v->empty()) t.fail(key, "must not be empty");
      *path = resolve(base, *v);
    }
  }
  t.refuse_unknown_keys();
}

void read_metrics(TomlReader& t, EcmConfig& c) {
  if (auto v = t.string("listen"); v && !v->empty()) {
    std::tie(c.metrics_host, c.metrics_port) = *read_listen(t, "listen");
    c.metrics_enabled = true;
  }
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

void read_rm(TomlReader& t, EcmConfig& c) {
  // An empty address is the same as none: standalone.
  if (auto a = t.string("address"); a && !a->empty()) {
    auto l = read_listen(t, "address");
    if (l->second == 0) t.fail("address", "'" + *a + "' needs a port 1..65535");
    std::tie(c.rm_host, c.rm_port) = *l;
  }
  if (auto v = t.duration("report_interval")) {
    if (v->count() == 0) t.fail("report_interval", "must be more than 0s");
    c.report_interval = *v;
  }
  if (auto v = t.string_list("labels")) {
    for (const auto& kv : *v) {
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) t.fail("labels", "'" + kv + "' is not KEY=VALUE");
      c.rm_labels[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  if (auto v = t.string("ecm_id")) {
    if (!core::is_safe_name(*v)) t.fail("ecm_id", "'" + *v + "' is not a name ([A-Za-z0-9._-])");
    c.ecm_id = *v;
  }
  if (auto a = t.string("advertise_address"); a && !a->empty()) {
    auto l = read_listen(t, "advertise_address");
    if (l->second == 0) t.fail("advertise_address", "'" + *a + "' needs a port 1..65535");
    c.advertise_address = *a;
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
  if (auto t = top.table("server")) read_server(*t, c, base);
  if (auto t = top.table("paths")) read_paths(*t, c, base);
  if (auto t = top.table("plugins")) read_plugins(*t, c, base);
  if (auto t = top.table("events")) read_events(*t, c);
  if (auto t = top.table("cache")) read_cache(*t, c, base);
  if (auto t = top.table("localization")) read_localization(*t, c);
  if (auto t = top.table("engines")) read_engines(*t, c, base);
  if (auto t = top.table("resources")) read_resources(*t, c);
  if (auto t = top.table("users")) read_users(*t, c);
  if (auto t = top.table("ports")) read_ports(*t, c);
  if (auto t = top.table("log")) read_log(*t, c);
  if (auto t = top.table("cleanup")) read_cleanup(*t, c);
  if (auto t = top.table("logs")) read_logs(*t, c);
  if (auto t = top.table("rm")) read_rm(*t, c);
  if (auto t = top.table("health")) read_health(*t, c, base);
  if (auto t = top.table("metrics")) read_metrics(*t, c);
  top.refuse_unknown_keys();
  if (c.cache_dir.empty()) c.cache_dir = c.state_dir / "cache";
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
