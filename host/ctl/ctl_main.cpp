// ecmctl: finds the command, parses its options, runs it, and maps every failure to an exit status.
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <thrift/TApplicationException.h>
#include <thrift/transport/TTransportException.h>

#include "ctl_args.hpp"
#include "ctl_client.hpp"
#include "ctl_commands.hpp"
#include "ctl_errors.hpp"

namespace po = boost::program_options;

namespace ecm::ctl {
namespace {

void print_general_help(std::ostream& out) {
  out << "Usage: ecmctl [--address HOST:PORT] [--json] [--tls-ca FILE [--tls-cert FILE --tls-key "
         "FILE]]\n              [--token-file FILE] COMMAND [ARGS...]\n\n"
         "The administrator's client of the EngineConn Manager (ECM).\n\n"
         "Commands:\n";
  for (const auto& c : commands()) {
    std::string name(c.name);
    name.resize(std::max<std::size_t>(name.size() + 2, 10), ' ');
    out << "  " << name << c.summary << '\n';
  }
  out << '\n'
      << global_options_description() << '\n'
      << "Run 'ecmctl COMMAND --help' for a command's options.\n"
         "Exit status: 0 ok, 1 the ECM refused or the command failed, 2 usage error,\n"
         "3 the ECM could not be reached.\n";
}

void print_command_help(std::ostream& out, const CommandSpec& spec, const CommandOptions& opts) {
  out << "Usage: ecmctl " << spec.synopsis << "\n\n" << spec.summary << "\n\n";
  if (!opts.visible.options().empty()) out << opts.visible << '\n';
  out << global_options_description();
}

// The name of the command being run, for the hint of a usage error.
std::string g_command;

int run(const std::vector<std::string>& args, std::ostream& out) {
  auto split = split_command(args);
  if (!split.command) {
    auto vm = parse_args(split.rest, global_options_description(), {});
    auto global = read_global_options(vm);
    if (!global.help) throw UsageError("missing command");
    print_general_help(out);
    return kExitOk;
  }
  const CommandSpec* spec = find_command(*split.command);
  if (spec == nullptr) throw UsageError("unknown command '" + *split.command + "'");
  g_command = spec->name;

  CommandOptions opts;
  if (spec->define != nullptr) spec->define(opts);
  po::options_description all;
  all.add(opts.visible).add(opts.hidden).add(global_options_description());
  auto vm = parse_args(split.rest, all, opts.positional);
  auto global = read_global_options(vm);
  if (global.help) {
    print_command_help(out, *spec, opts);
    return kExitOk;
  }
  Context ctx(global, vm, out);
  spec->run(ctx);
  return kExitOk;
}

// The address in effect, for the message of a connection failure; parsed leniently.
std::string address_of(const std::vector<std::string>& args) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--address" && i + 1 < args.size()) return args[i + 1];
    if (args[i].starts_with("--address=")) return args[i].substr(10);
  }
  return std::string(kDefaultAddress);
}

// Whether a token was given (read leniently, like address_of).
bool gave_token(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--token-file" || a.starts_with("--token-file=")) return true;
  }
  const char* env = std::getenv("ECMCTL_TOKEN_FILE");
  return env != nullptr && *env != '\0';
}

int fail(int status, const std::string& message) {
  std::cerr << "ecmctl: " << message << '\n';
  return status;
}

int run_and_report(const std::vector<std::string>& args, std::ostream& out) {
  namespace at = ::apache::thrift;
  try {
    return run(args, out);
  } catch (const UsageError& e) {
    std::string help = g_command.empty() ? "ecmctl --help" : "ecmctl " + g_command + " --help";
    return fail(kExitUsage, std::string(e.what()) + " (see '" + help + "')");
  } catch (const ::ecm::thrift::EcmError& e) {
    std::string code = e.__isset.code ? ::ecm::thrift::to_string(e.code) : "ERROR";
    std::string message = code + ": " + (e.__isset.message ? e.message : "(no message)");
    if (e.__isset.code && e.code == ::ecm::thrift::ErrorCode::UNAUTHENTICATED) {
      message += gave_token(args) ? " (the ECM did not take the token of --token-file)"
                                  : " (give the ECM's token with --token-file FILE or "
                                    "ECMCTL_TOKEN_FILE)";
    }
    return fail(kExitFailed, message);
  } catch (const ConnectionError& e) {
    return fail(kExitUnreachable, "cannot reach ECM at " + address_of(args) + ": " + e.what());
  } catch (const at::transport::TTransportException& e) {
    return fail(kExitUnreachable,
                "cannot reach ECM at " + address_of(args) + ": " + describe_transport_error(e));
  } catch (const at::TApplicationException& e) {
    return fail(kExitFailed, std::string("server error: ") + e.what());
  } catch (const at::TException& e) {
    return fail(kExitFailed, std::string("protocol error: ") + e.what());
  } catch (const CommandError& e) {
    return fail(kExitFailed, e.what());
  } catch (const std::exception& e) {
    return fail(kExitFailed, e.what());
  }
}

}  // namespace
}  // namespace ecm::ctl

int main(int argc, char** argv) {
  ecm::ctl::silence_thrift_logging();
  std::vector<std::string> args(argv + 1, argv + argc);
  // Output is held back until the command has succeeded: a failure prints nothing on stdout.
  std::ostringstream out;
  int status = ecm::ctl::run_and_report(args, out);
  if (status == ecm::ctl::kExitOk) {
    std::cout << out.str() << std::flush;
    if (!std::cout) return ecm::ctl::kExitFailed;
  }
  return status;
}
