/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bridge.h — busrt-bridge's decisions, without I/O (bridge.c): what a
 * frame from our broker becomes on NATS JetStream (its subject and its
 * message id), and the window of frames taken from the bus and not yet
 * stored by JetStream.
 *
 * Every frame taken stays in the window, in order, until JetStream
 * acknowledged storing it (a PubAck): a frame whose publish failed, timed
 * out, or was in flight when the connection dropped is published again,
 * with the same message id (Nats-Msg-Id), so the stream's deduplication
 * window keeps one copy — at least once from the bridge, once in the
 * stream. The window is bounded (frames and bytes): past its high-water
 * mark the host stops reading the broker, whose queue policy then makes
 * the publishers wait (backpressure; nothing is dropped here), and reads
 * again below the low-water mark (half).
 *
 * The message id is the event's own identity when the frame is a
 * DaemonEye BusrtEvent with an event_id ("<host>/<event_id>": the same
 * after a collector's re-send, a bridge restart or a broker restart);
 * for any other frame "<host>/<sender>/<bridge incarnation>/<n>", n
 * counting that sender's frames in this bridge run (unique, and stable
 * across re-sends within the run).
 *
 * Deterministic: time is the caller's, no random source, no order that
 * depends on addresses.
 */
#ifndef BUS_BRIDGE_H
#define BUS_BRIDGE_H

#include "bus/bus.h"

#define BUS_BR_HOST_BYTES_MAX 64
#define BUS_BR_PREFIX_BYTES_MAX 64

enum bus_br_state {
	BUS_BR_UNSENT = 0, /* to publish (again) */
	BUS_BR_SENT = 1,   /* published, no answer yet */
	BUS_BR_STORED = 2, /* JetStream acknowledged it; freed when oldest */
};

struct bus_br_entry {
	uint64_t token;       /* order taken, from 1 */
	char *subject, *msgid, *sender, *topic; /* NUL-terminated */
	uint8_t *data;
	size_t len;
	uint64_t incarnation, sequence; /* a BusrtEvent's (0: not one) */
	uint8_t state;        /* enum bus_br_state */
	uint32_t sends;       /* publishes so far */
	uint64_t sent_ns;     /* the last one's time */
};

struct bus_br_sender {            /* frame counts of non-event senders */
	char *name;
	uint64_t n;
};

struct bus_br_stats {
	uint64_t taken;        /* frames taken from the bus */
	uint64_t events;       /* of which BusrtEvents (message id = event_id) */
	uint64_t published;    /* publishes, re-sends included */
	uint64_t resent;       /* publishes after the first of a frame */
	uint64_t stored;       /* frames acknowledged (each once) */
	uint64_t duplicates;   /* acknowledgements JetStream marked duplicate */
	uint64_t errors;       /* publishes that failed or timed out */
	uint64_t resets;       /* connection losses (every SENT re-sent) */
	uint64_t late_acks;    /* answers for frames no longer in the window */
	uint64_t paused;       /* times the window reached its high water */
};

struct bus_br_config {
	char host[BUS_BR_HOST_BYTES_MAX];     /* subject token and id prefix */
	char prefix[BUS_BR_PREFIX_BYTES_MAX]; /* subject prefix ("daemoneye") */
	uint64_t incarnation;             /* the bridge's start time (ns) */
	size_t window_frames;             /* high water: frames (65536) */
	size_t window_bytes;              /* ... and bytes (64 MiB) */
	uint64_t ack_timeout_ns;          /* SENT this long: re-sent (10 s) */
};
void bus_br_config_defaults(struct bus_br_config *cfg);

struct bus_bridge {
	struct bus_br_config cfg;
	struct bus_br_entry **q;   /* ring, oldest first */
	size_t cap, head, n;   /* n entries from head */
	size_t send_from;      /* index (from head) before which none is
	                          UNSENT */
	size_t bytes;          /* held: data, names and ids */
	bool paused;           /* past high water, not yet below low */
	uint64_t next_token;
	struct bus_br_sender *senders;
	size_t n_senders;
	struct bus_br_stats st;
};

/* 0, or BUS_EINVAL (an empty or unusable host or prefix, a zero limit). */
int bus_br_init(struct bus_bridge *b, const struct bus_br_config *cfg);
void bus_br_free(struct bus_bridge *b);

/* NATS subject of a topic: prefix.host.token... with '/' separating
 * tokens; a character NATS gives a meaning ('.', '*', '>', space,
 * control) becomes '_', as does an empty token. 0, or BUS_EDATA if out
 * (cap bytes) is too small. */
int bus_br_subject(const char *prefix, const char *host, const char *topic,
               char *out, size_t cap);
/* A host name usable as one subject token (the same mapping). */
void bus_br_host_token(const char *name, char *out, size_t cap);

/* Takes a frame published by sender on topic: into the window, UNSENT.
 * Always accepted (the host stops reading once bus_br_paused says so; a read
 * already under way may take a little past the mark). 0 or BUS_ENOMEM. */
int bus_br_take(struct bus_bridge *b, const char *sender, const char *topic,
            const uint8_t *data, size_t len);
/* Past the high-water mark (and not yet back below the low one). */
bool bus_br_paused(const struct bus_bridge *b);

/* The oldest UNSENT entry, or NULL. The caller publishes it and calls
 * bus_br_sent. */
struct bus_br_entry *bus_br_next(struct bus_bridge *b);
void bus_br_sent(struct bus_bridge *b, struct bus_br_entry *e, uint64_t now);
/* JetStream's answer for msgid: stored (duplicate: it already held that
 * id), or not (error, timeout: published again). An answer for an id no
 * longer in the window is counted and ignored. Returns true when it
 * freed room below the low-water mark (the host reads again). */
bool bus_br_answer(struct bus_bridge *b, const char *msgid, bool stored,
               bool duplicate);
/* The connection to NATS dropped: every SENT entry is published again. */
void bus_br_reset(struct bus_bridge *b);
/* SENT entries older than ack_timeout_ns become UNSENT; how many. */
size_t bus_br_expire(struct bus_bridge *b, uint64_t now);

/* The acknowledgement sender's events may get upstream when upto were
 * processed: upto, or less while one of them (that incarnation's, at or
 * below upto) is still waiting in the window — the sequence before the
 * oldest such. What the agent tells a collector when the bridge is
 * embedded: the collector keeps, and re-sends after a reconnect,
 * everything JetStream has not stored yet. */
uint64_t bus_br_stored_through(const struct bus_bridge *b, const char *sender,
                               uint64_t incarnation, uint64_t upto);

size_t bus_br_pending(const struct bus_bridge *b);      /* entries not STORED */
size_t bus_br_held_bytes(const struct bus_bridge *b);

/* Structural invariants (ring, counts, states): 0 or BUS_EPROTO, why. */
int bus_br_check(const struct bus_bridge *b, char *why, size_t len);

#endif
