/* version.h - the one place the release version is written. */
#ifndef P2C2R_VERSION_H
#define P2C2R_VERSION_H
#define P2C2R_VERSION_STRING "0.1.0"
#endif
