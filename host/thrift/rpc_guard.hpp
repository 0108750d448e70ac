// Every Thrift method body runs through rpc(): typed errors pass as they are, anything else becomes
// INTERNAL (logged, since it is a bug of ours).
#pragma once

#include "ecm_types.h"
#include "thrift/thrift_convert.hpp"
#include "util/log.hpp"

namespace ecm::host {

template <class Fn>
void rpc(const char* method, Fn&& fn) {
  try {
    fn();
  } catch (const core::EcmException& e) {
    throw to_thrift(e);
  } catch (const ecm::thrift::EcmError&) {
    throw;
  } catch (const std::exception& e) {
    log("thrift")->error("{}: internal error: {}", method, e.what());
    throw to_thrift(core::EcmException(core::ErrorCode::kInternal, e.what()));
  }
}

}  // namespace ecm::host
