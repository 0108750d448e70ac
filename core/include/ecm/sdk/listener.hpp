// Event listeners (SDK ABI 1.3), Linkis's ECMEventListener: code that hears of every ECM event.
//
// What the host promises a listener:
//  - on_event is called from one thread owned by the host for this listener, never concurrently
//    with itself, in the order of Event::sequence (with gaps only where events were dropped).
//  - Delivery is asynchronous: a launch never waits for a listener. Each listener has its own
//    bounded queue; when it is full (the listener is slow or stuck) new events for it are dropped,
//    counted in the ECM's metrics and logged as a warning. Other listeners are not affected.
//  - An exception from on_event is logged and counted; the listener keeps receiving.
//  - on_close is called once, after the last on_event, when the host stops delivering to this
//    object: its plugin is reloaded (the old generation gets every event queued before the swap,
//    the new one every event after), unloaded, or the ECM stops. Flush and close files there.
#pragma once

#include <vector>

#include "ecm/sdk/event.hpp"

namespace ecm::sdk {

class EventListener {
 public:
  virtual ~EventListener() = default;
  // The kinds this listener wants, read once when it is subscribed; empty: every kind.
  virtual std::vector<EventKind> kinds() const { return {}; }
  virtual void on_event(const Event& event) = 0;
  virtual void on_close() {}
  // ABI minor bumps append new virtual functions here, never above.
};

}  // namespace ecm::sdk
