/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bridge.c — busrt-bridge's window and naming (bridge.h): no I/O, no
 * clock, no random source.
 */
#include "bus/bridge.h"
#include "bus/pb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_OVERHEAD 64 /* bytes counted per entry beyond its strings */

void bus_br_config_defaults(struct bus_br_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->prefix, sizeof(cfg->prefix), "daemoneye");
	cfg->window_frames = 65536;
	cfg->window_bytes = 64u << 20;
	cfg->ack_timeout_ns = 10000000000ull;
}

/* A character NATS subjects give a meaning to, or cannot carry. */
static bool tok_bad(unsigned char ch)
{
	return ch <= ' ' || ch == '.' || ch == '*' || ch == '>' || ch == 0x7f;
}

void bus_br_host_token(const char *name, char *out, size_t cap)
{
	size_t i = 0;
	for (; name[i] && i + 1 < cap; i++)
		out[i] = tok_bad((unsigned char)name[i]) ? '_' : name[i];
	if (!i && cap > 1)
		out[i++] = '_';
	if (cap)
		out[i] = 0;
}

int bus_br_subject(const char *prefix, const char *host, const char *topic,
               char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s.%s.", prefix, host);
	if (n < 0 || (size_t)n >= cap)
		return BUS_EDATA;
	size_t o = (size_t)n;
	bool empty = true; /* the current token has no character yet */
	for (const char *p = topic;; p++) {
		if (*p == '/' || !*p) {
			if (empty) {
				if (o + 1 >= cap)
					return BUS_EDATA;
				out[o++] = '_';
			}
			if (!*p)
				break;
			if (o + 1 >= cap)
				return BUS_EDATA;
			out[o++] = '.';
			empty = true;
			continue;
		}
		if (o + 1 >= cap)
			return BUS_EDATA;
		out[o++] = tok_bad((unsigned char)*p) ? '_' : *p;
		empty = false;
	}
	out[o] = 0;
	return 0;
}

int bus_br_init(struct bus_bridge *b, const struct bus_br_config *cfg)
{
	memset(b, 0, sizeof(*b));
	if (!cfg->host[0] || !cfg->prefix[0] || !cfg->window_frames ||
	    !cfg->window_bytes || !cfg->ack_timeout_ns)
		return BUS_EINVAL;
	for (const char *p = cfg->host; *p; p++)
		if (tok_bad((unsigned char)*p))
			return BUS_EINVAL;
	/* the prefix may hold several tokens, never an empty one */
	for (const char *p = cfg->prefix; *p; p++)
		if ((*p != '.' && tok_bad((unsigned char)*p)) ||
		    (*p == '.' && (p == cfg->prefix || p[1] == '.' || !p[1])))
			return BUS_EINVAL;
	b->cfg = *cfg;
	b->next_token = 1;
	return 0;
}

static void entry_free(struct bus_br_entry *e)
{
	if (!e)
		return;
	free(e->subject);
	free(e->msgid);
	free(e->sender);
	free(e->topic);
	free(e->data);
	free(e);
}

static size_t entry_bytes(const struct bus_br_entry *e)
{
	return ENTRY_OVERHEAD + e->len + strlen(e->subject) + strlen(e->msgid) +
	       strlen(e->sender) + strlen(e->topic) + 4;
}

void bus_br_free(struct bus_bridge *b)
{
	for (size_t i = 0; i < b->n; i++)
		entry_free(b->q[(b->head + i) % b->cap]);
	free(b->q);
	for (size_t i = 0; i < b->n_senders; i++)
		free(b->senders[i].name);
	free(b->senders);
	memset(b, 0, sizeof(*b));
}

static struct bus_br_entry *at(const struct bus_bridge *b, size_t i)
{
	return b->q[(b->head + i) % b->cap];
}

static bool over_high(const struct bus_bridge *b)
{
	return b->n >= b->cfg.window_frames || b->bytes >= b->cfg.window_bytes;
}

static bool below_low(const struct bus_bridge *b)
{
	return b->n <= b->cfg.window_frames / 2 &&
	       b->bytes <= b->cfg.window_bytes / 2;
}

bool bus_br_paused(const struct bus_bridge *b)
{
	return b->paused;
}

/* The frame's count among sender's non-event frames (from 1). */
static int sender_next(struct bus_bridge *b, const char *sender, uint64_t *n)
{
	for (size_t i = 0; i < b->n_senders; i++)
		if (!strcmp(b->senders[i].name, sender)) {
			*n = ++b->senders[i].n;
			return 0;
		}
	struct bus_br_sender *v =
	    realloc(b->senders, (b->n_senders + 1) * sizeof(*v));
	if (!v)
		return BUS_ENOMEM;
	b->senders = v;
	if (!(v[b->n_senders].name = strdup(sender)))
		return BUS_ENOMEM;
	v[b->n_senders++].n = 1;
	*n = 1;
	return 0;
}

/* The message id: the BusrtEvent's event_id, or the sender's count. */
static char *msgid_of(struct bus_bridge *b, struct bus_br_entry *e,
                      const char *sender, const uint8_t *data, size_t len,
                      bool *is_event)
{
	char *id = NULL;
	Daemoneye__BusrtEvent *ev = (Daemoneye__BusrtEvent *)bus_pb_unpack(
	    &daemoneye__busrt_event__descriptor, data, len,
	    BUS_PB_BUDGET_DEFAULT);
	*is_event = ev && ev->event_id && ev->event_id[0];
	if (*is_event) {
		e->incarnation = ev->incarnation;
		e->sequence = ev->sequence;
		size_t n = strlen(b->cfg.host) + strlen(ev->event_id) + 2;
		if ((id = malloc(n)))
			snprintf(id, n, "%s/%s", b->cfg.host, ev->event_id);
	}
	bus_pb_free(ev ? &ev->base : NULL);
	if (*is_event)
		return id;
	uint64_t k;
	if (sender_next(b, sender, &k))
		return NULL;
	size_t n = strlen(b->cfg.host) + strlen(sender) + 48;
	if ((id = malloc(n)))
		snprintf(id, n, "%s/%s/%llu/%llu", b->cfg.host, sender,
		         (unsigned long long)b->cfg.incarnation,
		         (unsigned long long)k);
	return id;
}

static int ring_grow(struct bus_bridge *b)
{
	size_t cap = b->cap ? b->cap * 2 : 64;
	struct bus_br_entry **q = malloc(cap * sizeof(*q));
	if (!q)
		return BUS_ENOMEM;
	for (size_t i = 0; i < b->n; i++)
		q[i] = at(b, i);
	free(b->q);
	b->q = q;
	b->cap = cap;
	b->head = 0;
	return 0;
}

int bus_br_take(struct bus_bridge *b, const char *sender, const char *topic,
            const uint8_t *data, size_t len)
{
	if (b->n == b->cap && ring_grow(b))
		return BUS_ENOMEM;
	struct bus_br_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return BUS_ENOMEM;
	size_t sl = strlen(b->cfg.prefix) + strlen(b->cfg.host) +
	            2 * strlen(topic) + 8;
	bool is_event = false;
	e->subject = malloc(sl);
	e->sender = strdup(sender);
	e->topic = strdup(topic);
	e->data = malloc(len ? len : 1);
	if (!e->subject || !e->sender || !e->topic || !e->data ||
	    bus_br_subject(b->cfg.prefix, b->cfg.host, topic, e->subject, sl) ||
	    !(e->msgid = msgid_of(b, e, sender, data, len, &is_event))) {
		entry_free(e);
		return BUS_ENOMEM;
	}
	if (len)
		memcpy(e->data, data, len);
	e->len = len;
	e->token = b->next_token++;
	b->q[(b->head + b->n++) % b->cap] = e;
	b->bytes += entry_bytes(e);
	b->st.taken++;
	b->st.events += is_event;
	if (!b->paused && over_high(b)) {
		b->paused = true;
		b->st.paused++;
	}
	return 0;
}

struct bus_br_entry *bus_br_next(struct bus_bridge *b)
{
	for (; b->send_from < b->n; b->send_from++) {
		struct bus_br_entry *e = at(b, b->send_from);
		if (e->state == BUS_BR_UNSENT)
			return e;
	}
	return NULL;
}

void bus_br_sent(struct bus_bridge *b, struct bus_br_entry *e, uint64_t now)
{
	e->state = BUS_BR_SENT;
	b->st.published++;
	if (e->sends++)
		b->st.resent++;
	e->sent_ns = now;
}

/* An entry at index i went back to UNSENT. */
static void unsend(struct bus_bridge *b, size_t i)
{
	at(b, i)->state = BUS_BR_UNSENT;
	if (i < b->send_from)
		b->send_from = i;
}

/* Frees the STORED entries at the head. */
static void pop_stored(struct bus_bridge *b)
{
	while (b->n && at(b, 0)->state == BUS_BR_STORED) {
		struct bus_br_entry *e = at(b, 0);
		b->bytes -= entry_bytes(e);
		entry_free(e);
		b->head = (b->head + 1) % b->cap;
		b->n--;
		if (b->send_from)
			b->send_from--;
	}
}

bool bus_br_answer(struct bus_bridge *b, const char *msgid, bool stored,
               bool duplicate)
{
	size_t i = 0;
	for (; i < b->n; i++) {
		struct bus_br_entry *e = at(b, i);
		if (e->state != BUS_BR_STORED && !strcmp(e->msgid, msgid))
			break;
	}
	if (i == b->n) {
		b->st.late_acks++;
		return false;
	}
	struct bus_br_entry *e = at(b, i);
	if (!stored) {
		b->st.errors++;
		if (e->state == BUS_BR_SENT)
			unsend(b, i);
		return false;
	}
	e->state = BUS_BR_STORED;
	b->st.stored++;
	b->st.duplicates += duplicate;
	pop_stored(b);
	if (b->paused && below_low(b)) {
		b->paused = false;
		return true;
	}
	return false;
}

void bus_br_reset(struct bus_bridge *b)
{
	b->st.resets++;
	for (size_t i = b->n; i-- > 0;)
		if (at(b, i)->state == BUS_BR_SENT)
			unsend(b, i);
}

size_t bus_br_expire(struct bus_bridge *b, uint64_t now)
{
	size_t k = 0;
	for (size_t i = b->n; i-- > 0;) {
		struct bus_br_entry *e = at(b, i);
		if (e->state == BUS_BR_SENT &&
		    now - e->sent_ns >= b->cfg.ack_timeout_ns) {
			unsend(b, i);
			k++;
		}
	}
	return k;
}

uint64_t bus_br_stored_through(const struct bus_bridge *b, const char *sender,
                               uint64_t incarnation, uint64_t upto)
{
	for (size_t i = 0; i < b->n; i++) { /* oldest first */
		const struct bus_br_entry *e = at(b, i);
		if (e->state != BUS_BR_STORED && e->incarnation == incarnation &&
		    e->sequence && e->sequence <= upto &&
		    !strcmp(e->sender, sender))
			return e->sequence - 1;
	}
	return upto;
}

size_t bus_br_pending(const struct bus_bridge *b)
{
	size_t k = 0;
	for (size_t i = 0; i < b->n; i++)
		k += at(b, i)->state != BUS_BR_STORED;
	return k;
}

size_t bus_br_held_bytes(const struct bus_bridge *b)
{
	return b->bytes;
}

int bus_br_check(const struct bus_bridge *b, char *why, size_t len)
{
#define FAIL(...) return snprintf(why, len, __VA_ARGS__), BUS_EPROTO
	if (b->n > b->cap || (b->cap && b->head >= b->cap))
		FAIL("ring: %zu entries, head %zu, capacity %zu", b->n, b->head,
		     b->cap);
	if (b->send_from > b->n)
		FAIL("send_from %zu past %zu entries", b->send_from, b->n);
	size_t bytes = 0;
	uint64_t last = 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct bus_br_entry *e = at(b, i);
		if (!e || e->token <= last)
			FAIL("entry %zu out of order", i);
		last = e->token;
		if (e->state > BUS_BR_STORED)
			FAIL("entry %llu: state %u", (unsigned long long)e->token,
			     e->state);
		if (i < b->send_from && e->state == BUS_BR_UNSENT)
			FAIL("entry %llu unsent before send_from",
			     (unsigned long long)e->token);
		if (e->state != BUS_BR_UNSENT && !e->sends)
			FAIL("entry %llu answered, never sent",
			     (unsigned long long)e->token);
		bytes += entry_bytes(e);
	}
	if (b->n && at(b, 0)->state == BUS_BR_STORED)
		FAIL("a stored entry left at the head");
	if (bytes != b->bytes)
		FAIL("bytes %zu, entries hold %zu", b->bytes, bytes);
	if (b->st.stored + b->n < b->st.taken ||
	    b->st.stored > b->st.taken)
		FAIL("taken %llu, stored %llu, held %zu",
		     (unsigned long long)b->st.taken,
		     (unsigned long long)b->st.stored, b->n);
	if (!b->paused && over_high(b) && b->n)
		FAIL("past the high-water mark and not paused");
	return 0;
#undef FAIL
}
