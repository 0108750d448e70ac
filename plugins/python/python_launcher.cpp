// The `python` launcher: runs the engine program shipped with this plugin (ecm_python_engine.py)
// with a Python 3 interpreter. The engine serves a line protocol on a listening socket the host
// binds for it (port `main`), and ends Starting by calling back Unlock with its address.
#include <ecm/sdk/sdk.hpp>

#include <charconv>
#include <filesystem>
#include <optional>
#include <stdexcept>

namespace {

using namespace ecm::sdk;

// The work-dir file the request's `code` is written to; the engine runs it before it reports
// ready. A file, not an argument: code can be long, and argv is visible to every user of the node.
constexpr const char* kInitFile = "ecm_python_init.py";

// "500ms", "30s", "5m", "1h": a positive count with a unit (the ECM's config style).
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  struct Unit {
    const char* suffix;
    long long ms;
  };
  // "ms" before "s" and "m": the longest suffix that matches wins.
  for (const Unit& u : {Unit{"ms", 1}, Unit{"s", 1000}, Unit{"m", 60'000}, Unit{"h", 3'600'000}}) {
    const std::string suffix = u.suffix;
    if (text.size() <= suffix.size() || !text.ends_with(suffix)) continue;
    const std::size_t n = text.size() - suffix.size();
    long long count = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + n, count);
    if (ec != std::errc{} || p != text.data() + n || count <= 0) return std::nullopt;
    if (count > 24LL * 3'600'000 / u.ms) return std::nullopt;  // a day at most: a typo otherwise
    return std::chrono::milliseconds(count * u.ms);
  }
  return std::nullopt;
}

// A path the host will exec or the interpreter will open: absolute, and there at load, so a wrong
// config stops the ECM at start instead of failing every launch later.
std::string required_file(const PluginConfig& config, const std::string& key,
                          std::optional<std::string> fallback, const std::string& what) {
  auto value = config.get(key);
  if (!value) value = fallback;
  if (!value || value->empty()) {
    throw std::runtime_error("config key '" + key + "' is required: " + what);
  }
  const std::filesystem::path path(*value);
  if (!path.is_absolute()) {
    throw std::runtime_error("config key '" + key + "' = '" + *value +
                             "' must be an absolute path (" + what + ")");
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw std::runtime_error("config key '" + key + "' = '" + *value + "': no such file (" + what +
                             ")");
  }
  return *value;
}

class PythonLauncher final : public LauncherPlugin {
 public:
  explicit PythonLauncher(const PluginConfig& config)
      : python_(required_file(config, "python", "/usr/bin/python3", "the Python 3 interpreter")),
        engine_program_(required_file(
            config, "engine_program", std::nullopt,
            "the absolute path of ecm_python_engine.py, installed next to python.so (the host "
            "loads a private copy of the plugin, so the plugin cannot find it by itself)")),
        default_env_(config.table("env")) {
    for (const auto& [key, value] : config.values) {
      if (key == "python" || key == "engine_program" || key.starts_with("env.")) continue;
      if (key == "heartbeat_interval") {
        auto d = parse_duration(value);
        if (!d) {
          throw std::runtime_error("config key 'heartbeat_interval' = '" + value +
                                   "' is not a duration such as \"10s\" or \"500ms\"");
        }
        heartbeat_interval_ = std::to_string(d->count()) + "ms";
        continue;
      }
      throw std::runtime_error("unknown config key '" + key +
                               "' (known: python, engine_program, heartbeat_interval, [env])");
    }
    if (!config.lists.empty()) {
      throw std::runtime_error("config key '" + config.lists.begin()->first +
                               "' is an array; the python plugin takes none");
    }
  }

  std::string engine_type() const override { return "python"; }
  std::vector<std::string> engine_versions() const override { return {}; }

  // Properties are the plugin's own settings: an unknown one is most likely a typo, and ignoring
  // it would start an engine that silently lacks what the caller asked for. Labels carry the rest.
  Status validate(const LaunchRequest& request) const override {
    for (const auto& [key, value] : request.properties) {
      if (key == "code") continue;
      if (key == "ready_timeout") {
        if (!parse_duration(value)) {
          return invalid_request("property 'ready_timeout' = '" + value +
                                 "' is not a duration between 1ms and 24h such as \"30s\"");
        }
        continue;
      }
      return invalid_request("property '" + key +
                             "' is not known to the python engine (known: code, ready_timeout)");
    }
    return {};
  }

  // One listening socket, bound by the host and handed over as fd 3: the port is the engine's from
  // the start, with no window in which another process could take it.
  std::vector<PortRequest> ports(const LaunchRequest&) const override {
    return {{"main", PortRequest::Mode::kSocket}};
  }

  // Ready when the engine says so: after its socket is served and its `code` has run.
  ReadinessRule readiness(const LaunchRequest& request, const LaunchContext&) const override {
    ReadinessRule rule;
    rule.kind = ReadinessRule::Kind::kCallback;
    auto timeout = request.properties.find("ready_timeout");
    if (timeout != request.properties.end()) {
      rule.timeout = parse_duration(timeout->second).value_or(std::chrono::milliseconds{0});
    }
    return rule;
  }

  Result<LaunchSpec> build(const LaunchRequest& request,
                           const LaunchContext& context) const override {
    auto status = validate(request);
    if (!status.ok()) return status.error();
    LaunchSpec spec;
    spec.executable = python_;
    // -u: every log line reaches logs/stdout as it is written, not when a buffer fills.
    spec.argv = {python_, "-u", engine_program_};
    auto code = request.properties.find("code");
    if (code != request.properties.end() && !code->second.empty()) {
      spec.files[kInitFile] = code->second;
      spec.argv.push_back("--init");
      spec.argv.push_back(context.work_dir + "/" + kInitFile);
    }
    spec.env = default_env_;
    if (!heartbeat_interval_.empty()) spec.env["ECM_HEARTBEAT_INTERVAL"] = heartbeat_interval_;
    for (const auto& [k, v] : request.env)
      spec.env[k] = v;
    return spec;
  }

 private:
  std::string python_;
  std::string engine_program_;
  std::map<std::string, std::string> default_env_;
  std::string heartbeat_interval_;  // empty: the engine's default
};

LauncherPlugin* create_launcher(const PluginConfig& config) {
  return new PythonLauncher(config);
}

const PluginDescriptor kDescriptor{ECM_SDK_DESCRIPTOR_HEAD, "python", "1.0.0", kLauncherKind,
                                   &create_launcher,        nullptr,  nullptr, nullptr};

}  // namespace

ECM_PLUGIN(kDescriptor)
