// hello_listener: the smallest event listener plugin (SDK ABI 1.3 or later). It appends one line
// per ECM event, "KIND SEQUENCE", to the file named by its config key `path` (hello_listener.toml):
//   path = "/tmp/hello_listener.log"
#include <ecm/sdk/sdk.hpp>

#include <fstream>
#include <stdexcept>
#include <string>

namespace {

using namespace ecm::sdk;

class HelloListener final : public EventListener {
 public:
  // Runs when the plugin is loaded (or reloaded). A throw refuses the load with its message.
  explicit HelloListener(const PluginConfig& config) : path_(config.get_or("path", "")) {
    if (path_.empty()) throw std::invalid_argument("'path' is required: the file to append to");
    out_.open(path_, std::ios::app);
    if (!out_) throw std::runtime_error("cannot open '" + path_ + "' for appending");
  }

  // Every kind (the default kinds() returns {}). Called on the listener's own thread, one event
  // at a time, in sequence order: no lock needed. A kind newer than this plugin prints "unknown".
  void on_event(const Event& event) override {
    out_ << event_kind_name(event.kind) << ' ' << event.sequence << '\n' << std::flush;
  }

  // Once, after the last event: reload, unload or ECM stop.
  void on_close() override { out_.close(); }

 private:
  std::string path_;
  std::ofstream out_;
};

EventListener* create_listener(const PluginConfig& config) {
  return new HelloListener(config);
}

const PluginDescriptor kDescriptor{ECM_SDK_DESCRIPTOR_HEAD, "hello_listener", "1.0.0",
                                   kListenerKind,           nullptr,          nullptr,
                                   &create_listener,        nullptr};

}  // namespace

ECM_PLUGIN(kDescriptor)
