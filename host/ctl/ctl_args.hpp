// Command line pieces shared by every command: the address, k=v lists, finding the command name.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/program_options.hpp>

namespace ecm::ctl {

inline constexpr std::string_view kDefaultAddress = "127.0.0.1:9101";

struct Address {
  std::string host;  // without the brackets of an IPv6 literal
  int port = 0;
  std::string text;  // as the user wrote it, for messages
};

// "HOST:PORT" or "[V6]:PORT", port 1..65535. Throws UsageError.
Address parse_address(std::string_view text);

// Splits each "k=v" at its first '='; the value may hold '=' and spaces. A missing '=', an empty
// key or a repeated key is a UsageError naming `option`.
std::map<std::string, std::string> parse_key_values(std::string_view option,
                                                    const std::vector<std::string>& items);

// How ecmctl secures its connection to the ECM's main port: the global options, or where one
// is not given the environment (ECMCTL_TLS_CA, ECMCTL_TLS_CERT, ECMCTL_TLS_KEY, ECMCTL_TOKEN_FILE).
struct Security {
  std::string tls_ca;    // set: TLS, the ECM's certificate verified against this CA (PEM)
  std::string tls_cert;  // with tls_key: the client certificate (PEM) the ECM may require
  std::string tls_key;
  std::string token_file;  // set: its token is given to authenticate() before the command
};

struct GlobalOptions {
  Address address;
  bool json = false;
  bool help = false;
  Security security;
};

// --address, --json, -h/--help, --tls-ca, --tls-cert, --tls-key, --token-file: accepted before
// or after the command name.
boost::program_options::options_description global_options_description();
GlobalOptions read_global_options(const boost::program_options::variables_map& vm);

// The arguments with the command name taken out. Only global options may precede the name.
struct SplitArgs {
  std::optional<std::string> command;
  std::vector<std::string> rest;
};
SplitArgs split_command(const std::vector<std::string>& args);

// Parses `args` against `options` and `positional`; program_options errors become UsageError.
boost::program_options::variables_map parse_args(
    const std::vector<std::string>& args,
    const boost::program_options::options_description& options,
    const boost::program_options::positional_options_description& positional);

// A string option's value, absent when not given. An empty value is a UsageError.
std::optional<std::string> optional_string(const boost::program_options::variables_map& vm,
                                           const std::string& name);

}  // namespace ecm::ctl
