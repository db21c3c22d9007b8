# Run by `cmake --install` and CPack (install(SCRIPT)): the files whose place
# and content follow the install prefix, which is only known now. For the
# prefix /usr (the Debian package) configuration goes to /etc and the unit to
# /lib/systemd/system; for any other prefix, both stay under it.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(RINGWATCH_SYSCONFDIR /etc)
  set(unit_dir /lib/systemd/system)
else()
  set(RINGWATCH_SYSCONFDIR ${CMAKE_INSTALL_PREFIX}/etc)
  set(unit_dir ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
set(RINGWATCH_BINDIR ${CMAKE_INSTALL_PREFIX}/bin)
set(RINGWATCH_DOCDIR ${CMAKE_INSTALL_PREFIX}/${RINGWATCH_DOCDIR_RELATIVE})

set(staging ${RINGWATCH_BINARY_DIR}/packaging/system-files)
configure_file(${RINGWATCH_SOURCE_DIR}/packaging/ringwatchd.service.in
               ${staging}/ringwatchd.service @ONLY)
configure_file(${RINGWATCH_SOURCE_DIR}/packaging/default-ringwatchd.in ${staging}/ringwatchd @ONLY)

# file(INSTALL) puts $DESTDIR in front of these absolute paths.
file(INSTALL ${staging}/ringwatchd.service DESTINATION ${unit_dir})
file(INSTALL ${staging}/ringwatchd DESTINATION ${RINGWATCH_SYSCONFDIR}/default)
file(INSTALL ${RINGWATCH_SOURCE_DIR}/tools/examples/fleet.json
     DESTINATION ${RINGWATCH_SYSCONFDIR}/ringwatch)
