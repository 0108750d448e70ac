// The ECM event bus: every ECM event goes to every listener (built-in or plugin) that wants its
// kind, asynchronously, through one bounded queue and one delivery thread per subscription.
//
// What the bus promises (the SDK's listener.hpp promises the same to a plugin):
//  - publish() never blocks on a listener. A full queue drops the event for that subscription
//    only; drops are counted (stats(), dropped_total()) and logged as a warning at most once a
//    second per subscription.
//  - Every event gets the next sequence number of this bus (1, 2, 3..., no gaps) and its Unix
//    timestamp in milliseconds. The sequence is assigned and the event queued under one lock, so
//    every listener receives events in sequence order, and the events of one publisher thread in
//    the order they were published.
//  - A listener is called from its subscription's thread only, never concurrently with itself.
//    An exception from on_event or on_close is caught, counted (failures) and logged; the listener
//    keeps receiving.
//  - on_close is called once, after the last on_event, when the bus stops delivering to that
//    object (replace, unsubscribe, stop); then the bus drops its reference, on the delivery thread.
//
// Logs go to the spdlog logger "bus" when the host has made one, else to the default logger.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ecm/sdk/event.hpp"
#include "ecm/sdk/listener.hpp"

namespace ecm::core {

using EcmEvent = sdk::Event;  // one event type for built-in and plugin listeners
using ECMEventListener = sdk::EventListener;

namespace detail {
class EventPool;  // in the .cpp
}  // namespace detail

struct SubscriptionOptions {
  std::string name;                   // for logs and stats; empty: "subscription-<id>"
  std::vector<sdk::EventKind> kinds;  // empty: every kind
  // Events queued and not yet delivered (the one being delivered included): 1 to 2^24. The
  // queue's slots (16 bytes each, rounded up to a power of two) are allocated at subscribe().
  std::size_t queue_capacity = 4096;
};

struct SubscriptionStats {
  std::uint64_t id = 0;
  std::string name;
  std::uint64_t delivered = 0;  // on_event calls made (returned or thrown)
  std::uint64_t dropped = 0;    // events refused because the queue was full
  std::uint64_t failures = 0;   // on_event / on_close calls that threw
  std::size_t queued = 0;       // events accepted and not yet delivered
};

class ECMEventListenerBus {
 public:
  using SubscriptionId = std::uint64_t;  // from 1; 0 is never a subscription

  ECMEventListenerBus();
  ~ECMEventListenerBus();  // stop()
  ECMEventListenerBus(const ECMEventListenerBus&) = delete;
  ECMEventListenerBus& operator=(const ECMEventListenerBus&) = delete;

  // Starts the subscription's delivery thread. The caller passes the kinds (for a plugin listener,
  // what its kinds() returned, called once). Throws std::invalid_argument for a null listener or a
  // capacity out of range. Returns 0 (and keeps nothing) once the bus is stopped.
  SubscriptionId subscribe(std::shared_ptr<ECMEventListener> listener, SubscriptionOptions options);

  // Swap in a new listener object: every event already queued goes to the old one, then the old
  // one gets on_close() and is released (the shared_ptr dropped on the delivery thread, after
  // on_close), and every later event goes to the new one. Kinds may change. Never blocks on the
  // listener. Returns false for an unknown id (or one unsubscribed, or after stop()). Throws
  // std::invalid_argument for a null listener.
  bool replace(SubscriptionId id, std::shared_ptr<ECMEventListener> listener,
               std::vector<sdk::EventKind> kinds);

  // Queued events are still delivered, then on_close, then the listener is released and the
  // thread ends. Does not block on a stuck listener: returns at once; the subscription disappears
  // from stats() once it is closed. Returns false for an unknown id.
  bool unsubscribe(SubscriptionId id);

  // Stamps sequence and timestamp_ms and queues the event to every subscription wanting its kind.
  // Returns the sequence; 0 once the bus is stopped (the event then goes nowhere). Thread-safe.
  std::uint64_t publish(EcmEvent event);

  // Subscriptions not yet closed (including unsubscribed ones still draining), by id.
  std::vector<SubscriptionStats> stats() const;
  std::uint64_t dropped_total() const;    // over the bus's life, including removed subscriptions
  std::uint64_t published_total() const;  // events stamped, i.e. the last sequence

  // Stops accepting events; gives each subscription up to `drain` to deliver what is queued and
  // run on_close; a delivery thread still stuck after that is detached (logged as an error, its
  // listener deliberately leaked so nothing it uses is freed under it). Idempotent.
  void stop(std::chrono::milliseconds drain = std::chrono::seconds(2));

 private:
  struct Subscription;  // its queue, its thread and its counters (in the .cpp)

  void reap_closed_locked(std::vector<std::shared_ptr<Subscription>>& out);
  static void join_all(std::vector<std::shared_ptr<Subscription>>& subs);

  std::shared_ptr<detail::EventPool> pool_;  // the events' memory
  mutable std::mutex mu_;  // sequence, the subscription tables, stopped_, the pool's free list
  std::uint64_t next_sequence_ = 1;
  std::uint64_t dropped_total_ = 0;
  SubscriptionId next_id_ = 1;
  bool stopped_ = false;
  std::unordered_map<SubscriptionId, std::shared_ptr<Subscription>> active_;
  // Subscribed, in id order: what publish() walks.
  std::vector<std::shared_ptr<Subscription>> publish_list_;
  // Unsubscribed, still delivering what they hold.
  std::vector<std::shared_ptr<Subscription>> closing_;
  std::mutex stop_mu_;  // one stop() at a time
};

}  // namespace ecm::core
