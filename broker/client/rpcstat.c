/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rpcstat.c — the client's RPC metrics (client.h: RPC metrics): a table
 * of (target, method) rows in first-call order, a hash compared before
 * the strings, one "other" row past the table's size. Recording is O(rows)
 * string-free comparisons per finished call (calls are not the hot path:
 * events are publishes); nothing here reads a clock — the client hands
 * in the latency it measured with its own.
 */
#include "bus/client.h"
#include "../core/internal.h"

#include <stdio.h>
#include <string.h>

/* The bucket of v ns: 1 us wide below 8 us, then 8 per power of two. */
static uint32_t bucket_of(uint64_t ns)
{
	uint64_t u = ns / 1000u;
	if (u < BUS_RPC_HIST_SUB)
		return (uint32_t)u;
	uint32_t e = 63u - (uint32_t)__builtin_clzll(u); /* floor(log2 u) >= 3 */
	uint32_t sub = (uint32_t)(u >> (e - 3)) - BUS_RPC_HIST_SUB;
	uint32_t i = BUS_RPC_HIST_SUB + (e - 3) * BUS_RPC_HIST_SUB + sub;
	return i < BUS_RPC_HIST_BUCKETS ? i : BUS_RPC_HIST_BUCKETS - 1;
}
_Static_assert(BUS_RPC_HIST_SUB == 8, "bucket_of's shifts assume 8 = 2^3");

uint64_t bus_rpc_hist_bound_ns(uint32_t i)
{
	if (i < BUS_RPC_HIST_SUB)
		return (i + 1ull) * 1000u;
	uint32_t e = (i - BUS_RPC_HIST_SUB) / BUS_RPC_HIST_SUB + 3;
	uint32_t sub = (i - BUS_RPC_HIST_SUB) % BUS_RPC_HIST_SUB;
	return ((BUS_RPC_HIST_SUB + sub + 1ull) << (e - 3)) * 1000u;
}

uint64_t bus_rpc_metric_quantile_ns(const struct bus_rpc_metric *m, double q)
{
	if (!m->calls)
		return 0;
	/* the rank of the q-quantile, 1-based: ceil(q * calls) */
	double want = q * (double)m->calls;
	uint64_t rank = (uint64_t)want;
	if ((double)rank < want)
		rank++;
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (uint32_t i = 0; i < BUS_RPC_HIST_BUCKETS; i++) {
		seen += m->hist[i];
		if (seen >= rank)
			return bus_rpc_hist_bound_ns(i);
	}
	return bus_rpc_hist_bound_ns(BUS_RPC_HIST_BUCKETS - 1);
}

static uint32_t pair_hash(const char *target, const char *method)
{
	return bus__hash(target, strlen(target)) * 31u ^
	       bus__hash(method, strlen(method));
}

/* The row of (target, method): found, added, or the "other" row. */
static struct bus_rpc_metric *row_of(const struct bus_allocator *a,
                                     struct bus_rpc_metrics *t,
                                     const char *target, const char *method)
{
	uint32_t h = pair_hash(target, method);
	for (uint32_t i = 0; i < t->n; i++) {
		struct bus_rpc_metric *r = &t->rows[i];
		if (r->hash == h && !strcmp(r->target, target) &&
		    !strcmp(r->method, method))
			return r;
	}
	if (t->n >= t->max)
		return &t->other;
	struct bus_rpc_metric *rows =
	    bus__realloc(a, t->rows, sizeof(*rows) * (t->n + 1u));
	if (!rows)
		return &t->other; /* counted all the same, in the sum */
	t->rows = rows;
	struct bus_rpc_metric *r = &rows[t->n];
	memset(r, 0, sizeof(*r));
	r->target = bus__strndup(a, target, strlen(target));
	r->method = bus__strndup(a, method, strlen(method));
	if (!r->target || !r->method) {
		bus__free(a, r->target);
		bus__free(a, r->method);
		return &t->other;
	}
	r->hash = h;
	t->n++;
	return r;
}

void bus__rpcm_record(const struct bus_allocator *a, struct bus_rpc_metrics *t,
                      const char *target, const char *method, int status,
                      int code, uint32_t attempts, uint64_t latency_ns)
{
	struct bus_rpc_metric *r = row_of(a, t, target, method);
	r->calls++;
	r->retries += attempts > 1 ? attempts - 1 : 0;
	r->latency_ns_sum += latency_ns;
	r->hist[bucket_of(latency_ns)]++;
	if (status == 0) {
		r->ok++;
		return;
	}
	if (status == BUS_ETIMEDOUT) {
		r->timeouts++;
		return;
	}
	r->errors++;
	for (uint32_t i = 0; i < BUS_RPC_CODES_MAX; i++) {
		if (r->codes[i].n && r->codes[i].code != code)
			continue;
		r->codes[i].code = code;
		r->codes[i].n++;
		return;
	}
	r->codes_other++;
}

void bus__rpcm_free(const struct bus_allocator *a, struct bus_rpc_metrics *t)
{
	for (uint32_t i = 0; i < t->n; i++) {
		bus__free(a, t->rows[i].target);
		bus__free(a, t->rows[i].method);
	}
	bus__free(a, t->rows);
	t->rows = NULL;
	t->n = 0;
}

static bool emit(const struct bus_rpc_metric *r,
                 bool (*fn)(void *, const char *, double), void *arg)
{
	char pre[600], name[700];
	if (r->target)
		snprintf(pre, sizeof(pre), "rpc.%.256s.%.256s", r->target,
		         r->method);
	else
		snprintf(pre, sizeof(pre), "rpc.other");
	const struct {
		const char *k;
		double v;
	} f[] = {
	    {"calls", (double)r->calls},
	    {"ok", (double)r->ok},
	    {"errors", (double)r->errors},
	    {"timeouts", (double)r->timeouts},
	    {"retries", (double)r->retries},
	    {"mean_ms", r->calls ? (double)r->latency_ns_sum /
	                               (double)r->calls / 1e6 : 0},
	    {"p50_ms", (double)bus_rpc_metric_quantile_ns(r, 0.5) / 1e6},
	    {"p99_ms", (double)bus_rpc_metric_quantile_ns(r, 0.99) / 1e6},
	    {"p999_ms", (double)bus_rpc_metric_quantile_ns(r, 0.999) / 1e6},
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		snprintf(name, sizeof(name), "%s.%s", pre, f[i].k);
		if (!fn(arg, name, f[i].v))
			return false;
	}
	for (uint32_t i = 0; i < BUS_RPC_CODES_MAX && r->codes[i].n; i++) {
		snprintf(name, sizeof(name), "%s.error.%d", pre,
		         (int)r->codes[i].code);
		if (!fn(arg, name, (double)r->codes[i].n))
			return false;
	}
	if (r->codes_other) {
		snprintf(name, sizeof(name), "%s.error.other", pre);
		if (!fn(arg, name, (double)r->codes_other))
			return false;
	}
	return true;
}

void bus_rpc_metrics_each(const struct bus_rpc_metrics *t,
                          bool (*fn)(void *arg, const char *name,
                                     double value),
                          void *arg)
{
	for (uint32_t i = 0; i < t->n; i++)
		if (!emit(&t->rows[i], fn, arg))
			return;
	if (t->other.calls)
		emit(&t->other, fn, arg);
}
