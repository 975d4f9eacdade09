/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector.c — a process collector without I/O (daemoneye.h): its cycle
 * turns tables into published events; its services answer the agent.
 * procmond hosts it on libuv; the simulator runs the same code.
 */
#include "bus/daemoneye.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int de_collector_init(struct de_collector *c, const char *id,
                      uint64_t incarnation, uint32_t ticks_per_s,
                      const struct de_collector_ops *ops, void *host)
{
	memset(c, 0, sizeof(*c));
	if (!de_name_level_valid(id, sizeof(c->id)))
		return BUS_EINVAL;
	snprintf(c->id, sizeof(c->id), "%s", id);
	snprintf(c->bus_name, sizeof(c->bus_name), "collector.process.%s", id);
	c->incarnation = incarnation;
	c->scan_interval_ms = 1000;
	c->compute_hashes = true;
	c->ops = *ops;
	c->host = host;
	c->started_ns = ops->now(host);
	c->src = (struct de_event_source){c->bus_name, incarnation, 0, 0};
	de_procdiff_init(&c->diff, ticks_per_s);
	de_outbox_init(&c->outbox, DE_RETAIN_BYTES_DEFAULT);
	c->only_agent[0] = c->agent_monitors[0] = c->agent;
	c->agent_monitors[1] = "monitor.*";
	c->access.callers[DE_SVC_LIFECYCLE] = c->only_agent;
	c->access.callers[DE_SVC_CONFIG] = c->only_agent;
	c->access.callers[DE_SVC_EVENTS] = c->only_agent;
	c->access.callers[DE_SVC_HEALTH] = c->agent_monitors;
	return de_collector_set_agent(c, DE_AGENT_NAME);
}

int de_collector_set_agent(struct de_collector *c, const char *agent)
{
	/* a name, matched exactly: no mask levels */
	if (!agent || !*agent || strlen(agent) >= sizeof(c->agent) ||
	    strpbrk(agent, "*?"))
		return BUS_EINVAL;
	snprintf(c->agent, sizeof(c->agent), "%s", agent);
	return 0;
}

void de_collector_free(struct de_collector *c)
{
	de_procdiff_free(&c->diff);
	de_outbox_free(&c->outbox);
}

/* ---- events: made in order, kept until the agent has them ------------------- */
/* Keeps one packed event (its sequence just taken). No room: it and the
 * rest of this cycle are lost, and a gap marker will say so. */
static void keep(struct de_collector *c, enum de_event_type type,
                 const char *topic, const struct de_proc *p, uint8_t *buf,
                 size_t len)
{
	uint64_t seq = c->src.sequence;
	if (de_outbox_add(&c->outbox, seq, topic, buf, len, false) != 0) {
		c->src.sequence--; /* unused: the gap marker takes it */
		c->losing = true;
		c->stats.events_lost++;
		return;
	}
	c->stats.events++;
	if (c->ops.made)
		c->ops.made(c->host, seq, type, topic, p, buf, len);
}

static void emit(void *arg, enum de_event_type type, const char *topic,
                 const struct de_proc *p)
{
	struct de_collector *c = arg;
	if (c->losing) { /* no room left in this cycle (outbox full) */
		c->stats.events_lost++;
		return;
	}
	size_t len;
	uint8_t *buf = de_event_pack(&c->src, topic, type, p,
	                             c->diff.cycles + 1, c->cycle_ms, &len);
	if (!buf) { /* out of memory: lost, and said so */
		c->losing = true;
		c->stats.events_lost++;
		return;
	}
	keep(c, type, topic, p, buf, len);
}

/* After events were lost: a gap marker, past the bound (it is small), so
 * the agent asks for a full resync. */
static void declare_gap(struct de_collector *c)
{
	if (!c->losing)
		return;
	size_t len;
	uint64_t seq = c->src.sequence + 1;
	uint8_t *buf = de_event_pack_gap(&c->src, seq, DE_TOPIC_LIFECYCLE,
	                                 c->cycle_ms, &len);
	if (!buf || de_outbox_add(&c->outbox, seq, DE_TOPIC_LIFECYCLE, buf,
	                          len, true) != 0)
		return; /* still losing: the next event tries again */
	c->src.sequence = seq;
	c->losing = false;
	c->stats.gaps_declared++;
	if (c->ops.made)
		c->ops.made(c->host, c->src.sequence, DE_UPDATE,
		            DE_TOPIC_LIFECYCLE, NULL, buf, len);
}

static int out_publish(void *arg, const char *topic, const uint8_t *data,
                       size_t len)
{
	struct de_collector *c = arg;
	return c->ops.publish(c->host, topic, data, len);
}

/* The event the bus will never take (a limit): a gap marker takes its
 * place, under its sequence, so the agent learns of the loss and asks for
 * a full resync (passing it over would reorder, and a re-send request for
 * it would never end). */
static void replace_by_gap(struct de_collector *c)
{
	struct de_outbox_entry *e =
	        &c->outbox.v[(c->outbox.head + c->outbox.sent) % c->outbox.cap];
	size_t len;
	uint8_t *buf = de_event_pack_gap(&c->src, e->seq, DE_TOPIC_LIFECYCLE,
	                                 c->ops.wall_ms(c->host), &len);
	c->stats.events_failed++;
	if (!buf)
		return; /* out of memory: tried again at the next pump */
	c->outbox.bytes += len - e->len;
	free(e->data);
	e->data = buf;
	e->len = (uint32_t)len;
	e->topic = DE_TOPIC_LIFECYCLE;
	c->stats.gaps_declared++;
	if (c->ops.made)
		c->ops.made(c->host, e->seq, DE_UPDATE, DE_TOPIC_LIFECYCLE, NULL,
		            buf, len);
}

void de_collector_set_sim(struct de_collector *c, struct bus_sim_hooks *h)
{
	c->sim = c->diff.sim = c->access.sim = h;
}

static int send_capabilities(struct de_collector *c);
static void shutdown_answer(struct de_collector *c);

bool de_collector_pump(struct de_collector *c)
{
	/* the capabilities go first: no event of a connection before them */
	if (c->caps_due && send_capabilities(c))
		return false;
	for (int tries = 0;; tries++) {
		int rc = de_outbox_pump(&c->outbox, out_publish, c);
		if (rc == 0 && c->shutdown_id) {
			shutdown_answer(c); /* all it held is on its way */
			return false;
		}
		if (rc == 0)
			return c->cycle_waiting;
		if (rc == BUS_EAGAIN &&
		    BUS_PLANTED(c->sim, BUS_PLANT_DROP_ON_EAGAIN) &&
		    BUS_PLANT_HIT(c->sim)) {
			/* planted: what the bus refused is forgotten (with all
			 * before it), as procmond did before the outbox */
			const struct de_outbox_entry *e = &c->outbox.v[
				(c->outbox.head + c->outbox.sent) % c->outbox.cap];
			c->outbox.sent++;
			de_outbox_ack(&c->outbox, e->seq);
			continue;
		}
		/* EAGAIN: on_drain; ECLOSED: the reconnect; ENOMEM: the next
		 * pump (a cycle's, a heartbeat's) */
		if (rc == BUS_EAGAIN || rc == BUS_ECLOSED || rc == BUS_ENOMEM ||
		    tries > 0)
			return false;
		replace_by_gap(c);
	}
}

bool de_collector_on_ready(struct de_collector *c)
{
	if (BUS_PLANTED(c->sim, BUS_PLANT_NO_RESEND) && c->outbox.sent &&
	    BUS_PLANT_HIT(c->sim)) {
		/* planted: what was sent is taken as delivered */
		const struct de_outbox_entry *e = &c->outbox.v[
			(c->outbox.head + c->outbox.sent - 1) % c->outbox.cap];
		de_outbox_ack(&c->outbox, e->seq);
	}
	c->stats.resends += c->outbox.sent;
	c->outbox.sent = 0; /* all the agent has not acknowledged, again */
	c->caps_due = true; /* a new connection: said again, first */
	return de_collector_pump(c);
}

bool de_collector_cycle_due(struct de_collector *c)
{
	de_collector_pump(c); /* what an out-of-memory left behind */
	if (c->shutdown_id)
		return false; /* shutting down: no more cycles */
	if (de_outbox_unsent(&c->outbox)) {
		if (!c->cycle_waiting)
			c->stats.cycles_delayed++;
		c->cycle_waiting = true;
		return false;
	}
	c->cycle_waiting = false;
	return true;
}

void de_collector_cycle(struct de_collector *c, struct de_snapshot *s)
{
	uint64_t t0 = c->ops.now(c->host);
	c->cycle_waiting = false;
	c->cycle_ms = c->ops.wall_ms(c->host);
	c->stats.processes = s->n;
	de_procdiff_cycle(&c->diff, s, emit, c);
	declare_gap(c);
	c->stats.cycles++;
	c->stats.last_cycle_ns = c->ops.now(c->host) - t0;
	de_collector_pump(c);
}

/* ---- configuration ---------------------------------------------------------- */
size_t de_collector_validate(const Daemoneye__CollectorConfig *cfg,
                             struct de_config_error *errs)
{
	size_t n = 0;
#define ERR(f, ...)                                                           \
	do {                                                                  \
		if (n < DE_CONFIG_ERRORS_MAX) {                               \
			snprintf(errs[n].field, sizeof(errs[n].field), "%s", f); \
			snprintf(errs[n].message, sizeof(errs[n].message),    \
			         __VA_ARGS__);                                \
			n++;                                                  \
		}                                                             \
	} while (0)
	if (!cfg) {
		ERR("config", "missing");
		return n;
	}
	if (cfg->collector_type && cfg->collector_type[0] &&
	    strcmp(cfg->collector_type, "process"))
		ERR("collector_type", "this collector is \"process\", not \"%.40s\"",
		    cfg->collector_type);
	if (cfg->scan_interval_ms < 10 || cfg->scan_interval_ms > 3600000)
		ERR("scan_interval_ms", "must be 10 to 3600000, not %u",
		    cfg->scan_interval_ms);
	if (cfg->max_processes > 4194304)
		ERR("max_processes", "must be at most 4194304 (0: no limit)");
	for (size_t i = 0; i < cfg->n_settings; i++)
		ERR("settings", "unknown setting \"%.40s\"", cfg->settings[i]->key);
#undef ERR
	return n;
}

static void fill_config(const struct de_collector *c,
                        Daemoneye__CollectorConfig *cfg)
{
	daemoneye__collector_config__init(cfg);
	cfg->collector_type = "process";
	cfg->scan_interval_ms = c->scan_interval_ms;
	cfg->compute_hashes = c->compute_hashes;
	cfg->max_processes = c->max_processes;
}

static int answer_validation(struct de_answer *a, bool update,
                             const struct de_config_error *errs, size_t n,
                             bool ok)
{
	Daemoneye__ConfigValidationError ve[DE_CONFIG_ERRORS_MAX];
	Daemoneye__ConfigValidationError *vp[DE_CONFIG_ERRORS_MAX];
	for (size_t i = 0; i < n; i++) {
		daemoneye__config_validation_error__init(&ve[i]);
		ve[i].field = (char *)errs[i].field;
		ve[i].message = (char *)errs[i].message;
		vp[i] = &ve[i];
	}
	if (update) {
		Daemoneye__UpdateConfigResponse r =
			DAEMONEYE__UPDATE_CONFIG_RESPONSE__INIT;
		r.success = ok;
		r.error_message = ok ? "" : "invalid configuration";
		r.n_validation_errors = n;
		r.validation_errors = vp;
		return de_answer_msg(a, &r.base);
	}
	Daemoneye__ValidateConfigResponse r =
		DAEMONEYE__VALIDATE_CONFIG_RESPONSE__INIT;
	r.valid = ok;
	r.n_validation_errors = n;
	r.validation_errors = vp;
	return de_answer_msg(a, &r.base);
}

static int wrong_id(struct de_collector *c, const char *id,
                    struct de_answer *a)
{
	if (!id || !id[0] || !strcmp(id, c->id))
		return 0;
	return de_answer_error(a, BUS_RPC_ERR_NOT_FOUND,
	                       "this is collector %s, not %.64s", c->id, id);
}

static int h_config_get(void *ctx, const char *sender,
                        const ProtobufCMessage *req, struct de_answer *a)
{
	(void)sender;
	struct de_collector *c = ctx;
	const Daemoneye__GetConfigRequest *q = (const void *)req;
	if (wrong_id(c, q->collector_id, a))
		return a->code;
	Daemoneye__CollectorConfig cfg;
	fill_config(c, &cfg);
	Daemoneye__GetConfigResponse r = DAEMONEYE__GET_CONFIG_RESPONSE__INIT;
	r.config = &cfg;
	return de_answer_msg(a, &r.base);
}

static int h_config_validate(void *ctx, const char *sender,
                             const ProtobufCMessage *req, struct de_answer *a)
{
	(void)sender;
	struct de_collector *c = ctx;
	const Daemoneye__ValidateConfigRequest *q = (const void *)req;
	if (wrong_id(c, q->collector_id, a))
		return a->code;
	struct de_config_error errs[DE_CONFIG_ERRORS_MAX];
	size_t n = de_collector_validate(q->config, errs);
	return answer_validation(a, false, errs, n, n == 0);
}

static int h_config_update(void *ctx, const char *sender,
                           const ProtobufCMessage *req, struct de_answer *a)
{
	(void)sender;
	struct de_collector *c = ctx;
	const Daemoneye__UpdateConfigRequest *q = (const void *)req;
	if (wrong_id(c, q->collector_id, a))
		return a->code;
	struct de_config_error errs[DE_CONFIG_ERRORS_MAX];
	size_t n = de_collector_validate(q->new_config, errs);
	if (n == 0 && !q->validate_only) {
		const Daemoneye__CollectorConfig *nc = q->new_config;
		bool changed = nc->scan_interval_ms != c->scan_interval_ms;
		c->scan_interval_ms = nc->scan_interval_ms;
		c->compute_hashes = nc->compute_hashes;
		c->max_processes = nc->max_processes;
		if (changed && c->ops.interval_changed)
			c->ops.interval_changed(c->host, c->scan_interval_ms);
		c->caps_due = true; /* before the reply: the agent has them */
		de_collector_pump(c);
	}
	return answer_validation(a, true, errs, n, n == 0);
}

static double uptime_s(const struct de_collector *c)
{
	return (double)(c->ops.now(c->host) - c->started_ns) / 1e9;
}

/* The metrics both health.check and health.metrics report: the
 * collector's figures, then its client's RPC metrics (at most
 * RPC_REPORTED of them: a report stays well under a frame). */
#define METRICS_N 16
#define RPC_REPORTED 512
struct mlist {
	size_t n, cap;
	char (*name)[112];
	double *v;
};

static bool ml_add(void *arg, const char *name, double v)
{
	struct mlist *m = arg;
	if (m->n == m->cap)
		return false;
	snprintf(m->name[m->n], sizeof(m->name[0]), "%s", name);
	m->v[m->n++] = v;
	return true;
}

static void ml_free(struct mlist *m)
{
	free(m->name);
	free(m->v);
}

/* 0, or BUS_ENOMEM. */
static int metrics(const struct de_collector *c, struct mlist *m)
{
	static const char *const keys[METRICS_N] = {
		"cycles", "events", "events_failed", "processes",
		"last_cycle_ms", "scan_interval_ms", "uptime_s",
		"cycles_delayed", "events_lost", "gaps_declared", "resends",
		"resyncs_full", "resyncs_replayed", "retained",
		"retained_bytes", "retained_forgotten"};
	const struct de_collector_stats *st = &c->stats;
	double vals[METRICS_N] = {
		(double)st->cycles, (double)st->events,
		(double)st->events_failed, (double)st->processes,
		(double)st->last_cycle_ns / 1e6, (double)c->scan_interval_ms,
		uptime_s(c), (double)st->cycles_delayed,
		(double)st->events_lost, (double)st->gaps_declared,
		(double)st->resends, (double)st->resyncs_full,
		(double)st->resyncs_replayed, (double)c->outbox.n,
		(double)c->outbox.bytes, (double)c->outbox.forgotten};
	const struct bus_rpc_metrics *rpc =
	    c->ops.rpc_metrics ? c->ops.rpc_metrics(c->host) : NULL;
	m->n = 0;
	m->cap = METRICS_N + (rpc ? RPC_REPORTED : 0);
	m->name = malloc(sizeof(*m->name) * m->cap);
	m->v = malloc(sizeof(*m->v) * m->cap);
	if (!m->name || !m->v) {
		ml_free(m);
		return BUS_ENOMEM;
	}
	for (size_t i = 0; i < METRICS_N; i++)
		ml_add(m, keys[i], vals[i]);
	if (rpc)
		bus_rpc_metrics_each(rpc, ml_add, m);
	return 0;
}

static int h_health_check(void *ctx, const char *sender,
                          const ProtobufCMessage *req, struct de_answer *a)
{
	(void)sender;
	struct de_collector *c = ctx;
	const Daemoneye__HealthCheckRequest *q = (const void *)req;
	if (wrong_id(c, q->collector_id, a))
		return a->code;
	Daemoneye__HealthCheckResponse r = DAEMONEYE__HEALTH_CHECK_RESPONSE__INIT;
	bool degraded = c->stats.events_failed + c->stats.events_lost > 0;
	r.status = degraded
	                   ? DAEMONEYE__HEALTH_CHECK_RESPONSE__HEALTH_STATUS__DEGRADED
	                   : DAEMONEYE__HEALTH_CHECK_RESPONSE__HEALTH_STATUS__HEALTHY;
	r.message = degraded ? "some events could not be kept (gaps declared)"
	                     : "ok";
	r.uptime_seconds = (int64_t)uptime_s(c);
	if (!q->include_metrics)
		return de_answer_msg(a, &r.base);
	struct mlist m;
	if (metrics(c, &m))
		return de_answer_error(a, BUS_RPC_ERR_INTERNAL, "out of memory");
	Daemoneye__HealthCheckResponse__MetricsEntry *e =
	    malloc(sizeof(*e) * m.n);
	Daemoneye__HealthCheckResponse__MetricsEntry **ep =
	    malloc(sizeof(*ep) * m.n);
	int rc;
	if (!e || !ep) {
		rc = de_answer_error(a, BUS_RPC_ERR_INTERNAL, "out of memory");
	} else {
		for (size_t i = 0; i < m.n; i++) {
			daemoneye__health_check_response__metrics_entry__init(
			    &e[i]);
			e[i].key = m.name[i];
			e[i].value = m.v[i];
			ep[i] = &e[i];
		}
		r.n_metrics = m.n;
		r.metrics = ep;
		rc = de_answer_msg(a, &r.base);
	}
	free(e);
	free(ep);
	ml_free(&m);
	return rc;
}

static int h_heartbeat(void *ctx, const char *sender,
                       const ProtobufCMessage *req, struct de_answer *a)
{
	(void)sender;
	struct de_collector *c = ctx;
	const Daemoneye__HeartbeatRequest *q = (const void *)req;
	if (q->acked_incarnation == c->incarnation && q->acked_sequence) {
		de_outbox_ack(&c->outbox, q->acked_sequence);
		c->acked = q->acked_sequence;
	}
	Daemoneye__HeartbeatResponse r = DAEMONEYE__HEARTBEAT_RESPONSE__INIT;
	r.collector_id = c->id;
	r.sequence = q->sequence;
	r.incarnation = c->incarnation;
	r.timestamp_ms = c->ops.wall_ms(c->host);
	if (q->capabilities_wanted)
		c->caps_due = true; /* the agent lacks them: before the reply */
	de_collector_pump(c); /* before the reply: last_sequence counts it */
	r.last_sequence = de_outbox_last_sent(&c->outbox, c->src.sequence);
	r.retained = c->outbox.n;
	return de_answer_msg(a, &r.base);
}

static int h_metrics(void *ctx, const char *sender,
                     const ProtobufCMessage *req, struct de_answer *a)
{
	(void)sender;
	struct de_collector *c = ctx;
	const Daemoneye__MetricsRequest *q = (const void *)req;
	if (wrong_id(c, q->collector_id, a))
		return a->code;
	struct mlist m;
	if (metrics(c, &m))
		return de_answer_error(a, BUS_RPC_ERR_INTERNAL, "out of memory");
	Daemoneye__MetricsResponse__MetricsEntry *e = malloc(sizeof(*e) * m.n);
	Daemoneye__MetricsResponse__MetricsEntry **ep =
	    malloc(sizeof(*ep) * m.n);
	int rc;
	if (!e || !ep) {
		rc = de_answer_error(a, BUS_RPC_ERR_INTERNAL, "out of memory");
	} else {
		for (size_t i = 0; i < m.n; i++) {
			daemoneye__metrics_response__metrics_entry__init(&e[i]);
			e[i].key = m.name[i];
			e[i].value = m.v[i];
			ep[i] = &e[i];
		}
		Daemoneye__MetricsResponse r = DAEMONEYE__METRICS_RESPONSE__INIT;
		r.n_metrics = m.n;
		r.metrics = ep;
		r.collected_at_ms = c->ops.wall_ms(c->host);
		rc = de_answer_msg(a, &r.base);
	}
	free(e);
	free(ep);
	ml_free(&m);
	return rc;
}

static void fill_status(const struct de_collector *c,
                        Daemoneye__CollectorStatus *st)
{
	daemoneye__collector_status__init(st);
	st->collector_id = (char *)c->id;
	st->state = c->stopping ? DAEMONEYE__COLLECTOR_STATUS__STATE__STOPPING
	                        : DAEMONEYE__COLLECTOR_STATUS__STATE__RUNNING;
	st->incarnation = c->incarnation;
	st->started_at_ms = (int64_t)(c->incarnation / 1000000u);
	st->last_error = "";
}

static int h_status(void *ctx, const char *sender, const ProtobufCMessage *req,
                    struct de_answer *a)
{
	(void)sender;
	struct de_collector *c = ctx;
	const Daemoneye__CollectorStatusRequest *q = (const void *)req;
	if (wrong_id(c, q->collector_id, a))
		return a->code;
	Daemoneye__CollectorStatus st, *sp = &st;
	fill_status(c, &st);
	Daemoneye__CollectorStatusResponse r =
		DAEMONEYE__COLLECTOR_STATUS_RESPONSE__INIT;
	r.n_collectors = 1;
	r.collectors = &sp;
	return de_answer_msg(a, &r.base);
}

static int h_stop(void *ctx, const char *sender, const ProtobufCMessage *req,
                  struct de_answer *a)
{
	(void)sender;
	struct de_collector *c = ctx;
	const Daemoneye__StopCollectorRequest *q = (const void *)req;
	if (wrong_id(c, q->collector_id, a))
		return a->code;
	c->stopping = true;
	Daemoneye__StopCollectorResponse r = DAEMONEYE__STOP_COLLECTOR_RESPONSE__INIT;
	r.success = true;
	r.error_message = "";
	return de_answer_msg(a, &r.base);
}

/* collector.resync: a re-send from from_sequence when it is still kept,
 * else a DISCOVERY of every live process, marked with the request's id. */
static int h_resync(void *ctx, const char *sender, const ProtobufCMessage *req,
                    struct de_answer *a)
{
	(void)sender;
	struct de_collector *c = ctx;
	const Daemoneye__ResyncRequest *q = (const void *)req;
	if (wrong_id(c, q->collector_id, a))
		return a->code;
	Daemoneye__ResyncResponse r = DAEMONEYE__RESYNC_RESPONSE__INIT;
	r.incarnation = c->incarnation;
	if (!q->full && q->incarnation == c->incarnation &&
	    q->from_sequence >= 1 &&
	    de_outbox_rewind(&c->outbox, q->from_sequence)) {
		r.replayed = true;
		r.first_sequence = q->from_sequence;
		r.last_sequence = c->src.sequence;
		c->stats.resyncs_replayed++;
	} else {
		c->src.resync = q->resync_id ? q->resync_id : 1;
		c->cycle_ms = c->ops.wall_ms(c->host);
		r.first_sequence = c->src.sequence + 1;
		const struct de_snapshot *t = &c->diff.prev;
		for (size_t i = 0; i < t->n; i++)
			emit(c, DE_DISCOVERY, DE_TOPIC_ENUMERATION, &t->v[i]);
		declare_gap(c);
		c->src.resync = 0;
		r.last_sequence = c->src.sequence;
		r.processes = (uint32_t)t->n;
		c->stats.resyncs_full++;
	}
	de_collector_pump(c); /* the events go before the reply */
	return de_answer_msg(a, &r.base);
}

static const struct de_handler collector_handlers[] = {
	{"collector.resync", h_resync},
	{"lifecycle.stop", h_stop},
	{"lifecycle.status", h_status},
	{"health.check", h_health_check},
	{"health.heartbeat", h_heartbeat},
	{"health.metrics", h_metrics},
	{"config.get", h_config_get},
	{"config.validate", h_config_validate},
	{"config.update", h_config_update},
};

/* ---- control topics ------------------------------------------------------- */
#define N_HANDLERS (sizeof(collector_handlers) / sizeof(collector_handlers[0]))

int de_collector_capabilities_pack(const struct de_collector *c,
                                   uint8_t **out, size_t *len)
{
	static char *topics[] = {DE_TOPIC_ENUMERATION, DE_TOPIC_LIFECYCLE,
	                         DE_TOPIC_METADATA, DE_TOPIC_HASH};
	char *methods[N_HANDLERS];
	for (size_t i = 0; i < N_HANDLERS; i++)
		methods[i] = (char *)collector_handlers[i].method;
	Daemoneye__CollectorCapabilities m =
		DAEMONEYE__COLLECTOR_CAPABILITIES__INIT;
	m.collector_id = (char *)c->id;
	m.collector_type = "process";
	m.version = BUS_VERSION;
	m.incarnation = c->incarnation;
	m.n_event_topics = sizeof(topics) / sizeof(topics[0]);
	m.event_topics = topics;
	m.n_rpc_methods = N_HANDLERS;
	m.rpc_methods = methods;
	m.max_processes = c->max_processes;
	m.compute_hashes = c->compute_hashes;
	m.scan_interval_ms = c->scan_interval_ms;
	m.bus_name = (char *)c->bus_name;
	*out = bus_pb_pack(&m.base, len);
	return *out ? 0 : BUS_ENOMEM;
}

/* 0: sent (or nothing to send it with); else why not now. */
static int send_capabilities(struct de_collector *c)
{
	if (!c->ops.control) {
		c->caps_due = false;
		return 0;
	}
	uint8_t *p;
	size_t n;
	int rc = de_collector_capabilities_pack(c, &p, &n);
	if (rc == 0)
		rc = c->ops.control(c->host, DE_TOPIC_CAPABILITIES, p, n);
	free(p);
	if (rc == 0) {
		c->caps_due = false;
		c->caps_sent++;
	}
	return rc;
}

int de_collector_shutdown(struct de_collector *c, const char *sender,
                          const uint8_t *data, size_t len)
{
	if (!sender || strcmp(sender, c->agent))
		return BUS_EACCESS;
	Daemoneye__AgentShutdown *m = (void *)bus_pb_unpack(
		&daemoneye__agent_shutdown__descriptor, data, len, 64u << 10);
	if (!m)
		return BUS_EPROTO;
	if (!c->shutdown_id) {
		c->shutdown_id = m->shutdown_id ? m->shutdown_id : 1;
		c->stopping = true;
	}
	bus_pb_free(&m->base);
	de_collector_pump(c);
	return 0;
}

/* Everything held was handed to the bus: the answer, then the stop. */
static void shutdown_answer(struct de_collector *c)
{
	if (c->shutdown_answered)
		return;
	Daemoneye__CollectorShutdown m = DAEMONEYE__COLLECTOR_SHUTDOWN__INIT;
	m.collector_id = c->id;
	m.shutdown_id = c->shutdown_id;
	m.incarnation = c->incarnation;
	m.last_sequence = c->src.sequence;
	m.acked_sequence = c->acked;
	m.retained = c->outbox.n;
	size_t n;
	uint8_t *p = bus_pb_pack(&m.base, &n);
	int rc = !p ? BUS_ENOMEM
	         : c->ops.control
	             ? c->ops.control(c->host, DE_TOPIC_COLLECTOR_SHUTDOWN, p, n)
	             : 0;
	free(p);
	if (rc)
		return; /* not now: the next pump */
	c->shutdown_answered = true;
	if (c->ops.stop)
		c->ops.stop(c->host);
}

int de_collector_call(struct de_collector *c, const char *method,
                      const char *sender, const ProtobufCMessage *req,
                      struct de_answer *a)
{
	const struct de_method *m = de_method_find(method);
	if (m && !de_access_allows(&c->access, m->service, sender))
		return de_answer_error(a, BUS_RPC_ERR_ACCESS,
		                       "access denied: %s may not call %s",
		                       sender ? sender : "?", method);
	for (size_t i = 0;
	     i < sizeof(collector_handlers) / sizeof(collector_handlers[0]); i++)
		if (!strcmp(collector_handlers[i].method, method))
			return collector_handlers[i].fn(c, sender, req, a);
	return de_answer_error(a, BUS_RPC_ERR_METHOD_NOT_FOUND,
	                       "method not served here: %s", method);
}

void de_collector_serve(struct de_collector *c, struct bus_client *bc,
                        const struct bus_rpc_request *q,
                        struct de_served *out)
{
	bool was_stopping = c->stopping;
	de_serve(bc, q, collector_handlers,
	         sizeof(collector_handlers) / sizeof(collector_handlers[0]), c,
	         &c->access, out);
	if (out->answered) {
		c->stats.requests++;
		if (out->code)
			c->stats.request_errors++;
		if (out->denied)
			c->stats.requests_denied++;
	}
	/* the reply is buffered: the host stops after writing it */
	if (c->stopping && !was_stopping && c->ops.stop)
		c->ops.stop(c->host);
}
