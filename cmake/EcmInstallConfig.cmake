# Run by `cmake --install` (and CPack) through install(CODE) in cmake/EcmInstall.cmake, once the
# prefix is known: installs the config and the systemd unit with this installation's paths.
# Set by the caller: ECM_SOURCE_DIR, ECM_STAGING_DIR (a build dir for the rendered files) and
# ECM_PLUGIN_CONFS (the plugins' NAME.toml files to install).
#
# An existing config file that differs is kept (an administrator's edits survive a reinstall): the
# new one goes beside it as NAME.toml.new, and a message says so. DESTDIR (CPack) is honoured.
include(${CMAKE_CURRENT_LIST_DIR}/EcmInstallDirs.cmake)

get_filename_component(_ecm_prefix "${CMAKE_INSTALL_PREFIX}" ABSOLUTE)
ecm_install_dirs("${_ecm_prefix}" _ecm_etc _ecm_var)
if(_ecm_prefix STREQUAL "/")
  set(_ecm_prefix "")  # "/" + "/bin/ecm", not "//bin/ecm"
endif()
# One staging dir per destination: installs into two prefixes at once (tests) do not share files.
string(MD5 _ecm_key "$ENV{DESTDIR}|${_ecm_prefix}")
string(SUBSTRING "${_ecm_key}" 0 12 _ecm_key)
set(ECM_STAGING_DIR "${ECM_STAGING_DIR}/${_ecm_key}")
file(MAKE_DIRECTORY "${ECM_STAGING_DIR}/plugins")

ecm_render_installed_config("${ECM_SOURCE_DIR}/conf/ecm.toml" "${ECM_STAGING_DIR}/ecm.toml"
                            "${_ecm_prefix}" "${_ecm_etc}" "${_ecm_var}")
set(_ecm_confs)
foreach(_conf IN LISTS ECM_PLUGIN_CONFS)
  get_filename_component(_name "${_conf}" NAME)
  if(_name STREQUAL "python.toml")
    ecm_render_installed_python_conf("${_conf}" "${ECM_STAGING_DIR}/plugins/${_name}"
                                     "${_ecm_prefix}")
  else()
    configure_file("${_conf}" "${ECM_STAGING_DIR}/plugins/${_name}" COPYONLY)
  endif()
  list(APPEND _ecm_confs "${ECM_STAGING_DIR}/plugins/${_name}")
endforeach()
ecm_render_installed_unit("${ECM_SOURCE_DIR}/conf/ecm.service" "${ECM_STAGING_DIR}/ecm.service"
                          "${_ecm_prefix}" "${_ecm_etc}")

# file(INSTALL) of one config file into DIR, unless a different one is already there.
function(_ecm_install_conf file dir)
  get_filename_component(name "${file}" NAME)
  set(existing "$ENV{DESTDIR}${dir}/${name}")
  if(EXISTS "${existing}")
    file(READ "${existing}" old)
    file(READ "${file}" new)
    if(NOT old STREQUAL new)
      configure_file("${file}" "${file}.new" COPYONLY)
      message(STATUS "Keeping: ${existing} (yours differs; the new one is ${name}.new beside it)")
      file(INSTALL DESTINATION "${dir}" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
           FILES "${file}.new")
      return()
    endif()
  endif()
  file(INSTALL DESTINATION "${dir}" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
       FILES "${file}")
endfunction()

# 0640: plugin configs may hold secrets (bml.toml's token).
_ecm_install_conf("${ECM_STAGING_DIR}/ecm.toml" "${_ecm_etc}/ecm")
foreach(_conf IN LISTS _ecm_confs)
  _ecm_install_conf("${_conf}" "${_ecm_etc}/ecm/plugins")
endforeach()
file(INSTALL DESTINATION "${_ecm_prefix}/lib/systemd/system" TYPE FILE
     FILES "${ECM_STAGING_DIR}/ecm.service")
