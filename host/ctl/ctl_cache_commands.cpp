// cache [list | prune [--all]]: the node's resource cache (listCache, pruneCache).
#include <spdlog/fmt/fmt.h>

#include "ctl_commands.hpp"
#include "ctl_errors.hpp"
#include "ctl_output.hpp"

namespace ecm::ctl {
namespace {

namespace api = ::ecm::thrift;
namespace json = boost::json;
namespace po = boost::program_options;

json::object entry_to_json(const api::CacheEntry& e) {
  return json::object{{"sha256", e.sha256},
                      {"unpacked", e.unpacked},
                      {"owner", e.owner.empty() ? json::value(nullptr) : json::value(e.owner)},
                      {"bytes", e.bytes},
                      {"last_used", format_time_ms(e.last_used_ms)},
                      {"last_used_ms", e.last_used_ms},
                      {"in_use", e.in_use},
                      {"path", e.path}};
}

}  // namespace

void define_cache(CommandOptions& o) {
  o.visible.add_options()  //
      ("all", po::bool_switch(), "prune: every entry no engine uses, not only down to the bound");
  o.hidden.add_options()("action", po::value<std::string>());
  o.positional.add("action", 1);
}

void run_cache(Context& ctx) {
  const std::string action = ctx.vm.count("action") ? ctx.vm["action"].as<std::string>() : "list";
  const bool all = ctx.vm["all"].as<bool>();
  if (action == "list") {
    if (all) throw UsageError("--all goes with prune only");
    api::CacheReport r;
    ctx.service().listCache(r);
    if (ctx.global.json) {
      json::array entries;
      for (const auto& e : r.entries)
        entries.emplace_back(entry_to_json(e));
      return print_json(ctx.out, json::object{{"entries", std::move(entries)},
                                              {"bytes", r.bytes},
                                              {"max_bytes", r.max_bytes}});
    }
    ctx.out << fmt::format("{:<12} {:<8} {:<12} {:>12} {:<24} {:>6}  {}\n", "SHA256", "KIND",
                           "OWNER", "BYTES", "LAST_USED", "IN_USE", "PATH");
    for (const auto& e : r.entries) {
      ctx.out << fmt::format("{:<12} {:<8} {:<12} {:>12} {:<24} {:>6}  {}\n",
                             e.sha256.substr(0, 12), e.unpacked ? "unpacked" : "file",
                             e.owner.empty() ? "(public)" : e.owner, e.bytes,
                             format_time_ms(e.last_used_ms), e.in_use, e.path);
    }
    ctx.out << fmt::format("{} entries, {} bytes of {}\n", r.entries.size(), r.bytes,
                           r.max_bytes > 0 ? std::to_string(r.max_bytes) : "unbounded");
    return;
  }
  if (action == "prune") {
    api::PruneCacheRequest req;
    req.__set_all(all);
    api::PruneCacheResult r;
    ctx.service().pruneCache(r, req);
    if (ctx.global.json) {
      return print_json(ctx.out, json::object{{"removed", r.removed},
                                              {"bytes_freed", r.bytes_freed},
                                              {"kept_in_use", r.kept_in_use}});
    }
    ctx.out << fmt::format("removed {} entries ({} bytes); {} kept: engines use them\n", r.removed,
                           r.bytes_freed, r.kept_in_use);
    return;
  }
  throw UsageError("unknown cache action '" + action + "' (list, prune)");
}

}  // namespace ecm::ctl
