// ecm: the EngineConnManager daemon.
#include <signal.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>

#include <boost/program_options.hpp>

#include "config/config_error.hpp"
#include "config/ecm_config.hpp"
#include "daemon/ecm_daemon.hpp"
#include "util/log.hpp"

namespace po = boost::program_options;

namespace {

// SIGHUP: `file` read again; a file that does not load changes nothing.
void reload_config(ecm::host::EcmDaemon& daemon, const std::filesystem::path& file) {
  auto logger = ecm::host::log("daemon");
  logger->info("SIGHUP: reading {} again", file.string());
  ecm::host::EcmConfig next;
  try {
    next = ecm::host::load_config(file);
  } catch (const std::exception& e) {  // ConfigError: file, line, key
    logger->error("config reload refused, nothing changed: {}", e.what());
    return;
  }
  try {
    daemon.reload(next);
  } catch (const std::exception& e) {
    logger->error("config reload failed: {}", e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "conf/ecm.toml";
  po::options_description opts(
      "Usage: ecm [--config FILE]\n"
      "SIGTERM or SIGINT: stop. SIGHUP: read the config again (keys that can change live are\n"
      "applied; the log names those that need a restart).\nOptions");
  opts.add_options()("help,h", "show this help")(
      "config,c", po::value(&config_path)->default_value(config_path), "the config file")(
      "check", "check the config and exit");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "ecm: " << e.what() << "\n" << opts;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }

  ecm::host::EcmConfig config;
  try {
    config = ecm::host::load_config(config_path);
  } catch (const ecm::host::ConfigError& e) {
    std::cerr << "ecm: bad config: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("check")) {
    std::cout << "ecm: " << config_path << " is valid\n";
    return 0;
  }
  ecm::host::set_log_level(config.log_level);

  // Signals are taken by this thread with sigwait; every thread started later inherits the mask.
  // Engines get a clean mask and default dispositions (the launcher resets both).
  sigset_t wait_set;
  sigemptyset(&wait_set);
  sigaddset(&wait_set, SIGINT);
  sigaddset(&wait_set, SIGTERM);
  sigaddset(&wait_set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &wait_set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  ecm::host::EcmDaemon daemon(config);
  try {
    daemon.start();
  } catch (const std::exception& e) {
    std::cerr << "ecm: cannot start: " << e.what() << "\n";
    return 1;
  }
  for (;;) {
    int sig = 0;
    sigwait(&wait_set, &sig);
    if (sig == SIGHUP) {
      reload_config(daemon, config.source);
      continue;
    }
    ecm::host::log("daemon")->info("signal {}: stopping", sig);
    break;
  }
  daemon.shutdown();
  return 0;
}
