#include "ecm/core/launch_validation.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include <csignal>

#include "ecm/core/errors.hpp"
#include "ecm/core/names.hpp"

namespace ecm::core {
namespace {

constexpr std::size_t kMaxMapEntries = 256;
constexpr std::size_t kMaxKey = 256;
constexpr std::size_t kMaxValue = 64 * 1024;

[[noreturn]] void invalid(const std::string& message) {
  throw EcmException(ErrorCode::kInvalidRequest, message);
}

void check_map(const char* what, const std::map<std::string, std::string>& m, bool env_keys) {
  if (m.size() > kMaxMapEntries) {
    invalid(std::string(what) + ": more than " + std::to_string(kMaxMapEntries) + " entries");
  }
  for (const auto& [k, v] : m) {
    if (k.empty() || k.size() > kMaxKey || !has_no_nul(k)) {
      invalid(std::string(what) + ": bad key '" + k.substr(0, 64) + "'");
    }
    if (env_keys && k.find('=') != std::string::npos) {
      invalid(std::string(what) + ": key '" + k + "' contains '='");
    }
    if (v.size() > kMaxValue || !has_no_nul(v)) {
      invalid(std::string(what) + ": value of '" + k + "' is too long or contains NUL");
    }
  }
}

}  // namespace

void validate_launch_request(const sdk::LaunchRequest& r) {
  if (r.user.empty()) invalid("user is required");
  if (!is_valid_user_name(r.user)) {
    invalid("user '" + r.user.substr(0, 64) + "' is not a valid user name");
  }
  if (r.engine_type.empty()) invalid("engine_type is required");
  if (!is_safe_name(r.engine_type)) {
    invalid("engine_type '" + r.engine_type.substr(0, 64) + "' is not a valid name");
  }
  if (!r.engine_version.empty() && !is_safe_name(r.engine_version)) {
    invalid("engine_version '" + r.engine_version.substr(0, 64) + "' is not a valid version");
  }
  if (!r.ticket_id.empty() && (r.ticket_id.size() > 128 || !has_no_nul(r.ticket_id))) {
    invalid("ticket_id is longer than 128 bytes or contains NUL");
  }
  check_map("labels", r.labels, false);
  check_map("properties", r.properties, false);
  check_map("env", r.env, true);
}

void validate_launch_spec(const sdk::LaunchSpec& spec) {
  auto bad = [](const std::string& m) {
    throw EcmException(ErrorCode::kPluginFailed, "plugin returned a bad launch spec: " + m);
  };
  if (spec.executable.empty() || spec.executable.front() != '/' || !has_no_nul(spec.executable)) {
    bad("executable must be an absolute path");
  }
  for (const auto& a : spec.argv) {
    if (!has_no_nul(a)) bad("argv contains a NUL byte");
  }
  for (const auto& [k, v] : spec.env) {
    if (k.empty() || k.find('=') != std::string::npos || !has_no_nul(k) || !has_no_nul(v)) {
      bad("env key '" + k + "' is not a valid variable name");
    }
  }
  if (!spec.working_dir.empty() && !is_safe_relative_path(spec.working_dir)) {
    bad("working_dir '" + spec.working_dir + "' escapes the work dir");
  }
  for (const auto& d : spec.directories) {
    if (!is_safe_relative_path(d)) bad("directory '" + d + "' escapes the work dir");
  }
  for (const auto& [path, content] : spec.files) {
    if (!is_safe_relative_path(path)) bad("file '" + path + "' escapes the work dir");
  }
  if (spec.stop_signal <= 0 || spec.stop_signal >= NSIG) {
    bad("stop_signal " + std::to_string(spec.stop_signal) + " is not a signal");
  }
  if (spec.stop_grace.count() < 0) bad("stop_grace is negative");
}

void validate_port_requests(const std::vector<sdk::PortRequest>& ports) {
  auto bad = [](const std::string& m) {
    throw EcmException(ErrorCode::kPluginFailed, "plugin asked for bad ports: " + m);
  };
  if (ports.size() > kMaxPortsPerEngine) {
    bad(std::to_string(ports.size()) + " ports, at most " + std::to_string(kMaxPortsPerEngine));
  }
  std::set<std::string> seen;
  for (const auto& p : ports) {
    const bool word = !p.name.empty() && p.name.size() <= 64 &&
                      std::all_of(p.name.begin(), p.name.end(), [](char c) {
                        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                      });
    if (!word) bad("port name '" + p.name.substr(0, 64) + "' is not [A-Za-z0-9_]+");
    if (!seen.insert(p.name).second) bad("port name '" + p.name + "' is asked twice");
    if (p.mode != sdk::PortRequest::Mode::kSocket && p.mode != sdk::PortRequest::Mode::kReserved) {
      bad("port '" + p.name + "' has an unknown mode");
    }
  }
}

}  // namespace ecm::core
