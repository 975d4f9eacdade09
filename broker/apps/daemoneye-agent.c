/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye-agent — hosts the broker (embedded, the default) or joins a
 * standalone busrtd, starts the collectors its configuration lists,
 * supervises them and serves lifecycle.start/stop/restart/status for them.
 *
 *   daemoneye-agent [--config FILE] [--log-level error|warn|info|debug]
 *
 * broker.mode embedded: the broker runs in this process, listening on
 * broker.embedded.transport.path; the agent is an internal client of it.
 * broker.mode standalone: the agent connects to broker.standalone.socket
 * (or .address), the same keys busrtd binds. Collectors get --connect
 * with that address.
 *
 * Supervision decisions are de_sup's (broker/services/supervise.c, run by
 * the simulator too); this file spawns, signals, reaps (SIGCHLD through
 * libuv) and calls health.heartbeat. Every control message sent or
 * received goes to the audit log as a JSON line. SIGTERM/SIGINT: stop the
 * collectors, then the broker; exit 0. Bad configuration: exit 2.
 */
#define _DEFAULT_SOURCE
#include "bus/config.h"
#include "bus/rotlog.h"
#include "../bridge/natsjs.h"
#include "bus/json.h"
#include "bus/net.h"
#include "bus/prom.h"

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct agent;

struct child {
	uv_process_t proc;
	struct agent *a;
	uint32_t pid;
};

struct agent {
	uv_loop_t loop;
	uv_timer_t timer;
	uv_timer_t status_timer;        /* control/agent/status */
	uint64_t status_published;
	uv_signal_t sigterm, sigint;
	struct bus_server *srv;         /* embedded mode */
	struct bus_client *bc;
	struct bus_file_config fc;
	struct bus_agent_config *ac;
	const char *config_path;
	char connect_addr[300];         /* what collectors connect to */
	struct de_sup sup;
	struct de_intake intake;        /* events end to end: de-duplicated,
	                                   gaps resynced, each collector's view */
	struct de_agent da;             /* supervision's calls, lifecycle.* */
	struct bus_rotlog alog;         /* f NULL without an audit log */
	int log_level;
	bool ready_once, stopping, closed;
	bool connected; /* READY since the last disconnect */
	uint64_t events_in, events_bad;
	int exit_code;
	char **child_env;               /* ours + DAEMONEYE_AGENT_PID */
	struct bus_tls_config tls; /* connect_addr is tls://: its files */
	/* who may call lifecycle.*: agent.admins (default admin.*) */
	const char *admins[BUS_AGENT_ADMINS_MAX + 1];
	struct de_access access;
	char pid_env[48];
	/* agent.events advertised: the event topics subscribed for the
	 * collectors' capabilities (again at each READY) */
	char adv[64][128];
	size_t n_adv;
	/* agent.bridge: the embedded bridge (NULL: none), fed the events the
	 * intake processed; the collectors' acknowledgements wait for it */
	struct bus_bridge_config bridge_cfg;
	struct natsjs *nj;
	uint64_t bridge_failed;         /* events it could not hold (ENOMEM) */
};

extern char **environ;

/* The collectors' environment: ours, and our pid, so a collector can ask
 * the kernel for SIGTERM when we die (procmond does: PR_SET_PDEATHSIG). */
static int child_env_init(struct agent *a)
{
	size_t n = 0;
	while (environ[n])
		n++;
	a->child_env = calloc(n + 2, sizeof(char *));
	if (!a->child_env)
		return BUS_ENOMEM;
	snprintf(a->pid_env, sizeof(a->pid_env), "DAEMONEYE_AGENT_PID=%ld",
	         (long)getpid());
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "DAEMONEYE_AGENT_PID=", 20))
			a->child_env[k++] = environ[i];
	a->child_env[k++] = a->pid_env;
	a->child_env[k] = NULL;
	return 0;
}

static void logf_(struct agent *a, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logf_(struct agent *a, int level, const char *fmt, ...)
{
	if (level > a->log_level)
		return;
	/* lines carry peers' strings (collector names, topics): escaped as
	 * a whole, so none can forge a line or a terminal sequence */
	char line[2048], safe[4 * sizeof(line)];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	fprintf(stderr, "daemoneye-agent: %s\n",
	        bus_text_escape(safe, sizeof(safe), line, len));
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One audit line: {"time", "dir", "sender", "target", "method",
 * "result"}. */
static void audit(struct agent *a, const char *dir, const char *sender,
                  const char *target, const char *method, int code,
                  const char *detail)
{
	bus_audit_line(&a->alog, dir, sender, target, method, code, detail);
}

/* The embedded broker's refusals (ACL denials), in the same trail. */
static void broker_audit(void *arg, const struct bus_audit *d)
{
	struct agent *a = arg;
	bus_audit_denied(&a->alog, d);
}

/* ---- supervision host ---------------------------------------------------------- */
static void arm(struct agent *a);

static void child_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_child_exit(uv_process_t *p, int64_t status, int sig)
{
	struct child *ch = p->data;
	struct agent *a = ch->a;
	char how[64];
	if (sig)
		snprintf(how, sizeof(how), "killed by signal %d", sig);
	else
		snprintf(how, sizeof(how), "exited with status %lld",
		         (long long)status);
	int idx = de_sup_find_pid(&a->sup, ch->pid);
	uv_close((uv_handle_t *)p, child_closed);
	if (idx >= 0)
		de_sup_on_exit(&a->sup, (size_t)idx, how, uv_hrtime());
	arm(a);
}

static int sup_spawn(void *host, size_t idx, uint32_t *pid, char *why,
                     size_t whylen)
{
	struct agent *a = host;
	const struct bus_collector_config *cc = &a->ac->collectors[idx];
	char *argv[BUS_COLLECTOR_ARGS_MAX + 22];
	char interval[16], maxp[16], audit_path[512];
	size_t n = 0;
	for (uint32_t i = 0; i < cc->argc; i++)
		argv[n++] = (char *)cc->argv[i];
	snprintf(interval, sizeof(interval), "%u", cc->scan_interval_ms);
	snprintf(maxp, sizeof(maxp), "%u", cc->max_processes);
	argv[n++] = "--connect";
	argv[n++] = a->connect_addr;
	argv[n++] = "--id";
	argv[n++] = (char *)cc->id;
	argv[n++] = "--agent"; /* the one caller of its lifecycle.*, config.* */
	argv[n++] = a->ac->name;
	argv[n++] = "--interval-ms";
	argv[n++] = interval;
	if (!cc->compute_hashes)
		argv[n++] = "--no-hash";
	if (cc->max_processes) {
		argv[n++] = "--max-processes";
		argv[n++] = maxp;
	}
	const char *tls_args[][2] = {{"--tls-ca", a->tls.ca_file},
	                             {"--tls-cert", a->tls.cert_file},
	                             {"--tls-key", a->tls.key_file}};
	for (size_t i = 0; i < 3; i++)
		if (tls_args[i][1]) {
			argv[n++] = (char *)tls_args[i][0];
			argv[n++] = (char *)tls_args[i][1];
		}
	if (a->ac->audit_log[0]) { /* what it serves, beside our trail */
		const char *slash = strrchr(a->ac->audit_log, '/');
		int dl = slash ? (int)(slash - a->ac->audit_log + 1) : 0;
		snprintf(audit_path, sizeof(audit_path),
		         "%.*scollector.%s.%s.audit.jsonl", dl, a->ac->audit_log,
		         cc->type, cc->id);
		argv[n++] = "--audit";
		argv[n++] = audit_path;
	}
	argv[n] = NULL;
	struct child *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return BUS_ENOMEM;
	ch->a = a;
	ch->proc.data = ch;
	uv_stdio_container_t stdio[3] = {
		{.flags = UV_IGNORE},
		{.flags = UV_INHERIT_FD, .data.fd = 1},
		{.flags = UV_INHERIT_FD, .data.fd = 2}};
	uv_process_options_t o = {.exit_cb = on_child_exit,
	                          .file = argv[0],
	                          .args = argv,
	                          .env = a->child_env,
	                          .stdio_count = 3,
	                          .stdio = stdio};
	int rc = uv_spawn(&a->loop, &ch->proc, &o);
	if (rc) {
		/* the supervisor logs it ("spawn failed") and retries */
		snprintf(why, whylen, "%s: %s%s", argv[0], uv_strerror(rc),
		         rc == UV_ENOENT ? " (is the collector installed? its path "
		                           "is agent.collectors[].command)"
		         : rc == UV_EACCES ? " (not executable by the agent: its "
		                             "mode, or a noexec mount)"
		                           : "");
		uv_close((uv_handle_t *)&ch->proc, child_closed);
		return BUS_EIO;
	}
	ch->pid = (uint32_t)ch->proc.pid;
	*pid = ch->pid;
	de_agent_spawned(&a->da, idx);
	return 0;
}

static void sup_kill(void *host, size_t idx, uint32_t pid, bool hard)
{
	struct agent *a = host;
	logf_(a, 2, "%s: sending %s to pid %u", a->sup.c[idx].id,
	      hard ? "SIGKILL" : "SIGTERM", pid);
	uv_kill((int)pid, hard ? SIGKILL : SIGTERM);
}

static void sup_heartbeat(void *host, size_t idx, uint64_t seq)
{
	de_agent_heartbeat(&((struct agent *)host)->da, idx, seq);
}

static void sup_health_check(void *host, size_t idx, uint64_t seq)
{
	de_agent_health_check(&((struct agent *)host)->da, idx, seq);
}

/* A heartbeat or health check ended: the audit trail's "out" line. */
static void exchanged(void *host, size_t idx, const char *method,
                      uint64_t seq, bool ok, int health, int code,
                      const char *detail)
{
	(void)seq;
	(void)ok;
	(void)health;
	struct agent *a = host;
	audit(a, "out", a->ac->name, a->sup.c[idx].bus_name, method, code,
	      detail);
}

static uint64_t agent_now(void *host)
{
	(void)host;
	return uv_hrtime();
}

static int64_t agent_wall_ms(void *host)
{
	(void)host;
	return wall_ms();
}

/* lifecycle.start's configuration: the next spawn passes it on. */
static void configure(void *host, size_t idx,
                      const Daemoneye__CollectorConfig *cfg)
{
	struct agent *a = host;
	struct bus_collector_config *cc = &a->ac->collectors[idx];
	cc->scan_interval_ms = cfg->scan_interval_ms;
	cc->compute_hashes = cfg->compute_hashes;
	cc->max_processes = cfg->max_processes;
}

static void rearm(void *host) { arm(host); }

/* ---- end to end: the intake's resync calls ------------------------------------- */
struct resync_call {
	struct agent *a;
	uint64_t id;
	char name[DE_BUS_NAME_BYTES_MAX];
};

static void resync_done(struct bus_client *c, int status,
                        const struct bus_rpc_result *r, void *arg)
{
	(void)c;
	struct resync_call *k = arg;
	struct agent *a = k->a;
	Daemoneye__ResyncResponse *resp = NULL;
	char detail[128];
	if (status == 0)
		resp = (void *)de_reply_unpack("collector.resync", r);
	if (resp)
		snprintf(detail, sizeof(detail), "%s, sequences %llu..%llu",
		         resp->replayed ? "re-sent" : "full",
		         (unsigned long long)resp->first_sequence,
		         (unsigned long long)resp->last_sequence);
	else
		snprintf(detail, sizeof(detail), "%s",
		         status ? bus_strerror(status) : "bad reply");
	audit(a, "out", a->ac->name, k->name, "collector.resync",
	      resp ? 0 : (r && r->code ? r->code : status ? status : -1),
	      detail);
	if (!a->closed) {
		de_intake_resync_done(&a->intake, k->name, k->id, resp,
		                      uv_hrtime());
		arm(a);
	}
	bus_pb_free(resp ? &resp->base : NULL);
	free(k);
}

static void intake_resync(void *host, const struct de_stream *st,
                          const Daemoneye__ResyncRequest *q)
{
	struct agent *a = host;
	struct resync_call *k = calloc(1, sizeof(*k));
	int rc = BUS_ENOMEM;
	if (k) {
		*k = (struct resync_call){a, q->resync_id, ""};
		snprintf(k->name, sizeof(k->name), "%s", st->name);
		rc = de_call(a->bc, st->name, "collector.resync", &q->base,
		             &a->ac->policies, resync_done, k);
	}
	if (rc) {
		free(k);
		audit(a, "out", a->ac->name, st->name, "collector.resync", rc,
		      bus_strerror(rc));
		de_intake_resync_done(&a->intake, st->name, q->resync_id, NULL,
		                      uv_hrtime());
	}
}

static void intake_note(void *host, const struct de_stream *st,
                        const char *what, const char *detail)
{
	struct agent *a = host;
	logf_(a, 1, "%s: %s (%s)", st->name, what, detail);
}

/* control/agent/status: every agent.status_interval_ms and at each
 * collector state change (QoS 0: a status is superseded by the next). */
/* agent.bridge: a collector forgets only what JetStream stored. */
static uint64_t intake_ack_cap(void *host, const struct de_stream *st,
                               uint64_t upto)
{
	struct agent *a = host;
	return natsjs_stored_through(a->nj, st->name, st->incarnation, upto);
}

static void bridge_log(void *arg, int level, const char *msg)
{
	logf_(arg, level, "bridge: %s", msg);
}

static void publish_status(struct agent *a)
{
	if (!a->bc || a->closed || bus_client_state(a->bc) != BUS_CLIENT_READY)
		return;
	uint8_t *p;
	size_t n;
	if (de_agent_status_pack(&a->da, &p, &n))
		return;
	int rc = bus_client_publish(a->bc, DE_TOPIC_AGENT_STATUS, p, n, 0,
	                            NULL, NULL);
	if (rc == 0)
		a->status_published++;
	free(p);
	audit(a, "out", a->ac->name, DE_TOPIC_AGENT_STATUS, "publish", rc,
	      rc ? bus_strerror(rc) : "");
}

/* agent.events advertised: subscribe what a collector's capabilities name
 * (under events/, once each). */
static void subscribe_advertised(struct agent *a, size_t idx)
{
	const Daemoneye__CollectorCapabilities *m = a->da.caps[idx];
	for (size_t i = 0; m && i < m->n_event_topics; i++) {
		const char *t = m->event_topics[i];
		if (strncmp(t, "events/", 7) || strlen(t) >= sizeof(a->adv[0]) ||
		    strpbrk(t, "#+"))
			continue; /* not an event topic: not ours to read */
		size_t k = 0;
		while (k < a->n_adv && strcmp(a->adv[k], t))
			k++;
		if (k < a->n_adv)
			continue;
		if (a->n_adv == sizeof(a->adv) / sizeof(a->adv[0])) {
			logf_(a, 1, "%s: too many advertised topics; %s not "
			      "subscribed", a->sup.c[idx].id, t);
			continue;
		}
		snprintf(a->adv[a->n_adv++], sizeof(a->adv[0]), "%s", t);
		const char *mask[] = {t};
		bus_client_subscribe(a->bc, mask, 1, NULL, NULL);
		logf_(a, 2, "subscribed %s (advertised by %s)", t,
		      a->sup.c[idx].id);
	}
}

/* control/collector/capabilities and .../shutdown from a collector. */
static void on_control(struct agent *a, const struct bus_delivery *d)
{
	size_t idx = 0;
	int rc = de_agent_control(&a->da, d->sender, d->topic, d->data, d->len,
	                          &idx);
	char detail[160] = "";
	if (rc) {
		snprintf(detail, sizeof(detail), "%s", bus_strerror(rc));
		logf_(a, 1, "ignored %s from %s: %s", d->topic, d->sender,
		      detail);
	} else if (a->da.caps[idx] && !strcmp(d->topic, DE_TOPIC_CAPABILITIES)) {
		const Daemoneye__CollectorCapabilities *m = a->da.caps[idx];
		snprintf(detail, sizeof(detail),
		         "%s %s, incarnation %llu, %zu topics, %zu methods",
		         m->collector_type, m->version,
		         (unsigned long long)m->incarnation, m->n_event_topics,
		         m->n_rpc_methods);
		if (a->ac->events_advertised)
			subscribe_advertised(a, idx);
	} else if (a->da.down[idx]) {
		const Daemoneye__CollectorShutdown *m = a->da.down[idx];
		Daemoneye__CollectorStatus st;
		de_agent_status(&a->da, idx, &st);
		snprintf(detail, sizeof(detail),
		         "last sequence %llu, %llu processed here, %llu "
		         "unacknowledged",
		         (unsigned long long)m->last_sequence,
		         (unsigned long long)st.last_sequence,
		         (unsigned long long)m->retained);
		logf_(a, 1, "%s: shutdown answered: %s", a->sup.c[idx].id,
		      detail);
	}
	audit(a, rc ? "denied" : "in", d->sender, d->topic, "publish", rc,
	      detail);
}

static void on_status_timer(uv_timer_t *t)
{
	publish_status(t->data);
}

static void sup_event(void *host, size_t idx, const char *what,
                      const char *detail)
{
	struct agent *a = host;
	logf_(a, 1, "%s: %s (%s)", a->sup.c[idx].id, what, detail);
	publish_status(a);
}

static void on_timer(uv_timer_t *t)
{
	struct agent *a = t->data;
	de_sup_tick(&a->sup, uv_hrtime());
	de_intake_tick(&a->intake, uv_hrtime());
	arm(a);
}

/* Sleeps exactly until supervision's next deadline. */
static void on_stop_poll(uv_timer_t *t);

static void arm(struct agent *a)
{
	if (a->closed)
		return;
	if (a->stopping) {
		uv_timer_start(&a->timer, on_stop_poll, 10, 0);
		return;
	}
	uint64_t d = de_sup_next_deadline(&a->sup), now = uv_hrtime();
	uint64_t di = de_intake_next_deadline(&a->intake);
	d = di < d ? di : d;
	if (d == UINT64_MAX) {
		uv_timer_stop(&a->timer);
		return;
	}
	uint64_t ms = d > now ? (d - now + 999999) / 1000000 : 0;
	uv_timer_start(&a->timer, on_timer, ms, 0);
}

/* ---- the bus client ---------------------------------------------------------------- */
static void on_rpc(struct bus_client *c, const struct bus_rpc_request *q,
                   void *arg)
{
	struct agent *a = arg;
	struct de_served sv;
	de_agent_serve(&a->da, c, q, &a->access, &sv);
	if (sv.denied)
		logf_(a, 1, "refused %s from %s: not in agent.admins",
		      sv.method, q->sender);
	if (sv.answered)
		audit(a, "in", q->sender, a->ac->name, sv.method, sv.code,
		      sv.message);
}

static void on_delivery(struct bus_client *c, const struct bus_delivery *d,
                        void *arg)
{
	(void)c;
	struct agent *a = arg;
	if (d->kind == BUS_OP_PUBLISH && !strncmp(d->topic, "control/", 8)) {
		on_control(a, d);
		return;
	}
	if (d->kind != BUS_OP_PUBLISH || strncmp(d->topic, "events/", 7))
		return;
	a->events_in++;
	/* in sequence per collector, duplicates dropped, gaps resynced */
	int rc = de_intake_event(&a->intake, d->sender, d->data, d->len,
	                         uv_hrtime());
	if (rc == BUS_EPROTO && a->events_bad++ < 10)
		logf_(a, 1, "dropped a malformed event on %s from %s", d->topic,
		      d->sender);
	/* processed, in sequence, once: to JetStream; the collector keeps
	 * it until stored (intake_ack_cap), so a full window is only a
	 * bigger outbox there: it is not stopped here */
	bool paused;
	if (rc == 1 && a->nj &&
	    natsjs_take(a->nj, d->sender, d->topic, d->data, d->len, &paused) &&
	    a->bridge_failed++ < 10)
		logf_(a, 0, "bridge: out of memory: an event of %s is not "
		      "bridged", d->sender);
	if (!a->closed)
		arm(a);
}

static void start_enabled(struct agent *a)
{
	for (size_t i = 0; i < a->sup.n; i++)
		if (a->ac->collectors[i].enabled)
			de_sup_start(&a->sup, i, uv_hrtime());
	arm(a);
}

static void finish(struct agent *a);

static void on_state(struct bus_client *c, enum bus_client_state st,
                     int reason, void *arg)
{
	struct agent *a = arg;
	if (st == BUS_CLIENT_READY) {
		static const char *masks[] = {DE_TOPIC_CAPABILITIES,
		                              DE_TOPIC_COLLECTOR_SHUTDOWN,
		                              "events/#"};
		bus_client_subscribe(c, masks, a->ac->events_advertised ? 2 : 3,
		                     NULL, NULL);
		for (size_t i = 0; i < a->n_adv; i++) {
			const char *m[] = {a->adv[i]};
			bus_client_subscribe(c, m, 1, NULL, NULL);
		}
		logf_(a, 2, "registered as %s", a->ac->name);
		a->connected = true;
		if (!a->ready_once) {
			a->ready_once = true;
			start_enabled(a);
		}
	} else if (st == BUS_CLIENT_DISCONNECTED && reason) {
		if (a->connected) /* this connection had registered */
			logf_(a, 1, "broker connection lost (%s); reconnecting",
			      bus_client_reason(c, reason));
		else
			logf_(a, 1, "cannot reach the broker (%s); retrying",
			      bus_client_reason(c, reason));
		a->connected = false;
	} else if (st == BUS_CLIENT_CLOSED) {
		a->bc = a->da.bc = NULL;
		if (!a->stopping) {
			logf_(a, 0, "broker connection closed: %s",
			      bus_strerror(reason));
			a->exit_code = 1;
		}
		finish(a);
	}
}

/* ---- shutdown ----------------------------------------------------------------------- */
static void server_down(struct bus_server *s, void *arg)
{
	struct agent *a = arg;
	bus_server_free(s);
	a->srv = NULL;
}

static void finish(struct agent *a)
{
	if (a->closed)
		return;
	a->closed = a->da.closed = true;
	uv_close((uv_handle_t *)&a->timer, NULL);
	uv_close((uv_handle_t *)&a->status_timer, NULL);
	uv_close((uv_handle_t *)&a->sigterm, NULL);
	uv_close((uv_handle_t *)&a->sigint, NULL);
	signal(SIGTERM, SIG_IGN); /* exiting already */
	signal(SIGINT, SIG_IGN);
	if (a->bc)
		bus_client_close(a->bc);
	if (a->srv)
		bus_server_shutdown(a->srv, server_down, a);
}

static bool all_stopped(const struct agent *a)
{
	for (size_t i = 0; i < a->sup.n; i++)
		if (a->sup.c[i].state != DE_SUP_STOPPED &&
		    a->sup.c[i].state != DE_SUP_FAILED)
			return false;
	return true;
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct agent *a = h->data;
	logf_(a, 1, "%s: stopping the collectors",
	      signum == SIGTERM ? "SIGTERM" : "SIGINT");
	if (a->stopping)
		return;
	a->stopping = true;
	/* on the bus first: each collector hands over what it holds, answers
	 * and exits; signals only for those still there (de_sup_shutdown) */
	const char *why = signum == SIGTERM ? "SIGTERM" : "SIGINT";
	int rc = de_agent_shutdown(&a->da, uv_hrtime() | 1, why, uv_hrtime());
	audit(a, "out", a->ac->name, DE_TOPIC_AGENT_SHUTDOWN, "publish", rc,
	      rc ? bus_strerror(rc) : why);
	on_stop_poll(&a->timer);
}

/* While stopping: supervision still escalates to SIGKILL; finish once
 * every collector is reaped. */
static void on_stop_poll(uv_timer_t *t)
{
	struct agent *a = t->data;
	de_sup_tick(&a->sup, uv_hrtime());
	if (all_stopped(a)) {
		finish(a);
		return;
	}
	uv_timer_start(&a->timer, on_stop_poll, 10, 0);
}

/* After the loop: JetStream stores what the window holds, for up to
 * bridge.drain_timeout_ms; what is left is counted and lost (its
 * collectors, stopped, no longer hold it either). */
static void bridge_drain(struct agent *a)
{
	if (!a->nj)
		return;
	struct natsjs_stats ns;
	uint64_t until = uv_hrtime() + a->bridge_cfg.drain_timeout_ms * 1000000u;
	for (;;) {
		natsjs_stats(a->nj, &ns);
		if (!ns.pending || uv_hrtime() >= until)
			break;
		usleep(20000);
	}
	natsjs_close(a->nj);
	a->nj = NULL;
	logf_(a, ns.pending ? 0 : 2, "bridge: %llu events taken, %llu stored "
	      "(%llu re-sent, %llu duplicates), %zu not stored at exit",
	      (unsigned long long)ns.br.taken, (unsigned long long)ns.br.stored,
	      (unsigned long long)ns.br.resent,
	      (unsigned long long)ns.br.duplicates, ns.pending);
	if (ns.pending && !a->exit_code)
		a->exit_code = 1;
}

/* ---- configuration ---------------------------------------------------------------------- */
static void usage(FILE *f)
{
	fprintf(f, "usage: daemoneye-agent [--config FILE] [--check-config] "
	           "[--log-level error|warn|info|debug]\n"
	           "  --config FILE  YAML: broker: (as busrtd) and agent: "
	           "(README: DaemonEye)\n"
	        "  --check-config check the configuration, then exit (0: valid)\n"
	        "  -h, --help     this text; -V, --version: the version\n");
}

static int load_config(struct agent *a, char *err, size_t errlen)
{
	static struct bus_agent_config ac;
	bus_agent_config_defaults(&ac);
	a->ac = &ac;
	for (int pass = 0; pass < 2; pass++) {
		bool embedded = pass == 0;
		bus_config_free(&a->fc); /* the first pass's, read again */
		bus_config_defaults(&a->fc, embedded);
		if (embedded) /* standalone: socket, else address, else this */
			snprintf(a->fc.socket_path, sizeof(a->fc.socket_path),
			         "%s", BUS_DEFAULT_SOCKET);
		a->fc.agent = &ac;
		bus_agent_config_defaults(&ac);
		a->fc.bridge = &a->bridge_cfg;
		bus_bridge_config_defaults(&a->bridge_cfg);
		if (a->config_path &&
		    bus_config_load(a->config_path, &a->fc, err, errlen)) {
			bus_config_free(&a->fc);
			return BUS_ECONFIG;
		}
		if (strcmp(a->fc.mode, "standalone") != 0)
			break; /* embedded (the default): first pass holds */
		if (!embedded)
			break;
	}
	/* the ACL is the broker's: the embedded one reads the file itself,
	 * a standalone one is busrtd */
	bus_config_free(&a->fc);
	const char *to = a->fc.socket_path[0] ? a->fc.socket_path
	                 : a->fc.address[0]   ? a->fc.address
	                                      : BUS_DEFAULT_SOCKET;
	/* standalone over TCP to a TLS listener: so do we and the collectors */
	bool tls = !a->fc.embedded && !a->fc.socket_path[0] &&
	           a->fc.address[0] && a->fc.tls_enabled;
	snprintf(a->connect_addr, sizeof(a->connect_addr), "%s%s",
	         tls ? "tls://" : "", to);
	if (tls) {
		a->tls = (struct bus_tls_config){
		    a->fc.tls_client_cert_file[0] ? a->fc.tls_client_cert_file
		                                  : NULL,
		    a->fc.tls_client_key_file[0] ? a->fc.tls_client_key_file
		                                 : NULL,
		    a->fc.tls_ca_file[0] ? a->fc.tls_ca_file : NULL, false};
		if (bus_tls_check(&a->tls, false, err, errlen) != 0)
			return BUS_ECONFIG;
	}
	for (uint32_t i = 0; i < ac.n_admins; i++)
		a->admins[i] = ac.admins[i];
	a->admins[ac.n_admins] = NULL;
	a->access.callers[DE_SVC_LIFECYCLE] = a->admins;
	struct bus_br_config bc;
	if (ac.bridge && natsjs_br_config(&a->bridge_cfg, &bc, err, errlen))
		return BUS_ECONFIG;
	return 0;
}

static int setup_supervision(struct agent *a, char *err, size_t errlen)
{
	struct de_sup_ops ops = {.spawn = sup_spawn, .kill = sup_kill,
	                         .heartbeat = sup_heartbeat,
	                         .health_check = sup_health_check,
	                         .event = sup_event};
	de_sup_init(&a->sup, &a->ac->policies, &ops, a);
	struct de_intake_ops iops = {.resync = intake_resync,
	                             .note = intake_note,
	                             .ack_cap = a->ac->bridge ? intake_ack_cap
	                                                      : NULL};
	de_intake_init(&a->intake, &iops, a, a->ac->policies.resync_retry_ns);
	struct de_agent_ops dops = {.now = agent_now, .wall_ms = agent_wall_ms,
	                            .exchanged = exchanged,
	                            .configure = configure, .changed = rearm};
	de_agent_init(&a->da, &a->sup, &a->intake, NULL, a->ac->name, &dops, a);
	for (size_t i = 0; i < a->ac->n_collectors; i++) {
		const struct bus_collector_config *cc = &a->ac->collectors[i];
		if (de_sup_add(&a->sup, cc->id, cc->type) != (int)i) {
			snprintf(err, errlen, "collector %s: cannot supervise",
			         cc->id);
			return BUS_ECONFIG;
		}
	}
	return 0;
}

/* The embedded broker's /metrics: after the broker's families, the
 * agent's RPC calls and its view of each collector. */
static void agent_prom(void *arg, FILE *f)
{
	struct agent *a = arg;
	if (a->bc)
		bus_prom_rpc(f, bus_client_rpc_metrics(a->bc));
	static const struct {
		const char *name, *type, *help;
	} fams[] = {
	    {"busrt_collector_up", "gauge", "1 while the collector runs"},
	    {"busrt_collector_restarts_total", "counter",
	     "times the agent restarted it"},
	    {"busrt_collector_events_total", "counter",
	     "its events the agent processed, in sequence"},
	    {"busrt_collector_duplicates_total", "counter",
	     "re-sent events already processed"},
	    {"busrt_collector_gaps_total", "counter",
	     "events lost for good (declared, or a full resync's jump)"},
	    {"busrt_collector_resyncs_total", "counter",
	     "collector.resync requests completed"},
	    {"busrt_collector_missing_total", "counter",
	     "events found missing, a re-send asked"},
	};
	for (size_t k = 0; k < sizeof(fams) / sizeof(fams[0]); k++) {
		bus_prom_family(f, fams[k].name, fams[k].type, fams[k].help);
		for (size_t i = 0; i < a->sup.n; i++) {
			Daemoneye__CollectorStatus st;
			de_agent_status(&a->da, i, &st);
			uint64_t v[] = {
			    st.state ==
			        DAEMONEYE__COLLECTOR_STATUS__STATE__RUNNING,
			    st.restarts, st.events, st.duplicates, st.gaps,
			    st.resyncs, st.missing};
			fprintf(f, "%s{collector=", fams[k].name);
			bus_prom_label_value(f, st.collector_id,
			                     strlen(st.collector_id));
			fprintf(f, "} %llu\n", (unsigned long long)v[k]);
		}
	}
	if (!a->nj)
		return;
	struct natsjs_stats ns;
	natsjs_stats(a->nj, &ns);
	const struct {
		const char *name, *type, *help;
		uint64_t v;
	} br[] = {
	    {"busrt_bridge_taken_total", "counter",
	     "events the intake processed, into the bridge's window",
	     ns.br.taken},
	    {"busrt_bridge_stored_total", "counter",
	     "events JetStream acknowledged storing", ns.br.stored},
	    {"busrt_bridge_resent_total", "counter",
	     "publishes after a frame's first", ns.br.resent},
	    {"busrt_bridge_errors_total", "counter",
	     "publishes failed or timed out (published again)", ns.br.errors},
	    {"busrt_bridge_duplicates_total", "counter",
	     "PubAcks marked duplicate (a re-send JetStream already held)",
	     ns.br.duplicates},
	    {"busrt_bridge_pending", "gauge",
	     "events in the window, not stored yet (their collectors keep "
	     "them)", ns.pending},
	    {"busrt_bridge_nats_up", "gauge", "1 while connected to NATS",
	     ns.up},
	};
	for (size_t k = 0; k < sizeof(br) / sizeof(br[0]); k++) {
		bus_prom_family(f, br[k].name, br[k].type, br[k].help);
		fprintf(f, "%s %llu\n", br[k].name, (unsigned long long)br[k].v);
	}
}

static int open_bus(struct agent *a, char *err, size_t errlen)
{
	struct bus_client_config cfg;
	bus_client_config_defaults(&cfg);
	cfg.name = a->ac->name;
	cfg.broker_uid = a->fc.broker_uid; /* standalone: broker.uid */
	cfg.tls = &a->tls;
	struct bus_client_handlers h = {on_delivery, on_rpc, on_state, NULL, a};
	int rc;
	if (a->fc.embedded) {
		rc = bus_embedded_start(&a->loop, a->config_path,
		                        a->fc.socket_path, &a->srv, err, errlen);
		if (rc)
			return rc;
		if (a->alog.f)
			bus_server_set_audit(a->srv, broker_audit, a);
		bus_server_set_metrics_extra(a->srv, agent_prom, a);
		rc = bus_server_client_open(a->srv, &cfg, &h, &a->bc);
	} else {
		rc = bus_client_open(&a->loop, a->connect_addr, &cfg, &h, &a->bc);
	}
	a->da.bc = a->bc;
	if (rc && !err[0])
		snprintf(err, errlen, "%s", bus_strerror(rc));
	return rc;
}

/* --check-config: can the collector's command be run as uv_spawn runs
 * it (execvp: a name without '/' is looked up in PATH)? 0, or -1 with
 * err saying why not. */
static int command_runnable(const char *cmd, char *err, size_t errlen)
{
	if (strchr(cmd, '/')) {
		if (access(cmd, X_OK) == 0)
			return 0;
		snprintf(err, errlen, "%s: %s", cmd, strerror(errno));
		return -1;
	}
	const char *path = getenv("PATH");
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		const char *e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		char full[4096];
		snprintf(full, sizeof(full), "%.*s/%s", (int)(n ? n : 1),
		         n ? p : ".", cmd);
		if (access(full, X_OK) == 0)
			return 0;
		p += n + (e != NULL);
	}
	snprintf(err, errlen, "%s: not found in PATH", cmd);
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"check-config", no_argument, NULL, 'X'},
		{NULL, 0, NULL, 0}};
	static struct agent ag;
	struct agent *a = &ag;
	a->log_level = 1;
	int opt;
	bool check_only = false;
	while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			a->config_path = optarg;
			break;
		case 'l': {
			a->log_level = bus_log_level_parse(optarg);
			if (a->log_level < 0) {
				fprintf(stderr, "daemoneye-agent: bad --log-level "
				                "%s\n", optarg);
				usage(stderr);
				return 2;
			}
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			bus_version_print(stdout, "daemoneye-agent");
			return 0;
		case 'X':
			check_only = true;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	char err[512] = "";
	if (load_config(a, err, sizeof(err)) ||
	    setup_supervision(a, err, sizeof(err))) {
		fprintf(stderr, "daemoneye-agent: %s\n", err);
		return 2;
	}
	if (check_only) { /* --check-config: parsed and checked, nothing run */
		for (size_t i = 0; i < a->ac->n_collectors; i++) {
			const struct bus_collector_config *cc = &a->ac->collectors[i];
			if (command_runnable(cc->argv[0], err, sizeof(err))) {
				fprintf(stderr, "daemoneye-agent: %s: collector %s: "
				        "%s\n", a->config_path ? a->config_path
				                              : "(defaults)",
				        cc->id, err);
				return 2;
			}
		}
		printf("daemoneye-agent: %s: the configuration is valid "
		       "(%s broker, %zu collector%s)\n",
		       a->config_path ? a->config_path : "(defaults)",
		       a->fc.embedded ? "embedded" : "standalone",
		       a->ac->n_collectors, a->ac->n_collectors == 1 ? "" : "s");
		return 0;
	}
	if (a->ac->audit_log[0]) { /* close-on-exec: collectors must not
	                              inherit it */
		int e = bus_rotlog_open(&a->alog, a->ac->audit_log,
		                        a->ac->audit_max_bytes, a->ac->audit_keep);
		if (e) {
			fprintf(stderr, "daemoneye-agent: %s: cannot open the "
			                "audit log: %s\n", a->ac->audit_log,
			        strerror(-e));
			return 2;
		}
	}
	if (child_env_init(a)) {
		fprintf(stderr, "daemoneye-agent: out of memory\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&a->loop);
	uv_timer_init(&a->loop, &a->timer);
	a->timer.data = a;
	uv_timer_init(&a->loop, &a->status_timer);
	a->status_timer.data = a;
	uint64_t sms = a->ac->status_interval_ns / 1000000u;
	if (sms)
		uv_timer_start(&a->status_timer, on_status_timer, sms, sms);
	uv_signal_init(&a->loop, &a->sigterm);
	uv_signal_init(&a->loop, &a->sigint);
	a->sigterm.data = a->sigint.data = a;
	uv_signal_start(&a->sigterm, on_signal, SIGTERM);
	uv_signal_start(&a->sigint, on_signal, SIGINT);
	/* before any event: the collectors' acknowledgements wait for it */
	if (a->ac->bridge &&
	    natsjs_open(&a->nj, &a->bridge_cfg, bridge_log, a, a->log_level,
	                err, sizeof(err))) {
		fprintf(stderr, "daemoneye-agent: bridge: %s\n", err);
		return 2;
	}
	if (open_bus(a, err, sizeof(err))) {
		fprintf(stderr, "daemoneye-agent: %s\n", err);
		finish(a);
		uv_run(&a->loop, UV_RUN_DEFAULT);
		return 2;
	}
	logf_(a, 2, "%s broker, collectors connect to %s",
	      a->fc.embedded ? "embedded" : "standalone", a->connect_addr);
	uv_run(&a->loop, UV_RUN_DEFAULT);
	bridge_drain(a);
	logf_(a, 2, "events received %llu, malformed %llu",
	      (unsigned long long)a->events_in,
	      (unsigned long long)a->events_bad);
	uv_loop_close(&a->loop);
	bus_rotlog_close(&a->alog);
	de_intake_free(&a->intake);
	de_agent_free(&a->da);
	free(a->child_env);
	return a->exit_code;
}
