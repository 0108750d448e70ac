#include "rm_sim_journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <boost/json.hpp>

namespace ecm::rmsim {
namespace {

namespace json = boost::json;

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& file) {
  throw std::runtime_error(what + " " + file.string() + ": " + std::strerror(errno));
}

std::string to_line(const SimChange& c) {
  json::object o;
  o["ecm_id"] = c.ecm_id;
  o["incarnation_id"] = c.incarnation_id;
  o["seq"] = c.seq;
  o["engine_id"] = c.engine_id;
  o["from"] = static_cast<int>(c.from_status);
  o["to"] = static_cast<int>(c.to_status);
  o["at_ms"] = c.at_ms;
  return json::serialize(o) + "\n";
}

SimChange from_line(const std::string& line) {
  auto o = json::parse(line).as_object();
  SimChange c;
  c.__set_ecm_id(std::string(o.at("ecm_id").as_string()));
  c.__set_incarnation_id(std::string(o.at("incarnation_id").as_string()));
  c.__set_seq(o.at("seq").to_number<std::int64_t>());
  c.__set_engine_id(std::string(o.at("engine_id").as_string()));
  c.__set_from_status(static_cast<ecm::thrift::EngineStatus::type>(o.at("from").to_number<int>()));
  c.__set_to_status(static_cast<ecm::thrift::EngineStatus::type>(o.at("to").to_number<int>()));
  c.__set_at_ms(o.at("at_ms").to_number<std::int64_t>());
  return c;
}

}  // namespace

Journal::Journal(const std::filesystem::path& file) : file_(file) {
  std::string text;
  {
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  // Only whole lines count: a torn tail was never fsynced, so never acknowledged.
  auto whole = text.rfind('\n');
  auto keep = whole == std::string::npos ? 0 : whole + 1;
  std::istringstream lines(text.substr(0, keep));
  std::string line;
  std::size_t n = 0;
  while (std::getline(lines, line)) {
    ++n;
    try {
      loaded_.push_back(from_line(line));
    } catch (const std::exception& e) {
      throw std::runtime_error(file.string() + ":" + std::to_string(n) + ": bad journal line (" +
                               e.what() + ")");
    }
  }
  fd_ = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot open", file);
  if (keep < text.size() && ::ftruncate(fd_, static_cast<off_t>(keep)) != 0) {
    fail("cannot cut the torn tail of", file);
  }
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

void Journal::append(const std::vector<SimChange>& changes) {
  if (changes.empty()) return;
  std::string text;
  for (const auto& c : changes)
    text += to_line(c);
  // A failed append is taken back whole, so the next one does not follow half a line.
  const off_t before = ::lseek(fd_, 0, SEEK_END);
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    auto n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      if (before >= 0) (void)!::ftruncate(fd_, before);
      errno = err;
      fail("cannot write", file_);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd_) != 0) fail("cannot fsync", file_);
}

}  // namespace ecm::rmsim
