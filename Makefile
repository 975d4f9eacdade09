# SPDX-License-Identifier: Apache-2.0
# One entry point: make, make run, make test, make asan, make clean.
# GNU make. Variants are the same sources in their own tree: O=build (default)
# or O=build/asan (ASan+UBSan). Nothing under build/ is committed.

O ?= build
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_MAKE = $(MAKE) --no-print-directory O=build/asan OPT="-O1 -g" SAN="$(ASAN_FLAGS)"
CC ?= cc
PYTHON ?= /usr/bin/python3
SAN ?=
OPT ?= -O2 -g
CFLAGS_BASE := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror \
	-Wshadow -Wstrict-prototypes -Wmissing-prototypes $(OPT) -Ibroker/include \
	-I$(O)/gen
CFLAGS_ALL = $(CFLAGS_BASE) $(SAN) $(CFLAGS)
LDLIBS_ALL = -luv -lmsgpackc -lyaml -lprotobuf-c -lpcre2-8 -lmicrohttpd -ljansson -lssl -lcrypto -pthread $(LDLIBS)

CORE_SRC := $(wildcard broker/core/*.c)
NET_SRC := $(wildcard broker/net/*.c)
CLIENT_SRC := $(wildcard broker/client/*.c)
SERVICES_SRC := $(wildcard broker/services/*.c)
LIB_SRC := $(CORE_SRC) $(CLIENT_SRC) $(NET_SRC) $(SERVICES_SRC)
# protoc-c output: generated at build time into the tree, never committed
PB_GEN := $(O)/gen/daemoneye.pb-c.c
PB_OBJ := $(O)/obj/gen/daemoneye.pb-c.o
LIB_OBJ := $(LIB_SRC:%.c=$(O)/obj/%.o) $(PB_OBJ)
LIB := $(O)/lib/libbusrt.a

APPS := busrtd busrt-cli busrt-demo procmond daemoneye-agent busrt-bridge
# the simulator: the same library, its own network, clock and actors
SIM_SRC := $(filter-out sim/main.c,$(wildcard sim/*.c))
SIM_OBJ := $(SIM_SRC:%.c=$(O)/obj/%.o)
APP_BIN := $(APPS:%=$(O)/bin/%)

TEST_SRC := $(wildcard broker/tests/test_*.c)
TEST_BIN := $(TEST_SRC:broker/tests/%.c=$(O)/tests/%)
TEST_SUPPORT := $(O)/obj/broker/tests/memhost.o $(O)/obj/broker/tests/memnet.o

.PHONY: FORCE install uninstall shlib man all deps deps-test mutate asan-sim run run-broker run-daemoneye run-standalone sim-test bench fuzzers fuzz fuzz-node fuzz-keep fuzz-all fuzz-regress fuzzers-libfuzzer coverage coverage-check test unit pytest asan clean
.DEFAULT_GOAL := all
.SECONDARY:

all: deps $(LIB) $(APP_BIN) $(O)/bin/busrt-bench $(O)/bin/busrt-sim

deps:
	@ci/deps.sh build

deps-test:
	@ci/deps.sh test

$(O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(O)/gen/daemoneye.pb-c.c: proto/daemoneye.proto
	@mkdir -p $(O)/gen
	protoc-c --proto_path=proto --c_out=$(O)/gen $<
$(O)/gen/daemoneye.pb-c.h: $(O)/gen/daemoneye.pb-c.c ;

# generated code: compiled with our flags but its warnings are not ours
$(PB_OBJ): $(PB_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Wno-error -w -c $< -o $@


$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(O)/bin/%: $(O)/obj/broker/apps/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LIB) $(LDLIBS_ALL)

# the bridge to NATS JetStream (broker/bridge: libnats) is linked by its
# daemon and by the agent (agent.bridge), not by the library
BRIDGE_OBJ := $(O)/obj/broker/bridge/natsjs.o
$(O)/bin/busrt-bridge $(O)/bin/daemoneye-agent: $(O)/bin/%: $(O)/obj/broker/apps/%.o $(BRIDGE_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BRIDGE_OBJ) $(LIB) $(LDLIBS_ALL) -lnats

# busrt-sim links the simulator build of the library: the same sources
# compiled with -DBUS_SIM (planted bugs, selectable at run time) in their
# own tree, $(O)/sim.
ifeq ($(SIMBUILD),)
$(O)/bin/busrt-sim: FORCE
	@$(MAKE) --no-print-directory O=$(O)/sim SIMBUILD=1 OPT="$(OPT)" \
		SAN="$(SAN)" CFLAGS="$(CFLAGS) -DBUS_SIM" $(O)/sim/bin/busrt-sim
	@mkdir -p $(dir $@) && cp $(O)/sim/bin/busrt-sim $@.new && mv -f $@.new $@
else
# scenario names resolve in the installed directory too (build with the
# PREFIX you install with, as a package does)
$(O)/obj/sim/main.o: CFLAGS_BASE += -DBUS_SCENARIO_DIR='"$(DATADIR)/busrt/scenarios"'
$(O)/bin/busrt-sim: $(O)/obj/sim/main.o $(SIM_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(SIM_OBJ) $(LIB) $(LDLIBS_ALL)
endif
FORCE:

$(O)/bin/busrt-bench: $(O)/obj/bench/busrt-bench.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LIB) $(LDLIBS_ALL)

# the peer brokers' clients (NATS, Redis, MQTT): make bench only, with its
# own dependencies (ci/deps.sh bench)
$(O)/bin/busrt-peers: bench/peers.c bench/latency.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< -lnats -lhiredis -lmosquitto -pthread

$(O)/tests/%: $(O)/obj/broker/tests/%.o $(TEST_SUPPORT) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(TEST_SUPPORT) $(LIB) $(LDLIBS_ALL) -lcmocka

# paths only an allocation failure takes, in code without an allocator
# hook: the library's calloc and free go through the test's wrappers
$(O)/tests/test_oom: $(O)/obj/broker/tests/test_oom.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LIB) $(LDLIBS_ALL) -lcmocka \
		-Wl,--wrap=calloc -Wl,--wrap=free

# the simulator's accounting ledger is tested on its own
$(O)/tests/test_ledger: $(O)/obj/broker/tests/test_ledger.o $(O)/obj/sim/ledger.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(O)/obj/sim/ledger.o $(LIB) $(LDLIBS_ALL) -lcmocka

# Fuzz harnesses (fuzz/*.c): linked with the replay driver by default; the
# AFL++ and libFuzzer builds pass FUZZ_DRIVER= FUZZ_LDFLAGS=-fsanitize=fuzzer.
FUZZ_TARGETS := frame core topic broadcast rpc config client proto services scenario sim
FUZZ_BIN := $(FUZZ_TARGETS:%=$(O)/fuzzers/%)
FUZZ_DRIVER ?= $(O)/obj/fuzz/replay.o
FUZZ_LDFLAGS ?=

$(O)/fuzzers/%: $(O)/obj/fuzz/%.o $(FUZZ_DRIVER) $(TEST_SUPPORT) $(SIM_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(FUZZ_LDFLAGS) -o $@ $< $(FUZZ_DRIVER) $(TEST_SUPPORT) $(SIM_OBJ) $(LIB) $(LDLIBS_ALL)

fuzzers: $(FUZZ_BIN)

# everything may include the generated header: generate it first
GEN_USERS := $(LIB_SRC:%.c=$(O)/obj/%.o) $(APPS:%=$(O)/obj/broker/apps/%.o) $(BRIDGE_OBJ) \
	$(TEST_SRC:broker/tests/%.c=$(O)/obj/broker/tests/%.o) $(TEST_SUPPORT) \
	$(O)/obj/broker/tests/perf_core.o $(O)/obj/bench/busrt-bench.o \
	$(FUZZ_TARGETS:%=$(O)/obj/fuzz/%.o) $(O)/obj/fuzz/replay.o \
	$(SIM_OBJ) $(O)/obj/sim/main.o
$(GEN_USERS): | $(O)/gen/daemoneye.pb-c.h

# the checkout's git describe for --version: regenerated on every make,
# rewritten only when it changes (so only version.o rebuilds then)
$(O)/gen/bus_version.h: FORCE
	@scripts/gen-version.sh $@
$(O)/obj/broker/net/version.o: $(O)/gen/bus_version.h

-include $(shell find $(O)/obj $(O)/pic -name '*.d' 2>/dev/null)

# make run: the simulator replays the shipped scenarios with their fault
# plans and prints its reports, then DaemonEye runs for real for a few
# seconds (run-daemoneye: daemoneye-agent hosting the embedded broker,
# supervising procmond; busrt-cli --proto watching); run-broker: the
# broker alone (in-process clients, busrt-cli over the socket);
# run-standalone: busrtd + Python.
run: all
	@set -e; for sc in scenarios/*.yaml; do $(O)/bin/busrt-sim run $$sc --seed 1; echo; done
	scripts/daemoneye-demo.sh $(O)/bin

run-daemoneye: all
	scripts/daemoneye-demo.sh $(O)/bin

run-broker: all
	$(O)/bin/busrt-demo --cli $(O)/bin/busrt-cli --seconds 3

run-standalone: all
	@$(PYTHON) scripts/demo.py --busrtd $(O)/bin/busrtd

# make test: build, C unit tests, pytest; each stage timed; ends with
# pytest's summary line. JUNIT_DIR=DIR: JUnit XML of the unit tests
# (cmocka's), the simulator's sweeps and pytest there, for CI to show.
JUNIT_DIR ?=
export JUNIT_DIR
test: deps-test
	@scripts/stage.sh build $(MAKE) --no-print-directory all tests
	@scripts/stage.sh unit $(MAKE) --no-print-directory unit
	@scripts/stage.sh fuzz-regress $(MAKE) --no-print-directory fuzz-regress
	@scripts/stage.sh sim $(MAKE) --no-print-directory sim-test
	@scripts/stage.sh pytest $(MAKE) --no-print-directory pytest

tests: $(TEST_BIN) $(O)/tests/perf_core

# the simulator over every shipped scenario (scripts/sim-test.sh)
sim-test: all
	@$(ASAN_MAKE) build/asan/bin/busrt-sim >/dev/null
	@scripts/sim-test.sh $(O)/bin/busrt-sim build/asan/bin/busrt-sim

unit: $(TEST_BIN)
	@set -e; [ -z "$(JUNIT_DIR)" ] || mkdir -p $(JUNIT_DIR); \
	for t in $(TEST_BIN); do echo "== $$t"; \
		if [ -n "$(JUNIT_DIR)" ]; then \
			CMOCKA_MESSAGE_OUTPUT=xml CMOCKA_XML_FILE=$(abspath $(JUNIT_DIR))/unit-$$(basename $$t).xml $$t; \
		else $$t; fi; done

pytest: all
	BUSRT_BIN=$(abspath $(O)/bin) $(PYTHON) -m pytest -q pytest $(PYTEST_ARGS) \
		$(if $(JUNIT_DIR),--junitxml=$(abspath $(JUNIT_DIR))/pytest.xml)

# Every seed and regression input of every fuzz target, through the
# ASan+UBSan build (part of make test).
fuzz-regress:
	@$(ASAN_MAKE) fuzzers
	@$(PYTHON) fuzz/seeds.py build/fuzz/seeds
	@scripts/fuzz-regress.sh build/asan/fuzzers build/fuzz/seeds

# the simulator's ASan+UBSan+LSan build (ci/sim-sweep.sh's leak sample)
asan-sim:
	@$(ASAN_MAKE) build/asan/bin/busrt-sim

# Mutation testing of the cores (scripts/mutate.py): M mutants sampled with
# seed MS, each rebuilt and run against the unit tests and the simulator's
# sweeps; prints the score and every survivor. make mutate M=200
M ?= 40
MS ?= 1
mutate: deps-test
	@/usr/bin/python3 scripts/mutate.py -m $(M) --seed $(MS) $(MUTATE_ARGS)

# AFL++ campaigns (fuzz/README.md): make fuzz T=frame S=300; make fuzz-all S=60
S ?= 60
fuzz:
	@ci/deps.sh fuzz
	@test -n "$(T)" || { echo "make fuzz T=<target> [S=seconds]; targets: $(FUZZ_TARGETS)"; exit 2; }
	@fuzz/campaign.sh $(T) $(S)

# one instance of a campaign over machines: make fuzz-node T=frame
# ROLE=main|secondary SYNC=/shared/dir [S=3600] [NAME=id] (fuzz/node.sh)
fuzz-node:
	@ci/deps.sh fuzz
	@test -n "$(T)" -a -n "$(ROLE)" -a -n "$(SYNC)" || { echo "make fuzz-node T=<target> ROLE=main|secondary SYNC=<dir> [S=seconds] [NAME=id]"; exit 2; }
	@fuzz/node.sh $(T) $(ROLE) $(SYNC) $(S) $(NAME)

# a campaign's crashes minimised into fuzz/regress/T: make fuzz-keep T=frame [FROM=dir]
fuzz-keep:
	@ci/deps.sh fuzz
	@test -n "$(T)" || { echo "make fuzz-keep T=<target> [FROM=campaign or sync dir]"; exit 2; }
	@fuzz/keep.sh $(T) $(FROM)

fuzz-all:
	@ci/deps.sh fuzz
	@set -e; for t in $(FUZZ_TARGETS); do fuzz/campaign.sh $$t $(S); done

# libFuzzer builds of every harness (clang -fsanitize=fuzzer,address)
fuzzers-libfuzzer:
	@ci/deps.sh fuzz
	@$(MAKE) --no-print-directory O=build/libfuzzer CC=clang OPT="-O1 -g" \
		SAN="-fsanitize=address,undefined,fuzzer-no-link" FUZZ_DRIVER= FUZZ_LDFLAGS=-fsanitize=fuzzer fuzzers

# Coverage (coverage/): lcov report of unit tests + pytest + fuzz corpus,
# and the floors of coverage/floors.
coverage:
	@ci/deps.sh coverage
	@coverage/report.sh

coverage-check: coverage
	@coverage/check.sh

# make bench: throughput, latency and syscalls per message against the raw
# socket bound and the embedded internal path (bench/run.py); BENCH_ARGS=--quick
bench:
	@ci/deps.sh bench
	@$(MAKE) --no-print-directory all $(O)/bin/busrt-peers
	$(PYTHON) bench/run.py --bin $(O)/bin $(BENCH_ARGS)

# ASan+UBSan: the same sources in build/asan; unit and integration tests.
asan: deps-test
	@scripts/stage.sh asan-build $(ASAN_MAKE) all tests
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		scripts/stage.sh asan-unit $(MAKE) --no-print-directory O=build/asan SAN="$(ASAN_FLAGS)" unit
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 BUSRT_ASAN=1 \
		scripts/stage.sh asan-pytest $(MAKE) --no-print-directory O=build/asan SAN="$(ASAN_FLAGS)" pytest

# ---- make install / uninstall -------------------------------------------
# As a Debian package lays it out: PREFIX (/usr/local) and DESTDIR; the
# daemons in sbin, the tools in bin; libbusrt.so.0 (soname, exported
# symbols: broker/libbusrt.map) and libbusrt.a; headers under
# include/bus; busrt.pc; man pages rendered from docs/man/*.scd by scdoc;
# example configurations and examples/hello-bus.c (a program on
# libbusrt) in share/doc/busrt/examples and, when not there
# already, the two defaults in SYSCONFDIR/daemoneye; systemd units. The
# programs link libbusrt statically (as built and tested); the shared
# library is for other programs.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
DOCDIR ?= $(DATADIR)/doc/busrt
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
RUNDIR ?= /run
LOGDIR ?= /var/log
SOMAJOR := 0
SONAME := libbusrt.so.$(SOMAJOR)
BUS_VERSION_NUM := $(shell sed -n 's/^.define BUS_VERSION "\(.*\)"/\1/p' broker/include/bus/bus.h)
SHLIB := $(O)/lib/libbusrt.so.$(BUS_VERSION_NUM)
PIC_OBJ := $(LIB_OBJ:$(O)/obj/%.o=$(O)/pic/%.o)
# the installed archive: the shared library's objects (built by install's
# flags: plain even in a sanitizer tree), not the tree's own $(LIB)
PIC_LIB := $(O)/pic/libbusrt.a
INSTALL_BIN := busrt-cli busrt-sim busrt-bench
INSTALL_SBIN := busrtd daemoneye-agent procmond busrt-bridge
MAN_SRC := $(wildcard docs/man/*.scd)
MAN_OUT := $(MAN_SRC:docs/man/%.scd=$(O)/man/%)
EXAMPLES := $(patsubst etc/%.in,$(O)/etc/%,$(wildcard etc/*.yaml.in))
UNITS := $(patsubst etc/systemd/%.in,$(O)/etc/systemd/%,$(wildcard etc/systemd/*.in))
SUBST = sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
	-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@RUNDIR@|$(RUNDIR)|g' \
	-e 's|@LOGDIR@|$(LOGDIR)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@PREFIX@|$(PREFIX)|g' \
	-e 's|@VERSION@|$(BUS_VERSION_NUM)|g'

$(O)/pic/gen/%.o: $(O)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fPIC -w -c $< -o $@
$(O)/pic/%.o: %.c | $(O)/gen/daemoneye.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fPIC -MMD -MP -c $< -o $@
$(O)/pic/broker/net/version.o: $(O)/gen/bus_version.h

$(SHLIB): $(PIC_OBJ) broker/libbusrt.map
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -shared -Wl,-soname,$(SONAME) \
		-Wl,--version-script=broker/libbusrt.map -o $@ $(PIC_OBJ) $(LDLIBS_ALL)
	ln -sf $(notdir $@) $(O)/lib/$(SONAME)
	ln -sf $(SONAME) $(O)/lib/libbusrt.so

$(PIC_LIB): $(PIC_OBJ)
	rm -f $@ && ar rcs $@ $^

$(O)/man/%: docs/man/%.scd
	@command -v scdoc >/dev/null || ci/deps.sh install
	@mkdir -p $(dir $@)
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || date +%s) scdoc < $< > $@.tmp && mv -f $@.tmp $@

# substituted with the paths of this make: rebuilt every time (PREFIX may
# differ from the last call)
$(O)/etc/%: etc/%.in FORCE
	@mkdir -p $(dir $@)
	@$(SUBST) $< > $@
$(O)/busrt.pc: broker/busrt.pc.in FORCE
	@mkdir -p $(dir $@)
	@$(SUBST) $< > $@

shlib: $(SHLIB)
man: $(MAN_OUT)

install: all $(SHLIB) $(PIC_LIB) $(MAN_OUT) $(EXAMPLES) $(UNITS) $(O)/busrt.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(INCLUDEDIR)/bus $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSCONFDIR)/daemoneye \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(DATADIR)/busrt/scenarios/plans \
		$(DESTDIR)$(BASHCOMPDIR)
	install -m 0755 $(INSTALL_BIN:%=$(O)/bin/%) $(DESTDIR)$(BINDIR)
	install -m 0755 $(INSTALL_SBIN:%=$(O)/bin/%) $(DESTDIR)$(SBINDIR)
	install -m 0644 $(SHLIB) $(PIC_LIB) $(DESTDIR)$(LIBDIR)
	ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libbusrt.so
	install -m 0644 $(O)/busrt.pc $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 0644 broker/include/bus/*.h $(O)/gen/daemoneye.pb-c.h $(DESTDIR)$(INCLUDEDIR)/bus
	install -m 0644 $(filter %.1,$(MAN_OUT)) $(DESTDIR)$(MANDIR)/man1
	install -m 0644 $(filter %.8,$(MAN_OUT)) $(DESTDIR)$(MANDIR)/man8
	install -m 0644 README.md CHANGELOG.md LICENSE docs/protocol.md proto/daemoneye.proto $(DESTDIR)$(DOCDIR)
	install -m 0644 $(EXAMPLES) examples/hello-bus.c $(DESTDIR)$(DOCDIR)/examples
	install -m 0644 scenarios/*.yaml scenarios/README.md $(DESTDIR)$(DATADIR)/busrt/scenarios
	install -m 0644 scenarios/plans/*.yaml $(DESTDIR)$(DATADIR)/busrt/scenarios/plans
	@set -e; for f in busrtd.yaml daemoneye-agent.yaml busrt-bridge.yaml; do \
		if [ -e $(DESTDIR)$(SYSCONFDIR)/daemoneye/$$f ]; then \
			echo "install: $(DESTDIR)$(SYSCONFDIR)/daemoneye/$$f exists: kept"; \
		else install -m 0644 $(O)/etc/$$f $(DESTDIR)$(SYSCONFDIR)/daemoneye/$$f; fi; done
	install -m 0644 $(UNITS) $(DESTDIR)$(UNITDIR)
	install -m 0644 etc/completion/busrt-cli.bash $(DESTDIR)$(BASHCOMPDIR)/busrt-cli
	install -m 0644 etc/completion/busrt-sim.bash $(DESTDIR)$(BASHCOMPDIR)/busrt-sim

# removes what install put there, except the configuration in
# SYSCONFDIR (as a package's conffiles: yours to delete)
uninstall:
	rm -f $(INSTALL_BIN:%=$(DESTDIR)$(BINDIR)/%) $(INSTALL_SBIN:%=$(DESTDIR)$(SBINDIR)/%)
	rm -f $(DESTDIR)$(LIBDIR)/libbusrt.so $(DESTDIR)$(LIBDIR)/$(SONAME) \
		$(DESTDIR)$(LIBDIR)/$(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/libbusrt.a \
		$(DESTDIR)$(LIBDIR)/pkgconfig/busrt.pc
	rm -rf $(DESTDIR)$(INCLUDEDIR)/bus $(DESTDIR)$(DOCDIR) $(DESTDIR)$(DATADIR)/busrt
	rm -f $(MAN_SRC:docs/man/%.scd=$(DESTDIR)$(MANDIR)/man1/%) \
		$(MAN_SRC:docs/man/%.scd=$(DESTDIR)$(MANDIR)/man8/%)
	rm -f $(UNITS:$(O)/etc/systemd/%=$(DESTDIR)$(UNITDIR)/%)
	rm -f $(DESTDIR)$(BASHCOMPDIR)/busrt-cli $(DESTDIR)$(BASHCOMPDIR)/busrt-sim
	@echo "uninstall: $(DESTDIR)$(SYSCONFDIR)/daemoneye kept (your configuration)"

clean:
	rm -rf build
