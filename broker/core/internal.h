/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h — the broker core's private structures, shared by the files of
 * broker/core. Nothing here does I/O or reads a clock; every allocation goes
 * through the core's allocator hook (bus__alloc & co.).
 */
#ifndef BUS_CORE_INTERNAL_H
#define BUS_CORE_INTERNAL_H

#include "bus/bus.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Assertions stay on in release builds: a broken invariant is a bug. */
#define BUS_ASSERT(cond)                                                     \
	do {                                                                 \
		if (!(cond))                                                 \
			bus__assert_fail(#cond, __FILE__, __LINE__);         \
	} while (0)
_Noreturn void bus__assert_fail(const char *expr, const char *file, int line);

/* ---- allocation -------------------------------------------------------- */
void *bus__alloc(const struct bus_allocator *a, size_t size);
void *bus__realloc(const struct bus_allocator *a, void *ptr, size_t size);
void bus__free(const struct bus_allocator *a, void *ptr);
void *bus__calloc(const struct bus_allocator *a, size_t size);
char *bus__strndup(const struct bus_allocator *a, const char *s, size_t len);

/* ---- UTF-8 ------------------------------------------------------------- */
bool bus__utf8_valid(const uint8_t *s, size_t len);
/* The length (1..4) of the UTF-8 character at s, or 0 if none starts
 * there (overlong forms, surrogates and past U+10FFFF are none). */
size_t bus__utf8_seq(const uint8_t *s, size_t len);
/* Copies at most n - 1 bytes of s (len) into dst, NUL-terminated, cut
 * before a character that does not fit whole (s is valid UTF-8). */
void bus__copy_cut(char *dst, size_t n, const char *s, size_t len);

/* ---- string-keyed open-addressing map (lookups only: its iteration order
 * is a function of the keys and the insertion history, never of addresses,
 * but no output may depend on it anyway) ---------------------------------- */
struct bus_strmap_slot {
	char *key; /* owned, NUL-terminated; NULL = empty, TOMBSTONE = deleted */
	uint32_t key_len;
	uint32_t hash;
	void *value;
};
struct bus_strmap {
	struct bus_strmap_slot *slots;
	uint32_t cap;   /* power of two or 0 */
	uint32_t count; /* live keys */
	uint32_t used;  /* live + tombstones */
};
uint32_t bus__hash(const void *key, size_t len);
void **bus__strmap_get(const struct bus_strmap *m, const char *key, size_t len);
/* Inserts key (copied) with value; returns BUS_ENOMEM or 0; the key must
 * not be present. */
int bus__strmap_put(const struct bus_allocator *a, struct bus_strmap *m,
                    const char *key, size_t len, void *value);
bool bus__strmap_del(const struct bus_allocator *a, struct bus_strmap *m,
                     const char *key, size_t len);
void bus__strmap_free(const struct bus_allocator *a, struct bus_strmap *m);
/* The map's own copy of key (stable until the key is deleted), or NULL. */
const char *bus__strmap_key(const struct bus_strmap *m, const char *key,
                            size_t len);
/* Iteration: for (i = 0; i < m->cap; i++) if (bus__strmap_live(m, i)) ... */
bool bus__strmap_live(const struct bus_strmap *m, uint32_t i);

/* ---- indexed binary min-heap of deadlines: items are embedded in their
 * owners; ties break by insertion sequence, so the order never depends on
 * addresses. ---------------------------------------------------------------- */
struct bus_heap_item {
	uint64_t key;
	uint64_t seq;
	uint32_t idx; /* position in the heap, UINT32_MAX when not in it */
};
struct bus_heap {
	struct bus_heap_item **items;
	uint32_t count, cap;
	uint64_t seq;
};
int bus__heap_push(const struct bus_allocator *a, struct bus_heap *h,
                   struct bus_heap_item *it, uint64_t key);
/* Room for n items, so that pushes up to n cannot fail. */
int bus__heap_reserve(const struct bus_allocator *a, struct bus_heap *h,
                      uint32_t n);
void bus__heap_remove(struct bus_heap *h, struct bus_heap_item *it);
/* A new key for an item in the heap (its tie-break sequence stays). */
void bus__heap_update(struct bus_heap *h, struct bus_heap_item *it,
                      uint64_t key);
static inline struct bus_heap_item *bus__heap_top(const struct bus_heap *h)
{
	return h->count ? h->items[0] : NULL;
}
void bus__heap_free(const struct bus_allocator *a, struct bus_heap *h);

/* ---- MessagePack bounds: msgpack-c allocates for a container's declared
 * size before it reads the items, so a 5-byte "map of 4 G entries" would
 * ask for gigabytes. This walks the headers only: returns the size of the
 * first object at p, or 0 if it is malformed, nested deeper than depth_max
 * or declares more items than there are bytes left. -------------------- */
size_t bus__msgpack_check(const uint8_t *p, size_t n, unsigned depth_max);

/* ---- frames (frame.c) -------------------------------------------------- */
#define BUS_CLIENT_HDR_BYTES 9u
#define BUS_SERVER_HDR_BYTES 6u
#define BUS_ACK_BYTES 6u
/* the wire's layouts, packed: what every encoder and decoder assumes */
_Static_assert(BUS_CLIENT_HDR_BYTES == 4 + 1 + 4,
               "a client frame's header: op_id u32, op | qos << 6, len u32");
_Static_assert(BUS_SERVER_HDR_BYTES == 1 + 4 + 1,
               "a delivery's header: kind, len u32, reserved");
_Static_assert(BUS_ACK_BYTES == 1 + 4 + 1, "an ACK: 0xFE, op_id u32, result");
_Static_assert(BUS_OP_BROADCAST <= 0x3F && BUS_OP_MESSAGE <= 0x3F &&
                   BUS_OP_PUBLISH_FOR <= 0x3F,
               "every client op fits the flags' low 6 bits (QoS: the top 2)");
_Static_assert(BUS_PROTOCOL_VERSION <= 0xFFFF,
               "the greeting carries the version as a u16");
_Static_assert(BUS_SITE_N <= 32, "a run's armed fault sites are a u32 mask");

enum bus_decode {
	BUS_DECODE_OK = 0,        /* one frame; consumed bytes set */
	BUS_DECODE_NEED_MORE = 1, /* not a whole frame yet */
	BUS_DECODE_ERROR = 2,     /* protocol error; reason set */
};

struct bus_frame {
	uint32_t op_id;
	uint8_t op;  /* BUS_OP_*, BUS_OP_NOP for a ping */
	uint8_t qos; /* 0..3 */
	uint32_t len;
	const uint8_t *payload;
	size_t consumed; /* header + payload */
};

/* Decodes one client->broker frame from buf. Validates the header as soon
 * as it is whole (op known, ping without payload, length within
 * payload_bytes_max), so a 4 GiB length fails without waiting for it. */
enum bus_decode bus__frame_decode(const uint8_t *buf, size_t len,
                                  uint32_t payload_bytes_max,
                                  struct bus_frame *out, const char **reason);
bool bus__op_valid(uint8_t op);

/* A refcounted, immutable, fully encoded broker->client frame. Shared among
 * every receiver of a publish. */
struct bus_msg {
	uint32_t refs;
	uint32_t len;
	uint32_t queues; /* queue slots holding it: its bytes count once in
	                    the broker-wide total while any does */
	uint32_t mark;   /* scratch of the invariant check */
	uint8_t data[];
};
struct bus_core;
/* A frame of len bytes, one reference (small ones from the core's free
 * lists, frame.c); the last unref releases it. */
struct bus_msg *bus__msg_new(struct bus_core *core, size_t len);
static inline void bus__msg_ref(struct bus_msg *m) { m->refs++; }
void bus__msg_unref(struct bus_core *core, struct bus_msg *m);
/* Returns the free lists' blocks (bus_core_free). */
void bus__msg_pool_free(struct bus_core *core);
#define BUS_MSG_CLASSES 32u /* 16-byte steps up to 512 bytes */

/* Encodes a delivered frame: kind, sender, optional topic, data. */
struct bus_msg *bus__msg_delivery(struct bus_core *core, uint8_t kind,
                                  bool realtime, const char *sender,
                                  size_t sender_len, const char *topic,
                                  size_t topic_len, const void *data,
                                  size_t data_len);
struct bus_msg *bus__msg_ack(struct bus_core *core, uint32_t op_id,
                             uint8_t result);
void bus__put_u32le(uint8_t *p, uint32_t v);
uint32_t bus__get_u32le(const uint8_t *p);

/* ---- topics (topic.c) -------------------------------------------------- */
/* Normalises a mask for storage: with star_is_plus a "*" level becomes "+",
 * and a "#" level ends the mask. Writes into out (capacity >= len + 1) and
 * returns the new length. */
size_t bus__mask_normalize(const char *mask, size_t len, bool star_is_plus,
                           char *out);
/* Counts '/'-separated levels (an empty string is one level); _sep: levels
 * separated by sep ('.' in broadcast masks and client names). */
uint32_t bus__levels(const char *s, size_t len);
uint32_t bus__levels_sep(const char *s, size_t len, char sep);
/* What a mask of len bytes and levels costs the broker, charged against
 * the subscription budgets: its text twice (the client's set, a trie
 * level) and, per level, a trie node with its map slot and the
 * allocator's overhead: 369 bytes per level measured on 1,024 masks of
 * 128 levels (bench/hostile.py masks). */
#define BUS_MASK_LEVEL_CHARGE 368u
static inline uint64_t bus__mask_charge(size_t len, uint32_t levels)
{
	return 2 * (uint64_t)len + (uint64_t)levels * BUS_MASK_LEVEL_CHARGE;
}
/* True for ".broker", "control/broker" and every topic under them: the
 * broker's own. */
bool bus__topic_is_broker(const char *t, size_t len);
/* Matches a normalised mask against a topic (the reference the trie must
 * agree with; used directly for exclusions). */
bool bus__mask_match(const char *mask, size_t mlen, const char *topic,
                     size_t tlen);
/* Does mask r cover mask s (both normalised): does every topic s matches
 * match r too? Adds the levels compared to *steps. */
bool bus__mask_covers(const char *r, size_t rl, const char *s, size_t sl,
                      uint64_t *steps);
/* The same for broadcast masks ('.', '?' one level, '*' the rest). */
bool bus__bcast_covers(const char *r, size_t rl, const char *s, size_t sl);
/* Is there a topic (a name) both masks match? */
bool bus__mask_overlap(const char *a, size_t al, const char *b, size_t bl);
bool bus__bcast_overlap(const char *a, size_t al, const char *b, size_t bl);
/* Broadcast: names split on '.', "*" matches one or more remaining levels,
 * "?" exactly one. */
bool bus__bcast_match(const char *mask, size_t mlen, const char *name,
                      size_t nlen);
/* The literal part of a broadcast mask: the bytes before its first '?'
 * or '*' level (all of it if none). Every name the mask matches starts
 * with them. */
size_t bus__bcast_prefix(const char *mask, size_t mlen);

struct bus_subset {
	struct bus_conn **items;
	uint32_t count, cap;
};

struct bus_tnode {
	struct bus_tnode *parent;
	char *level; /* key in the parent's map, or "+" for the plus child */
	uint32_t level_len;
	struct bus_strmap children;
	struct bus_tnode *plus;
	struct bus_subset end;  /* masks ending here */
	struct bus_subset hash; /* masks with '#' after this level */
};

struct bus_trie {
	struct bus_tnode root;
	uint64_t visits; /* nodes entered by matching, for shape tests */
	uint64_t nodes;  /* below the root */
};

int bus__trie_add(const struct bus_allocator *a, struct bus_trie *t,
                  const char *mask, size_t len, struct bus_conn *c);
void bus__trie_remove(const struct bus_allocator *a, struct bus_trie *t,
                      const char *mask, size_t len, struct bus_conn *c);
void bus__trie_free(const struct bus_allocator *a, struct bus_trie *t);
/* Calls fn for every subscriber of a mask matching topic (a subscriber may
 * be reported more than once: the caller de-duplicates). */
typedef void (*bus_trie_visit_fn)(struct bus_conn *c, void *arg);
void bus__trie_match(struct bus_trie *t, const char *topic, size_t len,
                     bus_trie_visit_fn fn, void *arg);
/* Does any mask in t match topic? Stops at the first. */
bool bus__trie_any(struct bus_trie *t, const char *topic, size_t len);

/* ---- mask books (book.c): a client's subscriptions or exclusions, with
 * in the trie only the masks no other of the book covers ----------------- */
#define BUS_BOOK_COMPARE_MAX 1024u /* masks in the trie a book compares */
struct bus_mask_ent;
struct bus_book {
	struct bus_strmap set; /* normalised mask -> its entry (book.c) */
	struct bus_trie *trie; /* where the masks no other covers are */
	uint32_t in_trie;
	struct bus_mask_ent *work_first, *work_last; /* still to compare */
};
bool bus__book_has(const struct bus_book *b, const char *m, size_t ml);
/* Both 0 or BUS_ENOMEM; after a failed remove the book is only fit to be
 * freed (the caller cuts the client). */
int bus__book_add(const struct bus_allocator *a, struct bus_book *b,
                  const char *m, size_t ml, struct bus_conn *c);
int bus__book_remove(const struct bus_allocator *a, struct bus_book *b,
                     const char *m, size_t ml, struct bus_conn *c);
/* Compares queued masks while *steps (mask levels compared) is under
 * limit; a mask's comparisons, once begun, finish. True: work is left. */
bool bus__book_work(const struct bus_allocator *a, struct bus_book *b,
                    struct bus_conn *c, uint64_t *steps, uint64_t limit);
/* Takes its masks out of the trie and frees them. */
void bus__book_free(const struct bus_allocator *a, struct bus_book *b,
                    struct bus_conn *c);
/* NULL, or what is wrong with the book's structure. */
const char *bus__book_fault(const struct bus_book *b);

/* ---- connections and the core (core.c) --------------------------------- */
enum bus_conn_state {
	BUS_CS_GREETING,  /* waiting for the 3 echoed greeting bytes */
	BUS_CS_NAME_LEN,  /* waiting for the u16 name length */
	BUS_CS_NAME,      /* waiting for the name */
	BUS_CS_READY,     /* registered */
};

enum bus_close_state {
	BUS_CLOSE_NONE,
	BUS_CLOSE_AFTER_FLUSH, /* write what is queued, then close */
	BUS_CLOSE_REQUESTED,   /* ops->close called; waiting for on_close */
};

struct bus_conn {
	struct bus_core *core;
	void *ctx;
	uint64_t serial;
	struct bus_conn *prev, *next; /* all connections, by serial */
	enum bus_conn_kind kind;
	enum bus_conn_state state;
	enum bus_close_state close;
	bool registered;
	bool reading_paused;
	uint16_t name_expect;
	char *name;       /* NUL-terminated */
	size_t name_len;
	size_t primary_len; /* prefix before "%%", or name_len */
	struct bus_conn *primary; /* for a secondary */
	uint32_t secondaries;
	bool listed; /* scratch of client.list: matched its filter */
	char source[64];
	char port[16];
	/* input: rx_cap counts in the broker-wide input budget; a reader
	 * past it pauses (input_paused) in the FIFO in_next */
	uint8_t *rx;
	size_t rx_len, rx_cap;
	uint64_t rx_used; /* stream bytes taken (bus_conn_rx_used) */
	bool input_paused;
	struct bus_conn *in_next;
	/* output queue: a ring of shared frames */
	struct bus_msg **q;
	uint32_t q_cap, q_head, q_count, q_inflight;
	uint64_t q_bytes, q_inflight_bytes;
	bool dirty; /* on the flush list */
	struct bus_conn *dirty_next;
	/* time */
	uint64_t last_rx_ns, next_nop_ns, deadline_ns;
	uint64_t progress_ns; /* its last write completion, or when someone
	                         began to wait for it (block) */
	/* backpressure (block): the receiver this sender waits for, its
	 * place in that receiver's FIFO of waiters, and this connection's
	 * own waiters */
	struct bus_conn *wait_on;
	struct bus_conn *wait_prev, *wait_next;
	struct bus_conn *waiters_first, *waiters_last;
	/* subscriptions (their trie: the broker's) and exclusions (a trie of
	 * their own, so a check costs the topic's depth, not a scan); books
	 * with comparisons left are on the core's book list */
	struct bus_book subs, excl;
	struct bus_ident ident;             /* who the host says it is */
	bool out_dead; /* a write to it failed: it receives nothing more,
	                  but the frames it sent are still handled */
	const struct bus_acl_rule *rule;    /* its ACL rule (NULL: no ACL) */
	/* the last topic its rule let it publish on (a publisher repeats
	 * its topics): acl_pub_len > sizeof acl_pub means none */
	uint32_t acl_pub_len;
	char acl_pub[96];
	bool book_listed;
	struct bus_conn *book_next;
	struct bus_trie excl_trie;
	uint64_t mask_bytes; /* charged for its masks (bus__mask_charge) */
	uint64_t route_mark;
	uint64_t r_frames, r_bytes, w_frames, w_bytes;
	uint32_t plant_pubs; /* the simulator build's planted bugs: publishes
	                        queued for it */
	/* scratch of the invariant check: the check's number when it found
	 * this connection on the list (check_live) and in the input FIFO */
	uint64_t check_live, check_fifo;
	struct bus_tstat_row *ts_row; /* the row of its last publish */
	/* the core's timer (timer.c): its wake-up in the heap of them (never
	 * after its next deadline), its place in a tick's set of connections
	 * to visit (by serial), and on the list of large input buffers */
	struct bus_heap_item t_item, v_item;
	struct bus_conn *big_prev, *big_next;
	bool big_rx;
};


/* A .broker/info announcement raised during a call, sent at its end. */
struct bus_pending_ann {
	struct bus_pending_ann *next;
	const char *topic;
	const char *subject;
	char name[];
};

/* ---- statistics per topic prefix (tstats.c) ----------------------------- */
struct bus_tstat_row {
	char *key; /* the prefix (NULL: the "other" row) */
	uint32_t key_len, hash;
	uint32_t subscribers; /* receivers of its last publish */
	bool full; /* the key holds all the depth's levels (topics go on) */
	uint64_t frames_in, bytes_in, frames_out, bytes_out, drops;
};
struct bus_tstats {
	struct bus_tstat_row *rows, other;
	uint32_t n, max;
	uint32_t *idx, cap; /* open addressing: row index + 1, 0 empty */
};

/* A denial remembered for .broker diagnostics (the last BUS_DENIALS). */
#define BUS_DENIALS 16
struct bus_denial {
	uint64_t t_ns; /* Unix time */
	char what[16];
	char who[64];
	char obj[96];
};

struct bus_core {
	uint64_t check_gen; /* scratch of the invariant check: its number */
	uint64_t plant_n; /* the simulator build's planted bugs: a counter */
	struct bus_core_config cfg;
	struct bus_allocator a;
	struct bus_core_ops ops;
	void *host;
	uint64_t start_ns, realtime_base_ns, mono_base_ns, now_ns;
	uint64_t next_serial;
	struct bus_conn *first, *last;
	uint32_t conn_count;
	/* registered clients sorted by name (lookup and client.list order) */
	struct bus_conn **names;
	uint32_t names_count, names_cap;
	uint32_t primaries_count;
	uint32_t internal_names; /* registered internal clients */
	struct bus_trie trie;
	struct bus_conn *dirty_first, *dirty_last;
	struct bus_pending_ann *ann_first, *ann_last;
	uint64_t route_gen;
	struct bus_conn **rcv; /* scratch: receivers of one frame */
	uint32_t rcv_count, rcv_cap;
	struct bus_iov *iov; /* scratch for writes */
	uint32_t iov_cap;
	uint64_t queued_bytes;
	uint64_t mask_bytes; /* every client's, charged */
	struct bus_conn *book_first, *book_last; /* books with work left */
	/* the input budget: what every rx holds; the one reader that may go
	 * past it (so that a frame completes) and since when; the paused */
	uint64_t rx_bytes;
	struct bus_conn *in_owner;
	uint64_t in_owner_since_ns;
	struct bus_conn *in_first, *in_last;
	bool shutting_down;
	struct bus_stats st;
	struct bus_tstats ts;
	uint64_t next_stats_ns; /* control/broker/stats (UINT64_MAX: off) */
	struct bus_denial denials[BUS_DENIALS];
	uint32_t denials_n; /* ever; the ring holds the last BUS_DENIALS */
	/* shared single-byte and empty frames */
	struct bus_msg *m_byte[256]; /* lazily made handshake answers */
	struct bus_msg *m_nop;
	struct bus_msg *m_greeting;
	/* the timer (timer.c): every connection's wake-up; during a tick,
	 * the connections it visits, by serial, its phase (0: none) and the
	 * serial it is at; the connections with a large input buffer */
	struct bus_heap timers, visits;
	unsigned tick_phase;
	uint64_t tick_at;
	struct bus_conn *big_first;
	/* released small frames by size class (frame.c) */
	struct bus_msg *msg_pool[BUS_MSG_CLASSES];
	uint32_t msg_pooled; /* blocks on them, all classes */
};

struct bus_conn *bus__find_name(struct bus_core *core, const char *name,
                                size_t len);

/* ---- the timer (timer.c) ------------------------------------------------ */
#define RX_KEEP_BYTES 4096u /* an empty rx this small stays allocated */
/* Room for so many connections (before one is added). */
int timer__reserve(struct bus_core *core, uint32_t conns);
void timer__add(struct bus_core *core, struct bus_conn *c);
void timer__remove(struct bus_core *core, struct bus_conn *c);
/* One of c's deadlines may be earlier now, or its input buffer's size
 * changed: every such change calls it (the check finds a missed one). */
void timer__changed(struct bus_core *core, struct bus_conn *c);
/* The earliest of c's own deadlines. */
uint64_t timer__wake(const struct bus_core *core, const struct bus_conn *c);
/* The earliest connection deadline (UINT64_MAX: none). */
uint64_t timer__next(struct bus_core *core);
/* A tick's pass (1: timers and large buffers, 2: stall cuts) over the
 * connections that may act, by serial: begin, then next(prev) until NULL
 * (each call sets prev's wake-up again). */
void timer__pass_begin(struct bus_core *core, unsigned phase);
struct bus_conn *timer__pass_next(struct bus_core *core,
                                  struct bus_conn *prev);
/* c's place in the timer is consistent (the invariant check). */
bool timer__check(const struct bus_core *core, const struct bus_conn *c);

int bus__tstats_init(struct bus_core *core);
void bus__tstats_free(struct bus_core *core);
struct bus_tstat_row *bus__tstats_lookup(struct bus_core *core,
                                         const char *topic, size_t len,
                                         struct bus_tstat_row **cache);
/* The row of topic's prefix (made on its first publish; the "other" row
 * once the table is full), or NULL when topic statistics are off; cache:
 * the publisher's last row (or NULL), tried first and kept. Inline, as
 * the count below: they are on every publish's path. */
static inline struct bus_tstat_row *
bus__tstats_row(struct bus_core *core, const char *topic, size_t len,
                struct bus_tstat_row **cache)
{
	/* a publisher repeats its topics: its last row holds topic when
	 * topic is its key, or its key (all the depth's levels) then '/' */
	struct bus_tstat_row *r = cache ? *cache : NULL;
	if (r && len >= r->key_len && !memcmp(r->key, topic, r->key_len) &&
	    (len == r->key_len || (r->full && topic[r->key_len] == '/')))
		return r;
	return bus__tstats_lookup(core, topic, len, cache);
}
/* A publish of in_bytes of payload routed to receivers, delivered
 * (queued) to so many, out_bytes of payload each (in_bytes, or 0 when
 * none got it): bytes in and out count payload alike. */
static inline void bus__tstats_count(struct bus_tstat_row *r, size_t in_bytes,
                                     uint32_t receivers, uint32_t delivered,
                                     size_t out_bytes)
{
	if (!r)
		return;
	r->frames_in++;
	r->bytes_in += in_bytes;
	r->frames_out += delivered;
	r->bytes_out += (uint64_t)delivered * out_bytes;
	r->drops += receivers - delivered;
	r->subscribers = receivers;
}
/* control/broker/stats (brpc.c): the stats map, published. */
void bus__brpc_publish_stats(struct bus_core *core);
/* Cuts a connection now: unregister, drop its queue, ask the host to
 * close. */
void bus__conn_abort(struct bus_core *core, struct bus_conn *c);
/* Processes what c has buffered (a waiter that goes on). */
void bus__rx_drain(struct bus_core *core, struct bus_conn *c);
/* Tells the host to read c or not: it reads exactly when nothing holds
 * it (a receiver it waits for, the input budget, a close). */
void bus__conn_reading(struct bus_core *core, struct bus_conn *c);

/* ---- outgoing queues, policies, backpressure (queue.c) ------------------ */
#define BUS_IOV_BATCH 1024u /* frames per write at most */
_Static_assert(BUS_IOV_BATCH >= 1, "a write carries at least one frame");

enum queue_res { QUEUE_OK, QUEUE_DROPPED, QUEUE_CUT };
void queue__mark_dirty(struct bus_core *core, struct bus_conn *c);
void queue__unmark_dirty(struct bus_core *core, struct bus_conn *c);
uint64_t queue__block_deadline_ns(const struct bus_core *core);
/* Delivers m to every receiver collected in core->rcv; checked: a
 * sender's frame that queue__blocker let through (the block receivers
 * have room). Returns how many queued it (the others dropped it or were
 * cut). */
uint32_t queue__fan_out(struct bus_core *core, struct bus_msg *m,
                        bool realtime, bool checked);
/* Queues m for c, or applies c's policy (drop it, or cut c). */
enum queue_res queue__deliver(struct bus_core *core, struct bus_conn *c,
                              struct bus_msg *m, bool realtime);
/* Drops queued frames from index 'from' (relative to head) to the end. */
void queue__truncate(struct bus_core *core, struct bus_conn *c,
                     uint32_t from);
/* The write out completed (ok) or failed: its frames leave the queue. */
void queue__complete(struct bus_core *core, struct bus_conn *c, bool ok);
/* Starts a write of what is queued, unless one is out. */
void queue__write(struct bus_core *core, struct bus_conn *c);
/* Block: the connection a frame of sender must wait for, given the
 * receivers collected in core->rcv (len: the delivered frame's bytes;
 * answer: the frame wants an ACK or a reply), or NULL. */
struct bus_conn *queue__blocker(struct bus_core *core, struct bus_conn *sender,
                                size_t len, bool answer);
/* s waits for r: its reading pauses until r drains or goes. */
void queue__wait(struct bus_core *core, struct bus_conn *s, struct bus_conn *r);
/* c closes: it waits for nobody, and its waiters go on. */
void queue__wait_end(struct bus_core *core, struct bus_conn *c);
/* A write of c completed: progress; waiters go on below low water. */
void queue__progress(struct bus_core *core, struct bus_conn *c);
/* Cuts c if it is waited for and made no progress for the deadline. */
void queue__stall_check(struct bus_core *core, struct bus_conn *c);
/* When c would be stalled (UINT64_MAX: nobody waits for it). */
uint64_t queue__stall_deadline(const struct bus_core *core,
                               const struct bus_conn *c);
/* Enqueues a broker-originated frame (RPC reply, announcement) for c,
 * applying the slow-consumer policy (never parking). */
void bus__deliver_broker(struct bus_core *core, struct bus_conn *c,
                         struct bus_msg *m);
uint64_t bus__unix_ns(const struct bus_core *core);

/* ---- small queue facts, inline for the hot loops (queue.c) ------------- */
static inline enum bus_slow_policy queue__policy(const struct bus_core *core,
                                                 const struct bus_conn *c)
{
	return c->kind == BUS_KIND_INTERNAL ? core->cfg.internal_slow_policy
	                                    : core->cfg.slow_policy;
}

/* Room for a frame of len bytes in c's queue (block: below its high-water
 * mark); an empty queue takes any frame. */
static inline bool queue__room(const struct bus_core *core,
                               const struct bus_conn *c, size_t len)
{
	const struct bus_limits *l = &core->cfg.limits;
	return c->q_count < l->queue_frames_max &&
	       (c->q_bytes == 0 || c->q_bytes + len <= l->queue_bytes_max);
}

/* ---- shared by core.c, conn.c and route.c ------------------------------ */
#define BROKER_WARN_TOPIC ".broker/warn"
#define BROKER_INFO_TOPIC ".broker/info"
/* The mask books' comparisons (route.c): right after a frame that queued some, and then at ticks 10 ms apart
 * while any are left, in slices of so many mask levels compared: no frame
 * stalls the broker for more than a slice (64 K levels, about 1 ms; plus
 * the comparisons of the mask at hand), and a client that keeps queueing
 * comparisons (a cover added and removed in a loop) holds at most a
 * tenth of the broker's time, and only while it does. */
#define BUS_BOOK_SLICE_STEPS (1u << 16)
#define BUS_BOOK_TICK_NS 10000000ull
/* core.c */
uint32_t bus__names_lower(const struct bus_core *core, const char *name,
			  size_t len);
int bus__names_insert(struct bus_core *core, struct bus_conn *c);
void bus__names_remove(struct bus_core *core, struct bus_conn *c);
void bus__announce_later(struct bus_core *core, const char *topic,
			 const char *subject, const char *name);
void bus__core_end(struct bus_core *core);
/* conn.c */
void bus__conn_request_close(struct bus_core *core, struct bus_conn *c);
void bus__conn_close_after_flush(struct bus_core *core, struct bus_conn *c);
void bus__send_byte(struct bus_core *core, struct bus_conn *c, uint8_t b);
void bus__conn_unregister(struct bus_core *core, struct bus_conn *c);
void bus__audit(struct bus_core *core, const struct bus_conn *c,
		const char *what, const char *name, size_t nl,
		const char *obj, size_t ol);
void bus__handshake_refuse(struct bus_core *core, struct bus_conn *c,
			   uint8_t code, bool limit);
void bus__conn_register(struct bus_core *core, struct bus_conn *c,
			const uint8_t *name, size_t len);
/* route.c */
int bus__rcv_reserve(struct bus_core *core, uint32_t conns);
void bus__proto_error(struct bus_core *core, struct bus_conn *c);
void bus__books_unlist(struct bus_core *core, struct bus_conn *c);
void bus__books_tick(struct bus_core *core);
bool bus__on_frame(struct bus_core *core, struct bus_conn *c,
		   const struct bus_frame *f);

/* ---- the client's RPC metrics (broker/client/rpcstat.c) ---------------- */
struct bus_rpc_metrics;
/* A finished call: its status (0, BUS_ERPC with the remote code, or a
 * transport error: BUS_ETIMEDOUT counts as a timeout), attempts made and
 * the time from its start to its end. */
void bus__rpcm_record(const struct bus_allocator *a, struct bus_rpc_metrics *t,
                      const char *target, const char *method, int status,
                      int code, uint32_t attempts, uint64_t latency_ns);
void bus__rpcm_free(const struct bus_allocator *a, struct bus_rpc_metrics *t);

/* ---- the .broker RPC endpoint (brpc.c) --------------------------------- */
#define BUS_BROKER_NAME ".broker"
/* Handles an RPC payload sent to .broker by c; queues the reply. */
void bus__brpc_handle(struct bus_core *core, struct bus_conn *c,
                      const uint8_t *data, size_t len);
/* Publishes {"s": subject, "d": name?, "t": now} on topic. */
void bus__announce(struct bus_core *core, const char *topic,
                   const char *subject, const char *name);
/* Routes a publish from sender name (for broker-originated publishes). */
void bus__route_publish_from_broker(struct bus_core *core, const char *topic,
                                    const void *data, size_t len);

#endif
