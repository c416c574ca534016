#!/usr/bin/env bash
# Copies a binary and the shared libraries it loads (as ldd resolves them) into DEST/bin and
# DEST/lib, leaving out glibc's libraries and the dynamic loader, which the runtime image has.
# Used by docker/Dockerfile so that the final image holds only what trove needs to run.
set -euo pipefail
binary=$1
dest=$2
mkdir -p "$dest/bin" "$dest/lib"
cp "$binary" "$dest/bin/"
ldd "$binary" | awk '/=> \// { print $3 }' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|ld-linux*|libresolv.so.*) ;;
    *) cp -L "$lib" "$dest/lib/" ;;
  esac
done
# Fails the build when something is still missing.
LD_LIBRARY_PATH="$dest/lib" ldd "$dest/bin/$(basename "$binary")" | { ! grep "not found"; }
echo "collected $(ls "$dest/lib" | wc -l) libraries into $dest/lib"
