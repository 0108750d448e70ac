#include "ecm/core/ecm_event_listener_bus.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace ecm::core;
using namespace std::chrono_literals;
using ecm::sdk::EventKind;

namespace {

// Polls `pred` until it holds or `timeout` passes; returns its last value.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return pred();
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

EcmEvent make_event(EventKind kind, std::string engine_id = "engine-1") {
  EcmEvent e;
  e.kind = kind;
  e.engine_id = std::move(engine_id);
  return e;
}

std::vector<std::uint64_t> iota_seq(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> v;
  for (std::uint64_t s = first; s <= last; ++s)
    v.push_back(s);
  return v;
}

// Closed until open(); wait() blocks a listener on it.
class Gate {
 public:
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// What the listeners of a test saw, in the order they saw it, across listener objects.
struct Entry {
  std::string who;
  std::string what;  // "event", "close", "destroyed"
  std::uint64_t sequence = 0;
  EventKind kind = EventKind::kEcmStarting;
  std::int64_t timestamp_ms = 0;
  std::string engine_id;
  std::thread::id thread;
};

class Journal {
 public:
  void add(Entry e) {
    e.thread = std::this_thread::get_id();
    std::lock_guard lock(mu_);
    entries_.push_back(std::move(e));
  }
  std::vector<Entry> entries() const {
    std::lock_guard lock(mu_);
    return entries_;
  }
  std::vector<Entry> of(const std::string& who, const std::string& what) const {
    std::vector<Entry> out;
    std::lock_guard lock(mu_);
    for (const auto& e : entries_) {
      if (e.who == who && e.what == what) out.push_back(e);
    }
    return out;
  }
  std::vector<std::uint64_t> sequences(const std::string& who) const {
    std::vector<std::uint64_t> out;
    for (const auto& e : of(who, "event"))
      out.push_back(e.sequence);
    return out;
  }
  std::size_t count(const std::string& who, const std::string& what) const {
    return of(who, what).size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
};

// Writes everything to the journal. With a gate, every on_event waits for it first (after noting
// that it was entered); with `throw_on`, on_event throws for the sequences it selects.
class JournalListener : public ECMEventListener {
 public:
  JournalListener(std::shared_ptr<Journal> journal, std::string who,
                  std::shared_ptr<Gate> gate = nullptr)
      : journal_(std::move(journal)), who_(std::move(who)), gate_(std::move(gate)) {}
  ~JournalListener() override {
    Entry e;
    e.who = who_;
    e.what = "destroyed";
    journal_->add(e);
  }

  void on_event(const EcmEvent& event) override {
    entered.fetch_add(1);
    if (gate_) gate_->wait();
    Entry e;
    e.who = who_;
    e.what = "event";
    e.sequence = event.sequence;
    e.kind = event.kind;
    e.timestamp_ms = event.timestamp_ms;
    e.engine_id = event.engine_id;
    journal_->add(e);
    if (throw_on) throw_on(event.sequence);
  }
  void on_close() override {
    Entry e;
    e.who = who_;
    e.what = "close";
    journal_->add(e);
  }

  std::atomic<int> entered{0};
  std::function<void(std::uint64_t)> throw_on;

 private:
  std::shared_ptr<Journal> journal_;
  std::string who_;
  std::shared_ptr<Gate> gate_;
};

// For volume: keeps sequences and the publisher tags (pid, generation) of every event.
class SequenceListener : public ECMEventListener {
 public:
  void on_event(const EcmEvent& event) override {
    std::lock_guard lock(mu_);
    seen_.push_back({event.sequence, event.pid, event.generation});
  }
  void on_close() override { closed.store(true); }

  struct Seen {
    std::uint64_t sequence;
    std::int64_t publisher;
    std::uint64_t index;
  };
  std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return seen_.size();
  }
  std::atomic<bool> closed{false};

 private:
  mutable std::mutex mu_;
  std::vector<Seen> seen_;
};

SubscriptionOptions options(std::string name, std::size_t capacity = 4096,
                            std::vector<EventKind> kinds = {}) {
  SubscriptionOptions o;
  o.name = std::move(name);
  o.kinds = std::move(kinds);
  o.queue_capacity = capacity;
  return o;
}

const SubscriptionStats* find_stats(const std::vector<SubscriptionStats>& all,
                                    ECMEventListenerBus::SubscriptionId id) {
  for (const auto& s : all) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

}  // namespace

TEST(ECMEventListenerBus, StampsSequenceFromOneAndUnixTimestampInMilliseconds) {
  ECMEventListenerBus bus;
  auto journal = std::make_shared<Journal>();
  bus.subscribe(std::make_shared<JournalListener>(journal, "l"), options("l"));

  const auto before = now_ms();
  auto e = make_event(EventKind::kEngineLaunched, "engine-42");
  e.sequence = 77;  // the bus's stamps win
  e.timestamp_ms = 5;
  EXPECT_EQ(bus.publish(e), 1u);
  EXPECT_EQ(bus.publish(make_event(EventKind::kEngineExited)), 2u);
  EXPECT_EQ(bus.publish(make_event(EventKind::kEcmStopping)), 3u);
  const auto after = now_ms();
  EXPECT_EQ(bus.published_total(), 3u);

  ASSERT_TRUE(eventually([&] { return journal->count("l", "event") == 3; }));
  const auto seen = journal->of("l", "event");
  EXPECT_EQ(seen[0].sequence, 1u);
  EXPECT_EQ(seen[1].sequence, 2u);
  EXPECT_EQ(seen[2].sequence, 3u);
  EXPECT_EQ(seen[0].kind, EventKind::kEngineLaunched);
  EXPECT_EQ(seen[0].engine_id, "engine-42");
  for (const auto& s : seen) {
    EXPECT_GE(s.timestamp_ms, before);
    EXPECT_LE(s.timestamp_ms, after);
  }
  EXPECT_LE(seen[0].timestamp_ms, seen[2].timestamp_ms);
}

TEST(ECMEventListenerBus, StatsNameEachSubscriptionAndCountDeliveries) {
  ECMEventListenerBus bus;
  auto journal = std::make_shared<Journal>();
  const auto a = bus.subscribe(std::make_shared<JournalListener>(journal, "a"), options("audit"));
  const auto b = bus.subscribe(std::make_shared<JournalListener>(journal, "b"), options(""));
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
  for (int i = 0; i < 5; ++i)
    bus.publish(make_event(EventKind::kEngineLaunched));
  ASSERT_TRUE(eventually([&] {
    const auto s = bus.stats();
    return s.size() == 2 && s[0].delivered == 5 && s[1].delivered == 5;
  }));
  const auto s = bus.stats();
  EXPECT_EQ(s[0].id, a);
  EXPECT_EQ(s[0].name, "audit");
  EXPECT_EQ(s[1].id, b);
  EXPECT_EQ(s[1].name, "subscription-" + std::to_string(b));
  EXPECT_EQ(s[0].dropped, 0u);
  EXPECT_EQ(s[0].failures, 0u);
  EXPECT_EQ(s[0].queued, 0u);
}

TEST(ECMEventListenerBus, RejectsNullListenerAndZeroCapacity) {
  ECMEventListenerBus bus;
  EXPECT_THROW(bus.subscribe(nullptr, options("x")), std::invalid_argument);
  EXPECT_THROW(bus.subscribe(std::make_shared<SequenceListener>(), options("x", 0)),
               std::invalid_argument);
  const auto id = bus.subscribe(std::make_shared<SequenceListener>(), options("x"));
  EXPECT_THROW(bus.replace(id, nullptr, {}), std::invalid_argument);
  EXPECT_EQ(bus.stats().size(), 1u);
}

TEST(ECMEventListenerBus, SinglePublisherDeliversEverySequenceInOrderWithoutGaps) {
  ECMEventListenerBus bus;
  constexpr std::uint64_t kEvents = 20000;
  std::vector<std::shared_ptr<SequenceListener>> listeners;
  for (int i = 0; i < 3; ++i) {
    listeners.push_back(std::make_shared<SequenceListener>());
    bus.subscribe(listeners.back(), options("l" + std::to_string(i), kEvents));
  }
  for (std::uint64_t i = 1; i <= kEvents; ++i) {
    ASSERT_EQ(bus.publish(make_event(EventKind::kEngineStateChanged)), i);
  }
  for (const auto& l : listeners) {
    ASSERT_TRUE(eventually([&] { return l->size() == kEvents; })) << l->size();
    const auto seen = l->seen();
    for (std::uint64_t i = 0; i < kEvents; ++i)
      ASSERT_EQ(seen[i].sequence, i + 1);
  }
  EXPECT_EQ(bus.dropped_total(), 0u);
}

TEST(ECMEventListenerBus, ConcurrentPublishersKeepSequenceOrderAndEachPublishersOrder) {
  ECMEventListenerBus bus;
  constexpr int kPublishers = 4;
  constexpr std::uint64_t kEach = 5000;
  constexpr std::uint64_t kTotal = kPublishers * kEach;
  std::vector<std::shared_ptr<SequenceListener>> listeners;
  for (int i = 0; i < 2; ++i) {
    listeners.push_back(std::make_shared<SequenceListener>());
    bus.subscribe(listeners.back(), options("l" + std::to_string(i), kTotal));
  }
  std::vector<std::vector<std::uint64_t>> returned(kPublishers);
  std::vector<std::thread> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&, p] {
      for (std::uint64_t i = 0; i < kEach; ++i) {
        auto e = make_event(EventKind::kEngineStateChanged);
        e.pid = p;
        e.generation = i;
        returned[p].push_back(bus.publish(std::move(e)));
      }
    });
  }
  for (auto& t : publishers)
    t.join();
  for (const auto& r : returned) {
    for (std::size_t i = 1; i < r.size(); ++i)
      ASSERT_LT(r[i - 1], r[i]);
  }
  EXPECT_EQ(bus.published_total(), kTotal);

  for (const auto& l : listeners) {
    ASSERT_TRUE(eventually([&] { return l->size() == kTotal; })) << l->size();
    const auto seen = l->seen();
    std::vector<std::uint64_t> next_index(kPublishers, 0);
    for (std::uint64_t i = 0; i < kTotal; ++i) {
      // Strictly increasing and without gaps: the sequence order is the queue order.
      ASSERT_EQ(seen[i].sequence, i + 1);
      ASSERT_EQ(seen[i].index, next_index[seen[i].publisher]++)
          << "publisher " << seen[i].publisher << " out of order";
    }
  }
  EXPECT_EQ(bus.dropped_total(), 0u);
}

TEST(ECMEventListenerBus, KindsFilterDeliversOnlyTheWantedKinds) {
  ECMEventListenerBus bus;
  auto journal = std::make_shared<Journal>();
  bus.subscribe(std::make_shared<JournalListener>(journal, "some"),
                options("some", 4096, {EventKind::kEngineLaunched, EventKind::kEngineExited}));
  bus.subscribe(std::make_shared<JournalListener>(journal, "all"), options("all"));
  for (std::uint32_t k = 1; k <= ecm::sdk::kEventKindCount; ++k) {
    bus.publish(make_event(static_cast<EventKind>(k)));
  }
  const auto sentinel = bus.publish(make_event(EventKind::kEngineExited));
  ASSERT_TRUE(eventually([&] { return journal->count("some", "event") >= 3; }));
  ASSERT_TRUE(eventually([&] { return journal->count("all", "event") == 13; }));
  const auto some = journal->of("some", "event");
  ASSERT_EQ(some.size(), 3u);
  EXPECT_EQ(some[0].kind, EventKind::kEngineLaunched);
  EXPECT_EQ(some[0].sequence, 2u);
  EXPECT_EQ(some[1].kind, EventKind::kEngineExited);
  EXPECT_EQ(some[1].sequence, 3u);
  EXPECT_EQ(some[2].sequence, sentinel);
  const auto all = journal->of("all", "event");
  for (std::uint32_t k = 1; k <= ecm::sdk::kEventKindCount; ++k) {
    EXPECT_EQ(all[k - 1].kind, static_cast<EventKind>(k));
  }
}

TEST(ECMEventListenerBus, ThrowingListenerKeepsReceivingAndFailuresAreCounted) {
  ECMEventListenerBus bus;
  auto journal = std::make_shared<Journal>();
  auto thrower = std::make_shared<JournalListener>(journal, "thrower");
  thrower->throw_on = [](std::uint64_t seq) {
    if (seq == 3) throw 42;  // not even a std::exception
    if (seq % 2 == 0) throw std::runtime_error("even sequence " + std::to_string(seq));
  };
  const auto id = bus.subscribe(thrower, options("thrower"));
  const auto calm_id =
      bus.subscribe(std::make_shared<JournalListener>(journal, "calm"), options("calm"));
  for (int i = 0; i < 10; ++i)
    bus.publish(make_event(EventKind::kEngineStateChanged));

  ASSERT_TRUE(eventually([&] {
    const auto s = bus.stats();
    return find_stats(s, id)->delivered == 10 && find_stats(s, calm_id)->delivered == 10;
  }));
  EXPECT_EQ(journal->sequences("thrower"), iota_seq(1, 10));
  EXPECT_EQ(journal->sequences("calm"), iota_seq(1, 10));
  const auto s = bus.stats();
  EXPECT_EQ(find_stats(s, id)->failures, 6u);  // 2, 3, 4, 6, 8, 10
  EXPECT_EQ(find_stats(s, calm_id)->failures, 0u);
  EXPECT_EQ(journal->count("thrower", "close"), 0u);
}

TEST(ECMEventListenerBus, StuckListenerDropsItsOwnEventsWhileOthersGetAllAndPublishStaysFast) {
  ECMEventListenerBus bus;
  auto journal = std::make_shared<Journal>();
  auto gate = std::make_shared<Gate>();
  constexpr std::size_t kCapacity = 64;
  constexpr std::uint64_t kMore = 10000;
  auto stuck = std::make_shared<JournalListener>(journal, "stuck", gate);
  const auto stuck_id = bus.subscribe(stuck, options("stuck", kCapacity));
  auto healthy = std::make_shared<SequenceListener>();
  const auto healthy_id = bus.subscribe(healthy, options("healthy", kMore + 1));

  bus.publish(make_event(EventKind::kEngineLaunched));
  ASSERT_TRUE(eventually([&] { return stuck->entered.load() == 1; }));

  // 10,000 publishes complete while the stuck listener stays blocked in on_event.
  auto publishing = std::async(std::launch::async, [&] {
    const auto t0 = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < kMore; ++i)
      bus.publish(make_event(EventKind::kEngineLaunched));
    return std::chrono::steady_clock::now() - t0;
  });
  if (publishing.wait_for(30s) != std::future_status::ready) {
    gate->open();
    FAIL() << "publish() blocked behind a stuck listener";
  }
  const auto took = publishing.get();
  EXPECT_LT(took, 10s);
  EXPECT_EQ(stuck->entered.load(), 1) << "the stuck listener was not stuck";
  EXPECT_EQ(journal->count("stuck", "event"), 0u);

  // The stuck one holds exactly its capacity (the event it is in counts) and dropped the rest.
  const std::uint64_t expected_drops = 1 + kMore - kCapacity;
  auto s = bus.stats();
  EXPECT_EQ(find_stats(s, stuck_id)->dropped, expected_drops);
  EXPECT_EQ(find_stats(s, stuck_id)->queued, kCapacity);
  EXPECT_EQ(bus.dropped_total(), expected_drops);
  ASSERT_TRUE(eventually([&] { return healthy->size() == kMore + 1; })) << healthy->size();
  EXPECT_EQ(find_stats(bus.stats(), healthy_id)->dropped, 0u);

  gate->open();
  ASSERT_TRUE(eventually([&] { return journal->count("stuck", "event") == kCapacity; }));
  EXPECT_EQ(journal->sequences("stuck"), iota_seq(1, kCapacity));  // the first ones, in order

  // dropped_total() keeps counting a subscription once it is gone.
  stuck.reset();
  EXPECT_TRUE(bus.unsubscribe(stuck_id));
  ASSERT_TRUE(eventually([&] { return bus.stats().size() == 1; }));
  EXPECT_EQ(bus.dropped_total(), expected_drops);
}

TEST(ECMEventListenerBus, ReplaceGivesQueuedEventsToOldThenClosesAndReleasesItThenNewGetsTheRest) {
  ECMEventListenerBus bus;
  auto journal = std::make_shared<Journal>();
  auto gate = std::make_shared<Gate>();
  auto old_listener = std::make_shared<JournalListener>(journal, "old", gate);
  std::weak_ptr<JournalListener> old_weak = old_listener;
  const auto id = bus.subscribe(old_listener, options("l"));

  bus.publish(make_event(EventKind::kEngineLaunched));
  ASSERT_TRUE(eventually([&] { return old_listener->entered.load() == 1; }));
  old_listener.reset();  // the bus holds the only reference
  for (int i = 2; i <= 100; ++i)
    bus.publish(make_event(EventKind::kEngineLaunched));

  // Returns while the old listener is blocked: never waits on it.
  EXPECT_TRUE(bus.replace(id, std::make_shared<JournalListener>(journal, "new"), {}));
  EXPECT_EQ(journal->count("old", "event"), 0u);
  EXPECT_FALSE(old_weak.expired());
  for (int i = 101; i <= 200; ++i)
    bus.publish(make_event(EventKind::kEngineLaunched));
  gate->open();

  ASSERT_TRUE(eventually([&] { return journal->count("new", "event") == 100; }));
  EXPECT_EQ(journal->sequences("old"), iota_seq(1, 100));
  EXPECT_EQ(journal->sequences("new"), iota_seq(101, 200));
  EXPECT_TRUE(old_weak.expired());

  // old: its events, then on_close, then destroyed (on the delivery thread), before new's first.
  const auto entries = journal->entries();
  std::vector<std::string> order;
  for (const auto& e : entries) {
    if (order.empty() || order.back() != e.who + " " + e.what)
      order.push_back(e.who + " " + e.what);
  }
  EXPECT_EQ(order,
            (std::vector<std::string>{"old event", "old close", "old destroyed", "new event"}));
  const auto delivery_thread = journal->of("old", "event").front().thread;
  EXPECT_EQ(journal->of("old", "destroyed").front().thread, delivery_thread);
  EXPECT_NE(delivery_thread, std::this_thread::get_id());

  // The kinds may change with the listener; unknown ids are refused.
  EXPECT_TRUE(bus.replace(id, std::make_shared<JournalListener>(journal, "newer"),
                          {EventKind::kEngineExited}));
  bus.publish(make_event(EventKind::kEngineLaunched));                    // 201
  const auto exited = bus.publish(make_event(EventKind::kEngineExited));  // 202
  ASSERT_TRUE(eventually([&] { return journal->count("newer", "event") == 1; }));
  EXPECT_EQ(journal->sequences("newer"), std::vector<std::uint64_t>{exited});
  EXPECT_EQ(journal->count("new", "close"), 1u);
  EXPECT_EQ(journal->count("new", "event"), 100u);
  EXPECT_FALSE(bus.replace(id + 100, std::make_shared<JournalListener>(journal, "x"), {}));
  EXPECT_EQ(bus.stats().size(), 1u);
}

TEST(ECMEventListenerBus, ReplaceWithNothingQueuedClosesTheOldListenerAtOnce) {
  ECMEventListenerBus bus;
  auto journal = std::make_shared<Journal>();
  const auto id = bus.subscribe(std::make_shared<JournalListener>(journal, "old"), options("l"));
  bus.publish(make_event(EventKind::kEngineLaunched));
  ASSERT_TRUE(eventually([&] { return journal->count("old", "event") == 1; }));
  // The delivery thread is asleep by now; the swap must wake it, with no event to carry it.
  std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(bus.replace(id, std::make_shared<JournalListener>(journal, "new"), {}));
  ASSERT_TRUE(eventually([&] { return journal->count("old", "destroyed") == 1; }));
  EXPECT_EQ(journal->count("old", "close"), 1u);
  EXPECT_EQ(journal->count("new", "close"), 0u);
  const auto next = bus.publish(make_event(EventKind::kEngineExited));
  ASSERT_TRUE(eventually([&] { return journal->count("new", "event") == 1; }));
  EXPECT_EQ(journal->sequences("new"), std::vector<std::uint64_t>{next});
  EXPECT_EQ(journal->sequences("old"), std::vector<std::uint64_t>{1});
}

TEST(ECMEventListenerBus, ReplaceDuringConcurrentPublishingLosesAndDuplicatesNothing) {
  ECMEventListenerBus bus;
  constexpr std::uint64_t kEvents = 30000;
  std::vector<std::shared_ptr<SequenceListener>> chain;
  chain.push_back(std::make_shared<SequenceListener>());
  const auto id = bus.subscribe(chain.back(), options("l", kEvents));
  std::atomic<std::uint64_t> published{0};
  std::thread publisher([&] {
    for (std::uint64_t i = 0; i < kEvents; ++i) {
      bus.publish(make_event(EventKind::kEngineStateChanged));
      published.store(i + 1);
    }
  });
  for (std::uint64_t at : {kEvents / 4, kEvents / 2, 3 * kEvents / 4}) {
    while (published.load() < at)
      std::this_thread::yield();
    chain.push_back(std::make_shared<SequenceListener>());
    ASSERT_TRUE(bus.replace(id, chain.back(), {}));
  }
  publisher.join();

  // Everything delivered, and every replaced listener closed (a replacement made after the
  // publisher's last event closes its predecessor after that event).
  ASSERT_TRUE(eventually([&] {
    std::size_t total = 0;
    for (const auto& l : chain)
      total += l->size();
    for (std::size_t i = 0; i + 1 < chain.size(); ++i) {
      if (!chain[i]->closed.load()) return false;
    }
    return total >= kEvents;
  }));
  std::vector<std::uint64_t> all;
  for (std::size_t i = 0; i < chain.size(); ++i) {
    EXPECT_EQ(chain[i]->closed.load(), i + 1 < chain.size()) << "listener " << i;
    for (const auto& s : chain[i]->seen())
      all.push_back(s.sequence);
  }
  EXPECT_EQ(all, iota_seq(1, kEvents));  // old ones strictly before new ones, nothing twice
  EXPECT_EQ(bus.dropped_total(), 0u);
}

TEST(ECMEventListenerBus, UnsubscribeReturnsAtOnceThenDeliversTheQueueAndCloses) {
  ECMEventListenerBus bus;
  auto journal = std::make_shared<Journal>();
  auto gate = std::make_shared<Gate>();
  auto listener = std::make_shared<JournalListener>(journal, "l", gate);
  std::weak_ptr<JournalListener> weak = listener;
  const auto id = bus.subscribe(listener, options("l"));
  for (int i = 0; i < 50; ++i)
    bus.publish(make_event(EventKind::kEngineLaunched));
  ASSERT_TRUE(eventually([&] { return listener->entered.load() == 1; }));
  listener.reset();

  EXPECT_TRUE(bus.unsubscribe(id));
  EXPECT_FALSE(bus.unsubscribe(id));
  EXPECT_FALSE(bus.replace(id, std::make_shared<JournalListener>(journal, "x"), {}));
  const auto s = bus.stats();  // still there while it drains
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].queued, 50u);
  for (int i = 0; i < 10; ++i)
    bus.publish(make_event(EventKind::kEngineLaunched));  // not for it
  EXPECT_EQ(journal->count("l", "event"), 0u);

  gate->open();
  ASSERT_TRUE(eventually([&] { return weak.expired(); }));
  EXPECT_EQ(journal->sequences("l"), iota_seq(1, 50));
  std::vector<Entry> entries;
  for (const auto& e : journal->entries()) {
    if (e.who == "l") entries.push_back(e);
  }
  ASSERT_EQ(entries.size(), 52u);
  EXPECT_EQ(entries[50].what, "close");
  EXPECT_EQ(entries[51].what, "destroyed");
  ASSERT_TRUE(eventually([&] { return bus.stats().empty(); }));
  EXPECT_FALSE(bus.unsubscribe(999));
}

TEST(ECMEventListenerBus, StopDeliversWhatIsQueuedClosesEveryListenerAndRefusesMore) {
  auto journal = std::make_shared<Journal>();
  auto bus = std::make_unique<ECMEventListenerBus>();
  std::weak_ptr<JournalListener> a_weak;
  std::weak_ptr<JournalListener> b_weak;
  {
    auto a = std::make_shared<JournalListener>(journal, "a");
    auto b = std::make_shared<JournalListener>(journal, "b");
    a_weak = a;
    b_weak = b;
    bus->subscribe(a, options("a"));
    bus->subscribe(b, options("b", 4096, {EventKind::kEngineExited}));
  }
  for (int i = 0; i < 1000; ++i) {
    bus->publish(make_event(i % 2 ? EventKind::kEngineExited : EventKind::kEngineLaunched));
  }
  bus->stop();
  EXPECT_EQ(journal->count("a", "event"), 1000u);
  EXPECT_EQ(journal->count("b", "event"), 500u);
  EXPECT_EQ(journal->count("a", "close"), 1u);
  EXPECT_EQ(journal->count("b", "close"), 1u);
  EXPECT_TRUE(a_weak.expired());
  EXPECT_TRUE(b_weak.expired());
  EXPECT_TRUE(bus->stats().empty());

  EXPECT_EQ(bus->publish(make_event(EventKind::kEngineLaunched)), 0u);
  EXPECT_EQ(bus->published_total(), 1000u);
  EXPECT_EQ(bus->subscribe(std::make_shared<JournalListener>(journal, "late"), options("late")),
            0u);
  bus->stop();  // idempotent
  bus.reset();  // and the destructor's stop() too
  EXPECT_EQ(journal->count("a", "close"), 1u);
  EXPECT_EQ(journal->count("late", "event"), 0u);
}

TEST(ECMEventListenerBus, StopGivesUpOnStuckListenerAfterTheDrainTimeAndNeverFreesIt) {
  auto journal = std::make_shared<Journal>();
  auto gate = std::make_shared<Gate>();
  auto bus = std::make_unique<ECMEventListenerBus>();
  auto stuck = std::make_shared<JournalListener>(journal, "stuck", gate);
  std::weak_ptr<JournalListener> stuck_weak = stuck;
  bus->subscribe(stuck, options("stuck"));
  bus->subscribe(std::make_shared<JournalListener>(journal, "fine"), options("fine"));
  for (int i = 0; i < 10; ++i)
    bus->publish(make_event(EventKind::kEngineLaunched));
  ASSERT_TRUE(eventually([&] { return stuck->entered.load() == 1; }));
  stuck.reset();

  const auto t0 = std::chrono::steady_clock::now();
  bus->stop(300ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(journal->count("fine", "event"), 10u);
  EXPECT_EQ(journal->count("fine", "close"), 1u);
  EXPECT_EQ(journal->count("stuck", "event"), 0u);
  bus.reset();  // the bus is gone; the stuck thread still runs

  // Unblocked, the abandoned thread finishes its work, but the listener is never freed.
  gate->open();
  ASSERT_TRUE(eventually([&] { return journal->count("stuck", "close") == 1; }));
  EXPECT_EQ(journal->sequences("stuck"), iota_seq(1, 10));
  EXPECT_FALSE(stuck_weak.expired());
  EXPECT_EQ(journal->count("stuck", "destroyed"), 0u);
}
