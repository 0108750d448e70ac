// The commands of ecmctl and the one table that names them.
//
// Adding a command: write `void define_x(CommandOptions&)` (its options and positional
// arguments) and `void run_x(Context&)`, declare them below, and add one row to the table in
// ctl_commands.cpp. Write output to ctx.out only: it reaches stdout only when the command succeeds.
#pragma once

#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <string_view>

#include <boost/program_options.hpp>

#include "ctl_args.hpp"
#include "ctl_client.hpp"

namespace ecm::ctl {

struct CommandOptions {
  boost::program_options::options_description visible{"Options"};
  // Positional arguments, named here and mapped in `positional`; not listed under Options.
  boost::program_options::options_description hidden;
  boost::program_options::positional_options_description positional;
};

class Context {
 public:
  Context(const GlobalOptions& global, const boost::program_options::variables_map& vm,
          std::ostream& out);
  ~Context();

  const GlobalOptions& global;
  const boost::program_options::variables_map& vm;
  std::ostream& out;

  // Connects on first use; throws ConnectionError.
  Client& client();
  ::ecm::thrift::EngineConnManagerServiceClient& service() { return client().service(); }

  // The value of a required positional argument, shown as `label` in messages ("TYPE").
  std::string positional(const std::string& name, std::string_view label) const;

 private:
  std::unique_ptr<Client> client_;
};

struct CommandSpec {
  std::string_view name;
  std::string_view synopsis;  // what follows "ecmctl " in the usage line
  std::string_view summary;
  void (*define)(CommandOptions&);  // nullptr: no options of its own
  void (*run)(Context&);
};

std::span<const CommandSpec> commands();
const CommandSpec* find_command(std::string_view name);

// Engine lifecycle (ctl_engine_commands.cpp).
void define_launch(CommandOptions& o);
void run_launch(Context& ctx);
void define_list(CommandOptions& o);
void run_list(Context& ctx);
void define_get(CommandOptions& o);
void run_get(Context& ctx);
void define_stop(CommandOptions& o);
void run_stop(Context& ctx);
void run_resources(Context& ctx);

// An engine speaking for itself (ctl_callback_command.cpp).
void define_callback(CommandOptions& o);
void run_callback(Context& ctx);

// Engine logs (ctl_log_commands.cpp).
void define_logs(CommandOptions& o);
void run_logs(Context& ctx);

// The ECM's health and metrics (ctl_health_commands.cpp).
void run_health(Context& ctx);
void run_metrics(Context& ctx);

// The plugins of a live ECM and their hot swap (ctl_plugin_commands.cpp).
void define_plugins(CommandOptions& o);
void run_plugins(Context& ctx);

// The node's resource cache (ctl_cache_commands.cpp).
void define_cache(CommandOptions& o);
void run_cache(Context& ctx);

}  // namespace ecm::ctl
