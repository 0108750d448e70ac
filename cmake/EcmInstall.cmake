# The ECM as an administrator installs it: `cmake --install BUILD --prefix P` and the .deb that
# `cpack -G DEB` makes in BUILD (CPack installs with the prefix /usr). The layout:
#
#   P/bin/ecm, P/bin/ecmctl                      (host/CMakeLists.txt, host/ctl/CMakeLists.txt)
#   P/lib/ecm/plugins/NAME.so                    the shipped plugins, and ecm_python_engine.py
#   P/include/ecm/sdk/*.hpp, P/lib/cmake/EcmSdk/  the SDK (the top CMakeLists.txt)
#   SYSCONF/ecm/ecm.toml                         conf/ecm.toml with this installation's paths
#   SYSCONF/ecm/plugins/NAME.toml                conf/plugins/*.toml (python.toml: engine_program set)
#   P/lib/systemd/system/ecm.service             conf/ecm.service
#   P/share/doc/ecm/README.md, SDK.md
#   LOCALSTATE/lib/ecm (state_dir), LOCALSTATE/lib/ecm/work (work_root): made by ecm at its start
#
# SYSCONF and LOCALSTATE follow GNUInstallDirs at install time (cmake/EcmInstallDirs.cmake): /etc
# and /var for the prefix /usr, P/etc and P/var for a private prefix. Include after the plugins'
# subdirectory: it installs their targets.
include_guard(GLOBAL)
include(${CMAKE_CURRENT_LIST_DIR}/EcmInstallDirs.cmake)

# The plugins an installation ships (not the test plugins, not rm-sim: a test tool).
set(ECM_SHIPPED_PLUGINS shell python file http bml audit-log)
install(TARGETS ${ECM_SHIPPED_PLUGINS} LIBRARY DESTINATION lib/ecm/plugins)
install(FILES ${PROJECT_SOURCE_DIR}/plugins/python/ecm_python_engine.py
        DESTINATION lib/ecm/plugins)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/SDK.md
        DESTINATION share/doc/ecm)

# The config and the unit are rendered at install time, when the prefix is known. Checked here
# once, so a conf/ecm.toml the rendering cannot rewrite fails the configure step, not an install.
set(ECM_PLUGIN_CONFS)
foreach(name IN LISTS ECM_SHIPPED_PLUGINS)
  set(conf ${PROJECT_SOURCE_DIR}/conf/plugins/${name}.toml)
  if(NOT EXISTS ${conf})
    message(FATAL_ERROR "the shipped plugin ${name} has no ${conf}")
  endif()
  list(APPEND ECM_PLUGIN_CONFS ${conf})
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/conf/ecm.toml ${PROJECT_SOURCE_DIR}/conf/plugins/python.toml)
block()
  set(check ${CMAKE_CURRENT_BINARY_DIR}/install-config-check)
  file(MAKE_DIRECTORY ${check})
  ecm_render_installed_config(${PROJECT_SOURCE_DIR}/conf/ecm.toml ${check}/ecm.toml /usr /etc /var)
  ecm_render_installed_python_conf(${PROJECT_SOURCE_DIR}/conf/plugins/python.toml
                                   ${check}/python.toml /usr)
endblock()
install(CODE "
  set(ECM_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
  set(ECM_STAGING_DIR \"${CMAKE_CURRENT_BINARY_DIR}/install-config\")
  set(ECM_PLUGIN_CONFS \"${ECM_PLUGIN_CONFS}\")
  include(\"${PROJECT_SOURCE_DIR}/cmake/EcmInstallConfig.cmake\")
")

# ---- CPack: `cd BUILD && cpack -G DEB` -> ecm_<version>_<arch>.deb
set(CPACK_PACKAGE_NAME ecm)
set(CPACK_PACKAGE_VENDOR "ECM")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "EngineConnManager: per-node daemon that launches and watches engine processes")
set(CPACK_PACKAGE_DESCRIPTION
    "The ECM launches engine processes (shells, Python, ...) for a resource manager over Thrift,\n\
watches them, stops them on request and reports the node's health. Engine types are plugins.\n\
Includes ecm, ecmctl, the shipped plugins, the plugin SDK, the config in /etc/ecm and the\n\
systemd unit ecm.service.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
# Install with DESTDIR and the prefix /usr (CPACK_INSTALL_PREFIX is the one used then), so that
# the install-time rendering sees /usr and puts the config in /etc/ecm, inside the package.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(ECM_DEB_MAINTAINER "ECM maintainers <ecm-maintainers@example.org>"
    CACHE STRING "Maintainer field of the .deb")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${ECM_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Depends: from the ELF files' shared libraries (dpkg-shlibdeps, dpkg-dev); python3 for the python
# plugin's engines, which is not a library of ours.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
# conffiles: dpkg keeps an administrator's edits of these across upgrades. The maintainer scripts
# (cmake/debian/) copied with the mode dpkg wants.
block()
  set(control ${CMAKE_CURRENT_BINARY_DIR}/debian-control)
  file(MAKE_DIRECTORY ${control})
  set(conffiles "/etc/ecm/ecm.toml\n")
  foreach(conf IN LISTS ECM_PLUGIN_CONFS)
    get_filename_component(name ${conf} NAME)
    string(APPEND conffiles "/etc/ecm/plugins/${name}\n")
  endforeach()
  file(WRITE ${control}/conffiles "${conffiles}")
  set(extra ${control}/conffiles)
  foreach(script postinst prerm postrm)
    file(COPY ${PROJECT_SOURCE_DIR}/cmake/debian/${script} DESTINATION ${control}
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                          WORLD_READ WORLD_EXECUTE)
    list(APPEND extra ${control}/${script})
  endforeach()
  set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${extra} PARENT_SCOPE)
  set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON PARENT_SCOPE)
endblock()
include(CPack)
