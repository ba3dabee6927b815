# mcsec: a thin layer over meson.  `make check` and `make demo` work on a
# fresh Debian 12 machine as root: they install what is missing first.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

BUILD ?= build
BUILD_SAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 180
SOAK_SECONDS ?= 600

# Debian packages needed to build, test and benchmark.
DEB_PACKAGES := gcc make meson ninja-build pkg-config libssl-dev \
	libsrtp2-dev python3 python3-cryptography clang-format \
	libglib2.0-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
	gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	gstreamer1.0-plugins-bad openssl libjson-glib-dev python3-gi \
	python3-gst-1.0 \
	gir1.2-gstreamer-1.0 tshark libfaketime etcd-server etcd-client \
	libcurl4-openssl-dev libmnl-dev scdoc systemd procps man-db groff-base \
	build-essential dpkg-dev debhelper gdb \
	qemu-system-x86 busybox-static cpio kmod iproute2 util-linux
DEB_FUZZ_PACKAGES := clang libclang-rt-14-dev

MESON_OPTS := -Dwerror=true

.PHONY: all deps build check test test-asan format format-check demo bench \
	fuzz soak clean

C_SOURCES = $(shell find libmcsec tests bench examples tools gst -name '*.[ch]' | sort)

all: build

# Install only the packages that are missing (apt-get, as root or via sudo).
deps:
	@missing=""; \
	for p in $(DEB_PACKAGES) $(EXTRA_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  $$sudo apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

$(BUILD_SAN)/build.ninja:
	meson setup $(BUILD_SAN) $(MESON_OPTS) -Dbuildtype=debug \
	  -Db_sanitize=address,undefined -Db_lundef=false \
	  -Dc_args=-fno-sanitize-recover=all

build: deps $(BUILD)/build.ninja
	meson compile -C $(BUILD)

test: build
	meson test -C $(BUILD) --print-errorlogs 2>&1 | tee $(BUILD)/check.log

test-asan: deps $(BUILD_SAN)/build.ninja
	meson compile -C $(BUILD_SAN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  meson test -C $(BUILD_SAN) --print-errorlogs 2>&1 | tee $(BUILD_SAN)/check.log

# One code style (.clang-format), checked; `make format` applies it.
format-check: deps
	clang-format --dry-run --Werror $(C_SOURCES)
	tests/lint-scripts.sh

format:
	clang-format -i $(C_SOURCES)

# The style, every test, then every test again under AddressSanitizer +
# UndefinedBehaviorSanitizer; the last line sums both runs.
check: format-check test test-asan
	@ok=$$(awk '/^Ok:/ {s += $$2} END {print s + 0}' $(BUILD)/check.log $(BUILD_SAN)/check.log); \
	fail=$$(awk '/^Fail:|^Timeout:|^Unexpected Pass:/ {s += $$NF} END {print s + 0}' $(BUILD)/check.log $(BUILD_SAN)/check.log); \
	echo "check: $$ok passed, $$fail failed"; \
	[ "$$ok" -gt 0 ] && [ "$$fail" -eq 0 ]

# The main job: a group controller, a camera (signed VP8 through mcsecenc,
# keys from mcseckeysrc), two receivers writing PNG frames, an outsider the
# controller refuses, one receiver evicted half way; then a summary.
demo: build
	examples/demo.sh $(BUILD) $(BUILD)/demo

bench: build
	./$(BUILD)/bench/bench-esp
	@echo
	./$(BUILD)/bench/bench-sam
	@echo
	GST_PLUGIN_PATH=$(CURDIR)/$(BUILD)/gst ./$(BUILD)/bench/bench-elements
	@echo
	./$(BUILD)/bench/bench-lkh
	@echo
	GST_PLUGIN_PATH=$(CURDIR)/$(BUILD)/gst ./$(BUILD)/bench/bench-mike \
	  $(CURDIR)/$(BUILD)/tools $(CURDIR)/$(BUILD)/tests/mike-peer
	bench/bench-cluster.sh $(CURDIR)/$(BUILD)
	@echo
	bench/bench-tree-failover.sh $(CURDIR)/$(BUILD)

# A bounded soak of a key tree group under load (not in `make check`):
# 5000 datagrams/s, rekeys every 4 s, members churning, memory and file
# descriptors sampled (tests/soak.sh).
soak: build
	tests/soak.sh $(BUILD) $(SOAK_SECONDS)

# libFuzzer, each target for FUZZ_SECONDS, with ASan + UBSan (clang).
fuzz:
	$(MAKE) deps EXTRA_PACKAGES="$(DEB_FUZZ_PACKAGES)"
	[ -f $(BUILD_FUZZ)/build.ninja ] || CC=clang meson setup $(BUILD_FUZZ) \
	  -Dfuzzing=true -Dbench=false -Db_sanitize=address,undefined -Db_lundef=false
	meson compile -C $(BUILD_FUZZ)
	@for t in $(BUILD_FUZZ)/tests/fuzz-*; do \
	  case "$$t" in *fuzz-replay-*) continue;; esac; \
	  [ -f "$$t" ] && [ -x "$$t" ] || continue; \
	  name=$${t##*/fuzz-}; work=$(BUILD_FUZZ)/corpus-$$name; \
	  mkdir -p "$$work"; cp -n tests/fuzz/corpus/$$name/* "$$work"/; \
	  echo "== $$name, $(FUZZ_SECONDS) s"; \
	  "$$t" -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 "$$work" 2>&1 \
	    | grep -E 'DONE|stat::number_of_executed_units|ERROR|SUMMARY' ; \
	done

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
