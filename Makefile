# SPDX-License-Identifier: GPL-2.0-or-later
# Zoned storage emulation for QEMU's qcow2 format: build and test QEMU 11.1
# with this series.  The work is done by the scripts in harness/.

SHELL := /bin/bash
H := harness

.PHONY: all build demo bench check check-zoned check-gate gate-baseline \
	check-san check-guest \
	check-harness \
	san devtree export-patches series check-series check-series-quick \
	clean distclean help

all: build

build/config.sh:
	./configure

build: build/config.sh
	$(H)/build.sh

san: build/config.sh
	$(H)/build.sh san

demo: build
	$(H)/demo.sh

# Zoned against plain qcow2 on this machine: ratios, open time, memory
bench: build
	$(H)/bench.sh

# The project's test command: everything below, one summary line.
check: build/config.sh
	$(H)/check.sh all

check-zoned: build/config.sh
	$(H)/check.sh zoned

check-gate: build/config.sh
	$(H)/check.sh gate

# The gate's baseline, from the unpatched tree: harness/iotests-quick-baseline.new
gate-baseline: build/config.sh
	$(H)/gate-baseline.sh

check-san: build/config.sh
	$(H)/check.sh san

check-guest: build/config.sh
	$(H)/check.sh guest-full

check-harness:
	$(H)/selftest.sh

# Developer workflow for QEMU's own files (see README.rst).
devtree: build/config.sh
	$(H)/devtree.sh

export-patches:
	$(H)/export-patches.sh

# The series for qemu-devel: build/series/, cover letter first
series: build/config.sh
	$(H)/series.sh

# Apply build/series/ to a fresh QEMU tree, checkpatch every patch, build
# every patch, run our tests at the last one
check-series: series
	$(H)/check-series.sh full

# The same without the builds of every patch (what make check runs)
check-series-quick: series
	$(H)/check-series.sh quick

clean:
	rm -rf build/obj build/obj-san build/src build/src.stage build/devtree \
		build/obj-pristine build/src-pristine \
		build/series build/series.git build/check-series build/check-series-quick \
		build/qemu-img build/qemu-io build/qemu-nbd \
		build/qemu-storage-daemon build/qemu-system-x86_64

distclean:
	rm -rf build

help:
	@echo "make            build QEMU with the series (build/qemu-img, ...)"
	@echo "make demo       the main job: a zoned qcow2 image in use"
	@echo "make check      all tests; ends with 'N passed, N failed, N skipped'"
	@echo "make bench      zoned vs plain qcow2: throughput ratios, open time, memory"
	@echo "make check-zoned | check-gate | check-guest | check-san | check-harness"
	@echo "make devtree    git work tree of the patched QEMU, to edit its files"
	@echo "make export-patches   turn the devtree's commits into patches/"
	@echo "make series     the series for qemu-devel in build/series/"
	@echo "make check-series     apply, checkpatch and build every patch; test the last"
