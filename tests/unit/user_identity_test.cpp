#include "ecm/core/user_identity.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "ecm/core/errors.hpp"

using namespace ecm::core;

namespace {

// Runs resolve_user and returns the message of the EcmException it must throw.
// Policy refusals are kPermissionDenied; a malformed or unknown name is kInvalidRequest.
std::string refusal(const std::string& name, const UserPolicy& policy,
                    ErrorCode expected = ErrorCode::kPermissionDenied) {
  try {
    resolve_user(name, policy);
  } catch (const EcmException& e) {
    EXPECT_EQ(e.code(), expected) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "resolve_user('" << name << "') was not refused";
  return {};
}

bool has_group(const UserIdentity& id, gid_t gid) {
  const auto& g = id.credentials.groups;
  return std::find(g.begin(), g.end(), gid) != g.end();
}

// The standard output of a shell command; *ok tells whether it exited with status 0.
std::string run(const std::string& command, bool* ok = nullptr) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    if (ok) *ok = false;
    return out;
  }
  char buf[256];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0)
    out.append(buf, n);
  const int status = pclose(pipe);
  if (ok) *ok = status == 0;
  return out;
}

std::vector<unsigned long> numbers(const std::string& text) {
  std::istringstream in(text);
  std::vector<unsigned long> out;
  unsigned long v;
  while (in >> v)
    out.push_back(v);
  return out;
}

bool tool_exists(const std::string& tool) {
  return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace

TEST(UserIdentity, RootRefusedByDefault) {
  const std::string msg = refusal("root", UserPolicy{});
  EXPECT_NE(msg.find("root"), std::string::npos) << msg;
  EXPECT_NE(msg.find("allow_root"), std::string::npos) << msg;
}

TEST(UserIdentity, RootAllowedWithAllowRoot) {
  UserPolicy policy;
  policy.allow_root = true;
  const UserIdentity id = resolve_user("root", policy);
  EXPECT_EQ(id.name, "root");
  EXPECT_EQ(id.credentials.uid, 0u);
  EXPECT_EQ(id.credentials.gid, 0u);
  EXPECT_TRUE(has_group(id, 0));
  EXPECT_FALSE(id.home.empty());
}

TEST(UserIdentity, RootAllowedStillObeysDenyAndAllowLists) {
  UserPolicy deny;
  deny.allow_root = true;
  deny.deny = {"root"};
  EXPECT_NE(refusal("root", deny).find("deny list"), std::string::npos);

  UserPolicy allow;
  allow.allow_root = true;
  allow.allow = {"nobody"};
  EXPECT_NE(refusal("root", allow).find("allow list"), std::string::npos);
}

TEST(UserIdentity, NobodyResolvesWithGidAndGroups) {
  bool ok = false;
  const auto uid = numbers(run("id -u nobody 2>/dev/null", &ok));
  if (!ok || uid.size() != 1) GTEST_SKIP() << "no 'nobody' user on this node";
  const auto gid = numbers(run("id -g nobody"));
  const auto groups = numbers(run("id -G nobody"));

  UserPolicy policy;  // nobody is 65534 >= min_uid: allowed by the default policy
  const UserIdentity id = resolve_user("nobody", policy);
  EXPECT_EQ(id.name, "nobody");
  EXPECT_EQ(id.credentials.uid, uid[0]);
  ASSERT_EQ(gid.size(), 1u);
  EXPECT_EQ(id.credentials.gid, gid[0]);
  EXPECT_TRUE(has_group(id, id.credentials.gid));
  std::vector<unsigned long> got(id.credentials.groups.begin(), id.credentials.groups.end());
  std::vector<unsigned long> want = groups;
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  EXPECT_FALSE(id.shell.empty());

  policy.allow = {"nobody"};
  EXPECT_EQ(resolve_user("nobody", policy).credentials.uid, uid[0]);
}

TEST(UserIdentity, UnknownUserRefused) {
  const std::string name = "ecm_nosuchuser_" + std::to_string(getpid());
  const std::string msg = refusal(name, UserPolicy{}, ErrorCode::kInvalidRequest);
  EXPECT_EQ(msg, "user '" + name + "' does not exist on this node");
}

TEST(UserIdentity, MalformedNameRefusedBeforeLookup) {
  for (const std::string& bad : {std::string(""), std::string("../etc"), std::string("Root"),
                                 std::string("a b"), std::string("ro\0ot", 5)}) {
    const std::string msg = refusal(bad, UserPolicy{}, ErrorCode::kInvalidRequest);
    EXPECT_NE(msg.find("not a valid"), std::string::npos) << msg;
  }
}

TEST(UserIdentity, DenyListRefuses) {
  UserPolicy policy;
  policy.deny = {"nobody"};
  const std::string msg = refusal("nobody", policy);
  EXPECT_NE(msg.find("deny list"), std::string::npos) << msg;
  // Deny wins over allow.
  policy.allow = {"nobody"};
  EXPECT_NE(refusal("nobody", policy).find("deny list"), std::string::npos);
}

TEST(UserIdentity, AllowListRefusesOthers) {
  UserPolicy policy;
  policy.allow = {"someone_else"};
  const std::string msg = refusal("nobody", policy);
  EXPECT_NE(msg.find("allow list"), std::string::npos) << msg;
}

TEST(UserIdentity, MinUidRefusesSystemAccountsUnlessAllowed) {
  bool ok = false;
  const auto uid = numbers(run("id -u daemon 2>/dev/null", &ok));
  if (!ok || uid.size() != 1) GTEST_SKIP() << "no 'daemon' user on this node";
  ASSERT_LT(uid[0], 1000u);

  const std::string msg = refusal("daemon", UserPolicy{});
  EXPECT_NE(msg.find("min_uid"), std::string::npos) << msg;

  UserPolicy allowed;
  allowed.allow = {"daemon"};
  const UserIdentity id = resolve_user("daemon", allowed);
  EXPECT_EQ(id.credentials.uid, uid[0]);

  UserPolicy low;
  low.min_uid = 0;
  EXPECT_EQ(resolve_user("daemon", low).credentials.uid, uid[0]);
}

TEST(UserIdentity, RunningAsRootMatchesEuid) {
  EXPECT_EQ(running_as_root(), geteuid() == 0);
}

namespace {

// Deletes the user, then the group, whatever happened in the test.
class TempAccount {
 public:
  TempAccount(std::string user, std::string group)
      : user_(std::move(user)), group_(std::move(group)) {}
  ~TempAccount() {
    // Best effort: a failure here cannot be reported from a destructor (kept in a variable so a
    // _FORTIFY_SOURCE build's warn_unused_result stays quiet).
    int rc = 0;
    if (user_created) rc |= std::system(("userdel " + user_ + " >/dev/null 2>&1").c_str());
    if (group_created) rc |= std::system(("groupdel " + group_ + " >/dev/null 2>&1").c_str());
    static_cast<void>(rc);
  }
  TempAccount(const TempAccount&) = delete;
  TempAccount& operator=(const TempAccount&) = delete;

  bool group_created = false;
  bool user_created = false;

 private:
  std::string user_;
  std::string group_;
};

}  // namespace

TEST(UserIdentity, ResolvesARealCreatedUser) {
  if (!running_as_root()) GTEST_SKIP() << "creating a user needs root";
  for (const char* tool : {"useradd", "userdel", "groupadd", "groupdel"}) {
    if (!tool_exists(tool)) GTEST_SKIP() << tool << " is not installed";
  }
  const std::string pid = std::to_string(getpid());
  const std::string user = "ecmtest_" + pid;
  const std::string group = "ecmtestg_" + pid;
  const std::string home = "/nonexistent/" + user;

  TempAccount guard(user, group);
  ASSERT_EQ(std::system(("groupadd " + group + " >/dev/null 2>&1").c_str()), 0);
  guard.group_created = true;
  ASSERT_EQ(std::system(("useradd -M -N -s /usr/sbin/nologin -d " + home + " -G " + group + " " +
                         user + " >/dev/null 2>&1")
                            .c_str()),
            0);
  guard.user_created = true;

  const auto uid = numbers(run("id -u " + user));
  const auto gid = numbers(run("id -g " + user));
  const auto extra = numbers(run("getent group " + group + " | cut -d: -f3"));
  ASSERT_EQ(uid.size(), 1u);
  ASSERT_EQ(gid.size(), 1u);
  ASSERT_EQ(extra.size(), 1u);

  UserPolicy policy;
  policy.allow = {user};  // also passes min_uid should useradd have picked a low uid
  const UserIdentity id = resolve_user(user, policy);
  EXPECT_EQ(id.name, user);
  EXPECT_EQ(id.credentials.uid, uid[0]);
  EXPECT_EQ(id.credentials.gid, gid[0]);
  EXPECT_TRUE(has_group(id, static_cast<gid_t>(gid[0])));
  EXPECT_TRUE(has_group(id, static_cast<gid_t>(extra[0])));
  EXPECT_EQ(id.home, home);
  EXPECT_EQ(id.shell, "/usr/sbin/nologin");

  UserPolicy deny;
  deny.deny = {user};
  EXPECT_NE(refusal(user, deny).find("deny list"), std::string::npos);
}
