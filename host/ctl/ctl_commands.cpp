#include "ctl_commands.hpp"

#include <array>

#include "ctl_errors.hpp"

namespace ecm::ctl {
namespace {

constexpr std::array kCommands{
    CommandSpec{
        "launch",
        "launch TYPE --user U [--ticket T] [--version V] [--label K=V]... "
        "[--property K=V]... [--env K=V]... [--memory SIZE] [--cores N] [--timeout DURATION] "
        "[--resource URI[,sha256=HEX][,name=N][,unpack][,public]]...",
        "Launch an engine of TYPE and print it.", define_launch, run_launch},
    CommandSpec{"list", "list [--user U] [--type T] [--status S]",
                "List engines, optionally narrowed by user, type and status.", define_list,
                run_list},
    CommandSpec{"get", "get ID", "Print one engine.", define_get, run_get},
    CommandSpec{"stop", "stop ID | --user U | --type T [--force] [--wait] [--timeout DURATION]",
                "Stop an engine (or every engine of a user and/or type) and print it; with "
                "--wait, wait until it has ended.",
                define_stop, run_stop},
    CommandSpec{"resources", "resources",
                "Print the node's resources: max, protected, locked, used and left.", nullptr,
                run_resources},
    CommandSpec{"logs",
                "logs ID [--stream stdout|stderr|NAME] [--tail N | --from LINE --page N] "
                "[--grep W]... [--exclude W]... [--record-pattern RE] [--caller USER] [-f]",
                "Print an engine's log lines; -f follows them until the engine has ended.",
                define_logs, run_logs},
    CommandSpec{"health", "health",
                "Print the ECM's status and its node's health (Healthy, WARN, UnHealthy, "
                "StockAvailable, StockUnavailable) with the reasons and readings behind it.",
                nullptr, run_health},
    CommandSpec{"metrics", "metrics",
                "Print the ECM's metrics: engines by status and type, launches, stops, launch "
                "latency, plugin calls, resources.",
                nullptr, run_metrics},
    CommandSpec{"plugins", "plugins [list | reload NAME | load PATH | unload NAME [--force]]",
                "List the loaded plugins with the engines holding each generation, or hot-swap "
                "one: reload its file, load a new file, unload it.",
                define_plugins, run_plugins},
    CommandSpec{"cache", "cache [list | prune [--all]]",
                "List the node's resource cache (entries, size, engines using each), or prune "
                "it: unused entries until it is under its bound, or every unused one with --all.",
                define_cache, run_cache},
    CommandSpec{"callback",
                "callback (--status S | --heartbeat) [--address A] [--message M] [--pid P]",
                "Report for the engine this runs in (ECM_ENGINE_ID, ECM_ENGINE_TOKEN) to the "
                "ECM at ECM_CALLBACK_ADDRESS: its status, service address (--address), a "
                "message, the real engine's pid, or a heartbeat.",
                define_callback, run_callback},
};

}  // namespace

std::span<const CommandSpec> commands() {
  return kCommands;
}

const CommandSpec* find_command(std::string_view name) {
  for (const auto& c : kCommands) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

Context::Context(const GlobalOptions& g, const boost::program_options::variables_map& v,
                 std::ostream& o)
    : global(g), vm(v), out(o) {}

Context::~Context() = default;

Client& Context::client() {
  if (!client_) client_ = std::make_unique<Client>(global.address, global.security);
  return *client_;
}

std::string Context::positional(const std::string& name, std::string_view label) const {
  if (!vm.count(name)) throw UsageError("missing " + std::string(label));
  auto value = vm[name].as<std::string>();
  if (value.empty()) throw UsageError(std::string(label) + " must not be empty");
  return value;
}

}  // namespace ecm::ctl
