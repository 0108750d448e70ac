#include "ecm/core/launch_validation.hpp"

#include <gtest/gtest.h>

#include "ecm/core/errors.hpp"

using namespace ecm;

namespace {

sdk::LaunchRequest good_request() {
  sdk::LaunchRequest r;
  r.user = "alice";
  r.engine_type = "shell";
  r.properties["command"] = "echo hi";
  return r;
}

core::ErrorCode code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const core::EcmException& e) {
    return e.code();
  }
  ADD_FAILURE() << "no EcmException thrown";
  return core::ErrorCode::kInternal;
}

}  // namespace

TEST(LaunchValidation, GoodRequestPasses) {
  EXPECT_NO_THROW(core::validate_launch_request(good_request()));
}

TEST(LaunchValidation, BadRequestsAreInvalid) {
  std::vector<std::function<void(sdk::LaunchRequest&)>> breakers = {
      [](auto& r) { r.user = ""; },
      [](auto& r) { r.user = "../x"; },
      [](auto& r) { r.user = std::string("a\0b", 3); },
      [](auto& r) { r.engine_type = ""; },
      [](auto& r) { r.engine_type = "../shell"; },
      [](auto& r) { r.engine_version = "1/2"; },
      [](auto& r) { r.ticket_id = std::string(129, 't'); },
      [](auto& r) { r.env["A=B"] = "x"; },
      [](auto& r) { r.env[""] = "x"; },
      [](auto& r) { r.properties["k"] = std::string("v\0", 2); },
      [](auto& r) { r.properties["big"] = std::string(64 * 1024 + 1, 'x'); },
      [](auto& r) {
        for (int i = 0; i < 257; ++i)
          r.labels["l" + std::to_string(i)] = "v";
      },
  };
  for (std::size_t i = 0; i < breakers.size(); ++i) {
    auto r = good_request();
    breakers[i](r);
    EXPECT_EQ(code_of([&] { core::validate_launch_request(r); }), core::ErrorCode::kInvalidRequest)
        << "breaker " << i;
  }
}

TEST(LaunchValidation, SpecsThatEscapeOrLieArePluginFailures) {
  auto good = [] {
    sdk::LaunchSpec s;
    s.executable = "/bin/sh";
    return s;
  };
  EXPECT_NO_THROW(core::validate_launch_spec(good()));
  std::vector<std::function<void(sdk::LaunchSpec&)>> breakers = {
      [](auto& s) { s.executable = "sh"; },
      [](auto& s) { s.executable = ""; },
      [](auto& s) { s.working_dir = "../.."; },
      [](auto& s) { s.directories = {"/etc"}; },
      [](auto& s) { s.files["../../evil"] = "x"; },
      [](auto& s) { s.env["A=B"] = "x"; },
      [](auto& s) { s.argv = {std::string("a\0b", 3)}; },
      [](auto& s) { s.stop_signal = 0; },
      [](auto& s) { s.stop_signal = 4096; },
      [](auto& s) { s.stop_grace = std::chrono::milliseconds(-1); },
  };
  for (std::size_t i = 0; i < breakers.size(); ++i) {
    auto s = good();
    breakers[i](s);
    EXPECT_EQ(code_of([&] { core::validate_launch_spec(s); }), core::ErrorCode::kPluginFailed)
        << "breaker " << i;
  }
}
