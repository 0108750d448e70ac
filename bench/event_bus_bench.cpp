// The event bus's throughput: events published from one thread and delivered to no-op listeners,
// counted when every listener has them (wall time, so the delivery threads' work counts).
#include <benchmark/benchmark.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "ecm/core/ecm_event_listener_bus.hpp"

namespace {

using ecm::core::EcmEvent;
using ecm::core::ECMEventListener;
using ecm::core::ECMEventListenerBus;

class NoopListener : public ECMEventListener {
 public:
  void on_event(const EcmEvent&) override {
    // One writer: a plain store, no read-modify-write.
    received.store(received.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  std::atomic<std::uint64_t> received{0};
};

void publish_to_noop_listeners(benchmark::State& state, int listener_count) {
  // Bursts smaller than the default queue (4096), so a delivery thread that the scheduler keeps
  // off the CPU for a moment (2 cores, shared) does not turn the burst into drops.
  constexpr std::uint64_t kEventsPerIteration = 2000;
  ECMEventListenerBus bus;
  std::vector<std::shared_ptr<NoopListener>> listeners;
  for (int i = 0; i < listener_count; ++i) {
    listeners.push_back(std::make_shared<NoopListener>());
    ecm::core::SubscriptionOptions options;
    options.name = "noop-" + std::to_string(i);  // default queue capacity and kinds
    bus.subscribe(listeners.back(), options);
  }

  std::uint64_t published = 0;
  for (auto _ : state) {
    for (std::uint64_t i = 0; i < kEventsPerIteration; ++i) {
      EcmEvent event;
      event.kind = ecm::sdk::EventKind::kEngineStateChanged;
      event.engine_id = "engine-0001";
      event.from = "Starting";
      event.to = "Running";
      bus.publish(std::move(event));
    }
    published += kEventsPerIteration;
    // Wait until every listener has every event (or the event was dropped for it).
    const std::uint64_t wanted = published * listeners.size();
    for (;;) {
      std::uint64_t got = bus.dropped_total();
      for (const auto& l : listeners)
        got += l->received.load(std::memory_order_acquire);
      if (got >= wanted) break;
      std::this_thread::yield();
    }
  }

  std::uint64_t delivered = 0;
  for (const auto& l : listeners)
    delivered += l->received.load(std::memory_order_acquire);
  // items: events that reached every listener, per second.
  state.SetItemsProcessed(static_cast<std::int64_t>(delivered / listeners.size()));
  state.counters["deliveries/s"] =
      benchmark::Counter(static_cast<double>(delivered), benchmark::Counter::kIsRate);
  state.counters["dropped"] = static_cast<double>(bus.dropped_total());
  bus.stop();
}

void BM_PublishToOneNoopListener(benchmark::State& state) {
  publish_to_noop_listeners(state, 1);
}
void BM_PublishToFourNoopListeners(benchmark::State& state) {
  publish_to_noop_listeners(state, 4);
}

BENCHMARK(BM_PublishToOneNoopListener)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PublishToFourNoopListeners)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  // Drop warnings would flood the figures; they are counted in the "dropped" counter instead.
  spdlog::set_level(spdlog::level::err);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
