// The `shell` launcher: runs the request's `command` property with an allowed shell.
// The worked example of SDK.md: everything a launcher plugin needs is in this file.
#include <ecm/sdk/sdk.hpp>

#include <algorithm>
#include <charconv>
#include <optional>

namespace {

using namespace ecm::sdk;

// A comma-separated list of port names ("http,admin"); empty items are skipped.
std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// The `ready_when` property: "alive" / "alive:2s" / "alive:500ms", "callback", "port:8080",
// "port:NAME" (a port the engine asked for by name), "log:REGEX" (a stdout line matching).
// Absent: ready as soon as the process exists. `ports`: the assigned ports, empty in validate().
std::optional<ReadinessRule> parse_ready_when(const std::string& text,
                                              const std::map<std::string, int>& ports,
                                              const std::vector<std::string>& port_names) {
  ReadinessRule rule;
  auto colon = text.find(':');
  const std::string kind = text.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : text.substr(colon + 1);
  auto number = [](const std::string& s, std::size_t n, long long& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + n, out);
    return ec == std::errc{} && p == s.data() + n && out >= 0;
  };
  long long n = 0;
  if (kind == "alive") {
    rule.kind = ReadinessRule::Kind::kProcessAlive;
    if (arg.empty()) return rule;
    if (arg.size() > 2 && arg.ends_with("ms") && number(arg, arg.size() - 2, n)) {
      rule.alive_for = std::chrono::milliseconds(n);
    } else if (arg.size() > 1 && arg.ends_with("s") && number(arg, arg.size() - 1, n)) {
      rule.alive_for = std::chrono::seconds(n);
    } else {
      return std::nullopt;
    }
    return rule;
  }
  if (kind == "callback" && arg.empty()) {
    rule.kind = ReadinessRule::Kind::kCallback;
    return rule;
  }
  if (kind == "port" && number(arg, arg.size(), n) && n > 0 && n < 65536) {
    rule.kind = ReadinessRule::Kind::kPort;
    rule.port = static_cast<int>(n);
    return rule;
  }
  if (kind == "port" && std::find(port_names.begin(), port_names.end(), arg) != port_names.end()) {
    rule.kind = ReadinessRule::Kind::kPort;
    auto assigned = ports.find(arg);
    rule.port = assigned == ports.end() ? 1 : assigned->second;  // 1: a placeholder in validate()
    return rule;
  }
  if (kind == "log" && !arg.empty()) {
    rule.kind = ReadinessRule::Kind::kLogLine;
    rule.pattern = arg;
    return rule;
  }
  return std::nullopt;
}

class ShellLauncher final : public LauncherPlugin {
 public:
  explicit ShellLauncher(const PluginConfig& config)
      : default_shell_(config.get_or("shell", "/bin/sh")),
        allowed_shells_(config.list("allowed_shells")),
        default_env_(config.table("env")) {
    if (allowed_shells_.empty()) allowed_shells_ = {default_shell_};
  }

  std::string engine_type() const override { return "shell"; }
  std::vector<std::string> engine_versions() const override { return {}; }

  Status validate(const LaunchRequest& request) const override {
    auto command = request.properties.find("command");
    if (command == request.properties.end() || command->second.empty()) {
      return invalid_request("property 'command' is required (the shell command to run)");
    }
    auto shell = request.properties.find("shell");
    if (shell != request.properties.end() &&
        std::find(allowed_shells_.begin(), allowed_shells_.end(), shell->second) ==
            allowed_shells_.end()) {
      return invalid_request("shell '" + shell->second + "' is not allowed on this node");
    }
    auto ready = request.properties.find("ready_when");
    if (ready != request.properties.end() &&
        !parse_ready_when(ready->second, {}, port_names(request))) {
      return invalid_request("ready_when '" + ready->second +
                             "' is not alive[:DURATION], callback, port:N, port:NAME or log:REGEX");
    }
    return {};
  }

  ReadinessRule readiness(const LaunchRequest& request,
                          const LaunchContext& context) const override {
    auto ready = request.properties.find("ready_when");
    if (ready == request.properties.end()) return {};
    return parse_ready_when(ready->second, context.ports, port_names(request))
        .value_or(ReadinessRule{});
  }

  // `ports` = "NAME,...": listening sockets handed over as fds 3, 4, ...; `reserved_ports` =
  // "NAME,...": port numbers from the node's range for a command that binds itself. Either way
  // the command finds each number in $ECM_PORT_<NAME>.
  std::vector<PortRequest> ports(const LaunchRequest& request) const override {
    std::vector<PortRequest> out;
    auto add = [&](const char* property, PortRequest::Mode mode) {
      auto it = request.properties.find(property);
      if (it == request.properties.end()) return;
      for (auto& name : split_names(it->second))
        out.push_back({name, mode});
    };
    add("ports", PortRequest::Mode::kSocket);
    add("reserved_ports", PortRequest::Mode::kReserved);
    return out;
  }

  Result<LaunchSpec> build(const LaunchRequest& request, const LaunchContext&) const override {
    auto status = validate(request);
    if (!status.ok()) return status.error();
    auto shell = request.properties.find("shell");
    LaunchSpec spec;
    spec.executable = shell != request.properties.end() ? shell->second : default_shell_;
    spec.argv = {spec.executable, "-c", request.properties.at("command")};
    spec.env = default_env_;
    for (const auto& [k, v] : request.env)
      spec.env[k] = v;
    return spec;
  }

 private:
  std::vector<std::string> port_names(const LaunchRequest& request) const {
    std::vector<std::string> names;
    for (const auto& p : ports(request))
      names.push_back(p.name);
    return names;
  }

  std::string default_shell_;
  std::vector<std::string> allowed_shells_;
  std::map<std::string, std::string> default_env_;
};

LauncherPlugin* create_launcher(const PluginConfig& config) {
  return new ShellLauncher(config);
}

const PluginDescriptor kDescriptor{ECM_SDK_DESCRIPTOR_HEAD, "shell", "1.2.0", kLauncherKind,
                                   &create_launcher,        nullptr, nullptr, nullptr};

}  // namespace

ECM_PLUGIN(kDescriptor)
