/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prom.c — the broker's statistics in the Prometheus text format
 * (bus/prom.h), read from the MessagePack the broker gives with msgpack-c.
 * The names and help come from bus.h's BUS_STATS_MAP, so a new counter is
 * exported where it is declared; a key this build does not know (a newer
 * broker's) is still printed, untyped, when its name is a valid metric
 * name.
 */
#include "bus/prom.h"

#include <inttypes.h>
#include <msgpack.h>
#include <string.h>

#include "bus/bus.h"
#include "bus/client.h"

#define PREFIX "busrt_broker_"

void bus_prom_family(FILE *f, const char *name, const char *type,
                     const char *help)
{
	fprintf(f, "# HELP %s ", name);
	for (const char *p = help; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", f);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
	fprintf(f, "\n# TYPE %s %s\n", name, type);
}

void bus_prom_label_value(FILE *f, const char *s, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' || s[i] == '"')
			fputc('\\', f);
		if (s[i] == '\n')
			fputs("\\n", f);
		else
			fputc(s[i], f);
	}
	fputc('"', f);
}

static bool key_is(const msgpack_object *k, const char *name)
{
	return k->type == MSGPACK_OBJECT_STR &&
	       k->via.str.size == strlen(name) &&
	       memcmp(k->via.str.ptr, name, k->via.str.size) == 0;
}

static const msgpack_object *lookup(const msgpack_object *map,
                                    const char *name)
{
	if (map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++)
		if (key_is(&map->via.map.ptr[i].key, name))
			return &map->via.map.ptr[i].val;
	return NULL;
}

/* A metric name's characters after the prefix: [a-z0-9_] */
static bool name_ok(const msgpack_object *k)
{
	if (k->type != MSGPACK_OBJECT_STR || !k->via.str.size ||
	    k->via.str.size > 64)
		return false;
	for (uint32_t i = 0; i < k->via.str.size; i++) {
		char c = k->via.str.ptr[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

/* A sample's value and the line's end (the name and labels are out). */
static void value(FILE *f, const msgpack_object *v)
{
	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		fprintf(f, "%" PRIu64 "\n", v->via.u64);
	else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		fprintf(f, "%" PRId64 "\n", v->via.i64);
	else
		fprintf(f, "%.17g\n", v->via.f64);
}

/* A sample without labels: name value. */
static void sample(FILE *f, const char *name, const msgpack_object *v)
{
	fprintf(f, "%s ", name);
	value(f, v);
}

static bool is_number(const msgpack_object *v)
{
	return v && (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
	             v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
	             v->type == MSGPACK_OBJECT_FLOAT64 ||
	             v->type == MSGPACK_OBJECT_FLOAT32);
}

/* One stat of the table, or uptime, memory, or an unknown number. */
static const struct stat_desc {
	const char *key, *type, *help;
} stat_descs[] = {
#define DESC(name, kind, what) {#name, #kind, what},
    BUS_STATS_MAP(DESC)
#undef DESC
};

static void broker_stat(FILE *f, const msgpack_object *k,
                        const msgpack_object *v)
{
	char name[128];
	const char *type = "untyped", *help = "a statistic of a newer broker";
	for (size_t i = 0; i < sizeof(stat_descs) / sizeof(stat_descs[0]); i++)
		if (key_is(k, stat_descs[i].key)) {
			type = stat_descs[i].type;
			help = stat_descs[i].help;
		}
	snprintf(name, sizeof(name), PREFIX "%.*s%s", (int)k->via.str.size,
	         k->via.str.ptr, strcmp(type, "counter") ? "" : "_total");
	bus_prom_family(f, name, type, help);
	sample(f, name, v);
}

static void limits(FILE *f, const msgpack_object *m)
{
	if (m->type != MSGPACK_OBJECT_MAP || !m->via.map.size)
		return;
	bus_prom_family(f, PREFIX "limit", "gauge",
	                "a configured limit (README: limits), by name");
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object_kv *kv = &m->via.map.ptr[i];
		if (!name_ok(&kv->key) || !is_number(&kv->val))
			continue;
		fprintf(f, PREFIX "limit{limit=\"%.*s\"} ",
		        (int)kv->key.via.str.size, kv->key.via.str.ptr);
		value(f, &kv->val);
	}
}

/* The topic rows: one family per field, a sample per row. */
static const struct {
	const char *field, *suffix, *type, *help;
} topic_fields[] = {
    {"frames_in", "frames_in_total", "counter",
     "frames published to topics under this prefix"},
    {"bytes_in", "bytes_in_total", "counter",
     "payload bytes published under this prefix"},
    {"frames_out", "frames_out_total", "counter",
     "frames queued to receivers of this prefix"},
    {"bytes_out", "bytes_out_total", "counter",
     "payload bytes queued to receivers of this prefix"},
    {"drops", "drops_total", "counter",
     "frames of this prefix that a receiver's policy dropped"},
    {"subscribers", "subscribers", "gauge",
     "receivers of the last publish under this prefix"},
};

static void topic_sample(FILE *f, const char *name, const msgpack_object *row,
                         const char *field)
{
	const msgpack_object *v = lookup(row, field);
	if (!is_number(v))
		return;
	const msgpack_object *t = lookup(row, "topic");
	if (t && t->type == MSGPACK_OBJECT_STR) {
		fprintf(f, "%s{topic=", name);
		bus_prom_label_value(f, t->via.str.ptr, t->via.str.size);
		fputs("} ", f);
	} else {
		/* the "other" row: every prefix past the table's size */
		fprintf(f, "%s{overflow=\"true\"} ", name);
	}
	value(f, v);
}

static void topics(FILE *f, const msgpack_object *ts)
{
	if (ts->type != MSGPACK_OBJECT_MAP)
		return;
	const msgpack_object *rows = lookup(ts, "topics");
	const msgpack_object *other = lookup(ts, "other");
	const msgpack_object *depth = lookup(ts, "depth");
	if (is_number(depth)) {
		bus_prom_family(f, "busrt_topic_stats_depth", "gauge",
		                "levels of a topic kept as its prefix (0: off)");
		sample(f, "busrt_topic_stats_depth", depth);
	}
	for (size_t i = 0; i < sizeof(topic_fields) / sizeof(topic_fields[0]);
	     i++) {
		char name[64];
		snprintf(name, sizeof(name), "busrt_topic_%s",
		         topic_fields[i].suffix);
		bus_prom_family(f, name, topic_fields[i].type,
		                topic_fields[i].help);
		if (rows && rows->type == MSGPACK_OBJECT_ARRAY)
			for (uint32_t r = 0; r < rows->via.array.size; r++)
				topic_sample(f, name, &rows->via.array.ptr[r],
				             topic_fields[i].field);
		if (other)
			topic_sample(f, name, other, topic_fields[i].field);
	}
}

static bool unpack_map(msgpack_unpacked *u, const uint8_t *p, size_t n)
{
	size_t off = 0;
	return p && msgpack_unpack_next(u, (const char *)p, n, &off) ==
	                    MSGPACK_UNPACK_SUCCESS &&
	       off == n && u->data.type == MSGPACK_OBJECT_MAP;
}

int bus_prom_broker(FILE *f, const uint8_t *stats, size_t n,
                    const uint8_t *topic_map, size_t tn)
{
	msgpack_unpacked u, t;
	msgpack_unpacked_init(&u);
	msgpack_unpacked_init(&t);
	int rc = BUS_EPROTO;
	if (!unpack_map(&u, stats, n))
		goto out;
	const msgpack_object_map *m = &u.data.via.map;
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
		if (key_is(k, "uptime")) {
			bus_prom_family(f, PREFIX "uptime_seconds", "gauge",
			                "seconds since the broker started");
			sample(f, PREFIX "uptime_seconds", v);
		} else if (key_is(k, "memory_bytes")) {
			bus_prom_family(f, PREFIX "memory_bytes", "gauge",
			                "heap in use by the broker's process");
			sample(f, PREFIX "memory_bytes", v);
		} else if (key_is(k, "limits")) {
			limits(f, v);
		} else if (key_is(k, "topic_stats")) {
			topics(f, v);
		} else if (name_ok(k) && is_number(v)) {
			broker_stat(f, k, v);
		}
	}
	if (topic_map) {
		if (!unpack_map(&t, topic_map, tn))
			goto out;
		topics(f, &t.data);
	}
	rc = 0;
out:
	msgpack_unpacked_destroy(&u);
	msgpack_unpacked_destroy(&t);
	return rc;
}

/* ---- RPC metrics ---------------------------------------------------------- */
static void rpc_labels(FILE *f, const struct bus_rpc_metric *r)
{
	if (!r->target) {
		fputs("overflow=\"true\"", f);
		return;
	}
	fputs("target=", f);
	bus_prom_label_value(f, r->target, strlen(r->target));
	fputs(",method=", f);
	bus_prom_label_value(f, r->method, strlen(r->method));
}

/* Row i of t (i == t->n: the "other" row), or NULL: the other row has
 * had no call. */
static const struct bus_rpc_metric *rpc_row(const struct bus_rpc_metrics *t,
                                            uint32_t i)
{
	if (i < t->n)
		return &t->rows[i];
	return t->other.calls ? &t->other : NULL;
}

/* Whether bucket i's bound is an edge the page shows: 1 us * 4^k. */
static bool shown_edge(uint32_t i)
{
	uint64_t us = bus_rpc_hist_bound_ns(i) / 1000u;
	return i < BUS_RPC_HIST_BUCKETS - 1 && !(us & (us - 1)) &&
	       !(__builtin_ctzll(us) & 1);
}

void bus_prom_rpc(FILE *f, const struct bus_rpc_metrics *t)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} counters[] = {
	    {"busrt_rpc_calls_total", "RPC calls this process made, finished",
	     offsetof(struct bus_rpc_metric, calls)},
	    {"busrt_rpc_ok_total", "RPC calls answered with a result",
	     offsetof(struct bus_rpc_metric, ok)},
	    {"busrt_rpc_timeouts_total", "RPC calls that timed out",
	     offsetof(struct bus_rpc_metric, timeouts)},
	    {"busrt_rpc_retries_total", "RPC attempts after a call's first",
	     offsetof(struct bus_rpc_metric, retries)},
	};
	for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
		bus_prom_family(f, counters[k].name, "counter", counters[k].help);
		for (uint32_t i = 0; i <= t->n; i++) {
			const struct bus_rpc_metric *r = rpc_row(t, i);
			if (!r)
				continue;
			fprintf(f, "%s{", counters[k].name);
			rpc_labels(f, r);
			fprintf(f, "} %" PRIu64 "\n",
			        *(const uint64_t *)((const char *)r +
			                            counters[k].off));
		}
	}
	bus_prom_family(f, "busrt_rpc_errors_total", "counter",
	                "RPC calls answered with an error or failed in "
	                "transport, by code (\"other\": past the first 8)");
	for (uint32_t i = 0; i <= t->n; i++) {
		const struct bus_rpc_metric *r = rpc_row(t, i);
		if (!r)
			continue;
		for (uint32_t c = 0; c < BUS_RPC_CODES_MAX && r->codes[c].n; c++) {
			fputs("busrt_rpc_errors_total{", f);
			rpc_labels(f, r);
			fprintf(f, ",code=\"%d\"} %" PRIu64 "\n",
			        (int)r->codes[c].code, r->codes[c].n);
		}
		if (r->codes_other) {
			fputs("busrt_rpc_errors_total{", f);
			rpc_labels(f, r);
			fprintf(f, ",code=\"other\"} %" PRIu64 "\n",
			        r->codes_other);
		}
	}
	bus_prom_family(f, "busrt_rpc_latency_seconds", "histogram",
	                "RPC call latency, start to outcome (retries "
	                "included)");
	for (uint32_t row = 0; row <= t->n; row++) {
		const struct bus_rpc_metric *r = rpc_row(t, row);
		if (!r)
			continue;
		uint64_t cum = 0;
		for (uint32_t i = 0; i < BUS_RPC_HIST_BUCKETS; i++) {
			cum += r->hist[i];
			if (!shown_edge(i))
				continue;
			fputs("busrt_rpc_latency_seconds_bucket{", f);
			rpc_labels(f, r);
			fprintf(f, ",le=\"%.6g\"} %" PRIu64 "\n",
			        (double)bus_rpc_hist_bound_ns(i) / 1e9, cum);
		}
		fputs("busrt_rpc_latency_seconds_bucket{", f);
		rpc_labels(f, r);
		fprintf(f, ",le=\"+Inf\"} %" PRIu64 "\n", r->calls);
		fputs("busrt_rpc_latency_seconds_sum{", f);
		rpc_labels(f, r);
		fprintf(f, "} %.9f\n", (double)r->latency_ns_sum / 1e9);
		fputs("busrt_rpc_latency_seconds_count{", f);
		rpc_labels(f, r);
		fprintf(f, "} %" PRIu64 "\n", r->calls);
	}
}
