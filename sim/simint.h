/* SPDX-License-Identifier: Apache-2.0 */
/*
 * simint.h — the simulator's insides, shared by run.c (network, clock,
 * actors, faults) and check.c (the checkers).
 */
#ifndef BUS_SIMINT_H
#define BUS_SIMINT_H

#include "sim.h"
#include "bus/link.h"

/* ---- what the actors saw, for the checkers ------------------------------- */
struct made {                  /* one event a collector made; its sequence
                                  number - 1 indexes it */
	uint64_t t;
	int topic;                 /* index into sim.topics */
	/* what the event says, from the collector when it is made */
	int type;
	uint32_t pid, ppid;
	int64_t start_ms;
	bool resync, gap;          /* a full resync's DISCOVERY; a gap marker */
	size_t len;                /* of the payload; deliveries are matched
	                              by its bytes' hash (sim.by_hash_*) */
	uint32_t sends;            /* times handed to the bus */
};

struct sent {                  /* one hand-over of an event to the client:
                                  the oracle's feed (re-sends included) */
	uint64_t t, t_ack;
	uint64_t seq;
	int ack;                   /* 0 pending, 1 OK, -1 failed */
	int topic;
};

struct pubinc {                /* one collector incarnation */
	int collector;
	uint64_t incarnation;
	uint64_t started, ended;   /* ended: UINT64_MAX while alive */
	struct made *ev;           /* every event it made, by sequence */
	size_t n_ev, cap_ev;
	struct sent *v;            /* its send log */
	size_t n, cap;
	uint64_t *done;            /* the agent's processed stream: sequences */
	size_t n_done, cap_done;
	uint64_t *missed;          /* sequences the agent found missing (its
	                              resync then fetched them) */
	size_t n_missed, cap_missed;
};

struct got {                   /* one event a receiver got */
	uint64_t t;
	uint64_t seq;
	int64_t start_ms;
	int pubinc;                /* index into sim.pubs, -1: its bytes match
	                              no event sent */
	int type;                  /* de_event_type; -1: a resync's
	                              restatement */
	uint32_t pid, ppid;
	uint32_t len;              /* of the payload */
	bool again;                /* matched a re-send of an event already
	                              sent (set by the projection check) */
};

struct receiver {              /* a monitor, or the agent */
	char name[64];
	char masks[8][128];
	int n_masks;
	int link;
	struct got *v;
	size_t n, cap;
	/* connection history: intervals in which it was READY and its
	 * subscriptions in effect at the broker, for "stayed connected" */
	uint64_t up_since;         /* UINT64_MAX: down */
	uint64_t *downs;           /* times it went down */
	size_t n_downs, cap_downs;
	/* what the broker's slow-consumer policy did to it (bus.h
	 * BUS_SIM_POLICY): the events it dropped or discarded for it, as
	 * pairs (pubinc << 32 | seq, when): sends of that event up to then;
	 * and [from, to) pairs from a second before each policy cut until
	 * its subscriptions were in effect again */
	uint64_t *excused;
	size_t n_excused, cap_excused;
	uint64_t *cuts;
	size_t n_cuts, cap_cuts;   /* values: 2 per cut */
};

struct sim;
/* check.c */
void sim_check_all(struct sim *s, struct sim_report *r);
/* The coordinated shutdown after the run (agent_shutdown): done within
 * stop_timeout, every collector that obeyed answered with its last
 * event's sequence, which the agent had processed. */
void sim_check_shutdown(struct sim *s, struct sim_report *r);

/* ---- the run (run.c) --------------------------------------------------------- */
struct seg {                   /* one write's bytes, in one allocation */
	size_t len, off;
	uint64_t ready;
	struct seg *next;
	uint8_t data[];
};

struct pipe {
	struct seg *head, *tail;
	size_t bytes;
	uint64_t last_ready;
	bool pump_armed;
};

/* LK_ROGUE: a raw connection that sends a malformed frame (a malformed
 * fault); LK_HOG: a raw connection that registers and holds a place (a
 * conn_limit fault fills the broker's connections_max with them). */
enum link_kind { LK_COLLECTOR, LK_AGENT, LK_MONITOR, LK_ROGUE, LK_HOG,
                 LK_INTRUDER, LK_IMPOSTOR, LK_ADMIN };

/* One direction of a connection, frame by frame (ledger.c): where each
 * counted frame ends in the stream, so that how many frames a side must
 * have counted at any offset it reached is known exactly. */
struct ledger {
	uint64_t pushed;           /* stream bytes written */
	uint64_t skip;             /* bytes to pass: handshake, name, payload */
	uint64_t *ends;            /* ends of counted frames, ascending */
	size_t n, cap;
	uint64_t dropped;          /* frames forgotten before ends[0] */
	uint8_t dir, phase, hn;
	bool pend;                 /* the payload passed is a counted frame's */
	uint8_t hdr[9];
};
void ledger_reset(struct ledger *g, int dir);
void ledger_feed(struct ledger *g, const uint8_t *p, size_t n);
/* Counted frames that end at or before off (off <= pushed). */
uint64_t ledger_count(const struct ledger *g, uint64_t off);
/* No count below low will be asked again: its ends go. */
void ledger_forget(struct ledger *g, uint64_t low);

struct link {
	struct sim *s;
	int idx;
	enum link_kind kind;
	int actor;                 /* collector / receiver index */
	char name[DE_BUS_NAME_BYTES_MAX];
	struct bus_client *cl;
	struct bus_conn *conn;
	uint32_t epoch;            /* bumps when the connection ends */
	struct pipe c2b, b2c;
	bool c_write_done_due, b_write_blocked, c_write_blocked;
	bool b_paused;             /* the broker stopped reading it */
	bool b_closing;            /* the broker asked to close: no more reads */
	bool c_closing;            /* the client asked to close */
	uint32_t raw_rx;           /* rogue: handshake bytes the broker sent */
	uint8_t rx_hdr[6];         /* intruder: the frame header being read */
	uint32_t rx_hdr_n, rx_skip;
	/* when a receiver's subscriptions take effect: the broker has read
	 * every byte the client had written or queued when it became READY
	 * (its resubscribe frames among them) */
	uint64_t c2b_written, c2b_read, c_inflight, sub_target;
	bool sub_pending;
	bool stalled;              /* slow consumer: stops reading */
	uint64_t base_out, base_in; /* client frame counters at connect */
	uint64_t base_stream;      /* and its stream_in */
	bool counted;              /* its client's counters start at connect */
	/* the accounting (ledger.c): both directions' frames, while the
	 * connection is the current broker's; the broker's write in flight */
	struct ledger led[2];      /* BUS_LINK_C2B, BUS_LINK_B2C */
	bool acct_open;
	uint64_t b_inflight;
	/* the embedded topology's agent: its client is internal, on the
	 * shipped in-memory link (bus/link.h) instead of the pipes */
	bool internal;
	struct bus_link il;
	struct bus_link_shape ish;
};

struct collector {
	const struct sim_collector_spec *spec;
	bool alive, spawned_once;
	int link;
	int pubinc;                /* current incarnation's log */
	uint32_t pid;              /* as the agent knows it */
	struct de_collector col;
	bool col_init;
	long last_table;           /* table of the last cycle */
	struct sim_replay table;   /* its table, replayed for its cycles */
	struct sim_replay truth;   /* the same for the convergence check */
	uint64_t last_hb_ok;       /* the agent's last answered heartbeat */
	uint64_t healed_hb_ok;     /* its first after the last fault healed */
	uint64_t last_hc_ok;       /* the same of health checks */
	uint64_t healed_hc_ok;
	/* control/collector/capabilities: READYs of its client, and the one
	 * whose connection carried them (an event before them: a fault) */
	uint64_t ready_gen, caps_gen;
	uint64_t caps_sent;
	/* the coordinated shutdown after the run: what this collector does
	 * (SHUT_*), and whether it answered */
	int shut_fault;
	/* its agent heard it exit (not in the shutdown): since then, until
	 * the agent spawns it again (UINT64_MAX: not waiting) */
	uint64_t dead_since;
	uint32_t exits_in_row;     /* those since its last answered heartbeat */
	bool subscribed;           /* its client took its masks (col_spawn) */
};
enum { SHUT_OBEYS, SHUT_CRASHES, SHUT_DEAF };

struct sim_ev {
	uint64_t t, seq;
	int type, link;
	uint32_t epoch;
	uint64_t arg;
};

struct sim_alloc_site {       /* an allocator's context: whose, which site */
	struct sim *s;
	enum bus_site site;
};

struct sim {
	/* the simulator's hand in this run's cores and services (bus.h):
	 * planted bugs, fault sites, policy reports; nothing process-wide */
	struct bus_sim_hooks hooks;
	struct sim_alloc_site alloc_core, alloc_client;
	const struct sim_scenario *sc;
	const struct sim_options *o;
	struct sim_report *r;
	uint64_t now;
	uint64_t end;              /* when the workload stops */
	uint64_t stop;             /* when the run stops */
	uint64_t poll_until;       /* collectors poll until then (a restarted
	                              one enumerates, whenever it restarts) */
	struct sim_rng rng[SIM_RNG_N];
	struct sim_tape tape;
	const struct sim_plan *plan; /* the options', or drawn from the tape */
	struct sim_plan tape_plan;
	/* the event queue: a binary heap on (t, seq) */
	struct sim_ev *ev;
	size_t n_ev, cap_ev;
	uint64_t ev_seq;
	/* the broker */
	struct bus_core *core;
	bool broker_up;
	struct bus_core_config core_cfg;
	/* links and actors */
	struct link *links;        /* fixed capacity: clients point into it */
	int n_links, cap_links;
	struct collector *cols;
	int n_cols;
	struct receiver *recv;     /* monitors, then the agent (last) */
	int n_recv;
	int agent_link;
	struct de_sup sup;
	struct de_intake intake;   /* the agent's: end to end */
	struct de_agent da;        /* the agent's calls and lifecycle.* */
	uint32_t next_pid;
	struct pubinc *pubs;
	int n_pubs, cap_pubs;
	char **topics;             /* every topic published, once each */
	int n_topics, cap_topics;
	/* fault state */
	uint64_t delay_until, delay_ns, short_until;
	uint64_t broker_down_until; /* overlapping crashes: the latest end */
	bool agent_down;
	uint64_t agent_down_until;
	uint32_t agent_gen;        /* bumps at each agent crash: its spawns
	                              still queued are void */
	uint64_t last_fault_end;
	uint64_t *windows;         /* [start, end) pairs of fault windows */
	size_t n_windows;
	/* accounting of the current broker incarnation */
	uint64_t acc_out, acc_in;  /* frames of connections that ended */
	/* frames that died in flight, each accounted at its offset (the
	 * report's): written and never read by the broker, or the other way */
	uint64_t flight_c2b, flight_b2c;
	char source_fault[320];    /* an event made and never handed over */
	uint64_t source_fault_at;
	char sub_fault[320];       /* a receiver's masks not at the broker */
	uint64_t sub_fault_at;
	char restart_fault[320];   /* a crashed collector left dead */
	uint64_t restart_fault_at;
	char acct_fault[200];      /* a client's counters against its bytes */
	uint64_t acct_fault_at;
	/* the intruder (another uid, a monitor's rights) and the impostor
	 * (another uid taking a collector's name): every try must be
	 * refused, nothing they send may reach anyone */
	struct bus_acl acl;
	int intruder, impostor;    /* their links */
	/* the operator (admin.operator, root): its lifecycle.* calls to the
	 * agent must be served; the agent's access rule (agent.admins) */
	int admin;
	uint64_t operator_served;
	struct de_access agent_access;
	uint64_t access_denied;
	char access_fault[200];
	uint64_t access_fault_at;
	char control_fault[200];   /* the control topics' first fault */
	uint64_t control_fault_at;
	uint64_t caps_received;    /* by the agent */
	/* control/broker/stats the agent got: how many, and the last one's
	 * frames-read counter and broker incarnation (broker_restarts) */
	uint64_t stats_got, stats_last_r, stats_last_gen;
	bool shutting;             /* the coordinated shutdown phase */
	uint64_t shut_t0, shut_done_at;
	bool shut_skipped;         /* not exercised: the agent or a collector
	                              was down when the run ended */
	/* the core's invariants, checked every check_every-th step */
	uint32_t check_every;
	uint64_t steps, inv_checks;
	char inv_fault[300];
	uint64_t inv_fault_at;
	bool finishing;            /* tearing down: callbacks do nothing */
	bool quiet;                /* building a core: no fault site fires */
	/* every payload sent, by hash: (pubinc << 32 | index) + 1, 0 empty */
	uint64_t *by_hash_key;
	uint64_t *by_hash_val;
	size_t by_hash_cap, by_hash_n;
	/* the trace */
	uint64_t hash;
	uint64_t ts_at;            /* the time ts was formatted for */
	char ts[32];               /* "ms.ns " of ts_at */
	size_t ts_n;
};

/* ---- the run's parts (trace.c, net.c, actors.c, faults.c, run.c) ------ */
#define SOCKBUF (256u << 10)
#define REALTIME_BASE 1700000000000000000ull

enum {
	EV_CONNECT, EV_PUMP_C2B, EV_PUMP_B2C, EV_CDONE, EV_BDONE, EV_CLOSE_C,
	EV_CLOSE_B, EV_POLL, EV_SPAWN, EV_EXIT, EV_FAULT, EV_FAULT_END,
	EV_OPERATOR, EV_SHUT_CRASH, EV_SHUT_EXIT,
};

struct tline {
	char b[512];
	size_t n;
};
enum end { END_RESET, END_CLIENT_CLOSED, END_BROKER_CLOSED };
#define LOSSY_SITES (1u << BUS_SITE_CORE_ALLOC | 1u << BUS_SITE_CLIENT_ALLOC)
#define SIM_NOBODY 65534u
#define INTRUDER_NAME "monitor.intruder"
#define OPERATOR_NAME "admin.operator"
/* the operator's calls (actors.c): collector col's lifecycle.restart, or
 * its lifecycle.status */
#define OPERATOR_RESTART(col) ((uint64_t)(col) << 1)
#define OPERATOR_STATUS(col) ((uint64_t)(col) << 1 | 1)

extern const struct bus_client_ops c_ops;
extern const struct bus_client_ops ic_ops;

/* trace.c */
uint64_t bytes_hash(const uint8_t *p, size_t n);
void copy_str(char *dst, size_t n, const char *src);
void put_str(struct tline *l, const char *p);
void put_u64(struct tline *l, uint64_t v, int width);
void line_start(struct sim *s, struct tline *l);
void line_end(struct sim *s, const struct tline *l);
/* net.c */
void push(struct sim *s, uint64_t t, int type, int link, uint64_t arg);
struct sim_ev pop(struct sim *s);
void window(struct sim *s, uint64_t from, uint64_t to);
bool site_hook(void *arg, enum bus_site site);
void *site_alloc(void *ctx, size_t n);
void *site_realloc(void *ctx, void *p, size_t n);
void site_free(void *ctx, void *p);
void pipe_clear(struct pipe *p);
void arm(struct sim *s, struct link *l, int dir);
void pipe_push(struct sim *s, struct link *l, int dir, const struct bus_iov *iov,
	       size_t n);
void teardown(struct sim *s, struct link *l, enum end how, const char *why);
void deliver_all(struct sim *s, struct link *l, int dir);
void pump(struct sim *s, struct link *l, int dir);
void broker_start(struct sim *s);
void broker_crash(struct sim *s);
uint64_t c_now(void *host);
void c_write(void *host, const struct bus_iov *iov, size_t n);
uint64_t sim_clock(void *arg);
void count_from_now(struct sim *s, struct link *l);
/* The accounting of l's connection (with the current broker, conn, or
 * NULL after a crash): the frames the broker must have read from it and
 * written to it go to acc_out and acc_in, and its client's counters are
 * held to its bytes; ended: the connection is over (its ledgers go). */
void conn_accounted(struct sim *s, struct link *l, struct bus_conn *conn,
                    bool ended);
/* l's connection at the current broker (socket or internal link), or NULL */
struct bus_conn *conn_of(const struct link *l);
void ilink_dropping(void *arg, const struct bus_link *il);
void ilink_pump(struct sim *s);
void raw_handshake(struct sim *s, struct link *l);
void rogue_frame(struct sim *s, struct link *l);
/* actors.c */
void raw_rx(struct sim *s, struct link *l, const uint8_t *p, size_t n);
void on_connect(struct sim *s, struct link *l);
int new_link(struct sim *s, enum link_kind kind, int actor, const char *name);
void sub_check(struct sim *s, struct link *l);
void policy_hook(void *arg, void *ctx, const uint8_t *f, size_t n);
struct bus_client *make_client(struct sim *s, struct link *l);
void col_poll(struct sim *s, int i);
void col_spawn(struct sim *s, int i);
void col_kill(struct sim *s, int i, const char *why);
/* Supervision seen from outside: collector i, whose exit its agent heard
 * (outside the shutdown), must be spawned again within the longest
 * restart delay; checked now (a late one is a restart_fault), and with
 * over the wait ends (a spawn, the agent's death, the run's end). */
void restart_check(struct sim *s, int i, bool over);
/* Collector i handed every event it made to the bus or holds it (a
 * source_fault otherwise): at its death and at the end. */
void source_check(struct sim *s, int i);
void agent_boot(struct sim *s);
void agent_crash(struct sim *s);
void agent_shutdown(struct sim *s);
void operator_call(struct sim *s, uint64_t op);
/* faults.c */
void fault(struct sim *s, size_t i, bool begin);
/* run.c */
void acl_build(struct sim *s, const struct sim_scenario *sc);

void sim_trace(struct sim *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
