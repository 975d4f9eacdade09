/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye.h — DaemonEye on the bus (README "DaemonEye on the bus"): the
 * RPC method table and its policies, serving and calling with protobuf
 * payloads, procmond's enumeration diff, event packing and outbox, and the
 * agent's collector supervision and event intake.
 *
 * Everything here is sans-I/O: time comes in as arguments, effects go out
 * through callbacks, so the simulator runs this code, not a model of it.
 * Reading /proc and hashing files is procfs.h's business.
 */
#ifndef BUS_DAEMONEYE_H
#define BUS_DAEMONEYE_H

#include "bus/client.h"
#include "bus/pb.h"

#define DE_AGENT_NAME "daemoneye-agent"
#define DE_SCHEMA_VERSION 1
#define DE_ID_BYTES_MAX 64        /* collector id, NUL included */
#define DE_TYPE_BYTES_MAX 32      /* collector type, NUL included */
#define DE_BUS_NAME_BYTES_MAX 128 /* collector.<type>.<id>, NUL included */
#define DE_COLLECTORS_MAX 64      /* per agent (the design's embedded limit) */

/* ---- RPC policies (README defaults; every value is configuration) ---- */
struct de_policies {
	struct bus_rpc_policy lifecycle; /* 30 s, no retry */
	struct bus_rpc_policy health;    /* 5 s, 3 retries at once */
	struct bus_rpc_policy config;    /* 15 s overall, backoff 0.5 s .. 4 s */
	struct bus_rpc_policy heartbeat; /* 2 s, one immediate retry */
	struct bus_rpc_policy resync;    /* collector.resync: 5 s, one attempt */
	uint64_t resync_retry_ns;        /* a failed resync again after: 1 s */
	uint64_t heartbeat_interval_ns;  /* 5 s */
	uint64_t health_check_interval_ns; /* health.check each running
	                                      collector: 30 s (0: never) */
	uint32_t heartbeat_dead_after;   /* consecutive failed heartbeats: 3 */
	uint64_t restart_delay_ns;       /* first restart after a death: 0.5 s */
	uint64_t restart_delay_max_ns;   /* doubling per death in a row: 30 s */
	uint64_t stop_timeout_ns;        /* SIGTERM, then SIGKILL after: 5 s */
};
void de_policies_defaults(struct de_policies *p);

/* ---- the method table: one name per call --------------------------------- */
enum de_service {
	DE_SVC_LIFECYCLE = 0, /* CollectorLifecycleService */
	DE_SVC_HEALTH = 1,    /* HealthCheckService */
	DE_SVC_CONFIG = 2,    /* ConfigurationService */
	DE_SVC_EVENTS = 3,    /* ours, end to end: collector.resync */
};
#define DE_SVC_COUNT 4

struct de_method {
	const char *name; /* "lifecycle.start", ... */
	enum de_service service;
	const ProtobufCMessageDescriptor *request, *response;
};
extern const struct de_method de_methods[];
extern const size_t de_methods_count;
/* NULL when name is not a DaemonEye method. */
const struct de_method *de_method_find(const char *name);
const struct bus_rpc_policy *de_policy_for(const struct de_policies *p,
                                           const struct de_method *m);

/* ---- serving ---------------------------------------------------------------
 * A server has a table of handlers by method name. de_serve decodes the
 * request (bounded), runs the handler and sends the reply or the error:
 * unknown method -32601, undecodable params -32602, and whatever error the
 * handler chose. A handler answers through exactly one of de_answer_msg /
 * de_answer_error before returning. */
struct de_answer {
	uint8_t *buf; /* packed reply (de_serve frees it) */
	size_t len;
	int code;     /* 0 or the RPC error code */
	char message[256];
};
int de_answer_msg(struct de_answer *a, const ProtobufCMessage *m);
int de_answer_error(struct de_answer *a, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

typedef int (*de_handler_fn)(void *ctx, const char *sender,
                             const ProtobufCMessage *req,
                             struct de_answer *a);
struct de_handler {
	const char *method;
	de_handler_fn fn;
};

/* Who may call each service: per service a NULL-terminated list of
 * name masks (bus_name_mask_match: "daemoneye-agent", "admin.*"); a NULL
 * list refuses every caller. The sender's name is the one the broker
 * stamped, and the ACL decides who may register which name, so a name is
 * an identity. A refused call is answered BUS_RPC_ERR_ACCESS (-32003)
 * before its params are decoded. */
struct de_access {
	const char *const *callers[DE_SVC_COUNT];
	struct bus_sim_hooks *sim; /* the simulator's build (bus.h) */
};
bool de_access_allows(const struct de_access *acc, enum de_service svc,
                      const char *sender);

/* What de_serve did, for the caller's audit log and counters. */
struct de_served {
	char method[64];    /* as received (cut), "" for a notification */
	int code;           /* 0, or the RPC error code sent */
	char message[256];  /* the error message sent, "" on success */
	bool answered;      /* false: a notification, nothing sent */
	bool denied;        /* refused: the sender may not call it */
};
void de_serve(struct bus_client *c, const struct bus_rpc_request *q,
              const struct de_handler *h, size_t n, void *ctx,
              const struct de_access *acc, struct de_served *out);

/* ---- calling ---------------------------------------------------------------
 * Packs req and calls method on target with the method's policy from p.
 * Returns what bus_client_rpc_call returns (BUS_EINVAL for an unknown
 * method or a request of the wrong type). */
int de_call(struct bus_client *c, const char *target, const char *method,
            const ProtobufCMessage *req, const struct de_policies *p,
            bus_rpc_fn done, void *arg);
/* The reply of a successful call to method, decoded; NULL when the bytes
 * are not a valid reply (the caller counts that as a failed call). */
ProtobufCMessage *de_reply_unpack(const char *method,
                                  const struct bus_rpc_result *r);

/* ---- process records and procmond's cycle diff ----------------------------- */
struct de_proc {
	uint32_t pid, ppid, uid;
	uint64_t start_ticks;   /* with pid, the identity: reuse = new process */
	int64_t start_time_ms;  /* wall clock, for the record */
	uint64_t cpu_ticks;     /* utime + stime */
	uint64_t memory_bytes;  /* resident */
	double cpu_usage;       /* filled by the diff: % of one CPU */
	bool accessible;        /* every /proc file of it was readable */
	bool file_exists;       /* the executable is still on disk */
	char *name, *exe;       /* owned by the snapshot; "" if unknown */
	char *cmdline;          /* arguments, each NUL-terminated */
	size_t cmdline_len;     /* bytes of cmdline */
	char hash[65];          /* hex SHA-256 of exe, "" if not computed */
	const char *hash_skipped; /* why hash is "" (a static string), or
	                             NULL */
};

struct de_snapshot {
	struct de_proc *v;
	size_t n, cap;
	uint64_t taken_ns;  /* monotonic, for cpu_usage */
	int64_t taken_ms;   /* wall clock, collection_time */
};
void de_snapshot_init(struct de_snapshot *s);
/* Room for n processes (a table of known size, copied in without
 * regrowing); BUS_ENOMEM, BUS_ELIMIT. */
int de_snapshot_reserve(struct de_snapshot *s, size_t n);
/* Copies p (and its strings) in; BUS_ENOMEM. */
int de_snapshot_add(struct de_snapshot *s, const struct de_proc *p);
void de_snapshot_free(struct de_snapshot *s);
/* Frees one entry's strings (an entry taken out of a snapshot by hand). */
void de_proc_release(struct de_proc *p);
/* Sorts by (pid, start_ticks) and keeps one entry per process (the least
 * in a total order of all fields: deterministic); the diff needs that. */
void de_snapshot_sort(struct de_snapshot *s);

enum de_event_type {
	DE_DISCOVERY = DAEMONEYE__PROCESS_EVENT__EVENT_TYPE__DISCOVERY,
	DE_UPDATE = DAEMONEYE__PROCESS_EVENT__EVENT_TYPE__UPDATE,
	DE_TERMINATION = DAEMONEYE__PROCESS_EVENT__EVENT_TYPE__TERMINATION,
};

#define DE_TOPIC_ENUMERATION "events/process/enumeration"
#define DE_TOPIC_LIFECYCLE "events/process/lifecycle"
#define DE_TOPIC_METADATA "events/process/metadata"
#define DE_TOPIC_HASH "events/process/hash"

typedef void (*de_emit_fn)(void *arg, enum de_event_type type,
                           const char *topic, const struct de_proc *p);

struct de_procdiff {
	struct de_snapshot prev;
	uint64_t cycles;        /* completed cycles */
	uint32_t ticks_per_s;   /* clock ticks (sysconf(_SC_CLK_TCK)) */
	struct bus_sim_hooks *sim; /* the simulator's build (bus.h) */
};
void de_procdiff_init(struct de_procdiff *d, uint32_t ticks_per_s);
void de_procdiff_free(struct de_procdiff *d);
/* One collection cycle: cur (sorted here) becomes the previous table.
 * Events: first, in (pid, start) order, a vanished process as TERMINATION
 * on lifecycle, a changed name, executable, command line, parent, user,
 * accessibility or file existence as UPDATE on metadata, a hash newly
 * known or changed as UPDATE on hash; then every new process (also a
 * reused pid) as DISCOVERY on lifecycle — on enumeration in the first
 * cycle, where every process is new — in (pid, start) order except that a
 * new parent comes before its new children, each followed by its hash
 * UPDATE if its hash is known. So per process: DISCOVERY, UPDATEs,
 * TERMINATION; and a pid's TERMINATION precedes its reuse's DISCOVERY. */
void de_procdiff_cycle(struct de_procdiff *d, struct de_snapshot *cur,
                       de_emit_fn emit, void *arg);

/* ---- events ----------------------------------------------------------------
 * Every event of one collector incarnation carries its bus name, the
 * incarnation (start time, ns) and a sequence number from 1. */
struct de_event_source {
	const char *collector; /* bus name */
	uint64_t incarnation;
	uint64_t sequence;     /* of the last event packed */
	uint64_t resync;       /* stamped on events packed now (a full
	                          resync's DISCOVERYs); 0 otherwise */
};
/* A malloc'd BusrtEvent with a ProcessEvent payload; NULL on ENOMEM. */
uint8_t *de_event_pack(struct de_event_source *src, const char *topic,
                       enum de_event_type type, const struct de_proc *p,
                       uint64_t cycle, int64_t now_ms, size_t *len);

/* A gap marker (BusrtEvent.gap, no payload) under sequence seq: events
 * before it were lost at the collector. NULL on ENOMEM. */
uint8_t *de_event_pack_gap(const struct de_event_source *src, uint64_t seq,
                           const char *topic, int64_t now_ms, size_t *len);

/* ---- the collector's outbox (outbox.c) -------------------------------------
 * Events get their sequence number when packed and wait here, in order,
 * until the agent says it processed them (HeartbeatRequest.acked_*):
 * unsent ones go out as the bus takes them (BUS_EAGAIN: on_drain goes
 * on), sent ones are kept to be re-sent after a reconnect or when the agent
 * asks (collector.resync). Bounded in bytes: past the bound the oldest
 * sent events are forgotten (a later request for them gets a full
 * resync); unsent ones never are — adding is refused, and the collector
 * declares a gap instead. */
typedef int (*de_publish_fn)(void *host, const char *topic,
                             const uint8_t *data, size_t len);
struct de_outbox_entry {
	uint64_t seq;
	const char *topic; /* static */
	uint8_t *data;     /* owned */
	uint32_t len;
};
struct de_outbox {
	struct de_outbox_entry *v;
	size_t cap, head, n;
	size_t sent;        /* the first `sent` entries were handed to the bus */
	uint64_t bytes, bytes_max;
	uint64_t forgotten; /* sent, unacknowledged, dropped for room */
};
void de_outbox_init(struct de_outbox *o, uint64_t bytes_max);
void de_outbox_free(struct de_outbox *o);
/* Takes data (malloc'd) over, freeing it on failure: BUS_ELIMIT when the
 * bound leaves no room (force: past the bound, for a gap marker). */
int de_outbox_add(struct de_outbox *o, uint64_t seq, const char *topic,
                  uint8_t *data, size_t len, bool force);
/* The agent processed everything up to seq. */
void de_outbox_ack(struct de_outbox *o, uint64_t seq);
/* Entries from from_seq on are to be sent again; false if from_seq is no
 * longer (or not yet) kept. */
bool de_outbox_rewind(struct de_outbox *o, uint64_t from_seq);
/* Hands unsent entries to publish in order until it refuses: 0 when
 * nothing is left, else its refusal. */
int de_outbox_pump(struct de_outbox *o, de_publish_fn publish, void *host);
size_t de_outbox_unsent(const struct de_outbox *o);
/* The sequence of the last event handed to the bus (last_made: the
 * collector's last sequence, for an outbox with nothing unsent). */
uint64_t de_outbox_last_sent(const struct de_outbox *o, uint64_t last_made);

/* ---- a process collector: procmond's logic, sans I/O ----------------------
 * Its configuration, its cycle (diff, events) and the services it answers
 * for itself: lifecycle.stop/status, health.check/heartbeat/metrics,
 * config.get/validate/update. procmond hosts it on libuv, the simulator
 * in virtual time. */
struct de_collector_ops {
	uint64_t (*now)(void *host);     /* monotonic ns */
	int64_t (*wall_ms)(void *host);  /* ms since the epoch */
	/* Hand an event to the bus: 0, or why not now (BUS_EAGAIN: the host
	 * calls de_collector_pump at on_drain; BUS_ECLOSED: at READY). It
	 * may be called again for the same bytes (a re-send). */
	de_publish_fn publish;
	/* An event was made (NULL: not told): what the simulator's checkers
	 * read without decoding. p NULL for a gap marker. */
	void (*made)(void *host, uint64_t seq, enum de_event_type type,
	             const char *topic, const struct de_proc *p,
	             const uint8_t *data, size_t len);
	void (*interval_changed)(void *host, uint32_t scan_interval_ms);
	void (*stop)(void *host);        /* lifecycle.stop was answered */
	/* The RPC metrics of the collector's bus client (NULL: none),
	 * reported in health.metrics and health.check's metrics as
	 * rpc.TARGET.METHOD.* (client.h: bus_rpc_metrics_each). */
	const struct bus_rpc_metrics *(*rpc_metrics)(void *host);
	/* Publish a control message (QoS 1, not an event: capabilities,
	 * the shutdown answer); 0 or as publish. NULL: none is sent. */
	de_publish_fn control;
};

struct de_collector_stats {
	uint64_t cycles, events, events_failed, processes;
	uint64_t last_cycle_ns;          /* how long the last diff+publish took */
	uint64_t requests, request_errors, requests_denied;
	uint64_t cycles_delayed;         /* a cycle due while events waited */
	uint64_t events_lost;            /* not kept: outbox full (a gap was
	                                    declared), or could not be packed */
	uint64_t gaps_declared, resends, resyncs_full, resyncs_replayed;
};

struct de_collector {
	char id[DE_ID_BYTES_MAX];
	char bus_name[DE_BUS_NAME_BYTES_MAX];
	uint64_t incarnation;            /* start time, ns since the epoch */
	uint64_t started_ns;             /* monotonic */
	uint32_t scan_interval_ms;
	uint32_t max_processes;          /* 0: no limit */
	bool compute_hashes;
	bool stopping;
	struct de_procdiff diff;
	struct de_event_source src;
	struct de_collector_stats stats;
	struct de_collector_ops ops;
	void *host;
	struct de_outbox outbox;         /* retain_bytes_max: 64 MiB */
	bool cycle_waiting;              /* a cycle is due once it drains */
	bool losing;                     /* this cycle's events no longer fit:
	                                    a gap marker ends it */
	int64_t cycle_ms;                /* wall clock of the cycle running */
	uint64_t acked;                  /* the agent's last acknowledgement */
	/* who may call: lifecycle.*, config.* and collector.resync only the
	 * agent, health.* the agent and monitor.* (de_collector_set_agent) */
	char agent[DE_BUS_NAME_BYTES_MAX];
	const char *only_agent[2], *agent_monitors[3];
	struct de_access access;
	struct bus_sim_hooks *sim;       /* the simulator's build (bus.h):
	                                    de_collector_set_sim */
	/* control/collector/capabilities is due before the next event: at
	 * each READY, after config.update, when a heartbeat asks for them */
	bool caps_due;
	uint64_t caps_sent;
	/* control/agent/shutdown received (its id, 0: none): events are
	 * flushed, then the answer goes out and ops.stop is called */
	uint64_t shutdown_id;
	bool shutdown_answered;
};
#define DE_RETAIN_BYTES_DEFAULT (64ull << 20)
/* The simulator's hooks for c, its diff and its services (bus.h). */
void de_collector_set_sim(struct de_collector *c, struct bus_sim_hooks *h);
/* BUS_EINVAL for a bad id. */
int de_collector_init(struct de_collector *c, const char *id,
                      uint64_t incarnation, uint32_t ticks_per_s,
                      const struct de_collector_ops *ops, void *host);
void de_collector_free(struct de_collector *c);
/* The agent's bus name (DE_AGENT_NAME unless set): the one caller of its
 * lifecycle, config and resync services. BUS_EINVAL if too long. */
int de_collector_set_agent(struct de_collector *c, const char *agent);
/* Whether a cycle may run now: not while events of the last one still
 * wait for the bus (the interval stretches; counted once per delayed
 * cycle in cycles_delayed). */
bool de_collector_cycle_due(struct de_collector *c);
/* One cycle over a table read now (taken over): its events go into the
 * outbox and out as the bus takes them. */
void de_collector_cycle(struct de_collector *c, struct de_snapshot *s);
/* Hands waiting events to the bus (at on_drain). True when a cycle that
 * was delayed is due now (the host runs it at once). */
bool de_collector_pump(struct de_collector *c);
/* The connection is READY (again): every event the agent has not
 * acknowledged is sent again, in order, with the same bytes. */
bool de_collector_on_ready(struct de_collector *c);
/* The control topics (README: control topics). */
#define DE_TOPIC_CAPABILITIES "control/collector/capabilities"
#define DE_TOPIC_AGENT_SHUTDOWN "control/agent/shutdown"
#define DE_TOPIC_COLLECTOR_SHUTDOWN "control/collector/shutdown"
/* The collector's CollectorCapabilities, packed (malloc'd in *out).
 * 0 or BUS_ENOMEM. */
int de_collector_capabilities_pack(const struct de_collector *c,
                                   uint8_t **out, size_t *len);
/* A message on control/agent/shutdown from sender: BUS_EACCESS unless it is
 * the collector's agent, BUS_EPROTO if it does not decode; else 0: no
 * cycle runs any more, what is held is handed to the bus, then the answer
 * goes out on control/collector/shutdown and ops.stop is called (the host
 * exits once that is written). Returns at once; the host pumps on. */
int de_collector_shutdown(struct de_collector *c, const char *sender,
                          const uint8_t *data, size_t len);
/* One decoded request to the collector's handler for method, without a
 * bus (tests): the answer in *a (its buf malloc'd); returns a->code. */
int de_collector_call(struct de_collector *c, const char *method,
                      const char *sender, const ProtobufCMessage *req,
                      struct de_answer *a);
/* Serves one request addressed to the collector. */
void de_collector_serve(struct de_collector *c, struct bus_client *bc,
                        const struct bus_rpc_request *q,
                        struct de_served *out);
struct de_config_error {
	char field[48];
	char message[96];
};
#define DE_CONFIG_ERRORS_MAX 8
/* Checks a configuration for a process collector; fills errs (at most
 * DE_CONFIG_ERRORS_MAX) and returns how many. */
size_t de_collector_validate(const Daemoneye__CollectorConfig *cfg,
                             struct de_config_error *errs);

/* ---- the agent's intake of events: end to end (intake.c) ---------------------
 * Per collector (by the broker-stamped sender name), the incarnation and
 * the next sequence the agent will process. Events are processed in
 * sequence order only (go-back-N): an event already processed is a
 * duplicate (a re-send) and ignored; one ahead of the next is a gap — it
 * is ignored too, and the agent asks the collector to re-send from the
 * next (collector.resync), which falls back to a full resync (a DISCOVERY
 * of every live process, marked with the request's id) when it no longer
 * keeps them; the first event of that resync is accepted past the gap
 * (counted, with the events lost). A gap marker asks for a full resync.
 * The heartbeat carries what was processed (the collector forgets it) and
 * its reply the collector's last sequence sent (a tail lost in flight is
 * a gap too). The processed events keep a view of each collector's
 * process table: what the simulator's convergence check compares with
 * the truth. */
struct de_view_proc {
	uint32_t pid, ppid, uid;
	int64_t start_ms;
	char *name, *exe, *cmdline; /* cmdline: arguments joined by ' ' */
	char hash[65];
	bool live;                  /* false: a free slot (deleted) */
};
struct de_view {                /* open addressing on (pid, start_ms) */
	struct de_view_proc *v;
	size_t cap, n, used;
	uint64_t overflow;          /* DISCOVERYs past DE_VIEW_MAX */
};
#define DE_VIEW_MAX (1u << 22)  /* processes per collector (pid_max) */
const struct de_view_proc *de_view_find(const struct de_view *w,
                                        uint32_t pid, int64_t start_ms);

struct de_stream_stats {
	uint64_t events, duplicates, stale;
	uint64_t missing;     /* found missing (ahead, or by a heartbeat): a
	                         re-send was asked */
	uint64_t gaps;        /* lost for good: a full resync's jump, or a
	                         gap the collector declared */
	uint64_t events_lost, resyncs, resyncs_failed, malformed;
};
struct de_stream {
	char name[DE_BUS_NAME_BYTES_MAX];
	uint64_t incarnation;
	uint64_t next_seq;          /* the next sequence to process */
	bool resync_inflight;       /* asked, not answered */
	bool resync_wanted;         /* to ask (again) at resync_at_ns */
	bool resync_full;           /* the one asked */
	bool want_full;             /* the next to ask is a full one */
	uint64_t resync_id, resync_from, resync_at_ns;
	uint64_t resync_accept;     /* a full resync whose first event is
	                               still to come (0: none) */
	struct de_view view;
	struct de_stream_stats st;
};
struct de_intake_ops {
	/* Call collector.resync on st->name with q; report the outcome with
	 * de_intake_resync_done. */
	void (*resync)(void *host, const struct de_stream *st,
	               const Daemoneye__ResyncRequest *q);
	/* An event processed, in sequence (NULL: not told). */
	void (*processed)(void *host, const struct de_stream *st,
	                  const Daemoneye__BusrtEvent *ev, const uint8_t *data,
	                  size_t len);
	/* A gap, a resync, a new incarnation: worth a log line. */
	void (*note)(void *host, const struct de_stream *st, const char *what,
	             const char *detail);
	/* What the collector may forget of st's incarnation when upto were
	 * processed: upto, or less while something downstream (the embedded
	 * bridge: JetStream) has not stored them yet (NULL: upto). */
	uint64_t (*ack_cap)(void *host, const struct de_stream *st,
	                    uint64_t upto);
};
#define DE_STREAMS_MAX 256
struct de_intake {
	struct de_intake_ops ops;
	void *host;
	struct de_stream *s;
	size_t n, cap;
	uint64_t resync_retry_ns;   /* a failed resync is asked again after */
	uint64_t resync_seq;        /* ids of our requests */
	uint64_t unknown_senders;   /* events past DE_STREAMS_MAX streams */
};
void de_intake_init(struct de_intake *in, const struct de_intake_ops *ops,
                    void *host, uint64_t resync_retry_ns);
void de_intake_free(struct de_intake *in);
/* An event delivered from sender: 1 processed, 0 not (a duplicate, a
 * stale incarnation, past a gap), BUS_EPROTO malformed. */
int de_intake_event(struct de_intake *in, const char *sender,
                    const uint8_t *data, size_t len, uint64_t now);
/* The acknowledgement for a heartbeat request to name (0, 0: none). */
void de_intake_ack(const struct de_intake *in, const char *name,
                   uint64_t *incarnation, uint64_t *sequence);
/* A heartbeat reply of name: its incarnation and last sequence sent. */
void de_intake_heartbeat(struct de_intake *in, const char *name,
                         uint64_t incarnation, uint64_t last_sequence,
                         uint64_t now);
/* The outcome of a resync request (resp NULL: the call failed). */
void de_intake_resync_done(struct de_intake *in, const char *name,
                           uint64_t resync_id,
                           const Daemoneye__ResyncResponse *resp,
                           uint64_t now);
void de_intake_tick(struct de_intake *in, uint64_t now);
uint64_t de_intake_next_deadline(const struct de_intake *in);
struct de_stream *de_intake_find(const struct de_intake *in, const char *name);
/* A heartbeat request to name, acknowledging what was processed. */
void de_heartbeat_request(const struct de_intake *in, const char *name,
                          uint64_t seq, int64_t now_ms,
                          Daemoneye__HeartbeatRequest *q);

/* ---- the agent's collector supervision -----------------------------------
 * The agent's decisions about its collectors: start, stop, restart after a
 * death (exit, or heartbeats failing dead_after times in a row) with a
 * backoff, heartbeat scheduling. The host carries them out (spawn, kill,
 * RPC) and reports back. */
enum de_sup_state {
	DE_SUP_STOPPED = 0,
	DE_SUP_STARTING = 1, /* spawned, no heartbeat answered yet */
	DE_SUP_RUNNING = 2,
	DE_SUP_STOPPING = 3, /* signalled, waiting for the exit */
	DE_SUP_FAILED = 4,   /* died; a restart is scheduled */
};
const char *de_sup_state_name(enum de_sup_state s);

struct de_sup_ops {
	/* Start the collector's process; 0 and its pid, or a BUS_E* code and,
	 * in why (whylen bytes, "" on entry), the cause in the host's words
	 * ("/usr/sbin/procmond: no such file or directory"). */
	int (*spawn)(void *host, size_t idx, uint32_t *pid, char *why,
	             size_t whylen);
	/* Signal it: hard is SIGKILL, else SIGTERM. */
	void (*kill)(void *host, size_t idx, uint32_t pid, bool hard);
	/* Call health.heartbeat; report with de_sup_on_heartbeat(seq). */
	void (*heartbeat)(void *host, size_t idx, uint64_t seq);
	/* Call health.check (the comprehensive assessment: once a collector
	 * runs, then every health_check_interval_ns); report with
	 * de_sup_on_health_check(seq). NULL: never asked. */
	void (*health_check)(void *host, size_t idx, uint64_t seq);
	/* A decision worth a log line: what ("spawned", "died", ...). */
	void (*event)(void *host, size_t idx, const char *what,
	              const char *detail);
};

struct de_sup_collector {
	char id[DE_ID_BYTES_MAX];
	char type[DE_TYPE_BYTES_MAX];
	char bus_name[DE_BUS_NAME_BYTES_MAX];
	enum de_sup_state state;
	bool want_running;
	bool restart_after_exit; /* restart, or declared dead: start again */
	uint32_t pid;
	uint32_t restarts;       /* restarts after deaths and by request */
	uint32_t deaths_in_row;  /* reset by an answered heartbeat */
	uint32_t hb_failures;    /* consecutive */
	uint64_t hb_seq;
	bool hb_inflight;
	uint64_t next_hb_ns, restart_at_ns, kill_at_ns;
	uint64_t term_at_ns;     /* de_sup_shutdown: SIGTERM then (0: none) */
	uint64_t hc_seq;         /* health checks */
	bool hc_inflight;
	uint64_t next_hc_ns;
	int health;              /* the last status answered (HealthStatus),
	                            -1: none since it started */
	uint64_t started_ns;
	char last_error[256];
};

/* A collector id or type: 1..cap-1 bytes of [A-Za-z0-9_-] (one level of
 * a bus name: no '.', no wildcard). */
bool de_name_level_valid(const char *w, size_t cap);

struct de_sup {
	struct de_policies policies;
	struct de_sup_ops ops;
	void *host;
	struct bus_sim_hooks *sim; /* the simulator's build (bus.h) */
	struct de_sup_collector c[DE_COLLECTORS_MAX];
	size_t n;
};
void de_sup_init(struct de_sup *s, const struct de_policies *p,
                 const struct de_sup_ops *ops, void *host);
/* Adds a collector (stopped). Returns its index, or BUS_EINVAL (bad or
 * duplicate id or type) / BUS_ELIMIT (table full). */
int de_sup_add(struct de_sup *s, const char *id, const char *type);
/* The index of id, or -1. */
int de_sup_find(const struct de_sup *s, const char *id);
int de_sup_find_pid(const struct de_sup *s, uint32_t pid);
/* Requests (lifecycle.start/stop/restart): 0, or BUS_EINVAL when the
 * request makes no sense in the current state (the error says which). */
int de_sup_start(struct de_sup *s, size_t idx, uint64_t now);
int de_sup_stop(struct de_sup *s, size_t idx, bool force, uint64_t now);
int de_sup_restart(struct de_sup *s, size_t idx, uint64_t now);
/* The agent is stopping and asked collector idx over the bus
 * (control/agent/shutdown): STOPPING without a signal; SIGTERM once half
 * of stop_timeout has passed, SIGKILL at stop_timeout. */
int de_sup_shutdown(struct de_sup *s, size_t idx, uint64_t now);
/* Reports from the host. */
void de_sup_on_exit(struct de_sup *s, size_t idx, const char *how,
                    uint64_t now);
void de_sup_on_heartbeat(struct de_sup *s, size_t idx, uint64_t seq, bool ok,
                         uint64_t now);
/* status: the answer's HealthStatus, or -1 when unanswered. A health
 * check informs (logged, kept in health); heartbeats decide death. */
void de_sup_on_health_check(struct de_sup *s, size_t idx, uint64_t seq,
                            int status, uint64_t now);
void de_sup_tick(struct de_sup *s, uint64_t now);
/* UINT64_MAX when nothing is scheduled. */
uint64_t de_sup_next_deadline(const struct de_sup *s);

/* ---- the agent on the bus (agent.c) ----------------------------------------
 * What daemoneye-agent says to its collectors and answers about them, one
 * piece of code for the agent and the simulator: the heartbeat (with what
 * the intake processed, the agent's name, the wall time) and the health
 * check (with metrics), each answer judged (a heartbeat's sequence must
 * match; its incarnation is recorded and its last sequence goes to the
 * intake) and reported to supervision; lifecycle.start/stop/restart/
 * status served under the caller's access rule. The hosts spawn, signal,
 * audit, log or trace. */
struct de_agent_ops {
	uint64_t (*now)(void *host);    /* supervision's clock, ns */
	int64_t (*wall_ms)(void *host); /* requests' timestamps */
	/* A heartbeat or health check of collector idx ended, before
	 * supervision hears of it: ok (a good answer), health (health.check's
	 * status, -1: none), code (0, the RPC error code or a BUS_E* status),
	 * detail (why it failed, or the health message). Also while closed. */
	void (*exchanged)(void *host, size_t idx, const char *method,
	                  uint64_t seq, bool ok, int health, int code,
	                  const char *detail);
	/* lifecycle.start carried a configuration (validated) for idx. NULL:
	 * none is kept. */
	void (*configure)(void *host, size_t idx,
	                  const Daemoneye__CollectorConfig *cfg);
	/* supervision's deadlines may have moved (a host's timer re-arms);
	 * NULL: the host polls. Not called while closed. */
	void (*changed)(void *host);
};

struct de_agent {
	struct de_sup *sup;
	struct de_intake *intake;
	struct bus_client *bc;  /* the agent's client */
	const char *name;       /* its bus name: requests' sender */
	struct de_agent_ops ops;
	void *host;
	bool closed;            /* set: answers still arriving change nothing */
	int64_t started_ms[DE_COLLECTORS_MAX];
	uint64_t incarnation[DE_COLLECTORS_MAX]; /* from heartbeat answers */
	/* the last control/collector/capabilities and .../shutdown of each
	 * (NULL: none), shown in lifecycle.status */
	Daemoneye__CollectorCapabilities *caps[DE_COLLECTORS_MAX];
	Daemoneye__CollectorShutdown *down[DE_COLLECTORS_MAX];
};
void de_agent_free(struct de_agent *ag);
/* A message on a control topic from sender. For
 * control/collector/capabilities and control/collector/shutdown: kept for
 * the collector whose bus name sender is, *idx set; BUS_EACCESS when no
 * collector of ours is sender or the message names another, BUS_EPROTO
 * when it does not decode. BUS_ENOTSUP for other topics. */
int de_agent_control(struct de_agent *ag, const char *sender,
                     const char *topic, const uint8_t *data, size_t len,
                     size_t *idx);

void de_agent_init(struct de_agent *ag, struct de_sup *sup,
                   struct de_intake *in, struct bus_client *bc,
                   const char *name, const struct de_agent_ops *ops,
                   void *host);
/* Collector idx was spawned now: its incarnation is unknown until it
 * answers a heartbeat. */
void de_agent_spawned(struct de_agent *ag, size_t idx);
/* de_sup_ops.heartbeat and .health_check: the call, its judgement, the
 * report to supervision (de_sup_on_heartbeat / _on_health_check). */
void de_agent_heartbeat(struct de_agent *ag, size_t idx, uint64_t seq);
void de_agent_health_check(struct de_agent *ag, size_t idx, uint64_t seq);
/* A request to the agent: lifecycle.* served (acc: who may call them). */
void de_agent_serve(struct de_agent *ag, struct bus_client *c,
                    const struct bus_rpc_request *q,
                    const struct de_access *acc, struct de_served *out);
/* control/agent/status's payload (DE_TOPIC_AGENT_STATUS): lifecycle.status
 * of every collector with the agent's RPC metrics, a packed
 * CollectorStatusResponse in *out (the caller frees it). 0 or BUS_ENOMEM. */
#define DE_TOPIC_AGENT_STATUS "control/agent/status"
int de_agent_status_pack(const struct de_agent *ag, uint8_t **out,
                         size_t *len);
/* The agent stops its collectors: AgentShutdown (id, reason, the stop
 * timeout) on control/agent/shutdown at QoS 1, then de_sup_shutdown for
 * each; when that publish fails (no broker connection), de_sup_stop
 * (signals at once). Returns the publish's result. */
int de_agent_shutdown(struct de_agent *ag, uint64_t shutdown_id,
                      const char *reason, uint64_t now);
/* lifecycle.status of collector idx (strings point into ag's tables). */
void de_agent_status(const struct de_agent *ag, size_t idx,
                     Daemoneye__CollectorStatus *st);

#endif
