/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memhost.c — see memhost.h. Test-only: a few hundred lines that wire the
 * core to plain buffers and a hand-driven clock.
 */
#include "memhost.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct memhost *mh_of(void *host) { return host; }

static void op_write(void *host, void *ctx, const struct bus_iov *iov,
                     size_t n)
{
	struct memhost *mh = mh_of(host);
	struct mh_conn *c = &mh->c[(intptr_t)ctx];
	assert(!c->write_pending);
	c->iov = realloc(c->iov, sizeof(*iov) * n);
	memcpy(c->iov, iov, sizeof(*iov) * n);
	c->iov_n = n;
	c->write_pending = true;
	c->writes++;
}

static void op_set_reading(void *host, void *ctx, bool reading)
{
	mh_of(host)->c[(intptr_t)ctx].reading = reading;
}

static void op_close(void *host, void *ctx)
{
	struct mh_conn *c = &mh_of(host)->c[(intptr_t)ctx];
	assert(!c->close_requested);
	c->close_requested = true;
}

static void op_audit(void *host, const struct bus_audit *a)
{
	struct memhost *mh = host;
	mh->audits++;
	snprintf(mh->last_audit, sizeof(mh->last_audit), "%s %.*s %.*s",
	         a->what, (int)a->name_len, a->name, (int)a->object_len,
	         a->object);
}

static const struct bus_core_ops mh_ops = {op_write, op_set_reading,
                                           op_close, op_audit, NULL};

static void *a_alloc(void *ctx, size_t n)
{
	struct memhost *mh = ctx;
	if (mh->fail_after && mh->allocs + 1 >= mh->fail_after)
		return NULL;
	if (mh->fail_once && ++mh->allocs == mh->fail_once)
		return NULL; /* counted: the next one succeeds */
	if (!mh->fail_once)
		mh->allocs++;
	void *p = malloc(n);
	mh->live += p != NULL;
	return p;
}

static void *a_realloc(void *ctx, void *p, size_t n)
{
	struct memhost *mh = ctx;
	if (mh->fail_after && mh->allocs + 1 >= mh->fail_after)
		return NULL;
	if (mh->fail_once && ++mh->allocs == mh->fail_once)
		return NULL; /* counted: the next one succeeds */
	if (!mh->fail_once)
		mh->allocs++;
	void *q = realloc(p, n);
	mh->live += !p && q;
	return q;
}

static void a_free(void *ctx, void *p)
{
	struct memhost *mh = ctx;
	mh->live -= p != NULL;
	free(p);
}

void mh_init(struct memhost *mh, struct bus_core_config *cfg)
{
	memset(mh, 0, sizeof(*mh));
	mh->now = 1000000000ull;
	cfg->allocator = (struct bus_allocator){a_alloc, a_realloc, a_free, mh};
	mh->core = bus_core_new(cfg, &mh_ops, mh, mh->now, 1700000000ull * 1000000000ull);
	assert(mh->core);
}

void mh_free(struct memhost *mh)
{
	bus_core_free(mh->core);
	/* everything the core took, it gave back (a leak fails the test) */
	assert(mh->live == 0);
	for (int i = 0; i < mh->n; i++) {
		free(mh->c[i].out);
		free(mh->c[i].in);
		free(mh->c[i].iov);
	}
}

int mh_connect(struct memhost *mh, enum bus_conn_kind kind)
{
	assert(mh->n < MH_CONNS_MAX);
	int i = mh->n++;
	mh->c[i].reading = true;
	mh->c[i].conn = bus_core_on_connect(mh->core, (void *)(intptr_t)i, kind,
	                                    "", "", mh->now);
	assert(mh->c[i].conn);
	mh_run(mh);
	return i;
}

static void append(uint8_t **buf, size_t *len, size_t *cap, const void *p,
                   size_t n)
{
	if (n == 0)
		return;
	if (*len + n > *cap) {
		*cap = (*len + n) * 2;
		*buf = realloc(*buf, *cap);
		assert(*buf);
	}
	memcpy(*buf + *len, p, n);
	*len += n;
}

static void out_append(struct mh_conn *c, const void *p, size_t n)
{
	append(&c->out, &c->out_len, &c->out_cap, p, n);
}

void mh_send(struct memhost *mh, int i, const void *data, size_t len)
{
	struct mh_conn *c = &mh->c[i];
	if (c->closed || c->close_requested)
		return;
	if (!c->reading || c->in_len) { /* as a socket would hold them */
		append(&c->in, &c->in_len, &c->in_cap, data, len);
	} else {
		bus_core_on_bytes(mh->core, c->conn, data, len, mh->now);
	}
	mh_run(mh);
}

void mh_run(struct memhost *mh)
{
	for (int guard = 0; guard < 100000; guard++) {
		bool changed = false;
		for (int i = 0; i < mh->n; i++) {
			struct mh_conn *c = &mh->c[i];
			if (c->closed)
				continue;
			if (c->in_len && c->reading && !c->close_requested) {
				size_t n = c->in_len;
				c->in_len = 0; /* the core may pause it again */
				bus_core_on_bytes(mh->core, c->conn, c->in, n,
				                  mh->now);
				changed = true;
			}
			if (c->write_pending && !c->stalled) {
				for (size_t k = 0; k < c->iov_n; k++)
					out_append(c, c->iov[k].base, c->iov[k].len);
				c->write_pending = false;
				bus_core_on_written(mh->core, c->conn, 0, mh->now);
				changed = true;
			}
			if (c->close_requested && !c->closed) {
				c->closed = true;
				c->write_pending = false;
				bus_core_on_close(mh->core, c->conn, mh->now);
				changed = true;
			}
		}
		bus_core_flush(mh->core, mh->now);
		bool pending = false;
		for (int i = 0; i < mh->n; i++)
			pending |= mh->c[i].write_pending && !mh->c[i].stalled &&
			           !mh->c[i].closed;
		if (!changed && !pending) {
			char why[256];
			if (!mh->skip_checks &&
			    bus_core_check_invariants(mh->core, why,
			                              sizeof(why))) {
				fprintf(stderr, "memhost: invariant: %s\n", why);
				abort();
			}
			return;
		}
	}
	assert(!"memhost did not settle");
}

void mh_advance(struct memhost *mh, uint64_t ns)
{
	uint64_t end = mh->now + ns;
	for (;;) {
		uint64_t d = bus_core_next_deadline(mh->core);
		if (d > end)
			break;
		if (d > mh->now)
			mh->now = d;
		bus_core_on_tick(mh->core, mh->now);
		mh_run(mh);
	}
	mh->now = end;
	bus_core_on_tick(mh->core, mh->now);
	mh_run(mh);
}

void mh_take(struct memhost *mh, int i, size_t n, uint8_t *dst)
{
	struct mh_conn *c = &mh->c[i];
	assert(c->out_len >= n);
	if (n == 0)
		return; /* out may not exist yet */
	if (dst)
		memcpy(dst, c->out, n);
	memmove(c->out, c->out + n, c->out_len - n);
	c->out_len -= n;
}

int mh_handshake(struct memhost *mh, int i, const char *name, size_t len)
{
	uint8_t g[3];
	mh_take(mh, i, 3, g);
	assert(g[0] == 0xEB && g[1] == 1 && g[2] == 0);
	mh_send(mh, i, g, 3);
	uint8_t r;
	mh_take(mh, i, 1, &r);
	assert(r == BUS_RES_OK);
	uint8_t hdr[2] = {(uint8_t)len, (uint8_t)(len >> 8)};
	mh_send(mh, i, hdr, 2);
	mh_send(mh, i, name, len);
	mh_take(mh, i, 1, &r);
	return r;
}

int mh_client(struct memhost *mh, const char *name, enum bus_conn_kind kind)
{
	int i = mh_connect(mh, kind);
	int r = mh_handshake(mh, i, name, strlen(name));
	assert(r == BUS_RES_OK);
	return i;
}

static uint32_t next_op_id = 1;

uint32_t mh_frame(struct memhost *mh, int i, uint8_t op, uint8_t qos,
                  const void *payload, size_t len)
{
	uint8_t *buf = malloc(9 + len);
	uint32_t id = next_op_id++;
	memcpy(buf, &id, 4); /* little-endian hosts only (x86_64, aarch64) */
	buf[4] = (uint8_t)(op | qos << 6);
	uint32_t l = (uint32_t)len;
	memcpy(buf + 5, &l, 4);
	if (len)
		memcpy(buf + 9, payload, len);
	mh_send(mh, i, buf, 9 + len);
	free(buf);
	return id;
}

size_t mh_join(uint8_t *out, const char *a, const char *b, const char *c)
{
	size_t n = 0;
	const char *parts[3] = {a, b, c};
	for (int k = 0; k < 3 && parts[k]; k++) {
		if (k)
			out[n++] = 0;
		memcpy(out + n, parts[k], strlen(parts[k]));
		n += strlen(parts[k]);
	}
	return n;
}

bool mh_next(struct memhost *mh, int i, struct mh_msg *m)
{
	struct mh_conn *c = &mh->c[i];
	for (;;) {
		memset(m, 0, sizeof(*m));
		if (c->out_len < 6)
			return false;
		m->kind = c->out[0];
		if (m->kind == BUS_OP_ACK) {
			memcpy(&m->op_id, c->out + 1, 4);
			m->result = c->out[5];
			mh_take(mh, i, 6, NULL);
			return true;
		}
		uint32_t len;
		memcpy(&len, c->out + 1, 4);
		if (c->out_len < 6 + len)
			return false;
		m->realtime = c->out[5];
		const uint8_t *p = c->out + 6, *end = p + len;
		if (m->kind == BUS_OP_NOP) {
			mh_take(mh, i, 6, NULL);
			continue;
		}
		const uint8_t *z = memchr(p, 0, (size_t)(end - p));
		assert(z);
		memcpy(m->sender, p, (size_t)(z - p));
		p = z + 1;
		if (m->kind == BUS_OP_PUBLISH) {
			z = memchr(p, 0, (size_t)(end - p));
			assert(z);
			memcpy(m->topic, p, (size_t)(z - p));
			p = z + 1;
		}
		m->data_len = (size_t)(end - p); /* data keeps the first 4 KiB */
		memcpy(m->data, p,
		       m->data_len < sizeof(m->data) ? m->data_len
		                                     : sizeof(m->data));
		mh_take(mh, i, 6 + len, NULL);
		return true;
	}
}

int mh_ack(struct memhost *mh, int i, uint32_t op_id)
{
	struct mh_msg m;
	if (!mh_next(mh, i, &m))
		return -1;
	assert(m.kind == BUS_OP_ACK);
	assert(m.op_id == op_id);
	return m.result;
}

void mh_drop(struct memhost *mh, int i)
{
	struct mh_conn *c = &mh->c[i];
	if (c->closed)
		return;
	c->closed = true;
	c->write_pending = false;
	bus_core_on_close(mh->core, c->conn, mh->now);
	mh_run(mh);
}
