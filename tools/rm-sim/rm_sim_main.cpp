// rm-sim: the project's small reference RM.
//   rm-sim serve [--listen HOST:PORT] [--state FILE] [--print-interval 5s] [--address-file FILE]
//   rm-sim ecms [--rm HOST:PORT] [--json]
//   rm-sim changes [--rm HOST:PORT] [--json]
//   rm-sim launch TYPE --user U [--property k=v]... [--count N] [--memory SIZE] [--rm HOST:PORT]
#include <iostream>

#include <boost/program_options.hpp>

#include "ecm/core/units.hpp"
#include "rm_sim_client.hpp"
#include "rm_sim_server.hpp"

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage =
    "Usage: rm-sim COMMAND [OPTIONS]\n"
    "  serve    run the RM: --listen HOST:PORT (default 127.0.0.1:9200, port 0: any),\n"
    "           --state FILE (journal of changes, reloaded at start), --print-interval 5s,\n"
    "           --address-file FILE (gets the bound HOST:PORT)\n"
    "  ecms     the ECMs the RM knows, their health and load [--json]\n"
    "  changes  the engine changes the RM received, in order [--json]\n"
    "  launch   TYPE --user U [--property K=V]... [--count N] [--memory SIZE] [--json]:\n"
    "           each launch on the live ECM with the most left resources\n"
    "  Commands other than serve take --rm HOST:PORT (default 127.0.0.1:9200).\n";

int usage_error(const std::string& message) {
  std::cerr << "rm-sim: " << message << "\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage_error("no command");
  const std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") {
    std::cout << kUsage;
    return 0;
  }
  std::string listen = "127.0.0.1:9200", rm = "127.0.0.1:9200", state, address_file,
              print_interval = "5s", user, memory;
  std::vector<std::string> properties, positional;
  int count = 1;
  po::options_description opts;
  opts.add_options()("listen", po::value(&listen))("state", po::value(&state))(
      "address-file", po::value(&address_file))("print-interval", po::value(&print_interval))(
      "rm", po::value(&rm))("json", po::bool_switch())("user", po::value(&user))(
      "property", po::value(&properties)->composing())("count", po::value(&count))(
      "memory", po::value(&memory))("args", po::value(&positional)->composing());
  po::positional_options_description pos;
  pos.add("args", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc - 1, argv + 1).options(opts).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return usage_error(e.what());
  }
  const bool json = vm["json"].as<bool>();

  if (command == "serve") {
    ecm::rmsim::ServeOptions o;
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) return usage_error("--listen must be HOST:PORT");
    o.host = listen.substr(0, colon);
    try {
      o.port = std::stoi(listen.substr(colon + 1));
    } catch (const std::exception&) {
      return usage_error("--listen must be HOST:PORT");
    }
    auto interval = ecm::core::parse_duration(print_interval);
    if (!interval) return usage_error("--print-interval must be a duration (like 5s)");
    o.print_interval = *interval;
    if (!state.empty()) o.state_file = state;
    if (!address_file.empty()) o.address_file = address_file;
    return ecm::rmsim::serve(o);
  }
  if (command == "ecms") return ecm::rmsim::list_ecms(rm, json);
  if (command == "changes") return ecm::rmsim::list_changes(rm, json);
  if (command == "launch") {
    if (positional.size() != 1) return usage_error("launch takes one engine TYPE");
    if (user.empty()) return usage_error("launch needs --user");
    if (count < 1) return usage_error("--count must be at least 1");
    ecm::thrift::LaunchRequest r;
    r.__set_engine_type(positional[0]);
    r.__set_user(user);
    std::map<std::string, std::string> props;
    for (const auto& kv : properties) {
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) return usage_error("--property takes K=V");
      props[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    r.__set_properties(props);
    if (!memory.empty()) {
      auto size = ecm::core::parse_size(memory);
      if (!size) return usage_error("--memory must be a size (like 512MiB)");
      r.__set_memory_bytes(static_cast<std::int64_t>(*size));
    }
    return ecm::rmsim::launch(rm, r, count, json);
  }
  return usage_error("unknown command '" + command + "'");
}
