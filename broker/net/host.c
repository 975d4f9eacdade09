/* SPDX-License-Identifier: Apache-2.0 */
/*
 * host.c — the libuv host of the broker core (bus.h contract).
 *
 * It turns libuv events into core calls and core requests into libuv calls:
 * accepted streams -> bus_core_on_connect, reads -> bus_core_on_bytes,
 * write completions -> bus_core_on_written (a write that the socket took
 * whole at once, uv_try_write, completes when the flush that made it
 * ends), closes -> bus_core_on_close, a
 * timer at the core's next deadline -> bus_core_on_tick, and after I/O
 * (uv_check) and before the loop blocks (uv_prepare) -> bus_core_flush. It enforces the core's
 * read_bytes_per_turn_max: a connection that read that much in one turn
 * stops reading until the next turn. A connection is freed only in its
 * uv_close callback.
 *
 * Internal clients (an embedded broker's in-process clients, kind
 * "internal") are client cores (client.h) linked to the broker core by
 * plain buffers: no socket, no copy of the broker's frames. Their bytes are
 * handed over by the pump, which runs before the loop would block
 * (uv_prepare) and after I/O (uv_check) — never inside a core call — and
 * keeps the loop spinning (uv_idle) while either side has more to move.
 */
#define _GNU_SOURCE /* accept4 */
#include "bus/net.h"
#include "bus/client.h"
#include "bus/config.h"
#include "bus/json.h"
#include "bus/link.h"
#include "netint.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define READ_BUF_BYTES (256u << 10)
#define LISTENERS_MAX 16

/* A Unix or TCP stream, seen as whichever libuv type a call needs. */
union stream {
	uv_handle_t h;
	uv_stream_t s;
	uv_pipe_t pipe;
	uv_tcp_t tcp;
};

struct hconn {
	bool internal; /* false: a stream connection (both contexts start so) */
	union stream u;
	struct bus_server *srv;
	struct bus_conn *conn; /* NULL once the core forgot it */
	uv_write_t wreq;
	bool closing;
	bool reading;      /* as the core wants it */
	bool throttled;    /* read budget of this turn used up */
	uint64_t turn;
	size_t turn_bytes;
	int write_error;   /* uv_write failed synchronously */
	bool in_pending;   /* on the server's pending list */
	struct hconn *next_pending;
	bool in_done;      /* its write went out whole at once (uv_try_write):
	                      completed at the end of this flush */
	struct hconn *next_done;
	/* a TLS listener's connection: the core sees it once the handshake
	 * is done (under tls_timer's deadline), with the certificate's CN */
	struct bus_tls *tls;
	uv_timer_t tls_timer;
	bool timer_open, stream_closed;
	char src[64], port[16];
	struct bus_ident id;
};

/* An internal client and its link to the broker core (bus/link.h). */
struct iclient {
	bool internal; /* true */
	struct bus_server *srv;
	struct bus_link link;
};

/* A listening socket of ours: accept4 in our loop (uv_poll), so that
 * every refusal is seen, counted and logged (libuv's own accept loop
 * refuses silently at EMFILE). */
struct listener {
	uv_poll_t poll;
	uv_timer_t retry; /* accept failed for want of memory: poll again */
	int fd;
	struct bus_server *srv;
	bool tcp;
	SSL_CTX *tls; /* a TLS listener */
	int closing; /* handles still to close */
	char *path; /* unix socket file to remove at shutdown */
	char name[128];
};

struct bus_server {
	uv_loop_t *loop;
	struct bus_core *core;
	uv_timer_t timer;
	uv_check_t check;
	uv_prepare_t prepare;
	uv_idle_t idle;
	struct bus_link *iclients; /* internal clients' links (ctx: iclient) */
	uint32_t iclient_count;
	bool pumping;
	struct listener *listeners[LISTENERS_MAX];
	int listener_count;
	uint64_t turn;
	uint8_t *rbuf;
	bool rbuf_busy;
	struct hconn *pending; /* throttled or failed-write connections */
	struct hconn *done;    /* writes completed at once, to report */
	int reserve_fd;        /* closed to accept-and-close at EMFILE */
	uint64_t refuse_log_ns; /* refusals are logged once a second */
	uint32_t refuse_unlogged;
	int refuse_err;
	int open_handles;      /* handles whose close callback is pending */
	uint32_t live_conns;
	bool shutting_down;
	bool aux_closed;
	void (*done_cb)(struct bus_server *, void *);
	void *done_arg;
	int log_level;
	struct bus_host_stats hst;
	/* refusals for the audit trail: to fn, or logged (at most 10 a
	 * second, the rest counted into the next line) */
	void (*audit_fn)(void *arg, const struct bus_audit *a);
	void *audit_arg;
	struct bus_acl *acl; /* in force, owned */
	uint64_t audit_log_ns;
	uint32_t audit_logged, audit_unlogged;
	struct bus_metrics *metrics; /* broker.metrics.listen, or NULL */
	void (*metrics_extra)(void *arg, FILE *f);
	void *metrics_extra_arg;
};

static uint64_t now_ns(const struct bus_server *s)
{
	(void)s;
	return uv_hrtime();
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int bus_log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(name, level_names[i]))
			return i;
	return strcmp(name, "trace") ? -1 : 3;
}

static void logf_(const struct bus_server *s, int level, const char *fmt, ...)
{
	if (level > s->log_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "busrtd %s: ", level_names[level]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void handle_closed(uv_handle_t *h);

/* During shutdown: once the last connection is gone, close the timer and
 * the check handle; once every handle is closed, report done. */
static void maybe_done(struct bus_server *s)
{
	if (!s->shutting_down || s->live_conns || s->iclient_count)
		return;
	if (!s->aux_closed) {
		s->aux_closed = true;
		s->open_handles += 4;
		uv_close((uv_handle_t *)&s->check, handle_closed);
		uv_close((uv_handle_t *)&s->timer, handle_closed);
		uv_close((uv_handle_t *)&s->prepare, handle_closed);
		uv_close((uv_handle_t *)&s->idle, handle_closed);
	}
	if (s->open_handles)
		return;
	if (s->done_cb) {
		void (*cb)(struct bus_server *, void *) = s->done_cb;
		s->done_cb = NULL;
		cb(s, s->done_arg);
	}
}

static void handle_closed(uv_handle_t *h)
{
	struct bus_server *s = h->data;
	s->open_handles--;
	maybe_done(s);
}

static void pending_add(struct bus_server *s, struct hconn *c)
{
	if (c->in_pending)
		return;
	c->in_pending = true;
	c->next_pending = s->pending;
	s->pending = c;
}

static void done_remove(struct bus_server *s, struct hconn *c)
{
	if (!c->in_done)
		return;
	c->in_done = false;
	for (struct hconn **pp = &s->done; *pp; pp = &(*pp)->next_done)
		if (*pp == c) {
			*pp = c->next_done;
			return;
		}
}

static void pending_remove(struct bus_server *s, struct hconn *c)
{
	if (!c->in_pending)
		return;
	c->in_pending = false;
	for (struct hconn **pp = &s->pending; *pp; pp = &(*pp)->next_pending)
		if (*pp == c) {
			*pp = c->next_pending;
			return;
		}
}

/* ---- connection I/O ---------------------------------------------------- */
static void hconn_free(struct hconn *c)
{
	struct bus_server *s = c->srv;
	pending_remove(s, c);
	done_remove(s, c);
	if (c->tls) {
		bus__tls_free(c->tls);
		free(c->tls);
	}
	free(c);
	s->live_conns--;
	maybe_done(s);
}

static void tls_timer_closed(uv_handle_t *h)
{
	struct hconn *c = h->data;
	c->timer_open = false;
	if (c->stream_closed)
		hconn_free(c);
}

static void conn_closed_cb(uv_handle_t *h)
{
	struct hconn *c = h->data;
	struct bus_server *s = c->srv;
	if (c->conn)
		bus_core_on_close(s->core, c->conn, now_ns(s));
	c->conn = NULL;
	c->stream_closed = true;
	if (c->timer_open) { /* the handshake's timer goes first */
		if (!uv_is_closing((uv_handle_t *)&c->tls_timer))
			uv_close((uv_handle_t *)&c->tls_timer, tls_timer_closed);
		return;
	}
	hconn_free(c);
}

/* Closes from the host side (EOF, read error): the core forgets now. */
static void conn_drop(struct hconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	struct bus_conn *bc = c->conn;
	c->conn = NULL;
	if (bc)
		bus_core_on_close(c->srv->core, bc, now_ns(c->srv));
	uv_close(&c->u.h, conn_closed_cb);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)hint;
	struct hconn *c = h->data;
	struct bus_server *s = c->srv;
	if (s->rbuf_busy) { /* never expected: reads are consumed at once */
		buf->base = NULL;
		buf->len = 0;
		return;
	}
	s->rbuf_busy = true;
	buf->base = (char *)s->rbuf;
	buf->len = READ_BUF_BYTES;
}

static void tls_read(struct hconn *c, const void *data, size_t n);

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct hconn *c = st->data;
	struct bus_server *s = c->srv;
	if (buf->base == (char *)s->rbuf)
		s->rbuf_busy = false;
	if (n == 0)
		return;
	if (n < 0) {
		logf_(s, 3, "connection %s: %s",
		      c->conn ? bus_conn_name(c->conn) : "?", uv_strerror((int)n));
		conn_drop(c);
		return;
	}
	if ((!c->conn && !c->tls) || c->closing)
		return;
	s->hst.reads++;
	if (c->turn != s->turn) {
		c->turn = s->turn;
		c->turn_bytes = 0;
	}
	c->turn_bytes += (size_t)n;
	if (c->tls)
		tls_read(c, buf->base, (size_t)n);
	else
		bus_core_on_bytes(s->core, c->conn, buf->base, (size_t)n,
		                  now_ns(s));
	if (!c->closing && c->reading &&
	    c->turn_bytes >= bus_core_config_get(s->core)
	                         ->limits.read_bytes_per_turn_max) {
		uv_read_stop(&c->u.s);
		c->throttled = true;
		pending_add(s, c);
	}
}

static void write_cb(uv_write_t *req, int status)
{
	struct hconn *c = req->data;
	struct bus_server *s = c->srv;
	if (!c->conn)
		return; /* the core already forgot this connection */
	bus_core_on_written(s->core, c->conn, status, now_ns(s));
}

/* ---- TLS connections: ciphertext on the stream, plaintext to the core -- */
static void tls_core_written(void *arg, int status)
{
	struct hconn *c = arg;
	if (c->conn)
		bus_core_on_written(c->srv->core, c->conn, status,
		                    now_ns(c->srv));
}

/* Sends what TLS has for the peer. core: this is the core's write (its
 * completion reports to the core; it always has ciphertext). 0, or a
 * libuv error. */
static int tls_flush(struct hconn *c, bool core)
{
	int rc = bus__tls_send(c->tls, &c->u.s, core ? tls_core_written : NULL,
	                       c);
	c->srv->hst.writes += rc > 0;
	return rc == 0 && core ? UV_EPROTO : rc < 0 ? rc : 0;
}

static void tls_plain(void *arg, const uint8_t *p, size_t n)
{
	struct hconn *c = arg;
	if (!c->conn || c->closing) {
		c->tls->stop = true;
		return;
	}
	bus_core_on_bytes(c->srv->core, c->conn, p, n, now_ns(c->srv));
}

static void tls_fail(struct hconn *c, const char *why)
{
	struct bus_server *s = c->srv;
	bus_core_count_tls(s->core, c->tls->plaintext ? 2 : 1);
	logf_(s, c->tls->plaintext ? 1 : 2, "TLS connection from %s:%s: %s",
	      c->src, c->port, why);
	conn_drop(c);
}

/* The handshake is done: now the core sees the connection, known by its
 * certificate's CN (when the listener verified one) and its address. */
static void tls_established(struct hconn *c)
{
	struct bus_server *s = c->srv;
	bus_core_count_tls(s->core, 0);
	if (c->timer_open && !uv_is_closing((uv_handle_t *)&c->tls_timer))
		uv_close((uv_handle_t *)&c->tls_timer, tls_timer_closed);
	c->conn = bus_core_on_connect(s->core, c, BUS_KIND_TCP, c->src,
	                              c->port, now_ns(s));
	if (!c->conn) {
		conn_drop(c);
		return;
	}
	snprintf(c->id.cn, sizeof(c->id.cn), "%s", c->tls->cn);
	bus_core_set_ident(s->core, c->conn, &c->id);
}

static void tls_read(struct hconn *c, const void *data, size_t n)
{
	char err[300];
	bool ready = false;
	int rc = bus__tls_feed(c->tls, data, n, tls_plain, c, &ready, err,
	                       sizeof(err));
	if (rc == 0 && ready) {
		tls_established(c);
		if (!c->closing) /* what came with the handshake's end */
			rc = bus__tls_feed(c->tls, NULL, 0, tls_plain, c, &ready,
			                   err, sizeof(err));
	}
	if (c->closing)
		return;
	if (rc == 0 && tls_flush(c, false) < 0)
		snprintf(err, sizeof(err), "cannot write"), rc = -1;
	if (rc != 0)
		tls_fail(c, err);
}

static void tls_timeout(uv_timer_t *t)
{
	struct hconn *c = t->data;
	if (!c->closing && !c->tls->done)
		tls_fail(c, "no TLS handshake within the timeout");
}

static void op_write(void *host, void *ctx, const struct bus_iov *iov,
                     size_t n)
{
	struct bus_server *s = host;
	struct hconn *c = ctx;
	if (n == 0)
		return;
	if (c->internal) {
		bus_link_b_write(&((struct iclient *)ctx)->link, iov, n);
		return;
	}
	if (c->tls) { /* encrypted now: the core's buffers are free at once,
	                 and its write completes with the ciphertext's */
		int rc = bus__tls_encrypt(c->tls, iov, n) ? UV_EPROTO
		                                           : tls_flush(c, true);
		if (rc < 0) {
			c->write_error = rc;
			pending_add(s, c);
		}
		return;
	}
	uv_buf_t stackbufs[64];
	uv_buf_t *bufs = n <= 64 ? stackbufs : malloc(sizeof(*bufs) * n);
	if (!bufs) {
		c->write_error = UV_ENOMEM;
		pending_add(s, c);
		return;
	}
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		bufs[i] = uv_buf_init((char *)iov[i].base, (unsigned)iov[i].len);
		total += iov[i].len;
	}
	s->hst.writes++;
	/* Most writes fit the socket at once: one writev, and no write
	 * request (whose completion costs libuv an epoll_ctl per write).
	 * The completion is reported when this flush ends. */
	int rc = uv_try_write(&c->u.s, bufs, (unsigned)n);
	if (rc >= 0 && (size_t)rc == total) {
		c->in_done = true;
		c->next_done = s->done;
		s->done = c;
		rc = 0;
	} else if (rc >= 0 || rc == UV_EAGAIN) { /* the rest, when writable */
		size_t skip = rc > 0 ? (size_t)rc : 0, i = 0;
		while (skip >= bufs[i].len)
			skip -= bufs[i++].len;
		bufs[i].base += skip;
		bufs[i].len -= skip;
		c->wreq.data = c;
		rc = uv_write(&c->wreq, &c->u.s, bufs + i, (unsigned)(n - i),
		              write_cb);
	}
	if (bufs != stackbufs)
		free(bufs);
	if (rc < 0) { /* report after this core call returns */
		c->write_error = rc;
		pending_add(s, c);
	}
}

static void op_set_reading(void *host, void *ctx, bool reading)
{
	(void)host;
	struct hconn *c = ctx;
	if (c->internal) {
		bus_link_b_set_reading(&((struct iclient *)ctx)->link, reading);
		return;
	}
	c->reading = reading;
	if (c->closing)
		return;
	if (reading && !c->throttled)
		uv_read_start(&c->u.s, alloc_cb, read_cb);
	else if (!reading)
		uv_read_stop(&c->u.s);
}

static void op_close(void *host, void *ctx)
{
	(void)host;
	struct hconn *c = ctx;
	if (c->internal) {
		bus_link_b_close(&((struct iclient *)ctx)->link);
		return;
	}
	if (c->closing)
		return;
	c->closing = true;
	uv_close(&c->u.h, conn_closed_cb);
}

static void op_audit(void *host, const struct bus_audit *a)
{
	struct bus_server *s = host;
	if (s->audit_fn) {
		s->audit_fn(s->audit_arg, a);
		return;
	}
	uint64_t now = now_ns(s);
	if (now - s->audit_log_ns >= 1000000000ull) {
		s->audit_log_ns = now;
		s->audit_logged = 0;
	}
	if (s->audit_logged >= 10) {
		s->audit_unlogged++;
		return;
	}
	s->audit_logged++;
	char name[256], obj[512];
	bus_text_escape(name, sizeof(name), a->name, a->name_len);
	bus_text_escape(obj, sizeof(obj), a->object, a->object_len);
	char who[128];
	bus_ident_text(a->ident, who, sizeof(who));
	logf_(s, 1, "denied %s %s%s%s (%s%s%s)%s", a->what, name,
	      obj[0] ? ": " : "", obj, who, a->rule[0] ? ", rule " : "",
	      a->rule, s->audit_unlogged ? " (and earlier ones not logged)" : "");
	s->audit_unlogged = 0;
}

/* The heap in use (glibc's arenas and mmapped chunks), for the stats;
 * under another allocator (ASan's), which glibc cannot see: the resident
 * set instead. */
static uint64_t op_memory(void *host)
{
	(void)host;
	struct mallinfo2 mi = mallinfo2();
	uint64_t n = (uint64_t)mi.uordblks + mi.hblkhd;
	if (n)
		return n;
	unsigned long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return 0;
	int k = fscanf(f, "%lu %lu", &size, &resident);
	fclose(f);
	return k == 2 ? (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

static const struct bus_core_ops host_ops = {op_write, op_set_reading,
                                             op_close, op_audit, op_memory};

/* Who a unix socket's peer is: SO_PEERCRED and SO_PEERGROUPS (a TCP
 * peer's address is peer_of's). */
static void ident_of(int fd, struct bus_ident *id)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0)
		return;
	id->cred = true;
	id->uid = uc.uid;
	id->gid = uc.gid;
	id->pid = (uint32_t)uc.pid;
#ifdef SO_PEERGROUPS
	gid_t g[BUS_IDENT_GROUPS_MAX];
	len = sizeof(g);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == 0)
		for (size_t i = 0; i < len / sizeof(gid_t); i++)
			id->groups[id->n_groups++] = g[i];
#endif
}

static void pump(struct bus_server *s);

int bus_server_set_acl(struct bus_server *s, struct bus_acl *acl)
{
	struct bus_acl *h = NULL;
	if (acl) {
		h = malloc(sizeof(*h));
		if (!h)
			return BUS_ENOMEM;
		*h = *acl;
		memset(acl, 0, sizeof(*acl));
	}
	bus_core_set_acl(s->core, h);
	if (s->acl) {
		bus_acl_free(s->acl);
		free(s->acl);
	}
	s->acl = h;
	pump(s); /* clients it cut: their closes, and what is queued */
	return 0;
}

void bus_server_set_audit(struct bus_server *s,
                          void (*fn)(void *arg, const struct bus_audit *a),
                          void *arg)
{
	s->audit_fn = fn;
	s->audit_arg = arg;
}

/* ---- turns and time ---------------------------------------------------- */
static void timer_cb(uv_timer_t *t);
static void pump(struct bus_server *s);

/* The core writes what it batched; writes that went out whole at once are
 * reported complete (which may let it write more), until none is left. */
static void flush(struct bus_server *s)
{
	for (;;) {
		bus_core_flush(s->core, now_ns(s));
		struct hconn *d = s->done;
		if (!d)
			return;
		s->done = NULL;
		while (d) {
			struct hconn *next = d->next_done;
			d->next_done = NULL;
			d->in_done = false;
			if (d->conn)
				bus_core_on_written(s->core, d->conn, 0, now_ns(s));
			d = next;
		}
	}
}

static void arm_timer(struct bus_server *s)
{
	if (uv_is_closing((uv_handle_t *)&s->timer))
		return;
	uint64_t d = bus_core_next_deadline(s->core);
	for (struct bus_link *l = s->iclients; l; l = l->next) {
		uint64_t x = bus_client_next_deadline(l->cl);
		d = x < d ? x : d;
	}
	if (d == UINT64_MAX) {
		uv_timer_stop(&s->timer);
		return;
	}
	uint64_t now = now_ns(s);
	uint64_t ms = d > now ? (d - now + 999999) / 1000000 : 0;
	uv_timer_start(&s->timer, timer_cb, ms, 0);
}

static void timer_cb(uv_timer_t *t)
{
	struct bus_server *s = t->data;
	bus_core_on_tick(s->core, now_ns(s));
	for (struct bus_link *l = s->iclients; l; l = l->next)
		bus_client_on_tick(l->cl);
	flush(s);
	pump(s);
	arm_timer(s);
}

/* After I/O: resume throttled readers, report failed writes, write what
 * the turn batched. */
static void check_cb(uv_check_t *h)
{
	struct bus_server *s = h->data;
	s->turn++;
	struct hconn *p = s->pending;
	s->pending = NULL;
	while (p) {
		struct hconn *next = p->next_pending;
		p->next_pending = NULL;
		p->in_pending = false;
		if (p->write_error && p->conn && !p->closing) {
			int e = p->write_error;
			p->write_error = 0;
			bus_core_on_written(s->core, p->conn, e, now_ns(s));
		}
		if (p->throttled && !p->closing) {
			p->throttled = false;
			if (p->reading)
				uv_read_start(&p->u.s, alloc_cb, read_cb);
		}
		p = next;
	}
	flush(s);
	pump(s);
	/* the deadline timer is re-armed once per turn, in prepare_cb */
}

/* Before the loop blocks: what became writable since the check (write
 * completions run in libuv's pending phase, before the poll) and what
 * internal clients buffered. */
static void prepare_cb(uv_prepare_t *h)
{
	struct bus_server *s = h->data;
	flush(s);
	pump(s);
	arm_timer(s);
}

static void idle_cb(uv_idle_t *h)
{
	(void)h; /* only keeps the loop from blocking; the pump runs in
	            prepare and check */
}

/* ---- internal clients --------------------------------------------------- */
static uint64_t link_clock(void *arg) { return now_ns(arg); }

static uint64_t ic_now(void *host)
{
	(void)host;
	return uv_hrtime();
}

/* Jitter only; not security: seeded once per process. */
static uint64_t ic_random(void *host)
{
	static uint64_t state;
	if (!state)
		state = uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 32) ^
		        (uint64_t)(uintptr_t)host;
	return bus_splitmix64(&state);
}

static void ic_connect(void *host)
{
	struct iclient *ic = host;
	ic->link.core = ic->srv->shutting_down ? NULL : ic->srv->core;
	bus_link_c_connect(&ic->link);
}

static void ic_write(void *host, const struct bus_iov *iov, size_t n)
{
	bus_link_c_write(&((struct iclient *)host)->link, iov, n);
}

static void ic_close(void *host)
{
	bus_link_c_close(&((struct iclient *)host)->link);
}

static const struct bus_client_ops iclient_ops = {ic_now, ic_random,
                                                  ic_connect, ic_write,
                                                  ic_close};

/* Frees internal clients that reached CLOSED. */
static void ilink_sweep(struct bus_server *s)
{
	for (struct bus_link **pp = &s->iclients; *pp;) {
		struct bus_link *l = *pp;
		if (bus_client_state(l->cl) != BUS_CLIENT_CLOSED || l->conn) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		bus_client_free(l->cl);
		bus_link_free(l);
		free(l->ctx);
		s->iclient_count--;
	}
}

#define PUMP_ROUNDS 64

static void pump(struct bus_server *s)
{
	if (s->pumping || (!s->iclients && !s->iclient_count))
		return;
	s->pumping = true;
	bool busy = bus_link_pump(s->iclients, s->core, PUMP_ROUNDS);
	s->pumping = false;
	ilink_sweep(s);
	if (busy || s->done) /* more to move, or writes to report: no block */
		uv_idle_start(&s->idle, idle_cb);
	else
		uv_idle_stop(&s->idle);
	maybe_done(s);
}

int bus_server_client_open(struct bus_server *s,
                           const struct bus_client_config *cfg,
                           const struct bus_client_handlers *h,
                           struct bus_client **out)
{
	if (s->shutting_down)
		return BUS_ECLOSED;
	struct iclient *ic = calloc(1, sizeof(*ic));
	if (!ic)
		return BUS_ENOMEM;
	ic->internal = true;
	ic->srv = s;
	struct bus_link *l = &ic->link;
	bus_link_init(l, s->core, NULL, ic, BUS_KIND_INTERNAL, link_clock, s);
	/* an internal client is this process */
	l->has_ident = true;
	l->ident = (struct bus_ident){.cred = true, .uid = geteuid(),
	                              .gid = getegid(),
	                              .pid = (uint32_t)getpid()};
	l->cl = bus_client_new(cfg, &iclient_ops, ic, h);
	if (!l->cl) {
		free(ic);
		return BUS_EINVAL;
	}
	l->next = s->iclients;
	s->iclients = l;
	s->iclient_count++;
	bus_client_start(l->cl);
	bus_client_on_tick(l->cl); /* asks to connect; the pump connects */
	uv_idle_start(&s->idle, idle_cb);
	*out = l->cl;
	return 0;
}

/* ---- listeners --------------------------------------------------------- */
static void peer_of(struct hconn *c, char *src, size_t sl, char *port,
                    size_t pl, struct bus_ident *id)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	src[0] = port[0] = '\0';
	if (uv_tcp_getpeername(&c->u.tcp, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		uv_ip4_name(a, src, sl);
		snprintf(port, pl, "%u", ntohs(a->sin_port));
		id->family = 4;
		memcpy(id->addr, &a->sin_addr, 4);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		uv_ip6_name(a, src, sl);
		snprintf(port, pl, "%u", ntohs(a->sin6_port));
		id->family = 6;
		memcpy(id->addr, &a->sin6_addr, 16);
	}
}

/* A refusal: counted (the host's and the core's stats) and logged, at
 * most once a second with the count since the last line. */
static void refused(struct bus_server *s, const struct listener *l, int err)
{
	s->hst.refused++;
	bus_core_count_refused(s->core);
	s->refuse_unlogged++;
	s->refuse_err = err;
	uint64_t now = now_ns(s);
	if (s->refuse_log_ns && now - s->refuse_log_ns < 1000000000ull)
		return;
	logf_(s, 1, "%s: refused connections (%u since the last report): %s",
	      l->name, s->refuse_unlogged, uv_strerror(err));
	s->refuse_log_ns = now;
	s->refuse_unlogged = 0;
}

/* A connection accepted (fd, non-blocking): into a libuv stream and the
 * core. 0, or a libuv error (fd then closed). */
static int conn_open(struct bus_server *s, struct listener *l, int fd)
{
	struct hconn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return UV_ENOMEM;
	}
	c->srv = s;
	int rc;
	if (l->tcp) {
		uv_tcp_init(s->loop, &c->u.tcp);
		rc = uv_tcp_open(&c->u.tcp, fd);
	} else {
		uv_pipe_init(s->loop, &c->u.pipe, 0);
		rc = uv_pipe_open(&c->u.pipe, fd);
	}
	c->u.h.data = c;
	s->live_conns++;
	if (rc != 0) {
		close(fd);
		c->closing = true;
		uv_close(&c->u.h, conn_closed_cb);
		return rc;
	}
	s->hst.accepts++;
	char src[64], port[16];
	struct bus_ident id = {0};
	src[0] = port[0] = '\0';
	if (l->tcp) {
		uv_tcp_nodelay(&c->u.tcp, 1);
		peer_of(c, src, sizeof(src), port, sizeof(port), &id);
	}
	c->reading = true;
	if (l->tls) { /* the handshake first; the core sees it after */
		c->tls = calloc(1, sizeof(*c->tls));
		if (!c->tls || bus__tls_start(c->tls, l->tls, true, NULL) != 0) {
			free(c->tls);
			c->tls = NULL;
			c->closing = true;
			uv_close(&c->u.h, conn_closed_cb);
			return UV_ENOMEM;
		}
		snprintf(c->src, sizeof(c->src), "%s", src);
		snprintf(c->port, sizeof(c->port), "%s", port);
		c->id = id;
		uv_timer_init(s->loop, &c->tls_timer);
		c->tls_timer.data = c;
		c->timer_open = true;
		uint64_t ms = bus_core_config_get(s->core)->timeout_ns / 1000000;
		uv_timer_start(&c->tls_timer, tls_timeout, ms ? ms : 1, 0);
		uv_read_start(&c->u.s, alloc_cb, read_cb);
		return 0;
	}
	c->conn = bus_core_on_connect(s->core, c,
	                              l->tcp ? BUS_KIND_TCP : BUS_KIND_LOCAL_IPC,
	                              src, port, now_ns(s));
	if (!c->conn) {
		c->closing = true;
		uv_close(&c->u.h, conn_closed_cb);
		return UV_ENOMEM;
	}
	if (!l->tcp)
		ident_of(fd, &id);
	bus_core_set_ident(s->core, c->conn, &id);
	if (!c->closing)
		uv_read_start(&c->u.s, alloc_cb, read_cb);
	return 0;
}

static void on_listener(uv_poll_t *h, int status, int events);

static void listener_retry(uv_timer_t *t)
{
	struct listener *l = t->data;
	if (!l->closing)
		uv_poll_start(&l->poll, UV_READABLE, on_listener);
}

/* The listener is readable: connections wait. Up to 64 a turn (the loop
 * goes on to the others). Out of descriptors, the reserve one is closed
 * to take the connection and close it (the client sees the close at
 * once, not a hang) and opened again; out of memory (the kernel's or
 * ours), the connection is closed, or the listener rests 100 ms: it is
 * never left dead. Every refusal is counted and logged. */
static void on_listener(uv_poll_t *h, int status, int events)
{
	(void)events;
	struct listener *l = h->data;
	struct bus_server *s = l->srv;
	if (status < 0) {
		refused(s, l, status);
		return;
	}
	for (int n = 0; n < 64 && !s->shutting_down; n++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			int rc = conn_open(s, l, fd);
			if (rc != 0)
				refused(s, l, rc);
			continue;
		}
		int e = errno;
		if (e == EAGAIN || e == EWOULDBLOCK)
			return;
		if (e == EINTR || e == ECONNABORTED)
			continue;
		if ((e == EMFILE || e == ENFILE) && s->reserve_fd >= 0) {
			close(s->reserve_fd);
			fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				close(fd);
			s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			refused(s, l, uv_translate_sys_error(e));
			if (fd >= 0)
				continue;
		} else {
			refused(s, l, uv_translate_sys_error(e));
		}
		uv_poll_stop(&l->poll);
		uv_timer_start(&l->retry, listener_retry, 100, 0);
		return;
	}
}

static void listener_closed(uv_handle_t *h)
{
	struct listener *l = h->data;
	struct bus_server *s = l->srv;
	if (--l->closing > 0)
		return;
	close(l->fd);
	bus__tls_ctx_free(l->tls);
	free(l);
	s->open_handles--;
	maybe_done(s);
}

static void listener_close(struct bus_server *s, struct listener *l)
{
	s->open_handles++;
	l->closing = 2;
	uv_close((uv_handle_t *)&l->poll, listener_closed);
	uv_close((uv_handle_t *)&l->retry, listener_closed);
}

/* Our bound socket l->fd: listen and poll it. 0, or a libuv error (the
 * listener is then closed and freed). */
static int listener_start(struct bus_server *s, struct listener *l)
{
	int rc = listen(l->fd, 1024) == 0 ? 0 : uv_translate_sys_error(errno);
	if (rc == 0)
		rc = uv_poll_init(s->loop, &l->poll, l->fd);
	if (rc != 0) {
		close(l->fd);
		free(l);
		return rc;
	}
	uv_timer_init(s->loop, &l->retry);
	l->poll.data = l->retry.data = l;
	rc = s->listener_count == LISTENERS_MAX
	         ? UV_EMFILE
	         : uv_poll_start(&l->poll, UV_READABLE, on_listener);
	if (rc != 0) {
		listener_close(s, l);
		return rc;
	}
	s->listeners[s->listener_count++] = l;
	return 0;
}


/* Is a live broker answering on path? */
static int unix_probe(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int rc = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

/* What to do about a listener's error, for its message ("" if nothing
 * useful can be said). */
static const char *listen_hint(int uverr)
{
	switch (uverr) {
	case UV_EADDRINUSE:
		return " (another process listens there: stop it, or choose "
		       "another port)";
	case UV_EACCES:
	case UV_EPERM:
		return " (not allowed: ports below 1024 need root or "
		       "CAP_NET_BIND_SERVICE; a socket path, write access to its "
		       "directory)";
	case UV_EADDRNOTAVAIL:
		return " (this machine has no such address)";
	case UV_ENOENT:
		return " (its directory is missing)";
	default:
		return "";
	}
}

/* The socket's directory: created 0750 if missing (one level: the
 * default /run/daemoneye); refused if another user owns it, or if others
 * may write in it without the sticky bit (they could replace the socket
 * between our bind and a client's connect). */
static int socket_dir_ok(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = 0;
	else
		*slash = 0;
	struct stat st;
	if (stat(dir, &st) != 0 && errno == ENOENT && mkdir(dir, 0750) != 0) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot create the socket's directory: "
		         "%s%s", dir, strerror(e),
		         e == ENOENT ? " (only its last part is created: create "
		                       "the parent first, or choose another path)"
		         : e == EACCES ? " (run as a user who may write in its "
		                         "parent, or choose another path)"
		                       : "");
		return BUS_EIO;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: the socket's directory: %s", dir,
		         strerror(errno ? errno : ENOTDIR));
		return BUS_EIO;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(err, errlen, "%s: the socket's directory belongs to uid "
		         "%u, not to us or root: refusing it", dir,
		         (unsigned)st.st_uid);
		return BUS_EINVAL;
	}
	if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX)) {
		snprintf(err, errlen, "%s: the socket's directory is group- or "
		         "world-writable (mode %04o): another user could replace "
		         "the socket; refusing it", dir,
		         (unsigned)(st.st_mode & 07777));
		return BUS_EINVAL;
	}
	return 0;
}

int bus_server_listen_unix(struct bus_server *s, const char *path, int mode,
                           char *err, size_t errlen)
{
	struct sockaddr_un probe;
	if (strlen(path) >= sizeof(probe.sun_path)) {
		snprintf(err, errlen, "%s: socket path longer than %zu bytes",
		         path, sizeof(probe.sun_path) - 1);
		return BUS_EINVAL;
	}
	int drc = socket_dir_ok(path, err, errlen);
	if (drc)
		return drc;
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s: exists and is not a socket",
			         path);
			return BUS_EINVAL;
		}
		int rc = unix_probe(path);
		if (rc == 0) {
			snprintf(err, errlen,
			         "%s: a live broker already answers there",
			         path);
			return BUS_EBUSY;
		}
		if (rc != -ECONNREFUSED) {
			snprintf(err, errlen, "%s: cannot tell if stale: %s",
			         path, strerror(-rc));
			return BUS_EIO;
		}
		unlink(path); /* stale: proven by the refused connect */
	}
	struct listener *l = calloc(1, sizeof(*l));
	if (!l)
		return BUS_ENOMEM;
	l->srv = s;
	snprintf(l->name, sizeof(l->name), "%s", path);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int rc = 0;
	/* the mode is the socket's from its first instant (a chmod after the
	 * bind leaves a window with the umask's) */
	mode_t old_umask = umask((mode_t)(~mode & 0777));
	int brc = l->fd < 0 ? -1 : bind(l->fd, (struct sockaddr *)&sa, sizeof(sa));
	int berr = errno;
	umask(old_umask);
	if (brc != 0) {
		errno = berr;
		rc = uv_translate_sys_error(errno);
	}
	else if ((l->path = strdup(path)) == NULL)
		rc = UV_ENOMEM;
	if (rc != 0) {
		if (l->fd >= 0)
			close(l->fd);
		free(l);
	} else if ((rc = listener_start(s, l)) != 0) {
		unlink(path);
	}
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s%s", path, uv_strerror(rc),
		         listen_hint(rc));
		return BUS_EIO;
	}
	return 0;
}

static int listen_tcp(struct bus_server *s, const char *host, int port,
                      SSL_CTX *tls, char *err, size_t errlen);

int bus_server_listen_tcp(struct bus_server *s, const char *host, int port,
                          char *err, size_t errlen)
{
	return listen_tcp(s, host, port, NULL, err, errlen);
}

int bus_server_listen_tls(struct bus_server *s, const char *host, int port,
                          const struct bus_tls_config *tls, char *err,
                          size_t errlen)
{
	SSL_CTX *ctx = bus__tls_ctx_new(tls, true, err, errlen);
	if (!ctx)
		return BUS_ECONFIG;
	return listen_tcp(s, host, port, ctx, err, errlen);
}

/* One listening socket on sa; takes tls (freed with the listener, or
 * here on failure). 0 or a libuv error. */
static int listen_addr(struct bus_server *s, const char *name,
                       const struct sockaddr *sa, socklen_t sl, bool v6only,
                       SSL_CTX *tls)
{
	struct listener *l = calloc(1, sizeof(*l));
	if (!l) {
		bus__tls_ctx_free(tls);
		return UV_ENOMEM;
	}
	l->srv = s;
	l->tcp = true;
	snprintf(l->name, sizeof(l->name), "%s", name);
	int one = 1, rc = 0;
	l->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	               0);
	if (l->fd < 0 ||
	    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (v6only && sa->sa_family == AF_INET6 && /* a name's IPv4
	                                               addresses are its own */
	     setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) !=
	             0) ||
	    bind(l->fd, sa, sl) != 0) {
		rc = uv_translate_sys_error(errno);
		if (l->fd >= 0)
			close(l->fd);
		free(l);
	} else {
		rc = listener_start(s, l); /* accepts from the next turn on */
		if (rc == 0)
			l->tls = tls, tls = NULL;
	}
	bus__tls_ctx_free(tls);
	return rc;
}

/* host: an address, or a name: then every address it resolves to (a
 * listener each; one the machine does not have is skipped while another
 * binds). Takes tls. */
static int listen_tcp(struct bus_server *s, const char *host, int port,
                      SSL_CTX *tls, char *err, size_t errlen)
{
	char name[128];
	snprintf(name, sizeof(name), strchr(host, ':') ? "[%s]:%d" : "%s:%d",
	         host, port);
	struct sockaddr_storage ss;
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
		int rc = listen_addr(s, name, (struct sockaddr *)&ss,
		                     ss.ss_family == AF_INET
		                             ? sizeof(struct sockaddr_in)
		                             : sizeof(struct sockaddr_in6),
		                     false, tls);
		if (rc != 0) {
			snprintf(err, errlen, "%s: %s%s", name, uv_strerror(rc),
			         listen_hint(rc));
			return BUS_EIO;
		}
		return 0;
	}
	char ps[8];
	snprintf(ps, sizeof(ps), "%d", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_ADDRCONFIG |
	                                     AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int g = getaddrinfo(host, ps, &hints, &res);
	if (g != 0) {
		snprintf(err, errlen, "%s: cannot resolve %s: %s", name, host,
		         g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
		bus__tls_ctx_free(tls);
		return BUS_EINVAL;
	}
	int bound = 0, rc = 0, skipped = 0;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		bool dup = false; /* the resolver may repeat an address */
		for (struct addrinfo *b = res; b != a && !dup; b = b->ai_next)
			dup = b->ai_addrlen == a->ai_addrlen &&
			      !memcmp(b->ai_addr, a->ai_addr, a->ai_addrlen);
		if (dup)
			continue;
		if (tls)
			SSL_CTX_up_ref(tls);
		rc = listen_addr(s, name, a->ai_addr, a->ai_addrlen, true, tls);
		if (rc == 0) {
			bound++;
		} else if (rc == UV_EADDRNOTAVAIL || rc == UV_EAFNOSUPPORT) {
			skipped = rc;
			rc = 0;
		} else {
			char ip[64] = "?";
			uv_ip_name(a->ai_addr, ip, sizeof(ip));
			snprintf(err, errlen, "%s (%s): %s%s", name, ip,
			         uv_strerror(rc), listen_hint(rc));
			break;
		}
	}
	freeaddrinfo(res);
	bus__tls_ctx_free(tls);
	if (rc == 0 && bound == 0) {
		snprintf(err, errlen, "%s: %s", name,
		         uv_strerror(skipped ? skipped : UV_EADDRNOTAVAIL));
		rc = UV_EADDRNOTAVAIL;
	}
	return rc == 0 ? 0 : BUS_EIO;
}

/* ---- lifecycle --------------------------------------------------------- */
int bus_server_new(uv_loop_t *loop, const struct bus_core_config *cfg,
                   struct bus_server **out)
{
	struct bus_server *s = calloc(1, sizeof(*s));
	if (!s)
		return BUS_ENOMEM;
	s->loop = loop;
	s->log_level = 1;
	s->rbuf = malloc(READ_BUF_BYTES);
	s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t rt = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	s->core = bus_core_new(cfg, &host_ops, s, uv_hrtime(), rt);
	if (!s->rbuf || !s->core) {
		int rc = s->core ? BUS_ENOMEM : BUS_ECONFIG;
		bus_core_free(s->core);
		free(s->rbuf);
		if (s->reserve_fd >= 0)
			close(s->reserve_fd);
		free(s);
		return rc;
	}
	uv_timer_init(loop, &s->timer);
	uv_check_init(loop, &s->check);
	uv_prepare_init(loop, &s->prepare);
	uv_idle_init(loop, &s->idle);
	s->timer.data = s->check.data = s->prepare.data = s->idle.data = s;
	uv_check_start(&s->check, check_cb);
	uv_prepare_start(&s->prepare, prepare_cb);
	uv_unref((uv_handle_t *)&s->prepare);
	*out = s;
	return 0;
}

static void metrics_closed(void *arg)
{
	struct bus_server *s = arg;
	s->open_handles--;
	maybe_done(s);
}

int bus_server_metrics_listen(struct bus_server *s, const char *spec,
                              char *err, size_t errlen)
{
	if (s->metrics || s->shutting_down) {
		snprintf(err, errlen, "%s: %s", spec,
		         s->metrics ? "the metrics endpoint is already open"
		                    : "the broker is shutting down");
		return BUS_EBUSY;
	}
	return bus__metrics_start(s, s->loop, spec, &s->metrics, err, errlen);
}

uint16_t bus_server_metrics_port(const struct bus_server *s)
{
	return s->metrics ? bus__metrics_port(s->metrics) : 0;
}

void bus_server_set_metrics_extra(struct bus_server *s,
                                  void (*fn)(void *arg, FILE *f), void *arg)
{
	s->metrics_extra = fn;
	s->metrics_extra_arg = arg;
}

void bus__server_metrics_extra(struct bus_server *s, FILE *f)
{
	if (s->metrics_extra)
		s->metrics_extra(s->metrics_extra_arg, f);
}

void bus_server_shutdown(struct bus_server *s,
                         void (*done_cb)(struct bus_server *, void *),
                         void *arg)
{
	if (s->shutting_down)
		return;
	s->shutting_down = true;
	s->done_cb = done_cb;
	s->done_arg = arg;
	if (s->refuse_unlogged)
		logf_(s, 1, "refused connections (%u since the last report): %s",
		      s->refuse_unlogged, uv_strerror(s->refuse_err));
	for (int i = 0; i < s->listener_count; i++) {
		struct listener *l = s->listeners[i];
		if (l->path) {
			unlink(l->path);
			free(l->path);
			l->path = NULL;
		}
		listener_close(s, l);
	}
	s->listener_count = 0;
	if (s->metrics) {
		s->open_handles++;
		bus__metrics_close(s->metrics, metrics_closed, s);
		s->metrics = NULL;
	}
	/* the timer keeps running (it enforces the flush deadline) and the
	 * check handle keeps flushing until the last connection is closed */
	bus_core_shutdown(s->core, now_ns(s));
	flush(s);
	/* the announcement reaches internal clients first, then they close */
	pump(s);
	for (struct bus_link *l = s->iclients; l; l = l->next)
		bus_client_close(l->cl);
	pump(s);
	arm_timer(s);
	maybe_done(s);
}

void bus_server_free(struct bus_server *s)
{
	if (!s)
		return;
	bus_core_free(s->core);
	if (s->acl) {
		bus_acl_free(s->acl);
		free(s->acl);
	}
	free(s->rbuf);
	if (s->reserve_fd >= 0)
		close(s->reserve_fd);
	free(s);
}

struct bus_core *bus_server_core(struct bus_server *s) { return s->core; }

void bus_server_host_stats(const struct bus_server *s,
                           struct bus_host_stats *out)
{
	*out = s->hst;
}

void bus_server_set_log_level(struct bus_server *s, int level)
{
	s->log_level = level;
}
