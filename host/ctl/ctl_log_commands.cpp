// logs: an engine's log stream through getEngineLog, paged, tailed, filtered or followed.
#include <chrono>
#include <iostream>
#include <thread>
#include <vector>

#include "ctl_commands.hpp"
#include "ctl_errors.hpp"
#include "ctl_output.hpp"
#include "ctl_status.hpp"

namespace po = boost::program_options;

namespace ecm::ctl {
namespace {

namespace api = ::ecm::thrift;
using Strings = std::vector<std::string>;

constexpr auto kFollowInterval = std::chrono::milliseconds(500);
constexpr std::int64_t kFollowTail = 10;

Strings strings(const po::variables_map& vm, const std::string& name) {
  return vm.count(name) ? vm[name].as<Strings>() : Strings{};
}

std::int64_t positive(const po::variables_map& vm, const std::string& name) {
  auto v = vm[name].as<std::int64_t>();
  if (v < 1) throw UsageError("--" + name + " must be a positive whole number");
  return v;
}

boost::json::object page_to_json(const api::LogPage& p) {
  boost::json::array lines;
  for (const auto& l : p.lines)
    lines.emplace_back(l);
  return {{"lines", std::move(lines)},
          {"first_line", p.first_line},
          {"next_from_line", p.next_from_line},
          {"truncated", p.truncated},
          {"end_line", p.end_line}};
}

void print_lines(std::ostream& out, const api::LogPage& p) {
  for (const auto& l : p.lines)
    out << l << '\n';
}

// Where a follower asks next: the next page, or after the last line once at the end.
std::int64_t resume_line(const api::LogPage& p) {
  return p.next_from_line > 0 ? p.next_from_line : p.end_line + 1;
}

// -f: the tail (or the first page asked for), then every kFollowInterval what came after, until
// the engine has ended and nothing new came. Lines go to stdout as they come.
void follow(Context& ctx, api::LogRequest req) {
  const std::string id = req.engine_id;
  if (req.tail == 0 && req.from_line == 0) req.__set_tail(kFollowTail);
  for (;;) {
    api::LogPage page;
    ctx.service().getEngineLog(page, req);
    if (ctx.global.json) {
      print_json(std::cout, page_to_json(page));
    } else {
      print_lines(std::cout, page);
    }
    std::cout << std::flush;
    if (!std::cout) throw CommandError("cannot write to stdout");
    req.__set_tail(0);
    req.__set_from_line(resume_line(page));
    if (page.next_from_line > 0) continue;  // more already there
    api::EngineConn engine;
    ctx.service().getEngineConn(engine, id);
    bool ended = engine.__isset.status && is_ended(engine.status) &&
                 engine.status != api::EngineStatus::SHUTTING_DOWN;
    if (ended) {
      // Its last words may have landed after the read: one more read, then done.
      api::LogPage last;
      ctx.service().getEngineLog(last, req);
      while (true) {
        if (ctx.global.json) {
          if (!last.lines.empty()) print_json(std::cout, page_to_json(last));
        } else {
          print_lines(std::cout, last);
        }
        if (last.next_from_line == 0) break;
        req.__set_from_line(last.next_from_line);
        ctx.service().getEngineLog(last, req);
      }
      std::cout << std::flush;
      return;
    }
    std::this_thread::sleep_for(kFollowInterval);
  }
}

}  // namespace

void define_logs(CommandOptions& o) {
  o.visible.add_options()                                                                      //
      ("stream", po::value<std::string>(), "stdout (default), stderr, or a file under logs/")  //
      ("tail", po::value<std::int64_t>(), "the last N records")                                //
      ("from", po::value<std::int64_t>(), "first line to read (1-based)")                      //
      ("page", po::value<std::int64_t>(), "at most N lines (the ECM bounds it, 5000 by default)")(
          "grep", po::value<Strings>()->composing(), "keep records containing W (any of them)")(
          "exclude", po::value<Strings>()->composing(), "drop records containing W")(
          "record-pattern", po::value<std::string>(),
          "ECMAScript regex: a line matching it starts a multi-line record")(
          "follow,f", po::bool_switch(), "print new lines as they come until the engine has ended")(
          "caller", po::value<std::string>()->value_name("USER"),
          "read on behalf of USER: the ECM refuses (PERMISSION_DENIED) unless the engine runs for "
          "USER");
  o.hidden.add_options()("id", po::value<std::string>());
  o.positional.add("id", 1);
}

void run_logs(Context& ctx) {
  api::LogRequest req;
  req.__set_engine_id(ctx.positional("id", "ID"));
  if (auto s = optional_string(ctx.vm, "stream")) req.__set_stream(*s);
  if (ctx.vm.count("tail")) req.__set_tail(positive(ctx.vm, "tail"));
  if (ctx.vm.count("from")) req.__set_from_line(positive(ctx.vm, "from"));
  if (ctx.vm.count("page")) req.__set_page_size(positive(ctx.vm, "page"));
  if (req.tail > 0 && (ctx.vm.count("from") || ctx.vm.count("page"))) {
    throw UsageError("--tail excludes --from and --page");
  }
  req.__set_include_words(strings(ctx.vm, "grep"));
  req.__set_exclude_words(strings(ctx.vm, "exclude"));
  if (auto p = optional_string(ctx.vm, "record-pattern")) req.__set_record_pattern(*p);
  if (auto c = optional_string(ctx.vm, "caller")) req.__set_caller(*c);

  if (ctx.vm["follow"].as<bool>()) {
    follow(ctx, req);
    return;
  }
  api::LogPage page;
  ctx.service().getEngineLog(page, req);
  if (ctx.global.json) {
    print_json(ctx.out, page_to_json(page));
  } else {
    print_lines(ctx.out, page);
  }
}

}  // namespace ecm::ctl
