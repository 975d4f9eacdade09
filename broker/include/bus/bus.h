/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bus.h — the public API of the BUS/RT-compatible broker core.
 *
 * The core is sans-I/O: it never touches a socket, a clock, a random source,
 * a thread or the environment. A host (broker/net for libuv, sim/ for the
 * simulator, broker/tests/memhost for unit tests) feeds it events — a
 * connection opened, bytes read, a write completed, a connection closed,
 * time passing — and the core asks the host, through struct bus_core_ops,
 * to write buffers, to pause or resume reading a connection and to close one.
 *
 * Errors are values: 0 or a negative BUS_E* code (bus_strerror names them).
 */
#ifndef BUS_BUS_H
#define BUS_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUS_VERSION "0.1.0"

/* The broker's own control topics: only the broker publishes under
 * control/broker (a client's publish there is refused 0x79, as under
 * .broker). stats: every stats_interval_ns, the .broker stats map and the
 * topic statistics; diagnostics: each .broker diagnostics call's answer. */
#define BUS_CONTROL_BROKER "control/broker"
#define BUS_STATS_TOPIC "control/broker/stats"
#define BUS_DIAGNOSTICS_TOPIC "control/broker/diagnostics"
#define BUS_PROTOCOL_VERSION 1

/* ---- errors: one table, which also generates bus_strerror -------------- */
#define BUS_ERRNO_MAP(X)                                                     \
	X(EINVAL, -1, "invalid argument")                                    \
	X(ENOMEM, -2, "out of memory")                                       \
	X(EPROTO, -3, "protocol error")                                      \
	X(ELIMIT, -4, "limit exceeded")                                      \
	X(EBUSY, -5, "name already registered")                              \
	X(ENOTREG, -6, "client not registered")                              \
	X(ECONFIG, -7, "bad configuration")                                  \
	X(EIO, -8, "input/output error")                                     \
	X(ETIMEDOUT, -9, "timed out")                                        \
	X(ENOTSUP, -10, "not supported")                                     \
	X(ECLOSED, -11, "connection closed")                                 \
	X(EDATA, -12, "rejected by the broker: bad data or a limit")        \
	X(ENOTDELIV, -13, "not delivered: the receiver's queue is full")      \
	X(EACCESS, -14, "access denied")                                     \
	X(EAGAIN, -15, "output buffer full: try again after on_drain")       \
	X(ERPC, -16, "the remote procedure answered with an error")          \
	X(EOTHER, -17, "the broker reported an unspecified error")

enum bus_errno {
#define BUS__ERRNO_ENUM(name, value, text) BUS_##name = (value),
	BUS_ERRNO_MAP(BUS__ERRNO_ENUM)
#undef BUS__ERRNO_ENUM
};

const char *bus_strerror(int err);

/* ---- wire constants (PROTOCOL.md) --------------------------------------- */
enum bus_op {
	BUS_OP_NOP = 0x00,
	BUS_OP_PUBLISH = 0x01,
	BUS_OP_SUBSCRIBE = 0x02,
	BUS_OP_UNSUBSCRIBE = 0x03,
	BUS_OP_EXCLUDE = 0x04,
	BUS_OP_UNEXCLUDE = 0x05,
	BUS_OP_PUBLISH_FOR = 0x06,
	BUS_OP_MESSAGE = 0x12,
	BUS_OP_BROADCAST = 0x13,
	BUS_OP_ACK = 0xFE,
};

enum bus_result {
	BUS_RES_OK = 0x01,
	BUS_RES_NOT_REGISTERED = 0x71,
	BUS_RES_DATA = 0x72,
	BUS_RES_IO = 0x73,
	BUS_RES_OTHER = 0x74,
	BUS_RES_NOT_SUPPORTED = 0x75,
	BUS_RES_BUSY = 0x76,
	BUS_RES_NOT_DELIVERED = 0x77,
	BUS_RES_TIMEOUT = 0x78,
	BUS_RES_ACCESS = 0x79,
};

#define BUS_GREETING 0xEB
#define BUS_QOS_PROCESSED 0x1
#define BUS_QOS_REALTIME 0x2

/* ---- allocator hook: one per core, so tests can count or fail allocations */
struct bus_allocator {
	void *(*alloc)(void *ctx, size_t size);
	void *(*realloc)(void *ctx, void *ptr, size_t size);
	void (*free)(void *ctx, void *ptr);
	void *ctx;
};

/* ---- the simulator build only (-DBUS_SIM) ------------------------------------
 * Planted bugs, selected at run time by busrt-sim --plant, prove that each
 * of the simulator's checkers can fail. Nothing of this exists in any
 * other build: BUS_PLANTED is 0 there and the code folds away. */
enum bus_plant {
	BUS_PLANT_DUP = 1 << 0,          /* a published frame queued twice
	                                    (the first, then every 29th) */
	BUS_PLANT_SWAP = 1 << 1,         /* two of one sender's queued
	                                    publishes swapped (the first
	                                    chance, then every 17th) */
	BUS_PLANT_DROP_ACKED = 1 << 2,   /* each receiver's first publish
	                                    silently dropped */
	BUS_PLANT_NO_RESUBSCRIBE = 1 << 3, /* the client forgets to resubscribe */
	BUS_PLANT_NO_RESTART = 1 << 4,   /* supervision leaves the dead dead */
	BUS_PLANT_MISCOUNT = 1 << 5,     /* a frame read goes uncounted (the
	                                    first, then every 31st) */
	BUS_PLANT_LIFECYCLE = 1 << 6,    /* an event after a process's
	                                    TERMINATION: at its exit, and at
	                                    an exec (taken for an exit) */
	BUS_PLANT_CORRUPT = 1 << 7,      /* the first publish routed: a bit
	                                    of its payload flipped */
	BUS_PLANT_CHILD_FIRST = 1 << 8,  /* new processes newest pid first:
	                                    a new child's DISCOVERY before
	                                    its new parent's */
	BUS_PLANT_DROP_ON_EAGAIN = 1 << 9, /* the collector forgets the event
	                                      the bus refused (EAGAIN) */
	BUS_PLANT_NO_RESEND = 1 << 10,   /* at a reconnect, the collector
	                                    forgets what the agent has not
	                                    acknowledged */
	BUS_PLANT_ACL_OPEN = 1 << 11,    /* the ACL forgets to check publishes */
	BUS_PLANT_SVC_OPEN = 1 << 12,    /* a service forgets to check who
	                                    calls its lifecycle.* */
	BUS_PLANT_QBYTES = 1 << 13,      /* a queue's byte count keeps one
	                                    byte of each frame it lets go
	                                    (only the invariants see it) */
	BUS_PLANT_SVC_CLOSED = 1 << 14,  /* a service refuses even the
	                                    callers its rule names */
	BUS_PLANT_SHUTDOWN_WAITS = 1 << 15, /* a shutdown asked on the bus
	                                    arms no SIGTERM/SIGKILL: the agent
	                                    waits for a deaf collector forever */
};
/* Fault sites (FoundationDB's BUGGIFY): named places where the simulator
 * build may force a rare path that is correct but seldom taken. The
 * simulator arms sites from the seed and counts how often each was reached
 * and fired. The alloc sites are the simulator's allocator hooks (above);
 * net.one_byte is its network; the others are BUS_BUGGIFY in the cores. */
enum bus_site {
	BUS_SITE_CORE_ALLOC,      /* core.alloc: the broker core's allocation fails */
	BUS_SITE_CORE_QUEUE_FULL, /* core.queue_full: a receiver's queue is at its limit */
	BUS_SITE_CORE_WRITE_ONE,  /* core.write_one: a write carries one frame */
	BUS_SITE_CLIENT_ALLOC,    /* client.alloc: a client core's allocation fails */
	BUS_SITE_CLIENT_OUT_FULL, /* client.out_full: output at its limit: EAGAIN */
	BUS_SITE_NET_ONE_BYTE,    /* net.one_byte: a read takes one byte */
	BUS_SITE_N
};
/* The simulator's hand in one instance (a broker core's configuration
 * .sim, a client's, the services' structs): planted bugs, fault sites and
 * the slow-consumer policy's reports, per instance — several brokers in
 * one process each have their own, or none (NULL: every other use, and
 * every other build, where the macros fold away). */
struct bus_sim_hooks {
	uint32_t plant;         /* planted bugs on (enum bus_plant) */
	uint64_t plant_fired;   /* times a planted bug acted */
	/* does the site fire now? (NULL: never) */
	bool (*buggify)(void *arg, enum bus_site site);
	/* the slow-consumer policy acted on the connection whose host
	 * context is conn_ctx: frame (len bytes, as it would have been
	 * written) will never be written to it: dropped (drop_newest), or
	 * discarded from its queue when it is cut; frame NULL: it is cut
	 * (disconnect). The simulator excuses exactly these losses. */
	void (*policy)(void *arg, void *conn_ctx, const uint8_t *frame,
	               size_t len);
	void *arg;
};
#ifdef BUS_SIM
#define BUS_PLANTED(h, bit) ((h) && ((h)->plant & (bit)) != 0)
/* In a planted bug's condition, last: counts that it acted. */
#define BUS_PLANT_HIT(h) (++(h)->plant_fired != 0)
#define BUS_BUGGIFY(h, site) ((h) && (h)->buggify && (h)->buggify((h)->arg, site))
#define BUS_SIM_POLICY(h, ctx, f, n)                                          \
	((h) && (h)->policy ? (h)->policy((h)->arg, ctx, f, n) : (void)0)
#else
#define BUS_PLANTED(h, bit) (0 && (h))
#define BUS_PLANT_HIT(h) (0 && (h))
#define BUS_BUGGIFY(h, site) (0 && (h))
#define BUS_SIM_POLICY(h, ctx, f, n) ((void)(h))
#endif

/* ---- a small deterministic generator (splitmix64): one step of *state.
 * Hosts use it for reconnect jitter; the simulator for its sub-seeds. ----- */
uint64_t bus_splitmix64(uint64_t *state);

/* v in decimal at p, zero-padded to at least width digits (at most 20
 * digits or width); returns the end (no NUL). printf's job, without its
 * cost, for the hot paths that format numbers (event ids, trace lines). */
char *bus_put_u64(char *p, uint64_t v, int width);

/* ---- configuration ------------------------------------------------------ */
/* What the broker does when a receiver's queue is full (README "Slow
 * consumers"):
 *   block       — backpressure, the default: a frame for a receiver past
 *                 its high-water mark (its queue limits) stays unread in
 *                 its sender's input, and the sender's reading pauses
 *                 until the receiver drains below its low-water mark; a
 *                 receiver that makes no progress for block_deadline_ns
 *                 while someone waits for it is cut (disconnects_stalled).
 *                 Nothing is dropped.
 *   disconnect  — BUS/RT's: the receiver is cut (disconnects_slow);
 *   drop_newest — the frame is dropped for that receiver (drops_slow). */
enum bus_slow_policy {
	BUS_SLOW_DISCONNECT = 0,
	BUS_SLOW_DROP_NEWEST = 1,
	BUS_SLOW_BLOCK = 2,
};
/* "disconnect", "drop_newest", "block"; and back: 0, or BUS_EINVAL. */
const char *bus_slow_policy_name(enum bus_slow_policy p);
int bus_slow_policy_parse(const char *name, enum bus_slow_policy *out);

enum bus_conn_kind {
	BUS_KIND_LOCAL_IPC = 0,
	BUS_KIND_TCP = 1,
	BUS_KIND_INTERNAL = 2,
};

/* Every limit: X(type, name, what). One table generates the struct, the
 * .broker stats reply's "limits" and the configuration's limits keys. */
#define BUS_LIMITS_MAP(X)                                                     \
	X(uint32_t, payload_bytes_max, "client frame payload")                \
	X(uint32_t, name_bytes_max, "client name")                            \
	X(uint32_t, topic_bytes_max, "topic or mask")                         \
	X(uint32_t, topic_levels_max, "levels of a topic or mask")            \
	X(uint32_t, subscriptions_max, "masks per client (subscribe)")        \
	X(uint32_t, exclusions_max, "masks per client (exclude)")             \
	X(uint64_t, subscriptions_bytes_max, "masks per client, subscribe "    \
	                                     "and exclude: bytes charged")   \
	X(uint64_t, subscriptions_bytes_total_max, "all clients' masks, "     \
	                                           "bytes charged")          \
	X(uint32_t, connections_max, "registered socket clients (internal "   \
	                             "clients do not count)")                 \
	X(uint32_t, connections_per_peer_max, "registered clients of one "    \
	                                      "uid (root aside) or one TCP "  \
	                                      "address")                      \
	X(uint32_t, queue_frames_max, "outgoing queue, frames per client "    \
	                              "(block: the high-water mark)")         \
	X(uint64_t, queue_bytes_max, "outgoing queue, bytes per client "      \
	                             "(block: the high-water mark)")          \
	X(uint64_t, queued_bytes_total_max, "all queues together (a frame "   \
	                                    "shared by receivers once)")      \
	X(uint32_t, read_bytes_per_turn_max, "fairness: bytes read per "      \
	                                     "connection per loop turn")     \
	X(uint64_t, input_bytes_total_max, "all connections' buffered "       \
	                                   "input (past it, readers pause)") \
	X(uint32_t, rpc_params_bytes_max, "params of a .broker call, "        \
	                                  "checked before unpacking")

struct bus_limits {
#define BUS__LIMITS_FIELD(type, name, what) type name;
	BUS_LIMITS_MAP(BUS__LIMITS_FIELD)
#undef BUS__LIMITS_FIELD
};

/* ---- who a peer is, and what it may do (acl.c) -------------------------
 * The host tells the core who each connection is (bus_core_set_ident):
 * SO_PEERCRED for unix sockets, the process itself for internal clients,
 * the source address (and a verified TLS client certificate's CN) for
 * TCP. An ACL is an ordered list of rules; the first whose "who" holds for
 * the peer and whose "names" allow the name it registers is its rule for
 * the whole connection, and no rule means the registration is refused
 * (0x79). A rule's lists grant, each by allow and deny masks (deny wins):
 *   names      client names it may register (broadcast-mask syntax:
 *              collector.*, monitor.?)
 *   publish    topics it may publish on (topic masks: a topic is allowed
 *              when an allow mask matches it and no deny mask does)
 *   subscribe  masks it may subscribe (allowed when an allow mask covers
 *              the mask and no deny mask could match a topic with it)
 *   send       names it may send one-to-one frames (and RPCs) to
 *   broadcast  broadcast masks it may send (covered, as subscribe)
 * In a list's masks "{N}" stands for the N-th '.'-level of the client's
 * name (0 first) and "{name}" for the whole: events/{1}/# for
 * collector.process.p1 is events/process/#. .broker calls are always
 * allowed; publishing under .broker/ never (whatever the ACL). */
#define BUS_IDENT_GROUPS_MAX 32
struct bus_ident {
	bool cred;                /* uid, gid, pid known */
	uint32_t uid, gid, pid;
	uint32_t n_groups;        /* supplementary groups (SO_PEERGROUPS) */
	uint32_t groups[BUS_IDENT_GROUPS_MAX];
	char cn[64];              /* verified client certificate CN, or "" */
	uint8_t family;           /* 4 or 6: addr holds the source; else 0 */
	uint8_t addr[16];
};

/* "uid U gid G pid P", "cn CN from ADDR", "from ADDR" or "no
 * credentials": a peer in logs and audit lines. */
void bus_ident_text(const struct bus_ident *id, char *out, size_t cap);

/* One alternative of a rule's "who": every field set must hold. */
struct bus_acl_who {
	bool uid_set, gid_set;
	uint32_t uid, gid;        /* gid: primary or supplementary */
	char cn[64];              /* "" = any */
	uint8_t family, prefix;   /* family 0 = any address */
	uint8_t addr[16];
};

enum bus_acl_kind {
	BUS_ACL_NAMES,
	BUS_ACL_PUBLISH,
	BUS_ACL_SUBSCRIBE,
	BUS_ACL_SEND,
	BUS_ACL_BROADCAST,
	BUS_ACL_KINDS
};
extern const char *const bus_acl_kind_names[BUS_ACL_KINDS];

struct bus_acl_list {
	char **allow, **deny;
	uint32_t n_allow, n_deny;
};

struct bus_acl_rule {
	struct bus_acl_who *who;  /* any of them; none: anyone */
	uint32_t n_who;
	struct bus_acl_list l[BUS_ACL_KINDS];
	uint32_t reserved;        /* places of connections_max only this
	                             rule's clients take (the rest of them,
	                             and every other client, share the rest) */
	char label[96];           /* for audits: "file:line" or "default agent" */
};

struct bus_acl {
	struct bus_acl_rule *rules;
	uint32_t n_rules;
};

/* Does the peer match the rule's "who"? Is s allowed by the rule's list
 * (name: the client's, for {N})? The core's checks, for tests and tools. */
bool bus_acl_who_match(const struct bus_acl_rule *r, const struct bus_ident *id);
bool bus_acl_allows(const struct bus_acl_rule *r, enum bus_acl_kind k,
                    const char *name, size_t name_len, const char *s,
                    size_t len);
/* The first rule that lets id register name, or NULL. */
const struct bus_acl_rule *bus_acl_find(const struct bus_acl *acl,
                                        const struct bus_ident *id,
                                        const char *name, size_t len);
/* Does a name mask ('.' levels, '?' one level, '*' one or more) match
 * name? The broadcast masks' and the ACL's name lists' matching. */
bool bus_name_mask_match(const char *mask, const char *name);
/* Frees what an ACL holds (rules, lists, strings: all malloc'd). */
void bus_acl_free(struct bus_acl *acl);

/* What the core reports to the host's audit trail: a refusal. */
struct bus_audit {
	const char *what;         /* register, publish, subscribe, send,
	                             broadcast, revoked (an ACL reload) */
	const char *name;         /* the client's (or the one it asked for) */
	size_t name_len;
	const char *object;       /* topic, mask or target */
	size_t object_len;
	const struct bus_ident *ident;
	const char *rule;         /* its rule's label, or "" */
};

struct bus_core_config {
	struct bus_limits limits;
	uint64_t timeout_ns;          /* handshake steps, keepalive (-t) */
	enum bus_slow_policy slow_policy;          /* socket clients */
	enum bus_slow_policy internal_slow_policy; /* internal clients */
	uint64_t block_deadline_ns;   /* block: a receiver others wait for
	                                 that makes no progress this long is
	                                 cut (default: timeout_ns) */
	uint32_t low_water_percent;   /* block: waiting senders resume when
	                                 the receiver's queue is below this
	                                 share of its limits (50) */
	uint64_t stats_interval_ns;   /* control/broker/stats every so long
	                                 (10 s; 0: never) */
	uint32_t topic_stats_depth;   /* topic statistics per prefix of so
	                                 many levels (3; 0: none) */
	uint32_t topic_stats_rows;    /* prefixes kept, then one "other"
	                                 row (256) */
	bool star_is_plus;            /* '*' mask level means '+' */
	bool force_register;          /* a new client takes over a busy name */
	const struct bus_acl *acl;    /* NULL: every client may do anything;
	                                 the caller keeps it alive */
	struct bus_allocator allocator; /* zeroed: libc */
	struct bus_sim_hooks *sim;      /* the simulator's build: its hooks */
};

/* Defaults: standalone (busrtd) or embedded (design's figures). */
void bus_core_config_defaults(struct bus_core_config *cfg, bool embedded);
/* Checks relations between values; returns 0 or BUS_ECONFIG and names the
 * offending key in *what. */
int bus_core_config_check(const struct bus_core_config *cfg, const char **what);

/* ---- the core/host contract -------------------------------------------- */
struct bus_iov {
	const void *base;
	size_t len;
};

/* The core keeps every buffer of a write alive until the host reports the
 * completion with bus_core_on_written (or the connection is closed). At most
 * one write is in flight per connection. None of these may call back into
 * the core: a host defers its reactions to after the call returns. */
struct bus_core_ops {
	void (*write)(void *host, void *conn_ctx, const struct bus_iov *iov,
	              size_t iov_count);
	void (*set_reading)(void *host, void *conn_ctx, bool reading);
	/* Close the connection; the host later calls bus_core_on_close. */
	void (*close)(void *host, void *conn_ctx);
	/* A refusal for the audit trail (may be NULL). */
	void (*audit)(void *host, const struct bus_audit *a);
	/* The process's heap in use, bytes, for the stats the broker
	 * publishes (may be NULL: not reported). */
	uint64_t (*memory)(void *host);
};

struct bus_core;
struct bus_conn;

struct bus_core *bus_core_new(const struct bus_core_config *cfg,
                              const struct bus_core_ops *ops, void *host,
                              uint64_t now_ns, uint64_t realtime_ns);
void bus_core_free(struct bus_core *core);

/* A connection was accepted. Returns NULL when out of memory (the host
 * closes the socket). The greeting is written at once. source/port are
 * informative ("" for local sockets). */
struct bus_conn *bus_core_on_connect(struct bus_core *core, void *conn_ctx,
                                     enum bus_conn_kind kind,
                                     const char *source, const char *port,
                                     uint64_t now_ns);
/* Who the connection is (copied); before its first bytes. Without it a
 * connection has no credentials and matches only rules for anyone. */
void bus_core_set_ident(struct bus_core *core, struct bus_conn *conn,
                        const struct bus_ident *id);
/* Replaces the ACL (the caller keeps the new one alive and may free the
 * old one after): every registered client's rule is found again, and a
 * client whose name its identity no longer allows is cut. */
void bus_core_set_acl(struct bus_core *core, const struct bus_acl *acl);
/* Bytes read; any split works. */
void bus_core_on_bytes(struct bus_core *core, struct bus_conn *conn,
                       const void *data, size_t len, uint64_t now_ns);
/* The write in flight finished (status 0) or failed (status < 0). */
void bus_core_on_written(struct bus_core *core, struct bus_conn *conn,
                         int status, uint64_t now_ns);
/* The connection is gone (peer EOF, error, or after ops->close). The core
 * frees it; the host must not touch buffers of that connection any more. */
void bus_core_on_close(struct bus_core *core, struct bus_conn *conn,
                       uint64_t now_ns);
/* Time passed: keepalives, handshake and idle timeouts, block deadlines. */
void bus_core_on_tick(struct bus_core *core, uint64_t now_ns);
/* The next instant at which bus_core_on_tick has work; UINT64_MAX if none. */
uint64_t bus_core_next_deadline(const struct bus_core *core);
/* End of a loop turn: write what has been batched. */
void bus_core_flush(struct bus_core *core, uint64_t now_ns);
/* Announce shutdown on .broker/warn to every client and flush; the host
 * then closes every connection when the writes have completed. */
void bus_core_shutdown(struct bus_core *core, uint64_t now_ns);
/* True while any connection still has queued or in-flight bytes. */
bool bus_core_has_pending_writes(const struct bus_core *core);

/* ---- statistics: one table, which also generates the struct, the
 * .broker stats reply and the Prometheus text (X(name, kind, what): kind
 * counter, only ever grows, or gauge, a level now) ---------------------- */
#define BUS_STATS_MAP(X)                                                      \
	X(r_frames, counter,                                                  \
	  "frames read from clients")                                         \
	X(r_bytes, counter,                                                   \
	  "payload bytes read")                                               \
	X(w_frames, counter,                                                  \
	  "frames written to clients")                                        \
	X(w_bytes, counter,                                                   \
	  "bytes written")                                                    \
	X(connections, gauge,                                                 \
	  "open connections")                                                 \
	X(clients, gauge,                                                     \
	  "registered clients")                                               \
	X(queued_frames, gauge,                                               \
	  "frames in outgoing queues")                                        \
	X(queued_bytes, gauge,                                                \
	  "bytes in outgoing queues (a shared frame once)")                   \
	X(input_bytes, gauge,                                                 \
	  "bytes of buffered input (partial or waiting frames)")              \
	X(subscriptions_bytes, gauge,                                         \
	  "bytes charged for masks (subscribe, exclude)")                     \
	X(drops_slow, counter,                                                \
	  "frames dropped: drop_newest, or a frame not built")                \
	X(disconnects_slow, counter,                                          \
	  "receivers cut for queue overflow (disconnect)")                    \
	X(disconnects_stalled, counter,                                       \
	  "receivers cut: no progress while others waited for them "          \
	  "(block)")                                                          \
	X(backpressure_waits, counter,                                        \
	  "times a sender waited for a full receiver")                        \
	X(disconnects_idle, counter,                                          \
	  "clients cut for silence")                                          \
	X(disconnects_input, counter,                                         \
	  "clients cut: held the input budget while others waited, no "       \
	  "frame done (block deadline)")                                      \
	X(input_pauses, counter,                                              \
	  "times a reader paused for the input budget")                       \
	X(disconnects_proto, counter,                                         \
	  "clients cut for protocol errors")                                  \
	X(rejects_limit, counter,                                             \
	  "frames answered 0x72 for a limit")                                 \
	X(rejects_access, counter,                                            \
	  "frames refused 0x79: a publish to .broker/*")                      \
	X(denied_register, counter,                                           \
	  "registrations refused 0x79 by the ACL")                            \
	X(denied_publish, counter,                                            \
	  "publishes refused by the ACL")                                     \
	X(denied_subscribe, counter,                                          \
	  "subscribe frames refused by the ACL")                              \
	X(denied_send, counter,                                               \
	  "one-to-one frames refused by the ACL")                             \
	X(denied_broadcast, counter,                                          \
	  "broadcasts refused by the ACL")                                    \
	X(disconnects_acl, counter,                                           \
	  "clients cut by an ACL reload")                                     \
	X(rejects_rpc, counter,                                               \
	  ".broker calls answered with an error")                             \
	X(rejects_connections, counter,                                       \
	  "handshakes refused: connections_max")                              \
	X(rejects_handshake, counter,                                         \
	  "other refused handshakes")                                         \
	X(rejects_accept, counter,                                            \
	  "times the host refused connections at accept (no "                 \
	  "descriptor: every waiting one; no memory)")                        \
	X(tls_handshakes, counter,                                            \
	  "TLS handshakes completed")                                         \
	X(tls_failures, counter,                                              \
	  "TLS handshakes failed or timed out, sessions broken")              \
	X(tls_plaintext, counter,                                             \
	  "connections to a TLS listener that spoke plaintext")

struct bus_stats {
#define BUS__STATS_FIELD(name, kind, what) uint64_t name;
	BUS_STATS_MAP(BUS__STATS_FIELD)
#undef BUS__STATS_FIELD
};
void bus_core_stats(const struct bus_core *core, struct bus_stats *out);
/* The .broker stats map as MessagePack (with_topics: and topic_stats, as
 * on control/broker/stats) into *data (the caller frees it), for hosts
 * that render it (bus/prom.h). 0 or BUS_ENOMEM. */
int bus_core_stats_pack(struct bus_core *core, bool with_topics,
                        uint8_t **data, size_t *len);
/* The host refused connections before the core saw them (accept failed:
 * no descriptor, no memory): counted in rejects_accept. */
void bus_core_count_refused(struct bus_core *core);
/* The host's TLS outcomes, before or beside the core: 0 a handshake done,
 * 1 failed, 2 plaintext to a TLS listener (tls_* in stats). */
void bus_core_count_tls(struct bus_core *core, int outcome);
const struct bus_core_config *bus_core_config_get(const struct bus_core *core);
/* Counter of trie nodes visited by routing (for the shape tests). */
uint64_t bus_core_trie_visits(const struct bus_core *core);

/* Structural invariants (every subscription owned by a live client, queue
 * and broker-wide byte accounting within the caps, name index sorted,
 * counters consistent): 0, or BUS_EPROTO with the first broken one in why.
 * For fuzzers, tests and the simulator; it walks everything. */
int bus_core_check_invariants(const struct bus_core *core, char *why,
                              size_t len);

/* Per-connection, for hosts: the connection's name ("" before registration)
 * and whether it is registered. */
const char *bus_conn_name(const struct bus_conn *conn);
void *bus_conn_ctx(const struct bus_conn *conn);
/* Bytes the core read from conn and has not handled yet (a partial frame,
 * or frames waiting under backpressure). */
size_t bus_conn_input_pending(const struct bus_conn *conn);
/* Bytes of conn's stream the core has taken: its handshake and every
 * frame handled, in order (not what waits in its buffer, not what came
 * after a frame it closed the connection on). Frames end at offsets a
 * host can find in the bytes it carried, so with this a host knows
 * exactly which frames the broker read (the simulator's accounting). */
uint64_t bus_conn_rx_used(const struct bus_conn *conn);
/* Whether conn holds the subscription mask (as a client sends it; 0
 * when it cannot tell: no memory). For a host's checks: the simulator
 * holds a reconnected receiver's masks to what it had subscribed. */
bool bus_conn_subscribed(const struct bus_conn *conn, const char *mask);

#endif
