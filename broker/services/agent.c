/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agent.c — daemoneye-agent on the bus (daemoneye.h, de_agent): its calls
 * to the collectors it supervises and what it answers about them, shared
 * by the agent's libuv host and the simulator, which only spawn, signal,
 * audit, log or trace.
 */
#include "bus/daemoneye.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void de_agent_init(struct de_agent *ag, struct de_sup *sup,
                   struct de_intake *in, struct bus_client *bc,
                   const char *name, const struct de_agent_ops *ops,
                   void *host)
{
	memset(ag, 0, sizeof(*ag));
	ag->sup = sup;
	ag->intake = in;
	ag->bc = bc;
	ag->name = name;
	ag->ops = *ops;
	ag->host = host;
}

static void changed(struct de_agent *ag)
{
	if (!ag->closed && ag->ops.changed)
		ag->ops.changed(ag->host);
}

void de_agent_spawned(struct de_agent *ag, size_t idx)
{
	ag->started_ms[idx] = ag->ops.wall_ms(ag->host);
	ag->incarnation[idx] = 0;
	bus_pb_free(ag->down[idx] ? &ag->down[idx]->base : NULL);
	ag->down[idx] = NULL;
}

void de_agent_free(struct de_agent *ag)
{
	for (size_t i = 0; i < DE_COLLECTORS_MAX; i++) {
		bus_pb_free(ag->caps[i] ? &ag->caps[i]->base : NULL);
		bus_pb_free(ag->down[i] ? &ag->down[i]->base : NULL);
		ag->caps[i] = NULL;
		ag->down[i] = NULL;
	}
}

int de_agent_control(struct de_agent *ag, const char *sender,
                     const char *topic, const uint8_t *data, size_t len,
                     size_t *idx)
{
	bool caps = !strcmp(topic, DE_TOPIC_CAPABILITIES);
	if (!caps && strcmp(topic, DE_TOPIC_COLLECTOR_SHUTDOWN))
		return BUS_ENOTSUP;
	size_t i = 0;
	while (i < ag->sup->n && strcmp(ag->sup->c[i].bus_name, sender))
		i++;
	if (i == ag->sup->n)
		return BUS_EACCESS; /* not one of ours */
	ProtobufCMessage *m = bus_pb_unpack(
		caps ? &daemoneye__collector_capabilities__descriptor
		     : &daemoneye__collector_shutdown__descriptor,
		data, len, 64u << 10);
	if (!m)
		return BUS_EPROTO;
	const char *id = caps
		? ((Daemoneye__CollectorCapabilities *)m)->collector_id
		: ((Daemoneye__CollectorShutdown *)m)->collector_id;
	if (strcmp(id, ag->sup->c[i].id)) {
		bus_pb_free(m);
		return BUS_EACCESS; /* speaking for another collector */
	}
	ProtobufCMessage **slot = caps ? (ProtobufCMessage **)&ag->caps[i]
	                               : (ProtobufCMessage **)&ag->down[i];
	bus_pb_free(*slot);
	*slot = m;
	*idx = i;
	changed(ag);
	return 0;
}

int de_agent_shutdown(struct de_agent *ag, uint64_t shutdown_id,
                      const char *reason, uint64_t now)
{
	Daemoneye__AgentShutdown m = DAEMONEYE__AGENT_SHUTDOWN__INIT;
	m.agent = (char *)ag->name;
	m.shutdown_id = shutdown_id;
	m.reason = (char *)reason;
	m.timeout_ms = (uint32_t)(ag->sup->policies.stop_timeout_ns / 1000000u);
	size_t n;
	uint8_t *p = ag->bc ? bus_pb_pack(&m.base, &n) : NULL;
	int rc = !ag->bc ? BUS_ECLOSED
	         : !p    ? BUS_ENOMEM
	                 : bus_client_publish(ag->bc, DE_TOPIC_AGENT_SHUTDOWN, p,
	                                      n, BUS_QOS_PROCESSED, NULL, NULL);
	free(p);
	for (size_t i = 0; i < ag->sup->n; i++)
		if (rc == 0)
			de_sup_shutdown(ag->sup, i, now);
		else
			de_sup_stop(ag->sup, i, false, now);
	return rc;
}

/* A call in flight: which collector, which of its sequence. */
struct call {
	struct de_agent *ag;
	size_t idx;
	uint64_t seq;
};

static int call_code(int status, const struct bus_rpc_result *r)
{
	return r && r->code ? r->code : status;
}

static void heartbeat_done(struct bus_client *c, int status,
                           const struct bus_rpc_result *r, void *arg)
{
	(void)c;
	struct call *k = arg;
	struct de_agent *ag = k->ag;
	bool ok = false;
	char detail[96] = "";
	uint64_t inc = 0, last = 0;
	if (status == 0) {
		Daemoneye__HeartbeatResponse *resp =
			(void *)de_reply_unpack("health.heartbeat", r);
		ok = resp && resp->sequence == k->seq;
		if (ok) {
			inc = resp->incarnation;
			last = resp->last_sequence;
		} else {
			snprintf(detail, sizeof(detail), "bad reply");
		}
		bus_pb_free(resp ? &resp->base : NULL);
	} else {
		snprintf(detail, sizeof(detail), "%s", bus_strerror(status));
	}
	ag->ops.exchanged(ag->host, k->idx, "health.heartbeat", k->seq, ok, -1,
	                  ok ? 0 : call_code(status, r), detail);
	if (!ag->closed) {
		if (ok) { /* a tail of events lost in flight shows here */
			ag->incarnation[k->idx] = inc;
			de_intake_heartbeat(ag->intake, ag->sup->c[k->idx].bus_name,
			                    inc, last, ag->ops.now(ag->host));
		}
		de_sup_on_heartbeat(ag->sup, k->idx, k->seq, ok,
		                    ag->ops.now(ag->host));
	}
	free(k);
	changed(ag);
}

void de_agent_heartbeat(struct de_agent *ag, size_t idx, uint64_t seq)
{
	struct call *k = malloc(sizeof(*k));
	if (!k)
		return; /* counts as unanswered: the next tick asks again */
	*k = (struct call){ag, idx, seq};
	Daemoneye__HeartbeatRequest q; /* with what the agent processed */
	de_heartbeat_request(ag->intake, ag->sup->c[idx].bus_name, seq,
	                     ag->ops.wall_ms(ag->host), &q);
	q.sender = (char *)ag->name;
	const Daemoneye__CollectorCapabilities *cp = ag->caps[idx];
	q.capabilities_wanted = !cp || (ag->incarnation[idx] &&
	                                cp->incarnation != ag->incarnation[idx]);
	const char *to = ag->sup->c[idx].bus_name;
	int rc = !ag->bc ? BUS_ECLOSED
	                 : de_call(ag->bc, to, "health.heartbeat", &q.base,
	                           &ag->sup->policies, heartbeat_done, k);
	if (rc) {
		free(k);
		ag->ops.exchanged(ag->host, idx, "health.heartbeat", seq, false,
		                  -1, rc, bus_strerror(rc));
		de_sup_on_heartbeat(ag->sup, idx, seq, false,
		                    ag->ops.now(ag->host));
	}
}

/* health.check: the answer's status goes to supervision (a collector that
 * answers is alive; heartbeats decide death). */
static void health_done(struct bus_client *c, int status,
                        const struct bus_rpc_result *r, void *arg)
{
	(void)c;
	struct call *k = arg;
	struct de_agent *ag = k->ag;
	int health = -1;
	char detail[160] = "";
	if (status == 0) {
		Daemoneye__HealthCheckResponse *resp =
			(void *)de_reply_unpack("health.check", r);
		if (resp) {
			health = resp->status;
			snprintf(detail, sizeof(detail), "status %d: %s", resp->status,
			         resp->message ? resp->message : "");
		} else {
			snprintf(detail, sizeof(detail), "bad reply");
		}
		bus_pb_free(resp ? &resp->base : NULL);
	} else {
		snprintf(detail, sizeof(detail), "%s", bus_strerror(status));
	}
	ag->ops.exchanged(ag->host, k->idx, "health.check", k->seq, health >= 0,
	                  health, health >= 0 ? 0 : call_code(status, r),
	                  detail);
	if (!ag->closed)
		de_sup_on_health_check(ag->sup, k->idx, k->seq, health,
		                       ag->ops.now(ag->host));
	free(k);
	changed(ag);
}

void de_agent_health_check(struct de_agent *ag, size_t idx, uint64_t seq)
{
	struct call *k = malloc(sizeof(*k));
	if (!k) { /* unanswered; the next is due after the interval */
		de_sup_on_health_check(ag->sup, idx, seq, -1,
		                       ag->ops.now(ag->host));
		return;
	}
	*k = (struct call){ag, idx, seq};
	Daemoneye__HealthCheckRequest q = DAEMONEYE__HEALTH_CHECK_REQUEST__INIT;
	q.collector_id = ag->sup->c[idx].id;
	q.include_metrics = true;
	const char *to = ag->sup->c[idx].bus_name;
	int rc = !ag->bc ? BUS_ECLOSED
	                 : de_call(ag->bc, to, "health.check", &q.base,
	                           &ag->sup->policies, health_done, k);
	if (rc) {
		free(k);
		ag->ops.exchanged(ag->host, idx, "health.check", seq, false, -1,
		                  rc, bus_strerror(rc));
		de_sup_on_health_check(ag->sup, idx, seq, -1,
		                       ag->ops.now(ag->host));
	}
}

/* ---- lifecycle.* ----------------------------------------------------------- */
void de_agent_status(const struct de_agent *ag, size_t i,
                     Daemoneye__CollectorStatus *st)
{
	static const Daemoneye__CollectorStatus__State map[] = {
		[DE_SUP_STOPPED] = DAEMONEYE__COLLECTOR_STATUS__STATE__STOPPED,
		[DE_SUP_STARTING] = DAEMONEYE__COLLECTOR_STATUS__STATE__STARTING,
		[DE_SUP_RUNNING] = DAEMONEYE__COLLECTOR_STATUS__STATE__RUNNING,
		[DE_SUP_STOPPING] = DAEMONEYE__COLLECTOR_STATUS__STATE__STOPPING,
		[DE_SUP_FAILED] = DAEMONEYE__COLLECTOR_STATUS__STATE__FAILED,
	};
	const struct de_sup_collector *c = &ag->sup->c[i];
	daemoneye__collector_status__init(st);
	st->collector_id = (char *)c->id;
	st->state = map[c->state];
	st->pid = c->pid;
	st->started_at_ms = c->pid ? ag->started_ms[i] : 0;
	st->restarts = c->restarts;
	st->incarnation = ag->incarnation[i];
	st->last_error = (char *)c->last_error;
	st->capabilities = ag->caps[i];
	st->shutdown = ag->down[i];
	const struct de_stream *s = de_intake_find(ag->intake, c->bus_name);
	if (s) { /* the agent's view of its stream */
		st->events = s->st.events;
		st->duplicates = s->st.duplicates;
		st->gaps = s->st.gaps;
		st->missing = s->st.missing;
		st->resyncs = s->st.resyncs;
		st->last_sequence = s->next_seq - 1;
		st->processes = (uint32_t)s->view.n;
	}
}

static int find(struct de_agent *ag, const char *id, struct de_answer *ans)
{
	int i = de_sup_find(ag->sup, id);
	if (i < 0)
		de_answer_error(ans, BUS_RPC_ERR_NOT_FOUND,
		                "no collector %.64s in this agent's configuration",
		                id ? id : "");
	return i;
}

static int h_start(void *ctx, const char *sender, const ProtobufCMessage *req,
                   struct de_answer *ans)
{
	(void)sender;
	struct de_agent *ag = ctx;
	const Daemoneye__StartCollectorRequest *q = (const void *)req;
	int i = find(ag, q->collector_id, ans);
	if (i < 0)
		return ans->code;
	const struct de_sup_collector *c = &ag->sup->c[i];
	if (q->collector_type && q->collector_type[0] &&
	    strcmp(q->collector_type, c->type))
		return de_answer_error(ans, BUS_RPC_ERR_INVALID_PARAMS,
		                       "collector %s is of type %s", c->id,
		                       c->type);
	if (q->config) {
		struct de_config_error errs[DE_CONFIG_ERRORS_MAX];
		if (de_collector_validate(q->config, errs))
			return de_answer_error(ans, BUS_RPC_ERR_INVALID_PARAMS,
			                       "config.%s: %s", errs[0].field,
			                       errs[0].message);
		if (ag->ops.configure)
			ag->ops.configure(ag->host, (size_t)i, q->config);
	}
	de_sup_start(ag->sup, (size_t)i, ag->ops.now(ag->host));
	changed(ag);
	Daemoneye__CollectorStatus st;
	de_agent_status(ag, (size_t)i, &st);
	Daemoneye__StartCollectorResponse r =
		DAEMONEYE__START_COLLECTOR_RESPONSE__INIT;
	r.success = c->state != DE_SUP_FAILED;
	r.collector_id = (char *)c->id;
	r.error_message = r.success ? "" : (char *)c->last_error;
	r.status = &st;
	return de_answer_msg(ans, &r.base);
}

static int h_stop(void *ctx, const char *sender, const ProtobufCMessage *req,
                  struct de_answer *ans)
{
	(void)sender;
	struct de_agent *ag = ctx;
	const Daemoneye__StopCollectorRequest *q = (const void *)req;
	int i = find(ag, q->collector_id, ans);
	if (i < 0)
		return ans->code;
	de_sup_stop(ag->sup, (size_t)i, q->force, ag->ops.now(ag->host));
	changed(ag);
	Daemoneye__StopCollectorResponse r =
		DAEMONEYE__STOP_COLLECTOR_RESPONSE__INIT;
	r.success = true;
	r.error_message = "";
	return de_answer_msg(ans, &r.base);
}

static int h_restart(void *ctx, const char *sender, const ProtobufCMessage *req,
                     struct de_answer *ans)
{
	(void)sender;
	struct de_agent *ag = ctx;
	const Daemoneye__RestartCollectorRequest *q = (const void *)req;
	int i = find(ag, q->collector_id, ans);
	if (i < 0)
		return ans->code;
	de_sup_restart(ag->sup, (size_t)i, ag->ops.now(ag->host));
	changed(ag);
	Daemoneye__CollectorStatus st;
	de_agent_status(ag, (size_t)i, &st);
	Daemoneye__RestartCollectorResponse r =
		DAEMONEYE__RESTART_COLLECTOR_RESPONSE__INIT;
	r.success = true;
	r.error_message = "";
	r.status = &st;
	return de_answer_msg(ans, &r.base);
}

/* lifecycle.status's rpc_metrics: the agent client's, flattened (at most
 * RPC_REPORTED; a status stays well under a frame). */
#define RPC_REPORTED 512
struct rpc_report {
	size_t n, cap;
	Daemoneye__CollectorStatusResponse__RpcMetricsEntry *e, **ep;
	char (*names)[112];
};

static bool report_add(void *arg, const char *name, double v)
{
	struct rpc_report *r = arg;
	if (r->n == r->cap)
		return false;
	snprintf(r->names[r->n], sizeof(r->names[0]), "%s", name);
	daemoneye__collector_status_response__rpc_metrics_entry__init(
	    &r->e[r->n]);
	r->e[r->n].key = r->names[r->n];
	r->e[r->n].value = v;
	r->ep[r->n] = &r->e[r->n];
	r->n++;
	return true;
}

/* lifecycle.status's answer and control/agent/status's payload: the
 * collectors (one, or every one: idx SIZE_MAX) and the agent's RPC
 * metrics. */
struct status_report {
	Daemoneye__CollectorStatusResponse r;
	Daemoneye__CollectorStatus st[DE_COLLECTORS_MAX];
	Daemoneye__CollectorStatus *sp[DE_COLLECTORS_MAX];
	struct rpc_report rep;
};

static void report_build(const struct de_agent *ag, size_t idx,
                         struct status_report *out)
{
	memset(out, 0, sizeof(*out));
	daemoneye__collector_status_response__init(&out->r);
	size_t n = 0;
	for (size_t i = 0; i < ag->sup->n; i++) {
		if (idx != SIZE_MAX && i != idx)
			continue;
		de_agent_status(ag, i, &out->st[n]);
		out->sp[n] = &out->st[n];
		n++;
	}
	out->r.n_collectors = n;
	out->r.collectors = out->sp;
	if (!ag->bc)
		return;
	struct rpc_report *rep = &out->rep;
	rep->cap = RPC_REPORTED;
	rep->e = calloc(rep->cap, sizeof(*rep->e));
	rep->ep = calloc(rep->cap, sizeof(*rep->ep));
	rep->names = calloc(rep->cap, sizeof(*rep->names));
	if (!rep->e || !rep->ep || !rep->names)
		rep->cap = 0; /* reported without them */
	bus_rpc_metrics_each(bus_client_rpc_metrics(ag->bc), report_add, rep);
	out->r.n_rpc_metrics = rep->n;
	out->r.rpc_metrics = rep->ep;
}

static void report_free(struct status_report *r)
{
	free(r->rep.e);
	free(r->rep.ep);
	free(r->rep.names);
}

int de_agent_status_pack(const struct de_agent *ag, uint8_t **out,
                         size_t *len)
{
	struct status_report *r = malloc(sizeof(*r));
	if (!r)
		return BUS_ENOMEM;
	report_build(ag, SIZE_MAX, r);
	*out = bus_pb_pack(&r->r.base, len);
	report_free(r);
	free(r);
	return *out ? 0 : BUS_ENOMEM;
}

static int h_status(void *ctx, const char *sender, const ProtobufCMessage *req,
                    struct de_answer *ans)
{
	(void)sender;
	struct de_agent *ag = ctx;
	const Daemoneye__CollectorStatusRequest *q = (const void *)req;
	size_t idx = SIZE_MAX;
	if (q->collector_id && q->collector_id[0]) {
		int i = find(ag, q->collector_id, ans);
		if (i < 0)
			return ans->code;
		idx = (size_t)i;
	}
	struct status_report *r = malloc(sizeof(*r));
	if (!r)
		return de_answer_error(ans, BUS_RPC_ERR_INTERNAL, "out of memory");
	report_build(ag, idx, r);
	int rc = de_answer_msg(ans, &r->r.base);
	report_free(r);
	free(r);
	return rc;
}

static const struct de_handler agent_handlers[] = {
	{"lifecycle.start", h_start},
	{"lifecycle.stop", h_stop},
	{"lifecycle.restart", h_restart},
	{"lifecycle.status", h_status},
};

void de_agent_serve(struct de_agent *ag, struct bus_client *c,
                    const struct bus_rpc_request *q,
                    const struct de_access *acc, struct de_served *out)
{
	de_serve(c, q, agent_handlers,
	         sizeof(agent_handlers) / sizeof(agent_handlers[0]), ag, acc,
	         out);
}
