/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scenario — the simulator's scenario and fault-plan parsers (libyaml
 * underneath, our walker on top). Byte 0 even: the rest is a scenario;
 * odd: a fault plan. Property: a parse fails with "name:line: ..." or
 * succeeds; a plan that parses prints to text that parses back to the
 * same plan; a scenario that parses prints to text that parses back and
 * prints the same.
 */
#define _DEFAULT_SOURCE
#include "fuzz.h"
#include "../sim/sim.h"

#include <string.h>

static void same_plan(const struct sim_plan *a, const struct sim_plan *b)
{
	FUZZ_CHECK(a->n == b->n, "plan of %zu faults reads back as %zu", a->n,
	           b->n);
	for (size_t i = 0; i < a->n; i++) {
		const struct sim_fault *x = &a->v[i], *y = &b->v[i];
		FUZZ_CHECK(x->kind == y->kind && x->at_ns / SIM_MS == y->at_ns / SIM_MS &&
		                   x->for_ns / SIM_MS == y->for_ns / SIM_MS &&
		                   x->ms == y->ms && !strcmp(x->target, y->target),
		           "fault %zu differs after a round trip", i);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 256 * 1024)
		return 0;
	const char *text = (const char *)data + 1;
	char err[512] = "";
	if (!(data[0] & 1)) {
		struct sim_scenario sc;
		if (sim_scenario_parse(text, size - 1, "in.yaml", &sc, err,
		                       sizeof(err)) == 0) {
			/* printed (as busrt-sim shrink writes scenarios), it
			 * parses back, and prints the same again */
			char *a = NULL, *b = NULL;
			size_t alen = 0, blen = 0;
			FILE *f = open_memstream(&a, &alen);
			sim_scenario_print(f, &sc);
			fclose(f);
			struct sim_scenario sc2;
			FUZZ_CHECK(sim_scenario_parse(a, alen, "printed.yaml", &sc2,
			                              err, sizeof(err)) == 0,
			           "a printed scenario does not parse: %s", err);
			f = open_memstream(&b, &blen);
			sim_scenario_print(f, &sc2);
			fclose(f);
			FUZZ_CHECK(alen == blen && !memcmp(a, b, alen),
			           "a printed scenario prints differently again");
			sim_scenario_free(&sc2);
			sim_scenario_free(&sc);
			free(a);
			free(b);
		} else {
			FUZZ_CHECK(!strncmp(err, "in.yaml", 7), "error without the "
			           "file's name: %s", err);
		}
		return 0;
	}
	struct sim_plan p;
	if (sim_plan_parse(text, size - 1, "in.yaml", &p, err, sizeof(err))) {
		FUZZ_CHECK(!strncmp(err, "in.yaml", 7), "error without the "
		           "file's name: %s", err);
		return 0;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	sim_plan_print(f, &p);
	fclose(f);
	struct sim_plan q;
	FUZZ_CHECK(sim_plan_parse(buf, len, "printed.yaml", &q, err,
	                          sizeof(err)) == 0,
	           "a printed plan does not parse: %s", err);
	same_plan(&p, &q);
	sim_plan_free(&q);
	sim_plan_free(&p);
	free(buf);
	return 0;
}
