/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rpcsvc.c — the DaemonEye RPC services over BUS/RT RPC: one method table
 * (README "RPC methods" mirrors it), the policies each service's calls use,
 * and the protobuf plumbing of serving and calling (daemoneye.h).
 */
#include "bus/daemoneye.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000000ull
#define S (1000 * MS)

void de_policies_defaults(struct de_policies *p)
{
	memset(p, 0, sizeof(*p));
	p->lifecycle = (struct bus_rpc_policy){.timeout_ns = 30 * S};
	p->health = (struct bus_rpc_policy){.timeout_ns = 5 * S, .retries = 3};
	/* 15 s overall; attempts of 5 s retried after 0.5, 1, 2, 4, 4 ... s
	 * until the overall bound */
	p->config = (struct bus_rpc_policy){.timeout_ns = 5 * S,
	                                    .retries = 100,
	                                    .backoff_ns = 500 * MS,
	                                    .backoff_max_ns = 4 * S,
	                                    .total_ns = 15 * S};
	p->heartbeat = (struct bus_rpc_policy){.timeout_ns = 2 * S, .retries = 1};
	/* one attempt: a failed resync is asked again by the intake, which
	 * knows whether it is still needed */
	p->resync = (struct bus_rpc_policy){.timeout_ns = 5 * S};
	p->resync_retry_ns = 1 * S;
	p->heartbeat_interval_ns = 5 * S;
	p->health_check_interval_ns = 30 * S;
	p->heartbeat_dead_after = 3;
	p->restart_delay_ns = 500 * MS;
	p->restart_delay_max_ns = 30 * S;
	p->stop_timeout_ns = 5 * S;
}

#define M(n, svc, req, resp)                                                  \
	{n, svc, &daemoneye__##req##__descriptor,                             \
	 &daemoneye__##resp##__descriptor}
const struct de_method de_methods[] = {
	M("lifecycle.start", DE_SVC_LIFECYCLE, start_collector_request,
	  start_collector_response),
	M("lifecycle.stop", DE_SVC_LIFECYCLE, stop_collector_request,
	  stop_collector_response),
	M("lifecycle.restart", DE_SVC_LIFECYCLE, restart_collector_request,
	  restart_collector_response),
	M("lifecycle.status", DE_SVC_LIFECYCLE, collector_status_request,
	  collector_status_response),
	M("health.check", DE_SVC_HEALTH, health_check_request,
	  health_check_response),
	M("health.heartbeat", DE_SVC_HEALTH, heartbeat_request,
	  heartbeat_response),
	M("health.metrics", DE_SVC_HEALTH, metrics_request, metrics_response),
	M("config.get", DE_SVC_CONFIG, get_config_request, get_config_response),
	M("config.validate", DE_SVC_CONFIG, validate_config_request,
	  validate_config_response),
	M("config.update", DE_SVC_CONFIG, update_config_request,
	  update_config_response),
	M("collector.resync", DE_SVC_EVENTS, resync_request, resync_response),
};
#undef M
const size_t de_methods_count = sizeof(de_methods) / sizeof(de_methods[0]);

const struct de_method *de_method_find(const char *name)
{
	for (size_t i = 0; name && i < de_methods_count; i++)
		if (!strcmp(de_methods[i].name, name))
			return &de_methods[i];
	return NULL;
}

const struct bus_rpc_policy *de_policy_for(const struct de_policies *p,
                                           const struct de_method *m)
{
	if (!strcmp(m->name, "health.heartbeat"))
		return &p->heartbeat;
	switch (m->service) {
	case DE_SVC_LIFECYCLE:
		return &p->lifecycle;
	case DE_SVC_HEALTH:
		return &p->health;
	case DE_SVC_CONFIG:
		return &p->config;
	case DE_SVC_EVENTS:
		return &p->resync;
	}
	return &p->lifecycle;
}

/* ---- serving ---------------------------------------------------------------- */
int de_answer_msg(struct de_answer *a, const ProtobufCMessage *m)
{
	free(a->buf);
	a->buf = bus_pb_pack(m, &a->len);
	if (!a->buf)
		return de_answer_error(a, BUS_RPC_ERR_INTERNAL, "out of memory");
	a->code = 0;
	return 0;
}

int de_answer_error(struct de_answer *a, int code, const char *fmt, ...)
{
	free(a->buf);
	a->buf = NULL;
	a->len = 0;
	a->code = code ? code : BUS_RPC_ERR_INTERNAL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->message, sizeof(a->message), fmt, ap);
	va_end(ap);
	return a->code;
}

bool de_access_allows(const struct de_access *acc, enum de_service svc,
                      const char *sender)
{
	const char *const *l = acc && (unsigned)svc < DE_SVC_COUNT
	                           ? acc->callers[svc]
	                           : NULL;
	bool ok = false;
	for (; l && *l && !ok; l++)
		ok = sender && bus_name_mask_match(*l, sender);
	/* planted: lifecycle.* serves anyone; or every service refuses the
	 * callers its rule names (each counted where it changes the answer) */
	struct bus_sim_hooks *h = acc ? acc->sim : NULL;
	if (!ok && BUS_PLANTED(h, BUS_PLANT_SVC_OPEN) &&
	    svc == DE_SVC_LIFECYCLE && BUS_PLANT_HIT(h))
		return true;
	if (ok && BUS_PLANTED(h, BUS_PLANT_SVC_CLOSED) && BUS_PLANT_HIT(h))
		return false;
	return ok;
}

void de_serve(struct bus_client *c, const struct bus_rpc_request *q,
              const struct de_handler *h, size_t n, void *ctx,
              const struct de_access *acc, struct de_served *out)
{
	struct de_answer a = {0};
	*out = (struct de_served){.answered = q->call_id != 0};
	snprintf(out->method, sizeof(out->method), "%s",
	         q->method ? q->method : "");
	if (!q->call_id)
		return; /* notifications carry no method: nothing to serve */
	const struct de_method *m = de_method_find(q->method);
	const struct de_handler *hit = NULL;
	for (size_t i = 0; m && i < n; i++)
		if (!strcmp(h[i].method, m->name))
			hit = &h[i];
	if (!hit) {
		de_answer_error(&a, BUS_RPC_ERR_METHOD_NOT_FOUND,
		                "method not served here: %s", q->method);
	} else if (!de_access_allows(acc, m->service, q->sender)) {
		/* before the params are even decoded */
		out->denied = true;
		de_answer_error(&a, BUS_RPC_ERR_ACCESS,
		                "access denied: %s may not call %s", q->sender,
		                m->name);
	} else {
		ProtobufCMessage *req = bus_pb_unpack(
			m->request, q->params, q->params_len, BUS_PB_BUDGET_DEFAULT);
		if (!req)
			de_answer_error(&a, BUS_RPC_ERR_INVALID_PARAMS,
			                "params are not a valid %s",
			                m->request->name);
		else if (hit->fn(ctx, q->sender, req, &a) == 0 && !a.buf)
			/* a handler that answered nothing is a bug; say so */
			de_answer_error(&a, BUS_RPC_ERR_INTERNAL,
			                "%s gave no answer", m->name);
		bus_pb_free(req);
	}
	if (a.code == 0)
		bus_client_rpc_reply(c, q->sender, q->call_id, a.buf, a.len);
	else
		bus_client_rpc_error(c, q->sender, q->call_id, a.code,
		                     a.message, strlen(a.message));
	free(a.buf);
	out->code = a.code;
	if (a.code)
		memcpy(out->message, a.message, sizeof(out->message));
}

/* ---- calling ----------------------------------------------------------------- */
int de_call(struct bus_client *c, const char *target, const char *method,
            const ProtobufCMessage *req, const struct de_policies *p,
            bus_rpc_fn done, void *arg)
{
	const struct de_method *m = de_method_find(method);
	if (!m || !req || req->descriptor != m->request)
		return BUS_EINVAL;
	size_t len;
	uint8_t *buf = bus_pb_pack(req, &len);
	if (!buf)
		return BUS_ENOMEM;
	int rc = bus_client_rpc_call(c, target, m->name, buf, len,
	                             de_policy_for(p, m), done, arg);
	free(buf);
	return rc;
}

ProtobufCMessage *de_reply_unpack(const char *method,
                                  const struct bus_rpc_result *r)
{
	const struct de_method *m = de_method_find(method);
	if (!m || !r || r->code != 0)
		return NULL;
	return bus_pb_unpack(m->response, r->data, r->len,
	                     BUS_PB_BUDGET_DEFAULT);
}
