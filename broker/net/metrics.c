/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c — the Prometheus endpoint (broker.metrics.listen): GNU
 * libmicrohttpd without threads of its own, in the server's loop. Its
 * epoll descriptor is polled by libuv and its timeout is a libuv timer, so
 * a scrape renders the core's statistics on the loop's thread, between
 * two core calls, like any other request. Loopback addresses only: the
 * statistics name clients and topics, and the endpoint has no
 * authentication (put a proxy in front to export them further).
 */
#define _DEFAULT_SOURCE /* open_memstream's companions, in6addr_loopback */
#include "bus/net.h"
#include "bus/prom.h"
#include "netint.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_CONNECTIONS_MAX 16
#define METRICS_TIMEOUT_S 10

struct bus_metrics {
	struct bus_server *srv;
	struct MHD_Daemon *d;
	uv_poll_t poll;
	uv_timer_t timer;
	int closing;
	uint16_t port;
	void (*done)(void *arg);
	void *done_arg;
	uint64_t scrapes;
};

static void run(struct bus_metrics *m);

static void on_timer(uv_timer_t *t)
{
	run(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	(void)status;
	(void)events;
	run(p->data);
}

/* MHD does what is ready, then says when it next wants to run (a
 * connection's timeout, or at once when it holds work). */
static void run(struct bus_metrics *m)
{
	MHD_run(m->d);
	MHD_UNSIGNED_LONG_LONG ms;
	if (MHD_get_timeout(m->d, &ms) == MHD_YES)
		uv_timer_start(&m->timer, on_timer, (uint64_t)ms, 0);
	else
		uv_timer_stop(&m->timer);
}

/* The page: the broker's families, then the host's own (the agent's). */
static char *render(struct bus_metrics *m, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		return NULL;
	uint8_t *st = NULL;
	size_t n = 0;
	if (bus_core_stats_pack(bus_server_core(m->srv), true, &st, &n) == 0)
		bus_prom_broker(f, st, n, NULL, 0);
	free(st);
	bus_prom_family(f, "busrt_metrics_scrapes_total", "counter",
	                "requests for /metrics served by this endpoint");
	fprintf(f, "busrt_metrics_scrapes_total %llu\n",
	        (unsigned long long)++m->scrapes);
	bus__server_metrics_extra(m->srv, f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             char *body, size_t len, const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result text_reply(struct MHD_Connection *conn,
                                  unsigned status, const char *text)
{
	char *body = strdup(text);
	if (!body)
		return MHD_NO;
	return reply(conn, status, body, strlen(body),
	             "text/plain; charset=utf-8");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
	(void)version;
	(void)upload;
	struct bus_metrics *m = cls;
	bool get = !strcmp(method, MHD_HTTP_METHOD_GET);
	if (!get && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
		/* a body is not read: refuse at once */
		*upload_size = 0;
		return text_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		                  "only GET /metrics here\n");
	}
	if (!*state) { /* the headers: answer when the request is whole */
		*state = m;
		return MHD_YES;
	}
	if (*upload_size) { /* a GET with a body: not ours to read */
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/metrics"))
		return text_reply(conn, MHD_HTTP_NOT_FOUND,
		                  "not found: the metrics are at /metrics\n");
	size_t len = 0;
	char *body = render(m, &len);
	if (!body)
		return text_reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                  "out of memory\n");
	return reply(conn, MHD_HTTP_OK, body, len, BUS_PROM_CONTENT_TYPE);
}

int bus__metrics_addr(const char *spec, struct sockaddr_storage *ss,
                      bool *ipv6, char *err, size_t errlen)
{
	struct bus_addr a;
	if (bus__addr_parse(spec, &a, err, errlen))
		return BUS_EINVAL;
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	*ipv6 = false;
	bool loopback = false;
	if (a.is_unix || a.tls) {
		snprintf(err, errlen, "%s: expected HOST:PORT (a loopback "
		                      "address)", spec);
		return BUS_EINVAL;
	}
	if (inet_pton(AF_INET, a.host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)a.port);
		loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
	} else if (inet_pton(AF_INET6, a.host, &v6->sin6_addr) == 1) {
		*ipv6 = true;
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)a.port);
		loopback = !memcmp(&v6->sin6_addr, &in6addr_loopback,
		                   sizeof(in6addr_loopback));
	} else if (!strcmp(a.host, "localhost")) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)a.port);
		v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		loopback = true;
	}
	if (!loopback) {
		snprintf(err, errlen, "%s: the metrics endpoint listens on a "
		                      "loopback address only (127.0.0.1:PORT, "
		                      "[::1]:PORT, localhost:PORT)", spec);
		return BUS_EINVAL;
	}
	return 0;
}

int bus__metrics_start(struct bus_server *s, uv_loop_t *loop,
                       const char *spec, struct bus_metrics **out,
                       char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	bool ipv6;
	int rc = bus__metrics_addr(spec, &ss, &ipv6, err, errlen);
	if (rc)
		return rc;
	uint16_t port = ntohs(ipv6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                           : ((struct sockaddr_in *)&ss)->sin_port);
	struct bus_metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return BUS_ENOMEM;
	m->srv = s;
	unsigned flags = MHD_USE_EPOLL | (ipv6 ? MHD_USE_IPv6 : 0);
	m->d = MHD_start_daemon(
	    flags, port, NULL, NULL, on_request, m,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONNECTIONS_MAX,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_TIMEOUT_S,
	    MHD_OPTION_END);
	if (!m->d) {
		snprintf(err, errlen, "%s: cannot listen (the port is in use, "
		                      "or not ours to bind)", spec);
		free(m);
		return BUS_EIO;
	}
	const union MHD_DaemonInfo *ep =
	    MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD);
	const union MHD_DaemonInfo *pi =
	    MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
	m->port = pi ? pi->port : port;
	if (!ep || uv_poll_init(loop, &m->poll, ep->epoll_fd) != 0) {
		snprintf(err, errlen, "%s: cannot poll the HTTP server", spec);
		MHD_stop_daemon(m->d);
		free(m);
		return BUS_EIO;
	}
	uv_timer_init(loop, &m->timer);
	m->poll.data = m->timer.data = m;
	uv_poll_start(&m->poll, UV_READABLE, on_poll);
	run(m);
	*out = m;
	return 0;
}

int bus_metrics_addr_check(const char *spec, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	bool ipv6;
	return bus__metrics_addr(spec, &ss, &ipv6, err, errlen);
}

uint16_t bus__metrics_port(const struct bus_metrics *m)
{
	return m->port;
}

static void closed(uv_handle_t *h)
{
	struct bus_metrics *m = h->data;
	if (--m->closing)
		return;
	/* libuv no longer polls its descriptor: MHD may close it */
	MHD_stop_daemon(m->d);
	void (*done)(void *) = m->done;
	void *arg = m->done_arg;
	free(m);
	if (done)
		done(arg);
}

void bus__metrics_close(struct bus_metrics *m, void (*done)(void *arg),
                        void *arg)
{
	m->done = done;
	m->done_arg = arg;
	m->closing = 2;
	uv_poll_stop(&m->poll);
	uv_close((uv_handle_t *)&m->poll, closed);
	uv_close((uv_handle_t *)&m->timer, closed);
}
