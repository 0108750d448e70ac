// What a config reload (SIGHUP) may change in a running ECM: the keys whose services take a new
// value safely at once ("live"), and the keys that only a restart applies. Compares two EcmConfig
// values key by key; EcmDaemon::reload applies the live ones.
#pragma once

#include <string>
#include <vector>

#include "config/ecm_config.hpp"

namespace ecm::host {

struct ConfigChanges {
  std::vector<std::string> live;     // changed keys applied without a restart ("log.level")
  std::vector<std::string> restart;  // changed keys that need a restart ("server.listen")
  bool empty() const { return live.empty() && restart.empty(); }
};

// Named in `restart` when keys changed that the table of config_reload.cpp does not know (a key
// added to EcmConfig without a line there): they are taken to need a restart.
inline constexpr const char* kUnnamedConfigKeys = "(other keys)";

// The keys of `next` that differ from `current`, in the order of conf/ecm.toml's tables, each
// classified. A key made of several fields (server.listen: host and port) is named once.
ConfigChanges classify_config_changes(const EcmConfig& current, const EcmConfig& next);

// Copies the live keys of `next` into `current` (what the running daemon now uses); the others
// stay as they were, so a later reload still names them until a restart.
void adopt_live_keys(EcmConfig& current, const EcmConfig& next);

// Every key a reload applies live, and every key it names as needing a restart (the docs' table).
std::vector<std::string> live_config_keys();
std::vector<std::string> restart_config_keys();

// "log.level, health.cpu_overload_percent" ("-" when empty).
std::string join_keys(const std::vector<std::string>& keys);

}  // namespace ecm::host
