// Loading real plugin libraries: the good one, and each way a plugin can be wrong.
#include "plugins/plugin_registry.hpp"

#include <unistd.h>

#include <gtest/gtest.h>

#include <functional>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config_error.hpp"
#include "ecm/core/errors.hpp"

using namespace ecm;
using namespace ecm::host;
namespace fs = std::filesystem;

namespace {

class PluginRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ecm-registry-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    fs::create_directories(dir_ / "plugins");
    fs::create_directories(dir_ / "conf");
    install(fs::path(ECM_PLUGIN_DIR) / "shell.so", "shell");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void install(const fs::path& so, const std::string& as) {
    fs::copy_file(so, dir_ / "plugins" / (as + ".so"), fs::copy_options::overwrite_existing);
  }
  void install_test_plugin(const std::string& name) {
    install(fs::path(ECM_TEST_PLUGIN_DIR) / (name + ".so"), name);
  }
  PluginRegistry make() {
    return PluginRegistry(dir_ / "plugins", dir_ / "conf", dir_ / "private");
  }

  std::string load_error(PluginRegistry& r, const std::string& name) {
    try {
      r.load(name);
    } catch (const std::exception& e) {
      return e.what();
    }
    ADD_FAILURE() << name << " loaded";
    return "";
  }

  static bool mapped(const std::string& needle) {
    std::ifstream maps("/proc/self/maps");
    std::stringstream ss;
    ss << maps.rdbuf();
    return ss.str().find(needle) != std::string::npos;
  }

  static sdk::LaunchRequest request(const std::string& type, const std::string& mode = "ok") {
    sdk::LaunchRequest r;
    r.user = "alice";
    r.engine_type = type;
    r.properties["mode"] = mode;
    r.properties["command"] = "echo hi";
    return r;
  }

  fs::path dir_;
};

core::ErrorCode code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const core::EcmException& e) {
    return e.code();
  }
  ADD_FAILURE() << "no EcmException";
  return core::ErrorCode::kInternal;
}

}  // namespace

TEST_F(PluginRegistryTest, LoadsTheShellPluginFromAPrivateCopy) {
  auto r = make();
  r.load("shell");
  auto l = r.launcher_for("shell", "");
  EXPECT_EQ(l->engine_type(), "shell");
  EXPECT_EQ(l->library().name, "shell");
  EXPECT_EQ(l->library().version, "1.2.0");
  EXPECT_EQ(l->library().abi_major, sdk::kAbiMajor);
  EXPECT_EQ(l->library().sha256.size(), 64u);
  EXPECT_EQ(l->library().loaded_path, dir_ / "private" / ("shell-" + l->library().sha256 + ".so"));
  EXPECT_TRUE(mapped(l->library().loaded_path.string()));
  EXPECT_FALSE(mapped((dir_ / "plugins" / "shell.so").string()))
      << "the installed file itself must not be mapped";
  auto info = r.list();
  ASSERT_EQ(info.size(), 1u);
  EXPECT_EQ(info[0].engine_type, "shell");
  ASSERT_EQ(info[0].generations.size(), 1u);
  EXPECT_TRUE(info[0].generations[0].serving);
  EXPECT_EQ(info[0].kinds, std::vector<std::string>{"launcher"});
  EXPECT_EQ(info[0].generations[0].abi,
            std::to_string(sdk::kAbiMajor) + "." + std::to_string(sdk::kAbiMinor));
}

TEST_F(PluginRegistryTest, PluginConfigReachesThePlugin) {
  std::ofstream(dir_ / "conf" / "shell.toml")
      << "shell = \"/bin/bash\"\nallowed_shells = [\"/bin/bash\"]\n";
  auto r = make();
  r.load("shell");
  auto l = r.launcher_for("shell", "");
  auto spec = l->plan(request("shell"), {"ec-1", "/tmp/w", "/tmp/w/logs", {}}).spec;
  EXPECT_EQ(spec.executable, "/bin/bash");
  auto bad = request("shell");
  bad.properties["shell"] = "/bin/sh";
  EXPECT_EQ(code_of([&] { l->admit(bad); }), core::ErrorCode::kInvalidRequest);
}

TEST_F(PluginRegistryTest, WrongAbiIsRefusedNamingBothVersions) {
  install_test_plugin("wrong_abi");
  auto r = make();
  auto msg = load_error(r, "wrong_abi");
  EXPECT_NE(msg.find("ABI " + std::to_string(sdk::kAbiMajor + 1) + ".0"), std::string::npos) << msg;
  EXPECT_NE(
      msg.find("ABI " + std::to_string(sdk::kAbiMajor) + "." + std::to_string(sdk::kAbiMinor)),
      std::string::npos)
      << msg;
  EXPECT_TRUE(r.list().empty());
}

TEST_F(PluginRegistryTest, MissingSymbolIsRefused) {
  install_test_plugin("no_symbol");
  auto r = make();
  auto msg = load_error(r, "no_symbol");
  EXPECT_NE(msg.find("ecm_plugin_descriptor"), std::string::npos) << msg;
}

TEST_F(PluginRegistryTest, ThrowingFactoryIsRefusedWithItsMessage) {
  install_test_plugin("throws_on_create");
  auto r = make();
  auto msg = load_error(r, "throws_on_create");
  EXPECT_NE(msg.find("license server unreachable"), std::string::npos) << msg;
  EXPECT_TRUE(r.list().empty());
}

TEST_F(PluginRegistryTest, UnknownPluginKindIsRefused) {
  install_test_plugin("unknown_kind");
  auto r = make();
  auto msg = load_error(r, "unknown_kind");
  EXPECT_NE(msg.find("kinds this host does not know"), std::string::npos) << msg;
}

TEST_F(PluginRegistryTest, MissingTruncatedAndMisnamedFilesAreRefused) {
  auto r = make();
  EXPECT_NE(load_error(r, "absent").find("file not found"), std::string::npos);

  auto full = fs::file_size(dir_ / "plugins" / "shell.so");
  fs::copy_file(dir_ / "plugins" / "shell.so", dir_ / "plugins" / "truncated.so");
  fs::resize_file(dir_ / "plugins" / "truncated.so", full / 3);
  EXPECT_NE(load_error(r, "truncated").find("truncated ("), std::string::npos);

  install(fs::path(ECM_PLUGIN_DIR) / "shell.so", "renamed");
  EXPECT_NE(load_error(r, "renamed").find("calls itself 'shell'"), std::string::npos);

  std::ofstream(dir_ / "plugins" / "text.so") << "not an ELF file";
  EXPECT_NE(load_error(r, "text").find("not a loadable shared object"), std::string::npos);
  EXPECT_TRUE(r.list().empty());
}

TEST_F(PluginRegistryTest, UnknownTypeAndVersionAreTyped) {
  install_test_plugin("misbehaving");
  auto r = make();
  r.load("shell");
  r.load("misbehaving");
  EXPECT_EQ(code_of([&] { r.launcher_for("spark", ""); }), core::ErrorCode::kUnknownEngineType);
  EXPECT_EQ(code_of([&] { r.launcher_for("misbehaving", "3"); }),
            core::ErrorCode::kUnknownEngineType);
  EXPECT_NO_THROW(r.launcher_for("misbehaving", "2"));
  EXPECT_NO_THROW(r.launcher_for("shell", "anything"));
}

TEST_F(PluginRegistryTest, PluginExceptionsAndGarbageBecomePluginFailures) {
  install_test_plugin("misbehaving");
  auto r = make();
  r.load("misbehaving");
  auto l = r.launcher_for("misbehaving", "");
  const sdk::LaunchContext ctx{"ec-1", "/tmp/w", "/tmp/w/logs", {}};
  EXPECT_EQ(code_of([&] { l->admit(request("misbehaving", "throw_validate")); }),
            core::ErrorCode::kPluginFailed);
  for (const char* mode : {"throw", "throw_int", "garbage", "escape", "refuse"}) {
    EXPECT_EQ(code_of([&] { l->plan(request("misbehaving", mode), ctx); }),
              core::ErrorCode::kPluginFailed)
        << mode;
  }
  EXPECT_EQ(l->plan(request("misbehaving", "ok"), ctx).spec.executable, "/bin/sleep");
}

// validate, resources and ports run in one go, as build and readiness do: an error names the call
// of the go that failed, not the first one.
TEST_F(PluginRegistryTest, AnErrorInAGoOfCallsNamesTheCallThatFailed) {
  install_test_plugin("misbehaving");
  auto r = make();
  r.load("misbehaving");
  auto l = r.launcher_for("misbehaving", "");
  const sdk::LaunchContext ctx{"ec-1", "/tmp/w", "/tmp/w/logs", {}};
  auto message_of = [](const std::function<void()>& call) -> std::string {
    try {
      call();
    } catch (const core::EcmException& e) {
      EXPECT_EQ(e.code(), core::ErrorCode::kPluginFailed) << e.what();
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(message_of([&] { l->admit(request("misbehaving", "throw_ports")); }),
            "plugin 'misbehaving' ports threw: ports exploded");
  EXPECT_NE(message_of([&] { l->admit(request("misbehaving", "bad_ports")); }).find("port"),
            std::string::npos);
  EXPECT_EQ(message_of([&] { l->plan(request("misbehaving", "throw_readiness"), ctx); }),
            "plugin 'misbehaving' readiness threw: readiness exploded");
  EXPECT_EQ(message_of([&] { l->admit(request("misbehaving", "throw_validate")); }),
            "plugin 'misbehaving' validate threw: validate exploded");
}

TEST_F(PluginRegistryTest, LibraryLeavesTheProcessWhenItsLastObjectIsGone) {
  fs::path loaded;
  {
    auto lib = open_plugin_library("misbehaving", fs::path(ECM_TEST_PLUGIN_DIR) / "misbehaving.so",
                                   dir_ / "private");
    loaded = lib->loaded_path;
    auto gen = std::make_shared<LauncherGeneration>(lib, sdk::PluginConfig{}, 1);
    lib.reset();
    EXPECT_TRUE(mapped(loaded.string()));
    // The launcher alone keeps its library loaded.
    EXPECT_EQ(gen->engine_type(), "misbehaving");
    EXPECT_TRUE(mapped(loaded.string()));
  }
  EXPECT_FALSE(mapped(loaded.string())) << "dlclose did not unload the plugin (STB_GNU_UNIQUE?)";
}

TEST_F(PluginRegistryTest, ReplacingTheInstalledFileDoesNotTouchTheLoadedCopy) {
  auto r = make();
  r.load("shell");
  auto l = r.launcher_for("shell", "");
  // Overwrite the installed file in place with garbage: the running generation is unaffected.
  std::ofstream(dir_ / "plugins" / "shell.so", std::ios::trunc) << "garbage";
  auto spec = l->plan(request("shell"), {"ec-1", "/tmp/w", "/tmp/w/logs", {}}).spec;
  EXPECT_EQ(spec.argv.back(), "echo hi");
}

namespace {

// Localizers (ABI 1.4): a scheme's default, one bound to an engine type, and a clash refused.
class LocalizerRegistryTest : public PluginRegistryTest {};

TEST_F(LocalizerRegistryTest, AnEngineTypesOwnLocalizerWinsAndASecondDefaultIsRefused) {
  install(fs::path(ECM_PLUGIN_DIR) / "file.so", "file");
  std::ofstream(dir_ / "conf" / "file.toml") << "roots = [\"/tmp\"]\n";
  install_test_plugin("bound_localizer");
  install_test_plugin("file_clash");
  auto r = make();
  EXPECT_EQ(r.localizer_for("file", "shell"), nullptr);
  r.load("file");
  r.load("bound_localizer");
  ASSERT_NE(r.localizer_for("file", "shell"), nullptr);
  EXPECT_EQ(r.localizer_for("file", "shell")->library().name, "file");
  EXPECT_EQ(r.localizer_for("file", "swap")->library().name, "bound_localizer");
  EXPECT_EQ(r.localizer_for("https", "shell"), nullptr);
  EXPECT_EQ(r.localized_schemes(), std::vector<std::string>{"file"});

  auto msg = load_error(r, "file_clash");
  EXPECT_NE(msg.find("URI scheme 'file' is already served by plugin 'file'"), std::string::npos)
      << msg;
  EXPECT_EQ(r.localizer_for("file", "shell")->library().name, "file");
  auto info = r.find("bound_localizer");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->kinds, std::vector<std::string>{"localizer"});

  // Unloaded, the scheme's default serves swap engines too.
  r.unload("bound_localizer");
  EXPECT_EQ(r.localizer_for("file", "swap")->library().name, "file");
}

TEST_F(LocalizerRegistryTest, TheFileLocalizerRefusesABadConfig) {
  install(fs::path(ECM_PLUGIN_DIR) / "file.so", "file");
  auto r = make();
  EXPECT_NE(load_error(r, "file").find("roots is required"), std::string::npos);
  std::ofstream(dir_ / "conf" / "file.toml") << "roots = [\"relative\"]\n";
  EXPECT_NE(load_error(r, "file").find("not an absolute path"), std::string::npos);
  std::ofstream(dir_ / "conf" / "file.toml") << "roots = [\"/tmp\"]\nroot = \"/x\"\n";
  EXPECT_NE(load_error(r, "file").find("unknown key 'root'"), std::string::npos);
  EXPECT_TRUE(r.list().empty());
}

}  // namespace
