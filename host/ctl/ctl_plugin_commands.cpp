// plugins [list | reload NAME | load PATH | unload NAME [--force]]: the plugins of a live ECM and
// their hot swap (listPlugins, reloadPlugin, loadPlugin, unloadPlugin).
#include <filesystem>

#include <spdlog/fmt/fmt.h>

#include "ctl_commands.hpp"
#include "ctl_errors.hpp"
#include "ctl_output.hpp"

namespace ecm::ctl {
namespace {

namespace api = ::ecm::thrift;
namespace json = boost::json;
namespace po = boost::program_options;

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items)
    out += (out.empty() ? "" : ",") + i;
  return out.empty() ? "-" : out;
}

json::object plugin_to_json(const api::PluginInfo& p) {
  json::object o;
  o["name"] = p.name;
  json::array kinds;
  for (const auto& k : p.kinds)
    kinds.emplace_back(k);
  o["kinds"] = std::move(kinds);
  o["engine_type"] = p.__isset.engine_type ? json::value(p.engine_type) : json::value(nullptr);
  o["file"] = p.file;
  o["loaded"] = p.loaded;
  json::array generations;
  for (const auto& g : p.generations) {
    generations.emplace_back(json::object{{"generation", g.generation},
                                          {"version", g.version},
                                          {"abi", g.abi},
                                          {"sha256", g.sha256},
                                          {"loaded_at", format_time_ms(g.loaded_at_ms)},
                                          {"loaded_at_ms", g.loaded_at_ms},
                                          {"serving", g.serving},
                                          {"engines", g.engines}});
  }
  o["generations"] = std::move(generations);
  return o;
}

// One row per generation: the serving one under the plugin's name, older ones indented.
void print_plugins(std::ostream& out, const std::vector<api::PluginInfo>& plugins) {
  out << fmt::format("{:<16} {:<18} {:<10} {:<4} {:>4} {:<12} {:<20} {:>7}  {}\n", "NAME", "KINDS",
                     "VERSION", "ABI", "GEN", "SHA256", "LOADED_AT", "ENGINES", "FILE");
  for (const auto& p : plugins) {
    bool first = true;
    for (const auto& g : p.generations) {
      std::string name = first ? p.name : "  (older)";
      if (first && !g.serving) name = p.name + " (unloaded)";
      out << fmt::format("{:<16} {:<18} {:<10} {:<4} {:>4} {:<12} {:<20} {:>7}  {}\n", name,
                         first ? join(p.kinds) : "", g.version, g.abi, g.generation,
                         g.sha256.substr(0, 12), format_time_ms(g.loaded_at_ms), g.engines,
                         first ? p.file : "");
      first = false;
    }
  }
}

void print_one(Context& ctx, const api::PluginInfo& p, const std::string& done) {
  if (ctx.global.json) return print_json(ctx.out, plugin_to_json(p));
  ctx.out << done << "\n";
  print_plugins(ctx.out, {p});
}

}  // namespace

void define_plugins(CommandOptions& o) {
  o.visible.add_options()  //
      ("force", po::bool_switch(),
       "unload: even while engines of the plugin run (no new launches; the library leaves when "
       "the last of them ends)");
  o.hidden.add_options()("action", po::value<std::string>())("target", po::value<std::string>());
  o.positional.add("action", 1).add("target", 1);
}

void run_plugins(Context& ctx) {
  const std::string action = ctx.vm.count("action") ? ctx.vm["action"].as<std::string>() : "list";
  const bool force = ctx.vm["force"].as<bool>();
  if (force && action != "unload") throw UsageError("--force goes with unload only");
  if (action == "list") {
    if (ctx.vm.count("target")) throw UsageError("plugins list takes no argument");
    std::vector<api::PluginInfo> plugins;
    ctx.service().listPlugins(plugins);
    if (ctx.global.json) {
      json::array a;
      for (const auto& p : plugins)
        a.emplace_back(plugin_to_json(p));
      return print_json(ctx.out, a);
    }
    if (plugins.empty()) {
      ctx.out << "no plugin loaded\n";
      return;
    }
    return print_plugins(ctx.out, plugins);
  }
  if (action == "reload") {
    auto name = ctx.positional("target", "NAME");
    api::PluginInfo p;
    ctx.service().reloadPlugin(p, name);
    return print_one(ctx, p, "reloaded " + name);
  }
  if (action == "load") {
    auto path = ctx.positional("target", "PATH");
    // The ECM opens the file on its machine: send it an absolute path.
    auto absolute = std::filesystem::absolute(path).lexically_normal().string();
    api::PluginInfo p;
    ctx.service().loadPlugin(p, absolute);
    return print_one(ctx, p, "loaded " + p.name + " from " + absolute);
  }
  if (action == "unload") {
    api::UnloadPluginRequest req;
    req.__set_name(ctx.positional("target", "NAME"));
    req.__set_force(force);
    api::PluginInfo p;
    ctx.service().unloadPlugin(p, req);
    std::int32_t held = 0;
    for (const auto& g : p.generations)
      held += g.engines;
    return print_one(ctx, p,
                     held > 0 ? fmt::format("unloaded {}: no new launches; {} engine(s) still "
                                            "hold it, the library leaves when they end",
                                            req.name, held)
                              : "unloaded " + req.name);
  }
  throw UsageError("unknown plugins action '" + action + "' (list, reload, load, unload)");
}

}  // namespace ecm::ctl
