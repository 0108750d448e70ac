#include "ctl_args.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>

#include "ctl_errors.hpp"

namespace po = boost::program_options;

namespace ecm::ctl {

Address parse_address(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return UsageError("bad --address '" + std::string(text) + "': " + why);
  };
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos) throw bad("missing ']'");
    host = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (!rest.starts_with(':')) throw bad("expected HOST:PORT");
    port = rest.substr(1);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw bad("expected HOST:PORT");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) throw bad("write an IPv6 host as [HOST]:PORT");
  }
  if (host.empty()) throw bad("empty host");
  if (port.empty()) throw bad("empty port");
  int value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || ptr != port.data() + port.size() || value < 1 || value > 65535) {
    throw bad("port must be a number from 1 to 65535");
  }
  return Address{std::string(host), value, std::string(text)};
}

std::map<std::string, std::string> parse_key_values(std::string_view option,
                                                    const std::vector<std::string>& items) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    auto eq = item.find('=');
    if (eq == std::string::npos) {
      throw UsageError("--" + std::string(option) + " '" + item + "' is not KEY=VALUE");
    }
    if (eq == 0) throw UsageError("--" + std::string(option) + " '" + item + "' has an empty key");
    auto key = item.substr(0, eq);
    if (!out.emplace(key, item.substr(eq + 1)).second) {
      throw UsageError("--" + std::string(option) + " key '" + key + "' given twice");
    }
  }
  return out;
}

po::options_description global_options_description() {
  po::options_description d("Global options");
  d.add_options()  //
      ("address", po::value<std::string>()->value_name("HOST:PORT"),
       "the ECM to talk to (default 127.0.0.1:9101)")            //
      ("json", po::bool_switch(), "print JSON instead of text")  //
      ("tls-ca", po::value<std::string>()->value_name("FILE"),
       "connect with TLS and verify the ECM's certificate against this CA (PEM); the certificate "
       "must name the host of --address (env ECMCTL_TLS_CA)")  //
      ("tls-cert", po::value<std::string>()->value_name("FILE"),
       "client certificate (PEM) for an ECM that requires one; needs --tls-key and --tls-ca "
       "(env ECMCTL_TLS_CERT)")  //
      ("tls-key", po::value<std::string>()->value_name("FILE"),
       "the client certificate's private key (PEM, unencrypted) (env ECMCTL_TLS_KEY)")  //
      ("token-file", po::value<std::string>()->value_name("FILE"),
       "give the ECM the shared token in FILE before the command (env ECMCTL_TOKEN_FILE)")  //
      ("help,h", po::bool_switch(), "show help and exit");
  return d;
}

namespace {

// The option's value, else the environment variable's; empty when neither is set.
std::string option_or_env(const po::variables_map& vm, const std::string& option, const char* env) {
  if (vm.count(option)) {
    auto v = vm[option].as<std::string>();
    if (v.empty()) throw UsageError("--" + option + " must not be empty");
    return v;
  }
  const char* value = std::getenv(env);
  return value != nullptr ? value : "";
}

Security read_security(const po::variables_map& vm) {
  Security s;
  s.tls_ca = option_or_env(vm, "tls-ca", "ECMCTL_TLS_CA");
  s.tls_cert = option_or_env(vm, "tls-cert", "ECMCTL_TLS_CERT");
  s.tls_key = option_or_env(vm, "tls-key", "ECMCTL_TLS_KEY");
  s.token_file = option_or_env(vm, "token-file", "ECMCTL_TOKEN_FILE");
  if (s.tls_cert.empty() != s.tls_key.empty()) {
    throw UsageError("--tls-cert and --tls-key go together");
  }
  if (!s.tls_cert.empty() && s.tls_ca.empty()) {
    throw UsageError("--tls-cert needs --tls-ca (the CA that signed the ECM's certificate)");
  }
  return s;
}

}  // namespace

GlobalOptions read_global_options(const po::variables_map& vm) {
  GlobalOptions g;
  g.json = vm["json"].as<bool>();
  g.help = vm["help"].as<bool>();
  if (g.help) return g;  // help needs no address, and a bad one must not hide it
  g.address = parse_address(vm.count("address") ? vm["address"].as<std::string>()
                                                : std::string(kDefaultAddress));
  g.security = read_security(vm);
  return g;
}

SplitArgs split_command(const std::vector<std::string>& args) {
  // The global options that take a value.
  static constexpr std::array<std::string_view, 5> kValued = {"--address", "--tls-ca", "--tls-cert",
                                                              "--tls-key", "--token-file"};
  SplitArgs out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (out.command) {
      out.rest.push_back(a);
    } else if (std::find(kValued.begin(), kValued.end(), a) != kValued.end()) {
      out.rest.push_back(a);
      if (i + 1 < args.size()) out.rest.push_back(args[++i]);
    } else if (a == "--json" || a == "--help" || a == "-h" ||
               std::any_of(kValued.begin(), kValued.end(), [&](std::string_view o) {
                 return a.starts_with(std::string(o) + "=");
               })) {
      out.rest.push_back(a);
    } else if (a.starts_with('-')) {
      throw UsageError("unknown option '" + a + "' before the command name");
    } else {
      out.command = a;
    }
  }
  return out;
}

po::variables_map parse_args(const std::vector<std::string>& args,
                             const po::options_description& options,
                             const po::positional_options_description& positional) {
  po::variables_map vm;
  try {
    auto style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    po::store(
        po::command_line_parser(args).options(options).positional(positional).style(style).run(),
        vm);
    po::notify(vm);
  } catch (const po::too_many_positional_options_error&) {
    throw UsageError("too many arguments");
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return vm;
}

std::optional<std::string> optional_string(const po::variables_map& vm, const std::string& name) {
  if (!vm.count(name)) return std::nullopt;
  auto value = vm[name].as<std::string>();
  if (value.empty()) throw UsageError("--" + name + " must not be empty");
  return value;
}

}  // namespace ecm::ctl
