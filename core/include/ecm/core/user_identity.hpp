// Who an engine runs as: a user name from a request, looked up on this node and checked against
// the node's user policy, becomes the credentials the launcher switches to before exec.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ecm/core/linux_process_launch.hpp"

namespace ecm::core {

struct UserPolicy {
  std::vector<std::string> allow;  // empty: any user not denied
  std::vector<std::string> deny;
  bool allow_root = false;
  std::uint32_t min_uid = 1000;  // system accounts below are refused unless explicitly in allow
  bool operator==(const UserPolicy&) const = default;
};

struct UserIdentity {
  std::string name;
  Credentials credentials;  // uid, primary gid, every group of the user (primary included)
  std::string home;
  std::string shell;
};

// Looks `name` up (getpwnam_r, getgrouplist; thread-safe) and applies `policy`, in this order:
//   malformed name (not is_valid_user_name)         -> kInvalidRequest
//   no such user on this node                        -> kInvalidRequest
//   uid 0 and !allow_root                            -> kPermissionDenied
//   name in deny                                     -> kPermissionDenied
//   allow non-empty and name not in it               -> kPermissionDenied
//   uid < min_uid and name not in allow              -> kPermissionDenied
// Root, once allowed by allow_root, is not refused by min_uid (allow_root is its explicit opt-in);
// it is still subject to deny and to a non-empty allow list. Every message names the rule that
// refused. A failing system lookup (not "not found") throws kInternal.
UserIdentity resolve_user(const std::string& name, const UserPolicy& policy);

// True when the effective uid is 0 (the ECM can switch to other users).
bool running_as_root();

}  // namespace ecm::core
