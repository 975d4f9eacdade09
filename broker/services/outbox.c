/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outbox.c — a collector's events from creation until the agent has them
 * (daemoneye.h "the collector's outbox"). A ring in sequence order: the
 * first `sent` entries were handed to the bus, the rest wait for it.
 *
 * Rules: nothing unsent is ever forgotten (past the bound, the caller is
 * refused and declares a gap instead); sent entries are forgotten when the
 * agent acknowledges them, or, oldest first, to make room. Sans I/O.
 */
#include "bus/daemoneye.h"

#include <stdlib.h>
#include <string.h>

void de_outbox_init(struct de_outbox *o, uint64_t bytes_max)
{
	memset(o, 0, sizeof(*o));
	o->bytes_max = bytes_max;
}

static struct de_outbox_entry *at(const struct de_outbox *o, size_t i)
{
	return &o->v[(o->head + i) % o->cap];
}

static void drop_head(struct de_outbox *o)
{
	struct de_outbox_entry *e = at(o, 0);
	o->bytes -= e->len;
	free(e->data);
	o->head = (o->head + 1) % o->cap;
	o->n--;
	if (o->sent)
		o->sent--;
}

void de_outbox_free(struct de_outbox *o)
{
	while (o->n)
		drop_head(o);
	free(o->v);
	memset(o, 0, sizeof(*o));
}

int de_outbox_add(struct de_outbox *o, uint64_t seq, const char *topic,
                  uint8_t *data, size_t len, bool force)
{
	if (o->n && seq != at(o, o->n - 1)->seq + 1) {
		free(data);
		return BUS_EINVAL; /* a programmer's error: in order, no gaps */
	}
	/* make room: forget the oldest sent events first (the agent will
	 * see a gap and ask for a full resync); unsent ones never */
	while (!force && o->bytes + len > o->bytes_max && o->sent) {
		drop_head(o);
		o->forgotten++;
	}
	if (!force && o->bytes + len > o->bytes_max) {
		free(data);
		return BUS_ELIMIT;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 256;
		struct de_outbox_entry *v = malloc(cap * sizeof(*v));
		if (!v) {
			free(data);
			return BUS_ENOMEM;
		}
		for (size_t i = 0; i < o->n; i++)
			v[i] = *at(o, i);
		free(o->v);
		o->v = v;
		o->cap = cap;
		o->head = 0;
	}
	*at(o, o->n) = (struct de_outbox_entry){seq, topic, data, (uint32_t)len};
	o->n++;
	o->bytes += len;
	return 0;
}

void de_outbox_ack(struct de_outbox *o, uint64_t seq)
{
	/* sent or not (a rewind may have marked them unsent again): the
	 * agent processed them */
	while (o->n && at(o, 0)->seq <= seq)
		drop_head(o);
}

bool de_outbox_rewind(struct de_outbox *o, uint64_t from_seq)
{
	if (!o->n || from_seq < at(o, 0)->seq ||
	    from_seq > at(o, o->n - 1)->seq + 1)
		return false;
	size_t k = (size_t)(from_seq - at(o, 0)->seq);
	if (k < o->sent)
		o->sent = k;
	return true;
}

int de_outbox_pump(struct de_outbox *o, de_publish_fn publish, void *host)
{
	while (o->sent < o->n) {
		const struct de_outbox_entry *e = at(o, o->sent);
		int rc = publish(host, e->topic, e->data, e->len);
		if (rc)
			return rc; /* EAGAIN: on_drain; ECLOSED: the reconnect */
		o->sent++;
	}
	return 0; /* publish must not call back into the collector: a host
	             hands frames over after the current call returns */
}

size_t de_outbox_unsent(const struct de_outbox *o)
{
	return o->n - o->sent;
}

uint64_t de_outbox_last_sent(const struct de_outbox *o, uint64_t last_made)
{
	if (o->sent < o->n)
		return at(o, o->sent)->seq - 1;
	return last_made;
}
