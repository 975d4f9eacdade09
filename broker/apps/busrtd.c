/* SPDX-License-Identifier: Apache-2.0 */
/*
 * busrtd — the standalone BUS/RT-compatible broker daemon.
 *
 *   busrtd [-B PATH|HOST:PORT]... [-t SECONDS] [--queue-size N]
 *          [--force-register] [--config FILE] [--log-level LEVEL]
 *          [--metrics HOST:PORT]
 *
 * BUS/RT's own flags where they exist, so ours is a drop-in. Precedence:
 * built-in defaults < --config FILE < flags. Without -B it binds what
 * broker.standalone says (socket, default /run/daemoneye/broker.sock, and
 * address). SIGTERM/SIGINT: announce shutdown, flush, close, remove the
 * socket files, exit 0. SIGHUP: read --config again and put its ACL in
 * force (connections stay; a client the new ACL no longer allows is cut;
 * a file with an error changes nothing). Bad arguments: usage, exit 2.
 */
#define _DEFAULT_SOURCE
#include "bus/config.h"
#include "bus/net.h"
#include "bus/rotlog.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define BINDS_MAX 16

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: busrtd [-B PATH|HOST:PORT]... [-t SECONDS] "
	        "[--queue-size N]\n"
	        "              [--force-register] [--config FILE] "
	        "[--log-level error|warn|info|debug]\n"
	        "  -B PATH|HOST:PORT  bind a Unix socket (a path) or TCP "
	        "(host:port); repeatable\n"
	        "  -t SECONDS         handshake and keepalive timeout "
	        "(default 5)\n"
	        "  --queue-size N     outgoing queue per client, frames "
	        "(default 10000)\n"
	        "  --force-register   a new client takes over a busy name\n"
	        "  --config FILE      YAML configuration (see README)\n"
	        "  --metrics HOST:PORT  Prometheus text at "
	        "http://HOST:PORT/metrics (loopback;\n"
	        "                     broker.metrics.listen)\n"
	        "  --check-config     check the configuration and the TLS files, "
	        "then exit (0: valid)\n"
	        "  -h, --help         this text; -V, --version: the version\n");
}

struct app {
	uv_loop_t loop;
	struct bus_server *srv;
	uv_signal_t sigterm, sigint, sighup;
	int signals_open;
	bool stopping;
	const char *config; /* --config, for SIGHUP */
	struct bus_rotlog alog; /* broker.audit_log (f NULL: none) */
};

static void on_audit(void *arg, const struct bus_audit *d)
{
	struct app *a = arg;
	bus_audit_denied(&a->alog, d);
}

/* SIGHUP: the ACL again from --config (the rest needs a restart). */
static void on_hup(uv_signal_t *h, int signum)
{
	(void)signum;
	struct app *a = h->data;
	if (!a->config || a->stopping) {
		fprintf(stderr, "busrtd: SIGHUP: %s\n",
		        a->config ? "shutting down" : "no --config to read again");
		return;
	}
	struct bus_file_config *nf = malloc(sizeof(*nf));
	char err[512] = "";
	if (!nf) {
		fprintf(stderr, "busrtd: SIGHUP: out of memory; nothing changed\n");
		return;
	}
	bus_config_defaults(nf, false);
	if (bus_config_load(a->config, nf, err, sizeof(err)) != 0 ||
	    bus_config_finish(nf, err, sizeof(err)) != 0 ||
	    bus_server_set_acl(a->srv, nf->core.acl ? &nf->acl : NULL) != 0) {
		fprintf(stderr, "busrtd: SIGHUP: %s; nothing changed\n",
		        err[0] ? err : "out of memory");
		bus_config_free(nf);
		free(nf);
		return;
	}
	fprintf(stderr, "busrtd: SIGHUP: %s: ACL %s\n", a->config,
	        nf->acl_mode == BUS_ACL_RULES     ? "from the file"
	        : nf->acl_mode == BUS_ACL_DEFAULT ? "the defaults"
	                                          : "open");
	bus_config_free(nf);
	free(nf);
}

static void signal_closed(uv_handle_t *h)
{
	struct app *a = h->data;
	a->signals_open--;
}

static void shutdown_done(struct bus_server *s, void *arg)
{
	(void)s;
	struct app *a = arg;
	/* shutting down already: a second SIGTERM must not kill the exit.
	 * Closing the handles restores the default action, so the signals
	 * are blocked until they are ignored (a test caught one in between) */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &old);
	uv_close((uv_handle_t *)&a->sigterm, signal_closed);
	uv_close((uv_handle_t *)&a->sigint, signal_closed);
	uv_close((uv_handle_t *)&a->sighup, signal_closed);
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct app *a = h->data;
	if (a->stopping)
		return; /* a second signal while shutting down: already on it */
	a->stopping = true;
	fprintf(stderr, "busrtd: %s, shutting down\n",
	        signum == SIGTERM ? "SIGTERM" : "SIGINT");
	bus_server_shutdown(a->srv, shutdown_done, a);
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Binds one -B argument or configured address (TCP with TLS when tls). */
static int bind_one(struct app *a, const char *spec, int mode,
                    const struct bus_tls_config *tls)
{
	char err[512];
	int rc = bus_server_listen_with(a->srv, spec, mode, tls, err,
	                                sizeof(err));
	if (rc == BUS_ECONFIG ||
	    (rc == BUS_EINVAL && !strchr(spec, '/') && strchr(spec, ':'))) {
		fprintf(stderr, "busrtd: %s\n", err);
		return 2;
	}
	if (rc) {
		fprintf(stderr, "busrtd: cannot listen: %s\n", err);
		return 1;
	}
	fprintf(stderr, "busrtd: listening on %s\n", spec);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"queue-size", required_argument, NULL, 'q'},
	    {"force-register", no_argument, NULL, 'f'},
	    {"config", required_argument, NULL, 'c'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"metrics", required_argument, NULL, 'm'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"check-config", no_argument, NULL, 'X'},
	    {NULL, 0, NULL, 0}};
	const char *binds[BINDS_MAX], *config = NULL, *timeout = NULL;
	const char *metrics = NULL;
	int nbinds = 0, level = 2, opt;
	uint64_t queue = 0;
	bool force = false, check_only = false;
	while ((opt = getopt_long(argc, argv, "B:t:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'B':
			if (nbinds == BINDS_MAX) {
				fprintf(stderr, "busrtd: at most %d -B\n", BINDS_MAX);
				return 2;
			}
			binds[nbinds++] = optarg;
			break;
		case 't':
			timeout = optarg;
			break;
		case 'q':
			if (!bus_config_parse_u64(optarg, 2, 100000000, &queue)) {
				fprintf(stderr, "busrtd: --queue-size: expected an "
				                "integer from 2 to 100000000\n");
				usage(stderr);
				return 2;
			}
			break;
		case 'f':
			force = true;
			break;
		case 'X':
			check_only = true;
			break;
		case 'c':
			config = optarg;
			break;
		case 'm':
			metrics = optarg;
			break;
		case 'l':
			if ((level = bus_log_level_parse(optarg)) < 0) {
				fprintf(stderr, "busrtd: --log-level: '%s' is not "
				                "error, warn, info or debug\n",
				        optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			bus_version_print(stdout, "busrtd");
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "busrtd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	struct bus_file_config fc;
	bus_config_defaults(&fc, false);
	snprintf(fc.socket_path, sizeof(fc.socket_path), "%s", BUS_DEFAULT_SOCKET);
	char err[512];
	if (config && bus_config_load(config, &fc, err, sizeof(err)) != 0) {
		fprintf(stderr, "busrtd: %s\n", err);
		return 2;
	}
	/* TLS: with enabled, every TCP listener; tls://HOST:PORT whenever a
	 * certificate is configured. Unusable files: exit 2, named. */
	struct bus_tls_config tls = {fc.tls_cert_file, fc.tls_key_file,
	                             fc.tls_ca_file, fc.tls_verify_client};
	bool have_tls = fc.tls_cert_file[0] || fc.tls_key_file[0];
	if ((fc.tls_enabled || have_tls) &&
	    bus_tls_check(&tls, true, err, sizeof(err)) != 0) {
		if (fc.tls_enabled_line)
			fprintf(stderr, "busrtd: %s:%d: broker.standalone.tls: %s\n",
			        config, fc.tls_enabled_line, err);
		else
			fprintf(stderr, "busrtd: %s: broker.standalone.tls: %s\n",
			        config ? config : "-", err);
		bus_config_free(&fc);
		return 2;
	}
	if (metrics) {
		if (bus_metrics_addr_check(metrics, err, sizeof(err))) {
			fprintf(stderr, "busrtd: --metrics: %s\n", err);
			bus_config_free(&fc);
			return 2;
		}
		snprintf(fc.metrics_listen, sizeof(fc.metrics_listen), "%s",
		         metrics);
	}
	if (timeout && !bus_config_parse_seconds(timeout, &fc.core.timeout_ns)) {
		fprintf(stderr, "busrtd: -t: '%s' is not a positive number of "
		                "seconds\n", timeout);
		return 2;
	}
	if (queue)
		fc.core.limits.queue_frames_max = (uint32_t)queue;
	if (force)
		fc.core.force_register = true;
	const char *what;
	if (bus_core_config_check(&fc.core, &what) != 0) {
		fprintf(stderr, "busrtd: inconsistent configuration: %s\n", what);
		return 2;
	}
	if (bus_config_finish(&fc, err, sizeof(err)) != 0) {
		fprintf(stderr, "busrtd: %s%s%s\n", config ? config : "",
		        config ? ": " : "", err);
		bus_config_free(&fc);
		return 2;
	}
	if (check_only) { /* --check-config: everything above, nothing bound */
		printf("busrtd: %s: the configuration is valid\n",
		       config ? config : "(defaults)");
		bus_config_free(&fc);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	struct app a;
	memset(&a, 0, sizeof(a));
	a.config = config;
	if (fc.audit_log[0]) { /* close-on-exec, 0600 */
		int e = bus_rotlog_open(&a.alog, fc.audit_log, fc.audit_max_bytes,
		                        fc.audit_keep);
		if (e) {
			fprintf(stderr, "busrtd: %s: cannot open the audit log: "
			                "%s\n", fc.audit_log, strerror(-e));
			bus_config_free(&fc);
			return 2;
		}
	}
	uv_loop_init(&a.loop);
	struct bus_acl *acl = fc.core.acl ? &fc.acl : NULL;
	fc.core.acl = NULL; /* the server's own copy, below */
	int rc = bus_server_new(&a.loop, &fc.core, &a.srv);
	if (!rc)
		rc = bus_server_set_acl(a.srv, acl);
	bus_config_free(&fc);
	if (rc) {
		fprintf(stderr, "busrtd: %s\n", bus_strerror(rc));
		return 1;
	}
	bus_server_set_log_level(a.srv, level);
	if (a.alog.f)
		bus_server_set_audit(a.srv, on_audit, &a);
	/* the handlers come first: a SIGTERM right after the socket appears
	 * (a supervisor's, a test's) is a shutdown, not a kill */
	uv_signal_init(&a.loop, &a.sigterm);
	uv_signal_init(&a.loop, &a.sigint);
	uv_signal_init(&a.loop, &a.sighup);
	a.sigterm.data = a.sigint.data = a.sighup.data = &a;
	a.signals_open = 3;
	uv_signal_start(&a.sigterm, on_signal, SIGTERM);
	uv_signal_start(&a.sigint, on_signal, SIGINT);
	uv_signal_start(&a.sighup, on_hup, SIGHUP);
	int status = 0;
	const struct bus_tls_config *all = fc.tls_enabled ? &tls : NULL;
	if (nbinds) {
		for (int i = 0; i < nbinds && !status; i++)
			status = bind_one(&a, binds[i], fc.socket_mode,
			                  strncmp(binds[i], "tls://", 6) || !have_tls
			                      ? all
			                      : &tls);
	} else {
		if (fc.socket_path[0])
			status = bind_one(&a, fc.socket_path, fc.socket_mode, NULL);
		if (!status && fc.address[0])
			status = bind_one(&a, fc.address, fc.socket_mode, all);
	}
	if (!status && fc.metrics_listen[0]) {
		if (bus_server_metrics_listen(a.srv, fc.metrics_listen, err,
		                              sizeof(err))) {
			fprintf(stderr, "busrtd: %s\n", err);
			status = 1;
		} else {
			fprintf(stderr, "busrtd: metrics on http://%s/metrics "
			                "(port %u)\n", fc.metrics_listen,
			        (unsigned)bus_server_metrics_port(a.srv));
		}
	}
	if (status) {
		a.stopping = true;
		bus_server_shutdown(a.srv, shutdown_done, &a);
	}
	uv_run(&a.loop, UV_RUN_DEFAULT);
	/* figures for make bench and for operators, at info level */
	struct bus_host_stats hs;
	struct bus_stats st;
	bus_server_host_stats(a.srv, &hs);
	bus_core_stats(bus_server_core(a.srv), &st);
	if (level >= 2 && status == 0) /* a startup failure has no figures */
		fprintf(stderr,
		        "busrtd: exit stats: accepts=%llu refused=%llu reads=%llu "
		        "writes=%llu r_frames=%llu w_frames=%llu drops_slow=%llu "
		        "disconnects_slow=%llu\n",
		        (unsigned long long)hs.accepts,
		        (unsigned long long)hs.refused,
		        (unsigned long long)hs.reads,
		        (unsigned long long)hs.writes,
		        (unsigned long long)st.r_frames,
		        (unsigned long long)st.w_frames,
		        (unsigned long long)st.drops_slow,
		        (unsigned long long)st.disconnects_slow);
	bus_server_free(a.srv);
	uv_loop_close(&a.loop);
	bus_rotlog_close(&a.alog);
	return status;
}
