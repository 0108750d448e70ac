#include "ecm/core/ecm_event_listener_bus.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <condition_variable>
#include <deque>
#include <exception>
#include <limits>
#include <new>
#include <stdexcept>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

namespace ecm::core {
namespace detail {

// Where the events' memory comes from. An event is allocated by publish() and freed by whichever
// delivery thread drops the last reference; with plain malloc that is a cross-thread free on every
// event, and the two threads then fight over the allocator's arena lock. Here freed blocks go back
// on a lock-free stack (any thread pushes; publish() takes the whole stack at once, so no ABA),
// and publish() allocates from them under the bus's mutex. The pool holds at most as many blocks
// as were ever outstanding at once, i.e. about the sum of the queue capacities; it is freed with
// the last of the bus and its subscriptions (which hold every live event).
class EventPool {
 public:
  EventPool() = default;
  EventPool(const EventPool&) = delete;
  EventPool& operator=(const EventPool&) = delete;
  ~EventPool() {
    release(free_);
    release(returned_.exchange(nullptr, std::memory_order_acquire));
  }

  // Under the bus's mutex: one caller at a time.
  void* allocate(std::size_t size) {
    if (block_size_.load(std::memory_order_relaxed) == 0) {
      block_size_.store(size, std::memory_order_relaxed);
    }
    if (size == block_size_.load(std::memory_order_relaxed)) {
      if (free_ == nullptr) free_ = returned_.exchange(nullptr, std::memory_order_acquire);
      if (free_ != nullptr) {
        Node* node = free_;
        free_ = node->next;
        node->~Node();
        return node;
      }
    }
    return ::operator new(std::max(size, sizeof(Node)));
  }

  // From any thread.
  void deallocate(void* p, std::size_t size) noexcept {
    if (size != block_size_.load(std::memory_order_relaxed)) {
      ::operator delete(p);
      return;
    }
    Node* node = new (p) Node{returned_.load(std::memory_order_relaxed)};
    while (!returned_.compare_exchange_weak(node->next, node, std::memory_order_release,
                                            std::memory_order_relaxed)) {
    }
  }

 private:
  struct Node {
    Node* next;
  };
  static void release(Node* node) {
    while (node != nullptr) {
      Node* next = node->next;
      node->~Node();
      ::operator delete(node);
      node = next;
    }
  }

  // Each on its own cache line: the delivery threads write `returned_` for every event they free
  // and read `block_size_`; publish() writes `free_` for every event.
  alignas(64) std::atomic<Node*> returned_{nullptr};  // freed by any thread, not yet taken back
  alignas(64) Node* free_ = nullptr;  // taken back: publish()'s own, under the bus's mutex
  // The size of the one type allocate_shared asks for; set once, by the first allocation.
  alignas(64) std::atomic<std::size_t> block_size_{0};
};

}  // namespace detail

namespace {

using detail::EventPool;

using SteadyClock = std::chrono::steady_clock;
constexpr auto kLogInterval = std::chrono::seconds(1);

std::shared_ptr<spdlog::logger> logger() {
  if (auto l = spdlog::get("bus")) return l;
  return spdlog::default_logger();
}

// The kinds a subscription wants. Kind values are small (SDK: 1..kEventKindCount, appended), so a
// bit per value; a kind past the mask's range only reaches subscriptions that want every kind.
class KindFilter {
 public:
  KindFilter() = default;
  explicit KindFilter(const std::vector<sdk::EventKind>& kinds) : all_(kinds.empty()) {
    for (const auto k : kinds) {
      const auto v = static_cast<std::uint32_t>(k);
      if (v < 64) bits_ |= std::uint64_t{1} << v;
    }
  }
  bool wants(sdk::EventKind k) const {
    if (all_) return true;
    const auto v = static_cast<std::uint32_t>(k);
    return v < 64 && (bits_ >> v) & 1u;
  }

 private:
  bool all_ = true;
  std::uint64_t bits_ = 0;
};

std::string describe_kinds(const std::vector<sdk::EventKind>& kinds) {
  if (kinds.empty()) return "every kind";
  std::string out;
  for (const auto k : kinds) {
    if (!out.empty()) out += ", ";
    out += sdk::event_kind_name(k);
  }
  return out;
}

// What must never be freed: the listeners of delivery threads that stop() gave up on, which may
// still be running their code. Reachable from a global, so leak checkers do not report it.
void keep_forever(std::shared_ptr<ECMEventListener> listener) {
  static std::mutex mu;
  static auto* kept = new std::vector<std::shared_ptr<ECMEventListener>>();
  std::lock_guard lock(mu);
  kept->push_back(std::move(listener));
}

template <class T>
class PoolAllocator {
 public:
  using value_type = T;
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);

  explicit PoolAllocator(EventPool* pool) noexcept : pool_(pool) {}
  template <class U>
  PoolAllocator(const PoolAllocator<U>& other) noexcept : pool_(other.pool()) {}

  T* allocate(std::size_t n) { return static_cast<T*>(pool_->allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { pool_->deallocate(p, n * sizeof(T)); }
  EventPool* pool() const noexcept { return pool_; }

  template <class U>
  bool operator==(const PoolAllocator<U>& other) const noexcept {
    return pool_ == other.pool();
  }

 private:
  EventPool* pool_;
};

// The counters below have one writer each (the delivery thread, or publish() under the bus's
// mutex); stats() reads them from elsewhere.
void bump(std::atomic<std::uint64_t>& counter) {
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();
constexpr std::size_t kMaxCapacity = std::size_t{1} << 24;
// How long a delivery thread that ran out of events keeps looking before it sleeps. Waking a
// sleeping thread costs the publisher a system call (about a microsecond on a VM), so under a
// steady stream the thread should rather wait a little, awake, for the next events; after a lone
// event it only looks briefly, so a quiet node spends next to nothing on it.
constexpr auto kSpinShort = std::chrono::microseconds(5);
constexpr auto kSpinLong = std::chrono::microseconds(50);
constexpr auto kPollInterval = std::chrono::microseconds(2);

}  // namespace

// One listener's queue and delivery thread.
//
// The queue is a ring (capacity rounded up to a power of two slots) with one producer at a time
// (publish(), under the bus's mutex) and one consumer (the delivery thread), so it needs no lock
// of its own: the producer
// writes a slot then advances `tail` (release); the consumer reads up to `tail` (acquire),
// delivers, then advances `head` (release), which frees the slot. tail - head is what is queued,
// the event being delivered included, so a full ring is exactly `capacity` undelivered events.
//
// replace() does not enter the ring (a marker must never be dropped): it records the ring
// position where the switch happens, i.e. the tail at that moment; the consumer switches
// listeners when its head reaches that position, so the old listener gets exactly the events
// queued before.
//
// Sleeping: the consumer sets `sleeping` and checks for work again before it waits (both
// seq_cst); a producer advances `tail` and then checks `sleeping` (both seq_cst). One of the two
// sees the other, so a wake-up is never lost, and a producer makes the notify system call only
// when the consumer really sleeps.
struct ECMEventListenerBus::Subscription {
  Subscription(std::shared_ptr<EventPool> pool_, SubscriptionId id_, std::string name_,
               std::size_t capacity_, std::shared_ptr<ECMEventListener> listener_,
               KindFilter kinds_)
      : pool(std::move(pool_)),
        id(id_),
        name(std::move(name_)),
        capacity(capacity_),
        mask(std::bit_ceil(capacity_) - 1),
        slots(new std::shared_ptr<const EcmEvent>[mask + 1]),
        kinds(kinds_),
        listener(std::move(listener_)) {}

  // First member, so destroyed last: the memory of the events this subscription still holds.
  const std::shared_ptr<EventPool> pool;
  const SubscriptionId id;
  const std::string name;
  const std::size_t capacity;
  const std::size_t mask;
  const std::unique_ptr<std::shared_ptr<const EcmEvent>[]> slots;

  // Guarded by the bus's mutex.
  KindFilter kinds;
  std::uint64_t cached_head = 0;  // the producer's last look at `head`
  SteadyClock::time_point last_drop_log{};
  std::thread thread;  // joined or detached once, by whoever takes this out of the bus's tables

  alignas(64) std::atomic<std::uint64_t> tail{0};  // the next position to write
  alignas(64) std::atomic<std::uint64_t> head{0};  // the next position to deliver
  alignas(64) std::atomic<bool> sleeping{false};
  std::atomic<bool> closing{false};                // deliver what is queued, close and end
  std::atomic<std::uint64_t> next_switch{kNever};  // replacements.front()'s position

  std::mutex mu;                      // the sleep handshake, and what follows
  std::condition_variable wake;       // the delivery thread sleeps here
  std::condition_variable closed_cv;  // stop() waits here for `closed`
  std::deque<std::pair<std::uint64_t, std::shared_ptr<ECMEventListener>>> replacements;
  bool closed = false;     // on_close ran and the listener was released: the thread is ending
  bool abandoned = false;  // stop() detached the thread: never release a listener

  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> unlogged_drops{0};

  // The delivery thread's own.
  std::shared_ptr<ECMEventListener> listener;
  std::uint64_t unlogged_failures = 0;
  SteadyClock::time_point last_failure_log{};

  // Under the bus's mutex. False if the ring is full (the event is dropped).
  bool push(const std::shared_ptr<const EcmEvent>& event) {
    const std::uint64_t t = tail.load(std::memory_order_relaxed);
    if (t - cached_head >= capacity) {
      cached_head = head.load(std::memory_order_acquire);
      if (t - cached_head >= capacity) return false;
    }
    slots[t & mask] = event;
    tail.store(t + 1, std::memory_order_seq_cst);
    if (sleeping.load(std::memory_order_seq_cst) &&
        sleeping.exchange(false, std::memory_order_seq_cst)) {
      notify();
    }
    return true;
  }

  // Under the bus's mutex: the events queued from now on go to `next`.
  void add_replacement(std::shared_ptr<ECMEventListener> next) {
    {
      std::lock_guard lock(mu);
      const std::uint64_t position = tail.load(std::memory_order_relaxed);
      replacements.emplace_back(position, std::move(next));
      if (replacements.size() == 1) next_switch.store(position, std::memory_order_seq_cst);
    }
    wake.notify_one();
  }

  void close() {
    closing.store(true, std::memory_order_seq_cst);
    notify();
  }

  void notify() {
    { std::lock_guard lock(mu); }  // the consumer is either before its last check, or waiting
    wake.notify_one();
  }

  void run() {
    std::uint64_t h = head.load(std::memory_order_relaxed);
    // After a batch, look for more events a little before sleeping: kSpinShort after a lone
    // event (the usual case on a quiet node), kSpinLong while events come in a stream.
    bool streaming = false;
    for (;;) {
      const std::uint64_t t = tail.load(std::memory_order_acquire);
      if (t - h > 1) streaming = true;
      while (h < t) {
        switch_if_due(h);
        std::shared_ptr<const EcmEvent> event = std::move(slots[h & mask]);
        deliver(*event);
        event.reset();  // the last reference frees it here, while it is hot
        head.store(++h, std::memory_order_release);
      }
      switch_if_due(h);
      if (spin_for_work(h, streaming ? kSpinLong : kSpinShort)) {
        streaming = true;
        continue;
      }
      streaming = false;
      if (!wait_for_work(h)) break;  // closing, and everything delivered
    }
    const std::uint64_t drops = unlogged_drops.exchange(0, std::memory_order_relaxed);
    if (drops > 0) {
      logger()->warn(
          "listener '{}' (subscription {}): dropped {} more events before closing, {} in all", name,
          id, drops, dropped.load(std::memory_order_relaxed));
    }
    close_listener();
    std::lock_guard lock(mu);
    closed = true;
    closed_cv.notify_all();
  }

  bool has_work(std::uint64_t h) const {
    return tail.load(std::memory_order_seq_cst) != h ||
           next_switch.load(std::memory_order_seq_cst) <= h;
  }

  // Looks for work every kPollInterval, for up to `limit`. Looking less often than
  // continuously lets events gather into batches: each cache line (the tail, the slots, the
  // events) then crosses between the cores once per batch instead of once per event.
  bool spin_for_work(std::uint64_t h, std::chrono::microseconds limit) const {
    const auto start = SteadyClock::now();
    for (auto now = start; now - start < limit;) {
      if (has_work(h)) return true;
      if (closing.load(std::memory_order_relaxed)) return false;
      const auto next_look = now + kPollInterval;
      do {
        for (int i = 0; i < 8; ++i)
          cpu_relax();
        now = SteadyClock::now();
      } while (now < next_look);
    }
    return has_work(h);
  }

  // False when closing with nothing left to do.
  bool wait_for_work(std::uint64_t h) {
    std::unique_lock lock(mu);
    for (;;) {
      sleeping.store(true, std::memory_order_seq_cst);
      const bool last = closing.load(std::memory_order_seq_cst);  // then nothing more comes
      if (has_work(h) || last) {
        sleeping.store(false, std::memory_order_relaxed);
        return has_work(h);
      }
      wake.wait(lock);
    }
  }

  // Switches listeners when the head reaches a replacement's position.
  void switch_if_due(std::uint64_t h) {
    while (next_switch.load(std::memory_order_acquire) <= h) {
      std::shared_ptr<ECMEventListener> next;
      {
        std::lock_guard lock(mu);
        next = std::move(replacements.front().second);
        replacements.pop_front();
        next_switch.store(replacements.empty() ? kNever : replacements.front().first,
                          std::memory_order_release);
      }
      close_listener();
      listener = std::move(next);
    }
  }

  void deliver(const EcmEvent& event) {
    try {
      listener->on_event(event);
    } catch (const std::exception& e) {
      note_failure("on_event", event.sequence, e.what());
    } catch (...) {
      note_failure("on_event", event.sequence, "an exception that is not a std::exception");
    }
    bump(delivered);
  }

  // on_close, then the listener is released, here on the delivery thread (or kept forever if
  // stop() has given up on this thread).
  void close_listener() {
    try {
      listener->on_close();
    } catch (const std::exception& e) {
      note_failure("on_close", 0, e.what());
    } catch (...) {
      note_failure("on_close", 0, "an exception that is not a std::exception");
    }
    bool keep = false;
    {
      std::lock_guard lock(mu);
      keep = abandoned;
    }
    if (keep) {
      keep_forever(std::move(listener));
    } else {
      listener.reset();
    }
  }

  void note_failure(const char* call, std::uint64_t sequence, const char* what) {
    bump(failures);
    ++unlogged_failures;
    const auto now = SteadyClock::now();
    if (last_failure_log != SteadyClock::time_point{} && now - last_failure_log < kLogInterval) {
      return;
    }
    last_failure_log = now;
    const std::string event = sequence != 0 ? fmt::format(" (event {})", sequence) : std::string();
    logger()->warn(
        "listener '{}' (subscription {}): {} threw{}: {}; {} failures since the last warning, {} "
        "in "
        "all",
        name, id, call, event, what, std::exchange(unlogged_failures, 0),
        failures.load(std::memory_order_relaxed));
  }

  bool is_closed() {
    std::lock_guard lock(mu);
    return closed;
  }

  SubscriptionStats stats() const {
    SubscriptionStats s;
    s.id = id;
    s.name = name;
    s.delivered = delivered.load(std::memory_order_relaxed);
    s.dropped = dropped.load(std::memory_order_relaxed);
    s.failures = failures.load(std::memory_order_relaxed);
    const std::uint64_t h = head.load(std::memory_order_acquire);  // first: then tail >= h
    s.queued = static_cast<std::size_t>(tail.load(std::memory_order_acquire) - h);
    return s;
  }
};

ECMEventListenerBus::ECMEventListenerBus() : pool_(std::make_shared<EventPool>()) {}

ECMEventListenerBus::~ECMEventListenerBus() {
  stop();
}

ECMEventListenerBus::SubscriptionId ECMEventListenerBus::subscribe(
    std::shared_ptr<ECMEventListener> listener, SubscriptionOptions options) {
  if (!listener) throw std::invalid_argument("ECMEventListenerBus::subscribe: null listener");
  if (options.queue_capacity == 0 || options.queue_capacity > kMaxCapacity) {
    throw std::invalid_argument(
        fmt::format("ECMEventListenerBus::subscribe: queue capacity {} is not within 1..{}",
                    options.queue_capacity, kMaxCapacity));
  }
  std::vector<std::shared_ptr<Subscription>> reaped;
  std::shared_ptr<Subscription> sub;
  {
    std::lock_guard lock(mu_);
    reap_closed_locked(reaped);
    if (!stopped_) {
      const SubscriptionId id = next_id_++;
      std::string name =
          options.name.empty() ? "subscription-" + std::to_string(id) : std::move(options.name);
      sub = std::make_shared<Subscription>(pool_, id, std::move(name), options.queue_capacity,
                                           std::move(listener), KindFilter(options.kinds));
      sub->thread = std::thread([sub] { sub->run(); });
      active_.emplace(id, sub);
      publish_list_.push_back(sub);
    }
  }
  join_all(reaped);
  if (!sub) {
    logger()->warn("listener '{}' not subscribed: the event bus is stopped", options.name);
    return 0;
  }
  logger()->info("listener '{}' subscribed (subscription {}): {}, queue of {}", sub->name, sub->id,
                 describe_kinds(options.kinds), sub->capacity);
  return sub->id;
}

bool ECMEventListenerBus::replace(SubscriptionId id, std::shared_ptr<ECMEventListener> listener,
                                  std::vector<sdk::EventKind> kinds) {
  if (!listener) throw std::invalid_argument("ECMEventListenerBus::replace: null listener");
  std::shared_ptr<Subscription> sub;
  {
    std::lock_guard lock(mu_);
    const auto it = active_.find(id);
    if (it == active_.end()) return false;
    sub = it->second;
    sub->kinds = KindFilter(kinds);
    sub->add_replacement(std::move(listener));
  }
  logger()->info("listener '{}' (subscription {}) replaced: {}", sub->name, id,
                 describe_kinds(kinds));
  return true;
}

bool ECMEventListenerBus::unsubscribe(SubscriptionId id) {
  std::vector<std::shared_ptr<Subscription>> reaped;
  std::shared_ptr<Subscription> sub;
  {
    std::lock_guard lock(mu_);
    reap_closed_locked(reaped);
    const auto it = active_.find(id);
    if (it != active_.end()) {
      sub = std::move(it->second);
      active_.erase(it);
      publish_list_.erase(std::find(publish_list_.begin(), publish_list_.end(), sub));
      closing_.push_back(sub);
      sub->close();
    }
  }
  join_all(reaped);
  if (!sub) return false;
  logger()->info("listener '{}' (subscription {}) unsubscribed", sub->name, id);
  return true;
}

std::uint64_t ECMEventListenerBus::publish(EcmEvent event) {
  std::vector<std::pair<std::shared_ptr<Subscription>, std::uint64_t>> drop_logs;  // rare
  std::uint64_t sequence = 0;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return 0;
    // The one allocation of an event (from the pool, hence under the lock): every queue shares it.
    auto owned =
        std::allocate_shared<EcmEvent>(PoolAllocator<EcmEvent>(pool_.get()), std::move(event));
    sequence = next_sequence_++;
    owned->sequence = sequence;
    owned->timestamp_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    const std::shared_ptr<const EcmEvent> shared = std::move(owned);
    for (const auto& sub : publish_list_) {
      if (!sub->kinds.wants(shared->kind) || sub->push(shared)) continue;
      bump(sub->dropped);
      ++dropped_total_;
      sub->unlogged_drops.fetch_add(1, std::memory_order_relaxed);
      const auto now = SteadyClock::now();
      if (now - sub->last_drop_log >= kLogInterval) {
        sub->last_drop_log = now;
        drop_logs.emplace_back(sub, sub->unlogged_drops.exchange(0, std::memory_order_relaxed));
      }
    }
  }
  for (const auto& [sub, count] : drop_logs) {
    logger()->warn(
        "listener '{}' (subscription {}) is not keeping up: its queue of {} is full; dropped {} "
        "events since the last warning, {} in all",
        sub->name, sub->id, sub->capacity, count, sub->dropped.load(std::memory_order_relaxed));
  }
  return sequence;
}

std::vector<SubscriptionStats> ECMEventListenerBus::stats() const {
  std::vector<SubscriptionStats> out;
  std::lock_guard lock(mu_);
  out.reserve(publish_list_.size() + closing_.size());
  for (const auto& sub : publish_list_)
    out.push_back(sub->stats());
  for (const auto& sub : closing_) {
    if (!sub->is_closed()) out.push_back(sub->stats());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

std::uint64_t ECMEventListenerBus::dropped_total() const {
  std::lock_guard lock(mu_);
  return dropped_total_;
}

std::uint64_t ECMEventListenerBus::published_total() const {
  std::lock_guard lock(mu_);
  return next_sequence_ - 1;
}

void ECMEventListenerBus::stop(std::chrono::milliseconds drain) {
  std::lock_guard stop_lock(stop_mu_);
  std::vector<std::shared_ptr<Subscription>> subs;
  {
    std::lock_guard lock(mu_);
    if (stopped_ && closing_.empty()) return;
    stopped_ = true;
    subs = std::move(publish_list_);
    publish_list_.clear();
    active_.clear();
    subs.insert(subs.end(), closing_.begin(), closing_.end());
    closing_.clear();
    for (const auto& sub : subs)
      sub->close();
  }
  const auto deadline = SteadyClock::now() + drain;
  for (const auto& sub : subs) {
    bool closed = false;
    {
      std::unique_lock sub_lock(sub->mu);
      closed = sub->closed_cv.wait_until(sub_lock, deadline, [&] { return sub->closed; });
      if (!closed) sub->abandoned = true;
    }
    if (closed) {
      sub->thread.join();
    } else {
      sub->thread.detach();
      logger()->error(
          "listener '{}' (subscription {}) still busy {} ms after the event bus began to stop: its "
          "delivery thread is left running and its listener is never freed",
          sub->name, sub->id, drain.count());
    }
  }
}

void ECMEventListenerBus::reap_closed_locked(std::vector<std::shared_ptr<Subscription>>& out) {
  std::erase_if(closing_, [&](const std::shared_ptr<Subscription>& sub) {
    if (!sub->is_closed()) return false;
    out.push_back(sub);
    return true;
  });
}

void ECMEventListenerBus::join_all(std::vector<std::shared_ptr<Subscription>>& subs) {
  for (const auto& sub : subs)
    sub->thread.join();
  subs.clear();
}

}  // namespace ecm::core
