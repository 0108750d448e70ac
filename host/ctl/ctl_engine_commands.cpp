// launch, list, get, stop, resources: the engine lifecycle through the ECM's Thrift service.
#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

#include "ctl_commands.hpp"
#include "ctl_errors.hpp"
#include "ctl_output.hpp"
#include "ctl_status.hpp"
#include "ecm/core/units.hpp"

namespace po = boost::program_options;

namespace ecm::ctl {
namespace {

namespace api = ::ecm::thrift;
using Strings = std::vector<std::string>;

constexpr std::string_view kDefaultStopTimeout = "30s";
constexpr auto kPollInterval = std::chrono::milliseconds(100);

Strings strings(const po::variables_map& vm, const std::string& name) {
  return vm.count(name) ? vm[name].as<Strings>() : Strings{};
}

void print_one(Context& ctx, const api::EngineConn& engine) {
  if (ctx.global.json) {
    print_json(ctx.out, engine_to_json(engine));
  } else {
    print_engine(ctx.out, engine);
  }
}

// Polls every kPollInterval until the engine has ended; CommandError once `timeout` has passed.
api::EngineConn wait_until_ended(Context& ctx, const std::string& id, api::EngineConn engine,
                                 std::chrono::milliseconds timeout, std::string_view timeout_text) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!(engine.__isset.status && is_ended(engine.status))) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      throw CommandError("engine " + id + " did not end within " + std::string(timeout_text) +
                         " (status " +
                         (engine.__isset.status ? status_name(engine.status) : "unknown") + ")");
    }
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(kPollInterval, deadline - now));
    ctx.service().getEngineConn(engine, id);
  }
  return engine;
}

// --memory: a positive size ("512MiB") that fits the wire's i64.
std::int64_t parse_memory(const std::string& text) {
  auto bytes = core::parse_size(text);
  if (!bytes || *bytes == 0 ||
      *bytes > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    throw UsageError("bad --memory '" + text + "': expected a positive size like 512MiB or 2GiB");
  }
  return static_cast<std::int64_t>(*bytes);
}

// --cores: a positive whole number that fits the wire's i32.
std::int32_t parse_cores(const std::string& text) {
  std::int32_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr != text.data() + text.size() || value < 1) {
    throw UsageError("bad --cores '" + text + "': expected a positive whole number");
  }
  return value;
}

// The --timeout of stop, checked whether or not --wait was given.
std::chrono::milliseconds stop_timeout(const Context& ctx, bool wait, std::string& text) {
  text = optional_string(ctx.vm, "timeout").value_or(std::string(kDefaultStopTimeout));
  if (ctx.vm.count("timeout") && !wait) throw UsageError("--timeout needs --wait");
  auto timeout = core::parse_duration(text);
  if (!timeout || timeout->count() <= 0) {
    throw UsageError("bad --timeout '" + text + "': expected a duration like 30s or 500ms");
  }
  return *timeout;
}

// stop --user/--type: every matching engine, waited for together under one deadline.
void run_stop_matching(Context& ctx, const std::optional<std::string>& user,
                       const std::optional<std::string>& type) {
  bool wait = ctx.vm["wait"].as<bool>();
  std::string timeout_text;
  auto timeout = stop_timeout(ctx, wait, timeout_text);

  api::StopRequest req;
  if (user) req.__set_user(*user);
  if (type) req.__set_engine_type(*type);
  req.__set_force(ctx.vm["force"].as<bool>());
  std::vector<api::StopResult> results;
  ctx.service().stopEngineConns(results, req);

  if (wait) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (auto& r : results) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      r.engine = wait_until_ended(ctx, r.engine.id, r.engine,
                                  std::max(left, std::chrono::milliseconds(0)), timeout_text);
    }
  }

  if (ctx.global.json) {
    boost::json::array a;
    a.reserve(results.size());
    for (const auto& r : results) {
      auto o = engine_to_json(r.engine);
      o["already_ended"] = r.__isset.already_ended && r.already_ended;
      a.emplace_back(std::move(o));
    }
    print_json(ctx.out, a);
    return;
  }
  std::vector<api::EngineConn> engines;
  engines.reserve(results.size());
  for (const auto& r : results) {
    engines.push_back(r.engine);
    if (r.__isset.already_ended && r.already_ended) {
      ctx.out << "note: engine " << r.engine.id << " had already ended\n";
    }
  }
  print_engine_table(ctx.out, engines);
}

}  // namespace

void define_launch(CommandOptions& o) {
  o.visible.add_options()  //
      ("user", po::value<std::string>()->value_name("U"),
       "the user the engine runs as (required)")  //
      ("ticket", po::value<std::string>()->value_name("T"),
       "the caller's launch id: the same ticket twice returns the engine already made")  //
      ("version", po::value<std::string>()->value_name("V"),
       "the engine version (default: any the plugin serves)")                    //
      ("label", po::value<Strings>()->value_name("K=V"), "a label; repeatable")  //
      ("property", po::value<Strings>()->value_name("K=V"),
       "an engine-type setting read by the plugin (e.g. command=...); repeatable; the value "
       "may hold '=' and spaces")  //
      ("env", po::value<Strings>()->value_name("K=V"),
       "an environment variable for the engine; repeatable")  //
      ("memory", po::value<std::string>()->value_name("SIZE"),
       "the memory the engine is admitted with, e.g. 512MiB, 2GiB (default: the ECM's)")  //
      ("cores", po::value<std::string>()->value_name("N"),
       "the cores the engine is admitted with (default: the ECM's)")  //
      ("timeout", po::value<std::string>()->value_name("DURATION"),
       "launch timeout: not ready by then, the engine is stopped and Failed (e.g. 60s; "
       "default: the plugin's or the ECM's)")  //
      ("resource", po::value<Strings>()->value_name("URI[,OPT]..."),
       "a resource to localize into the work dir before the engine starts; options: "
       "sha256=HEX, name=NAME, unpack, public; repeatable");
  o.hidden.add_options()("type", po::value<std::string>());
  o.positional.add("type", 1);
}

// "URI[,sha256=HEX][,name=NAME][,unpack][,public]": the URI may not hold a comma.
api::ResourceSpec parse_resource(const std::string& text) {
  api::ResourceSpec r;
  std::vector<std::string> parts;
  std::size_t at = 0;
  for (;;) {
    const auto comma = text.find(',', at);
    parts.push_back(text.substr(at, comma - at));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  if (parts[0].empty()) throw UsageError("bad --resource '" + text + "': no URI");
  r.__set_uri(parts[0]);
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    if (p == "unpack") {
      r.__set_unpack(true);
    } else if (p == "public") {
      r.__set_visibility("public");
    } else if (p.rfind("sha256=", 0) == 0) {
      r.__set_sha256(p.substr(7));
    } else if (p.rfind("name=", 0) == 0) {
      r.__set_name(p.substr(5));
    } else {
      throw UsageError("bad --resource '" + text + "': unknown option '" + p +
                       "' (sha256=HEX, name=NAME, unpack, public)");
    }
  }
  return r;
}

void run_launch(Context& ctx) {
  api::LaunchRequest req;
  req.__set_engine_type(ctx.positional("type", "TYPE"));
  auto user = optional_string(ctx.vm, "user");
  if (!user) throw UsageError("missing --user");
  req.__set_user(*user);
  if (auto t = optional_string(ctx.vm, "ticket")) req.__set_ticket_id(*t);
  if (auto v = optional_string(ctx.vm, "version")) req.__set_engine_version(*v);
  if (ctx.vm.count("label")) req.__set_labels(parse_key_values("label", strings(ctx.vm, "label")));
  if (ctx.vm.count("property")) {
    req.__set_properties(parse_key_values("property", strings(ctx.vm, "property")));
  }
  if (ctx.vm.count("env")) req.__set_env(parse_key_values("env", strings(ctx.vm, "env")));
  if (auto m = optional_string(ctx.vm, "memory")) req.__set_memory_bytes(parse_memory(*m));
  if (auto c = optional_string(ctx.vm, "cores")) req.__set_cores(parse_cores(*c));
  if (auto t = optional_string(ctx.vm, "timeout")) {
    auto timeout = core::parse_duration(*t);
    if (!timeout || timeout->count() <= 0) {
      throw UsageError("bad --timeout '" + *t + "': expected a duration like 60s or 500ms");
    }
    req.__set_launch_timeout_ms(timeout->count());
  }
  if (ctx.vm.count("resource")) {
    std::vector<api::ResourceSpec> resources;
    for (const auto& r : strings(ctx.vm, "resource"))
      resources.push_back(parse_resource(r));
    req.__set_resources(std::move(resources));
  }

  api::EngineConn engine;
  ctx.service().launchEngineConn(engine, req);
  print_one(ctx, engine);
}

void define_list(CommandOptions& o) {
  o.visible.add_options()                                                               //
      ("user", po::value<std::string>()->value_name("U"), "only this user's engines")   //
      ("type", po::value<std::string>()->value_name("T"), "only engines of this type")  //
      ("status", po::value<std::string>()->value_name("S"),
       "only engines in this status: Starting, Unlock, Locked, Idle, Busy, Running, "
       "ShuttingDown, Success or Failed (any case)");
}

void run_list(Context& ctx) {
  api::EngineConnFilter filter;
  if (auto u = optional_string(ctx.vm, "user")) filter.__set_user(*u);
  if (auto t = optional_string(ctx.vm, "type")) filter.__set_engine_type(*t);
  if (auto s = optional_string(ctx.vm, "status")) filter.__set_status(parse_status(*s));

  std::vector<api::EngineConn> engines;
  ctx.service().listEngineConns(engines, filter);
  if (ctx.global.json) {
    print_json(ctx.out, engines_to_json(engines));
  } else {
    print_engine_table(ctx.out, engines);
  }
}

void define_get(CommandOptions& o) {
  o.hidden.add_options()("id", po::value<std::string>());
  o.positional.add("id", 1);
}

void run_get(Context& ctx) {
  auto id = ctx.positional("id", "ID");
  api::EngineConn engine;
  ctx.service().getEngineConn(engine, id);
  print_one(ctx, engine);
}

void define_stop(CommandOptions& o) {
  o.visible.add_options()  //
      ("user", po::value<std::string>()->value_name("U"),
       "stop every engine of this user (instead of ID)")  //
      ("type", po::value<std::string>()->value_name("T"),
       "stop every engine of this type (instead of ID); with --user, only that user's")   //
      ("force", po::bool_switch(), "skip the grace period: SIGKILL the engine at once")   //
      ("wait", po::bool_switch(), "wait until the engine has ended (Success or Failed)")  //
      ("timeout", po::value<std::string>()->value_name("DURATION"),
       "how long --wait waits, e.g. 500ms, 30s, 5m (default 30s)");
  o.hidden.add_options()("id", po::value<std::string>());
  o.positional.add("id", 1);
}

void run_stop(Context& ctx) {
  auto user = optional_string(ctx.vm, "user");
  auto type = optional_string(ctx.vm, "type");
  if (user || type) {
    if (ctx.vm.count("id")) throw UsageError("give either ID or --user/--type, not both");
    return run_stop_matching(ctx, user, type);
  }
  if (!ctx.vm.count("id")) throw UsageError("missing ID (or --user/--type)");
  auto id = ctx.positional("id", "ID");
  bool wait = ctx.vm["wait"].as<bool>();
  std::string timeout_text;
  auto timeout = stop_timeout(ctx, wait, timeout_text);

  api::StopRequest req;
  req.__set_engine_id(id);
  req.__set_force(ctx.vm["force"].as<bool>());
  api::StopResult result;
  ctx.service().stopEngineConn(result, req);
  bool already_ended = result.__isset.already_ended && result.already_ended;

  auto engine = result.engine;
  if (wait) engine = wait_until_ended(ctx, id, engine, timeout, timeout_text);

  if (ctx.global.json) {
    auto o = engine_to_json(engine);
    o["already_ended"] = already_ended;
    print_json(ctx.out, o);
    return;
  }
  if (already_ended) ctx.out << "note: engine " << id << " had already ended\n";
  print_engine(ctx.out, engine);
}

void run_resources(Context& ctx) {
  api::NodeResources resources;
  ctx.service().getResources(resources);
  if (ctx.global.json) {
    print_json(ctx.out, resources_to_json(resources));
  } else {
    print_resources_table(ctx.out, resources);
  }
}

}  // namespace ecm::ctl
