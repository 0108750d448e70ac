// Tells whoever started a Thrift server the port it listens on, once it does (port 0 picks a free
// one): a TServerEventHandler whose preServe() fulfils a promise. Used by ecm and rm-sim.
#pragma once

#include <future>
#include <memory>
#include <utility>

#include <thrift/server/TServer.h>
#include <thrift/transport/TServerSocket.h>

namespace ecm::thrift_support {

class ListenSignal : public ::apache::thrift::server::TServerEventHandler {
 public:
  ListenSignal(std::shared_ptr<::apache::thrift::transport::TServerSocket> socket,
               std::promise<int> promise)
      : socket_(std::move(socket)), promise_(std::move(promise)) {}
  void preServe() override { promise_.set_value(socket_->getPort()); }

 private:
  std::shared_ptr<::apache::thrift::transport::TServerSocket> socket_;
  std::promise<int> promise_;
};

}  // namespace ecm::thrift_support
