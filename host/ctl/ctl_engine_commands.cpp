// launch, list, get, stop: the engine lifecycle through the ECM's Thrift service.
#include <chrono>
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
       "an environment variable for the engine; repeatable");
  o.hidden.add_options()("type", po::value<std::string>());
  o.positional.add("type", 1);
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

  api::EngineConn engine;
  ctx.service().launchEngineConn(engine, req);
  print_one(ctx, engine);
}

void define_list(CommandOptions& o) {
  o.visible.add_options()                                                               //
      ("user", po::value<std::string>()->value_name("U"), "only this user's engines")   //
      ("type", po::value<std::string>()->value_name("T"), "only engines of this type")  //
      ("status", po::value<std::string>()->value_name("S"),
       "only engines in this status: Starting, Running, ShuttingDown, Success or Failed "
       "(any case)");
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
  o.visible.add_options()                                                                 //
      ("force", po::bool_switch(), "skip the grace period: SIGKILL the engine at once")   //
      ("wait", po::bool_switch(), "wait until the engine has ended (Success or Failed)")  //
      ("timeout", po::value<std::string>()->value_name("DURATION"),
       "how long --wait waits, e.g. 500ms, 30s, 5m (default 30s)");
  o.hidden.add_options()("id", po::value<std::string>());
  o.positional.add("id", 1);
}

void run_stop(Context& ctx) {
  auto id = ctx.positional("id", "ID");
  bool wait = ctx.vm["wait"].as<bool>();
  auto timeout_text = optional_string(ctx.vm, "timeout").value_or(std::string(kDefaultStopTimeout));
  if (ctx.vm.count("timeout") && !wait) throw UsageError("--timeout needs --wait");
  auto timeout = core::parse_duration(timeout_text);
  if (!timeout || timeout->count() <= 0) {
    throw UsageError("bad --timeout '" + timeout_text + "': expected a duration like 30s or 500ms");
  }

  api::StopRequest req;
  req.__set_engine_id(id);
  req.__set_force(ctx.vm["force"].as<bool>());
  api::StopResult result;
  ctx.service().stopEngineConn(result, req);
  bool already_ended = result.__isset.already_ended && result.already_ended;

  auto engine = result.engine;
  if (wait) engine = wait_until_ended(ctx, id, engine, *timeout, timeout_text);

  if (ctx.global.json) {
    auto o = engine_to_json(engine);
    o["already_ended"] = already_ended;
    print_json(ctx.out, o);
    return;
  }
  if (already_ended) ctx.out << "note: engine " << id << " had already ended\n";
  print_engine(ctx.out, engine);
}

}  // namespace ecm::ctl
