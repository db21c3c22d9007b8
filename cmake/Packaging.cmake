# Installing and packaging (issue 14): `cmake --install` and the Debian
# package made by CPack (`cpack --config build/CPackConfig.cmake -B DIR`). What goes
# where, and why, is in packaging/README.md.
include(GNUInstallDirs)

# Man pages and the bash completion are made from the programs' --help and
# from docs/ at build time (packaging/make-docs.sh), never kept by hand.
find_program(RINGWATCH_HELP2MAN help2man REQUIRED)
set(RINGWATCH_DOCS_DIR ${PROJECT_BINARY_DIR}/packaging)
set(RINGWATCH_MAN_PAGES ringwatch.1 ringwatchd.8 ringwatch-spec.5)
set(docs_outputs ${RINGWATCH_DOCS_DIR}/completion/ringwatch)
foreach(page IN LISTS RINGWATCH_MAN_PAGES)
  list(APPEND docs_outputs ${RINGWATCH_DOCS_DIR}/man/${page} ${RINGWATCH_DOCS_DIR}/man/${page}.gz)
endforeach()
file(GLOB docs_scripts CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/man/* ${PROJECT_SOURCE_DIR}/completion/*)
add_custom_command(OUTPUT ${docs_outputs}
  COMMAND ${PROJECT_SOURCE_DIR}/packaging/make-docs.sh ${RINGWATCH_DOCS_DIR}
          $<TARGET_FILE:ringwatch> $<TARGET_FILE:ringwatchd> ${PROJECT_VERSION}
  DEPENDS ringwatch ringwatchd ${docs_scripts} ${PROJECT_SOURCE_DIR}/packaging/make-docs.sh
          ${PROJECT_SOURCE_DIR}/packaging/help-tree.sh ${PROJECT_SOURCE_DIR}/docs/spec.md
  COMMENT "Man pages and bash completion from the programs' help and docs/spec.md"
  VERBATIM)
add_custom_target(ringwatch_docs ALL DEPENDS ${docs_outputs})

# bash-completion's own directory, moved under our prefix (/usr/share/... for
# the package, /usr/local/share/... for a plain `cmake --install`).
set(RINGWATCH_BASH_COMPLETION_DIR ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
pkg_get_variable(bash_completion_dir bash-completion completionsdir)
pkg_get_variable(bash_completion_prefix bash-completion prefix)
if(bash_completion_dir AND bash_completion_prefix)
  file(RELATIVE_PATH RINGWATCH_BASH_COMPLETION_DIR ${bash_completion_prefix} ${bash_completion_dir})
endif()

install(TARGETS ringwatch ringwatchd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${RINGWATCH_DOCS_DIR}/man/ringwatch.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${RINGWATCH_DOCS_DIR}/man/ringwatch-spec.5.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES ${RINGWATCH_DOCS_DIR}/man/ringwatchd.8.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${RINGWATCH_DOCS_DIR}/completion/ringwatch ${RINGWATCH_DOCS_DIR}/completion/ringwatchd
        DESTINATION ${RINGWATCH_BASH_COMPLETION_DIR})

set(RINGWATCH_SHARE_DIR ${CMAKE_INSTALL_DATADIR}/ringwatch)
install(FILES alerts/rules/ringwatch.rules.yml alerts/rules/ringwatch-migration.rules.yml
        DESTINATION ${RINGWATCH_SHARE_DIR}/alerts)
# The Grafana dashboard (issue 13) ships once it is in the tree.
install(DIRECTORY alerts/grafana DESTINATION ${RINGWATCH_SHARE_DIR}/alerts OPTIONAL)
install(DIRECTORY tools/examples/ DESTINATION ${RINGWATCH_SHARE_DIR}/examples
        FILES_MATCHING PATTERN "*.json")

install(FILES README.md docs/architecture.md docs/migration.md docs/spec.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES daemon/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME ringwatchd.md)
install(FILES alerts/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME alerts.md)

# /etc and the systemd unit depend on the prefix given at install time
# (/etc for /usr, PREFIX/etc otherwise), so a script places them then.
install(CODE "set(RINGWATCH_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
set(RINGWATCH_BINARY_DIR \"${PROJECT_BINARY_DIR}\")
set(RINGWATCH_DOCDIR_RELATIVE \"${CMAKE_INSTALL_DOCDIR}\")")
install(SCRIPT cmake/InstallSystemFiles.cmake)

# The Debian package: ringwatch_<version>_amd64.deb.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ringwatch)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
# Stage absolute destinations (/etc, /lib/systemd) inside the package, never
# on the machine that builds it.
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_CONTACT "ringwatch maintainers <ringwatch@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "keeps memcached clusters behind sharding proxies honest")
set(CPACK_PACKAGE_DESCRIPTION "ringwatch probes clusters of memcached behind twemproxy, mcrouter or
memcached's proxy: canaries through every proxy (ring agreement, read-your-writes
across proxies), the proxies' and backends' connections, and DNS from every
vantage point. ringwatch is the one-shot command (Nagios exit codes, JSON),
ringwatchd the daemon for a fleet (Prometheus metrics, Alertmanager), and
ringwatch migrate runs migration plans gated on those checks.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The libraries' packages are computed by dpkg-shlibdeps; passwd is for the
# postinst's useradd.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
# Only `ringwatch lab` runs these.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "memcached, nutcracker, dnsmasq-base")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles
  ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
  ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
  ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
