# How every ECM plugin is built (SDK.md section 9). Installed with the SDK under
# <prefix>/lib/cmake/EcmSdk and included by EcmSdkConfig.cmake; the ECM's own tree includes it too
# (cmake/EcmPlugin.cmake), so in-tree and out-of-tree plugins get the same flags.
include_guard(GLOBAL)

# ecm_sdk_plugin_options(TARGET)
# The flags of a plugin, on an existing MODULE library:
#  * -fvisibility=hidden -fvisibility-inlines-hidden: only ecm_plugin_descriptor (ECM_PLUGIN) is
#    meant to be exported; nothing of the plugin can collide with the host or another plugin.
#  * -fno-gnu-unique (GCC): GCC marks statics of inline functions and templates STB_GNU_UNIQUE,
#    which makes dlclose a no-op: an old generation of a hot-swapped plugin would never leave.
#  * C++20 at least (the SDK headers need it), without GNU extensions unless the project asks.
#  * the file is NAME.so, without the lib prefix: the host loads <plugins.dir>/NAME.so.
function(ecm_sdk_plugin_options target)
  target_compile_features(${target} PRIVATE cxx_std_20)
  if(NOT DEFINED CMAKE_CXX_EXTENSIONS)
    set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
  endif()
  target_compile_options(${target} PRIVATE -fvisibility=hidden -fvisibility-inlines-hidden
                         $<$<CXX_COMPILER_ID:GNU>:-fno-gnu-unique>)
  set_target_properties(${target} PROPERTIES PREFIX "")
endfunction()

# ecm_sdk_add_plugin(NAME SOURCES...)
# Builds the plugin NAME.so from SOURCES: a MODULE library linking the header-only ecm::sdk, with
# the flags above. Link anything else the plugin needs with target_link_libraries(NAME PRIVATE ...).
function(ecm_sdk_add_plugin name)
  if(NOT ARGN)
    message(FATAL_ERROR "ecm_sdk_add_plugin(${name}): no source files given")
  endif()
  add_library(${name} MODULE ${ARGN})
  target_link_libraries(${name} PRIVATE ecm::sdk)
  ecm_sdk_plugin_options(${name})
endfunction()
