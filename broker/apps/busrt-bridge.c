/* SPDX-License-Identifier: Apache-2.0 */
/*
 * busrt-bridge — our broker's frames into NATS JetStream (README: the
 * bridge to NATS JetStream).
 *
 *   busrt-bridge [--config FILE] [--connect ADDR] [--nats URL]...
 *                [--stream NAME] [--host NAME] [--mask MASK]...
 *   busrt-bridge --dump [--config FILE] [--nats URL] [--stream NAME]
 *   busrt-bridge --check-config [--config FILE] [options]
 *
 * Subscribes to its masks on the broker and publishes each frame to
 * PREFIX.HOST.<topic levels> on JetStream with its message id
 * (Nats-Msg-Id; bridge.h says which) and the headers Busrt-Sender and
 * Busrt-Topic. A frame stays in the bridge's window until JetStream
 * acknowledged storing it: a publish that failed, timed out, or was in
 * flight when the connection to NATS dropped goes out again after the
 * reconnect with the same id, and the stream's duplicate window keeps one
 * copy. A full window stops the bridge reading the broker (backpressure:
 * under the broker's block policy the publishers wait). SIGTERM / SIGINT:
 * stop reading, wait up to drain_timeout_ms for the window to be stored,
 * print the counts as one JSON line, exit 0 (1 if frames were left
 * unstored: counted in "unstored"); SIGUSR1: the counts now, the same
 * line. --dump prints the stream's messages,
 * one JSON line each, and exits. Bad arguments or configuration: exit 2.
 *
 * Threads: the libuv loop reads the broker; one publisher thread
 * publishes (js_PublishMsgAsync); libnats's threads deliver the PubAcks
 * and connection events. The window (services/bridge.c, no I/O) is
 * shared under one mutex.
 */
#define _DEFAULT_SOURCE
#include "bus/net.h"
#include "../bridge/natsjs.h"

#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct app {
	uv_loop_t loop;
	uv_signal_t sigterm, sigint, sigusr1;
	uv_timer_t tick;
	struct bus_client *bc;
	struct bus_bridge_config cfg;
	const char *masks[BUS_BRIDGE_MASKS_MAX];
	int log_level;
	struct natsjs *nj;
	bool read_paused;
	bool closing;
	bool unsubscribed;      /* closing: the broker's ACK was read */
	uint64_t drain_deadline;
	uint64_t next_log;
	uint64_t not_publish;   /* deliveries that were not PUBLISH frames */
	int exit_code;
};

static void logf_(struct app *a, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(struct app *a, int level, const char *fmt, ...)
{
	if (level > a->log_level)
		return;
	static const char *names[] = {"error", "warn", "info", "debug"};
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "busrt-bridge: %s: %s\n", names[level], line);
}

/* ---- the broker side ------------------------------------------------------ */
static void nj_log(void *arg, int level, const char *msg)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	(void)arg;
	fprintf(stderr, "busrt-bridge: %s: %s\n", names[level & 3], msg);
}

static void on_delivery(struct bus_client *c, const struct bus_delivery *d,
                        void *arg)
{
	struct app *a = arg;
	if (d->kind != BUS_OP_PUBLISH || !d->topic) {
		a->not_publish++;
		return;
	}
	bool paused;
	int rc = natsjs_take(a->nj, d->sender, d->topic, d->data, d->len,
	                     &paused);
	if (rc) { /* out of memory: nothing else can hold it */
		logf_(a, 0, "out of memory taking a frame of %s on %s",
		      d->sender, d->topic);
		a->exit_code = 1;
	}
	if (paused && !a->read_paused) {
		bus_client_read_pause(c, true);
		a->read_paused = true;
		logf_(a, 3, "window full: not reading the broker");
	}
}

static void subscribed(struct bus_client *c, int status, void *arg)
{
	(void)c;
	struct app *a = arg;
	if (status && status != BUS_ECLOSED) {
		logf_(a, 0, "subscribe: %s", bus_strerror(status));
		a->exit_code = 2;
		uv_stop(&a->loop);
	}
}

static void on_state(struct bus_client *c, enum bus_client_state st,
                     int reason, void *arg)
{
	struct app *a = arg;
	if (st == BUS_CLIENT_READY) {
		a->read_paused = false; /* a new connection reads */
		logf_(a, 2, "registered as %s", a->cfg.name);
		if (natsjs_paused(a->nj)) {
			bus_client_read_pause(c, true);
			a->read_paused = true;
		}
	} else if (st == BUS_CLIENT_DISCONNECTED && reason) {
		a->read_paused = false;
		logf_(a, 1, "broker: %s", bus_client_reason(c, reason));
	} else if (st == BUS_CLIENT_CLOSED) {
		a->bc = NULL;
	}
}

static void finish(struct app *a)
{
	uv_timer_stop(&a->tick);
	uv_close((uv_handle_t *)&a->tick, NULL);
	uv_close((uv_handle_t *)&a->sigterm, NULL);
	uv_close((uv_handle_t *)&a->sigint, NULL);
	uv_close((uv_handle_t *)&a->sigusr1, NULL);
	if (a->bc)
		bus_client_close(a->bc);
}

/* Every 100 ms: read again below the low-water mark; the periodic log;
 * at exit, the drain. */
static void on_tick(uv_timer_t *t)
{
	struct app *a = t->data;
	struct natsjs_stats ns;
	natsjs_stats(a->nj, &ns);
	bool paused = natsjs_paused(a->nj);
	size_t pending = ns.pending;
	struct bus_br_stats st = ns.br;
	bool up = ns.up;
	uint64_t now = uv_hrtime();
	if (a->read_paused && !paused && a->bc) {
		bus_client_read_pause(a->bc, false);
		a->read_paused = false;
		logf_(a, 3, "window drained: reading the broker");
	}
	if (now >= a->next_log) {
		a->next_log = now + 10000000000ull;
		logf_(a, 3, "taken %llu, stored %llu, in the window %zu, "
		      "NATS %s", (unsigned long long)st.taken,
		      (unsigned long long)st.stored, pending, up ? "up" : "down");
	}
	if (a->closing &&
	    ((a->unsubscribed && !pending) || now >= a->drain_deadline)) {
		if (pending) {
			logf_(a, 0, "%zu frames not stored by JetStream at exit "
			      "(drain_timeout_ms %llu): lost", pending,
			      (unsigned long long)a->cfg.drain_timeout_ms);
			if (!a->exit_code)
				a->exit_code = 1;
		}
		finish(a);
	}
}

/* SIGUSR1: the counts now, as the exit line (stdout). */
static void on_usr1(uv_signal_t *h, int signum)
{
	(void)signum;
	struct app *a = h->data;
	struct natsjs_stats ns;
	if (!a->nj)
		return;
	natsjs_stats(a->nj, &ns);
	natsjs_stats_json(stdout, &ns, a->not_publish);
}

static void unsubscribed(struct bus_client *c, int status, void *arg)
{
	(void)c;
	struct app *a = arg;
	if (status)
		logf_(a, 1, "unsubscribe at exit: %s (frames the broker held "
		      "for us are lost)", bus_strerror(status));
	a->unsubscribed = true;
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct app *a = h->data;
	if (a->closing)
		return;
	logf_(a, 2, "signal %d: storing what is held, then exiting", signum);
	a->closing = true;
	a->drain_deadline = uv_hrtime() + a->cfg.drain_timeout_ms * 1000000u;
	/* no more frames routed to us; the broker's ACK comes behind every
	 * frame it routed to us before: once it is read, the window holds
	 * all there is (reading goes on meanwhile, paused when full) */
	a->unsubscribed = !a->bc ||
	                  bus_client_unsubscribe(a->bc, a->masks, a->cfg.n_masks,
	                                         unsubscribed, a) != 0;
}

/* ---- main ----------------------------------------------------------------- */
static void usage(FILE *f)
{
	fprintf(f,
	    "usage: busrt-bridge [--config FILE] [--connect ADDR] [--nats URL]...\n"
	    "                    [--stream NAME] [--host NAME] [--mask MASK]...\n"
	    "                    [--log-level error|warn|info|debug]\n"
	    "       busrt-bridge --dump [--config FILE] [--nats URL] "
	    "[--stream NAME]\n"
	    "  --config FILE   YAML with a bridge: section (README: the bridge "
	    "to NATS JetStream)\n"
	    "  --connect ADDR  the broker: a Unix socket path or HOST:PORT\n"
	    "                  (default: bridge.connect, else %s)\n"
	    "  --nats URL      a NATS server (repeatable; replaces "
	    "bridge.nats.urls)\n"
	    "  --stream NAME   the JetStream stream (bridge.stream.name, "
	    "DAEMONEYE)\n"
	    "  --host NAME     the host's subject token (default: the host "
	    "name)\n"
	    "  --mask MASK     subscribe to MASK (repeatable; replaces "
	    "bridge.masks)\n"
	    "  --dump          print the stream's messages as JSON lines, "
	    "then exit\n"
	    "  --check-config  check the configuration, then exit (0: valid)\n"
	    "  -h, --help      this text; -V, --version: the version\n",
	    BUS_DEFAULT_SOCKET);
}

static int set_str(char *dst, size_t cap, const char *v, const char *opt)
{
	if (!*v || strlen(v) >= cap) {
		fprintf(stderr, "busrt-bridge: %s: %s\n", opt,
		        *v ? "too long" : "empty");
		return 2;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"connect", required_argument, NULL, 'C'},
		{"nats", required_argument, NULL, 'n'},
		{"stream", required_argument, NULL, 's'},
		{"host", required_argument, NULL, 'H'},
		{"mask", required_argument, NULL, 'm'},
		{"dump", no_argument, NULL, 'D'},
		{"check-config", no_argument, NULL, 'X'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	static struct app app;
	struct app *a = &app;
	a->log_level = 1;
	const char *config = NULL, *connect = NULL, *stream = NULL,
	           *host = NULL;
	const char *nats_urls[BUS_BRIDGE_URLS_MAX], *masks[BUS_BRIDGE_MASKS_MAX];
	uint32_t n_nats = 0, n_masks = 0;
	bool do_dump = false, check_only = false;
	int opt;
	while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': config = optarg; break;
		case 'C': connect = optarg; break;
		case 's': stream = optarg; break;
		case 'H': host = optarg; break;
		case 'D': do_dump = true; break;
		case 'X': check_only = true; break;
		case 'n':
			if (n_nats == BUS_BRIDGE_URLS_MAX) {
				fprintf(stderr, "busrt-bridge: at most %d --nats\n",
				        BUS_BRIDGE_URLS_MAX);
				return 2;
			}
			nats_urls[n_nats++] = optarg;
			break;
		case 'm':
			if (n_masks == BUS_BRIDGE_MASKS_MAX) {
				fprintf(stderr, "busrt-bridge: at most %d --mask\n",
				        BUS_BRIDGE_MASKS_MAX);
				return 2;
			}
			masks[n_masks++] = optarg;
			break;
		case 'l':
			if ((a->log_level = bus_log_level_parse(optarg)) < 0) {
				fprintf(stderr, "busrt-bridge: bad --log-level %s\n",
				        optarg);
				usage(stderr);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		case 'V': bus_version_print(stdout, "busrt-bridge"); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "busrt-bridge: unexpected argument '%s'\n",
		        argv[optind]);
		usage(stderr);
		return 2;
	}

	/* the file, then the command line over it */
	struct bus_file_config fc;
	bus_config_defaults(&fc, false);
	bus_bridge_config_defaults(&a->cfg);
	fc.bridge = &a->cfg;
	char err[512] = "";
	if (config && bus_config_load(config, &fc, err, sizeof(err))) {
		fprintf(stderr, "busrt-bridge: %s\n", err);
		bus_config_free(&fc);
		return 2;
	}
	bus_config_free(&fc);
	int bad = 0;
	if (connect)
		bad |= set_str(a->cfg.connect, sizeof(a->cfg.connect), connect,
		               "--connect");
	if (stream)
		bad |= set_str(a->cfg.stream, sizeof(a->cfg.stream), stream,
		               "--stream");
	if (host)
		bad |= set_str(a->cfg.host, sizeof(a->cfg.host), host, "--host");
	for (uint32_t i = 0; i < n_nats; i++)
		bad |= set_str(a->cfg.urls[i], sizeof(a->cfg.urls[i]),
		               nats_urls[i], "--nats");
	if (n_nats)
		a->cfg.n_urls = n_nats;
	for (uint32_t i = 0; i < n_masks; i++)
		bad |= set_str(a->cfg.masks[i], sizeof(a->cfg.masks[i]), masks[i],
		               "--mask");
	if (n_masks)
		a->cfg.n_masks = n_masks;
	if (bad)
		return 2;
	if (!a->cfg.n_masks) {
		fprintf(stderr, "busrt-bridge: no topic mask to bridge: give "
		        "--mask MASK or bridge.masks in the configuration\n");
		return 2;
	}
	for (uint32_t i = 0; i < a->cfg.n_masks; i++)
		a->masks[i] = a->cfg.masks[i];

	struct bus_br_config bcfg;
	if (natsjs_br_config(&a->cfg, &bcfg, err, sizeof(err))) {
		fprintf(stderr, "busrt-bridge: %s\n", err);
		return 2;
	}
	if (check_only) {
		printf("busrt-bridge: %s: the configuration is valid (%s, "
		       "stream %s, %u mask%s, subjects %s.%s.*)\n",
		       config ? config : "(defaults)", a->cfg.urls[0],
		       a->cfg.stream, (unsigned)a->cfg.n_masks,
		       a->cfg.n_masks == 1 ? "" : "s", bcfg.prefix, bcfg.host);
		return 0;
	}
	if (do_dump) {
		int rc = natsjs_dump(&a->cfg, stdout, err, sizeof(err));
		if (rc)
			fprintf(stderr, "busrt-bridge: --dump %s\n", err);
		return rc;
	}

	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&a->loop);
	uv_signal_init(&a->loop, &a->sigterm);
	uv_signal_init(&a->loop, &a->sigint);
	a->sigterm.data = a->sigint.data = a;
	uv_signal_start(&a->sigterm, on_signal, SIGTERM);
	uv_signal_start(&a->sigint, on_signal, SIGINT);
	uv_signal_init(&a->loop, &a->sigusr1);
	a->sigusr1.data = a;
	uv_signal_start(&a->sigusr1, on_usr1, SIGUSR1);
	uv_timer_init(&a->loop, &a->tick);
	a->tick.data = a;
	uv_timer_start(&a->tick, on_tick, 100, 100);

	if (natsjs_open(&a->nj, &a->cfg, nj_log, a, a->log_level, err,
	                sizeof(err))) {
		fprintf(stderr, "busrt-bridge: %s\n", err);
		return 2;
	}
	struct bus_client_config cc;
	bus_client_config_defaults(&cc);
	cc.name = a->cfg.name;
	cc.idle_timeout_ns = 0; /* a full window stops reading: the broker
	                           is not silent, we are not listening */
	struct bus_client_handlers h = {.on_delivery = on_delivery,
	                                .on_state = on_state, .arg = a};
	const char *to = a->cfg.connect[0] ? a->cfg.connect : BUS_DEFAULT_SOCKET;
	int rc = bus_client_open(&a->loop, to, &cc, &h, &a->bc);
	if (!rc) { /* recorded, sent once READY (ECLOSED until then) */
		rc = bus_client_subscribe(a->bc, a->masks, a->cfg.n_masks,
		                          subscribed, a);
		if (rc == BUS_ECLOSED)
			rc = 0;
	}
	if (rc) {
		fprintf(stderr, "busrt-bridge: %s: %s\n", to, bus_strerror(rc));
		natsjs_close(a->nj);
		return 2;
	}
	logf_(a, 2, "%s -> %s stream %s as %s.%s.*", to, a->cfg.urls[0],
	      a->cfg.stream, bcfg.prefix, bcfg.host);
	uv_run(&a->loop, UV_RUN_DEFAULT);
	struct natsjs_stats ns;
	natsjs_stats(a->nj, &ns);
	natsjs_close(a->nj);
	natsjs_stats_json(stdout, &ns, a->not_publish);
	uv_loop_close(&a->loop);
	return a->exit_code;
}
