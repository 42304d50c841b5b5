# make install (cmake --install): what a user of the fabric and a developer
# of a game need, under CMAKE_INSTALL_PREFIX (and DESTDIR when staging):
#   bin/            p2c2rd, p2c2r-peer, p2c2r
#   lib/            libp2c2r.so.1 (+ links), libp2c2r.a, pkgconfig/p2c2r.pc,
#                   cmake/p2c2r/ (find_package(p2c2r): p2c2r::p2c2r, p2c2r::p2c2r_static)
#   include/p2c2r/  the public headers, version.h among them
#   share/man/      p2c2rd(8), p2c2r-peer(1), p2c2r(1), libp2c2r(3)
#   lib/systemd/system/  p2c2rd.service, p2c2r-peer.service (P2C2R_SYSTEMD_UNITDIR)
# Everything but the systemd units is relocatable: the .pc file and the CMake
# package find the rest relative to where they are.

include(CMakePackageConfigHelpers)

install(TARGETS p2c2rd p2c2r-peer p2c2r_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(TARGETS p2c2r p2c2r_archive EXPORT p2c2rTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/p2c2r DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(FILES ${P2C2R_GEN_INCLUDE}/p2c2r/version.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/p2c2r)

# pkg-config: prefix is found from the .pc file's own directory.
file(RELATIVE_PATH P2C2R_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" P2C2R_PC_TO_PREFIX "${P2C2R_PC_TO_PREFIX}")
file(RELATIVE_PATH P2C2R_PC_LIBDIR ${CMAKE_INSTALL_PREFIX} ${CMAKE_INSTALL_FULL_LIBDIR})
file(RELATIVE_PATH P2C2R_PC_INCLUDEDIR ${CMAKE_INSTALL_PREFIX} ${CMAKE_INSTALL_FULL_INCLUDEDIR})
configure_file(cmake/p2c2r.pc.in ${CMAKE_BINARY_DIR}/p2c2r.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/p2c2r.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# CMake package.  0.x: a new minor version may change the API, so only the
# same minor version satisfies find_package(p2c2r 0.2).
set(P2C2R_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/p2c2r)
install(EXPORT p2c2rTargets NAMESPACE p2c2r:: DESTINATION ${P2C2R_CMAKE_DIR})
configure_package_config_file(cmake/p2c2rConfig.cmake.in ${CMAKE_BINARY_DIR}/p2c2rConfig.cmake
  INSTALL_DESTINATION ${P2C2R_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/p2c2rConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/p2c2rConfig.cmake ${CMAKE_BINARY_DIR}/p2c2rConfigVersion.cmake
  DESTINATION ${P2C2R_CMAKE_DIR})

install(FILES man/p2c2r.1 man/p2c2r-peer.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES man/libp2c2r.3 DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)
# The HTTP port's static pages (p2c2rd's default --http-root), once there are any.
if(EXISTS ${PROJECT_SOURCE_DIR}/www)
  install(DIRECTORY www/ DESTINATION ${CMAKE_INSTALL_DATADIR}/p2c2r/www)
endif()
install(FILES man/p2c2rd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

# systemd units name the installed programs by absolute path, so they are
# configured for CMAKE_INSTALL_PREFIX (make install PREFIX=... reconfigures).
# systemd reads units from /usr/local/lib/systemd/system as well as
# /usr/lib/systemd/system and /etc/systemd/system.
set(P2C2R_SYSTEMD_UNITDIR ${CMAKE_INSTALL_PREFIX}/lib/systemd/system
    CACHE PATH "Where make install puts the systemd units")
set(P2C2R_BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
foreach(unit p2c2rd.service p2c2r-peer.service)
  configure_file(dist/systemd/${unit}.in ${CMAKE_BINARY_DIR}/dist/systemd/${unit} @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/dist/systemd/${unit} DESTINATION ${P2C2R_SYSTEMD_UNITDIR})
endforeach()
