// The audit-log listener plugin (plugins/audit-log), loaded straight from the build's plugin dir
// with Boost.DLL: its descriptor, the JSON line of every event kind, escaping, rotation, the kinds
// filter, write errors and the config it refuses.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <boost/dll/shared_library.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "ecm/core/ecm_event_listener_bus.hpp"
#include "ecm/sdk/sdk.hpp"
#include "plugins/plugin_config.hpp"
#include "plugins/plugin_registry.hpp"
#include "support/plugin_fixture.hpp"

namespace fs = std::filesystem;
using namespace ecm::sdk;

namespace {

using ListenerPtr = std::unique_ptr<EventListener>;

std::vector<std::string> read_lines(const fs::path& file) {
  std::vector<std::string> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

boost::json::object parse_object(const std::string& line) {
  boost::json::value v = boost::json::parse(line);  // throws on anything but valid JSON
  EXPECT_TRUE(v.is_object()) << line;
  return v.is_object() ? v.as_object() : boost::json::object{};
}

std::string str(const boost::json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return "<missing " + std::string(key) + ">";
  return std::string(v->as_string().c_str(), v->as_string().size());
}

std::int64_t num(const boost::json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  if (v == nullptr) return -424242;
  return v->to_number<std::int64_t>();
}

std::set<std::string> keys(const boost::json::object& o) {
  std::set<std::string> out;
  for (const auto& kv : o)
    out.emplace(kv.key());
  return out;
}

class AuditLogPlugin : public ecm::test::PluginFixture {
 protected:
  AuditLogPlugin() : PluginFixture("audit-log") {}

  PluginConfig config(const fs::path& path) const {
    PluginConfig c;
    c.values["path"] = path.string();
    return c;
  }

  // Every listener of a test is a local of the test body: deleted before the library handle.
  ListenerPtr make(const PluginConfig& c) const {
    return ListenerPtr(descriptor_->create_listener(c));
  }

  // The message create_listener throws for `c`, or "" when it does not throw.
  std::string refusal(const PluginConfig& c) const {
    try {
      make(c);
    } catch (const std::invalid_argument& e) {
      return e.what();
    } catch (const std::exception& e) {
      return std::string("not invalid_argument: ") + e.what();
    }
    return "";
  }
};

// An event of `kind` with the fields that kind uses, as the host fills them.
Event event_of(std::uint32_t v, std::uint64_t seq) {
  Event e;
  e.kind = static_cast<EventKind>(v);
  e.sequence = seq;
  e.timestamp_ms = 1714557600123 + static_cast<std::int64_t>(seq);  // 2024-05-01T10:00:00.123Z
  switch (e.kind) {
    case EventKind::kEngineStateChanged:
    case EventKind::kEngineLaunched:
    case EventKind::kEngineExited:
    case EventKind::kEngineLogRotated:
    case EventKind::kResourceLocalized:
      e.engine_id = "ec-" + std::to_string(seq);
      e.user = "hadoop";
      e.engine_type = "shell";
      break;
    case EventKind::kPluginLoaded:
    case EventKind::kPluginSwapped:
    case EventKind::kPluginUnloaded:
    case EventKind::kPluginRefused:
      e.plugin_name = "shell";
      e.plugin_version = "1.2.0";
      if (e.kind != EventKind::kPluginRefused) e.generation = seq;
      break;
    default:
      break;
  }
  switch (e.kind) {
    case EventKind::kEngineStateChanged:
      e.from = "Starting";
      e.to = "Unlock";
      e.reason = "ready";
      break;
    case EventKind::kEngineLaunched:
      e.pid = 4242;
      break;
    case EventKind::kEngineExited:
      e.pid = 4242;
      e.exit_code = 0;
      e.reason = "exited";
      break;
    case EventKind::kEngineLogRotated:
      e.message = "stdout";
      break;
    case EventKind::kResourceLocalized:
      e.message = "hdfs:///a.jar";
      break;
    case EventKind::kPluginSwapped:
      e.from = "1.1.0";
      e.to = "1.2.0";
      break;
    case EventKind::kPluginUnloaded:
    case EventKind::kPluginRefused:
      e.reason = "asked";
      break;
    case EventKind::kEcmHealthChanged:
      e.from = "Healthy";
      e.to = "StockAvailable";
      e.reason = "memory";
      break;
    case EventKind::kEcmStarting:
      e.message = "ecm 1.3";
      break;
    case EventKind::kEcmStopping:
      e.reason = "SIGTERM";
      break;
    default:
      break;
  }
  return e;
}

}  // namespace

TEST_F(AuditLogPlugin, DescriptorIsAListenerOnly) {
  EXPECT_EQ(descriptor_->abi_major, kAbiMajor);
  EXPECT_EQ(descriptor_->abi_minor, kAbiMinor);
  EXPECT_STREQ(descriptor_->build_tag, ECM_SDK_BUILD_TAG);
  EXPECT_STREQ(descriptor_->name, "audit-log");
  EXPECT_STREQ(descriptor_->version, "1.0.0");
  EXPECT_EQ(descriptor_->kinds, static_cast<std::uint32_t>(kListenerKind));
  EXPECT_EQ(descriptor_->create_launcher, nullptr);
  EXPECT_EQ(descriptor_->create_hook, nullptr);
  EXPECT_NE(descriptor_->create_listener, nullptr);
  EXPECT_EQ(descriptor_->create_localizer, nullptr);
}

TEST_F(AuditLogPlugin, WritesEveryKindAsOneJsonLine) {
  const auto path = dir_ / "sub" / "dir" / "audit.log";  // the parent dirs do not exist yet
  {
    auto l = make(config(path));
    EXPECT_TRUE(l->kinds().empty());
    for (std::uint32_t v = 1; v <= kEventKindCount; ++v)
      l->on_event(event_of(v, v));
    l->on_close();
  }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0640u & ~mask);

  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), kEventKindCount);
  for (std::uint32_t v = 1; v <= kEventKindCount; ++v) {
    SCOPED_TRACE(lines[v - 1]);
    const Event e = event_of(v, v);
    const auto o = parse_object(lines[v - 1]);
    std::set<std::string> expected = {"seq", "time", "kind"};
    EXPECT_EQ(num(o, "seq"), v);
    char time[32];
    std::snprintf(time, sizeof time, "2024-05-01T10:00:00.%03uZ", 123 + v);
    EXPECT_EQ(str(o, "time"), time);
    EXPECT_EQ(str(o, "kind"), event_kind_name(e.kind));
    auto text = [&](const char* key, const std::string& value) {
      if (value.empty()) return;
      expected.insert(key);
      EXPECT_EQ(str(o, key), value) << key;
    };
    text("engine_id", e.engine_id);
    text("user", e.user);
    text("engine_type", e.engine_type);
    text("from", e.from);
    text("to", e.to);
    text("reason", e.reason);
    text("plugin", e.plugin_name);
    text("plugin_version", e.plugin_version);
    text("message", e.message);
    if (e.pid != 0) {
      expected.insert("pid");
      EXPECT_EQ(num(o, "pid"), e.pid);
    }
    if (e.exit_code) {
      expected.insert("exit_code");
      EXPECT_EQ(num(o, "exit_code"), *e.exit_code);  // 0 is written: it is set
    }
    if (e.generation != 0) {
      expected.insert("generation");
      EXPECT_EQ(num(o, "generation"), static_cast<std::int64_t>(e.generation));
    }
    EXPECT_EQ(keys(o), expected);
  }
}

TEST_F(AuditLogPlugin, OmitsUnsetFieldsAndFormatsTime) {
  const auto path = dir_ / "audit.log";
  {
    auto l = make(config(path));
    Event bare;
    bare.kind = EventKind::kEcmStopping;
    bare.sequence = 7;
    bare.timestamp_ms = 0;
    l->on_event(bare);
    Event killed;
    killed.kind = EventKind::kEngineExited;
    killed.sequence = 8;
    killed.timestamp_ms = -1;
    killed.pid = 99;
    killed.signal = 9;
    l->on_event(killed);
    Event future;  // a kind newer than the plugin
    future.kind = static_cast<EventKind>(kEventKindCount + 5);
    future.sequence = 9;
    future.timestamp_ms = 1700000000000;
    l->on_event(future);
  }
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 3u);
  auto o = parse_object(lines[0]);
  EXPECT_EQ(keys(o), (std::set<std::string>{"seq", "time", "kind"}));
  EXPECT_EQ(str(o, "time"), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(str(o, "kind"), "ecm_stopping");
  o = parse_object(lines[1]);
  EXPECT_EQ(keys(o), (std::set<std::string>{"seq", "time", "kind", "pid", "signal"}));
  EXPECT_EQ(str(o, "time"), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(num(o, "signal"), 9);
  o = parse_object(lines[2]);
  EXPECT_EQ(str(o, "time"), "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(str(o, "kind"), "unknown");
  EXPECT_EQ(num(o, "kind_id"), kEventKindCount + 5);
}

TEST_F(AuditLogPlugin, StringsNeedingEscapesRoundTrip) {
  const auto path = dir_ / "audit.log";
  std::string controls;
  for (char c = 1; c < 0x20; ++c)
    controls += c;
  controls += '\x7f';
  const std::vector<std::string> texts = {
      "say \"hi\"",
      "back\\slash and /slash",
      "two\nlines\r\nand\ttab",
      controls,
      "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87",  // é ✓ 😀 中文
      std::string("nul\0inside", 10),
      "</script>\xe2\x80\xa8",  // U+2028
  };
  {
    auto l = make(config(path));
    std::uint64_t seq = 0;
    for (const auto& t : texts) {
      Event e;
      e.kind = EventKind::kEngineStateChanged;
      e.sequence = ++seq;
      e.engine_id = t;
      e.user = t;
      e.reason = t;
      e.message = t;
      l->on_event(e);
    }
    Event bad;  // not UTF-8: each stray byte becomes U+FFFD, the line stays valid JSON
    bad.kind = EventKind::kEcmStarting;
    bad.sequence = ++seq;
    bad.message =
        "a\xff"
        "b\xc3"
        "c\xed\xa0\x80"
        "d\xe2\x9c";
    l->on_event(bad);
  }
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), texts.size() + 1);  // a newline in a value never splits a line
  for (std::size_t i = 0; i < texts.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    const auto o = parse_object(lines[i]);
    EXPECT_EQ(str(o, "engine_id"), texts[i]);
    EXPECT_EQ(str(o, "user"), texts[i]);
    EXPECT_EQ(str(o, "reason"), texts[i]);
    EXPECT_EQ(str(o, "message"), texts[i]);
  }
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(str(parse_object(lines.back()), "message"),
            "a" + fffd + "b" + fffd + "c" + fffd + fffd + fffd + "d" + fffd + fffd);
}

TEST_F(AuditLogPlugin, RotatesBySizeAndKeepsAtMostKeepFiles) {
  const auto path = dir_ / "audit.log";
  auto c = config(path);
  c.values["max_bytes"] = "1000";
  c.values["keep"] = "3";
  auto numbered = [&](int i) { return fs::path(path.string() + "." + std::to_string(i)); };
  // Every line and every file, oldest first.
  auto all_lines = [&] {
    std::vector<std::string> out;
    for (int i = 10; i >= 0; --i) {
      const auto f = i == 0 ? path : numbered(i);
      if (!fs::exists(f)) continue;
      EXPECT_LE(fs::file_size(f), 1000u) << f;
      for (auto& l : read_lines(f))
        out.push_back(l);
    }
    return out;
  };
  auto l = make(c);
  std::uint64_t seq = 0;
  auto feed = [&](int n) {
    for (int i = 0; i < n; ++i) {
      l->on_event(event_of(1 + static_cast<std::uint32_t>(seq % kEventKindCount), seq + 1));
      ++seq;
    }
  };

  // Lines are about 100-200 bytes: 15 fill about 2-3 files, none is dropped yet.
  feed(15);
  EXPECT_TRUE(fs::exists(numbered(1)));
  EXPECT_FALSE(fs::exists(numbered(4)));
  auto lines = all_lines();
  ASSERT_EQ(lines.size(), 15u);
  for (std::size_t i = 0; i < lines.size(); ++i)
    EXPECT_EQ(num(parse_object(lines[i]), "seq"), static_cast<std::int64_t>(i + 1));

  // Many more: the oldest files go, at most `keep` rotated files stay, and what is kept is every
  // line from some seq up to the last one, in order, without a gap.
  feed(200);
  l->on_close();
  EXPECT_TRUE(fs::exists(numbered(3)));
  EXPECT_FALSE(fs::exists(numbered(4)));
  lines = all_lines();
  ASSERT_GT(lines.size(), 15u);
  const auto first = num(parse_object(lines.front()), "seq");
  for (std::size_t i = 0; i < lines.size(); ++i)
    EXPECT_EQ(num(parse_object(lines[i]), "seq"), first + static_cast<std::int64_t>(i));
  EXPECT_EQ(num(parse_object(lines.back()), "seq"), 215);
  l.reset();
}

TEST_F(AuditLogPlugin, TwoWritersRotatingOneFileLoseNoLine) {
  // A reload: the old generation drains while the new one writes to the same path.
  const auto path = dir_ / "audit.log";
  auto c = config(path);
  c.values["max_bytes"] = "2000";
  c.values["keep"] = "1000";
  auto a = make(c);
  auto b = make(c);
  constexpr int kEach = 400;
  auto run = [](EventListener* l, std::uint64_t base) {
    for (int i = 0; i < kEach; ++i) {
      Event e = event_of(1, base + static_cast<std::uint64_t>(i));
      e.message = std::string(50 + i % 40, 'x');
      l->on_event(e);
    }
  };
  std::thread ta(run, a.get(), 1);
  std::thread tb(run, b.get(), 100001);
  ta.join();
  tb.join();
  a->on_close();
  b->on_close();

  std::set<std::int64_t> seen;
  std::size_t count = 0, files = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    ++files;
    EXPECT_LE(fs::file_size(entry.path()), 2000u) << entry.path();
    for (const auto& line : read_lines(entry.path())) {
      ++count;
      seen.insert(num(parse_object(line), "seq"));  // a torn line would not parse
    }
  }
  EXPECT_GT(files, 10u);
  EXPECT_EQ(count, 2u * kEach);
  EXPECT_EQ(seen.size(), 2u * kEach);
}

TEST_F(AuditLogPlugin, KindsFilter) {
  const auto path = dir_ / "audit.log";
  auto c = config(path);
  c.lists["kinds"] = {"engine_exited", "plugin_loaded", "engine_exited"};
  {
    auto l = make(c);
    EXPECT_EQ(l->kinds(),
              (std::vector<EventKind>{EventKind::kEngineExited, EventKind::kPluginLoaded}));
    // The host delivers only those; the listener also drops the others itself.
    for (std::uint32_t v = 1; v <= kEventKindCount; ++v)
      l->on_event(event_of(v, v));
  }
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(str(parse_object(lines[0]), "kind"), "engine_exited");
  EXPECT_EQ(str(parse_object(lines[1]), "kind"), "plugin_loaded");

  // One comma-separated string works too; an empty list means every kind.
  c.lists.erase("kinds");
  c.values["kinds"] = "ecm_starting, ecm_stopping";
  EXPECT_EQ(make(c)->kinds(),
            (std::vector<EventKind>{EventKind::kEcmStarting, EventKind::kEcmStopping}));
  c.values.erase("kinds");
  c.lists["kinds"] = {};
  EXPECT_TRUE(make(c)->kinds().empty());
}

TEST_F(AuditLogPlugin, RefusesBadConfigNamingTheKey) {
  auto contains = [](const std::string& message, const std::string& part) {
    return message.find(part) != std::string::npos;
  };
  PluginConfig none;
  EXPECT_TRUE(contains(refusal(none), "'path' is required")) << refusal(none);
  auto c = config(dir_ / "a.log");
  c.values["path"] = "";
  EXPECT_TRUE(contains(refusal(c), "'path' is required")) << refusal(c);
  c.values["path"] = "relative/a.log";
  EXPECT_TRUE(contains(refusal(c), "'path'")) << refusal(c);

  for (const char* bad : {"0", "-5", "abc", "1.500000", "", "10MiB", "99999999999999999999999"}) {
    c = config(dir_ / "a.log");
    c.values["max_bytes"] = bad;
    EXPECT_TRUE(contains(refusal(c), "'max_bytes'")) << bad << ": " << refusal(c);
  }
  for (const char* bad : {"0", "-1", "x", "100000"}) {
    c = config(dir_ / "a.log");
    c.values["keep"] = bad;
    EXPECT_TRUE(contains(refusal(c), "'keep'")) << bad << ": " << refusal(c);
  }
  c = config(dir_ / "a.log");
  c.values["fsync"] = "yes";
  EXPECT_TRUE(contains(refusal(c), "'fsync'")) << refusal(c);

  c = config(dir_ / "a.log");
  c.lists["kinds"] = {"engine_exited", "engine_exploded"};
  const auto m = refusal(c);
  EXPECT_TRUE(contains(m, "'kinds'") && contains(m, "engine_exploded")) << m;

  c = config(dir_ / "a.log");
  c.values["max_byte"] = "100";  // a typo is not silently ignored
  EXPECT_TRUE(contains(refusal(c), "'max_byte'")) << refusal(c);

  c = config(dir_ / "a.log");
  c.lists["path"] = {"/tmp/a", "/tmp/b"};
  EXPECT_TRUE(contains(refusal(c), "'path'")) << refusal(c);

  // The host's own [ecm] table is not the plugin's business; valid values are accepted.
  c = config(dir_ / "a.log");
  c.values["ecm.queue"] = "10";
  c.values["max_bytes"] = "4096";
  c.values["keep"] = "1";
  c.values["fsync"] = "true";
  EXPECT_EQ(refusal(c), "");
  EXPECT_FALSE(fs::exists(dir_ / "a.log.1"));
}

TEST_F(AuditLogPlugin, WriteErrorsAreThrownFromOnEvent) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  auto l = make(config("/dev/full"));  // every write fails with ENOSPC
  try {
    l->on_event(event_of(11, 1));
    FAIL() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOSPC);
    EXPECT_NE(std::string(e.what()).find("/dev/full"), std::string::npos) << e.what();
  }
  l->on_close();
}

TEST_F(AuditLogPlugin, ReopensAFileRemovedUnderIt) {
  const auto path = dir_ / "audit.log";
  auto c = config(path);
  c.values["fsync"] = "true";
  auto l = make(c);
  l->on_event(event_of(11, 1));
  fs::remove(path);  // an administrator's clean-up, or an external rotation
  l->on_event(event_of(12, 2));
  l->on_close();
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(num(parse_object(lines[0]), "seq"), 2);
  l.reset();
}

TEST_F(AuditLogPlugin, UnopenablePathIsRefusedAtCreate) {
  std::ofstream(dir_ / "file") << "x";
  auto c = config(dir_ / "file" / "audit.log");  // the parent is a regular file
  EXPECT_THROW(make(c), std::system_error);
}

TEST_F(AuditLogPlugin, ExampleConfigIsAccepted) {
  // conf/plugins/audit-log.toml as the host reads it, with the path moved into the temp dir.
  auto c = ecm::host::load_plugin_config(fs::path(ECM_SOURCE_DIR) / "conf/plugins/audit-log.toml");
  EXPECT_EQ(c.get("max_bytes"), "10485760");
  EXPECT_EQ(c.get("keep"), "5");
  EXPECT_EQ(c.get("fsync"), "false");
  ASSERT_TRUE(c.get("path"));
  c.values["path"] = (dir_ / "audit.log").string();
  EXPECT_EQ(refusal(c), "");
  c.lists["kinds"] = {"engine_launched", "engine_exited", "plugin_refused"};  // the commented line
  EXPECT_EQ(refusal(c), "");
}

TEST_F(AuditLogPlugin, ServesTheHostThroughTheRegistryAcrossAReload) {
  const auto log = dir_ / "log" / "audit.log";
  fs::create_directories(dir_ / "conf");
  std::ofstream(dir_ / "conf" / "audit-log.toml")
      << "path = \"" << log.string() << "\"\nkinds = [\"ecm_starting\", \"plugin_loaded\"]\n";
  {
    ecm::core::ECMEventListenerBus bus;
    ecm::host::PluginRegistry registry(ECM_PLUGIN_DIR, dir_ / "conf", dir_ / "private", &bus);
    registry.load("audit-log");
    auto publish = [&](EventKind kind, const std::string& message) {
      Event e;
      e.kind = kind;
      e.message = message;
      bus.publish(e);
    };
    for (int i = 0; i < 50; ++i)
      publish(EventKind::kEcmStarting, "before " + std::to_string(i));
    registry.load("audit-log");  // a reload: the old generation drains while the new one writes
    for (int i = 0; i < 50; ++i)
      publish(EventKind::kEcmStarting, "after " + std::to_string(i));
    publish(EventKind::kEcmStopping, "not wanted");
    registry.unload("audit-log");
    bus.stop();
  }
  std::set<std::string> messages;
  std::int64_t last_seq = 0;
  for (const auto& line : read_lines(log)) {
    const auto o = parse_object(line);
    const auto kind = str(o, "kind");
    EXPECT_TRUE(kind == "ecm_starting" || kind == "plugin_loaded") << line;
    EXPECT_GT(num(o, "seq"), last_seq) << line;  // in bus order, across both generations
    last_seq = num(o, "seq");
    if (kind == "ecm_starting") messages.insert(str(o, "message"));
  }
  EXPECT_EQ(messages.size(), 100u);

  // The registry turns a refused config into a load error that names the key.
  std::ofstream(dir_ / "conf" / "audit-log.toml") << "max_bytes = 10\n";
  ecm::core::ECMEventListenerBus bus;
  ecm::host::PluginRegistry registry(ECM_PLUGIN_DIR, dir_ / "conf", dir_ / "private", &bus);
  try {
    registry.load("audit-log");
    FAIL() << "loaded without a path";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("'path' is required"), std::string::npos) << e.what();
  }
  bus.stop();
}
