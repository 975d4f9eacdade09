/* SPDX-License-Identifier: Apache-2.0 */
/*
 * busrt-bench — the measuring end of `make bench` (bench/run.py drives it).
 * Each subcommand does one job and prints one JSON object on stdout.
 *
 *   raw-stream --messages N            two processes, one socketpair, the
 *                                      same 109-byte framed deliveries in
 *                                      64 KiB writes: the physical bound
 *   raw-pingpong --rounds N            two processes bouncing one frame:
 *                                      the round-trip bound
 *   pub -s ADDR -n NAME --topic T --messages N [--size B]
 *                                      (the first 8 payload bytes carry
 *                                      its sequence number from 1)
 *   sub -s ADDR -n NAME --mask M --expect N [--slow-us U --slow-for-ms T]
 *       [--idle-ms I]                  checks every publisher's sequence
 *                                      (lost, duplicated, reordered);
 *                                      stops at N, or I ms (10000) after
 *                                      the last message (the rest lost);
 *                                      --slow-us: takes U us per frame
 *                                      for its first T ms (a slow
 *                                      consumer: the loop is busy)
 *   rpc-server -s ADDR -n NAME         echo until SIGTERM
 *   rpc-client -s ADDR --target NAME --calls N [--method M] [--size B]
 *                                      (--size 0: empty params, e.g. a
 *                                      DaemonEye health.check)
 *   collector -s ADDR --messages N     procmond's collector code (diff,
 *                                      protobuf events, QoS 1 publish)
 *                                      fed tables of 1000 processes that
 *                                      all change every cycle: events/s
 *   embedded --messages N              internal publisher -> internal
 *                                      subscriber, one process, no socket
 *   embedded-rpc --calls N             internal caller -> internal server
 *
 * `sub` prints "ready" on stderr once subscribed. Timings are uv_hrtime.
 */
#define _DEFAULT_SOURCE
#include "bus/daemoneye.h"
#include "bus/net.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "latency.h"

static const char *opt_addr, *opt_name = "bench", *opt_topic = "bench/t",
                  *opt_mask = "bench/#", *opt_target = "bench.server",
                  *opt_method = "echo";
static uint64_t opt_n = 1000000, opt_size = 100, opt_slow_us, opt_slow_ms,
                opt_idle_ms = 10000;
static bool opt_no_ack; /* rpc-client: calls with QoS none */

static void die(const char *what, int rc)
{
	fprintf(stderr, "busrt-bench: %s: %s\n", what, bus_strerror(rc));
	exit(1);
}

/* ---- raw baselines --------------------------------------------------------- */
static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0) {
			perror("write");
			exit(1);
		}
		p += w;
		n -= (size_t)w;
	}
}

/* One delivered PUBLISH as the broker frames it: 6 + "pub\0bench/t\0" +
 * payload = 6 + 4 + 8 + 100 = 118 bytes for a 100-byte payload. */
static size_t make_frame(uint8_t *f, size_t payload)
{
	static const char hdr[] = "pub\0bench/t"; /* + its \0 */
	size_t body = sizeof(hdr) + payload;
	f[0] = BUS_OP_PUBLISH;
	f[1] = (uint8_t)body;
	f[2] = (uint8_t)(body >> 8);
	f[3] = f[4] = 0;
	f[5] = 0;
	memcpy(f + 6, hdr, sizeof(hdr));
	memset(f + 6 + sizeof(hdr), 'p', payload);
	return 6 + body;
}

static int cmd_raw_stream(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
		perror("socketpair");
		return 1;
	}
	uint8_t frame[4096];
	size_t fl = make_frame(frame, opt_size);
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		size_t per = 65536 / fl;
		uint8_t *block = malloc(per * fl);
		for (size_t i = 0; i < per; i++)
			memcpy(block + i * fl, frame, fl);
		for (uint64_t sent = 0; sent < opt_n;) {
			uint64_t k = opt_n - sent < per ? opt_n - sent : per;
			write_all(sv[1], block, k * fl);
			sent += k;
		}
		_exit(0);
	}
	close(sv[1]);
	static uint8_t buf[1 << 16];
	size_t have = 0;
	uint64_t got = 0, t0 = 0;
	while (got < opt_n) {
		ssize_t r = read(sv[0], buf + have, sizeof(buf) - have);
		if (r <= 0)
			break;
		if (!t0)
			t0 = uv_hrtime();
		have += (size_t)r;
		size_t off = 0; /* parse every whole frame, as a client does */
		while (have - off >= 6) {
			uint32_t len = buf[off + 1] | buf[off + 2] << 8 |
			               (uint32_t)buf[off + 3] << 16 |
			               (uint32_t)buf[off + 4] << 24;
			if (have - off < 6 + len)
				break;
			off += 6 + len;
			got++;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
	double s = (double)(uv_hrtime() - t0) / 1e9;
	waitpid(pid, NULL, 0);
	printf("{\"messages\": %llu, \"seconds\": %.6f, \"rate\": %.0f}\n",
	       (unsigned long long)got, s, (double)got / s);
	return got == opt_n ? 0 : 1;
}

static int cmd_raw_pingpong(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
		perror("socketpair");
		return 1;
	}
	uint8_t frame[4096], in[4096];
	size_t fl = make_frame(frame, opt_size);
	pid_t pid = fork();
	int fd = pid == 0 ? sv[1] : sv[0];
	close(pid == 0 ? sv[0] : sv[1]);
	uint64_t *lat = pid ? malloc(sizeof(*lat) * opt_n) : NULL;
	for (uint64_t i = 0; i < opt_n; i++) {
		uint64_t t = uv_hrtime();
		if (pid)
			write_all(fd, frame, fl);
		for (size_t got = 0; got < fl;) {
			ssize_t r = read(fd, in + got, fl - got);
			if (r <= 0)
				_exit(pid ? 1 : 0);
			got += (size_t)r;
		}
		if (!pid)
			write_all(fd, frame, fl);
		else
			lat[i] = uv_hrtime() - t;
	}
	if (!pid)
		_exit(0);
	waitpid(pid, NULL, 0);
	print_latencies(lat, opt_n);
	free(lat);
	return 0;
}

/* ---- clients over a socket --------------------------------------------------- */
#define SENDERS_MAX 64
struct run {
	uv_loop_t *loop;
	struct bus_client *c;
	uint64_t sent, got, t0, t1, calls;
	uint64_t *lat;
	uint8_t *payload;
	bool done;
	/* sub: each publisher's last sequence number */
	char senders[SENDERS_MAX][64];
	uint64_t last_seq[SENDERS_MAX];
	int n_senders;
	uint64_t lost, dups, slow_until;
};

static void close_when(struct run *r)
{
	r->done = true;
	bus_client_close(r->c);
}

static void pump_pub(struct run *r)
{
	while (r->sent < opt_n) {
		uint64_t seq = r->sent + 1;
		if (opt_size >= 8)
			memcpy(r->payload, &seq, 8); /* little-endian hosts */
		int rc = bus_client_publish(r->c, opt_topic, r->payload,
		                            opt_size, 0, NULL, NULL);
		if (rc == BUS_EAGAIN)
			return; /* on_drain resumes */
		if (rc)
			die("publish", rc);
		r->sent++;
	}
	if (!r->done) {
		r->t1 = uv_hrtime();
		close_when(r); /* close flushes what is buffered first */
	}
}

static void print_host(struct bus_client *c, const char *extra);

static void pub_state(struct bus_client *c, enum bus_client_state st,
                      int reason, void *arg)
{
	(void)c;
	struct run *r = arg;
	if (st == BUS_CLIENT_READY) {
		r->t0 = uv_hrtime();
		pump_pub(r);
	} else if (st == BUS_CLIENT_CLOSED) {
		if (!r->done)
			die("connection", reason);
		if (bus_client_host(c) && r->loop) {
			char extra[200];
			snprintf(extra, sizeof(extra),
			         "\"messages\": %llu, \"seconds\": %.6f, ",
			         (unsigned long long)r->sent,
			         (r->t1 - r->t0) / 1e9);
			print_host(c, extra);
		}
	}
}

static void pub_drain(struct bus_client *c, void *arg)
{
	(void)c;
	pump_pub(arg);
}

static struct bus_tls_config opt_tls; /* -s tls://: --tls-ca FILE */

static struct bus_client_config client_cfg(const char *name)
{
	struct bus_client_config cfg;
	bus_client_config_defaults(&cfg);
	cfg.name = name;
	cfg.reconnect = false;
	cfg.tls = &opt_tls;
	return cfg;
}

static void print_host(struct bus_client *c, const char *extra)
{
	struct bus_host_stats hs;
	struct bus_client_stats cs;
	bus_client_host_stats(c, &hs);
	bus_client_stats(c, &cs);
	printf("{%s\"host_writes\": %llu, \"host_reads\": %llu, "
	       "\"frames_in\": %llu, \"frames_out\": %llu}\n",
	       extra, (unsigned long long)hs.writes,
	       (unsigned long long)hs.reads, (unsigned long long)cs.frames_in,
	       (unsigned long long)cs.frames_out);
}

static int cmd_pub(void)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct run r = {.loop = &loop};
	r.payload = malloc(opt_size);
	memset(r.payload, 'p', opt_size);
	struct bus_client_config cfg = client_cfg(opt_name);
	struct bus_client_handlers h = {NULL, NULL, pub_state, pub_drain, &r};
	int rc = bus_client_open(&loop, opt_addr, &cfg, &h, &r.c);
	if (rc)
		die("open", rc);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	free(r.payload);
	return r.sent == opt_n ? 0 : 1;
}

static void sub_report(struct run *r)
{
	char extra[300];
	snprintf(extra, sizeof(extra),
	         "\"messages\": %llu, \"seconds\": %.6f, "
	         "\"lost\": %llu, \"duplicated\": %llu, ",
	         (unsigned long long)r->got, (r->t1 - r->t0) / 1e9,
	         (unsigned long long)r->lost, (unsigned long long)r->dups);
	print_host(r->c, extra);
	fflush(stdout);
	close_when(r);
}

/* A publisher's sequence: each frame must be its last + 1. */
static void sub_check_seq(struct run *r, const struct bus_delivery *d)
{
	if (d->len < 8 || !d->topic || d->topic[0] == '.')
		return;
	uint64_t seq;
	memcpy(&seq, d->data, 8);
	int i = 0;
	while (i < r->n_senders && strcmp(r->senders[i], d->sender))
		i++;
	if (i == r->n_senders) {
		if (r->n_senders == SENDERS_MAX)
			return;
		snprintf(r->senders[r->n_senders++], sizeof(r->senders[0]), "%s",
		         d->sender);
	}
	if (seq <= r->last_seq[i])
		r->dups++;
	else
		r->lost += seq - r->last_seq[i] - 1;
	if (seq > r->last_seq[i])
		r->last_seq[i] = seq;
}

static void sub_delivery(struct bus_client *c, const struct bus_delivery *d,
                         void *arg)
{
	(void)c;
	struct run *r = arg;
	if (d->topic && d->topic[0] == '.')
		return; /* the broker's announcements */
	if (!r->got++) {
		r->t0 = uv_hrtime();
		r->slow_until = r->t0 + opt_slow_ms * 1000000u;
	}
	sub_check_seq(r, d);
	if (opt_slow_us && uv_hrtime() < r->slow_until)
		usleep((useconds_t)opt_slow_us); /* the loop reads nothing */
	r->t1 = uv_hrtime();
	if (r->got == opt_n)
		sub_report(r);
}

/* --idle-ms: nothing for that long after the first message: what did not
 * come is lost. */
static void sub_idle(uv_timer_t *t)
{
	struct run *r = t->data;
	if (r->got && !r->done &&
	    uv_hrtime() - r->t1 > opt_idle_ms * 1000000u) {
		if (opt_n - r->got > r->lost) /* past the last one seen too */
			r->lost = opt_n - r->got;
		sub_report(r);
	}
	if (r->done)
		uv_close((uv_handle_t *)t, NULL);
}

static void sub_subscribed(struct bus_client *c, int status, void *arg)
{
	(void)c, (void)arg;
	if (status)
		die("subscribe", status);
	fprintf(stderr, "ready\n"); /* the broker has the subscription */
}

static void sub_state(struct bus_client *c, enum bus_client_state st,
                      int reason, void *arg)
{
	struct run *r = arg;
	if (st == BUS_CLIENT_READY) {
		const char *m[] = {opt_mask};
		bus_client_subscribe(c, m, 1, sub_subscribed, NULL);
	} else if (st == BUS_CLIENT_CLOSED && !r->done) {
		fprintf(stderr, "busrt-bench: sub: closed after %llu: %s\n",
		        (unsigned long long)r->got, bus_strerror(reason));
		exit(1);
	}
}

static int cmd_sub(void)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct run r = {.loop = &loop};
	struct bus_client_config cfg = client_cfg(opt_name);
	cfg.idle_timeout_ns = 0;
	struct bus_client_handlers h = {sub_delivery, NULL, sub_state, NULL, &r};
	int rc = bus_client_open(&loop, opt_addr, &cfg, &h, &r.c);
	if (rc)
		die("open", rc);
	uv_timer_t idle;
	uv_timer_init(&loop, &idle);
	idle.data = &r;
	uv_timer_start(&idle, sub_idle, 100, 100);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return 0;
}

/* ---- RPC ------------------------------------------------------------------------ */
static void echo_rpc(struct bus_client *c, const struct bus_rpc_request *q,
                     void *arg)
{
	(void)arg;
	if (q->call_id)
		bus_client_rpc_reply(c, q->sender, q->call_id, q->params,
		                     q->params_len);
}

static uv_signal_t sigterm;
static void on_term(uv_signal_t *h, int sig)
{
	(void)sig;
	bus_client_close(h->data);
	uv_close((uv_handle_t *)h, NULL);
}

static void server_state(struct bus_client *c, enum bus_client_state st,
                         int reason, void *arg)
{
	(void)c, (void)arg;
	if (st == BUS_CLIENT_READY)
		fprintf(stderr, "ready\n");
	else if (st == BUS_CLIENT_CLOSED && reason != BUS_ECLOSED)
		fprintf(stderr, "busrt-bench: server: %s\n",
		        bus_strerror(reason));
}

static int cmd_rpc_server(void)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct bus_client *c;
	struct bus_client_config cfg = client_cfg(opt_name);
	struct bus_client_handlers h = {NULL, echo_rpc, server_state, NULL,
	                                NULL};
	int rc = bus_client_open(&loop, opt_addr, &cfg, &h, &c);
	if (rc)
		die("open", rc);
	uv_signal_init(&loop, &sigterm);
	sigterm.data = c;
	uv_signal_start(&sigterm, on_term, SIGTERM);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return 0;
}

static void call_next(struct run *r);

static void call_done(struct bus_client *c, int status,
                      const struct bus_rpc_result *res, void *arg)
{
	(void)c, (void)res;
	struct run *r = arg;
	if (status)
		die("rpc call", status);
	r->lat[r->calls++] = uv_hrtime() - r->t0;
	call_next(r);
}

static void call_next(struct run *r)
{
	if (r->calls == opt_n) {
		print_latencies(r->lat, opt_n);
		close_when(r);
		return;
	}
	r->t0 = uv_hrtime();
	/* realtime: a round trip must not wait for the end of a loop turn */
	static struct bus_rpc_policy pol; /* the defaults, QoS as asked */
	struct bus_client_config d;
	bus_client_config_defaults(&d);
	pol = d.rpc;
	pol.no_ack = opt_no_ack;
	int rc = bus_client_rpc_call(r->c, opt_target, opt_method, r->payload,
	                             opt_size, &pol, call_done, r);
	if (rc)
		die("rpc call", rc);
	bus_client_flush(r->c);
}

static void caller_state(struct bus_client *c, enum bus_client_state st,
                         int reason, void *arg)
{
	(void)c;
	struct run *r = arg;
	if (st == BUS_CLIENT_READY)
		call_next(r);
	else if (st == BUS_CLIENT_CLOSED && !r->done)
		die("connection", reason);
}

static int cmd_rpc_client(void)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct run r = {.loop = &loop};
	r.lat = malloc(sizeof(*r.lat) * opt_n);
	r.payload = calloc(1, opt_size);
	struct bus_client_config cfg = client_cfg(opt_name);
	struct bus_client_handlers h = {NULL, NULL, caller_state, NULL, &r};
	int rc = bus_client_open(&loop, opt_addr, &cfg, &h, &r.c);
	if (rc)
		die("open", rc);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	free(r.lat);
	free(r.payload);
	return r.calls == opt_n ? 0 : 1;
}

/* ---- embedded: internal clients, no socket ------------------------------------ */
static struct bus_server *emb_srv;
static void emb_done(struct bus_server *s, void *arg)
{
	(void)s, (void)arg;
}

static void emb_stop(void)
{
	bus_server_shutdown(emb_srv, emb_done, NULL);
}

static void emb_sub_delivery(struct bus_client *c, const struct bus_delivery *d,
                             void *arg)
{
	(void)c;
	struct run *r = arg;
	if (!d->topic || strcmp(d->topic, opt_topic))
		return;
	if (!r->got++)
		r->t0 = uv_hrtime();
	if (r->got == opt_n) {
		r->t1 = uv_hrtime();
		printf("{\"messages\": %llu, \"seconds\": %.6f}\n",
		       (unsigned long long)r->got, (r->t1 - r->t0) / 1e9);
		r->done = true;
		emb_stop();
	}
}

static struct run emb_pub;
static void emb_pub_state(struct bus_client *c, enum bus_client_state st,
                          int reason, void *arg)
{
	(void)c, (void)reason;
	if (st == BUS_CLIENT_READY)
		pump_pub(arg);
}

static void emb_sub_state(struct bus_client *c, enum bus_client_state st,
                          int reason, void *arg)
{
	(void)reason, (void)arg;
	if (st != BUS_CLIENT_READY)
		return;
	const char *m[] = {opt_mask};
	bus_client_subscribe(c, m, 1, NULL, NULL);
	/* the publisher starts after the subscription is in */
	struct bus_client_config cfg = client_cfg("bench.pub");
	struct bus_client_handlers h = {NULL, NULL, emb_pub_state, pub_drain,
	                                &emb_pub};
	int rc = bus_server_client_open(emb_srv, &cfg, &h, &emb_pub.c);
	if (rc)
		die("internal client", rc);
}

static int embedded_start(uv_loop_t *loop)
{
	struct bus_core_config cc;
	bus_core_config_defaults(&cc, true);
	cc.internal_slow_policy = BUS_SLOW_BLOCK; /* lossless in-process */
	return bus_server_new(loop, &cc, &emb_srv);
}

static int cmd_embedded(void)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	if (embedded_start(&loop))
		return 1;
	struct run sub = {.loop = &loop};
	emb_pub.loop = &loop;
	emb_pub.payload = malloc(opt_size);
	memset(emb_pub.payload, 'p', opt_size);
	struct bus_client_config cfg = client_cfg("bench.sub");
	struct bus_client_handlers h = {emb_sub_delivery, NULL, emb_sub_state,
	                                NULL, &sub};
	struct bus_client *c;
	int rc = bus_server_client_open(emb_srv, &cfg, &h, &c);
	if (rc)
		die("internal client", rc);
	uv_run(&loop, UV_RUN_DEFAULT);
	bus_server_free(emb_srv);
	uv_loop_close(&loop);
	free(emb_pub.payload);
	return sub.got == opt_n ? 0 : 1;
}

static struct run emb_caller;
static void emb_caller_done(struct bus_client *c, int status,
                            const struct bus_rpc_result *res, void *arg);

static void emb_call_next(struct run *r)
{
	if (r->calls == opt_n) {
		print_latencies(r->lat, opt_n);
		r->done = true;
		emb_stop();
		return;
	}
	r->t0 = uv_hrtime();
	int rc = bus_client_rpc_call(r->c, opt_target, "echo", r->payload,
	                             opt_size, NULL, emb_caller_done, r);
	if (rc)
		die("rpc call", rc);
}

static void emb_caller_done(struct bus_client *c, int status,
                            const struct bus_rpc_result *res, void *arg)
{
	(void)c, (void)res;
	struct run *r = arg;
	if (status && !r->done)
		die("rpc call", status);
	if (r->done)
		return;
	r->lat[r->calls++] = uv_hrtime() - r->t0;
	emb_call_next(r);
}

static void emb_caller_state(struct bus_client *c, enum bus_client_state st,
                             int reason, void *arg)
{
	(void)c, (void)reason;
	if (st == BUS_CLIENT_READY)
		emb_call_next(arg);
}

static void emb_server_state(struct bus_client *c, enum bus_client_state st,
                             int reason, void *arg)
{
	(void)c, (void)reason, (void)arg;
	if (st != BUS_CLIENT_READY || emb_caller.c)
		return;
	struct bus_client_config cfg = client_cfg("bench.caller");
	struct bus_client_handlers h = {NULL, NULL, emb_caller_state, NULL,
	                                &emb_caller};
	int rc = bus_server_client_open(emb_srv, &cfg, &h, &emb_caller.c);
	if (rc)
		die("internal client", rc);
}

static int cmd_embedded_rpc(void)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	if (embedded_start(&loop))
		return 1;
	emb_caller.lat = malloc(sizeof(uint64_t) * opt_n);
	emb_caller.payload = calloc(1, opt_size);
	struct bus_client_config cfg = client_cfg(opt_target);
	struct bus_client_handlers h = {NULL, echo_rpc, emb_server_state, NULL,
	                                NULL};
	struct bus_client *c;
	int rc = bus_server_client_open(emb_srv, &cfg, &h, &c);
	if (rc)
		die("internal client", rc);
	uv_run(&loop, UV_RUN_DEFAULT);
	bus_server_free(emb_srv);
	uv_loop_close(&loop);
	free(emb_caller.lat);
	free(emb_caller.payload);
	return emb_caller.calls == opt_n ? 0 : 1;
}

/* ---- DaemonEye: procmond's collector code at full speed -------------------- */
#define COL_PROCS 1000

struct colrun {
	struct bus_client *c;
	struct de_collector col;
	uv_idle_t idle;
	uint64_t published, acked, t0, t1, cycle;
	bool done;
};

static uint64_t col_now(void *host)
{
	(void)host;
	return uv_hrtime();
}

static int64_t col_wall(void *host)
{
	(void)host;
	return (int64_t)(uv_hrtime() / 1000000);
}

static void col_acked(struct bus_client *c, int status, void *arg)
{
	(void)c;
	struct colrun *r = arg;
	if (status)
		die("publish", status);
	if (++r->acked == opt_n) {
		r->t1 = uv_hrtime();
		printf("{\"events\": %llu, \"seconds\": %.6f, \"rate\": %.1f, "
		       "\"cycles\": %llu}\n",
		       (unsigned long long)r->acked, (r->t1 - r->t0) / 1e9,
		       r->acked / ((r->t1 - r->t0) / 1e9),
		       (unsigned long long)r->cycle);
		r->done = true;
		uv_idle_stop(&r->idle);
		uv_close((uv_handle_t *)&r->idle, NULL);
		bus_client_close(r->c);
	}
}

static int col_publish(void *host, const char *topic, const uint8_t *data,
                       size_t len)
{
	struct colrun *r = host;
	if (r->published == opt_n)
		return 0; /* past the count: not sent, not counted */
	int rc = bus_client_publish(r->c, topic, data, len, BUS_QOS_PROCESSED,
	                            col_acked, r);
	if (rc)
		die("publish", rc);
	r->published++;
	return 0;
}

/* One cycle: 1000 processes, the pid range alternating, so that every
 * process of the last table ends and every one of this table is new:
 * 2000 events (after the first cycle's 1000 discoveries). */
static void col_cycle(uv_idle_t *h)
{
	struct colrun *r = h->data;
	if (r->published == opt_n || r->published - r->acked > 4 * COL_PROCS)
		return; /* wait for ACKs: at most two cycles in flight */
	/* no agent here: what the broker routed counts as processed (the
	 * agent's heartbeat would acknowledge it), so the outbox stays small */
	de_outbox_ack(&r->col.outbox, r->acked);
	struct de_snapshot s;
	de_snapshot_init(&s);
	s.taken_ns = uv_hrtime();
	uint32_t base = (r->cycle++ & 1) ? 100000 : 1000;
	char cmd[] = "/usr/sbin/worker\0--flag\0value";
	for (uint32_t i = 0; i < COL_PROCS; i++) {
		struct de_proc p = {.pid = base + i, .ppid = 1, .uid = 1000,
		                    .start_ticks = r->cycle, .accessible = true,
		                    .file_exists = true, .name = "worker",
		                    .exe = "/usr/sbin/worker", .cmdline = cmd,
		                    .cmdline_len = sizeof(cmd),
		                    .memory_bytes = 1 << 20};
		if (de_snapshot_add(&s, &p))
			die("snapshot", BUS_ENOMEM);
	}
	de_collector_cycle(&r->col, &s);
}

static void col_state(struct bus_client *c, enum bus_client_state st,
                      int reason, void *arg)
{
	(void)c;
	struct colrun *r = arg;
	if (st == BUS_CLIENT_READY) {
		r->t0 = uv_hrtime();
		uv_idle_start(&r->idle, col_cycle);
	} else if (st == BUS_CLIENT_CLOSED && !r->done) {
		die("connection", reason);
	}
}

static int cmd_collector(void)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct colrun r = {0};
	struct de_collector_ops ops = {.now = col_now, .wall_ms = col_wall,
	                               .publish = col_publish};
	if (de_collector_init(&r.col, "bench", uv_hrtime(), 100, &ops, &r))
		die("collector", BUS_EINVAL);
	r.col.compute_hashes = false;
	uv_idle_init(&loop, &r.idle);
	r.idle.data = &r;
	struct bus_client_config cfg = client_cfg(r.col.bus_name);
	cfg.out_bytes_max = 64u << 20;
	struct bus_client_handlers h = {NULL, NULL, col_state, NULL, &r};
	int rc = bus_client_open(&loop, opt_addr, &cfg, &h, &r.c);
	if (rc)
		die("open", rc);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	de_collector_free(&r.col);
	return r.acked == opt_n ? 0 : 1;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: busrt-bench COMMAND [options]   (one JSON object on "
	        "stdout; make bench runs them)\n"
	        "  raw-stream --messages N        one socketpair, framed "
	        "deliveries in 64 KiB writes\n"
	        "  raw-pingpong --rounds N        two processes bouncing one "
	        "frame\n"
	        "  pub -s ADDR -n NAME --topic T --messages N [--size B]\n"
	        "  sub -s ADDR -n NAME --mask M --expect N [--slow-us U "
	        "--slow-for-ms T] [--idle-ms I]\n"
	        "                                 checks every publisher's "
	        "sequence (lost, duplicated,\n"
	        "                                 reordered); prints \"ready\" "
	        "on stderr once subscribed\n"
	        "  rpc-server -s ADDR -n NAME     echo until SIGTERM\n"
	        "  rpc-client -s ADDR --target NAME --calls N [--method M] "
	        "[--size B] [--no-ack]\n"
	        "                                 --no-ack: requests with QoS "
	        "none (no broker ACK)\n"
	        "  collector -s ADDR --messages N procmond's collector code fed "
	        "1000 changing processes\n"
	        "  embedded --messages N          internal publisher -> "
	        "internal subscriber\n"
	        "  embedded-rpc --calls N         internal caller -> internal "
	        "server\n"
	        "  ADDR: a Unix socket path, HOST:PORT or tls://HOST:PORT "
	        "(--tls-ca FILE)\n"
	        "  busrt-bench --version | --help\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"messages", required_argument, NULL, 'm'},
	    {"rounds", required_argument, NULL, 'm'},
	    {"calls", required_argument, NULL, 'm'},
	    {"expect", required_argument, NULL, 'm'},
	    {"size", required_argument, NULL, 'z'},
	    {"topic", required_argument, NULL, 't'},
	    {"mask", required_argument, NULL, 'k'},
	    {"target", required_argument, NULL, 'T'},
	    {"method", required_argument, NULL, 'M'},
	    {"no-ack", no_argument, NULL, 'Q'},
	    {"slow-us", required_argument, NULL, 'u'},
	    {"slow-for-ms", required_argument, NULL, 'U'},
	    {"idle-ms", required_argument, NULL, 'I'},
	    {"tls-ca", required_argument, NULL, 'A'},
	    {NULL, 0, NULL, 0}};
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
		bus_version_print(stdout, "busrt-bench");
		return 0;
	}
	int opt;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "s:n:", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			opt_addr = optarg;
			break;
		case 'n':
			opt_name = optarg;
			break;
		case 'm':
			opt_n = strtoull(optarg, NULL, 10);
			break;
		case 'z':
			opt_size = strtoull(optarg, NULL, 10);
			break;
		case 't':
			opt_topic = optarg;
			break;
		case 'k':
			opt_mask = optarg;
			break;
		case 'T':
			opt_target = optarg;
			break;
		case 'M':
			opt_method = optarg;
			break;
		case 'Q':
			opt_no_ack = true;
			break;
		case 'u':
			opt_slow_us = strtoull(optarg, NULL, 10);
			break;
		case 'U':
			opt_slow_ms = strtoull(optarg, NULL, 10);
			break;
		case 'I':
			opt_idle_ms = strtoull(optarg, NULL, 10);
			break;
		case 'A':
			opt_tls.ca_file = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (opt_n == 0 || opt_size > 3000) { /* --size 0: empty payloads */
		fprintf(stderr, "busrt-bench: bad --messages or --size\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "raw-stream"))
		return cmd_raw_stream();
	if (!strcmp(cmd, "raw-pingpong"))
		return cmd_raw_pingpong();
	if (!strcmp(cmd, "embedded"))
		return cmd_embedded();
	if (!strcmp(cmd, "embedded-rpc"))
		return cmd_embedded_rpc();
	if (!opt_addr) {
		fprintf(stderr, "busrt-bench: %s needs -s ADDRESS\n", cmd);
		return 2;
	}
	if (!strcmp(cmd, "pub"))
		return cmd_pub();
	if (!strcmp(cmd, "sub"))
		return cmd_sub();
	if (!strcmp(cmd, "rpc-server"))
		return cmd_rpc_server();
	if (!strcmp(cmd, "rpc-client"))
		return cmd_rpc_client();
	if (!strcmp(cmd, "collector"))
		return cmd_collector();
	fprintf(stderr, "busrt-bench: unknown command '%s'\n", cmd);
	return 2;
}
