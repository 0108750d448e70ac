// A listener plugin for the event tests, built under several names (tests/CMakeLists.txt sets
// RECORDER_NAME): it appends one line per event to the file `path` of its config:
//   SEQ KIND ENGINE_ID FROM TO PID PLUGIN
// Config `mode`: "record" (default); "throw": records, then throws from every on_event;
// "stuck": blocks in on_event until the file `release` exists (a listener that hangs).
// on_close appends "closed".
#include <ecm/sdk/sdk.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#ifndef RECORDER_NAME
#define RECORDER_NAME "recorder"
#endif

namespace {

using namespace ecm::sdk;

class Recorder final : public EventListener {
 public:
  explicit Recorder(const PluginConfig& c)
      : path_(c.get_or("path", "")),
        mode_(c.get_or("mode", "record")),
        release_(c.get_or("release", "")) {
    if (path_.empty()) throw std::invalid_argument("path is required");
  }
  void on_event(const Event& e) override {
    if (mode_ == "stuck") {
      while (!std::filesystem::exists(release_))
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    {
      std::ofstream out(path_, std::ios::app);
      out << e.sequence << ' ' << event_kind_name(e.kind) << ' '
          << (e.engine_id.empty() ? "-" : e.engine_id) << ' ' << (e.from.empty() ? "-" : e.from)
          << ' ' << (e.to.empty() ? "-" : e.to) << ' ' << e.pid << ' '
          << (e.plugin_name.empty() ? "-" : e.plugin_name) << '\n';
    }
    if (mode_ == "throw") throw std::runtime_error("recorder throws on purpose");
  }
  void on_close() override { std::ofstream(path_, std::ios::app) << "closed\n"; }

 private:
  std::string path_;
  std::string mode_;
  std::string release_;
};

EventListener* create_listener(const PluginConfig& config) {
  return new Recorder(config);
}

const PluginDescriptor kDescriptor{ECM_SDK_DESCRIPTOR_HEAD, RECORDER_NAME, "1.0.0",
                                   kListenerKind,           nullptr,       nullptr,
                                   &create_listener,        nullptr};

}  // namespace

ECM_PLUGIN(kDescriptor)
