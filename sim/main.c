/* SPDX-License-Identifier: Apache-2.0 */
/*
 * busrt-sim — the deterministic simulator's command line.
 *
 *   busrt-sim run SCENARIO [--seed N] [--faults FILE|none] [--trace FILE]
 *                 [--json] [--check-determinism] [--tape FILE]
 *   (--tape: every random choice, and the fault plan unless --faults says
 *   otherwise, read from the file's bytes: what the sim fuzz target feeds)
 *   busrt-sim sweep SCENARIO --seeds A..B [-j N] [--faults FILE|none]
 *                   [--shard K/N]     (the K-th of N disjoint slices)
 *   busrt-sim merge RESULT...         (the shards' --json back into the
 *                                      sweep's report, JSON or JUnit)
 *   busrt-sim ledger add FILE... [--dir DIR]  (saved failures, shrunk,
 *                                      once per check and shrunk plan)
 *   busrt-sim plan SCENARIO --seed N      (the fault plan a seed draws)
 *   busrt-sim replay FILE                 (a saved failure: its seed,
 *                                          plan and planted bug)
 *   busrt-sim shrink FILE [--out FILE]    (ddmin of its fault plan)
 *   run --save FILE / sweep --save-dir DIR: failures saved as such files
 *   busrt-sim record [--poll-ms N] [--seconds S] [--command CMD]
 *                    [--subtree] [--netlink] [--name NAME] [--out FILE]
 *   (run and sweep) --plant BUG: a planted bug of the simulator build, to
 *   see a checker fail: dup, swap, drop-acked, no-resubscribe,
 *   no-restart, miscount, lifecycle, corrupt, child-first
 *
 * SCENARIO is a file, or a name under scenarios/ (default). The fault
 * plan: --faults FILE, none, else the scenario's own, else one drawn from
 * the seed. Exit status: 0 every check holds, 1 a check failed (or the
 * run got stuck), 2 bad input (file, line and reason on stderr).
 */
#define _DEFAULT_SOURCE
#include "sim.h"
#include "bus/compat.h"
#include "bus/net.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sites_list(FILE *f, uint32_t mask);
static int mkdir_p(const char *dir);
static void plants_list(FILE *f, const char *sep);

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: busrt-sim run SCENARIO [--seed N] [--faults FILE|none] "
	        "[--trace FILE] [--json]\n"
	        "                     [--check-determinism] [--tape FILE] "
	        "[--save FILE]\n"
	        "       busrt-sim sweep SCENARIO --seeds A..B [-j N] "
	        "[--faults FILE|none] [--save-dir DIR]\n"
	        "                       [--json] [--junit FILE] [--shard K/N]\n"
	        "       busrt-sim merge RESULT... [--json] [--junit FILE]   (the "
	        "shards' sweep --json\n"
	        "                  results as the one sweep's report; every seed "
	        "once, else exit 2)\n"
	        "       busrt-sim ledger add FILE... [--dir DIR]   (saved failures "
	        "shrunk, kept once per\n"
	        "                  first failing check and shrunk plan; DIR: "
	        "scenarios/regress)\n"
	        "       busrt-sim plan SCENARIO --seed N\n"
	        "  --check-every N (run, sweep): the broker core's invariants "
	        "after every Nth step\n"
	        "                  (run: every step; sweep: every 64th)\n"
	        "  --topology embedded|standalone (run, sweep): where the broker "
	        "runs (default: the\n"
	        "                  scenario's, else embedded in the agent)\n"
	        "       busrt-sim replay FILE | shrink FILE [--out FILE]\n"
	        "       busrt-sim report FILE --html OUT   (the run as a timeline "
	        "page: lanes, fault bands,\n"
	        "                  the first offending event marked)\n"
	        "  run --save FILE, sweep --save-dir DIR: save failures "
	        "(self-contained)\n"
	        "       busrt-sim record [--poll-ms N] [--seconds S] "
	        "[--command CMD] [--subtree]\n"
	        "                        [--netlink] [--name NAME] [--out FILE]\n"
	        "  --plant BUG (run, sweep): ");
	plants_list(f, ", ");
	fprintf(f, "\n"
	        "  --buggify none|all|seed|SITE,... (run, sweep): the fault sites "
	        "armed (default: drawn\n"
	        "                  from the seed); sites: ");
	sites_list(f, (1u << BUS_SITE_N) - 1);
	fprintf(f, "\n"
	        "  sweep --json: one JSON object (per-seed results, failures with "
	        "replay commands);\n"
	        "  sweep --junit FILE: JUnit XML, one test case per seed\n"
	        "SCENARIO: a file, or a name in ./scenarios, $BUSRT_SCENARIOS or "
	        "%s.\n"
	        "Exit: 0 all checks hold, 1 a check failed, 2 bad input (or a "
	        "failure that could not be saved).\n"
	        "busrt-sim --help | --version: this text | the version\n",
	        BUS_SCENARIO_DIR);
}

static const struct {
	const char *name;
	uint32_t bit;
} plants[] = {
	{"dup", BUS_PLANT_DUP},
	{"swap", BUS_PLANT_SWAP},
	{"drop-acked", BUS_PLANT_DROP_ACKED},
	{"no-resubscribe", BUS_PLANT_NO_RESUBSCRIBE},
	{"no-restart", BUS_PLANT_NO_RESTART},
	{"miscount", BUS_PLANT_MISCOUNT},
	{"lifecycle", BUS_PLANT_LIFECYCLE},
	{"corrupt", BUS_PLANT_CORRUPT},
	{"child-first", BUS_PLANT_CHILD_FIRST},
	{"drop-on-eagain", BUS_PLANT_DROP_ON_EAGAIN},
	{"no-resend", BUS_PLANT_NO_RESEND},
	{"acl-open", BUS_PLANT_ACL_OPEN},
	{"svc-open", BUS_PLANT_SVC_OPEN},
	{"qbytes", BUS_PLANT_QBYTES},
	{"svc-closed", BUS_PLANT_SVC_CLOSED},
	{"shutdown-waits", BUS_PLANT_SHUTDOWN_WAITS},
};

static const char *plant_name = ""; /* for saved failures */
static uint32_t plant_bits;         /* --plant, or a saved failure's */

/* Sweep workers end with _exit (no LeakSanitizer at exit): in the
 * ASan+LSan build each seed's run is checked for leaks as it ends. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
static bool leaked(void)
{
	return __lsan_do_recoverable_leak_check() != 0;
}
#else
static bool leaked(void)
{
	return false;
}
#endif

/* A tape file: raw bytes, at most 16 MiB. */
static int read_tape(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "busrt-sim: %s: %s\n", path, strerror(errno));
		return 2;
	}
	size_t cap = 16u << 20;
	*out = malloc(cap);
	*len = *out ? fread(*out, 1, cap, f) : 0;
	bool bad_read = !*out || ferror(f);
	fclose(f);
	if (bad_read) {
		fprintf(stderr, "busrt-sim: %s: cannot read the tape\n", path);
		return 2;
	}
	return 0;
}

/* The planted bugs' names, as --plant takes them. */
static void plants_list(FILE *f, const char *sep)
{
	for (size_t i = 0; i < sizeof(plants) / sizeof(plants[0]); i++)
		fprintf(f, "%s%s", i ? sep : "", plants[i].name);
}

static uint32_t plant_bit(const char *name)
{
	for (size_t i = 0; i < sizeof(plants) / sizeof(plants[0]); i++)
		if (!strcmp(plants[i].name, name))
			return plants[i].bit;
	return 0;
}

struct args {
	const char *cmd, *scenario, *faults, *trace, *save, *out, *save_dir;
	const char *junit; /* sweep --junit FILE */
	const char *html;  /* report --html OUT */
	bool seed_set;     /* --seed given */
	uint8_t *tape;
	size_t tape_len;
	uint64_t seed, from, to;
	uint64_t shard_k, shard_n; /* sweep --shard K/N: 1..N of N (1/1) */
	int jobs;
	bool json, determinism;
	/* fault sites: --buggify, or a replayed file's; else drawn from the
	 * seed (none under --faults none) */
	bool buggify_set;
	uint32_t buggify;
	bool buggify_drawn;
	/* the core's invariants every Nth step (run: 1, sweep: 64) */
	uint32_t check_every;
	int topology; /* --topology, or -1: the scenario's */
};

/* --buggify SPEC: none, all, seed, or site,site,... */
static bool parse_buggify(const char *spec, struct args *a)
{
	a->buggify_set = true;
	a->buggify = 0;
	a->buggify_drawn = false;
	if (!strcmp(spec, "none"))
		return true;
	if (!strcmp(spec, "seed"))
		return a->buggify_drawn = true;
	if (!strcmp(spec, "all")) {
		a->buggify = (1u << BUS_SITE_N) - 1;
		return true;
	}
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		int k = sim_site_by_name(t);
		if (k < 0)
			return false;
		a->buggify |= 1u << k;
	}
	return a->buggify != 0;
}

/* As --buggify takes them: site,site or none. */
static void sites_list(FILE *f, uint32_t mask)
{
	if (!sim_sites_print(f, mask, ","))
		fprintf(f, "none");
}

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "busrt-sim: %s%s%s\n", what, arg ? ": " : "",
	        arg ? arg : "");
	usage(stderr);
	return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *s == '-' || *end || errno)
		return false;
	*out = v;
	return true;
}

#ifndef BUS_SCENARIO_DIR /* the installed scenarios (make install) */
#define BUS_SCENARIO_DIR "/usr/local/share/busrt/scenarios"
#endif

/* A scenario by name: a file as given, else NAME.yaml in ./scenarios (a
 * checkout), $BUSRT_SCENARIOS, or the installed directory — the first
 * that exists (./scenarios when none does: its error names it). */
static bool scenario_path(const char *name, char *path, size_t n)
{
	if (access(name, R_OK) == 0 || strchr(name, '/')) {
		snprintf(path, n, "%s", name);
		return true;
	}
	const char *env = getenv("BUSRT_SCENARIOS");
	const char *dirs[] = {"scenarios", env && *env ? env : NULL,
	                      BUS_SCENARIO_DIR};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (!dirs[i])
			continue;
		snprintf(path, n, "%s/%s.yaml", dirs[i], name);
		if (access(path, R_OK) == 0)
			return true;
	}
	return false;
}

/* "X<sep>Y", two numbers (--seeds A..B, --shard K/N). */
static bool parse_pair(const char *s, const char *sep, uint64_t *x,
                       uint64_t *y)
{
	char lo[32];
	const char *at = strstr(s, sep);
	size_t k = at ? (size_t)(at - s) : 0;
	if (!at || k >= sizeof(lo))
		return false;
	memcpy(lo, s, k);
	lo[k] = 0;
	return parse_u64(lo, x) && parse_u64(at + strlen(sep), y);
}

static int load_scenario(const struct args *a, struct sim_scenario *sc)
{
	const char *name = a->scenario;
	char path[512], err[512];
	if (!scenario_path(name, path, sizeof(path))) {
		const char *env = getenv("BUSRT_SCENARIOS");
		fprintf(stderr, "busrt-sim: %s: no such file, nor a scenario of "
		        "that name (NAME.yaml) in ./scenarios%s%s or %s\n", name,
		        env && *env ? ", " : "", env && *env ? env : "",
		        BUS_SCENARIO_DIR);
		return 2;
	}
	if (sim_scenario_load(path, sc, err, sizeof(err))) {
		fprintf(stderr, "busrt-sim: %s\n", err);
		return 2;
	}
	if (a->topology >= 0)
		sc->topology = (enum sim_topology)a->topology;
	return 0;
}

/* The plan of a run: --faults FILE / none, the scenario's, or drawn. */
static int choose_plan(const struct args *a, const struct sim_scenario *sc,
                       uint64_t seed, struct sim_plan *p, bool *owned,
                       const struct sim_plan **out)
{
	char err[512];
	*owned = false;
	if (a->faults && !strcmp(a->faults, "none")) {
		*out = NULL;
		return 0;
	}
	if (a->faults) {
		if (sim_plan_load(a->faults, p, err, sizeof(err))) {
			fprintf(stderr, "busrt-sim: %s\n", err);
			return 2;
		}
		*owned = true;
		*out = p;
		return 0;
	}
	if (sc->has_plan) {
		*out = &sc->plan;
		return 0;
	}
	sim_plan_draw(sc, seed, p);
	*owned = true;
	*out = p;
	return 0;
}

static bool all_ok(const struct sim_report *r)
{
	for (int c = 0; c < SIM_C_N; c++)
		if (!r->ok[c])
			return false;
	return true;
}

/* Throughput, a report and not a gate (measured, so never in the trace):
 * deliveries per CPU-second of the whole simulated run (broker core,
 * client cores, simulated network, checks), and of the in-process channel
 * the broker replaces, fed the same events. */
struct rates {
	double broker, oracle, ratio;
};

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The oracle path: one bounded channel (bus_chan) per receiver — the
 * monitors and the agent (events/#) — each event copied to every receiver
 * whose masks want it, then drained; repeated for at least 50 ms of CPU. */
static double oracle_rate(const struct sim_scenario *sc,
                          const struct sim_log *log)
{
	size_t nr = sc->n_monitors + 1;
	struct bus_chan **ch = calloc(nr, sizeof(*ch));
	bool ok = ch != NULL;
	for (size_t i = 0; ok && i < nr; i++)
		ok = (ch[i] = bus_chan_new(log->n ? log->n : 1)) != NULL;
	uint64_t done = 0;
	double t0 = cpu_seconds(), t = 0;
	while (ok && log->n && t < 0.05) {
		for (size_t e = 0; e < log->n; e++)
			for (size_t i = 0; i < nr; i++) {
				bool want = i == nr - 1 && sim_mask_match(SIM_AGENT_MASK,
				                                          log->v[e].topic);
				for (int k = 0; i < nr - 1 && k < sc->monitors[i].n_masks;
				     k++)
					want |= sim_mask_match(sc->monitors[i].masks[k],
					                       log->v[e].topic);
				if (!want)
					continue;
				struct bus_chan_item it = {0, malloc(log->v[e].len + 1),
				                           log->v[e].len};
				if (!it.data)
					abort();
				memcpy(it.data, log->v[e].data, it.len);
				bus_chan_send(ch[i], &it);
			}
		struct bus_chan_item it;
		for (size_t i = 0; i < nr; i++)
			while (bus_chan_recv(ch[i], &it, 0) == 0) {
				free(it.data);
				done++;
			}
		t = cpu_seconds() - t0;
	}
	for (size_t i = 0; ch && i < nr; i++)
		if (ch[i])
			bus_chan_free(ch[i]);
	free(ch);
	return t > 0 ? done / t : 0;
}

/* run --json: the report as one JSON object on one line (jansson). */
static void json_report(const struct sim_scenario *sc,
                        const struct sim_report *r, const char *plan,
                        const struct rates *th)
{
	char hash[17];
	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)r->trace_hash);
	json_t *o = json_pack(
	    "{s:s,s:s,s:I,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "scenario",
	    sc->name, "topology", sim_topology_names[sc->topology], "seed",
	    (json_int_t)r->seed, "plan", plan, "trace_hash", hash, "events",
	    (json_int_t)r->events, "virtual_ms",
	    (json_int_t)(r->virtual_ns / SIM_MS), "published",
	    (json_int_t)r->published, "delivered", (json_int_t)r->delivered,
	    "oracle_delivered", (json_int_t)r->oracle_delivered,
	    "broker_restarts", (json_int_t)r->broker_restarts,
	    "collector_restarts", (json_int_t)r->collector_restarts);
	if (!o)
		return;
	json_t *fk = json_object();
	for (int k = 0; k < SIM_F_KINDS; k++)
		json_object_set_new(fk, sim_fault_names[k],
		                    json_integer((json_int_t)r->faults[k]));
	json_object_set_new(o, "faults", fk);
	json_t *st = json_object();
	for (int k = 0; k < BUS_SITE_N; k++)
		json_object_set_new(st, sim_site_names[k],
		                    json_pack("{s:b,s:I,s:I}", "armed",
		                              (r->buggify >> k) & 1, "reached",
		                              (json_int_t)r->reached[k], "fired",
		                              (json_int_t)r->fired[k]));
	json_object_set_new(o, "sites", st);
	json_object_set_new(o, "throughput",
	                    json_pack("{s:f,s:f,s:f}", "broker_per_cpu_s",
	                              th->broker, "oracle_per_cpu_s", th->oracle,
	                              "broker_oracle_ratio", th->ratio));
	json_t *ck = json_object();
	for (int c = 0; c < SIM_C_N; c++)
		json_object_set_new(ck, sim_check_names[c],
		                    json_pack("{s:b,s:s}", "ok", r->ok[c], "why",
		                              r->why[c]));
	json_object_set_new(o, "checks", ck);
	json_object_update_new(
	    o, json_pack("{s:b,s:I,s:I,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
	                 "s:I,s:b,s:f,s:i,s:i,s:i,s:b}",
	                 "accounting_compared", r->accounting_compared,
	                 "flight_c2b", (json_int_t)r->flight_c2b,
	                 "flight_b2c", (json_int_t)r->flight_b2c,
	                 "end_to_end_checked", r->end_to_end_checked,
	                 "access_denied", (json_int_t)r->access_denied,
	                 "invariant_checks", (json_int_t)r->invariant_checks,
	                 "resent", (json_int_t)r->resent, "redelivered",
	                 (json_int_t)r->redelivered, "processed",
	                 (json_int_t)r->processed, "gaps", (json_int_t)r->gaps,
	                 "resyncs", (json_int_t)r->resyncs, "caps_sent",
	                 (json_int_t)r->caps_sent, "caps_received",
	                 (json_int_t)r->caps_received, "shutdown_checked",
	                 r->shutdown_checked, "shutdown_ms",
	                 r->shutdown_ns / 1e6, "shutdown_answered",
	                 (int)r->shut_answered, "shutdown_crashed",
	                 (int)r->shut_crashed, "shutdown_deaf",
	                 (int)r->shut_deaf, "ok", all_ok(r)));
	json_dumpf(o, stdout, 0);
	fputc('\n', stdout);
	json_decref(o);
}

/* " name count" for each non-zero count; false if there was none. */
static bool nonzero_counts(const char *const *names, const uint64_t *v, int n)
{
	bool any = false;
	for (int k = 0; k < n; k++)
		if (v[k]) {
			printf(" %s %llu", names[k], (unsigned long long)v[k]);
			any = true;
		}
	return any;
}

static void table_report(const struct sim_scenario *sc,
                         const struct sim_report *r, const char *plan,
                         const struct rates *th)
{
	printf("busrt-sim: scenario %s (%s), seed %llu, fault plan: %s\n",
	       sc->name, sim_topology_names[sc->topology],
	       (unsigned long long)r->seed, plan);
	printf("  virtual time %.3f s; %llu events published, %llu deliveries "
	       "(the oracle's: %llu)\n",
	       r->virtual_ns / 1e9, (unsigned long long)r->published,
	       (unsigned long long)r->delivered,
	       (unsigned long long)r->oracle_delivered);
	printf("  faults:");
	bool any = nonzero_counts(sim_fault_names, r->faults, SIM_F_KINDS);
	printf("%s; broker restarts %llu, collector restarts %llu\n",
	       any ? "" : " none", (unsigned long long)r->broker_restarts,
	       (unsigned long long)r->collector_restarts);
	printf("  fault sites armed: ");
	sites_list(stdout, r->buggify);
	printf("; fired:");
	any = nonzero_counts(sim_site_names, r->fired, BUS_SITE_N);
	printf("%s\n", any ? "" : " none");
	printf("  trace: %llu events, hash %016llx\n",
	       (unsigned long long)r->events, (unsigned long long)r->trace_hash);
	printf("  end to end: the agent processed %llu events in sequence; %llu "
	       "re-sent (%llu deliveries of them), %llu gaps seen, %llu "
	       "resyncs answered\n",
	       (unsigned long long)r->processed, (unsigned long long)r->resent,
	       (unsigned long long)r->redelivered, (unsigned long long)r->gaps,
	       (unsigned long long)r->resyncs);
	printf("  throughput (a report, not a gate): broker path %.0f "
	       "deliveries/CPU-s (the whole simulated run), the in-process "
	       "channel %.0f/CPU-s: ratio %.3f\n",
	       th->broker, th->oracle, th->ratio);
	char denied[128], inv[96];
	snprintf(denied, sizeof(denied), " (another uid's %llu tries refused; "
	         "the operator's %llu lifecycle calls served)",
	         (unsigned long long)r->access_denied,
	         (unsigned long long)r->operator_served);
	snprintf(inv, sizeof(inv), " (the core's and clients', checked %llu times)",
	         (unsigned long long)r->invariant_checks);
	char acct[200];
	snprintf(acct, sizeof(acct), r->accounting_compared
	         ? " (every frame, to the byte: %llu died in flight at closes "
	           "and resets, %llu client to broker, %llu broker to client, "
	           "each accounted)"
	         : " (not compared: no broker at the end)",
	         (unsigned long long)(r->flight_c2b + r->flight_b2c),
	         (unsigned long long)r->flight_c2b,
	         (unsigned long long)r->flight_b2c);
	char ctl[320], shut[160];
	if (r->shutdown_checked)
		snprintf(shut, sizeof(shut), "shutdown in %.1f ms: %u answered, "
		         "%u crashed, %u deaf", r->shutdown_ns / 1e6,
		         r->shut_answered, r->shut_crashed, r->shut_deaf);
	else
		snprintf(shut, sizeof(shut), "shutdown not exercised: a "
		         "collector or the agent was down at the end");
	snprintf(ctl, sizeof(ctl), " (capabilities: %llu advertised, each "
	         "before its connection's events, %llu received by the agent; "
	         "%llu broker stats on schedule; %s)",
	         (unsigned long long)r->caps_sent,
	         (unsigned long long)r->caps_received,
	         (unsigned long long)r->stats_got, shut);
	for (int c = 0; c < SIM_C_N; c++)
		printf("  %-12s %s%s%s%s\n", sim_check_names[c],
		       r->ok[c] ? "ok" : "FAILED", r->ok[c] ? "" : ": ",
		       r->why[c],
		       c == SIM_C_ACCESS && r->ok[c] ? denied :
		       c == SIM_C_INVARIANTS && r->ok[c] ? inv :
		       c == SIM_C_CONTROL && r->ok[c] ? ctl :
		       c == SIM_C_ACCOUNTING && r->ok[c] ? acct
		       : (c == SIM_C_STREAM || c == SIM_C_CONVERGENCE) &&
		                       !r->end_to_end_checked
		               ? " (not checked: drop_newest drops what the agent "
		                 "needs too, re-sends and replies included)"
		               : "");
}

static const char *plan_label(const struct args *a,
                              const struct sim_scenario *sc,
                              const struct sim_plan *p)
{
	if (!p)
		return "none";
	if (a->faults)
		return a->faults;
	return sc->has_plan ? "the scenario's" : "drawn from the seed";
}

/* The first failed check's name and reason, for files and summaries. */
static void first_failure(const struct sim_report *r, char *out, size_t n)
{
	snprintf(out, n, "the run got stuck");
	for (int c = 0; c < SIM_C_N; c++)
		if (!r->ok[c]) {
			snprintf(out, n, "%s: %s", sim_check_names[c], r->why[c]);
			return;
		}
}

static int first_failed_check(const struct sim_report *r)
{
	for (int c = 0; c < SIM_C_N; c++)
		if (!r->ok[c])
			return c;
	return -1;
}

/* Where a failure was saved (run --save, sweep --save-dir). */
struct saved {
	bool tried, ok;
	char path[600];
};

/* One run of seed. plan_copy (may be NULL): the plan it ran, copied
 * (free its v). */
static int run_one(const struct args *a, const struct sim_scenario *sc,
                   uint64_t seed, FILE *trace, struct sim_report *r,
                   const char **label, struct sim_log *log,
                   struct saved *sv, struct sim_plan *plan_copy)
{
	struct sim_plan drawn = {0};
	const struct sim_plan *plan = NULL;
	bool owned = false;
	int rc = 0;
	if (!a->tape || a->faults)
		rc = choose_plan(a, sc, seed, &drawn, &owned, &plan);
	if (rc)
		return rc;
	*label = a->tape && !a->faults ? "drawn from the tape"
	                               : plan_label(a, sc, plan);
	bool none = a->faults && !strcmp(a->faults, "none");
	struct sim_options o = {
		.seed = seed, .plan = plan, .trace = trace, .tape = a->tape,
		.tape_len = a->tape_len, .tape_plan = a->tape && !a->faults,
		.buggify = a->buggify_set ? a->buggify : 0,
		.buggify_drawn = a->buggify_set ? a->buggify_drawn : !none,
		.plant = plant_bits, .log = log,
		.check_every = a->check_every ? a->check_every
		               : !strcmp(a->cmd, "sweep") ? 64 : 1};
	rc = sim_run(sc, &o, r);
	bool failed = rc || !all_ok(r);
	if (failed && (a->save || a->save_dir)) {
		char why[400];
		first_failure(r, why, sizeof(why));
		char path[600];
		if (a->save_dir)
			snprintf(path, sizeof(path), "%s/%s-%s-seed-%llu.yaml",
			         a->save_dir, sc->name,
			         sim_topology_names[sc->topology],
			         (unsigned long long)seed);
		else
			snprintf(path, sizeof(path), "%s", a->save);
		bool ok = sim_save_failure(sc->path, sc->topology, plan, seed,
		                           plant_name, r->buggify, why, path) == 0;
		if (ok)
			fprintf(stderr, "busrt-sim: seed %llu: failure saved in %s\n",
			        (unsigned long long)seed, path);
		else /* the failure itself is lost: that fails the command */
			fprintf(stderr, "busrt-sim: seed %llu: the failure could not "
			        "be saved in %s\n", (unsigned long long)seed, path);
		if (sv) {
			sv->tried = true;
			sv->ok = ok;
			snprintf(sv->path, sizeof(sv->path), "%s", path);
		}
	}
	if (plan_copy) {
		plan_copy->n = plan ? plan->n : 0;
		plan_copy->v = plan_copy->n
		                   ? malloc(plan_copy->n * sizeof(*plan_copy->v))
		                   : NULL;
		if (plan_copy->v)
			memcpy(plan_copy->v, plan->v,
			       plan_copy->n * sizeof(*plan_copy->v));
		else
			plan_copy->n = 0;
	}
	if (owned)
		sim_plan_free(&drawn);
	if (rc) {
		fprintf(stderr, "busrt-sim: seed %llu: the run got stuck (an "
		                "instant that never ends)\n",
		        (unsigned long long)seed);
		return 1;
	}
	return all_ok(r) ? 0 : 1;
}

/* Runs the seed twice in child processes; on a mismatch, names the first
 * trace line where they differ. */
static int determinism(const struct args *a, const struct sim_scenario *sc)
{
	char path[2][64];
	uint64_t hash[2];
	for (int k = 0; k < 2; k++) {
		snprintf(path[k], sizeof(path[k]), "/tmp/busrt-sim-%d-%d.trace",
		         (int)getpid(), k);
		int fd[2];
		if (pipe(fd))
			return 2;
		pid_t pid = fork();
		if (pid == 0) {
			close(fd[0]);
			FILE *t = fopen(path[k], "w");
			struct sim_report r;
			const char *label;
			run_one(a, sc, a->seed, t, &r, &label, NULL, NULL, NULL);
			fclose(t);
			if (write(fd[1], &r.trace_hash, sizeof(r.trace_hash)) < 0)
				_exit(3);
			_exit(0);
		}
		close(fd[1]);
		if (read(fd[0], &hash[k], sizeof(hash[k])) != sizeof(hash[k]))
			hash[k] = (uint64_t)k; /* a child that died differs */
		close(fd[0]);
		waitpid(pid, NULL, 0);
	}
	int rc = 0;
	if (hash[0] != hash[1]) {
		FILE *f0 = fopen(path[0], "r"), *f1 = fopen(path[1], "r");
		char l0[600], l1[600];
		for (unsigned long line = 1; f0 && f1; line++) {
			char *x = fgets(l0, sizeof(l0), f0), *y = fgets(l1, sizeof(l1), f1);
			if (!x || !y || strcmp(l0, l1)) {
				printf("determinism: FAILED: the runs diverge at trace "
				       "line %lu:\n  first:  %s  second: %s", line,
				       x ? l0 : "(end)\n", y ? l1 : "(end)\n");
				break;
			}
		}
		if (f0)
			fclose(f0);
		if (f1)
			fclose(f1);
		rc = 1;
	} else {
		printf("determinism: ok (two processes, trace hash %016llx)\n",
		       (unsigned long long)hash[0]);
	}
	unlink(path[0]);
	unlink(path[1]);
	return rc;
}

static int cmd_run(const struct args *a)
{
	struct sim_scenario sc;
	int rc = load_scenario(a, &sc);
	if (rc)
		return rc;
	FILE *trace = NULL;
	if (a->trace && !(trace = fopen(a->trace, "w"))) {
		fprintf(stderr, "busrt-sim: %s: %s\n", a->trace, strerror(errno));
		sim_scenario_free(&sc);
		return 2;
	}
	struct sim_report r;
	const char *label = "";
	struct sim_log log = {0};
	double t0 = cpu_seconds();
	struct saved sv = {0};
	rc = run_one(a, &sc, a->seed, trace, &r, &label, &log, &sv, NULL);
	struct rates th = {r.delivered / (cpu_seconds() - t0 + 1e-9),
	                   oracle_rate(&sc, &log), 0};
	th.ratio = th.oracle > 0 ? th.broker / th.oracle : 0;
	sim_log_free(&log);
	if (trace)
		fclose(trace);
	if (rc != 2) {
		if (a->json)
			json_report(&sc, &r, label, &th);
		else
			table_report(&sc, &r, label, &th);
	}
	if (rc == 1 && sv.tried && !sv.ok) {
		rc = 2; /* said above; no replay line for a file not there */
	} else if (rc == 1 && !a->json && a->save) {
		printf("  replay: busrt-sim replay %s\n", a->save);
	} else if (rc == 1 && !a->json) {
		printf("  replay: busrt-sim run %s --seed %llu%s%s%s%s --buggify ",
		       sc.path, (unsigned long long)a->seed,
		       a->faults ? " --faults " : "", a->faults ? a->faults : "",
		       plant_name[0] ? " --plant " : "", plant_name);
		sites_list(stdout, r.buggify);
		printf("\n");
	}
	if (rc != 2 && a->determinism) {
		int d = determinism(a, &sc);
		if (d && !rc)
			rc = d;
	}
	sim_scenario_free(&sc);
	return rc;
}

/* A saved failure's planted bug, for this command's runs. */
static int apply_plant(const struct sim_scenario *sc)
{
	if (!sc->plant[0])
		return 0;
	uint32_t bit = plant_bit(sc->plant);
	if (!bit) {
		fprintf(stderr, "busrt-sim: %s: unknown plant %s\n", sc->path,
		        sc->plant);
		return 2;
	}
	plant_bits |= bit;
	plant_name = sc->plant;
	return 0;
}

/* A saved failure's planted bug, seed and armed sites, for this command.
 * replay takes them whatever the options say (a file without sites arms
 * none); report (as_run) lets --seed and --buggify win, and a plain
 * scenario's sites are drawn as run draws them. */
static int apply_saved(struct args *a, const struct sim_scenario *sc,
                       bool as_run)
{
	int rc = apply_plant(sc);
	if (rc)
		return rc;
	if (sc->has_seed && !(as_run && a->seed_set))
		a->seed = sc->seed;
	if (!a->buggify_set && (!as_run || sc->has_buggify)) {
		a->buggify_set = true;
		a->buggify = sc->buggify;
		a->buggify_drawn = false;
	}
	return 0;
}

/* busrt-sim replay FILE: a saved failure (or any scenario) with its own
 * seed, plan and planted bug. */
static int cmd_replay(struct args *a)
{
	struct sim_scenario sc;
	int rc = load_scenario(a, &sc);
	if (rc)
		return rc;
	rc = apply_saved(a, &sc, false);
	sim_scenario_free(&sc);
	return rc ? rc : cmd_run(a);
}

static void replay_command(char *out, size_t n, const struct args *a,
                           const struct sim_scenario *sc, uint64_t seed,
                           uint32_t buggify);

/* busrt-sim report FILE --html OUT: a saved failure (or any scenario,
 * with --seed and the rest as for run) run again and drawn as a timeline
 * (report.c). Exit as run's: 0 every check holds, 1 one failed (the page
 * shows it), 2 bad input or the page could not be written. */
static int cmd_report(struct args *a)
{
	if (!a->html)
		return bad("report needs --html OUT", NULL);
	struct sim_scenario sc;
	int rc = load_scenario(a, &sc);
	if (rc)
		return rc;
	if ((rc = apply_saved(a, &sc, true))) {
		sim_scenario_free(&sc);
		return rc;
	}
	char *text = NULL;
	size_t len = 0;
	FILE *t = open_memstream(&text, &len);
	if (!t) {
		sim_scenario_free(&sc);
		return 2;
	}
	struct sim_report r;
	const char *label = "";
	struct sim_plan plan = {0};
	rc = run_one(a, &sc, a->seed, t, &r, &label, NULL, NULL, &plan);
	fclose(t);
	char replay[800];
	if (sc.has_seed)
		snprintf(replay, sizeof(replay), "busrt-sim replay %s", sc.path);
	else
		replay_command(replay, sizeof(replay), a, &sc, a->seed, r.buggify);
	FILE *out = fopen(a->html, "w");
	int wrc = out ? sim_report_html(out, &sc, plan.n ? &plan : NULL, &r, text,
	                                len, replay)
	              : -1;
	if (out && fclose(out) != 0)
		wrc = -1;
	if (wrc) {
		fprintf(stderr, "busrt-sim: --html %s: %s\n", a->html,
		        strerror(errno));
		rc = 2;
	} else {
		printf("busrt-sim: %s, seed %llu: %s; the timeline is in %s\n",
		       sc.path, (unsigned long long)a->seed,
		       rc ? "a check FAILED" : "every check holds", a->html);
	}
	free(text);
	free(plan.v);
	sim_scenario_free(&sc);
	return rc;
}

/* What shrinking works on: the scenario (reduced as it goes), the plan,
 * the armed sites, and the check the original failure failed first. */
struct shrink {
	const struct sim_scenario *full; /* as loaded */
	struct sim_scenario cur;         /* the reduction so far (or *full) */
	bool reduced;
	uint64_t seed;
	struct sim_fault *faults;
	size_t n_faults;
	uint32_t sites;
	int want;
	size_t runs;
	/* the scenario's parts kept so far */
	bool *mon, *col, *proc;
	size_t n_procs;
};

static bool fails_with(struct shrink *k, const struct sim_scenario *sc,
                       const struct sim_fault *v, size_t n, uint32_t sites)
{
	struct sim_plan p = {(struct sim_fault *)v, n};
	struct sim_options o = {.seed = k->seed, .plan = &p, .buggify = sites,
	                        .plant = plant_bits};
	struct sim_report r;
	k->runs++;
	if (sim_run(sc, &o, &r))
		return k->want == -2;
	return first_failed_check(&r) == k->want;
}

/* Delta debugging (ddmin) over n flags, all set on entry: clears as many
 * as it can while test(keep) still holds. */
static void ddmin(size_t n, bool *keep, struct shrink *k,
                  bool (*test)(struct shrink *, const bool *))
{
	bool *tmp = malloc(n ? n : 1);
	size_t *on = malloc((n ? n : 1) * sizeof(*on));
	size_t parts = 2;
	for (;;) {
		size_t m = 0;
		for (size_t i = 0; i < n; i++)
			if (keep[i])
				on[m++] = i;
		if (m == 0)
			break;
		bool reduced = false;
		size_t chunk = (m + parts - 1) / parts;
		for (size_t start = 0; start < m && !reduced; start += chunk) {
			memcpy(tmp, keep, n);
			for (size_t i = start; i < start + chunk && i < m; i++)
				tmp[on[i]] = false;
			if (test(k, tmp)) {
				memcpy(keep, tmp, n);
				parts = parts > 2 ? parts - 1 : 2;
				reduced = true;
			}
		}
		if (!reduced) {
			if (parts >= m)
				break;
			parts = parts * 2 < m ? parts * 2 : m;
		}
	}
	free(tmp);
	free(on);
}

static bool test_faults(struct shrink *k, const bool *keep)
{
	struct sim_fault *v = malloc((k->n_faults ? k->n_faults : 1) * sizeof(*v));
	size_t n = 0;
	for (size_t i = 0; i < k->n_faults; i++)
		if (keep[i])
			v[n++] = k->faults[i];
	bool f = fails_with(k, &k->cur, v, n, k->sites);
	free(v);
	return f;
}

static uint32_t sites_of(const struct shrink *k, const bool *keep)
{
	uint32_t m = 0;
	for (int i = 0, j = 0; i < BUS_SITE_N; i++)
		if (k->sites & 1u << i && keep[j++])
			m |= 1u << i;
	return m;
}

static bool test_sites(struct shrink *k, const bool *keep)
{
	return fails_with(k, &k->cur, k->faults, k->n_faults, sites_of(k, keep));
}

/* The scenario with these parts; the reduction becomes k->cur if it
 * still fails. */
static bool test_parts(struct shrink *k, const bool *mon, const bool *col,
                       const bool *proc)
{
	size_t cols = 0;
	for (size_t i = 0; i < k->full->n_collectors; i++)
		cols += col[i];
	if (!cols)
		return false; /* a scenario needs a collector */
	struct sim_scenario r;
	if (sim_scenario_reduce(k->full, mon, col, proc, &r))
		return false;
	if (!fails_with(k, &r, k->faults, k->n_faults, k->sites)) {
		sim_scenario_free(&r);
		return false;
	}
	if (k->reduced)
		sim_scenario_free(&k->cur);
	k->cur = r;
	k->reduced = true;
	return true;
}

static bool test_mon(struct shrink *k, const bool *keep)
{
	if (!test_parts(k, keep, k->col, k->proc))
		return false;
	memcpy(k->mon, keep, k->full->n_monitors);
	return true;
}

static bool test_col(struct shrink *k, const bool *keep)
{
	if (!test_parts(k, k->mon, keep, k->proc))
		return false;
	memcpy(k->col, keep, k->full->n_collectors);
	return true;
}

static bool test_proc(struct shrink *k, const bool *keep)
{
	if (!test_parts(k, k->mon, k->col, keep))
		return false;
	memcpy(k->proc, keep, k->n_procs);
	return true;
}

static bool *all_set(size_t n)
{
	bool *v = malloc(n ? n : 1);
	if (!v)
		abort();
	memset(v, 1, n ? n : 1);
	return v;
}

/* busrt-sim shrink FILE: delta debugging of a saved failure, keeping the
 * same first failing check: the fault plan, then the armed fault sites,
 * then the scenario (monitors, collectors, processes). Writes the result
 * as a self-contained failure file. */
static int cmd_shrink(const struct args *a)
{
	struct sim_scenario sc;
	int rc = load_scenario(a, &sc);
	if (rc)
		return rc;
	if ((rc = apply_plant(&sc)) || !sc.has_plan) {
		if (!rc)
			fprintf(stderr, "busrt-sim: %s: no fault plan to shrink\n",
			        sc.path);
		sim_scenario_free(&sc);
		return 2;
	}
	struct shrink k = {.full = &sc, .cur = sc,
	                   .seed = sc.has_seed ? sc.seed : a->seed,
	                   .sites = sc.buggify, .want = -1};
	k.faults = sc.plan.v;
	k.n_faults = sc.plan.n;
	{
		struct sim_options o = {.seed = k.seed, .plan = &sc.plan,
		                        .plant = plant_bits,
		                        .buggify = k.sites};
		struct sim_report r;
		k.runs = 1;
		k.want = sim_run(&sc, &o, &r) ? -2 : first_failed_check(&r);
	}
	if (k.want == -1) {
		fprintf(stderr, "busrt-sim: %s: it does not fail: nothing to "
		                "shrink\n", sc.path);
		sim_scenario_free(&sc);
		return 1;
	}
	/* the plan */
	bool *keep = all_set(k.n_faults);
	ddmin(k.n_faults, keep, &k, test_faults);
	struct sim_fault *v = malloc((k.n_faults ? k.n_faults : 1) * sizeof(*v));
	size_t n = 0;
	for (size_t i = 0; i < k.n_faults; i++)
		if (keep[i])
			v[n++] = k.faults[i];
	free(keep);
	k.faults = v;
	k.n_faults = n;
	/* the sites */
	int ns = __builtin_popcount(k.sites);
	keep = all_set((size_t)ns);
	ddmin((size_t)ns, keep, &k, test_sites);
	k.sites = sites_of(&k, keep);
	free(keep);
	/* the scenario: monitors, collectors, then processes */
	struct sim_proc_key *keys;
	k.n_procs = sim_scenario_procs(&sc, &keys);
	free(keys);
	k.mon = all_set(sc.n_monitors);
	k.col = all_set(sc.n_collectors);
	k.proc = all_set(k.n_procs);
	bool *t = all_set(sc.n_monitors);
	ddmin(sc.n_monitors, t, &k, test_mon);
	free(t);
	t = all_set(sc.n_collectors);
	ddmin(sc.n_collectors, t, &k, test_col);
	free(t);
	t = all_set(k.n_procs);
	ddmin(k.n_procs, t, &k, test_proc);
	free(t);
	size_t kept_mon = 0, kept_col = 0, kept_proc = 0;
	for (size_t i = 0; i < sc.n_monitors; i++)
		kept_mon += k.mon[i];
	for (size_t i = 0; i < sc.n_collectors; i++)
		kept_col += k.col[i];
	for (size_t i = 0; i < k.n_procs; i++)
		kept_proc += k.proc[i];
	/* the result, run once more for its reason */
	struct sim_plan p = {k.faults, k.n_faults};
	struct sim_options o = {.seed = k.seed, .plan = &p, .buggify = k.sites,
	                        .plant = plant_bits};
	struct sim_report r;
	char why[400];
	sim_run(&k.cur, &o, &r);
	first_failure(&r, why, sizeof(why));
	const char *out = a->out ? a->out : "build/shrunk.yaml";
	rc = sim_save_reduced(&k.cur, &p, k.seed, sc.plant, k.sites, why, out);
	if (!rc)
		printf("busrt-sim: shrunk %zu faults to %zu, %d fault sites to %d, "
		       "%zu monitors to %zu, %zu collectors to %zu, %zu processes "
		       "to %zu, in %zu runs (still fails: %s); written to %s\n",
		       sc.plan.n, k.n_faults, ns, __builtin_popcount(k.sites),
		       sc.n_monitors, kept_mon, sc.n_collectors, kept_col,
		       k.n_procs, kept_proc, k.runs, why, out);
	if (k.reduced)
		sim_scenario_free(&k.cur);
	free(k.mon);
	free(k.col);
	free(k.proc);
	free(v);
	sim_scenario_free(&sc);
	return rc;
}

/* ---- the seed ledger -------------------------------------------------------
 * busrt-sim ledger add FILE... [--dir DIR]: each saved failure (a sweep's
 * --save-dir, a shard's, a campaign's) shrunk first, then kept once per
 * first failing check and shrunk plan — the file's name says both
 * (CHECK-HASH.yaml, the hash of the check, topology, planted bug, sites
 * and the plan as `plan` prints it; not the seed: two seeds that shrink
 * to one plan failing one check are one failure) — in DIR (scenarios/regress:
 * make test replays every file there and each must pass, so a failure
 * added is a bug to fix before main is green). 0 each added or already
 * there; 1 one of them does not fail (nothing to add); 2 bad input. */
static uint64_t fnv64(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
	return h;
}

static int ledger_one(const char *file, const char *dir)
{
	char tmp[600], name[700];
	snprintf(tmp, sizeof(tmp), "%s/.adding-%d.yaml", dir, (int)getpid());
	plant_bits = 0;
	plant_name = "";
	struct args a = {.scenario = file, .out = tmp, .seed = 1, .topology = -1,
	                 .shard_k = 1, .shard_n = 1};
	int rc = cmd_shrink(&a);
	if (rc) {
		unlink(tmp);
		if (rc == 1)
			fprintf(stderr, "busrt-sim: ledger: %s does not fail: not "
			        "added\n", file);
		return rc;
	}
	plant_bits = 0;
	plant_name = "";
	a.scenario = tmp;
	struct sim_scenario sc;
	if ((rc = load_scenario(&a, &sc)))
		return rc;
	if ((rc = apply_plant(&sc))) {
		sim_scenario_free(&sc);
		return rc;
	}
	struct sim_options o = {.seed = sc.seed, .plan = &sc.plan,
	                        .plant = plant_bits, .buggify = sc.buggify};
	struct sim_report r;
	int check = sim_run(&sc, &o, &r) ? -2 : first_failed_check(&r);
	char *key = NULL;
	size_t kl = 0;
	FILE *f = open_memstream(&key, &kl);
	if (!f)
		abort();
	fprintf(f, "%s %s %s ", check >= 0 ? sim_check_names[check] : "stuck",
	        sim_topology_names[sc.topology], sc.plant);
	sites_list(f, sc.buggify);
	fputc('\n', f);
	sim_plan_print(f, &sc.plan);
	fclose(f);
	snprintf(name, sizeof(name), "%s/%s-%016llx.yaml", dir,
	         check >= 0 ? sim_check_names[check] : "stuck",
	         (unsigned long long)fnv64(key, kl));
	free(key);
	sim_scenario_free(&sc);
	struct stat st;
	if (check == -1) {
		unlink(tmp);
		fprintf(stderr, "busrt-sim: ledger: %s no longer fails once "
		        "shrunk: not added\n", file);
		return 1;
	}
	if (stat(name, &st) == 0) {
		unlink(tmp);
		printf("busrt-sim: ledger: %s: already there as %s (the same "
		       "check and shrunk plan)\n", file, name);
		return 0;
	}
	if (rename(tmp, name) != 0) {
		fprintf(stderr, "busrt-sim: ledger: %s: %s\n", name, strerror(errno));
		unlink(tmp);
		return 2;
	}
	printf("busrt-sim: ledger: %s: added as %s\n", file, name);
	return 0;
}

static int cmd_ledger(int argc, char **argv)
{
	static const struct option o[] = {{"dir", required_argument, NULL, 'd'},
	                                  {NULL, 0, NULL, 0}};
	const char *dir = "scenarios/regress";
	if (argc < 3 || strcmp(argv[2], "add"))
		return bad("ledger add FILE... [--dir DIR]", argc > 2 ? argv[2]
		                                                      : NULL);
	optind = 3;
	int opt;
	while ((opt = getopt_long(argc, argv, "", o, NULL)) != -1) {
		if (opt != 'd')
			return bad("ledger add FILE... [--dir DIR]", NULL);
		dir = optarg;
	}
	if (optind == argc)
		return bad("ledger add needs saved failures (sweep --save-dir)",
		           NULL);
	if (mkdir_p(dir) != 0) {
		fprintf(stderr, "busrt-sim: ledger: --dir %s: %s\n", dir,
		        strerror(errno));
		return 2;
	}
	int worst = 0;
	for (int i = optind; i < argc; i++) {
		int rc = ledger_one(argv[i], dir);
		worst = rc > worst ? rc : worst;
	}
	return worst;
}

static int cmd_plan(const struct args *a)
{
	struct sim_scenario sc;
	int rc = load_scenario(a, &sc);
	if (rc)
		return rc;
	struct sim_plan p;
	sim_plan_draw(&sc, a->seed, &p);
	sim_plan_print(stdout, &p);
	sim_plan_free(&p);
	sim_scenario_free(&sc);
	return 0;
}

/* One line per seed from a worker: seed, exit code, hash, fault counts. */
struct line {
	uint64_t seed, hash;
	int rc;
	uint64_t faults[SIM_F_KINDS];
	uint64_t reached[BUS_SITE_N], fired[BUS_SITE_N];
	uint32_t buggify;
	bool compared;
	uint64_t flight;        /* frames that died in flight, accounted */
	uint64_t delivered;
	uint64_t plant_fired;
	double secs;            /* CPU seconds of the run */
	bool saved, save_failed;
	char saved_path[600];
	char why[300];
};

/* A sweep's totals over its lines. */
struct totals {
	uint64_t n, failed, save_failed, delivered, compared, flight;
	uint64_t acted, caught, alarms; /* --plant */
	uint64_t faults[SIM_F_KINDS];
	uint64_t reached[BUS_SITE_N], fired[BUS_SITE_N], armed[BUS_SITE_N];
	int jobs;
	double wall;
};

static void totals_add(struct totals *t, const struct line *l)
{
	t->failed += l->rc != 0;
	t->save_failed += l->save_failed;
	t->acted += l->plant_fired > 0;
	t->caught += l->plant_fired > 0 && l->rc == 1;
	t->alarms += l->plant_fired == 0 && l->rc == 1;
	t->compared += l->compared;
	t->flight += l->flight;
	t->delivered += l->delivered;
	for (int k = 0; k < SIM_F_KINDS; k++)
		t->faults[k] += l->faults[k];
	for (int k = 0; k < BUS_SITE_N; k++) {
		t->reached[k] += l->reached[k];
		t->fired[k] += l->fired[k];
		t->armed[k] += (l->buggify >> k) & 1;
	}
}

/* mkdir -p: 0, or -1 with errno (a part that is not a directory too). */
static int mkdir_p(const char *dir)
{
	char p[512];
	snprintf(p, sizeof(p), "%s", dir);
	for (char *q = p + 1;; q++) {
		bool end = !*q;
		if (*q == '/' || end) {
			*q = 0;
			struct stat st;
			if (mkdir(p, 0777) != 0 && errno != EEXIST)
				return -1;
			if (stat(p, &st) != 0)
				return -1;
			if (!S_ISDIR(st.st_mode)) {
				errno = ENOTDIR;
				return -1;
			}
			if (end)
				return 0;
			*q = '/';
		}
	}
}

/* The command that replays seed's run of this sweep. */
static void replay_command(char *out, size_t n, const struct args *a,
                           const struct sim_scenario *sc, uint64_t seed,
                           uint32_t buggify)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		snprintf(out, n, "busrt-sim run %s --seed %llu", sc->path,
		         (unsigned long long)seed);
		return;
	}
	fprintf(f, "busrt-sim run %s --seed %llu%s%s%s%s --topology %s "
	        "--buggify ", sc->path, (unsigned long long)seed,
	        a->faults ? " --faults " : "", a->faults ? a->faults : "",
	        plant_name[0] ? " --plant " : "", plant_name,
	        sim_topology_names[sc->topology]);
	sites_list(f, buggify);
	fclose(f);
	snprintf(out, n, "%s", buf);
	free(buf);
}

static void xml_text(FILE *f, const char *s)
{
	sim_markup_text(f, s, strlen(s));
}

/* sweep --junit FILE: one test case per seed, a failure carrying its
 * reason and replay command (for CI systems to show). 0, or 2 (said). */
static int write_junit(const char *path, const struct args *a,
                       const struct sim_scenario *sc, const struct line *all,
                       const struct totals *t)
{
	uint64_t n = t->n, failed = t->failed;
	double wall = t->wall;
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "busrt-sim: --junit %s: %s\n", path, strerror(errno));
		return 2;
	}
	char suite[300];
	snprintf(suite, sizeof(suite), "busrt-sim.%s.%s", sc->name,
	         sim_topology_names[sc->topology]);
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
	        "  <testsuite name=\"");
	xml_text(f, suite);
	fprintf(f, "\" tests=\"%llu\" failures=\"%llu\" errors=\"0\" "
	        "time=\"%.3f\">\n", (unsigned long long)n,
	        (unsigned long long)failed, wall);
	for (uint64_t i = 0; i < n; i++) {
		const struct line *l = &all[i];
		fprintf(f, "    <testcase classname=\"");
		xml_text(f, suite);
		fprintf(f, "\" name=\"seed %llu\" time=\"%.3f\"",
		        (unsigned long long)l->seed, l->secs);
		if (!l->rc) {
			fprintf(f, "/>\n");
			continue;
		}
		char replay[800];
		replay_command(replay, sizeof(replay), a, sc, l->seed, l->buggify);
		const char *why = l->why[0] ? l->why : "no result";
		fprintf(f, ">\n      <failure message=\"");
		xml_text(f, why);
		fprintf(f, "\" type=\"%s\">", l->rc == 1 ? "check" : "error");
		xml_text(f, why);
		fprintf(f, "\nreplay: ");
		xml_text(f, replay);
		if (l->saved) {
			fprintf(f, "\nsaved: ");
			xml_text(f, l->saved_path);
		}
		fprintf(f, "</failure>\n    </testcase>\n");
	}
	fprintf(f, "  </testsuite>\n</testsuites>\n");
	if (fclose(f) != 0) {
		fprintf(stderr, "busrt-sim: --junit %s: %s\n", path, strerror(errno));
		return 2;
	}
	return 0;
}

/* The sweep's summary as text: totals, faults and sites, each failure
 * with its replay command. */
static void sweep_text(const struct args *a, const struct sim_scenario *sc,
                       const struct line *all, const struct totals *t)
{
	uint64_t n = t->n, failed = t->failed;
	const uint64_t *faults = t->faults, *armed = t->armed,
	               *fired = t->fired, *reached = t->reached;
	char shard[64] = "";
	if (a->shard_n > 1)
		snprintf(shard, sizeof(shard), ", shard %llu of %llu",
		         (unsigned long long)a->shard_k,
		         (unsigned long long)a->shard_n);
	printf("busrt-sim: sweep of %s (%s), seeds %llu..%llu%s (%llu runs, %d "
	       "jobs): %llu passed, %llu failed, %.1f s wall, %llu deliveries\n",
	       sc->name, sim_topology_names[sc->topology],
	       (unsigned long long)a->from, (unsigned long long)a->to, shard,
	       (unsigned long long)n, t->jobs, (unsigned long long)(n - failed),
	       (unsigned long long)failed, t->wall,
	       (unsigned long long)t->delivered);
	if (plant_bits) /* a planted bug's rate: what a checker caught */
		printf("  planted %s: acted in %llu of %llu runs, caught in %llu "
		       "of those (%.1f%%); %llu runs failed where it never "
		       "acted\n", plant_name, (unsigned long long)t->acted,
		       (unsigned long long)n, (unsigned long long)t->caught,
		       t->acted ? 100.0 * (double)t->caught / (double)t->acted
		                : 0.0,
		       (unsigned long long)t->alarms);
	printf("  faults injected:");
	for (int k = 0; k < SIM_F_KINDS; k++)
		printf(" %s %llu", sim_fault_names[k], (unsigned long long)faults[k]);
	printf("\n");
	for (int k = 0; k < SIM_F_KINDS; k++)
		if (!faults[k] && (!a->faults || strcmp(a->faults, "none")))
			printf("  never injected: %s\n", sim_fault_names[k]);
	printf("  accounting compared in %llu of %llu runs, every frame to the "
	       "byte: %llu died in flight at closes and resets, each accounted"
	       "\n", (unsigned long long)t->compared, (unsigned long long)n,
	       (unsigned long long)t->flight);
	printf("  fault sites (armed in runs / fired / reached):");
	for (int k = 0; k < BUS_SITE_N; k++)
		printf(" %s %llu/%llu/%llu", sim_site_names[k],
		       (unsigned long long)armed[k], (unsigned long long)fired[k],
		       (unsigned long long)reached[k]);
	printf("\n");
	for (int k = 0; k < BUS_SITE_N; k++)
		if (!reached[k])
			printf("  never reached: %s\n", sim_site_names[k]);
		else if (!fired[k] && armed[k])
			printf("  armed but never fired: %s\n", sim_site_names[k]);
	for (uint64_t i = 0; i < n; i++) {
		if (!all[i].rc)
			continue;
		char replay[800];
		replay_command(replay, sizeof(replay), a, sc, all[i].seed,
		               all[i].buggify);
		printf("  FAILED seed %llu: %s\n    replay: %s\n",
		       (unsigned long long)all[i].seed,
		       all[i].why[0] ? all[i].why : "no result", replay);
	}
}

/* sweep --json: the same as one JSON object (jansson), per-seed results
 * and failures with their replay commands. */
static void sweep_json(const struct args *a, const struct sim_scenario *sc,
                       const struct line *all, const struct totals *t)
{
	uint64_t n = t->n, failed = t->failed;
	json_t *o = json_object();
	json_object_set_new(o, "scenario", json_string(sc->name));
	json_object_set_new(o, "path", json_string(sc->path));
	json_object_set_new(o, "topology",
	                    json_string(sim_topology_names[sc->topology]));
	json_object_set_new(o, "seeds", json_pack("{s:I,s:I}", "from",
	                                          (json_int_t)a->from, "to",
	                                          (json_int_t)a->to));
	json_object_set_new(o, "shard", json_pack("{s:I,s:I}", "k",
	                                          (json_int_t)a->shard_k, "n",
	                                          (json_int_t)a->shard_n));
	json_object_set_new(o, "faults_plan",
	                    a->faults ? json_string(a->faults) : json_null());
	json_object_set_new(o, "plant", plant_name[0] ? json_string(plant_name)
	                                              : json_null());
	json_object_set_new(o, "jobs", json_integer(t->jobs));
	json_object_set_new(o, "runs", json_integer((json_int_t)n));
	json_object_set_new(o, "passed", json_integer((json_int_t)(n - failed)));
	json_object_set_new(o, "failed", json_integer((json_int_t)failed));
	json_object_set_new(o, "wall_s", json_real(t->wall));
	json_object_set_new(o, "deliveries",
	                    json_integer((json_int_t)t->delivered));
	json_object_set_new(o, "accounting_compared",
	                    json_integer((json_int_t)t->compared));
	json_object_set_new(o, "frames_died_in_flight",
	                    json_integer((json_int_t)t->flight));
	json_t *fk = json_object();
	for (int k = 0; k < SIM_F_KINDS; k++)
		json_object_set_new(fk, sim_fault_names[k],
		                    json_integer((json_int_t)t->faults[k]));
	json_object_set_new(o, "faults", fk);
	json_t *st = json_object();
	for (int k = 0; k < BUS_SITE_N; k++)
		json_object_set_new(st, sim_site_names[k],
		                    json_pack("{s:I,s:I,s:I}", "armed",
		                              (json_int_t)t->armed[k], "fired",
		                              (json_int_t)t->fired[k], "reached",
		                              (json_int_t)t->reached[k]));
	json_object_set_new(o, "sites", st);
	if (plant_bits)
		json_object_set_new(
		    o, "planted",
		    json_pack("{s:s,s:I,s:I,s:I}", "bug", plant_name, "acted",
		              (json_int_t)t->acted, "caught", (json_int_t)t->caught,
		              "failed_without_acting", (json_int_t)t->alarms));
	json_t *fails = json_array(), *res = json_array();
	for (uint64_t i = 0; i < n; i++) {
		const struct line *l = &all[i];
		char hash[17];
		snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)l->hash);
		/* all of the seed's line: what merge needs to redo the totals */
		json_t *lf = json_array(), *rk = json_array(), *fi = json_array();
		for (int k = 0; k < SIM_F_KINDS; k++)
			json_array_append_new(lf, json_integer((json_int_t)l->faults[k]));
		for (int k = 0; k < BUS_SITE_N; k++) {
			json_array_append_new(rk, json_integer((json_int_t)l->reached[k]));
			json_array_append_new(fi, json_integer((json_int_t)l->fired[k]));
		}
		json_array_append_new(
		    res, json_pack("{s:I,s:b,s:i,s:s,s:I,s:f,s:o,s:o,s:o,s:I,s:b,"
		                   "s:I,s:I}",
		                   "seed", (json_int_t)l->seed, "ok", l->rc == 0,
		                   "rc", l->rc, "trace_hash", hash, "deliveries",
		                   (json_int_t)l->delivered, "cpu_s", l->secs,
		                   "faults", lf, "reached", rk, "fired", fi,
		                   "buggify", (json_int_t)l->buggify, "compared",
		                   l->compared, "flight", (json_int_t)l->flight,
		                   "plant_fired", (json_int_t)l->plant_fired));
		if (!l->rc)
			continue;
		char replay[800];
		replay_command(replay, sizeof(replay), a, sc, l->seed, l->buggify);
		json_array_append_new(
		    fails, json_pack("{s:I,s:s,s:s,s:o}", "seed", (json_int_t)l->seed,
		                     "why", l->why[0] ? l->why : "no result",
		                     "replay", replay, "saved",
		                     l->saved ? json_string(l->saved_path)
		                              : json_null()));
	}
	json_object_set_new(o, "failures", fails);
	json_object_set_new(o, "results", res);
	json_dumpf(o, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(o);
}

static int cmd_sweep(const struct args *a)
{
	struct sim_scenario sc;
	int rc = load_scenario(a, &sc);
	if (rc)
		return rc;
	/* the shard's seeds: from + (K-1) + i*N (interleaved: slow and fast
	 * seeds spread over the shards), disjoint, all of them together */
	uint64_t first = a->from + a->shard_k - 1, step = a->shard_n;
	uint64_t n = first <= a->to ? (a->to - first) / step + 1 : 0;
	int jobs = a->jobs > 0 ? a->jobs : 1;
	if (a->save_dir && mkdir_p(a->save_dir) != 0) {
		fprintf(stderr, "busrt-sim: --save-dir %s: %s\n", a->save_dir,
		        strerror(errno));
		sim_scenario_free(&sc);
		return 2;
	}
	int fds[64];
	pid_t pids[64];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int j = 0; j < jobs; j++) {
		int fd[2];
		if (pipe(fd))
			return 2;
		pids[j] = fork();
		if (pids[j] == 0) {
			close(fd[0]);
			for (uint64_t i = (uint64_t)j; i < n; i += (uint64_t)jobs) {
				uint64_t s = first + i * step;
				struct sim_report r;
				const char *label;
				struct line ln = {.seed = s};
				struct saved sv = {0};
				double c0 = cpu_seconds();
				ln.rc = run_one(a, &sc, s, NULL, &r, &label, NULL, &sv,
				                NULL);
				ln.secs = cpu_seconds() - c0;
				ln.saved = sv.tried && sv.ok;
				ln.save_failed = sv.tried && !sv.ok;
				snprintf(ln.saved_path, sizeof(ln.saved_path), "%s",
				         sv.path);
				if (ln.rc == 0 && leaked()) { /* the ASan build's LSan */
					ln.rc = 1;
					snprintf(ln.why, sizeof(ln.why), "leak: "
					         "LeakSanitizer's report is on stderr");
				}
				ln.hash = r.trace_hash;
				ln.delivered = r.delivered;
				memcpy(ln.faults, r.faults, sizeof(ln.faults));
				memcpy(ln.reached, r.reached, sizeof(ln.reached));
				memcpy(ln.fired, r.fired, sizeof(ln.fired));
				ln.buggify = r.buggify;
				ln.compared = r.accounting_compared;
				ln.flight = r.flight_c2b + r.flight_b2c;
				ln.plant_fired = r.plant_fired;
				for (int c = 0; c < SIM_C_N && ln.rc == 1 && !ln.why[0];
				     c++)
					if (!r.ok[c]) {
						snprintf(ln.why, sizeof(ln.why), "%s: %s",
						         sim_check_names[c], r.why[c]);
						break;
					}
				if (write(fd[1], &ln, sizeof(ln)) != sizeof(ln))
					_exit(3);
			}
			_exit(0);
		}
		close(fd[1]);
		fds[j] = fd[0];
	}
	struct line *all = calloc(n ? n : 1, sizeof(*all));
	uint64_t got = 0;
	for (int j = 0; j < jobs; j++) {
		struct line ln;
		while (read(fds[j], &ln, sizeof(ln)) == sizeof(ln)) {
			all[(ln.seed - first) / step] = ln;
			got++;
			if (got % 50 == 0 || got == n)
				fprintf(stderr, "busrt-sim: sweep: %llu/%llu seeds\n",
				        (unsigned long long)got, (unsigned long long)n);
		}
		close(fds[j]);
		waitpid(pids[j], NULL, 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	struct totals tot = {.n = n, .jobs = jobs};
	for (uint64_t i = 0; i < n; i++)
		totals_add(&tot, &all[i]);
	tot.wall = (double)(t1.tv_sec - t0.tv_sec) +
	           (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (a->json)
		sweep_json(a, &sc, all, &tot);
	else
		sweep_text(a, &sc, all, &tot);
	int jrc = a->junit ? write_junit(a->junit, a, &sc, all, &tot) : 0;
	if (got != n) /* a worker died: its seeds have no result */
		fprintf(stderr, "busrt-sim: sweep: %llu of %llu seeds have no "
		        "result\n", (unsigned long long)(n - got),
		        (unsigned long long)n);
	free(all);
	sim_scenario_free(&sc);
	return tot.save_failed || jrc ? 2 : tot.failed ? 1 : 0;
}

/* ---- merge: shards of one sweep back into its report ---------------------
 * busrt-sim merge RESULT... [--json] [--junit FILE]: the sweep --json
 * results of --shard 1/N .. N/N (any order) read back into the seed
 * lines the sweep had, so its summary, JSON and JUnit come out of the
 * same printers as an unsharded sweep's (the wall time is the longest
 * shard's, the jobs all shards'). Every seed of A..B exactly once, every
 * shard of one sweep (scenario, topology, plan, planted bug, range, N):
 * else it says what is wrong and exits 2; 1 if a seed failed. */
static bool j_u64(json_t *o, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

static const char *j_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool j_counts(json_t *o, const char *key, uint64_t *out, int n)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_array(v) || json_array_size(v) != (size_t)n)
		return false;
	for (int k = 0; k < n; k++) {
		json_t *x = json_array_get(v, (size_t)k);
		if (!json_is_integer(x) || json_integer_value(x) < 0)
			return false;
		out[k] = (uint64_t)json_integer_value(x);
	}
	return true;
}

/* One result of a shard into its line; false: not a sweep's result. */
static bool merge_line(json_t *r, struct line *l)
{
	uint64_t rc, buggify;
	const char *hash = j_str(r, "trace_hash");
	json_t *cpu = json_object_get(r, "cpu_s");
	json_t *cmp = json_object_get(r, "compared");
	if (!j_u64(r, "seed", &l->seed) || !j_u64(r, "rc", &rc) || rc > 3 ||
	    !hash || strlen(hash) != 16 || !json_is_number(cpu) ||
	    !json_is_boolean(cmp) || !j_u64(r, "deliveries", &l->delivered) ||
	    !j_u64(r, "buggify", &buggify) || buggify > UINT32_MAX ||
	    !j_u64(r, "flight", &l->flight) ||
	    !j_u64(r, "plant_fired", &l->plant_fired) ||
	    !j_counts(r, "faults", l->faults, SIM_F_KINDS) ||
	    !j_counts(r, "reached", l->reached, BUS_SITE_N) ||
	    !j_counts(r, "fired", l->fired, BUS_SITE_N))
		return false;
	char *end;
	l->hash = strtoull(hash, &end, 16);
	if (*end)
		return false;
	l->rc = (int)rc;
	l->secs = json_number_value(cpu);
	l->compared = json_is_true(cmp);
	l->buggify = (uint32_t)buggify;
	return true;
}

static int merge_bad(const char *file, const char *what)
{
	fprintf(stderr, "busrt-sim: merge: %s: %s\n", file, what);
	return 2;
}

static int cmd_merge(int argc, char **argv)
{
	static const struct option o[] = {{"json", no_argument, NULL, 'J'},
	                                  {"junit", required_argument, NULL, 'U'},
	                                  {NULL, 0, NULL, 0}};
	struct args a = {.shard_k = 1, .shard_n = 1, .topology = -1};
	optind = 2;
	int opt;
	while ((opt = getopt_long(argc, argv, "", o, NULL)) != -1) {
		if (opt == 'J')
			a.json = true;
		else if (opt == 'U')
			a.junit = optarg;
		else
			return bad("merge RESULT... [--json] [--junit FILE]", NULL);
	}
	if (optind == argc)
		return bad("merge needs the shards' results (sweep --shard K/N "
		           "--json)", NULL);
	struct sim_scenario sc;
	memset(&sc, 0, sizeof(sc));
	json_t *docs[1024];
	int nd = 0, rc = 0;
	struct line *all = NULL;
	uint8_t *seen = NULL;
	struct totals tot = {0};
	char plant[64] = "", plan[512] = "";
	uint64_t shards = 0;
	for (int i = optind; i < argc && !rc; i++) {
		const char *f = argv[i];
		json_error_t err;
		json_t *d = json_load_file(f, 0, &err);
		if (!d) {
			char m[300];
			snprintf(m, sizeof(m), "not JSON (line %d: %s)", err.line,
			         err.text);
			rc = merge_bad(f, m);
			break;
		}
		if (nd == (int)(sizeof(docs) / sizeof(docs[0]))) {
			json_decref(d);
			rc = merge_bad(f, "more than 1024 results");
			break;
		}
		docs[nd++] = d;
		json_t *seeds = json_object_get(d, "seeds"),
		       *shard = json_object_get(d, "shard"),
		       *res = json_object_get(d, "results"),
		       *fails = json_object_get(d, "failures");
		const char *name = j_str(d, "scenario"), *path = j_str(d, "path"),
		           *topo = j_str(d, "topology");
		json_t *jplan = json_object_get(d, "faults_plan"),
		       *jplant = json_object_get(d, "plant");
		uint64_t from, to, k, n, jobs;
		json_t *wall = json_object_get(d, "wall_s");
		if (!name || !path || !topo || !j_u64(seeds, "from", &from) ||
		    !j_u64(seeds, "to", &to) || !j_u64(shard, "k", &k) ||
		    !j_u64(shard, "n", &n) || !j_u64(d, "jobs", &jobs) ||
		    !json_is_number(wall) || !json_is_array(res) ||
		    !json_is_array(fails) || to < from || !n || !k || k > n ||
		    (!json_is_null(jplan) && !json_is_string(jplan)) ||
		    (!json_is_null(jplant) && !json_is_string(jplant))) {
			rc = merge_bad(f, "not the result of busrt-sim sweep --json");
			break;
		}
		const char *pl = json_is_string(jplan) ? json_string_value(jplan) : "";
		const char *pb = json_is_string(jplant) ? json_string_value(jplant)
		                                        : "";
		int t = !strcmp(topo, "embedded")     ? SIM_EMBEDDED
		        : !strcmp(topo, "standalone") ? SIM_STANDALONE
		                                      : -1;
		if (nd == 1) {
			if (t < 0 || strlen(name) >= sizeof(sc.name) ||
			    strlen(path) >= sizeof(sc.path) ||
			    strlen(pl) >= sizeof(plan) ||
			    strlen(pb) >= sizeof(plant) || (pb[0] && !plant_bit(pb)) ||
			    to - from > 10000000) {
				rc = merge_bad(f, "not the result of busrt-sim sweep --json");
				break;
			}
			snprintf(sc.name, sizeof(sc.name), "%s", name);
			snprintf(sc.path, sizeof(sc.path), "%s", path);
			sc.topology = (enum sim_topology)t;
			snprintf(plan, sizeof(plan), "%s", pl);
			snprintf(plant, sizeof(plant), "%s", pb);
			a.from = from;
			a.to = to;
			shards = n;
			tot.n = to - from + 1;
			all = calloc(tot.n, sizeof(*all));
			seen = calloc(tot.n, 1);
			if (!all || !seen)
				abort();
		} else if (strcmp(name, sc.name) || strcmp(path, sc.path) ||
		           t != (int)sc.topology || strcmp(pl, plan) ||
		           strcmp(pb, plant) || from != a.from || to != a.to ||
		           n != shards) {
			char m[400];
			snprintf(m, sizeof(m), "another sweep's result (this one: %s, "
			         "%s, seeds %llu..%llu in %llu shards; the first: %s, "
			         "%s, seeds %llu..%llu in %llu)", name, topo,
			         (unsigned long long)from, (unsigned long long)to,
			         (unsigned long long)n, sc.name,
			         sim_topology_names[sc.topology],
			         (unsigned long long)a.from, (unsigned long long)a.to,
			         (unsigned long long)shards);
			rc = merge_bad(f, m);
			break;
		}
		tot.jobs += (int)jobs;
		if (json_number_value(wall) > tot.wall)
			tot.wall = json_number_value(wall);
		size_t ri;
		json_t *r;
		json_array_foreach(res, ri, r) {
			struct line l = {0};
			if (!merge_line(r, &l)) {
				rc = merge_bad(f, "a result that is not a sweep's seed");
				break;
			}
			if (l.seed < from || l.seed > to) {
				rc = merge_bad(f, "a seed outside the sweep's range");
				break;
			}
			if (seen[l.seed - from]++) {
				char m[120];
				snprintf(m, sizeof(m), "seed %llu is in two results (a "
				         "shard given twice?)", (unsigned long long)l.seed);
				rc = merge_bad(f, m);
				break;
			}
			all[l.seed - from] = l;
		}
		json_t *x;
		json_array_foreach(fails, ri, x) {
			uint64_t sd;
			const char *why = j_str(x, "why"), *saved = j_str(x, "saved");
			if (!j_u64(x, "seed", &sd) || sd < from || sd > to || !why) {
				rc = merge_bad(f, "a failure that is not a sweep's");
				break;
			}
			struct line *l = &all[sd - from];
			snprintf(l->why, sizeof(l->why), "%s", why);
			if (saved) {
				l->saved = true;
				snprintf(l->saved_path, sizeof(l->saved_path), "%s", saved);
			}
		}
	}
	uint64_t missing = 0, first_missing = 0;
	for (uint64_t i = 0; !rc && i < tot.n; i++)
		if (!seen[i] && !missing++)
			first_missing = a.from + i;
	if (!rc && missing) {
		fprintf(stderr, "busrt-sim: merge: %llu of the %llu seeds have no "
		        "result (the first: seed %llu; a shard missing?)\n",
		        (unsigned long long)missing, (unsigned long long)tot.n,
		        (unsigned long long)first_missing);
		rc = 2;
	}
	if (!rc) {
		a.faults = plan[0] ? plan : NULL;
		plant_name = plant;
		plant_bits = plant[0] ? plant_bit(plant) : 0;
		for (uint64_t i = 0; i < tot.n; i++)
			totals_add(&tot, &all[i]);
		if (a.json)
			sweep_json(&a, &sc, all, &tot);
		else
			sweep_text(&a, &sc, all, &tot);
		int jrc = a.junit ? write_junit(a.junit, &a, &sc, all, &tot) : 0;
		rc = jrc ? 2 : tot.failed ? 1 : 0;
	}
	for (int i = 0; i < nd; i++)
		json_decref(docs[i]);
	free(all);
	free(seen);
	return rc;
}

static int cmd_record(int argc, char **argv)
{
	static const struct option o[] = {
		{"poll-ms", required_argument, NULL, 'p'},
		{"seconds", required_argument, NULL, 's'},
		{"command", required_argument, NULL, 'c'},
		{"subtree", no_argument, NULL, 'T'},
		{"netlink", no_argument, NULL, 'L'},
		{"name", required_argument, NULL, 'n'},
		{"out", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0}};
	uint64_t poll = 20, secs = 10;
	const char *cmd = NULL, *name = "recording", *outp = NULL;
	bool sub = false, netlink = false;
	int opt;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "", o, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (!parse_u64(optarg, &poll) || poll < 1 || poll > 60000)
				return bad("--poll-ms: 1..60000", optarg);
			break;
		case 's':
			if (!parse_u64(optarg, &secs) || secs < 1 || secs > 3600)
				return bad("--seconds: 1..3600", optarg);
			break;
		case 'c': cmd = optarg; break;
		case 'T': sub = true; break;
		case 'L': netlink = true; break;
		case 'n': name = optarg; break;
		case 'o': outp = optarg; break;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc)
		return bad("record takes no SCENARIO", argv[optind]);
	if (sub && !cmd)
		return bad("--subtree needs --command", NULL);
	FILE *out = outp ? fopen(outp, "w") : stdout;
	if (!out) {
		fprintf(stderr, "busrt-sim: %s: %s\n", outp, strerror(errno));
		return 2;
	}
	int rc = sim_record(name, poll, (double)secs, cmd, sub, netlink, out);
	if (outp)
		fclose(out);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"seed", required_argument, NULL, 's'},
		{"seeds", required_argument, NULL, 'S'},
		{"faults", required_argument, NULL, 'f'},
		{"trace", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'J'},
		{"check-determinism", no_argument, NULL, 'D'},
		{"plant", required_argument, NULL, 'p'},
		{"save", required_argument, NULL, 'w'},
		{"out", required_argument, NULL, 'o'},
		{"save-dir", required_argument, NULL, 'W'},
		{"tape", required_argument, NULL, 'T'},
		{"buggify", required_argument, NULL, 'B'},
		{"check-every", required_argument, NULL, 'C'},
		{"topology", required_argument, NULL, 'O'},
		{"junit", required_argument, NULL, 'U'},
		{"html", required_argument, NULL, 'H'},
		{"shard", required_argument, NULL, 'K'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct args a = {.seed = 1, .jobs = 1, .topology = -1, .shard_k = 1,
	                 .shard_n = 1};
	if (argc < 2)
		return bad("missing command", NULL);
	a.cmd = argv[1];
	if (!strcmp(a.cmd, "record"))
		return cmd_record(argc, argv);
	if (!strcmp(a.cmd, "-h") || !strcmp(a.cmd, "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(a.cmd, "--version") || !strcmp(a.cmd, "version")) {
		bus_version_print(stdout, "busrt-sim");
		return 0;
	}
	if (!strcmp(a.cmd, "merge"))
		return cmd_merge(argc, argv);
	if (!strcmp(a.cmd, "ledger"))
		return cmd_ledger(argc, argv);
	static const char *const cmds[] = {"run", "sweep", "plan", "replay",
	                                   "shrink", "report"};
	bool known = false;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		known |= !strcmp(a.cmd, cmds[i]);
	if (!known)
		return bad("unknown command (run, sweep, merge, ledger, plan, "
		           "replay, shrink, report, record)", a.cmd);
	optind = 2;
	int opt;
	bool have_seeds = false;
	while ((opt = getopt_long(argc, argv, "j:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (!parse_u64(optarg, &a.seed))
				return bad("--seed: not a number", optarg);
			a.seed_set = true;
			break;
		case 'S':
			if (!parse_pair(optarg, "..", &a.from, &a.to) ||
			    a.to < a.from || a.to - a.from > 10000000)
				return bad("--seeds: expected A..B with A <= B", optarg);
			have_seeds = true;
			break;
		case 'j': {
			uint64_t j;
			if (!parse_u64(optarg, &j) || j < 1 || j > 64)
				return bad("-j: 1..64", optarg);
			a.jobs = (int)j;
			break;
		}
		case 'f':
			a.faults = optarg;
			break;
		case 't':
			a.trace = optarg;
			break;
		case 'J':
			a.json = true;
			break;
		case 'D':
			a.determinism = true;
			break;
		case 'w':
			a.save = optarg;
			break;
		case 'o':
			a.out = optarg;
			break;
		case 'W':
			a.save_dir = optarg;
			break;
		case 'U':
			a.junit = optarg;
			break;
		case 'K':
			if (!parse_pair(optarg, "/", &a.shard_k, &a.shard_n) ||
			    a.shard_n < 1 || a.shard_n > 1000000 || a.shard_k < 1 ||
			    a.shard_k > a.shard_n)
				return bad("--shard: expected K/N (1 <= K <= N)", optarg);
			break;
		case 'H':
			a.html = optarg;
			break;
		case 'T':
			if (read_tape(optarg, &a.tape, &a.tape_len))
				return 2;
			break;
		case 'C': {
			uint64_t n;
			if (!parse_u64(optarg, &n) || n < 1 || n > 1000000000)
				return bad("--check-every: 1..1000000000", optarg);
			a.check_every = (uint32_t)n;
			break;
		}
		case 'O':
			if (!strcmp(optarg, "embedded"))
				a.topology = SIM_EMBEDDED;
			else if (!strcmp(optarg, "standalone"))
				a.topology = SIM_STANDALONE;
			else
				return bad("--topology: embedded or standalone",
				           optarg);
			break;
		case 'B':
			if (!parse_buggify(optarg, &a)) {
				fprintf(stderr, "busrt-sim: --buggify: %s: expected none, "
				        "all, seed or sites of: ", optarg);
				sites_list(stderr, (1u << BUS_SITE_N) - 1);
				fputc('\n', stderr);
				return 2;
			}
			break;
		case 'p': {
			uint32_t bit = plant_bit(optarg);
			if (!bit) {
				fprintf(stderr, "busrt-sim: --plant: %s: not one of: ",
				        optarg);
				plants_list(stderr, ", ");
				fputc('\n', stderr);
				return 2;
			}
			plant_bits |= bit;
			plant_name = optarg;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1)
		return bad(optind == argc ? "missing SCENARIO (or FILE)"
		                          : "expected one SCENARIO, got more",
		           optind == argc ? a.cmd : argv[optind + 1]);
	if (a.html && strcmp(a.cmd, "report"))
		return bad("--html goes with report", NULL);
	if (a.junit && strcmp(a.cmd, "sweep"))
		return bad("--junit goes with sweep", NULL);
	if (a.shard_n > 1 && strcmp(a.cmd, "sweep"))
		return bad("--shard goes with sweep", NULL);
	if (a.save_dir && strcmp(a.cmd, "sweep"))
		return bad("--save-dir goes with sweep (run: --save FILE)", NULL);
	a.scenario = argv[optind];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(a.cmd, "run"))
		return cmd_run(&a);
	if (!strcmp(a.cmd, "plan"))
		return cmd_plan(&a);
	if (!strcmp(a.cmd, "replay"))
		return cmd_replay(&a);
	if (!strcmp(a.cmd, "shrink"))
		return cmd_shrink(&a);
	if (!strcmp(a.cmd, "report"))
		return cmd_report(&a);
	if (!strcmp(a.cmd, "sweep")) {
		if (!have_seeds)
			return bad("sweep needs --seeds A..B", NULL);
		return cmd_sweep(&a);
	}
	return bad("unknown command", a.cmd);
}
