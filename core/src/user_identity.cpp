#include "ecm/core/user_identity.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "ecm/core/errors.hpp"
#include "ecm/core/names.hpp"

namespace ecm::core {
namespace {

constexpr std::size_t kMaxBuffer = std::size_t{1} << 24;  // 16 MiB: beyond that, give up
constexpr int kMaxGroups = 1 << 16;

[[noreturn]] void refuse(const std::string& name, const std::string& why) {
  throw EcmException(ErrorCode::kPermissionDenied, "user '" + name + "' is refused: " + why);
}

bool contains(const std::vector<std::string>& list, const std::string& name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

struct PasswdEntry {
  std::string name;
  uid_t uid;
  gid_t gid;
  std::string home;
  std::string shell;
};

std::optional<PasswdEntry> lookup_passwd(const std::string& name) {
  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::size_t size = hint > 0 ? static_cast<std::size_t>(hint) : 1024;
  std::vector<char> buffer(size);
  for (;;) {
    passwd pw{};
    passwd* result = nullptr;
    const int rc = getpwnam_r(name.c_str(), &pw, buffer.data(), buffer.size(), &result);
    if (rc == ERANGE) {
      if (buffer.size() >= kMaxBuffer) {
        throw EcmException(ErrorCode::kInternal,
                           "getpwnam_r('" + name + "'): entry larger than the lookup buffer limit");
      }
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (rc == EINTR) continue;
    if (rc == 0 && result == nullptr) return std::nullopt;
    // Some implementations report "not found" as an error code instead of a null result.
    if (rc == ENOENT || rc == ESRCH) return std::nullopt;
    if (rc != 0) {
      throw EcmException(ErrorCode::kInternal,
                         "getpwnam_r('" + name + "') failed: " + std::strerror(rc));
    }
    return PasswdEntry{result->pw_name ? result->pw_name : name, result->pw_uid, result->pw_gid,
                       result->pw_dir ? result->pw_dir : "",
                       result->pw_shell ? result->pw_shell : ""};
  }
}

std::vector<gid_t> lookup_groups(const std::string& name, gid_t primary) {
  int count = 32;
  for (;;) {
    std::vector<gid_t> groups(static_cast<std::size_t>(count));
    int n = count;
    if (getgrouplist(name.c_str(), primary, groups.data(), &n) >= 0) {
      groups.resize(static_cast<std::size_t>(std::max(n, 0)));
      return groups;
    }
    // Too small: glibc put the needed count in n; other libcs may not, so at least double.
    if (count >= kMaxGroups) {
      throw EcmException(ErrorCode::kInternal,
                         "getgrouplist('" + name + "'): more groups than the limit");
    }
    count = std::min(kMaxGroups, std::max(n, count * 2));
  }
}

}  // namespace

UserIdentity resolve_user(const std::string& name, const UserPolicy& policy) {
  if (!is_valid_user_name(name)) {
    throw EcmException(ErrorCode::kInvalidRequest,
                       "user name is not a valid POSIX user name ([a-z_][a-z0-9_-]*[$]?, at most "
                       "32 characters)");
  }
  const std::optional<PasswdEntry> pw = lookup_passwd(name);
  if (!pw) {
    throw EcmException(ErrorCode::kInvalidRequest,
                       "user '" + name + "' does not exist on this node");
  }
  if (pw->uid == 0 && !policy.allow_root) {
    refuse(name, "it is root (uid 0) and the user policy does not allow root (allow_root=false)");
  }
  if (contains(policy.deny, name)) refuse(name, "it is in the user policy's deny list");
  if (!policy.allow.empty() && !contains(policy.allow, name)) {
    refuse(name, "it is not in the user policy's allow list");
  }
  const bool root_allowed = pw->uid == 0 && policy.allow_root;
  if (!root_allowed && pw->uid < policy.min_uid && !contains(policy.allow, name)) {
    refuse(name, "its uid " + std::to_string(pw->uid) + " is below min_uid " +
                     std::to_string(policy.min_uid) +
                     " (a system account) and it is not explicitly in the allow list");
  }

  UserIdentity identity;
  identity.name = pw->name;
  identity.credentials = Credentials{pw->uid, pw->gid, lookup_groups(pw->name, pw->gid)};
  identity.home = pw->home;
  identity.shell = pw->shell;
  return identity;
}

bool running_as_root() {
  return geteuid() == 0;
}

}  // namespace ecm::core
