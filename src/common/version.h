/* version.h - the release version, for the daemons, the CLI and the library.
 * The one place it is written is project(p2c2r VERSION ...) in
 * CMakeLists.txt, from which CMake generates the public p2c2r/version.h
 * (P2C2R_VERSION_STRING, P2C2R_VERSION_MAJOR, ...) in the build tree. */
#ifndef P2C2R_COMMON_VERSION_H
#define P2C2R_COMMON_VERSION_H

#include "p2c2r/version.h"

#endif
