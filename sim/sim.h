/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sim.h — busrt-sim, the deterministic simulator (README "busrt-sim").
 * The real broker core, client core, RPC policies, procmond's collector
 * code and the agent's supervision and intake run over a simulated network
 * and a virtual clock; one 64-bit seed drives every choice through our own
 * generator, one stream per subsystem. No wall clock, no unseeded
 * randomness, no order that depends on addresses: the same scenario, fault
 * plan and seed give the same trace, byte for byte.
 */
#ifndef BUS_SIM_H
#define BUS_SIM_H

#include "bus/bus.h"
#include "bus/client.h"
#include "bus/daemoneye.h"

#include <stdio.h>

#define SIM_MS 1000000ull
#define SIM_S (1000 * SIM_MS)

/* ---- randomness: one stream per subsystem, all from the seed ------------ */
enum sim_stream {
	SIM_RNG_NET, SIM_RNG_CLIENT, SIM_RNG_FAULTS, SIM_RNG_BUGGIFY, SIM_RNG_N
};
/* With a tape (busrt-sim run --tape, the sim fuzz target), every stream
 * reads its choices from it instead: 1, 2, 4 or 8 bytes per draw by the
 * range, zeros past its end. */
struct sim_tape {
	const uint8_t *p;
	size_t n, pos;
};
struct sim_rng {
	uint64_t state;
	struct sim_tape *tape; /* NULL: the seeded generator */
};
uint64_t sim_rand(struct sim_rng *r);
/* Uniform in [0, n); 0 when n == 0. */
uint64_t sim_below(struct sim_rng *r, uint64_t n);

/* ---- scenarios (scenario.c) ------------------------------------------------ */
struct sim_proc {
	uint32_t pid, ppid, uid;
	uint64_t start;
	char *name, *exe, *cmdline; /* cmdline: args separated by '\0' */
	size_t cmdline_len;
	char hash[65];
};

/* A collector's table is kept as its changes, in time order: each is a
 * process put (added, or its record after a set) or deleted (only pid
 * and start count), and each poll is a run of them. One table is then
 * replayed from them (struct sim_replay), never a copy per poll. */
struct sim_op {
	struct sim_proc p;
	bool del;
};
struct sim_poll {
	uint64_t at_ns;
	size_t first, count; /* its changes: ops[first .. first + count) */
};

struct sim_collector_spec {
	char id[DE_ID_BYTES_MAX];
	uint64_t poll_ns;
	uint32_t ticks_per_s;
	int qos;                  /* its events' delivery mode (bus.h
	                             BUS_QOS_*): sim_qos_names */
	uint32_t out_bytes_max;   /* its client's output limit (out_kib;
	                             procmond's 1 MiB) */
	uint64_t retain_bytes_max; /* its outbox (retain_kib; 64 MiB) */
	struct sim_poll *polls; /* by time */
	size_t n_polls;
	struct sim_op *ops;
	size_t n_ops;
};

/* One collector's table as it stands after poll at (-1: before the
 * first): a sorted array (pid, start), moved forward a poll's changes at
 * a time (and replayed from the start to go back). */
struct sim_replay {
	const struct sim_collector_spec *cs;
	long at;
	const struct sim_proc **v; /* sorted by (pid, start); into cs->ops */
	size_t n, cap;
};

struct sim_monitor_spec {
	char name[64];
	char masks[8][128];
	int n_masks;
};

enum sim_fault_kind {
	SIM_F_BROKER_CRASH,   /* down_ms: all connections drop, restart after */
	SIM_F_COLLECTOR_CRASH, /* target: the collector dies (SIGKILL) */
	SIM_F_RESET,          /* target: one connection reset */
	SIM_F_DELAY,          /* for_ms, ms: extra latency and jitter */
	SIM_F_SHORT_IO,       /* for_ms: reads and writes in 1..16-byte pieces */
	SIM_F_SLOW_CONSUMER,  /* target, for_ms: stops reading */
	SIM_F_CONN_LIMIT,     /* for_ms: connects refused */
	SIM_F_MALFORMED,      /* a rogue connection sends a bad frame */
	SIM_F_AGENT_CRASH,    /* down_ms: the agent dies, its collectors with
	                         it (PR_SET_PDEATHSIG); restarted after */
	SIM_F_OPERATOR,       /* target: an administrator asks the agent to
	                         restart the collector (lifecycle.restart,
	                         then lifecycle.status) */
	SIM_F_KINDS
};
extern const char *const sim_fault_names[SIM_F_KINDS];

struct sim_fault {
	uint64_t at_ns, for_ns, ms;
	enum sim_fault_kind kind;
	char target[64];
};

struct sim_plan {
	struct sim_fault *v;
	size_t n;
};

/* Where the broker runs: in the agent (DaemonEye's default: the agent's
 * client is internal, an agent crash is a broker crash) or as busrtd of
 * its own (the agent connects over a socket like everyone else). */
enum sim_topology { SIM_EMBEDDED = 0, SIM_STANDALONE = 1 };
extern const char *const sim_topology_names[2];

struct sim_scenario {
	char name[64];
	char path[256];
	uint64_t duration_ns;
	uint64_t liveness_ns;      /* after the last fault heals */
	struct de_policies policies;
	enum bus_slow_policy slow_policy;
	uint32_t queue_frames_max;
	enum sim_topology topology;
	struct sim_collector_spec *collectors;
	size_t n_collectors;
	struct sim_monitor_spec *monitors;
	size_t n_monitors;
	struct sim_plan plan;
	bool has_plan;
	char **pool; /* the tables' strings */
	size_t pool_n;
	/* a saved failure (busrt-sim replay / shrink) carries these */
	bool has_seed;
	uint64_t seed;
	char plant[32];
	bool has_buggify;
	uint32_t buggify;          /* armed fault sites, 1 << enum bus_site */
};

/* Writes a self-contained failure file: the scenario at src_path without
 * its own faults / seed / plant, then this plan, seed and planted bug, and
 * why it failed as a comment. 0 or 2 (I/O). */
int sim_save_failure(const char *src_path, enum sim_topology topology,
                     const struct sim_plan *plan, uint64_t seed,
                     const char *plant, uint32_t buggify, const char *why,
                     const char *out_path);
/* The fault sites' names (bus.h enum bus_site), and one by name, or -1. */
extern const char *const sim_site_names[BUS_SITE_N];
int sim_site_by_name(const char *name);
/* The names of the sites in mask, separated by sep; how many. */
int sim_sites_print(FILE *f, uint32_t mask, const char *sep);

/* Text for HTML, SVG and XML (report pages, JUnit files): & < > " '
 * escaped, control bytes but tab and newline (not allowed in XML 1.0) as
 * U+FFFD: names and reasons may hold a peer's bytes. */
void sim_markup_text(FILE *f, const char *s, size_t n);

struct sim_report;
/* busrt-sim report: the run as a self-contained HTML page (report.c): its
 * trace text (trace_len bytes) drawn as a timeline, the plan's faults as
 * bands, the first offending event marked, replay the command under it.
 * 0, or -1 (out of memory, or a write error on f). */
int sim_report_html(FILE *f, const struct sim_scenario *sc,
                    const struct sim_plan *plan, const struct sim_report *r,
                    const char *trace, size_t trace_len, const char *replay);

/* The same for a scenario in memory (busrt-sim shrink): the file written
 * by sim_scenario_print, then this plan, seed, plant and sites. */
int sim_save_reduced(const struct sim_scenario *sc, const struct sim_plan *plan,
                     uint64_t seed, const char *plant, uint32_t buggify,
                     const char *why, const char *out_path);
/* The scenario as a file that loads back to it (without its plan). */
void sim_scenario_print(FILE *f, const struct sim_scenario *s);

/* The distinct processes of a scenario: (collector, pid, start), sorted. */
struct sim_proc_key {
	size_t collector;
	uint32_t pid;
	uint64_t start;
};
size_t sim_scenario_procs(const struct sim_scenario *s,
                          struct sim_proc_key **out);
/* A copy of src with only the monitors, collectors and processes (indexed
 * as sim_scenario_procs lists them) whose keep flag is set. It shares
 * src's strings: sim_scenario_free it before src. 0, or BUS_ENOMEM. */
int sim_scenario_reduce(const struct sim_scenario *src, const bool *keep_mon,
                        const bool *keep_col, const bool *keep_proc,
                        struct sim_scenario *out);
/* The index of collector cs's poll in force at t (the latest at or
 * before it), -1 before the first. */
long sim_table_at(const struct sim_collector_spec *cs, uint64_t t);
void sim_replay_init(struct sim_replay *r, const struct sim_collector_spec *cs);
/* Moves r to the table after poll idx (-1: empty). */
void sim_replay_seek(struct sim_replay *r, long idx);
void sim_replay_free(struct sim_replay *r);
/* The table after poll idx, as the collector code reads it (r moves). */
void sim_table_snapshot(struct sim_replay *r, long idx,
                        struct de_snapshot *snap);

/* record.c: pieces of the scenario format */
void sim_yq(FILE *f, const char *s, size_t n); /* a YAML quoted scalar */
/* One poll's delta from prev to cur (sorted) as scenario lines; false if
 * nothing changed (first: the first poll, every process an add). */
bool sim_write_delta(FILE *f, uint64_t at_ms, const struct de_snapshot *prev,
                     const struct de_snapshot *cur, bool first);

/* 0, or 2 (bad input) with err = "file:line: what". */
int sim_scenario_load(const char *path, struct sim_scenario *s, char *err,
                      size_t errlen);
/* The same from memory; name stands for the file in messages. */
int sim_scenario_parse(const char *text, size_t len, const char *name,
                       struct sim_scenario *s, char *err, size_t errlen);
void sim_scenario_free(struct sim_scenario *s);
int sim_plan_load(const char *path, struct sim_plan *p, char *err,
                  size_t errlen);
int sim_plan_parse(const char *text, size_t len, const char *name,
                   struct sim_plan *p, char *err, size_t errlen);
void sim_plan_free(struct sim_plan *p);
/* A plan drawn from the seed (swarm testing: each seed its own mix), or
 * from any stream (the tape's). */
void sim_plan_draw(const struct sim_scenario *s, uint64_t seed,
                   struct sim_plan *p);
void sim_plan_draw_from(const struct sim_scenario *s, struct sim_rng *r,
                        struct sim_plan *p);
void sim_plan_print(FILE *f, const struct sim_plan *p);

/* ---- a run ------------------------------------------------------------------- */
struct sim;

/* What the agent subscribes to: every collector's events. */
#define SIM_AGENT_MASK "events/#"

/* BUS/RT mask matching as the oracle does it (check.c, written apart from
 * the broker's trie): '+' (or '*') one level, '#' the rest. */
bool sim_mask_match(const char *mask, const char *topic);

/* Every event the collectors sent, in order (sim_options.log): what the
 * command line pushes through the in-process channel to measure the
 * oracle path. */
struct sim_log_ev {
	char topic[40];
	uint8_t *data;
	size_t len;
};
struct sim_log {
	struct sim_log_ev *v;
	size_t n, cap;
};
void sim_log_free(struct sim_log *l);

struct sim_options {
	uint64_t seed;
	const struct sim_plan *plan; /* NULL: none */
	FILE *trace;                 /* NULL: hash only */
	/* a tape: every choice from it, and the plan too when plan is NULL
	 * and tape_plan is set */
	const uint8_t *tape;
	size_t tape_len;
	bool tape_plan;
	/* fault sites (bus.h, BUGGIFY): these armed, or each armed with
	 * even odds drawn from the seed (or the tape) */
	uint32_t buggify;
	bool buggify_drawn;
	uint32_t plant;              /* planted bugs on (bus.h enum bus_plant) */
	struct sim_log *log;         /* NULL: none kept */
	/* the broker core's invariants (bus_core_check_invariants) after
	 * every check_every-th step of the loop; 0: after every step */
	uint32_t check_every;
};

/* Check verdicts, in report order. */
enum sim_check {
	SIM_C_ORDERING,
	SIM_C_LIFECYCLE,
	SIM_C_DELIVERY,
	SIM_C_EQUIVALENCE,
	SIM_C_LIVENESS,
	SIM_C_ACCOUNTING,
	SIM_C_STREAM,
	SIM_C_CONVERGENCE,
	SIM_C_ACCESS,
	SIM_C_INVARIANTS,
	SIM_C_CONTROL,
	SIM_C_N
};
extern const char *const sim_check_names[SIM_C_N];
/* BUS/RT's delivery modes by their qos bits: none, processed, realtime,
 * realtime_processed. */
extern const char *const sim_qos_names[4];

struct sim_report {
	uint64_t seed;
	uint64_t trace_hash;
	uint64_t events;          /* trace lines */
	uint64_t virtual_ns;
	uint64_t published, delivered, oracle_delivered;
	uint64_t resent;          /* events handed to the bus again */
	uint64_t redelivered;     /* deliveries of such re-sends */
	uint64_t processed;       /* events the agent processed in sequence */
	uint64_t resyncs, gaps;   /* the agent's: asked and answered, seen */
	uint64_t faults[SIM_F_KINDS];
	bool ok[SIM_C_N];
	char why[SIM_C_N][256];   /* the first offending event */
	uint64_t broker_restarts, collector_restarts;
	bool accounting_compared;  /* false: no broker at the end */
	uint64_t flight_c2b;       /* frames that died in flight at a close or
	                              reset, client to broker, accounted */
	uint64_t flight_b2c;       /* the same, broker to client */
	bool end_to_end_checked;   /* false: drop_newest (the stream and
	                              convergence checks do not apply) */
	uint64_t access_denied;    /* the intruder's tries, every one refused */
	uint64_t caps_sent, caps_received; /* control/collector/capabilities */
	uint64_t stats_got;        /* control/broker/stats, at the agent */
	/* the coordinated shutdown after the run: checked (not when the
	 * agent or a collector was down at the end), how long it took, and
	 * the collectors that answered, crashed, never heard it */
	bool shutdown_checked;
	uint64_t shutdown_ns;
	uint32_t shut_answered, shut_crashed, shut_deaf;
	uint64_t plant_fired;      /* times a planted bug acted (--plant) */
	uint64_t operator_served;  /* the operator's lifecycle.* calls the
	                              agent answered (all must succeed) */
	uint64_t invariant_checks; /* times the core's invariants were checked */
	uint32_t buggify;          /* the armed sites */
	uint64_t reached[BUS_SITE_N], fired[BUS_SITE_N];
};

int sim_run(const struct sim_scenario *sc, const struct sim_options *o,
            struct sim_report *r);

/* busrt-sim record (record.c): 0, or 2 when /proc cannot be read. */
int sim_record(const char *name, uint64_t poll_ms, double seconds,
               const char *command, bool only_subtree, bool netlink,
               FILE *out);

#endif
