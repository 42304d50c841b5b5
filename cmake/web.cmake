# The HTTP port's pages (docs/GATEWAY.md section 1): build/www is a directory
# for p2c2rd --http-root (make run uses it) holding web/* (the dashboard at /,
# the demo at /demo, the contribute page at /contribute, their scripts) and
# the example maps the demo loads (/static/arena.map, /static/rooms.map).
# The charting library is not among them: p2c2rd serves Debian's
# libjs-chart.js from where the package installs it (/static/chart.js).
# Installed under share/p2c2r/www, p2c2rd's default --http-root.
#
# One target copies the whole directory at every build (a few small files),
# so no file has two rules when other targets add to build/www.
set(P2C2R_WEB_MAPS ${CMAKE_SOURCE_DIR}/examples/maps/arena.map ${CMAKE_SOURCE_DIR}/examples/maps/rooms.map)
add_custom_target(p2c2r_www ALL
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/www
  COMMAND ${CMAKE_COMMAND} -E copy_directory ${CMAKE_SOURCE_DIR}/web ${CMAKE_BINARY_DIR}/www
  COMMAND ${CMAKE_COMMAND} -E copy ${P2C2R_WEB_MAPS} ${CMAKE_BINARY_DIR}/www
  COMMENT "Collecting the pages of the HTTP port in build/www"
  VERBATIM)
install(DIRECTORY web/ DESTINATION ${CMAKE_INSTALL_DATADIR}/p2c2r/www)
install(FILES ${P2C2R_WEB_MAPS} DESTINATION ${CMAKE_INSTALL_DATADIR}/p2c2r/www)
