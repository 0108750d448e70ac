// Engines run as the requested OS user when the ECM runs as root: uid, gids, home; work dir 0700
// owned by that user; root and users outside the policy refused. The test creates its own users.
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "ecm_harness.hpp"

namespace ecm::itest {
namespace {

// A throw-away OS user, deleted (with nothing of it left) at the end of the test.
class TestUser {
 public:
  explicit TestUser(const std::string& tag)
      : name_("ecmt" + tag + std::to_string(getpid() % 100000)) {
    std::system(("userdel " + name_ + " >/dev/null 2>&1").c_str());
    created_ = std::system(("useradd -M -d /nonexistent/" + name_ + " -s /usr/sbin/nologin " +
                            name_ + " >/dev/null 2>&1")
                               .c_str()) == 0;
  }
  ~TestUser() {
    if (created_) std::system(("userdel " + name_ + " >/dev/null 2>&1").c_str());
  }
  bool created() const { return created_; }
  const std::string& name() const { return name_; }
  uid_t uid() const { return getpwnam(name_.c_str())->pw_uid; }
  gid_t gid() const { return getpwnam(name_.c_str())->pw_gid; }

 private:
  std::string name_;
  bool created_ = false;
};

EcmOptions run_as(const std::string& users_toml) {
  EcmOptions o;
  o.users_toml = users_toml;
  return o;
}

// The daemon's temp dir is mkdtemp's 0700: let other users reach the work root below it.
void open_for_engines(const EcmProcess& ecm) {
  ::chmod(ecm.dir().c_str(), 0711);
}

void expect_nothing_held(EcmProcess& ecm) {
  api::NodeResources res;
  ecm.client().getResources(res);
  EXPECT_EQ(res.locked.instances, 0);
  EXPECT_EQ(res.used.instances, 0);
}

#define REQUIRE_ROOT()                                              \
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users"; \
  static_assert(true)

}  // namespace

TEST(RunAsUser, EngineRunsWithTheUsersIdsAndHomeInAPrivateDirItOwns) {
  REQUIRE_ROOT();
  TestUser user("a");
  ASSERT_TRUE(user.created()) << "useradd failed";
  EcmProcess ecm(run_as("run_as = \"requested\"\n"));
  open_for_engines(ecm);
  auto e = ecm.launch(shell_request(
      user.name(), "echo uid=$(id -u) gid=$(id -g) home=$HOME user=$USER; sleep 600"));
  ASSERT_TRUE(eventually([&] { return !read_file(e.log_dir + "/stdout").empty(); }))
      << read_file(e.log_dir + "/stderr");
  EXPECT_EQ(read_file(e.log_dir + "/stdout"),
            "uid=" + std::to_string(user.uid()) + " gid=" + std::to_string(user.gid()) +
                " home=/nonexistent/" + user.name() + " user=" + user.name() + "\n");
  EXPECT_EQ(e.run_as_uid, static_cast<std::int32_t>(user.uid()));
  for (const auto& path : {e.work_dir, e.log_dir, e.log_dir + "/stdout"}) {
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_uid, user.uid()) << path;
  }
  struct stat wd {};
  ::stat(e.work_dir.c_str(), &wd);
  EXPECT_EQ(wd.st_mode & 07777, 0700u);
  // The dir above it, <work_root>/<user>, stays the ECM's: the user passes through, and cannot
  // swap an engine's dir for a link while the ECM writes into it.
  struct stat parent {};
  ASSERT_EQ(::stat(std::filesystem::path(e.work_dir).parent_path().c_str(), &parent), 0);
  EXPECT_EQ(parent.st_uid, 0u);
  EXPECT_EQ(parent.st_mode & 07777, 0711u);
}

TEST(RunAsUser, RootIsRefusedUnlessAllowedAndNothingIsHeld) {
  REQUIRE_ROOT();
  EcmProcess ecm(run_as("run_as = \"requested\"\n"));
  auto err = ecm_error_of([&] { ecm.launch(shell_request("root", "sleep 600")); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, api::ErrorCode::PERMISSION_DENIED);
  EXPECT_NE(err->message.find("root"), std::string::npos) << err->message;
  std::vector<api::EngineConn> all;
  ecm.client().listEngineConns(all, {});
  EXPECT_TRUE(all.empty()) << "a refused user creates no record";
  expect_nothing_held(ecm);
}

TEST(RunAsUser, AllowAndDenyListsApply) {
  REQUIRE_ROOT();
  TestUser allowed("b");
  TestUser other("c");
  ASSERT_TRUE(allowed.created() && other.created());
  EcmProcess ecm(run_as("run_as = \"requested\"\nallow = [\"" + allowed.name() + "\"]\n"));
  open_for_engines(ecm);
  auto err = ecm_error_of([&] { ecm.launch(shell_request(other.name(), "sleep 600")); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, api::ErrorCode::PERMISSION_DENIED);
  EXPECT_NE(err->message.find("allow list"), std::string::npos) << err->message;
  auto ok = ecm.launch(shell_request(allowed.name(), "sleep 600"));
  EXPECT_EQ(ok.status, api::EngineStatus::RUNNING);

  EcmProcess denying(run_as("run_as = \"requested\"\ndeny = [\"" + other.name() + "\"]\n"));
  auto denied = ecm_error_of([&] { denying.launch(shell_request(other.name(), "sleep 600")); });
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->code, api::ErrorCode::PERMISSION_DENIED);
  EXPECT_NE(denied->message.find("deny list"), std::string::npos) << denied->message;
}

TEST(RunAsUser, UnknownUserIsAnInvalidRequest) {
  REQUIRE_ROOT();
  EcmProcess ecm(run_as("run_as = \"requested\"\n"));
  auto err = ecm_error_of([&] { ecm.launch(shell_request("ecm-no-such-user", "sleep 600")); });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, api::ErrorCode::INVALID_REQUEST);
  EXPECT_NE(err->message.find("does not exist"), std::string::npos) << err->message;
  expect_nothing_held(ecm);
}

TEST(RunAsUser, RunAsEcmRecordsTheUserOnly) {
  EcmProcess ecm(run_as("run_as = \"ecm\"\n"));
  // With run_as = "ecm" the user need not even exist on this node.
  auto e = ecm.launch(shell_request("someone-elsewhere", "echo uid=$(id -u); sleep 600"));
  EXPECT_TRUE(eventually([&] { return !read_file(e.log_dir + "/stdout").empty(); }));
  EXPECT_EQ(read_file(e.log_dir + "/stdout"), "uid=" + std::to_string(geteuid()) + "\n");
  EXPECT_FALSE(e.__isset.run_as_uid);
  EXPECT_EQ(e.user, "someone-elsewhere");
}

}  // namespace ecm::itest

namespace ecm::itest {
namespace {

// Resources when engines run as their users: the file localizer reads as the user (a file they
// cannot read is not found), and a private cache entry is the ECM's, readable through the link
// by its user's engine and not listable by another's.
TEST(RunAsUser, ResourcesAreReadAsTheUserAndPrivateEntriesStayTheirs) {
  REQUIRE_ROOT();
  TestUser alice("r");
  TestUser bob("s");
  ASSERT_TRUE(alice.created() && bob.created()) << "useradd failed";
  auto o = run_as("run_as = \"requested\"\n");
  o.plugins = {"shell", "file"};
  EcmProcess ecm(o, /*start=*/false);
  const auto res = ecm.dir() / "res";
  std::filesystem::create_directories(res);
  ::chmod(res.c_str(), 0755);
  std::ofstream(ecm.dir() / "plugin-conf" / "file.toml")
      << "roots = [\"" << res.string() << "\"]\n";
  std::ofstream(res / "secret") << "root only\n";
  ::chmod((res / "secret").c_str(), 0600);
  std::ofstream(res / "shared") << "for everyone\n";
  ::chmod((res / "shared").c_str(), 0644);
  ecm.start();
  open_for_engines(ecm);
  ::chmod(ecm.state_dir().c_str(), 0711);

  auto with = [&](const std::string& user, const std::string& command, const std::string& file) {
    api::ResourceSpec r;
    r.__set_uri("file://" + (res / file).string());
    r.__set_name("r.txt");
    auto req = shell_request(user, command);
    req.__set_resources({r});
    return req;
  };
  auto denied = ecm_error_of([&] { ecm.launch(with(alice.name(), "sleep 600", "secret")); });
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->code, api::ErrorCode::LOCALIZATION_FAILED);
  EXPECT_NE(denied->message.find("not found"), std::string::npos) << denied->message;

  const auto mine = ecm.launch(with(alice.name(), "cat r.txt; echo; sleep 600", "shared"));
  ASSERT_TRUE(eventually([&] { return !read_file(mine.log_dir + "/stdout").empty(); }))
      << read_file(mine.log_dir + "/stderr");
  EXPECT_EQ(read_file(mine.log_dir + "/stdout"), "for everyone\n\n");
  // The entry and its content are the ECM's: the user reads, never writes.
  const auto content =
      std::filesystem::read_symlink(std::filesystem::path(mine.work_dir) / "r.txt");
  struct stat st {};
  ASSERT_EQ(::stat(content.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  ASSERT_EQ(::stat(content.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0711u);

  // Another user's engine cannot list alice's entry to find its content.
  const auto other =
      ecm.launch(shell_request(bob.name(), "ls " + content.parent_path().string() +
                                               " >/dev/null 2>&1; echo ls=$?; sleep 600"));
  ASSERT_TRUE(eventually([&] { return !read_file(other.log_dir + "/stdout").empty(); }));
  EXPECT_NE(read_file(other.log_dir + "/stdout"), "ls=0\n");
}

}  // namespace
}  // namespace ecm::itest
