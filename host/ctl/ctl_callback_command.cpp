// ecmctl callback: lets an engine that speaks no Thrift (a shell script, a wrapper) call
// EngineConnCallbackService. Who it speaks for comes from the environment the ECM gave the engine
// (ECM_ENGINE_ID, ECM_ENGINE_TOKEN, ECM_CALLBACK_ADDRESS), so a script cannot name another engine
// by mistake. Here --address is the engine's own service address (what the RM will connect to), as
// the callback reports it; where to send the report is ECM_CALLBACK_ADDRESS, or --callback-address.
#include <cstdlib>

#include "ctl_commands.hpp"
#include "ctl_errors.hpp"
#include "ctl_output.hpp"
#include "ctl_status.hpp"

namespace ecm::ctl {
namespace {

namespace po = boost::program_options;
namespace api = ::ecm::thrift;

std::string from_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    throw UsageError(std::string(name) + " is not set (callback runs inside an engine the ECM " +
                     "launched)");
  }
  return v;
}

}  // namespace

void define_callback(CommandOptions& o) {
  o.visible.add_options()  //
      ("status", po::value<std::string>()->value_name("S"),
       "the engine's status: Unlock, Locked, Idle, Busy or Running (the first ends Starting)")  //
      ("heartbeat", po::bool_switch(), "send a heartbeat only")                                 //
      ("message", po::value<std::string>()->value_name("M"), "a free-form message")             //
      ("pid", po::value<int>()->value_name("P"),
       "the real engine's pid (a process of the engine's group), when a wrapper started it")  //
      ("callback-address", po::value<std::string>()->value_name("HOST:PORT"),
       "where to report (default $ECM_CALLBACK_ADDRESS)");
}

void run_callback(Context& ctx) {
  const bool heartbeat = ctx.vm["heartbeat"].as<bool>();
  auto status = optional_string(ctx.vm, "status");
  auto message = optional_string(ctx.vm, "message");
  // The global --address, read raw: for this command it is the engine's service address.
  auto service_address = optional_string(ctx.vm, "address");
  const bool reports = status || message || service_address || ctx.vm.count("pid");
  if (heartbeat && reports) {
    throw UsageError("--heartbeat cannot be combined with --status, --address, --message or --pid");
  }
  if (!heartbeat && !reports) {
    throw UsageError(
        "nothing to report: give --status, --address, --message, --pid or --heartbeat");
  }
  api::EngineReport report;
  report.__set_engine_id(from_env("ECM_ENGINE_ID"));
  report.__set_token(from_env("ECM_ENGINE_TOKEN"));
  if (status) report.__set_status(parse_status(*status));
  if (message) report.__set_message(*message);
  if (service_address) report.__set_address(*service_address);
  if (ctx.vm.count("pid")) {
    const int pid = ctx.vm["pid"].as<int>();
    if (pid <= 0) throw UsageError("--pid must be a positive process id");
    report.__set_pid(pid);
  }
  auto target = optional_string(ctx.vm, "callback-address");
  Client client(parse_address(target ? *target : from_env("ECM_CALLBACK_ADDRESS")));
  if (heartbeat) {
    client.callback_service().heartbeat(report.engine_id, report.token);
  } else {
    client.callback_service().report(report);
  }
  if (ctx.global.json) {
    boost::json::object o{{"engine_id", report.engine_id},
                          {"reported", heartbeat ? "heartbeat" : "report"}};
    print_json(ctx.out, o);
  } else {
    ctx.out << (heartbeat ? "heartbeat sent" : "reported") << " for " << report.engine_id << '\n';
  }
}

}  // namespace ecm::ctl
