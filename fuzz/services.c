/* SPDX-License-Identifier: Apache-2.0 */
/*
 * services — the DaemonEye pieces that take input from others.
 *
 * First byte even: RPC to a collector (de_collector_serve, procmond's code)
 * over the in-memory net. Up to 8 calls, each a method (one of the table,
 * or raw bytes) and params, or a control/agent/shutdown message. Property: every call ends exactly once, with a
 * reply that decodes as the method's response, or with -32601 / -32602 /
 * -32001 — never an internal error, never a crash.
 *
 * First byte odd: procmond's cycle diff over up to 8 fabricated tables of
 * up to 16 processes (small pid and start ranges, so reuse and repeats are
 * common). Property, per cycle, checked against a set model: TERMINATION
 * exactly for the processes gone, DISCOVERY exactly for the new ones (on
 * enumeration in the first cycle), UPDATE only for survivors; the
 * terminations and updates in (pid, start) order, then the discoveries
 * (a new parent before its new children), each followed only by its own
 * hash update.
 */
#include "fuzz.h"
#include "bus/daemoneye.h"
#include "../broker/tests/memnet.h"

#include <string.h>

/* ---- RPC ------------------------------------------------------------------- */
static struct de_collector col;
static int calls_done;
static bool call_ok;
static const struct de_method *call_method;

static uint64_t f_now(void *host)
{
	return ((struct memnet *)host)->now;
}
static int64_t f_wall(void *host)
{
	return (int64_t)(((struct memnet *)host)->now / 1000000);
}
static int f_publish(void *host, const char *t, const uint8_t *d, size_t n)
{
	(void)host, (void)t, (void)d, (void)n;
	return 0;
}

static void serve(struct bus_client *c, const struct bus_rpc_request *r,
                  void *arg)
{
	(void)arg;
	struct de_served sv;
	de_collector_serve(&col, c, r, &sv);
}

static void done(struct bus_client *c, int status,
                 const struct bus_rpc_result *r, void *arg)
{
	(void)c, (void)arg;
	calls_done++;
	if (status == 0) {
		FUZZ_CHECK(call_method, "a reply to a method that is not ours");
		ProtobufCMessage *m = bus_pb_unpack(call_method->response,
		                                    r->data, r->len, 1 << 20);
		FUZZ_CHECK(m, "%s: the reply is not a %s", call_method->name,
		           call_method->response->name);
		bus_pb_free(m);
		call_ok = true;
		return;
	}
	FUZZ_CHECK(status == BUS_ERPC, "status %d", status);
	FUZZ_CHECK(r->code == BUS_RPC_ERR_METHOD_NOT_FOUND ||
	                   r->code == BUS_RPC_ERR_INVALID_PARAMS ||
	                   r->code == BUS_RPC_ERR_NOT_FOUND,
	           "error code %d: %.*s", r->code, (int)r->len,
	           (const char *)r->data);
	call_ok = true;
}

static void fuzz_rpc(struct fz *f)
{
	struct memnet n;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, false);
	mn_init(&n, &cfg);
	int a = mn_client(&n, "daemoneye-agent", NULL);
	int s = mn_client(&n, "collector.process.f", NULL);
	struct de_collector_ops ops = {.now = f_now, .wall_ms = f_wall,
	                               .publish = f_publish};
	FUZZ_CHECK(de_collector_init(&col, "f", 7, 100, &ops, &n) == 0, "init");
	n.l[s].rpc_hook = serve;
	for (int k = 0; k < 8 && fz_more(f); k++) {
		uint8_t sel = fz_u8(f);
		char method[64];
		call_method = NULL;
		if (sel >= 0xe8 && sel < 0xf0) {
			/* control/agent/shutdown, from the agent or not: 0,
			 * EPROTO or EACCESS; the calls after are still
			 * answered, each once */
			const uint8_t *p;
			size_t len = fz_bytes(f, fz_u8(f), &p);
			int rc = de_collector_shutdown(
			        &col, sel & 1 ? "monitor.x" : DE_AGENT_NAME, p, len);
			FUZZ_CHECK(rc == 0 || rc == BUS_EPROTO ||
			                   (rc == BUS_EACCESS && (sel & 1)),
			           "shutdown: %d", rc);
			continue;
		}
		if (sel < 0xf0) {
			call_method = &de_methods[sel % de_methods_count];
			snprintf(method, sizeof(method), "%s", call_method->name);
		} else { /* a raw method name */
			const uint8_t *p;
			size_t len = fz_bytes(f, fz_u8(f) % 32, &p);
			memcpy(method, p, len);
			method[len] = 0;
			call_method = de_method_find(method);
			if (!method[0])
				snprintf(method, sizeof(method), "x");
		}
		const uint8_t *params;
		size_t plen = fz_bytes(f, fz_u16(f) % 2048, &params);
		calls_done = 0;
		call_ok = false;
		int rc = bus_client_rpc_call(mn_cl(&n, a), "collector.process.f",
		                             method, params, plen, NULL, done,
		                             NULL);
		if (rc)
			continue; /* refused locally (e.g. a bad method name) */
		mn_run(&n);
		FUZZ_CHECK(calls_done == 1 && call_ok, "call %s ended %d times",
		           method, calls_done);
	}
	de_collector_free(&col);
	mn_free(&n);
}

/* ---- the diff --------------------------------------------------------------- */
struct key {
	uint32_t pid;
	uint64_t start;
};

struct evlog {
	enum de_event_type type[64];
	const char *topic[64];
	struct key key[64];
	uint32_t ppid[64];
	int n;
};

static void collect(void *arg, enum de_event_type type, const char *topic,
                    const struct de_proc *p)
{
	struct evlog *e = arg;
	FUZZ_CHECK(e->n < 64, "more events than two tables hold");
	e->type[e->n] = type;
	e->topic[e->n] = topic;
	e->ppid[e->n] = p->ppid;
	e->key[e->n++] = (struct key){p->pid, p->start_ticks};
}

static bool has(const struct key *set, int n, struct key k)
{
	for (int i = 0; i < n; i++)
		if (set[i].pid == k.pid && set[i].start == k.start)
			return true;
	return false;
}

static int key_cmp(struct key a, struct key b)
{
	if (a.pid != b.pid)
		return a.pid < b.pid ? -1 : 1;
	return a.start < b.start ? -1 : a.start > b.start;
}

/* Is k among the discovered ancestors of entry j (a parent cycle, which
 * only fabricated tables have)? */
static bool ancestor(const struct evlog *e, int j, struct key k)
{
	for (int depth = 0; depth < 64; depth++) {
		int up = -1;
		for (int x = 0; x < e->n && up < 0; x++)
			if (e->type[x] == DE_DISCOVERY &&
			    e->key[x].pid == e->ppid[j] &&
			    e->key[x].start <= e->key[j].start)
				up = x;
		if (up < 0)
			return false;
		if (key_cmp(e->key[up], k) == 0)
			return true;
		j = up;
	}
	return true; /* deeper than procdiff follows: no promise */
}

static void check_cycle(const struct evlog *e, const struct key *prev, int np,
                        const struct key *cur, int nc, bool first)
{
	int terms = 0, discs = 0;
	for (int i = 0; i < e->n; i++) {
		struct key k = e->key[i];
		if (e->type[i] == DE_TERMINATION) {
			FUZZ_CHECK(!first && has(prev, np, k) && !has(cur, nc, k),
			           "termination of %u/%llu", k.pid,
			           (unsigned long long)k.start);
			terms++;
		} else if (e->type[i] == DE_DISCOVERY) {
			FUZZ_CHECK(has(cur, nc, k) && (first || !has(prev, np, k)),
			           "discovery of %u", k.pid);
			FUZZ_CHECK(!strcmp(e->topic[i], first ? DE_TOPIC_ENUMERATION
			                                      : DE_TOPIC_LIFECYCLE),
			           "discovery topic %s", e->topic[i]);
			discs++;
		} else {
			FUZZ_CHECK(has(cur, nc, k), "update of a process not there");
			FUZZ_CHECK(!strcmp(e->topic[i], DE_TOPIC_HASH) ||
			                   has(prev, np, k),
			           "metadata update of a new process");
		}
		/* terminations and updates in (pid, start) order; then the
		 * discoveries, each followed only by its own hash update */
		if (i > 0 && discs == 0)
			FUZZ_CHECK(key_cmp(e->key[i - 1], k) <= 0, "order");
		if (i > 0 && discs > 0 && e->type[i] != DE_DISCOVERY)
			FUZZ_CHECK(e->type[i - 1] == DE_DISCOVERY &&
			                   key_cmp(e->key[i - 1], k) == 0 &&
			                   !strcmp(e->topic[i], DE_TOPIC_HASH),
			           "after the discoveries began: %s of %u",
			           e->topic[i], k.pid);
		/* a new parent is announced before its new children (unless
		 * the fabricated table made them each other's ancestors) */
		for (int j = i + 1; e->type[i] == DE_DISCOVERY && j < e->n; j++)
			FUZZ_CHECK(!(e->type[j] == DE_DISCOVERY &&
			             e->key[j].pid == e->ppid[i] &&
			             e->key[j].start <= k.start &&
			             !ancestor(e, j, k)),
			           "parent %u discovered after its child %u",
			           e->ppid[i], k.pid);
	}
	int gone = 0, fresh = 0;
	for (int i = 0; i < np && !first; i++)
		gone += !has(cur, nc, prev[i]);
	for (int i = 0; i < nc; i++)
		fresh += first || !has(prev, np, cur[i]);
	FUZZ_CHECK(terms == gone && discs == fresh,
	           "%d terminations for %d gone, %d discoveries for %d new",
	           terms, gone, discs, fresh);
}

static void fuzz_diff(struct fz *f)
{
	struct de_procdiff d;
	de_procdiff_init(&d, 100);
	struct key prev[16], cur[16];
	int np = 0;
	static const char *names[] = {"a", "b", "init", "sh"};
	static const char *hashes[] = {"", "", "aa", "bb"};
	for (int cycle = 0; cycle < 8 && fz_more(f); cycle++) {
		struct de_snapshot s;
		de_snapshot_init(&s);
		s.taken_ns = (uint64_t)(cycle + 1) * 1000000000u;
		int want = fz_u8(f) % 17, nc = 0;
		for (int i = 0; i < want; i++) {
			uint8_t a = fz_u8(f), b = fz_u8(f);
			struct de_proc p = {.pid = 1 + a % 12,
			                    .start_ticks = (a >> 4) % 3,
			                    .ppid = b % 3,
			                    .cpu_ticks = b,
			                    .accessible = b & 1,
			                    .file_exists = true,
			                    .name = (char *)names[(b >> 2) % 4],
			                    .exe = "/x"};
			snprintf(p.hash, sizeof(p.hash), "%s", hashes[(b >> 4) % 4]);
			bool pid_taken = false; /* a live pid is one process */
			for (int x = 0; x < nc; x++)
				pid_taken |= cur[x].pid == p.pid &&
				             cur[x].start != p.start_ticks;
			if (pid_taken)
				continue;
			FUZZ_CHECK(de_snapshot_add(&s, &p) == 0, "add");
			struct key k = {p.pid, p.start_ticks};
			if (!has(cur, nc, k))
				cur[nc++] = k;
		}
		struct evlog e = {.n = 0};
		de_procdiff_cycle(&d, &s, collect, &e);
		check_cycle(&e, prev, np, cur, nc, cycle == 0);
		FUZZ_CHECK(d.prev.n == (size_t)nc, "the table keeps %zu of %d",
		           d.prev.n, nc);
		memcpy(prev, cur, sizeof(cur));
		np = nc;
	}
	de_procdiff_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 64 * 1024)
		return 0;
	struct fz f = {data + 1, size - 1};
	if (data[0] & 1)
		fuzz_diff(&f);
	else
		fuzz_rpc(&f);
	return 0;
}
