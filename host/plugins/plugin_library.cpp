#include "plugins/plugin_library.hpp"

#include <elf.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <vector>

#include "util/sha256.hpp"

namespace ecm::host {
namespace {

constexpr const char* kDescriptorSymbol = "ecm_plugin_descriptor";

// Copies to a temp name, hashes the copy (so the name always matches the content, even if the
// installed file changes meanwhile), then renames it to <name>-<sha256>.so.
std::filesystem::path private_copy(const std::string& name, const std::filesystem::path& source,
                                   const std::filesystem::path& dir, std::string& sha) {
  std::filesystem::create_directories(dir);
  auto tmp = dir / (".tmp-" + name + "-" + std::to_string(::getpid()) + "-" +
                    std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::filesystem::copy_file(source, tmp, std::filesystem::copy_options::overwrite_existing);
  try {
    sha = sha256_file(tmp);
    std::filesystem::permissions(tmp, std::filesystem::perms::owner_read |
                                          std::filesystem::perms::owner_exec |
                                          std::filesystem::perms::group_read);
    auto target = dir / (name + "-" + sha + ".so");
    std::filesystem::rename(tmp, target);
    return target;
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

// dlopen maps a truncated file without complaint and the process dies of SIGBUS when it touches a
// page past the end. Refuse a file whose ELF headers describe more bytes than it has.
std::string elf_problem(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  Elf64_Ehdr eh{};
  if (!in.read(reinterpret_cast<char*>(&eh), sizeof eh) ||
      std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
    return "not an ELF file";
  }
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      (eh.e_machine != EM_X86_64 && eh.e_machine != EM_AARCH64)) {
    return "not a 64-bit ELF object for this machine";
  }
  if (eh.e_type != ET_DYN) return "not a shared object";
  const auto size = std::filesystem::file_size(file);
  if (eh.e_phentsize != sizeof(Elf64_Phdr) ||
      eh.e_phoff + std::uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr) > size) {
    return "truncated (program headers past the end of the file)";
  }
  if (eh.e_shoff + std::uint64_t{eh.e_shnum} * eh.e_shentsize > size) {
    return "truncated (section headers past the end of the file)";
  }
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  in.seekg(static_cast<std::streamoff>(eh.e_phoff));
  if (!in.read(reinterpret_cast<char*>(ph.data()),
               static_cast<std::streamsize>(ph.size() * sizeof(Elf64_Phdr)))) {
    return "truncated (cannot read program headers)";
  }
  for (const auto& p : ph) {
    if (p.p_type == PT_LOAD && p.p_offset + p.p_filesz > size) {
      return "truncated (a loadable segment ends past the end of the file)";
    }
  }
  return {};
}

bool cstr_ok(const char* s) {
  return s != nullptr && std::strlen(s) < 256;
}

}  // namespace

std::shared_ptr<PluginLibrary> open_plugin_library(const std::string& name,
                                                   const std::filesystem::path& source,
                                                   const std::filesystem::path& private_dir) {
  const std::string where = "plugin '" + name + "' (" + source.string() + ")";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(source, ec)) {
    throw PluginLoadError(where + ": file not found");
  }
  auto p = std::make_shared<PluginLibrary>();
  p->name = name;
  p->source_path = source;
  try {
    p->loaded_path = private_copy(name, source, private_dir, p->sha256);
  } catch (const std::exception& e) {
    throw PluginLoadError(where + ": cannot make the private copy: " + e.what());
  }
  if (auto problem = elf_problem(p->loaded_path); !problem.empty()) {
    throw PluginLoadError(where + ": not a loadable shared object: " + problem);
  }
  try {
    p->library = std::make_shared<boost::dll::shared_library>(
        p->loaded_path.string(),
        boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw PluginLoadError(where + ": not a loadable shared object: " + e.what());
  }
  if (!p->library->has(kDescriptorSymbol)) {
    throw PluginLoadError(where + ": no '" + kDescriptorSymbol +
                          "' symbol: not an ECM plugin (declare it with ECM_PLUGIN)");
  }
  const void* raw = p->library->get<const void*>(kDescriptorSymbol);
  if (raw == nullptr) throw PluginLoadError(where + ": '" + kDescriptorSymbol + "' is null");
  // The ABI head is read as two integers before the rest of the descriptor is trusted.
  std::uint32_t head[2];
  std::memcpy(head, raw, sizeof head);
  p->abi_major = head[0];
  p->abi_minor = head[1];
  if (p->abi_major != sdk::kAbiMajor) {
    throw PluginLoadError(where + ": built against ECM SDK ABI " + std::to_string(head[0]) + "." +
                          std::to_string(head[1]) + ", this host speaks ABI " +
                          std::to_string(sdk::kAbiMajor) + "." + std::to_string(sdk::kAbiMinor) +
                          ": rebuild the plugin against this SDK");
  }
  if (p->abi_minor > sdk::kAbiMinor) {
    throw PluginLoadError(where + ": built against ECM SDK ABI " + std::to_string(head[0]) + "." +
                          std::to_string(head[1]) + ", newer than this host's " +
                          std::to_string(sdk::kAbiMajor) + "." + std::to_string(sdk::kAbiMinor));
  }
  const auto* d = static_cast<const sdk::PluginDescriptor*>(raw);
  if (!cstr_ok(d->build_tag) || std::strcmp(d->build_tag, ECM_SDK_BUILD_TAG) != 0) {
    throw PluginLoadError(where + ": build tag '" + (cstr_ok(d->build_tag) ? d->build_tag : "?") +
                          "' differs from the host's '" ECM_SDK_BUILD_TAG
                          "': build it with the same C++ standard library");
  }
  if (!cstr_ok(d->name) || name != d->name) {
    throw PluginLoadError(where + ": the library calls itself '" +
                          (cstr_ok(d->name) ? d->name : "?") + "', expected '" + name + "'");
  }
  if (!cstr_ok(d->version)) throw PluginLoadError(where + ": descriptor has no version");
  if ((d->kinds & sdk::kLauncherKind) && d->create_launcher == nullptr) {
    throw PluginLoadError(where + ": declares a launcher but has no create_launcher");
  }
  if (d->kinds == 0) {
    throw PluginLoadError(where + ": declares no kind (launcher, hook, listener)");
  }
  // Kinds this plugin's SDK version may declare; create_hook exists only in a 1.2+ descriptor,
  // create_listener only in a 1.3+ one, create_localizer only in a 1.4+ one.
  std::uint32_t known = sdk::kLauncherKind;
  if (p->abi_minor >= 2) known |= sdk::kHookKind;
  if (p->abi_minor >= 3) known |= sdk::kListenerKind;
  if (p->abi_minor >= 4) known |= sdk::kLocalizerKind;
  if ((d->kinds & sdk::kHookKind) && p->abi_minor >= 2 && d->create_hook == nullptr) {
    throw PluginLoadError(where + ": declares a hook but has no create_hook");
  }
  if ((d->kinds & sdk::kListenerKind) && p->abi_minor >= 3 && d->create_listener == nullptr) {
    throw PluginLoadError(where + ": declares a listener but has no create_listener");
  }
  if ((d->kinds & sdk::kLocalizerKind) && p->abi_minor >= 4 && d->create_localizer == nullptr) {
    throw PluginLoadError(where + ": declares a localizer but has no create_localizer");
  }
  if ((d->kinds & ~known) != 0) {
    throw PluginLoadError(where + ": declares plugin kinds this host does not know (bits " +
                          std::to_string(d->kinds) + ")");
  }
  p->version = d->version;
  p->kinds = d->kinds;
  p->build_tag = d->build_tag;
  p->descriptor = d;
  p->loaded_at = std::chrono::system_clock::now();
  return p;
}

}  // namespace ecm::host
