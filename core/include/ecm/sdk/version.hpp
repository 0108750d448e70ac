// The ECM plugin SDK version and the build tag a plugin is stamped with.
#pragma once

#include <cstdint>

namespace ecm::sdk {

// A plugin built against another ABI major is refused at load. A minor bump only appends:
// new descriptor fields at the end, new virtual functions after the existing ones.
inline constexpr std::uint32_t kAbiMajor = 1;
// 1.1: LauncherPlugin::readiness().
// 1.2: LauncherPlugin::ports() and LaunchContext::ports; the hook kind (LaunchHook, create_hook).
// 1.3: event listeners (EventListener, Event, create_listener, kListenerKind).
// 1.4: resources and localizers (ResourceSpec, ResourceLocalizer, create_localizer,
//      kLocalizerKind, LauncherPlugin::resources(), ErrorKind kNotFound and kUnavailable).
inline constexpr std::uint32_t kAbiMinor = 4;

}  // namespace ecm::sdk

#define ECM_SDK_STRINGIFY_(x) #x
#define ECM_SDK_STRINGIFY(x) ECM_SDK_STRINGIFY_(x)

// Plugin and host exchange std::string, std::vector and std::map across the library boundary, so
// both must use the same C++ standard library with the same dual ABI. The tag names exactly that
// and nothing more: the compiler may differ as long as the standard library is the same.
#if defined(_GLIBCXX_RELEASE) && defined(_GLIBCXX_USE_CXX11_ABI)
#define ECM_SDK_BUILD_TAG                                                        \
  "libstdc++" ECM_SDK_STRINGIFY(_GLIBCXX_RELEASE) "/cxx11abi" ECM_SDK_STRINGIFY( \
      _GLIBCXX_USE_CXX11_ABI)
#else
#define ECM_SDK_BUILD_TAG "unknown-stdlib"
#endif
