/* SPDX-License-Identifier: Apache-2.0 */
/*
 * uvclient.c — the libuv host of the client core (client.h) for socket
 * clients: a Unix socket or TCP connection, a timer at the core's next
 * deadline, and a flush of the core's buffer once per loop turn (before
 * the loop blocks, and after I/O). Everything that decides anything is in
 * the sans-I/O core; this file only moves bytes and reports events.
 */
#define _GNU_SOURCE /* struct ucred */
#include "bus/net.h"
#include "netint.h"

#include <sys/socket.h>
#include <netdb.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_BUF_BYTES (256u << 10)

union cstream {
	uv_handle_t h;
	uv_stream_t s;
	uv_pipe_t pipe;
	uv_tcp_t tcp;
};

struct uvclient {
	uv_loop_t *loop;
	struct bus_client *c;
	struct bus_addr addr;
	char spec[300];
	int64_t broker_uid; /* cfg's */
	union cstream u;
	bool stream_open;   /* u is initialised and not yet closed */
	bool connected;
	bool read_paused;   /* bus_client_read_pause: this connection's */
	int close_status;   /* what to report when the stream closes */
	uv_connect_t creq;
	uv_write_t wreq;
	bool wrote_now;     /* the write went out whole at once (uv_try_write):
	                       its completion is reported by flush */
	uv_timer_t timer;
	uv_prepare_t prepare;
	uv_check_t check;
	int handles_open;
	bool freeing;
	uint8_t *rbuf;
	uint64_t rng;
	char err[512];
	struct bus_host_stats hst;
	SSL_CTX *tls_ctx;   /* tls://: made at open from cfg->tls */
	struct bus_tls *tls; /* this connection's session */
	/* a host name: resolved (getaddrinfo, off the loop) at every
	 * connect, its addresses tried in order */
	uv_getaddrinfo_t *gai;    /* in flight; detached when the stream
	                             closes first (gai_cb frees it) */
	struct addrinfo *ai_head, *ai_cur;
	bool retrying;            /* closing u to try ai_cur->ai_next */
	bool retry_abort;         /* ... and asked to close meanwhile */
};

static void set_err(struct uvclient *u, const char *what, int uverr)
{
	snprintf(u->err, sizeof(u->err), "%s %s: %s", what, u->spec,
	         uv_strerror(uverr));
}

/* ---- teardown ----------------------------------------------------------- */
static void handle_closed(uv_handle_t *h)
{
	struct uvclient *u = h->data;
	if (--u->handles_open == 0) {
		bus__tls_ctx_free(u->tls_ctx);
		bus_client_free(u->c);
		free(u->rbuf);
		free(u);
	}
}

/* After the core reached CLOSED: close every handle, then free. */
static void maybe_free(struct uvclient *u)
{
	if (u->freeing || bus_client_state(u->c) != BUS_CLIENT_CLOSED ||
	    u->stream_open)
		return;
	u->freeing = true;
	u->handles_open = 3;
	uv_close((uv_handle_t *)&u->timer, handle_closed);
	uv_close((uv_handle_t *)&u->prepare, handle_closed);
	uv_close((uv_handle_t *)&u->check, handle_closed);
}

static void arm_timer(struct uvclient *u);

static void stream_closed(uv_handle_t *h)
{
	struct uvclient *u = h->data;
	if (u->ai_head)
		uv_freeaddrinfo(u->ai_head);
	u->ai_head = u->ai_cur = NULL;
	u->stream_open = false;
	u->connected = false;
	u->read_paused = false;
	if (u->tls) {
		bus__tls_free(u->tls);
		free(u->tls);
		u->tls = NULL;
	}
	if (u->wrote_now) { /* it went out before the close */
		u->wrote_now = false;
		bus_client_on_written(u->c, 0);
	}
	bus_client_on_close(u->c, u->close_status);
	maybe_free(u);
	if (!u->freeing)
		arm_timer(u);
}

static void stream_close(struct uvclient *u, int status)
{
	if (!u->stream_open)
		return;
	if (u->gai) { /* its callback frees it, and nothing else */
		u->gai->data = NULL;
		uv_cancel((uv_req_t *)u->gai);
		u->gai = NULL;
	}
	if (u->retrying) { /* retry_closed ends the stream instead */
		if (!u->retry_abort)
			u->close_status = status;
		u->retry_abort = true;
		return;
	}
	if (uv_is_closing(&u->u.h))
		return;
	u->close_status = status;
	uv_close(&u->u.h, stream_closed);
}

/* ---- time and turns ----------------------------------------------------- */
/* The core writes what it buffered; a write that went out whole at once
 * is reported complete (which may let it write more), until none is. */
static void flush(struct uvclient *u)
{
	bus_client_flush(u->c);
	while (u->wrote_now && !u->freeing) {
		u->wrote_now = false;
		bus_client_on_written(u->c, 0);
		bus_client_flush(u->c);
	}
}

static void timer_cb(uv_timer_t *t)
{
	struct uvclient *u = t->data;
	bus_client_on_tick(u->c);
	flush(u);
	maybe_free(u);
	if (!u->freeing)
		arm_timer(u);
}

static void arm_timer(struct uvclient *u)
{
	uint64_t d = bus_client_next_deadline(u->c);
	if (d == UINT64_MAX) {
		uv_timer_stop(&u->timer);
		return;
	}
	uint64_t now = uv_hrtime();
	uint64_t ms = d > now ? (d - now + 999999) / 1000000 : 0;
	uv_timer_start(&u->timer, timer_cb, ms, 0);
}

/* After I/O: write what the callbacks buffered. */
static void check_cb(uv_check_t *h)
{
	struct uvclient *u = h->data;
	if (!u->freeing)
		flush(u);
}

/* Before the loop blocks: write what was buffered since, and sleep no
 * longer than the core's next deadline (re-armed once per turn, here). */
static void prepare_cb(uv_prepare_t *h)
{
	struct uvclient *u = h->data;
	if (u->freeing)
		return;
	flush(u);
	arm_timer(u);
}

/* ---- I/O ---------------------------------------------------------------- */
static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)hint;
	struct uvclient *u = h->data;
	buf->base = (char *)u->rbuf;
	buf->len = READ_BUF_BYTES;
}

static void tls_in(struct uvclient *u, size_t n);

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	(void)buf;
	struct uvclient *u = st->data;
	if (n == 0)
		return;
	if (n < 0) {
		if (n != UV_EOF)
			set_err(u, "read from", (int)n);
		else
			snprintf(u->err, sizeof(u->err),
			         "%s: the broker closed the connection", u->spec);
		stream_close(u, n == UV_EOF ? BUS_ECLOSED : BUS_EIO);
		return;
	}
	u->hst.reads++;
	if (u->tls)
		tls_in(u, (size_t)n);
	else
		bus_client_on_bytes(u->c, u->rbuf, (size_t)n);
}

static void write_cb(uv_write_t *req, int status)
{
	struct uvclient *u = req->data;
	if (status < 0 && status != UV_ECANCELED)
		set_err(u, "write to", status);
	bus_client_on_written(u->c, status < 0 ? BUS_EIO : 0);
}

static int tls_send(struct uvclient *u, bool core);

/* Is the process behind the socket the broker we mean? Anyone who
 * could bind the path first (a /tmp socket) would otherwise receive our
 * registration and answer as the broker. */
static bool broker_trusted(struct uvclient *u)
{
	uv_os_fd_t fd;
	struct ucred uc;
	socklen_t len = sizeof(uc);
	if (uv_fileno(&u->u.h, &fd) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0) {
		snprintf(u->err, sizeof(u->err), "%s: cannot tell who the broker "
		         "is (SO_PEERCRED)", u->spec);
		return false;
	}
	int64_t want = u->broker_uid;
	uid_t me = geteuid();
	if (want >= 0 ? (int64_t)uc.uid == want : (uc.uid == 0 || uc.uid == me))
		return true;
	if (want >= 0)
		snprintf(u->err, sizeof(u->err), "%s: the broker there runs as uid "
		         "%u, not %lld: not registering", u->spec,
		         (unsigned)uc.uid, (long long)want);
	else
		snprintf(u->err, sizeof(u->err), "%s: the broker there runs as uid "
		         "%u, neither root nor us (%u): not registering", u->spec,
		         (unsigned)uc.uid, (unsigned)me);
	return false;
}

static void retry_closed(uv_handle_t *h);

static void connect_cb(uv_connect_t *req, int status)
{
	struct uvclient *u = req->data;
	if (status < 0) {
		if (status != UV_ECANCELED)
			set_err(u, "connect", status);
		if (status != UV_ECANCELED && u->ai_cur && u->ai_cur->ai_next &&
		    !uv_is_closing(&u->u.h)) { /* the name's next address */
			u->ai_cur = u->ai_cur->ai_next;
			u->retrying = true;
			uv_close(&u->u.h, retry_closed);
			return;
		}
		stream_close(u, BUS_EIO);
		return;
	}
	if (uv_is_closing(&u->u.h))
		return;
	if (u->addr.is_unix && !broker_trusted(u)) {
		stream_close(u, BUS_EIO); /* nothing was sent: not even a name */
		return;
	}
	if (!u->addr.is_unix)
		uv_tcp_nodelay(&u->u.tcp, 1);
	if (u->tls_ctx) { /* the TLS handshake first (under the core's
	                     connect deadline), then the core's */
		u->tls = calloc(1, sizeof(*u->tls));
		if (!u->tls || bus__tls_start(u->tls, u->tls_ctx, false,
		                              u->addr.host) != 0 ||
		    tls_send(u, false) != 0) {
			snprintf(u->err, sizeof(u->err), "%s: TLS: out of memory",
			         u->spec);
			stream_close(u, BUS_EIO);
			return;
		}
		uv_read_start(&u->u.s, alloc_cb, read_cb);
		return;
	}
	u->connected = true;
	uv_read_start(&u->u.s, alloc_cb, read_cb);
	bus_client_on_connected(u->c);
}

/* ---- tls:// ------------------------------------------------------------- */
static void tls_core_written(void *arg, int status)
{
	struct uvclient *u = arg;
	if (status < 0 && status != UV_ECANCELED)
		set_err(u, "write to", status);
	bus_client_on_written(u->c, status < 0 ? BUS_EIO : 0);
}

/* Sends the ciphertext TLS has (core: the core's write, which always has
 * some). 0, or -1 (nothing was sent). */
static int tls_send(struct uvclient *u, bool core)
{
	int rc = bus__tls_send(u->tls, &u->u.s, core ? tls_core_written : NULL,
	                       u);
	u->hst.writes += rc > 0;
	return rc < 0 || (rc == 0 && core) ? -1 : 0;
}

static void tls_plain(void *arg, const uint8_t *p, size_t n)
{
	struct uvclient *u = arg;
	if (uv_is_closing(&u->u.h)) {
		u->tls->stop = true;
		return;
	}
	bus_client_on_bytes(u->c, p, n);
}

static void tls_in(struct uvclient *u, size_t n)
{
	char err[300];
	bool ready = false;
	int rc = bus__tls_feed(u->tls, u->rbuf, n, tls_plain, u, &ready, err,
	                       sizeof(err));
	if (rc == 0 && ready) {
		u->connected = true;
		bus_client_on_connected(u->c);
		if (!uv_is_closing(&u->u.h) && u->tls)
			rc = bus__tls_feed(u->tls, NULL, 0, tls_plain, u, &ready,
			                   err, sizeof(err));
	}
	if (uv_is_closing(&u->u.h) || !u->tls)
		return;
	if (rc == 0 && tls_send(u, false) != 0)
		snprintf(err, sizeof(err), "TLS: cannot write"), rc = -1;
	if (rc != 0) {
		snprintf(u->err, sizeof(u->err), "%.200s: %.300s", u->spec, err);
		stream_close(u, BUS_EIO);
	}
}

/* ---- the core's requests ------------------------------------------------- */
static uint64_t op_now(void *host)
{
	(void)host;
	return uv_hrtime();
}

/* Reconnect jitter only (not security), seeded per client. */
static uint64_t op_random(void *host)
{
	struct uvclient *u = host;
	return bus_splitmix64(&u->rng);
}

/* Connects u's TCP handle to sa; a failure to start closes the stream
 * (reported from its close callback, never inside a core call). */
static void tcp_connect(struct uvclient *u, const struct sockaddr *sa)
{
	int rc = uv_tcp_connect(&u->creq, &u->u.tcp, sa, connect_cb);
	if (rc != 0) {
		set_err(u, "connect", rc);
		stream_close(u, BUS_EIO);
	}
}

/* The previous address failed and its handle is closed: the next. */
static void retry_closed(uv_handle_t *h)
{
	struct uvclient *u = h->data;
	u->retrying = false;
	if (u->retry_abort) {
		u->retry_abort = false;
		stream_closed(h);
		return;
	}
	uv_tcp_init(u->loop, &u->u.tcp);
	u->u.h.data = u;
	tcp_connect(u, u->ai_cur->ai_addr);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct uvclient *u = req->data;
	free(req);
	if (!u) { /* the stream closed while we resolved */
		if (res)
			uv_freeaddrinfo(res);
		return;
	}
	u->gai = NULL;
	if (status < 0 || !res) {
		snprintf(u->err, sizeof(u->err), "resolve %s: %s", u->addr.host,
		         uv_strerror(status < 0 ? status : UV_EAI_NONAME));
		if (res)
			uv_freeaddrinfo(res);
		stream_close(u, BUS_EIO);
		return;
	}
	u->ai_head = u->ai_cur = res;
	tcp_connect(u, res->ai_addr);
}

static void op_connect(void *host)
{
	struct uvclient *u = host;
	u->creq.data = u;
	if (u->addr.is_unix) {
		uv_pipe_init(u->loop, &u->u.pipe, 0);
		u->u.h.data = u;
		u->stream_open = true;
		uv_pipe_connect(&u->creq, &u->u.pipe, u->addr.path, connect_cb);
		return;
	}
	uv_tcp_init(u->loop, &u->u.tcp);
	u->u.h.data = u;
	u->stream_open = true;
	struct sockaddr_storage ss;
	if (uv_ip4_addr(u->addr.host, u->addr.port, (struct sockaddr_in *)&ss) ==
	        0 ||
	    uv_ip6_addr(u->addr.host, u->addr.port, (struct sockaddr_in6 *)&ss) ==
	        0) {
		tcp_connect(u, (struct sockaddr *)&ss);
		return;
	}
	/* a host name: its addresses, in the resolver's order */
	char port[8];
	snprintf(port, sizeof(port), "%d", u->addr.port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV};
	u->gai = malloc(sizeof(*u->gai));
	int rc = u->gai ? uv_getaddrinfo(u->loop, u->gai, gai_cb, u->addr.host,
	                                 port, &hints)
	                : UV_ENOMEM;
	if (rc != 0) {
		free(u->gai);
		u->gai = NULL;
		snprintf(u->err, sizeof(u->err), "resolve %s: %s", u->addr.host,
		         uv_strerror(rc));
		stream_close(u, BUS_EIO);
		return;
	}
	u->gai->data = u;
}

static void op_write(void *host, const struct bus_iov *iov, size_t n)
{
	struct uvclient *u = host;
	if (u->tls) { /* encrypted now; the write completes with its
	                 ciphertext's */
		if (bus__tls_encrypt(u->tls, iov, n) != 0 || tls_send(u, true)) {
			snprintf(u->err, sizeof(u->err), "%s: TLS: cannot write",
			         u->spec);
			stream_close(u, BUS_EIO);
		}
		return;
	}
	uv_buf_t b = uv_buf_init((char *)iov[0].base, (unsigned)iov[0].len);
	(void)n;
	u->hst.writes++;
	/* Most writes fit the socket at once: no write request (whose
	 * completion costs libuv an epoll_ctl per write); flush reports it. */
	int rc = uv_try_write(&u->u.s, &b, 1);
	if (rc >= 0 && (unsigned)rc == b.len) {
		u->wrote_now = true;
		return;
	}
	if (rc > 0) {
		b.base += rc;
		b.len -= (unsigned)rc;
	} else if (rc != UV_EAGAIN) {
		set_err(u, "write to", rc);
		stream_close(u, BUS_EIO); /* the close reports the failure */
		return;
	}
	u->wreq.data = u;
	rc = uv_write(&u->wreq, &u->u.s, &b, 1, write_cb);
	if (rc < 0) {
		set_err(u, "write to", rc);
		stream_close(u, BUS_EIO); /* the close reports the failure */
	}
}

static void op_close(void *host)
{
	struct uvclient *u = host;
	stream_close(u, BUS_ECLOSED);
}

static const struct bus_client_ops uv_ops = {op_now, op_random, op_connect,
                                             op_write, op_close};

/* ---- API ------------------------------------------------------------------ */
int bus_client_open(uv_loop_t *loop, const char *address,
                    const struct bus_client_config *cfg,
                    const struct bus_client_handlers *h,
                    struct bus_client **out)
{
	struct uvclient *u = calloc(1, sizeof(*u));
	if (!u)
		return BUS_ENOMEM;
	char err[300];
	if (!address || bus__addr_parse(address, &u->addr, err, sizeof(err))) {
		free(u);
		return BUS_EINVAL;
	}
	snprintf(u->spec, sizeof(u->spec), "%s", address);
	if (u->addr.tls) {
		u->tls_ctx = bus__tls_ctx_new(cfg->tls, false, err, sizeof(err));
		if (!u->tls_ctx) {
			free(u);
			return BUS_ECONFIG;
		}
	}
	u->loop = loop;
	u->broker_uid = cfg->broker_uid;
	u->rng = uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 32);
	u->rbuf = malloc(READ_BUF_BYTES);
	u->c = u->rbuf ? bus_client_new(cfg, &uv_ops, u, h) : NULL;
	if (!u->c) {
		int rc = u->rbuf ? BUS_EINVAL : BUS_ENOMEM;
		bus__tls_ctx_free(u->tls_ctx);
		free(u->rbuf);
		free(u);
		return rc;
	}
	uv_timer_init(loop, &u->timer);
	uv_prepare_init(loop, &u->prepare);
	uv_check_init(loop, &u->check);
	u->timer.data = u->prepare.data = u->check.data = u;
	uv_prepare_start(&u->prepare, prepare_cb);
	uv_check_start(&u->check, check_cb);
	uv_unref((uv_handle_t *)&u->prepare);
	uv_unref((uv_handle_t *)&u->check);
	bus_client_start(u->c);
	arm_timer(u);
	*out = u->c;
	return 0;
}

void bus_client_read_pause(struct bus_client *c, bool pause)
{
	struct uvclient *u = bus_client_host(c);
	if (!u->connected || !u->stream_open || uv_is_closing(&u->u.h) ||
	    u->read_paused == pause)
		return;
	u->read_paused = pause;
	if (pause)
		uv_read_stop(&u->u.s);
	else
		uv_read_start(&u->u.s, alloc_cb, read_cb);
}

const char *bus_client_net_error(const struct bus_client *c)
{
	const struct uvclient *u = bus_client_host(c);
	return u->err;
}

const char *bus_client_reason(const struct bus_client *c, int reason)
{
	const struct uvclient *u = bus_client_host(c);
	if ((reason == BUS_EIO || reason == BUS_ECLOSED) && u->err[0])
		return u->err;
	return bus_strerror(reason);
}

void bus_client_host_stats(const struct bus_client *c,
                           struct bus_host_stats *out)
{
	const struct uvclient *u = bus_client_host(c);
	*out = u->hst;
}

int bus_tls_check(const struct bus_tls_config *tls, bool server, char *err,
                  size_t errlen)
{
	SSL_CTX *ctx = bus__tls_ctx_new(tls, server, err, errlen);
	bus__tls_ctx_free(ctx);
	return ctx ? 0 : BUS_ECONFIG;
}
