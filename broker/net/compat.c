/* SPDX-License-Identifier: Apache-2.0 */
/*
 * compat.c — bus_chan (the crossbeam-like bounded MPMC channel) and
 * de_compat (its API over the broker), compat.h.
 */
#include "bus/compat.h"
#include "bus/net.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- topics -------------------------------------------------------------------- */
static const char *const topics[DE_KIND_COUNT] = {
	[DE_KIND_PROCESS_ENUMERATION] = "events/process/enumeration",
	[DE_KIND_PROCESS_LIFECYCLE] = "events/process/lifecycle",
	[DE_KIND_PROCESS_METADATA] = "events/process/metadata",
	[DE_KIND_PROCESS_HASH] = "events/process/hash",
	[DE_KIND_PROCESS_ANOMALY] = "events/process/anomaly",
	[DE_KIND_NETWORK_CONNECTIONS] = "events/network/connections",
	[DE_KIND_FILESYSTEM_OPERATIONS] = "events/filesystem/operations",
	[DE_KIND_PERFORMANCE_METRICS] = "events/performance/metrics",
};

const char *de_kind_topic(int kind)
{
	return kind >= 0 && kind < DE_KIND_COUNT ? topics[kind] : NULL;
}

int de_topic_kind(const char *topic)
{
	for (int k = 0; topic && k < DE_KIND_COUNT; k++)
		if (!strcmp(topics[k], topic))
			return k;
	return -1;
}

/* ---- the channel ------------------------------------------------------------------ */
struct bus_chan {
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	struct bus_chan_item *ring;
	size_t cap, head, n;
	bool closed;
};

struct bus_chan *bus_chan_new(size_t capacity)
{
	if (capacity == 0)
		return NULL;
	struct bus_chan *ch = calloc(1, sizeof(*ch));
	if (!ch || !(ch->ring = calloc(capacity, sizeof(*ch->ring)))) {
		free(ch);
		return NULL;
	}
	ch->cap = capacity;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&ch->mu, NULL);
	pthread_cond_init(&ch->not_empty, &ca);
	pthread_cond_init(&ch->not_full, &ca);
	pthread_condattr_destroy(&ca);
	return ch;
}

static void push(struct bus_chan *ch, const struct bus_chan_item *it)
{
	ch->ring[(ch->head + ch->n) % ch->cap] = *it;
	ch->n++;
	pthread_cond_signal(&ch->not_empty);
}

int bus_chan_send(struct bus_chan *ch, const struct bus_chan_item *it)
{
	pthread_mutex_lock(&ch->mu);
	while (ch->n == ch->cap && !ch->closed)
		pthread_cond_wait(&ch->not_full, &ch->mu);
	int rc = ch->closed ? BUS_ECLOSED : 0;
	if (!rc)
		push(ch, it);
	pthread_mutex_unlock(&ch->mu);
	return rc;
}

int bus_chan_try_send(struct bus_chan *ch, const struct bus_chan_item *it)
{
	pthread_mutex_lock(&ch->mu);
	int rc = ch->closed ? BUS_ECLOSED : ch->n == ch->cap ? BUS_EAGAIN : 0;
	if (!rc)
		push(ch, it);
	pthread_mutex_unlock(&ch->mu);
	return rc;
}

static void deadline_after(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

int bus_chan_recv(struct bus_chan *ch, struct bus_chan_item *out,
                  int64_t timeout_ms)
{
	struct timespec dl;
	if (timeout_ms >= 0)
		deadline_after(&dl, timeout_ms);
	pthread_mutex_lock(&ch->mu);
	int rc = 0;
	while (ch->n == 0 && !ch->closed && rc == 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&ch->not_empty, &ch->mu);
		else if (pthread_cond_timedwait(&ch->not_empty, &ch->mu, &dl))
			rc = BUS_ETIMEDOUT;
	}
	if (ch->n) {
		*out = ch->ring[ch->head];
		ch->head = (ch->head + 1) % ch->cap;
		ch->n--;
		pthread_cond_signal(&ch->not_full);
		rc = 0;
	} else if (ch->closed) {
		rc = BUS_ECLOSED;
	}
	pthread_mutex_unlock(&ch->mu);
	return rc;
}

void bus_chan_close(struct bus_chan *ch)
{
	pthread_mutex_lock(&ch->mu);
	ch->closed = true;
	pthread_cond_broadcast(&ch->not_empty);
	pthread_cond_broadcast(&ch->not_full);
	pthread_mutex_unlock(&ch->mu);
}

void bus_chan_free(struct bus_chan *ch)
{
	if (!ch)
		return;
	for (size_t i = 0; i < ch->n; i++)
		free(ch->ring[(ch->head + i) % ch->cap].data);
	pthread_mutex_destroy(&ch->mu);
	pthread_cond_destroy(&ch->not_empty);
	pthread_cond_destroy(&ch->not_full);
	free(ch->ring);
	free(ch);
}

/* ---- over the broker ------------------------------------------------------------------ */
struct de_compat {
	uv_loop_t loop;
	uv_async_t wake;
	pthread_t thread;
	struct bus_chan *out, *in; /* send queue; what the subscription got */
	struct bus_client *pub, *sub;
	struct bus_chan_item pending; /* the item publish refused (EAGAIN) */
	bool has_pending;
	/* under mu: */
	pthread_mutex_t mu;
	pthread_cond_t changed;
	int ready;          /* clients READY (and subscribed) */
	int failed;         /* first error */
	bool closing;
	int clients_open;
	char err[256];
	char name_pub[128], name_sub[128];
	const char *addr;
};

static void set_state(struct de_compat *c, int ready_delta, int fail)
{
	pthread_mutex_lock(&c->mu);
	c->ready += ready_delta;
	if (fail && !c->failed)
		c->failed = fail;
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->mu);
}

static void drain(struct de_compat *c)
{
	for (;;) {
		if (!c->has_pending) {
			if (bus_chan_recv(c->out, &c->pending, 0) != 0)
				break;
			c->has_pending = true;
		}
		int rc = bus_client_publish(c->pub, de_kind_topic(c->pending.kind),
		                            c->pending.data, c->pending.len, 0,
		                            NULL, NULL);
		if (rc == BUS_EAGAIN)
			return; /* on_drain resumes */
		free(c->pending.data);
		c->has_pending = false;
		if (rc) /* not connected: the event is lost, say so once */
			set_state(c, 0, rc);
	}
	pthread_mutex_lock(&c->mu);
	bool closing = c->closing;
	pthread_mutex_unlock(&c->mu);
	if (closing && !uv_is_closing((uv_handle_t *)&c->wake)) {
		uv_close((uv_handle_t *)&c->wake, NULL);
		bus_client_close(c->pub); /* flushes what was published */
		bus_client_close(c->sub);
	}
}

static void on_wake(uv_async_t *a)
{
	drain(a->data);
}

static void on_drain(struct bus_client *bc, void *arg)
{
	(void)bc;
	drain(arg);
}

static void on_delivery(struct bus_client *bc, const struct bus_delivery *d,
                        void *arg)
{
	(void)bc;
	struct de_compat *c = arg;
	int kind = d->topic ? de_topic_kind(d->topic) : -1;
	if (kind < 0 || d->kind != BUS_OP_PUBLISH)
		return; /* events/# may carry topics this layer does not map */
	struct bus_chan_item it = {kind, malloc(d->len ? d->len : 1), d->len};
	if (!it.data)
		return;
	memcpy(it.data, d->data, d->len);
	/* blocks while the receiver lags: crossbeam's bounded semantics */
	if (bus_chan_send(c->in, &it) != 0)
		free(it.data);
}

static void subscribed(struct bus_client *bc, int status, void *arg)
{
	(void)bc;
	set_state(arg, status ? 0 : 1, status);
}

static void on_state(struct bus_client *bc, enum bus_client_state st,
                     int reason, void *arg)
{
	struct de_compat *c = arg;
	if (st == BUS_CLIENT_READY && bc == c->pub) {
		set_state(c, 1, 0);
	} else if (st == BUS_CLIENT_READY) {
		static const char *m[] = {"events/#"};
		bus_client_subscribe(bc, m, 1, subscribed, c);
	} else if (st == BUS_CLIENT_DISCONNECTED && reason) {
		pthread_mutex_lock(&c->mu);
		snprintf(c->err, sizeof(c->err), "%s", bus_client_net_error(bc));
		pthread_mutex_unlock(&c->mu);
	} else if (st == BUS_CLIENT_CLOSED) {
		if (--c->clients_open == 0)
			bus_chan_close(c->in); /* receivers see the end */
		if (reason && reason != BUS_ECLOSED)
			set_state(c, 0, reason);
	}
}

static void *loop_main(void *arg)
{
	struct de_compat *c = arg;
	uv_run(&c->loop, UV_RUN_DEFAULT);
	return NULL;
}

static int open_clients(struct de_compat *c, const char *name)
{
	struct bus_client_config cfg;
	bus_client_config_defaults(&cfg);
	snprintf(c->name_pub, sizeof(c->name_pub), "%s.pub", name);
	snprintf(c->name_sub, sizeof(c->name_sub), "%s.sub", name);
	struct bus_client_handlers h = {on_delivery, NULL, on_state, on_drain, c};
	cfg.name = c->name_pub;
	int rc = bus_client_open(&c->loop, c->addr, &cfg, &h, &c->pub);
	if (rc)
		return rc;
	c->clients_open++;
	cfg.name = c->name_sub;
	cfg.idle_timeout_ns = 0; /* a quiet bus is not a dead broker */
	rc = bus_client_open(&c->loop, c->addr, &cfg, &h, &c->sub);
	if (rc)
		return rc;
	c->clients_open++;
	return 0;
}

/* Frees what the layer owns once its loop has nothing left. */
static void free_layer(struct de_compat *c)
{
	uv_loop_close(&c->loop);
	bus_chan_free(c->out);
	bus_chan_free(c->in);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->changed);
	free(c);
}

int de_compat_open(const char *addr, const char *name, size_t capacity,
                   int64_t timeout_ms, struct de_compat **out, char *err,
                   size_t errlen)
{
	struct de_compat *c = calloc(1, sizeof(*c));
	if (!c)
		return BUS_ENOMEM;
	c->addr = addr;
	c->out = bus_chan_new(capacity);
	c->in = bus_chan_new(capacity);
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* deadline_after's */
	pthread_cond_init(&c->changed, &ca);
	pthread_condattr_destroy(&ca);
	uv_loop_init(&c->loop);
	int rc = c->out && c->in ? 0 : BUS_ENOMEM;
	if (!rc)
		rc = uv_async_init(&c->loop, &c->wake, on_wake) ? BUS_EIO : 0;
	c->wake.data = c;
	if (!rc)
		rc = open_clients(c, name);
	if (!rc && pthread_create(&c->thread, NULL, loop_main, c))
		rc = BUS_EIO;
	if (rc) { /* the thread never ran: close what opened, here */
		snprintf(err, errlen, "%s", bus_strerror(rc));
		if (c->pub)
			bus_client_close(c->pub);
		if (c->sub)
			bus_client_close(c->sub);
		if (c->wake.type == UV_ASYNC) /* initialised */
			uv_close((uv_handle_t *)&c->wake, NULL);
		uv_run(&c->loop, UV_RUN_DEFAULT);
		free_layer(c);
		return rc;
	}
	struct timespec dl;
	deadline_after(&dl, timeout_ms);
	pthread_mutex_lock(&c->mu);
	while (c->ready < 2 && !c->failed && rc == 0)
		if (pthread_cond_timedwait(&c->changed, &c->mu, &dl))
			rc = BUS_ETIMEDOUT;
	if (c->failed)
		rc = c->failed;
	if (rc)
		snprintf(err, errlen, "%s%s%s", bus_strerror(rc),
		         c->err[0] ? ": " : "", c->err);
	pthread_mutex_unlock(&c->mu);
	if (rc) {
		de_compat_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

int de_compat_send(struct de_compat *c, int kind, const void *data,
                   size_t len)
{
	if (!de_kind_topic(kind))
		return BUS_EINVAL;
	struct bus_chan_item it = {kind, malloc(len ? len : 1), len};
	if (!it.data)
		return BUS_ENOMEM;
	memcpy(it.data, data, len);
	int rc = bus_chan_send(c->out, &it);
	if (rc)
		free(it.data);
	else
		uv_async_send(&c->wake);
	return rc;
}

int de_compat_recv(struct de_compat *c, struct bus_chan_item *out,
                   int64_t timeout_ms)
{
	return bus_chan_recv(c->in, out, timeout_ms);
}

void de_compat_close(struct de_compat *c)
{
	pthread_mutex_lock(&c->mu);
	c->closing = true;
	pthread_mutex_unlock(&c->mu);
	bus_chan_close(c->out); /* no more sends; the queue still drains */
	bus_chan_close(c->in);  /* a delivery blocked on a full queue ends */
	uv_async_send(&c->wake);
	pthread_join(c->thread, NULL);
	if (c->has_pending)
		free(c->pending.data);
	free_layer(c);
}
