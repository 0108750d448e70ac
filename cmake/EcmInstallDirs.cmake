# Where an installation of the ECM keeps its config and its state, and the installed config itself.
# Used at configure time (cmake/EcmInstall.cmake, to check conf/ecm.toml early) and at install time
# (cmake/EcmInstallConfig.cmake, in `cmake --install` and CPack), in script mode too: plain CMake,
# no target or project command here.
include_guard(GLOBAL)

# ecm_install_dirs(PREFIX SYSCONF_VAR LOCALSTATE_VAR)
# GNUInstallDirs' rule for the full sysconfdir and localstatedir, applied to the prefix the files
# are installed under (known only at install time: `cmake --install --prefix P`):
#   /usr   -> /etc, /var            (a distribution package: the .deb)
#   /opt/X -> /etc/opt/X, /var/opt/X (FHS add-on packages)
#   P      -> P/etc, P/var           (anything else: /usr/local, a private prefix, a test's temp dir)
function(ecm_install_dirs prefix sysconf_var localstate_var)
  string(REGEX REPLACE "(.)/+$" "\\1" prefix "${prefix}")
  if(prefix STREQUAL "/usr")
    set(etc /etc)
    set(var /var)
  elseif(prefix MATCHES "^/opt/(.+)$")
    set(etc /etc/opt/${CMAKE_MATCH_1})
    set(var /var/opt/${CMAKE_MATCH_1})
  elseif(prefix STREQUAL "/")
    set(etc /etc)
    set(var /var)
  else()
    set(etc ${prefix}/etc)
    set(var ${prefix}/var)
  endif()
  set(${sysconf_var} ${etc} PARENT_SCOPE)
  set(${localstate_var} ${var} PARENT_SCOPE)
endfunction()

# _ecm_set_key(TEXT_VAR KEY VALUE WHAT): the one uncommented `KEY = "..."` line of the text gets
# VALUE (its comment and alignment kept); anything but exactly one such line is a FATAL_ERROR
# naming WHAT, so a change of conf/ecm.toml that the rewriting would miss stops the build.
function(_ecm_set_key text_var key value what)
  set(text "${${text_var}}")
  string(REGEX MATCHALL "\n${key}[ \t]*=[ \t]*\"[^\"\n]*\"" found "\n${text}")
  list(LENGTH found n)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "${what}: expected one line `${key} = \"...\"`, found ${n}; "
                        "cmake/EcmInstallDirs.cmake rewrites it for the installed config")
  endif()
  string(REGEX REPLACE "\n${key}([ \t]*=[ \t]*)\"[^\"\n]*\"" "\n${key}\\1\"${value}\"" text
                       "\n${text}")
  string(SUBSTRING "${text}" 1 -1 text)
  set(${text_var} "${text}" PARENT_SCOPE)
endfunction()

# ecm_render_installed_config(SRC DST PREFIX SYSCONF LOCALSTATE)
# The installed ecm.toml: conf/ecm.toml with the paths of this installation, absolute:
#   [paths]   work_root = LOCALSTATE/lib/ecm/work, state_dir = LOCALSTATE/lib/ecm
#   [plugins] dir = PREFIX/lib/ecm/plugins    (conf_dir = "plugins" stays: SYSCONF/ecm/plugins)
# Every other key is the source's, so a key added to conf/ecm.toml is installed as it is.
function(ecm_render_installed_config src dst prefix sysconf localstate)
  file(READ "${src}" text)
  _ecm_set_key(text work_root "${localstate}/lib/ecm/work" "${src}")
  _ecm_set_key(text state_dir "${localstate}/lib/ecm" "${src}")
  _ecm_set_key(text dir "${prefix}/lib/ecm/plugins" "${src}")
  set(head "# Installed for ${prefix}: the paths of [paths] and [plugins] dir are this installation's.\n")
  file(WRITE "${dst}" "${head}${text}")
endfunction()

# ecm_render_installed_python_conf(SRC DST PREFIX)
# conf/plugins/python.toml with engine_program set to the installed ecm_python_engine.py (the
# source has it commented out: a build tree's path is only known to the build).
function(ecm_render_installed_python_conf src dst prefix)
  file(READ "${src}" text)
  set(line "engine_program = \"${prefix}/lib/ecm/plugins/ecm_python_engine.py\"")
  string(REGEX MATCHALL "\n# engine_program = \"[^\"\n]*\"" found "\n${text}")
  list(LENGTH found n)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "${src}: expected one line `# engine_program = \"...\"`, found ${n}")
  endif()
  string(REGEX REPLACE "\n# engine_program = \"[^\"\n]*\"" "\n${line}" text "\n${text}")
  string(SUBSTRING "${text}" 1 -1 text)
  file(WRITE "${dst}" "${text}")
endfunction()

# ecm_render_installed_unit(SRC DST PREFIX SYSCONF)
# conf/ecm.service names /usr/bin/ecm, /etc/ecm/ecm.toml and /usr/share/doc/ecm (the .deb's paths);
# another prefix gets its own.
function(ecm_render_installed_unit src dst prefix sysconf)
  file(READ "${src}" text)
  string(REPLACE "/usr/bin/ecm " "${prefix}/bin/ecm " text "${text}")
  string(REPLACE "/usr/share/doc/ecm/" "${prefix}/share/doc/ecm/" text "${text}")
  string(REPLACE "/etc/ecm/" "${sysconf}/ecm/" text "${text}")
  file(WRITE "${dst}" "${text}")
endfunction()
