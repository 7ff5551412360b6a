#!/bin/sh
# Generate configure, Makefile.in and build-aux/ from configure.ac and Makefile.am.
set -e
cd "$(dirname "$0")"
autoreconf -fi
