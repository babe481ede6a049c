# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced: QEMU's configure arguments for our builds (build.sh, check-series.sh).
# $extra: more arguments (the sanitizers).
# Only what the series and its tests need: the x86_64 system emulator and
# the tools, with linux-aio, io_uring and zstd; compiled through ccache.
CONFIG_ARGS="--target-list=x86_64-softmmu --without-default-features
 --enable-tools --enable-linux-aio --enable-linux-io-uring --enable-zstd
 --enable-fdt=system --disable-docs --disable-download --disable-install-blobs
 --enable-werror --python=/usr/bin/python3 --cc=/usr/lib/ccache/gcc ${extra:-}"
CONFIG_ARGS=$(echo $CONFIG_ARGS)
