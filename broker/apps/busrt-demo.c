/* SPDX-License-Identifier: Apache-2.0 */
/*
 * busrt-demo — the embedded deployment in one process: a broker inside this
 * program's event loop, an internal publisher and an internal subscriber
 * (kind "internal", no socket), and, if asked, a `busrt-cli listen` child
 * connected over the broker's Unix socket. It prints what flows, then stops
 * everything cleanly.
 *
 *   busrt-demo [--socket PATH] [--config FILE] [--seconds S] [--rate HZ]
 *              [--cli PATH-TO-busrt-cli]
 *
 * The internal subscriber (events/# and demo/#) also answers RPC: "echo"
 * (params back) and "count" (events seen), so socket clients can call into
 * the process. The publisher registers as collector.process.demo: under
 * the default ACL only a collector may publish events.
 * Exit 0 when every event published was acknowledged and reached the
 * internal subscriber (and the listener, when started, printed some);
 * 1 otherwise; 2 for bad arguments.
 */
#define _DEFAULT_SOURCE
#include "bus/config.h"
#include "bus/net.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct demo {
	uv_loop_t loop;
	struct bus_server *srv;
	struct bus_client *pub, *sub;
	uv_timer_t tick, stop;
	uv_signal_t sigint, sigterm;
	uv_process_t child;
	uv_pipe_t child_out;
	bool child_running, stopping;
	char socket[108];
	const char *cli;
	double seconds, rate;
	uint64_t seq, acked, nacked, received, cli_lines;
	char linebuf[4096];
	size_t linelen;
};

static const char *const kinds[] = {"DISCOVERY", "UPDATE", "UPDATE",
                                    "TERMINATION"};

/* ---- internal clients ----------------------------------------------------- */
static void pub_acked(struct bus_client *c, int status, void *arg)
{
	(void)c;
	struct demo *d = arg;
	if (status)
		d->nacked++;
	else
		d->acked++;
}

static void on_tick(uv_timer_t *t)
{
	struct demo *d = t->data;
	if (bus_client_state(d->pub) != BUS_CLIENT_READY)
		return;
	char msg[128];
	uint64_t n = ++d->seq;
	int len = snprintf(msg, sizeof(msg), "seq=%llu pid=%llu %s",
	                   (unsigned long long)n,
	                   (unsigned long long)(4000 + n / 4), kinds[n % 4]);
	int rc = bus_client_publish(d->pub, "events/process/lifecycle", msg,
	                            (size_t)len, BUS_QOS_PROCESSED, pub_acked,
	                            d);
	if (rc) {
		fprintf(stderr, "busrt-demo: publish: %s\n", bus_strerror(rc));
		d->nacked++;
	}
}

static void sub_delivery(struct bus_client *c, const struct bus_delivery *dl,
                         void *arg)
{
	(void)c;
	struct demo *d = arg;
	if (dl->topic && !strncmp(dl->topic, ".broker/", 8)) {
		printf("[internal demo.subscriber] %s: a broker announcement "
		       "(%zu bytes of MessagePack)\n", dl->topic, dl->len);
		return;
	}
	d->received++;
	printf("[internal demo.subscriber] %s %s: %.*s\n",
	       dl->topic ? dl->topic : "-", dl->sender, (int)dl->len,
	       (const char *)dl->data);
	fflush(stdout);
}

static void sub_rpc(struct bus_client *c, const struct bus_rpc_request *r,
                    void *arg)
{
	struct demo *d = arg;
	if (!r->call_id)
		return;
	if (r->method && !strcmp(r->method, "echo")) {
		bus_client_rpc_reply(c, r->sender, r->call_id, r->params,
		                     r->params_len);
	} else if (r->method && !strcmp(r->method, "count")) {
		char n[32];
		int l = snprintf(n, sizeof(n), "%llu",
		                 (unsigned long long)d->received);
		bus_client_rpc_reply(c, r->sender, r->call_id, n, (size_t)l);
	} else {
		bus_client_rpc_error(c, r->sender, r->call_id,
		                     BUS_RPC_ERR_METHOD_NOT_FOUND,
		                     "method not found", 16);
	}
}

static void sub_state(struct bus_client *c, enum bus_client_state st,
                      int reason, void *arg)
{
	(void)arg;
	if (st == BUS_CLIENT_READY || st == BUS_CLIENT_CLOSED)
		fprintf(stderr, "busrt-demo: %s is %s%s%s\n",
		        bus_client_name(c), bus_client_state_name(st),
		        reason ? ": " : "", reason ? bus_strerror(reason) : "");
}

/* ---- the busrt-cli child ---------------------------------------------------- */
static void child_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h, (void)hint;
	static char buf[4096];
	*b = uv_buf_init(buf, sizeof(buf));
}

static void child_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct demo *d = s->data;
	if (n < 0) {
		uv_close((uv_handle_t *)s, NULL);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		char ch = b->base[i];
		if (ch == '\n' || d->linelen == sizeof(d->linebuf) - 1) {
			d->linebuf[d->linelen] = '\0';
			printf("[busrt-cli listen, over the socket] %s\n",
			       d->linebuf);
			fflush(stdout);
			d->cli_lines++;
			d->linelen = 0;
		} else {
			d->linebuf[d->linelen++] = ch;
		}
	}
}

static void finish_shutdown(struct demo *d);

static void child_exit(uv_process_t *p, int64_t status, int sig)
{
	struct demo *d = p->data;
	(void)status, (void)sig;
	d->child_running = false;
	uv_close((uv_handle_t *)p, NULL);
	if (d->stopping)
		finish_shutdown(d);
}

static int start_child(struct demo *d)
{
	char *args[] = {(char *)d->cli, "-s", d->socket, "-n",
	                "demo.cli-listener", "listen", "events/#", NULL};
	uv_pipe_init(&d->loop, &d->child_out, 0);
	d->child_out.data = d;
	uv_stdio_container_t stdio[3] = {
	    {.flags = UV_IGNORE},
	    {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
	     .data.stream = (uv_stream_t *)&d->child_out},
	    {.flags = UV_INHERIT_FD, .data.fd = 2}};
	uv_process_options_t o = {.exit_cb = child_exit,
	                          .file = d->cli,
	                          .args = args,
	                          .stdio_count = 3,
	                          .stdio = stdio};
	d->child.data = d;
	int rc = uv_spawn(&d->loop, &d->child, &o);
	if (rc) {
		fprintf(stderr, "busrt-demo: cannot start %s: %s\n", d->cli,
		        uv_strerror(rc));
		uv_close((uv_handle_t *)&d->child_out, NULL);
		return 1;
	}
	d->child_running = true;
	uv_read_start((uv_stream_t *)&d->child_out, child_alloc, child_read);
	return 0;
}

/* ---- stopping ------------------------------------------------------------------ */
static void server_done(struct bus_server *s, void *arg)
{
	(void)s;
	struct demo *d = arg;
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->tick, NULL);
	uv_close((uv_handle_t *)&d->stop, NULL);
}

static void finish_shutdown(struct demo *d)
{
	if (d->child_running)
		return; /* after the child exits */
	bus_server_shutdown(d->srv, server_done, d);
}

static void begin_stop(struct demo *d);

/* Stops once every publish is answered (bounded: 100 checks, 1 s). */
static void on_drain_check(uv_timer_t *t)
{
	struct demo *d = t->data;
	static int checks;
	if (d->acked + d->nacked < d->seq && ++checks < 100) {
		uv_timer_start(&d->stop, on_drain_check, 10, 0);
		return;
	}
	begin_stop(d);
}

static void begin_stop(struct demo *d)
{
	if (d->stopping)
		return;
	if (uv_is_active((uv_handle_t *)&d->tick)) {
		uv_timer_stop(&d->tick);
		on_drain_check(&d->stop);
		return;
	}
	d->stopping = true;
	uv_timer_stop(&d->stop);
	if (d->child_running)
		uv_process_kill(&d->child, SIGTERM);
	finish_shutdown(d);
}

static void on_stop(uv_timer_t *t) { begin_stop(t->data); }

static void on_signal(uv_signal_t *h, int sig)
{
	(void)sig;
	begin_stop(h->data);
}

/* Gives the listener a moment to subscribe before events start. */
static void on_start(uv_timer_t *t)
{
	struct demo *d = t->data;
	uint64_t ms = (uint64_t)(1000.0 / d->rate);
	uv_timer_start(&d->tick, on_tick, 0, ms ? ms : 1);
	if (d->seconds > 0)
		uv_timer_start(&d->stop, on_stop,
		               (uint64_t)(d->seconds * 1000), 0);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: busrt-demo [--socket PATH] [--config FILE] "
	           "[--seconds S] [--rate HZ] [--cli PATH]\n"
	        "  -h, --help  this text; -V, --version: the version\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"config", required_argument, NULL, 'c'},
	    {"seconds", required_argument, NULL, 'S'},
	    {"rate", required_argument, NULL, 'r'},
	    {"cli", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0}};
	struct demo d;
	memset(&d, 0, sizeof(d));
	d.seconds = 3;
	d.rate = 5;
	const char *config = NULL, *sock = NULL;
	int opt;
	uint64_t v;
	while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			sock = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'S':
			if (!strcmp(optarg, "0")) {
				d.seconds = 0;
			} else if (!bus_config_parse_seconds(optarg, &v)) {
				fprintf(stderr, "busrt-demo: --seconds: '%s' is "
				                "not a number of seconds\n", optarg);
				return 2;
			} else {
				d.seconds = (double)v / 1e9;
			}
			break;
		case 'r':
			if (!bus_config_parse_u64(optarg, 1, 100000, &v)) {
				fprintf(stderr, "busrt-demo: --rate: '%s' is not "
				                "an integer from 1 to 100000\n",
				        optarg);
				return 2;
			}
			d.rate = (double)v;
			break;
		case 'l':
			d.cli = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			bus_version_print(stdout, "busrt-demo");
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "busrt-demo: unexpected argument '%s'\n",
		        argv[optind]);
		usage(stderr);
		return 2;
	}
	char tmpdir[64] = "";
	if (!sock) { /* a private socket, so the demo never meets a broker */
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/busrt-demo.XXXXXX");
		if (!mkdtemp(tmpdir)) {
			perror("busrt-demo: mkdtemp");
			return 1;
		}
		snprintf(d.socket, sizeof(d.socket), "%s/broker.sock", tmpdir);
	} else {
		snprintf(d.socket, sizeof(d.socket), "%s", sock);
	}
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&d.loop);
	char err[512];
	int rc = bus_embedded_start(&d.loop, config, d.socket, &d.srv, err,
	                            sizeof(err));
	if (rc) {
		fprintf(stderr, "busrt-demo: %s\n", err);
		uv_run(&d.loop, UV_RUN_DEFAULT);
		uv_loop_close(&d.loop);
		if (tmpdir[0])
			rmdir(tmpdir);
		return rc == BUS_ECONFIG ? 2 : 1;
	}
	fprintf(stderr, "busrt-demo: embedded broker on %s\n", d.socket);
	struct bus_client_config cc;
	bus_client_config_defaults(&cc);
	/* the publisher stands for a process collector: the default ACL lets
	 * collector.process.* publish events/process/# and nobody else */
	struct bus_client_handlers ph = {NULL, NULL, sub_state, NULL, &d};
	cc.name = "collector.process.demo";
	bus_server_client_open(d.srv, &cc, &ph, &d.pub);
	cc.name = "demo.subscriber";
	struct bus_client_handlers sh = {sub_delivery, sub_rpc, sub_state, NULL,
	                                 &d};
	bus_server_client_open(d.srv, &cc, &sh, &d.sub);
	const char *mask[] = {"events/#", "demo/#"};
	bus_client_subscribe(d.sub, mask, 2, NULL, NULL); /* recorded */
	uv_timer_init(&d.loop, &d.tick);
	uv_timer_init(&d.loop, &d.stop);
	uv_signal_init(&d.loop, &d.sigint);
	uv_signal_init(&d.loop, &d.sigterm);
	d.tick.data = d.stop.data = d.sigint.data = d.sigterm.data = &d;
	uv_signal_start(&d.sigint, on_signal, SIGINT);
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	int status = 0;
	if (d.cli && start_child(&d))
		status = 1;
	uv_timer_start(&d.stop, on_start, d.cli ? 300 : 0, 0);
	uv_run(&d.loop, UV_RUN_DEFAULT);
	bus_server_free(d.srv);
	uv_loop_close(&d.loop);
	if (tmpdir[0])
		rmdir(tmpdir);
	fprintf(stderr,
	        "busrt-demo: published %llu, acknowledged %llu, refused %llu; "
	        "internal subscriber got %llu; busrt-cli printed %llu\n",
	        (unsigned long long)d.seq, (unsigned long long)d.acked,
	        (unsigned long long)d.nacked, (unsigned long long)d.received,
	        (unsigned long long)d.cli_lines);
	if (d.nacked || d.acked != d.seq || d.received < d.seq ||
	    (d.cli && d.cli_lines == 0))
		status = 1;
	return status;
}
