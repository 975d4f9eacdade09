/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sim — coverage-guided simulation: the input is the simulator's tape of
 * random choices (scheduling, latencies, short reads, which faults fire
 * when and where), so AFL++ steers the deterministic simulator toward new
 * broker and client states. The default scenario runs with the tape's
 * plan, in its topology (embedded) or BUSRT_SIM_TOPOLOGY's; any checker
 * failure, or a run that gets stuck, is a crash. An input replays with:
 * busrt-sim run default --tape FILE [--topology standalone]
 * (which checks the invariants after every step).
 */
#include "fuzz.h"
#include "../sim/sim.h"

#include <string.h>

static struct sim_scenario sc;
static bool loaded;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	if (!loaded) {
		char err[512];
		const char *path = getenv("BUSRT_SIM_SCENARIO");
		if (!path)
			path = "scenarios/default.yaml";
		FUZZ_CHECK(sim_scenario_load(path, &sc, err, sizeof(err)) == 0,
		           "%s (run from the repository's root, or set "
		           "BUSRT_SIM_SCENARIO)", err);
		const char *t = getenv("BUSRT_SIM_TOPOLOGY");
		if (t && !strcmp(t, "standalone"))
			sc.topology = SIM_STANDALONE;
		else
			FUZZ_CHECK(!t || !strcmp(t, "embedded"),
			           "BUSRT_SIM_TOPOLOGY: embedded or standalone");
		loaded = true;
	}
	/* the invariants every 16th step and at the end: walking every
	 * mask, trie node and queued frame after each of a short-I/O run's
	 * 25,000 steps was four fifths of its time. A structure broken
	 * and mended again within 16 steps escapes the fuzzer; one that
	 * stays broken is caught at most 16 steps late */
	struct sim_options o = {.seed = 1, .tape = data, .tape_len = size,
	                        .tape_plan = true, .buggify_drawn = true,
	                        .check_every = 16};
	struct sim_report r;
	FUZZ_CHECK(sim_run(&sc, &o, &r) == 0, "the run got stuck");
	for (int c = 0; c < SIM_C_N; c++)
		FUZZ_CHECK(r.ok[c], "%s: %s (replay: busrt-sim run default "
		           "--tape FILE --topology %s)", sim_check_names[c],
		           r.why[c], sim_topology_names[sc.topology]);
	return 0;
}
