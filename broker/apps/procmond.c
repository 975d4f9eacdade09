/* SPDX-License-Identifier: Apache-2.0 */
/*
 * procmond — the process collector: enumerates /proc every interval and
 * publishes what changed as protobuf BusrtEvents (README: DaemonEye).
 *
 *   procmond --connect ADDR --id ID [--interval-ms N] [--no-hash]
 *            [--max-processes N] [--cycles N]
 *
 * Registers as collector.process.<ID>, subscribes to control/collector/#,
 * and answers the agent's lifecycle.stop/status, health.*, config.* and
 * collector.resync (de_collector, the same code the simulator runs).
 * Events wait in the collector's outbox until the agent acknowledges them
 * (its heartbeats carry what it processed): they go out as the bus takes
 * them, again after a reconnect, and a cycle does not start while the
 * last one's events still wait (the interval stretches). SIGTERM /
 * SIGINT / lifecycle.stop: flush and exit 0. Bad arguments: exit 2.
 * Started by the agent, it gets SIGTERM when the agent dies.
 */
#define _DEFAULT_SOURCE
#include "bus/daemoneye.h"
#include "bus/json.h"
#include "bus/net.h"
#include "bus/procfs.h"
#include "bus/rotlog.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pm {
	uv_loop_t loop;
	uv_timer_t timer;
	uv_signal_t sigterm, sigint;
	struct bus_client *bc;
	struct de_collector col;
	struct de_procfs fs;
	/* a cycle whose executables are being hashed on libuv's work queue:
	 * its table waits here, and the loop goes on answering */
	uv_work_t work;
	bool hashing;
	struct de_snapshot hsnap;
	uint64_t cycles_max; /* 0: run until stopped */
	bool closing;
	uint64_t acked, ack_failed;
	int exit_code;
	struct bus_rotlog alog; /* --audit: every RPC served (f NULL: none) */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: procmond --connect ADDR --id ID [--interval-ms N] "
	           "[--no-hash]\n"
	           "                [--max-processes N] [--cycles N] "
	           "[--retain-mib N]\n"
	           "                [--hash-max-mib N] [--hash-cycle-mib N]\n"
	           "  --connect ADDR     the broker: a Unix socket path or "
	           "HOST:PORT\n"
	           "  --id ID            registers as collector.process.ID\n"
	           "  --interval-ms N    enumeration interval, 10..3600000 "
	           "(default 1000)\n"
	           "  --no-hash          do not hash executables\n"
	           "  --hash-max-mib N   larger executables are not hashed "
	           "(hash_skipped\n"
	           "                     \"too_large\"), 1..65536 (default 64)\n"
	           "  --hash-cycle-mib N hashed per cycle at most, on a worker "
	           "thread; the rest\n"
	           "                     next cycle, 1..65536 (default 256)\n"
	           "  --max-processes N  at most N processes per cycle "
	           "(default: all)\n"
	           "  --cycles N         exit after N cycles (measuring)\n"
	           "  --retain-mib N     events kept until the agent has "
	           "them, MiB (default 64)\n"
	           "  --agent NAME       the only caller of lifecycle.*, "
	           "config.*, collector.resync\n"
	           "                     (default daemoneye-agent; health.* "
	           "also monitor.*)\n"
	           "  --audit FILE       every RPC served, as JSON lines "
	           "(rotated at 64 MiB, 4 kept)\n"
	           "  --broker-uid UID   the broker must run as UID "
	           "(default: root or our own)\n"
	           "  --tls-ca FILE      --connect tls://HOST:PORT: the broker's "
	           "CA (default: the system's)\n"
	           "  --tls-cert FILE --tls-key FILE  our client certificate\n"
	        "  -h, --help         this text; -V, --version: the version\n");
}

static uint64_t now_ns(void *host)
{
	(void)host;
	return uv_hrtime();
}

static int64_t wall_ms(void *host)
{
	(void)host;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void acked(struct bus_client *c, int status, void *arg)
{
	(void)c;
	struct pm *p = arg;
	if (status)
		p->ack_failed++;
	else
		p->acked++;
}

static int publish(void *host, const char *topic, const uint8_t *data,
                   size_t len)
{
	struct pm *p = host;
	return bus_client_publish(p->bc, topic, data, len, BUS_QOS_PROCESSED,
	                          acked, p);
}

/* Capabilities, the shutdown answer: QoS 1, audited. */
static int control(void *host, const char *topic, const uint8_t *data,
                   size_t len)
{
	struct pm *p = host;
	int rc = bus_client_publish(p->bc, topic, data, len, BUS_QOS_PROCESSED,
	                            NULL, NULL);
	if (rc != BUS_EAGAIN && rc != BUS_ECLOSED)
		bus_audit_line(&p->alog, "out", p->col.bus_name, topic,
		               "publish", rc, rc ? bus_strerror(rc) : "");
	return rc;
}

static void shutdown_pm(struct pm *p)
{
	if (p->closing)
		return;
	p->closing = true;
	uv_timer_stop(&p->timer);
	uv_signal_stop(&p->sigterm);
	uv_signal_stop(&p->sigint);
	bus_client_close(p->bc); /* writes what is buffered first */
}

static void cycle_end(struct pm *p, struct de_snapshot *s)
{
	de_collector_cycle(&p->col, s);
	if (p->cycles_max && p->col.stats.cycles >= p->cycles_max)
		shutdown_pm(p);
}

static void hash_work(uv_work_t *w)
{
	struct pm *p = w->data;
	de_procfs_hash_jobs(&p->fs); /* a worker thread: the jobs only */
}

static void hash_done(uv_work_t *w, int status)
{
	struct pm *p = w->data;
	(void)status;
	p->hashing = false;
	de_procfs_hash_apply(&p->fs, &p->hsnap);
	if (p->closing) {
		de_snapshot_free(&p->hsnap);
		return;
	}
	cycle_end(p, &p->hsnap);
}

static void run_cycle(struct pm *p)
{
	if (p->hashing) { /* the last cycle is still hashing: it runs later */
		p->col.stats.cycles_delayed++;
		return;
	}
	struct de_snapshot s;
	de_snapshot_init(&s);
	s.taken_ns = uv_hrtime();
	s.taken_ms = wall_ms(p);
	p->fs.hashes = p->col.compute_hashes;
	int rc = de_procfs_read(&p->fs, &s, p->col.max_processes);
	if (rc != 0) {
		/* BUS_EIO: the directory could not be opened, errno says why */
		fprintf(stderr, "procmond: reading %s: %s; this cycle is skipped "
		        "(the next one tries again)\n", p->fs.root,
		        rc == BUS_EIO ? strerror(errno) : bus_strerror(rc));
		p->fs.n_jobs = 0;
		de_snapshot_free(&s);
		return;
	}
	if (p->fs.n_jobs == 0) {
		cycle_end(p, &s);
		return;
	}
	p->hsnap = s;
	p->hashing = true;
	p->work.data = p;
	if (uv_queue_work(&p->loop, &p->work, hash_work, hash_done) != 0) {
		p->hashing = false; /* no worker: hashed here, as before */
		de_procfs_hash_jobs(&p->fs);
		de_procfs_hash_apply(&p->fs, &p->hsnap);
		cycle_end(p, &p->hsnap);
	}
}

static void on_cycle(uv_timer_t *t)
{
	struct pm *p = t->data;
	/* connected or not: the events wait in the outbox; but not while the
	 * last cycle's still wait (the interval stretches until on_drain) */
	if (!p->closing && de_collector_cycle_due(&p->col))
		run_cycle(p);
}

/* The bus takes more: the outbox goes on, and a delayed cycle runs. */
static const struct bus_rpc_metrics *rpc_metrics(void *host)
{
	struct pm *p = host;
	return p->bc ? bus_client_rpc_metrics(p->bc) : NULL;
}

static void on_drain(struct bus_client *c, void *arg)
{
	(void)c;
	struct pm *p = arg;
	if (de_collector_pump(&p->col) && !p->closing)
		run_cycle(p);
}

static void interval_changed(void *host, uint32_t ms)
{
	struct pm *p = host;
	uv_timer_start(&p->timer, on_cycle, ms, ms);
	fprintf(stderr, "procmond: interval now %u ms\n", ms);
}

static void stop_requested(void *host)
{
	struct pm *p = host;
	fprintf(stderr, "procmond: %s, exiting\n",
	        p->col.shutdown_id ? "agent shutdown, all events handed over"
	                           : "lifecycle.stop");
	shutdown_pm(p);
}

static void on_rpc(struct bus_client *c, const struct bus_rpc_request *q,
                   void *arg)
{
	struct pm *p = arg;
	struct de_served sv;
	de_collector_serve(&p->col, c, q, &sv);
	if (sv.answered)
		bus_audit_line(&p->alog, sv.denied ? "denied" : "served",
		               q->sender, p->col.bus_name, sv.method, sv.code,
		               sv.message);
	if (sv.code)
		fprintf(stderr, "procmond: %s from %s: error %d: %s\n",
		        sv.method, q->sender, sv.code, sv.message);
}

static void on_delivery(struct bus_client *c, const struct bus_delivery *d,
                        void *arg)
{
	(void)c;
	struct pm *p = arg;
	if (d->kind != BUS_OP_PUBLISH ||
	    strcmp(d->topic, DE_TOPIC_AGENT_SHUTDOWN))
		return; /* control/collector/#: nothing to act on beyond RPC */
	int rc = de_collector_shutdown(&p->col, d->sender, d->data, d->len);
	bus_audit_line(&p->alog, rc ? "denied" : "in", d->sender, d->topic,
	               "publish", rc, rc ? bus_strerror(rc) : "");
	if (rc)
		fprintf(stderr, "procmond: ignored %s from %s: %s\n", d->topic,
		        d->sender, bus_strerror(rc));
	else
		uv_timer_stop(&p->timer); /* no more cycles */
}

static void on_state(struct bus_client *c, enum bus_client_state st,
                     int reason, void *arg)
{
	struct pm *p = arg;
	if (st == BUS_CLIENT_READY) {
		static const char *masks[] = {"control/collector/#",
		                              DE_TOPIC_AGENT_SHUTDOWN};
		bus_client_subscribe(c, masks, 2, NULL, NULL);
		/* what the agent has not acknowledged goes again, in order */
		bool due = de_collector_on_ready(&p->col);
		if (p->col.stats.cycles == 0)
			uv_timer_start(&p->timer, on_cycle, 0,
			               p->col.scan_interval_ms);
		else if (due && !p->closing)
			run_cycle(p);
	} else if (st == BUS_CLIENT_DISCONNECTED && reason) {
		/* the client backs off (100 ms doubling to 5 s) between tries */
		fprintf(stderr, "procmond: %s: %s; trying again\n",
		        reason == BUS_EBUSY ? bus_client_name(c) : "disconnected",
		        bus_client_reason(c, reason));
	} else if (st == BUS_CLIENT_CLOSED) {
		if (!p->closing) {
			fprintf(stderr, "procmond: connection closed: %s\n",
			        bus_strerror(reason));
			p->exit_code = 1;
		}
		p->closing = true;
		uv_close((uv_handle_t *)&p->timer, NULL);
		uv_close((uv_handle_t *)&p->sigterm, NULL);
		uv_close((uv_handle_t *)&p->sigint, NULL);
		signal(SIGTERM, SIG_IGN); /* exiting already */
		signal(SIGINT, SIG_IGN);
	}
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct pm *p = h->data;
	fprintf(stderr, "procmond: %s, exiting\n",
	        signum == SIGTERM ? "SIGTERM" : "SIGINT");
	shutdown_pm(p);
}

static bool parse_u32(const char *s, uint64_t min, uint64_t max, uint32_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *end || *s == '-' || v < min || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Started by daemoneye-agent (DAEMONEYE_AGENT_PID in the environment):
 * the kernel sends SIGTERM when the agent dies, so a crashed agent leaves
 * no collector behind (the restarted agent starts its own; an orphan would
 * hold the bus name). 1 if the agent died before we could ask. */
static int follow_agent(void)
{
	const char *v = getenv("DAEMONEYE_AGENT_PID");
	uint32_t agent;
	if (!v || !parse_u32(v, 1, UINT32_MAX, &agent))
		return 0;
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
		return 0;
	return (uint32_t)getppid() != agent; /* it died before prctl */
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"connect", required_argument, NULL, 'c'},
		{"id", required_argument, NULL, 'i'},
		{"interval-ms", required_argument, NULL, 'I'},
		{"no-hash", no_argument, NULL, 'H'},
		{"max-processes", required_argument, NULL, 'm'},
		{"cycles", required_argument, NULL, 'n'},
		{"retain-mib", required_argument, NULL, 'r'},
		{"hash-max-mib", required_argument, NULL, 'M'},
		{"hash-cycle-mib", required_argument, NULL, 'B'},
		{"agent", required_argument, NULL, 'a'},
		{"audit", required_argument, NULL, 'A'},
		{"broker-uid", required_argument, NULL, 'U'},
		{"tls-ca", required_argument, NULL, 'T'},
		{"tls-cert", required_argument, NULL, 'C'},
		{"tls-key", required_argument, NULL, 'K'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	const char *addr = NULL, *id = NULL, *agent = DE_AGENT_NAME;
	const char *audit_path = NULL;
	int64_t broker_uid = -1;
	struct bus_tls_config tls = {0};
	uint32_t interval = 1000, maxp = 0, cycles = 0, retain_mib = 64;
	uint32_t hash_mib = DE_HASH_BYTES_MAX_DEFAULT >> 20;
	uint32_t cycle_mib = DE_HASH_CYCLE_BYTES_DEFAULT >> 20;
	bool hashes = true;
	int opt;
	while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		const char *bad = NULL;
		switch (opt) {
		case 'c': addr = optarg; break;
		case 'i': id = optarg; break;
		case 'I':
			if (!parse_u32(optarg, 10, 3600000, &interval))
				bad = "--interval-ms (10..3600000)";
			break;
		case 'H': hashes = false; break;
		case 'm':
			if (!parse_u32(optarg, 0, 4194304, &maxp))
				bad = "--max-processes (0..4194304)";
			break;
		case 'n':
			if (!parse_u32(optarg, 1, UINT32_MAX, &cycles))
				bad = "--cycles";
			break;
		case 'r':
			if (!parse_u32(optarg, 1, 65536, &retain_mib))
				bad = "--retain-mib (1..65536)";
			break;
		case 'M':
			if (!parse_u32(optarg, 1, 65536, &hash_mib))
				bad = "--hash-max-mib (1..65536)";
			break;
		case 'B':
			if (!parse_u32(optarg, 1, 65536, &cycle_mib))
				bad = "--hash-cycle-mib (1..65536)";
			break;
		case 'a': agent = optarg; break;
		case 'T': tls.ca_file = optarg; break;
		case 'C': tls.cert_file = optarg; break;
		case 'K': tls.key_file = optarg; break;
		case 'A': audit_path = optarg; break;
		case 'U': {
			uint32_t u;
			if (!parse_u32(optarg, 0, UINT32_MAX - 1, &u))
				bad = "--broker-uid (a uid)";
			broker_uid = u;
			break;
		}
		case 'h': usage(stdout); return 0;
		case 'V': bus_version_print(stdout, "procmond"); return 0;
		default: usage(stderr); return 2;
		}
		if (bad) {
			fprintf(stderr, "procmond: bad value for %s: %s\n", bad,
			        optarg);
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "procmond: unexpected argument '%s' (every "
		        "setting is an option)\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!addr || !id) {
		fprintf(stderr, "procmond: --connect and --id are required\n");
		usage(stderr);
		return 2;
	}
	if (!de_name_level_valid(id, DE_ID_BYTES_MAX)) {
		fprintf(stderr, "procmond: bad --id %s: letters, digits, '-', "
		                "'_' only\n", id);
		return 2;
	}
	if (!strncmp(addr, "tls://", 6) || tls.ca_file || tls.cert_file) {
		char terr[512];
		if ((!tls.cert_file) != (!tls.key_file)) {
			fprintf(stderr, "procmond: --tls-cert and --tls-key go "
			                "together\n");
			return 2;
		}
		if (bus_tls_check(&tls, false, terr, sizeof(terr)) != 0) {
			fprintf(stderr, "procmond: %s\n", terr);
			return 2;
		}
	}
	if (follow_agent() != 0)
		return 0; /* the agent that started us is already gone */
	struct pm *p = calloc(1, sizeof(*p));
	if (!p)
		return 1;
	char err[256];
	if (de_procfs_init(&p->fs, NULL, hashes, err, sizeof(err)) != 0) {
		fprintf(stderr, "procmond: %s\n", err);
		de_procfs_free(&p->fs);
		free(p);
		return 1;
	}
	p->fs.hash_bytes_max = (uint64_t)hash_mib << 20;
	p->fs.defer = true; /* hashed on the work queue (run_cycle) */
	p->fs.hash_cycle_bytes_max = (uint64_t)cycle_mib << 20;
	uv_loop_init(&p->loop);
	struct de_collector_ops ops = {.now = now_ns, .wall_ms = wall_ms,
	                               .publish = publish,
	                               .interval_changed = interval_changed,
	                               .stop = stop_requested,
	                               .rpc_metrics = rpc_metrics,
	                               .control = control};
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t incarnation = (uint64_t)ts.tv_sec * 1000000000ull +
	                       (uint64_t)ts.tv_nsec;
	de_collector_init(&p->col, id, incarnation, p->fs.ticks_per_s, &ops, p);
	if (de_collector_set_agent(&p->col, agent) != 0) {
		fprintf(stderr, "procmond: bad --agent %s: a bus name, without "
		                "'*' or '?'\n", agent);
		de_collector_free(&p->col);
		de_procfs_free(&p->fs);
		uv_loop_close(&p->loop);
		free(p);
		return 2;
	}
	if (audit_path) { /* close-on-exec, 0600 */
		int e = bus_rotlog_open(&p->alog, audit_path, 64u << 20, 4);
		if (e) {
			fprintf(stderr, "procmond: %s: cannot open the audit "
			                "log: %s\n", audit_path, strerror(-e));
			de_collector_free(&p->col);
			de_procfs_free(&p->fs);
			uv_loop_close(&p->loop);
			free(p);
			return 2;
		}
	}
	p->col.scan_interval_ms = interval;
	p->col.compute_hashes = hashes;
	p->col.max_processes = maxp;
	p->col.outbox.bytes_max = (uint64_t)retain_mib << 20;
	p->cycles_max = cycles;
	uv_timer_init(&p->loop, &p->timer);
	p->timer.data = p;
	uv_signal_init(&p->loop, &p->sigterm);
	uv_signal_init(&p->loop, &p->sigint);
	p->sigterm.data = p->sigint.data = p;
	uv_signal_start(&p->sigterm, on_signal, SIGTERM);
	uv_signal_start(&p->sigint, on_signal, SIGINT);
	signal(SIGPIPE, SIG_IGN);

	struct bus_client_config cfg;
	bus_client_config_defaults(&cfg);
	cfg.name = p->col.bus_name;
	cfg.broker_uid = broker_uid;
	cfg.tls = &tls;
	/* the outbox holds the backlog: the client's buffer stays small, so
	 * answers to the agent are never far behind events */
	cfg.out_bytes_max = 1u << 20;
	struct bus_client_handlers h = {on_delivery, on_rpc, on_state, on_drain,
	                                p};
	char aerr[300] = "";
	int rc = bus_address_check(addr, aerr, sizeof(aerr));
	if (rc == 0)
		rc = bus_client_open(&p->loop, addr, &cfg, &h, &p->bc);
	else
		fprintf(stderr, "procmond: --connect %s\n", aerr);
	if (rc) {
		if (rc != BUS_EINVAL || !aerr[0])
			fprintf(stderr, "procmond: %s: %s\n", addr, bus_strerror(rc));
		uv_close((uv_handle_t *)&p->timer, NULL);
		uv_close((uv_handle_t *)&p->sigterm, NULL);
		uv_close((uv_handle_t *)&p->sigint, NULL);
		uv_run(&p->loop, UV_RUN_DEFAULT);
		uv_loop_close(&p->loop);
		bus_rotlog_close(&p->alog);
		de_collector_free(&p->col);
		de_procfs_free(&p->fs);
		free(p);
		return 2;
	}
	uint64_t t0 = uv_hrtime();
	uv_run(&p->loop, UV_RUN_DEFAULT);
	double secs = (double)(uv_hrtime() - t0) / 1e9;
	const struct de_collector_stats *st = &p->col.stats;
	/* the counters, one JSON line on stderr after the name */
	json_t *j = json_pack(
		"{sososososososososososososf}", "cycles", bus_json_u64(st->cycles),
		"events", bus_json_u64(st->events), "events_failed",
		bus_json_u64(st->events_failed), "events_lost",
		bus_json_u64(st->events_lost), "unsent",
		bus_json_u64(de_outbox_unsent(&p->col.outbox)), "cycles_delayed",
		bus_json_u64(st->cycles_delayed), "resends",
		bus_json_u64(st->resends), "acked", bus_json_u64(p->acked),
		"ack_failed", bus_json_u64(p->ack_failed), "processes",
		bus_json_u64(st->processes), "hashed", bus_json_u64(p->fs.hashed),
		"hash_hits", bus_json_u64(p->fs.hash_hits), "seconds", secs);
	fputs("procmond: ", stderr);
	if (bus_json_line(stderr, j))
		fputs("(the counters: out of memory)\n", stderr);
	int code = p->exit_code;
	bus_rotlog_close(&p->alog);
	uv_loop_close(&p->loop);
	de_collector_free(&p->col);
	de_procfs_free(&p->fs);
	free(p);
	return code;
}
