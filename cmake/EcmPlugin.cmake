# ecm_add_plugin(NAME SOURCES... [OUTPUT_DIR dir])
# Builds a plugin the way SDK.md says every plugin must be built: hidden visibility, and
# -fno-gnu-unique so that dlclose really unloads it (GCC marks inline-function statics
# STB_GNU_UNIQUE otherwise, which pins the library in the process for good).
function(ecm_add_plugin name)
  cmake_parse_arguments(P "" "OUTPUT_DIR" "" ${ARGN})
  if(NOT P_OUTPUT_DIR)
    set(P_OUTPUT_DIR ${ECM_PLUGIN_OUTPUT_DIR})
  endif()
  add_library(${name} MODULE ${P_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE ecm_sdk)
  target_compile_options(${name} PRIVATE -fvisibility=hidden -fvisibility-inlines-hidden
                         $<$<CXX_COMPILER_ID:GNU>:-fno-gnu-unique>)
  set_target_properties(${name} PROPERTIES PREFIX "" LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIR})
endfunction()
