# ecm_add_plugin(NAME SOURCES... [OUTPUT_DIR dir])
# Builds a plugin in the ECM's tree the way SDK.md says every plugin must be built: the flags come
# from cmake/EcmSdkPlugin.cmake, the same file an installed SDK gives out-of-tree plugins
# (ecm_sdk_add_plugin): hidden visibility, and -fno-gnu-unique so that dlclose really unloads it
# (GCC marks inline-function statics STB_GNU_UNIQUE otherwise, which pins the library in the
# process for good). The output goes to OUTPUT_DIR, default ${ECM_PLUGIN_OUTPUT_DIR}.
include(${CMAKE_CURRENT_LIST_DIR}/EcmSdkPlugin.cmake)

function(ecm_add_plugin name)
  cmake_parse_arguments(P "" "OUTPUT_DIR" "" ${ARGN})
  if(NOT P_OUTPUT_DIR)
    set(P_OUTPUT_DIR ${ECM_PLUGIN_OUTPUT_DIR})
  endif()
  ecm_sdk_add_plugin(${name} ${P_UNPARSED_ARGUMENTS})
  set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIR})
endfunction()
