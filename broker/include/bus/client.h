/* SPDX-License-Identifier: Apache-2.0 */
/*
 * client.h — the BUS/RT client: a sans-I/O core and the API callers use.
 *
 * The core never touches a socket, a clock or a random source: a host
 * (broker/net for libuv sockets and for in-process "internal" clients of an
 * embedded broker, sim/ for the simulator, broker/tests for unit tests)
 * gives it the time, randomness and a byte stream through struct
 * bus_client_ops, and reports connects, bytes read, write completions and
 * closes. Callers use the same struct bus_client whatever the host:
 *
 *	bus_client_subscribe(c, masks, 2, done, arg);
 *	bus_client_publish(c, "events/process/lifecycle", buf, len,
 *	                   BUS_QOS_PROCESSED, done, arg);
 *	bus_client_rpc_call(c, "collector.process.p1", "health.check",
 *	                    params, plen, NULL, on_reply, arg);
 *
 * Errors are negative BUS_E* codes (bus_strerror names them). No callback
 * runs inside an API call: an operation that cannot start returns its error
 * and never calls its callback; one that started calls it exactly once.
 *
 * Outgoing frames are coalesced into one buffer that the host writes once
 * per loop turn (bus_client_flush), or at once when it holds flush_bytes or
 * a realtime frame. The reader parses every whole frame of each read.
 */
#ifndef BUS_CLIENT_H
#define BUS_CLIENT_H

#include "bus/bus.h"

struct bus_client;

enum bus_client_state {
	BUS_CLIENT_DISCONNECTED = 0, /* waiting to (re)connect */
	BUS_CLIENT_CONNECTING = 1,   /* the host is opening a connection */
	BUS_CLIENT_HANDSHAKE = 2,    /* connected, greeting and name */
	BUS_CLIENT_READY = 3,        /* registered: operations go out */
	BUS_CLIENT_CLOSED = 4,       /* closed for good; last state */
};
const char *bus_client_state_name(enum bus_client_state st);

/* RPC (PROTOCOL.md §6), carried in MESSAGE frames. */
enum {
	BUS_RPC_NOTIFICATION = 0x00,
	BUS_RPC_REQUEST = 0x01,
	BUS_RPC_REPLY = 0x11,
	BUS_RPC_ERROR = 0x12,
};
#define BUS_RPC_ERR_PARSE (-32700)
#define BUS_RPC_ERR_INVALID_REQUEST (-32600)
#define BUS_RPC_ERR_METHOD_NOT_FOUND (-32601)
#define BUS_RPC_ERR_INVALID_PARAMS (-32602)
#define BUS_RPC_ERR_INTERNAL (-32603)
#define BUS_RPC_ERR_NOT_FOUND (-32001)
/* the service refused the caller (DaemonEye's services: de_access) */
#define BUS_RPC_ERR_ACCESS (-32003)
/* Transport failures: -32000 minus the BUS/RT result code (0x71..0x79). */
#define BUS_RPC_ERR_TRANSPORT(res) (-32000 - (int)(res))

/* A frame delivered to this client. sender and topic are NUL-terminated
 * and valid only during the callback, like data. */
struct bus_delivery {
	uint8_t kind; /* BUS_OP_PUBLISH, BUS_OP_MESSAGE or BUS_OP_BROADCAST */
	bool realtime;
	const char *sender;
	const char *topic; /* PUBLISH only, else NULL */
	const uint8_t *data;
	size_t len;
};
/* One whole broker->client delivery frame (publish, message, broadcast)
 * of n bytes, header included: its parts, pointing into it. 0, or
 * BUS_EPROTO (not such a frame, or its length is not n). */
int bus_delivery_decode(const uint8_t *p, size_t n, struct bus_delivery *d);

/* An RPC request or notification addressed to this client. Answer a
 * request (call_id != 0) with bus_client_rpc_reply or bus_client_rpc_error,
 * now or later; a notification has call_id 0 and method NULL. */
struct bus_rpc_request {
	const char *sender;
	uint32_t call_id;
	const char *method;
	const uint8_t *params;
	size_t params_len;
	bool realtime;
};

/* The outcome of an RPC call: code 0 and the result, or an error code (the
 * server's, or BUS_RPC_ERR_TRANSPORT(...)) and the error message bytes. */
struct bus_rpc_result {
	int code;
	const uint8_t *data;
	size_t len;
	uint32_t attempts;
};

/* Timeouts and retries of one RPC call. An attempt fails when its timeout
 * passes, the target is not registered, or the connection drops; then the
 * call is retried after backoff_ns (doubling up to backoff_max_ns; 0 means
 * at once) while attempts <= retries and the overall total_ns bound (0:
 * none) allows. An error reply from the server is final. */
struct bus_rpc_policy {
	uint64_t timeout_ns;
	uint32_t retries;
	uint64_t backoff_ns;
	uint64_t backoff_max_ns;
	uint64_t total_ns;
	/* send requests with QoS none (BUS/RT's QoS 0): the broker does not
	 * acknowledge them, so an unregistered target is known only at the
	 * timeout; false (the default): QoS processed, it fails at once */
	bool no_ack;
};

typedef void (*bus_done_fn)(struct bus_client *c, int status, void *arg);
typedef void (*bus_rpc_fn)(struct bus_client *c, int status,
                           const struct bus_rpc_result *r, void *arg);

struct bus_client_handlers {
	void (*on_delivery)(struct bus_client *c, const struct bus_delivery *d,
	                    void *arg);
	/* NULL: MESSAGE frames that look like RPC requests go to on_delivery */
	void (*on_rpc)(struct bus_client *c, const struct bus_rpc_request *req,
	               void *arg);
	/* state changes; reason is 0 or why the connection ended */
	void (*on_state)(struct bus_client *c, enum bus_client_state st,
	                 int reason, void *arg);
	/* the output buffer drained after an operation answered BUS_EAGAIN */
	void (*on_drain)(struct bus_client *c, void *arg);
	void *arg;
};

/* TLS files (net.h: bus_server_listen_tls, tls:// clients). */
struct bus_tls_config {
	const char *cert_file; /* PEM chain: the listener's; a client's own */
	const char *key_file;  /* PEM private key of cert_file */
	const char *ca_file;   /* PEM CAs: a client verifies the broker with
	                          them, a listener its clients */
	bool verify_client;    /* listener: a client certificate signed by
	                          ca_file is required; its CN is the peer's
	                          identity (ACL `cn`) */
};

struct bus_client_config {
	const char *name;             /* copied; required */
	uint64_t op_timeout_ns;       /* handshake steps and ACKs (5 s) */
	uint64_t ping_interval_ns;    /* ping when idle this long (1 s) */
	uint64_t idle_timeout_ns;     /* silent broker: reconnect (10 s; 0 off) */
	bool reconnect;               /* (true) */
	uint64_t reconnect_min_ns;    /* backoff 100 ms ... */
	uint64_t reconnect_max_ns;    /* ... doubling to 5 s ... */
	uint32_t reconnect_jitter_pct; /* ... +-20 % */
	size_t flush_bytes;           /* write at once past this (64 KiB) */
	size_t out_bytes_max;         /* beyond: BUS_EAGAIN (16 MiB) */
	uint32_t payload_bytes_max;   /* incoming frames (64 MiB) */
	uint32_t calls_max;           /* RPC calls in flight (65535 max) */
	struct bus_rpc_policy rpc;    /* default policy (5 s, no retry) */
	uint32_t rpc_metrics_max;     /* (target, method) rows of RPC
	                                 metrics, then one "other" row (64;
	                                 0: only the "other" row) */
	struct bus_allocator allocator; /* zeroed: libc */
	int64_t broker_uid;           /* a Unix socket's broker must run as
	                                 this uid (SO_PEERCRED), or the client
	                                 sends nothing and fails; -1 (the
	                                 default): root or the client's own */
	/* tls://HOST:PORT (net.h): the CA to verify the broker against (NULL
	 * or no ca_file: the system's) and a client certificate (optional);
	 * the caller keeps it alive. Unused by the core. */
	const struct bus_tls_config *tls;
	struct bus_sim_hooks *sim;    /* the simulator's build (bus.h) */
};
void bus_client_config_defaults(struct bus_client_config *cfg);

/* ---- host side ---------------------------------------------------------- */
struct bus_client_ops {
	uint64_t (*now)(void *host);    /* monotonic nanoseconds */
	uint64_t (*random)(void *host); /* jitter; the simulator seeds it */
	/* Open a connection; later bus_client_on_connected or _on_close. */
	void (*connect)(void *host);
	/* Write buffers kept alive until bus_client_on_written; one write in
	 * flight at a time. */
	void (*write)(void *host, const struct bus_iov *iov, size_t n);
	/* Close the connection; later bus_client_on_close. */
	void (*close)(void *host);
};

/* Returns NULL on bad config (no name, bad values) or out of memory. The
 * client starts DISCONNECTED; bus_client_start asks for a connection. */
struct bus_client *bus_client_new(const struct bus_client_config *cfg,
                                  const struct bus_client_ops *ops, void *host,
                                  const struct bus_client_handlers *h);
void bus_client_start(struct bus_client *c);
void bus_client_on_connected(struct bus_client *c);
void bus_client_on_bytes(struct bus_client *c, const void *data, size_t len);
void bus_client_on_written(struct bus_client *c, int status);
/* The connection is gone, or the connect failed (status < 0). */
void bus_client_on_close(struct bus_client *c, int status);
void bus_client_on_tick(struct bus_client *c);
uint64_t bus_client_next_deadline(const struct bus_client *c);
/* End of a loop turn: write what is buffered. */
void bus_client_flush(struct bus_client *c);
/* Frees the core: pending operations fail with BUS_ECLOSED first. */
void bus_client_free(struct bus_client *c);
bool bus_client_has_pending_writes(const struct bus_client *c);

/* ---- caller side -------------------------------------------------------- */
/* qos: 0..3 (BUS_QOS_PROCESSED | BUS_QOS_REALTIME). done is called with
 * the broker's answer when qos has BUS_QOS_PROCESSED, and must be NULL
 * otherwise. Not READY: BUS_ECLOSED. Buffer full: BUS_EAGAIN. */
int bus_client_publish(struct bus_client *c, const char *topic,
                       const void *data, size_t len, int qos, bus_done_fn done,
                       void *arg);
int bus_client_publish_for(struct bus_client *c, const char *topic,
                           const char *receiver, const void *data, size_t len,
                           int qos, bus_done_fn done, void *arg);
int bus_client_send(struct bus_client *c, const char *target,
                    const void *data, size_t len, int qos, bus_done_fn done,
                    void *arg);
int bus_client_broadcast(struct bus_client *c, const char *mask,
                         const void *data, size_t len, int qos,
                         bus_done_fn done, void *arg);

/* Subscriptions and exclusions are the client's desired state: recorded at
 * once, sent now when READY, and sent again after every reconnect. done
 * (may be NULL) gets the broker's answer to this call's frame, or
 * BUS_ECLOSED if it could not be sent now (the masks stay recorded). Masks
 * the broker rejects (BUS_EDATA: a limit) are forgotten. */
int bus_client_subscribe(struct bus_client *c, const char *const *masks,
                         size_t n, bus_done_fn done, void *arg);
int bus_client_unsubscribe(struct bus_client *c, const char *const *masks,
                           size_t n, bus_done_fn done, void *arg);
int bus_client_exclude(struct bus_client *c, const char *const *masks,
                       size_t n, bus_done_fn done, void *arg);
int bus_client_unexclude(struct bus_client *c, const char *const *masks,
                         size_t n, bus_done_fn done, void *arg);

/* Calls method on target; policy NULL uses the config's. done gets the
 * outcome exactly once. A call started while not READY waits for its
 * first attempt like a retry (it fails if the policy allows no wait). */
int bus_client_rpc_call(struct bus_client *c, const char *target,
                        const char *method, const void *params, size_t len,
                        const struct bus_rpc_policy *policy, bus_rpc_fn done,
                        void *arg);
/* A notification (no call id, never answered); done as for publish. */
int bus_client_rpc_notify(struct bus_client *c, const char *target,
                          const void *data, size_t len, int qos,
                          bus_done_fn done, void *arg);
/* BUS/RT's call0: a request with call id 0, which the server handles and
 * does not answer; done (qos with BUS_QOS_PROCESSED only, else NULL) gets
 * the broker's ACK. */
int bus_client_rpc_call0(struct bus_client *c, const char *target,
                         const char *method, const void *params, size_t len,
                         int qos, bus_done_fn done, void *arg);
/* A reply or error may go past out_bytes_max by BUS_CLIENT_REPLY_SLACK:
 * one refused for a full buffer would cost its caller a timeout and a
 * retry (their number is bounded by the requests read). */
#define BUS_CLIENT_REPLY_SLACK (64u << 10)
int bus_client_rpc_reply(struct bus_client *c, const char *target,
                         uint32_t call_id, const void *data, size_t len);
int bus_client_rpc_error(struct bus_client *c, const char *target,
                         uint32_t call_id, int code, const void *msg,
                         size_t len);

/* ---- RPC metrics --------------------------------------------------------
 * Every call this client made, when it finished, per (target, method):
 * calls, successes, errors by code, timeouts, retries, and the latency
 * from bus_client_rpc_call to done (retries and backoff included) in a
 * log-linear histogram: 8 buckets per power of two from 1 us, so a
 * quantile is at most 12.5 % above the true one. Rows are kept in the
 * order of their first call, up to rpc_metrics_max, then one "other"
 * row (target and method NULL) takes every pair past it. */
#define BUS_RPC_HIST_SUB 8
#define BUS_RPC_HIST_BUCKETS (BUS_RPC_HIST_SUB * 26) /* to 2^28 us: 268 s */
#define BUS_RPC_CODES_MAX 8
struct bus_rpc_metric {
	char *target, *method; /* NULL: the "other" row */
	uint32_t hash;
	uint64_t calls;        /* finished: ok + errors + timeouts */
	uint64_t ok, errors, timeouts;
	uint64_t retries;      /* attempts after the first */
	struct {
		int32_t code;
		uint64_t n;
	} codes[BUS_RPC_CODES_MAX]; /* errors by code, first seen first */
	uint64_t codes_other;  /* errors of codes past the first 8 */
	uint64_t latency_ns_sum;
	uint64_t hist[BUS_RPC_HIST_BUCKETS];
};
struct bus_rpc_metrics {
	struct bus_rpc_metric *rows, other;
	uint32_t n, max;
};
const struct bus_rpc_metrics *bus_client_rpc_metrics(const struct bus_client *c);
/* The upper bound (ns) of histogram bucket i: a latency v is in the first
 * bucket whose bound is above it (the last takes everything past). */
uint64_t bus_rpc_hist_bound_ns(uint32_t i);
/* The q-quantile (0 < q <= 1) of m's latencies as its bucket's upper
 * bound, ns; 0 when m has no call. */
uint64_t bus_rpc_metric_quantile_ns(const struct bus_rpc_metric *m, double q);
/* Each figure of each row (the "other" row when it has calls) as a
 * flat name and value, for map<string, double> reports: NAME is
 * rpc.TARGET.METHOD.{calls,ok,errors,timeouts,retries,p50_ms,p99_ms,
 * p999_ms,mean_ms} and rpc.TARGET.METHOD.error.CODE ("other" for the
 * other row). fn returns false to stop. */
void bus_rpc_metrics_each(const struct bus_rpc_metrics *t,
                          bool (*fn)(void *arg, const char *name,
                                     double value),
                          void *arg);

/* Graceful close: no more reconnects; what is buffered is written, then
 * the connection closes and the state becomes CLOSED. Hosts free what
 * they own after that last on_state. */
void bus_client_close(struct bus_client *c);

/* The client core's structural invariants (its buffers, the ACKs and
 * calls it tracks, what each state allows): 0, or BUS_EPROTO with the
 * first broken one in why. Read-only; for tests and the simulator. */
int bus_client_check_invariants(const struct bus_client *c, char *why,
                                size_t len);
enum bus_client_state bus_client_state(const struct bus_client *c);
const char *bus_client_name(const struct bus_client *c);
size_t bus_client_out_pending(const struct bus_client *c);
void *bus_client_host(const struct bus_client *c);

struct bus_client_stats {
	uint64_t frames_out, bytes_out; /* written: counted at write completion */
	uint64_t frames_in, bytes_in;
	uint64_t writes;        /* ops->write calls */
	uint64_t acks, ack_timeouts;
	uint64_t connects, disconnects, handshake_failures;
	uint64_t rpc_calls, rpc_attempts, rpc_retries, rpc_timeouts;
	uint64_t rpc_requests_in;
	uint64_t pings;
	uint64_t nops_in;       /* keepalive NOPs from the broker (in frames_in) */
	uint64_t stream_in;     /* bytes of the broker's streams handled: the
	                           handshakes' and every frame parsed, in
	                           order (a host's accounting finds which
	                           frames those are in the bytes it carried) */
};
void bus_client_stats(const struct bus_client *c, struct bus_client_stats *out);

/* Maps a broker ACK result byte to 0 or a negative BUS_E* code. */
int bus_result_errno(uint8_t result);

#endif
