/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_services.c — the DaemonEye pieces: method table and policies,
 * serving and calling over the in-memory net, procmond's cycle diff and
 * events, the /proc reader on a fabricated tree, the agent's supervision.
 */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus/daemoneye.h"
#include "bus/procfs.h"
#include "memnet.h"

#define MS 1000000ull
#define S (1000 * MS)

static struct bus_core_config core_cfg(void)
{
	struct bus_core_config c;
	bus_core_config_defaults(&c, false);
	return c;
}

static void test_methods_and_policies(void **state)
{
	(void)state;
	static const char *names[] = {
		"lifecycle.start", "lifecycle.stop", "lifecycle.restart",
		"lifecycle.status", "health.check", "health.heartbeat",
		"health.metrics", "config.get", "config.validate",
		"config.update", "collector.resync"};
	assert_int_equal(de_methods_count, 11);
	for (size_t i = 0; i < 11; i++)
		assert_non_null(de_method_find(names[i]));
	assert_null(de_method_find("health"));
	assert_null(de_method_find(NULL));
	struct de_policies p;
	de_policies_defaults(&p);
	const struct bus_rpc_policy *l =
		de_policy_for(&p, de_method_find("lifecycle.restart"));
	assert_int_equal(l->timeout_ns, 30 * S);
	assert_int_equal(l->retries, 0);
	const struct bus_rpc_policy *h =
		de_policy_for(&p, de_method_find("health.check"));
	assert_int_equal(h->timeout_ns, 5 * S);
	assert_int_equal(h->retries, 3);
	const struct bus_rpc_policy *c =
		de_policy_for(&p, de_method_find("config.update"));
	assert_int_equal(c->total_ns, 15 * S);
	assert_int_equal(c->backoff_ns, 500 * MS);
	assert_int_equal(c->backoff_max_ns, 4 * S);
	const struct bus_rpc_policy *hb =
		de_policy_for(&p, de_method_find("health.heartbeat"));
	assert_int_equal(hb->timeout_ns, 2 * S);
	assert_int_equal(hb->retries, 1);
	assert_int_equal(hb->backoff_ns, 0);
	assert_int_equal(p.heartbeat_interval_ns, 5 * S);
	assert_int_equal(p.heartbeat_dead_after, 3);
	const struct bus_rpc_policy *rs =
		de_policy_for(&p, de_method_find("collector.resync"));
	assert_int_equal(rs->timeout_ns, 5 * S);
	assert_int_equal(rs->retries, 0);
	assert_int_equal(p.resync_retry_ns, 1 * S);
}

/* ---- serving and calling ------------------------------------------------------ */
static int h_check(void *ctx, const char *sender, const ProtobufCMessage *req,
                   struct de_answer *a)
{
	(void)ctx, (void)sender;
	const Daemoneye__HealthCheckRequest *q = (const void *)req;
	if (!strcmp(q->collector_id, "broken"))
		return de_answer_error(a, BUS_RPC_ERR_NOT_FOUND, "no %s",
		                       q->collector_id);
	Daemoneye__HealthCheckResponse r = DAEMONEYE__HEALTH_CHECK_RESPONSE__INIT;
	r.status = DAEMONEYE__HEALTH_CHECK_RESPONSE__HEALTH_STATUS__HEALTHY;
	r.message = q->collector_id;
	r.uptime_seconds = 7;
	return de_answer_msg(a, &r.base);
}

static int h_silent(void *ctx, const char *sender, const ProtobufCMessage *req,
                    struct de_answer *a)
{
	(void)ctx, (void)sender, (void)req, (void)a;
	return 0; /* a bug: no answer */
}

static const struct de_handler handlers[] = {
	{"health.check", h_check},
	{"config.get", h_silent},
};

static struct de_served last_served;
static const char *const only_agent[] = {"daemoneye-agent", NULL};
static const char *const agent_monitors[] = {"daemoneye-agent", "monitor.*",
                                             NULL};
static const struct de_access svc_access = {
	.callers = {[DE_SVC_HEALTH] = agent_monitors,
	            [DE_SVC_CONFIG] = only_agent}};
static void serve_hook(struct bus_client *c, const struct bus_rpc_request *r,
                       void *arg)
{
	(void)arg;
	de_serve(c, r, handlers, 2, NULL, &svc_access, &last_served);
}

struct got {
	int n, status, code;
	uint8_t data[512];
	size_t len;
};

static void got_cb(struct bus_client *c, int status,
                   const struct bus_rpc_result *r, void *arg)
{
	(void)c;
	struct got *g = arg;
	g->n++;
	g->status = status;
	g->code = r ? r->code : 0;
	g->len = r && r->len < sizeof(g->data) ? r->len : 0;
	if (g->len)
		memcpy(g->data, r->data, g->len);
}

static void test_serve_and_call(void **state)
{
	(void)state;
	struct memnet n;
	struct bus_core_config cfg = core_cfg();
	mn_init(&n, &cfg);
	int a = mn_client(&n, "daemoneye-agent", NULL);
	int s = mn_client(&n, "collector.process.p1", NULL);
	n.l[s].rpc_hook = serve_hook;
	struct bus_client *A = mn_cl(&n, a);
	struct de_policies pol;
	de_policies_defaults(&pol);

	Daemoneye__HealthCheckRequest q = DAEMONEYE__HEALTH_CHECK_REQUEST__INIT;
	q.collector_id = "p1";
	struct got g = {0};
	assert_int_equal(de_call(A, "collector.process.p1", "health.check",
	                         &q.base, &pol, got_cb, &g),
	                 0);
	mn_run(&n);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.status, 0);
	struct bus_rpc_result rr = {0, g.data, g.len, 1};
	Daemoneye__HealthCheckResponse *resp =
		(void *)de_reply_unpack("health.check", &rr);
	assert_non_null(resp);
	assert_string_equal(resp->message, "p1");
	assert_int_equal(resp->uptime_seconds, 7);
	bus_pb_free(&resp->base);
	assert_string_equal(last_served.method, "health.check");
	assert_int_equal(last_served.code, 0);

	/* the handler's own error code */
	q.collector_id = "broken";
	de_call(A, "collector.process.p1", "health.check", &q.base, &pol,
	        got_cb, &g);
	mn_run(&n);
	assert_int_equal(g.status, BUS_ERPC);
	assert_int_equal(g.code, BUS_RPC_ERR_NOT_FOUND);
	assert_memory_equal(g.data, "no broken", 9);

	/* a DaemonEye method this server does not serve, and a foreign one */
	Daemoneye__StartCollectorRequest sq = DAEMONEYE__START_COLLECTOR_REQUEST__INIT;
	de_call(A, "collector.process.p1", "lifecycle.start", &sq.base, &pol,
	        got_cb, &g);
	mn_run(&n);
	assert_int_equal(g.code, BUS_RPC_ERR_METHOD_NOT_FOUND);
	bus_client_rpc_call(A, "collector.process.p1", "nope", NULL, 0, NULL,
	                    got_cb, &g);
	mn_run(&n);
	assert_int_equal(g.code, BUS_RPC_ERR_METHOD_NOT_FOUND);

	/* malformed params: an error reply, never a crash or a success */
	bus_client_rpc_call(A, "collector.process.p1", "health.check",
	                    "\xff\xff\xff", 3, NULL, got_cb, &g);
	mn_run(&n);
	assert_int_equal(g.code, BUS_RPC_ERR_INVALID_PARAMS);
	assert_int_equal(last_served.code, BUS_RPC_ERR_INVALID_PARAMS);

	/* a newer schema's unknown field (number 99) is tolerated */
	uint8_t buf[64];
	q.collector_id = "p1";
	size_t len = protobuf_c_message_pack(&q.base, buf);
	buf[len++] = 0x98; /* tag of varint field 99: 99 << 3 = 792 */
	buf[len++] = 0x06;
	buf[len++] = 42;
	bus_client_rpc_call(A, "collector.process.p1", "health.check", buf, len,
	                    NULL, got_cb, &g);
	mn_run(&n);
	assert_int_equal(g.status, 0);

	/* a handler that answers nothing: reported as an internal error */
	Daemoneye__GetConfigRequest gq = DAEMONEYE__GET_CONFIG_REQUEST__INIT;
	de_call(A, "collector.process.p1", "config.get", &gq.base, &pol, got_cb,
	        &g);
	mn_run(&n);
	assert_int_equal(g.code, BUS_RPC_ERR_INTERNAL);

	/* wrong request type for the method, unknown method: refused */
	assert_int_equal(de_call(A, "x", "health.heartbeat", &q.base, &pol,
	                         got_cb, &g),
	                 BUS_EINVAL);
	assert_int_equal(de_call(A, "x", "health.nope", &q.base, &pol, got_cb,
	                         &g),
	                 BUS_EINVAL);

	/* the caller's name decides: a monitor may call health.*, not
	 * config.*; another name neither; refused before the params are
	 * decoded, and said so to the server (to audit) */
	int m = mn_client(&n, "monitor.one", NULL);
	int x = mn_client(&n, "tool.x", NULL);
	q.collector_id = "p1";
	de_call(mn_cl(&n, m), "collector.process.p1", "health.check", &q.base,
	        &pol, got_cb, &g);
	mn_run(&n);
	assert_int_equal(g.status, 0);
	assert_false(last_served.denied);
	de_call(mn_cl(&n, m), "collector.process.p1", "config.get", &gq.base,
	        &pol, got_cb, &g);
	mn_run(&n);
	assert_int_equal(g.code, BUS_RPC_ERR_ACCESS);
	assert_true(last_served.denied);
	assert_int_equal(last_served.code, BUS_RPC_ERR_ACCESS);
	assert_string_equal(last_served.message,
	                    "access denied: monitor.one may not call config.get");
	bus_client_rpc_call(mn_cl(&n, x), "collector.process.p1", "health.check",
	                    "\xff\xff", 2, NULL, got_cb, &g);
	mn_run(&n);
	assert_int_equal(g.code, BUS_RPC_ERR_ACCESS);
	/* a heartbeat to nobody fails (with its one retry), never succeeds */
	pol.heartbeat.timeout_ns = 20 * MS;
	Daemoneye__HeartbeatRequest hq = DAEMONEYE__HEARTBEAT_REQUEST__INIT;
	int before = g.n;
	de_call(A, "collector.process.gone", "health.heartbeat", &hq.base, &pol,
	        got_cb, &g);
	mn_advance(&n, 200 * MS);
	assert_int_equal(g.n, before + 1);
	assert_int_not_equal(g.status, 0);
	mn_free(&n);
}

/* ---- procmond's diff ------------------------------------------------------------ */
struct ev {
	enum de_event_type type;
	char topic[40];
	uint32_t pid;
	uint64_t start;
	char name[32];
	double cpu;
};
struct evs {
	struct ev v[32];
	int n;
};

static void collect(void *arg, enum de_event_type type, const char *topic,
                    const struct de_proc *p)
{
	struct evs *e = arg;
	assert_true(e->n < 32);
	struct ev *x = &e->v[e->n++];
	x->type = type;
	snprintf(x->topic, sizeof(x->topic), "%s", topic);
	x->pid = p->pid;
	x->start = p->start_ticks;
	snprintf(x->name, sizeof(x->name), "%s", p->name);
	x->cpu = p->cpu_usage;
}

static void add(struct de_snapshot *s, uint32_t pid, uint64_t start,
                const char *name, uint64_t ticks, const char *hash)
{
	struct de_proc p = {.pid = pid, .ppid = 1, .start_ticks = start,
	                    .cpu_ticks = ticks, .accessible = true,
	                    .file_exists = true, .name = (char *)name,
	                    .exe = "/bin/x", .cmdline = "x\0-y", .cmdline_len = 5};
	snprintf(p.hash, sizeof(p.hash), "%s", hash);
	assert_int_equal(de_snapshot_add(s, &p), 0);
}

static void expect(const struct ev *e, enum de_event_type t,
                   const char *topic, uint32_t pid, uint64_t start)
{
	assert_int_equal(e->type, t);
	assert_string_equal(e->topic, topic);
	assert_int_equal(e->pid, pid);
	assert_int_equal(e->start, start);
}

/* A process whose executable and command line cannot be read (a kernel
 * thread, another user's) is kept with empty strings, not pointers into
 * nothing. */
static void test_snapshot_without_exe(void **state)
{
	(void)state;
	struct de_snapshot s;
	de_snapshot_init(&s);
	struct de_proc p = {.pid = 2, .name = "kthreadd"};
	assert_int_equal(de_snapshot_add(&s, &p), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0].name, "kthreadd");
	assert_string_equal(s.v[0].exe, "");
	assert_int_equal(s.v[0].cmdline_len, 0);
	de_snapshot_free(&s);
}

static void test_procdiff(void **state)
{
	(void)state;
	struct de_procdiff d;
	de_procdiff_init(&d, 100);
	struct de_snapshot s;
	struct evs e = {0};

	/* cycle 1: everything is discovered, in pid order */
	de_snapshot_init(&s);
	s.taken_ns = 10 * S;
	add(&s, 10, 500, "a", 0, "");
	add(&s, 1, 1, "init", 0, "");
	de_procdiff_cycle(&d, &s, collect, &e);
	assert_int_equal(e.n, 2);
	expect(&e.v[0], DE_DISCOVERY, DE_TOPIC_ENUMERATION, 1, 1);
	expect(&e.v[1], DE_DISCOVERY, DE_TOPIC_ENUMERATION, 10, 500);
	assert_int_equal(s.n, 0); /* taken over */

	/* cycle 2: a renamed, b new with a hash; init used 50 ticks in 1 s */
	e.n = 0;
	s.taken_ns = 11 * S;
	add(&s, 1, 1, "init", 50, "");
	add(&s, 10, 500, "a2", 0, "");
	add(&s, 11, 900, "b", 0, "abc");
	de_procdiff_cycle(&d, &s, collect, &e);
	assert_int_equal(e.n, 3);
	expect(&e.v[0], DE_UPDATE, DE_TOPIC_METADATA, 10, 500);
	assert_string_equal(e.v[0].name, "a2");
	expect(&e.v[1], DE_DISCOVERY, DE_TOPIC_LIFECYCLE, 11, 900);
	expect(&e.v[2], DE_UPDATE, DE_TOPIC_HASH, 11, 900);
	assert_int_equal(d.prev.v[0].pid, 1);
	assert_true(d.prev.v[0].cpu_usage > 49.9 && d.prev.v[0].cpu_usage < 50.1);

	/* cycle 3: a gone; pid 11 reused (new start): termination first */
	e.n = 0;
	s.taken_ns = 12 * S;
	add(&s, 11, 1200, "c", 0, "abc");
	add(&s, 1, 1, "init", 50, "");
	de_procdiff_cycle(&d, &s, collect, &e);
	assert_int_equal(e.n, 4);
	expect(&e.v[0], DE_TERMINATION, DE_TOPIC_LIFECYCLE, 10, 500);
	assert_string_equal(e.v[0].name, "a2"); /* as last seen */
	expect(&e.v[1], DE_TERMINATION, DE_TOPIC_LIFECYCLE, 11, 900);
	expect(&e.v[2], DE_DISCOVERY, DE_TOPIC_LIFECYCLE, 11, 1200);
	expect(&e.v[3], DE_UPDATE, DE_TOPIC_HASH, 11, 1200);

	/* cycle 4: nothing changed: no events; a hash that changes is one */
	e.n = 0;
	s.taken_ns = 13 * S;
	add(&s, 11, 1200, "c", 0, "abd");
	add(&s, 1, 1, "init", 50, "");
	de_procdiff_cycle(&d, &s, collect, &e);
	assert_int_equal(e.n, 1);
	expect(&e.v[0], DE_UPDATE, DE_TOPIC_HASH, 11, 1200);
	assert_int_equal(d.cycles, 4);

	/* cycle 5: a new parent (pid 30) of a new child with a lower pid (20,
	 * after a pid wrap): the parent is announced first */
	e.n = 0;
	s.taken_ns = 14 * S;
	add(&s, 11, 1200, "c", 0, "abd");
	add(&s, 1, 1, "init", 50, "");
	add(&s, 20, 1300, "child", 0, "");
	add(&s, 30, 1250, "parent", 0, "");
	s.v[2].ppid = 30;
	de_procdiff_cycle(&d, &s, collect, &e);
	assert_int_equal(e.n, 2);
	expect(&e.v[0], DE_DISCOVERY, DE_TOPIC_LIFECYCLE, 30, 1250);
	expect(&e.v[1], DE_DISCOVERY, DE_TOPIC_LIFECYCLE, 20, 1300);
	de_procdiff_free(&d);
}

static void test_event_pack(void **state)
{
	(void)state;
	struct de_event_source src = {"collector.process.p1", 77, 0, 0};
	struct de_proc p = {.pid = 42, .ppid = 7, .uid = 1000,
	                    .start_time_ms = 1234, .memory_bytes = 4096,
	                    .accessible = true, .file_exists = true,
	                    .name = "sleep", .exe = "/usr/bin/sleep",
	                    .cmdline = "sleep\0" "30", .cmdline_len = 9,
	                    .hash = "ab"};
	size_t len;
	uint8_t *b = de_event_pack(&src, DE_TOPIC_LIFECYCLE, DE_DISCOVERY, &p, 3,
	                           999, &len);
	assert_non_null(b);
	free(b);
	b = de_event_pack(&src, DE_TOPIC_LIFECYCLE, DE_TERMINATION, &p, 3, 999,
	                  &len);
	assert_non_null(b);
	Daemoneye__BusrtEvent *ev = (void *)bus_pb_unpack(
		&daemoneye__busrt_event__descriptor, b, len, BUS_PB_BUDGET_DEFAULT);
	free(b);
	assert_non_null(ev);
	assert_int_equal(ev->sequence, 2);
	assert_int_equal(ev->incarnation, 77);
	assert_int_equal(ev->schema_version, DE_SCHEMA_VERSION);
	assert_string_equal(ev->event_id, "collector.process.p1/77/2");
	assert_string_equal(ev->source_collector, "collector.process.p1");
	assert_string_equal(ev->topic, DE_TOPIC_LIFECYCLE);
	assert_int_equal(ev->payload_case,
	                 DAEMONEYE__BUSRT_EVENT__PAYLOAD_PROCESS_EVENT);
	Daemoneye__ProcessEvent *pe = ev->process_event;
	assert_int_equal(pe->event_type, DE_TERMINATION);
	assert_string_equal(pe->collection_cycle_id, "cycle-3");
	assert_int_equal(pe->process->pid, 42);
	assert_int_equal(pe->process->ppid, 7);
	assert_string_equal(pe->process->name, "sleep");
	assert_string_equal(pe->process->executable_path, "/usr/bin/sleep");
	assert_int_equal(pe->process->n_command_line, 2);
	assert_string_equal(pe->process->command_line[1], "30");
	assert_string_equal(pe->process->hash_algorithm, "sha256");
	bus_pb_free(&ev->base);
}

/* A process whose name, path and arguments are not UTF-8 still makes an
 * event our validating decoder (and any conforming one) accepts: the
 * strings escaped, the exact bytes beside them; UTF-8 ones carry none. */
static void test_event_pack_bytes_that_are_not_utf8(void **state)
{
	(void)state;
	struct de_event_source src = {"collector.process.p1", 77, 0, 0};
	struct de_proc p = {.pid = 42, .accessible = true, .file_exists = true,
	                    .name = "a\xff", .exe = "/x/\xc3\x28",
	                    .cmdline = "ok\0" "\xfe\\", .cmdline_len = 6};
	size_t len;
	uint8_t *b = de_event_pack(&src, DE_TOPIC_LIFECYCLE, DE_DISCOVERY, &p, 1,
	                           999, &len);
	assert_non_null(b);
	Daemoneye__BusrtEvent *ev = (void *)bus_pb_unpack(
		&daemoneye__busrt_event__descriptor, b, len, BUS_PB_BUDGET_DEFAULT);
	free(b);
	assert_non_null(ev);
	Daemoneye__ProcessRecord *r = ev->process_event->process;
	assert_string_equal(r->name, "a\\xff");
	assert_int_equal(r->name_raw.len, 2);
	assert_memory_equal(r->name_raw.data, "a\xff", 2);
	assert_string_equal(r->executable_path, "/x/\\xc3(");
	assert_int_equal(r->executable_path_raw.len, 5);
	assert_int_equal(r->n_command_line, 2);
	assert_string_equal(r->command_line[0], "ok");
	assert_string_equal(r->command_line[1], "\\xfe\\\\");
	assert_int_equal(r->n_command_line_raw, 2);
	assert_int_equal(r->command_line_raw[1].len, 2);
	assert_memory_equal(r->command_line_raw[1].data, "\xfe\\", 2);
	bus_pb_free(&ev->base);
	p.name = "fine";
	p.exe = "/usr/bin/fine";
	p.cmdline = "fine";
	p.cmdline_len = 5;
	b = de_event_pack(&src, DE_TOPIC_LIFECYCLE, DE_DISCOVERY, &p, 1, 999,
	                  &len);
	ev = (void *)bus_pb_unpack(&daemoneye__busrt_event__descriptor, b, len,
	                           BUS_PB_BUDGET_DEFAULT);
	free(b);
	r = ev->process_event->process;
	assert_int_equal(r->name_raw.len, 0);
	assert_int_equal(r->executable_path_raw.len, 0);
	assert_int_equal(r->n_command_line_raw, 0);
	bus_pb_free(&ev->base);
}

/* ---- the /proc reader, on a fabricated tree ----------------------------------- */
static void put(const char *dir, const char *name, const char *text, size_t n)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fwrite(text, 1, n, f);
	fclose(f);
}

/* root/name as a process directory (d, its path), with this stat file
 * unless stat is NULL. */
static void proc_dir(char *d, size_t n, const char *root, const char *name,
                     const char *stat)
{
	snprintf(d, n, "%s/%s", root, name);
	mkdir(d, 0700);
	if (stat)
		put(d, "stat", stat, strlen(stat));
}

static void test_procfs_fabricated(void **state)
{
	(void)state;
	char root[] = "/tmp/pfXXXXXX";
	assert_non_null(mkdtemp(root));
	char d[300];
	struct de_procfs f;
	char err[200];
	/* no stat file: a clear error */
	assert_int_equal(de_procfs_init(&f, root, false, err, sizeof(err)),
	                 BUS_EIO);
	assert_non_null(strstr(err, "/stat"));
	static const char st[] = "cpu 1 2 3\nbtime 1700000000\nprocesses 5\n";
	put(root, "stat", st, sizeof(st) - 1);
	assert_int_equal(de_procfs_init(&f, root, true, err, sizeof(err)), 0);
	/* pid 123: a name with ") (" inside; no exe link: a kernel thread
	 * (flags 0x200100: PF_KTHREAD) */
	proc_dir(d, sizeof(d), root, "123",
	         "123 (we ird) (x) S 7 123 123 0 -1 2097408 0 0 0 0 "
	         "30 20 0 0 20 0 1 0 250 1000 3 18446744073709551615\n");
	put(d, "cmdline", "a\0b\0", 4);
	/* pid 126: a user process without its exe link: exiting, left out */
	proc_dir(d, sizeof(d), root, "126",
	         "126 (sleep) R 7 126 126 0 -1 4194560 0 0 0 0 "
	         "30 20 0 0 20 0 1 0 250 1000 3 18446744073709551615\n");
	/* pid 127: flagged PF_EXITING (0x4): left out */
	proc_dir(d, sizeof(d), root, "127",
	         "127 (sh) S 7 127 127 0 -1 4194564 0 0 0 0 "
	         "30 20 0 0 20 0 1 0 250 1000 3 18446744073709551615\n");
	/* pid 124: its directory exists but it vanished (no stat) */
	proc_dir(d, sizeof(d), root, "124", NULL);
	/* pid 125: a garbage stat */
	proc_dir(d, sizeof(d), root, "125", "garbage");
	/* not a pid */
	proc_dir(d, sizeof(d), root, "self", NULL);

	struct de_snapshot s;
	de_snapshot_init(&s);
	assert_int_equal(de_procfs_read(&f, &s, 0), 0);
	assert_int_equal(s.n, 1);
	struct de_proc *p = &s.v[0];
	assert_int_equal(p->pid, 123);
	assert_string_equal(p->name, "we ird) (x");
	assert_int_equal(p->ppid, 7);
	assert_int_equal(p->cpu_ticks, 50);
	assert_int_equal(p->start_ticks, 250);
	assert_int_equal(p->start_time_ms,
	                 1700000000000ll + 250 * 1000 / f.ticks_per_s);
	assert_int_equal(p->memory_bytes, 3 * f.page_bytes);
	assert_int_equal(p->cmdline_len, 4);
	assert_string_equal(p->exe, "");
	assert_false(p->file_exists);
	assert_true(p->accessible);
	assert_int_equal(f.vanished, 4);
	de_snapshot_free(&s);
	de_procfs_free(&f);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
}

/* More executables than the hash cache holds (DE_HASH_CACHE_SLOTS / 2
 * entries, then it starts over): every hash is still right, on the pass
 * that fills it and on the next one. */
static void test_procfs_hash_cache_overflow(void **state)
{
	(void)state;
	char root[] = "/tmp/pcXXXXXX";
	assert_non_null(mkdtemp(root));
	static const char st[] = "cpu 1 2 3\nbtime 1700000000\nprocesses 5\n";
	put(root, "stat", st, sizeof(st) - 1);
	char files[300], d[300], path[400], text[64];
	snprintf(files, sizeof(files), "%s/files", root);
	mkdir(files, 0700);
	enum { N = DE_HASH_CACHE_SLOTS / 2 + 60 };
	for (int i = 0; i < N; i++) {
		int pid = 1000 + i;
		snprintf(text, sizeof(text), "executable %d", i);
		snprintf(path, sizeof(path), "e%d", i);
		put(files, path, text, strlen(text));
		char stat[200], name[16];
		snprintf(name, sizeof(name), "%d", pid);
		snprintf(stat, sizeof(stat),
		         "%d (p%d) S 1 %d %d 0 -1 4194560 0 0 0 0 30 20 0 0 20 0 "
		         "1 0 250 1000 3 18446744073709551615\n", pid, i, pid, pid);
		proc_dir(d, sizeof(d), root, name, stat);
		put(d, "cmdline", "x\0", 2);
		snprintf(path, sizeof(path), "%s/exe", d);
		char target[400];
		snprintf(target, sizeof(target), "%s/e%d", files, i);
		assert_int_equal(symlink(target, path), 0);
	}
	struct de_procfs f;
	char err[200];
	assert_int_equal(de_procfs_init(&f, root, true, err, sizeof(err)), 0);
	for (int pass = 0; pass < 2; pass++) {
		struct de_snapshot s;
		de_snapshot_init(&s);
		assert_int_equal(de_procfs_read(&f, &s, 0), 0);
		assert_int_equal(s.n, N);
		for (size_t k = 0; k < s.n; k++) {
			const struct de_proc *p = &s.v[k];
			int fd = open(p->exe, O_RDONLY);
			assert_true(fd >= 0);
			char hex[65];
			assert_int_equal(de_sha256_fd(fd, hex), 0);
			close(fd);
			assert_string_equal(p->hash, hex);
		}
		de_snapshot_free(&s);
	}
	assert_true(f.hashed >= N); /* the first pass hashed every one */
	de_procfs_free(&f);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* A read the kernel interrupts (EINTR: a signal without SA_RESTART, as
 * procmond's libuv handlers may leave it) is read again, not a failure:
 * a pipe whose writer waits past a timer's signal. */
static void test_sha256_read_interrupted(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART */
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		usleep(300000);
		_exit(write(p[1], "abc", 3) == 3 ? 0 : 1);
	}
	close(p[1]);
	struct itimerval t = {{0, 0}, {0, 50000}}; /* one signal at 50 ms */
	assert_int_equal(setitimer(ITIMER_REAL, &t, NULL), 0);
	char hex[65];
	int rc = de_sha256_fd(p[0], hex);
	close(p[0]);
	int status;
	waitpid(pid, &status, 0);
	sigaction(SIGALRM, &old, NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
	                         "b00361a396177a9cb410ff61f20015ad");
}

static void test_procfs_self(void **state)
{
	(void)state;
	struct de_procfs f;
	char err[200];
	assert_int_equal(de_procfs_init(&f, NULL, true, err, sizeof(err)), 0);
	struct de_snapshot s;
	de_snapshot_init(&s);
	assert_int_equal(de_procfs_read(&f, &s, 0), 0);
	const struct de_proc *me = NULL;
	for (size_t i = 0; i < s.n; i++)
		if (s.v[i].pid == (uint32_t)getpid())
			me = &s.v[i];
	assert_non_null(me);
	assert_int_equal(me->ppid, (uint32_t)getppid());
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = 0;
	assert_string_equal(me->exe, exe);
	assert_true(me->file_exists);
	char hex[65];
	int fd = open(exe, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(de_sha256_fd(fd, hex), 0);
	close(fd);
	assert_string_equal(me->hash, hex);
	/* a second read hashes nothing it hashed before: the cache answers;
	 * at most the processes that started since are hashed (a machine
	 * under load starts many) */
	uint64_t hashed = f.hashed;
	size_t n1 = s.n;
	uint32_t *pids1 = calloc(n1 ? n1 : 1, sizeof(*pids1));
	assert_non_null(pids1);
	for (size_t i = 0; i < n1; i++)
		pids1[i] = s.v[i].pid;
	de_snapshot_free(&s);
	assert_int_equal(de_procfs_read(&f, &s, 0), 0);
	size_t fresh = 0;
	for (size_t i = 0; i < s.n; i++) {
		bool old = false;
		for (size_t k = 0; k < n1 && !old; k++)
			old = pids1[k] == s.v[i].pid;
		fresh += !old;
	}
	free(pids1);
	assert_true(f.hashed <= hashed + fresh);
	assert_true(f.hash_hits > 0);
	de_snapshot_free(&s);
	/* the limit on processes per table */
	assert_int_equal(de_procfs_read(&f, &s, 1), 0);
	assert_int_equal(s.n, 1);
	de_snapshot_free(&s);
	de_procfs_free(&f);
	/* the known digest of "abc" */
	FILE *t = tmpfile();
	fputs("abc", t);
	fflush(t);
	rewind(t);
	assert_int_equal(de_sha256_fd(fileno(t), hex), 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
	                         "b00361a396177a9cb410ff61f20015ad");
	fclose(t);
}

/* ---- supervision ------------------------------------------------------------------ */
struct sup_log {
	char lines[64][96];
	int n;
	uint32_t next_pid;
	int spawn_fail;
	uint64_t hb_seq;
	int hb_calls;
	uint64_t hc_seq;
	int hc_calls;
};

static void sl(struct sup_log *l, const char *fmt, ...)
{
	assert_true(l->n < 64);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l->lines[l->n++], sizeof(l->lines[0]), fmt, ap);
	va_end(ap);
}

static int o_spawn(void *host, size_t idx, uint32_t *pid, char *why,
                   size_t whylen)
{
	struct sup_log *l = host;
	if (l->spawn_fail) {
		l->spawn_fail--;
		sl(l, "spawn %zu failed", idx);
		snprintf(why, whylen, "/no/such/collector: no such file or directory");
		return BUS_EIO;
	}
	*pid = l->next_pid++;
	sl(l, "spawn %zu %u", idx, *pid);
	return 0;
}

static void o_kill(void *host, size_t idx, uint32_t pid, bool hard)
{
	sl(host, "kill %zu %u %s", idx, pid, hard ? "KILL" : "TERM");
}

static void o_hb(void *host, size_t idx, uint64_t seq)
{
	struct sup_log *l = host;
	l->hb_seq = seq;
	l->hb_calls++;
	(void)idx;
}

static void o_event(void *host, size_t idx, const char *what,
                    const char *detail)
{
	sl(host, "event %zu %s %s", idx, what, detail);
}

static void o_hc(void *host, size_t idx, uint64_t seq)
{
	struct sup_log *l = host;
	l->hc_seq = seq;
	l->hc_calls++;
	(void)idx;
}

static const char *lastl(struct sup_log *l)
{
	return l->n ? l->lines[l->n - 1] : "";
}

/* A collector id is one name level: letters, digits, '-' and '_', each
 * range to its ends; the characters beside each range are refused. */
static void test_sup_ids(void **state)
{
	(void)state;
	static const char *const ok[] = {"a", "z", "A", "Z", "0", "9", "-", "_",
	                                 "aZ09-_"};
	static const char *const bad[] = {"`", "{", "@", "[", "/", ":", "a.b",
	                                  "+", "#", "*", "a b", ""};
	struct de_policies p;
	de_policies_defaults(&p);
	struct sup_log l = {.next_pid = 100};
	struct de_sup_ops ops = {.spawn = o_spawn, .kill = o_kill, .heartbeat = o_hb};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct de_sup s;
		de_sup_init(&s, &p, &ops, &l);
		assert_int_equal(de_sup_add(&s, ok[i], "process"), 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct de_sup s;
		de_sup_init(&s, &p, &ops, &l);
		assert_int_equal(de_sup_add(&s, bad[i], "process"), BUS_EINVAL);
	}
}

static void test_supervision(void **state)
{
	(void)state;
	struct de_policies p;
	de_policies_defaults(&p);
	p.heartbeat_interval_ns = 100 * MS;
	p.restart_delay_ns = 50 * MS;
	p.restart_delay_max_ns = 120 * MS;
	p.stop_timeout_ns = 300 * MS;
	struct sup_log l = {.next_pid = 100};
	struct de_sup_ops ops = {.spawn = o_spawn, .kill = o_kill, .heartbeat = o_hb};
	struct de_sup s;
	de_sup_init(&s, &p, &ops, &l);
	assert_int_equal(de_sup_add(&s, "p1", "process"), 0);
	assert_int_equal(de_sup_add(&s, "p1", "process"), BUS_EINVAL);
	assert_int_equal(de_sup_add(&s, "a.b", "process"), BUS_EINVAL);
	assert_int_equal(de_sup_add(&s, "p2", ""), BUS_EINVAL);
	assert_string_equal(s.c[0].bus_name, "collector.process.p1");
	assert_int_equal(de_sup_next_deadline(&s), UINT64_MAX);

	uint64_t t = 1 * S;
	de_sup_start(&s, 0, t);
	assert_string_equal(lastl(&l), "spawn 0 100");
	assert_int_equal(s.c[0].state, DE_SUP_STARTING);
	assert_int_equal(de_sup_find_pid(&s, 100), 0);
	assert_int_equal(de_sup_find_pid(&s, 4242), -1); /* the contract: -1 */
	assert_int_equal(de_sup_find(&s, "nobody"), -1);
	de_sup_start(&s, 0, t); /* idempotent */
	assert_int_equal(l.n, 1);
	/* first heartbeat one interval after the spawn */
	assert_int_equal(de_sup_next_deadline(&s), t + 100 * MS);
	t += 100 * MS;
	de_sup_tick(&s, t);
	assert_int_equal(l.hb_calls, 1);
	de_sup_on_heartbeat(&s, 0, l.hb_seq + 5, true, t); /* stale: ignored */
	assert_int_equal(s.c[0].state, DE_SUP_STARTING);
	de_sup_on_heartbeat(&s, 0, l.hb_seq, true, t);
	assert_int_equal(s.c[0].state, DE_SUP_RUNNING);

	/* it dies: restarted after the delay */
	de_sup_on_exit(&s, 0, "killed by signal 9", t);
	assert_int_equal(s.c[0].state, DE_SUP_FAILED);
	assert_int_equal(s.c[0].pid, 0); /* no pid of a process that is gone */
	assert_int_equal(de_sup_find_pid(&s, 100), -1);
	assert_int_equal(s.c[0].restarts, 1);
	assert_int_equal(de_sup_next_deadline(&s), t + 50 * MS);
	de_sup_tick(&s, t + 49 * MS);
	assert_int_equal(s.c[0].state, DE_SUP_FAILED);
	t += 50 * MS;
	de_sup_tick(&s, t);
	assert_string_equal(lastl(&l), "spawn 0 101");

	/* it stops answering: dead after 3 failed heartbeats, SIGKILL */
	for (int k = 0; k < 3; k++) {
		t += 100 * MS;
		de_sup_tick(&s, t);
		de_sup_on_heartbeat(&s, 0, l.hb_seq, false, t);
	}
	assert_string_equal(lastl(&l), "kill 0 101 KILL");
	assert_int_equal(s.c[0].state, DE_SUP_STOPPING);
	de_sup_on_exit(&s, 0, "killed by signal 9", t);
	/* second death in a row (no heartbeat answered): doubled delay,
	 * capped at 120 ms */
	assert_int_equal(s.c[0].state, DE_SUP_FAILED);
	assert_int_equal(de_sup_next_deadline(&s), t + 100 * MS);
	t += 100 * MS;
	de_sup_tick(&s, t);
	assert_string_equal(lastl(&l), "spawn 0 102");

	/* stop: SIGTERM, SIGKILL after the stop timeout, then stopped */
	de_sup_stop(&s, 0, false, t);
	assert_string_equal(lastl(&l), "kill 0 102 TERM");
	t += 300 * MS;
	de_sup_tick(&s, t);
	assert_string_equal(lastl(&l), "kill 0 102 KILL");
	de_sup_on_exit(&s, 0, "killed by signal 9", t);
	assert_int_equal(s.c[0].state, DE_SUP_STOPPED);
	assert_int_equal(de_sup_next_deadline(&s), UINT64_MAX);

	/* shutdown asked on the bus: no signal; gone on its own: stopped */
	de_sup_start(&s, 0, t);
	assert_string_equal(lastl(&l), "spawn 0 103");
	size_t lines = l.n;
	de_sup_shutdown(&s, 0, t);
	assert_int_equal(l.n, lines);
	assert_int_equal(s.c[0].state, DE_SUP_STOPPING);
	assert_int_equal(de_sup_next_deadline(&s), t + 150 * MS);
	de_sup_tick(&s, t + 149 * MS);
	assert_int_equal(l.n, lines); /* no heartbeat, no signal yet */
	de_sup_on_exit(&s, 0, "exited with status 0", t + 149 * MS);
	assert_int_equal(s.c[0].state, DE_SUP_STOPPED);
	assert_int_equal(de_sup_next_deadline(&s), UINT64_MAX);
	/* deaf to it: SIGTERM at half the stop timeout, SIGKILL at it */
	de_sup_start(&s, 0, t);
	assert_string_equal(lastl(&l), "spawn 0 104");
	de_sup_shutdown(&s, 0, t);
	de_sup_tick(&s, t + 150 * MS);
	assert_string_equal(lastl(&l), "kill 0 104 TERM");
	assert_int_equal(de_sup_next_deadline(&s), t + 300 * MS);
	de_sup_tick(&s, t + 300 * MS);
	assert_string_equal(lastl(&l), "kill 0 104 KILL");
	de_sup_on_exit(&s, 0, "killed by signal 9", t + 300 * MS);
	assert_int_equal(s.c[0].state, DE_SUP_STOPPED);
	l.next_pid = 103;

	/* restart of a stopped collector starts it; of a running one, stop
	 * then start at once when it exits */
	de_sup_restart(&s, 0, t);
	assert_string_equal(lastl(&l), "spawn 0 103");
	de_sup_restart(&s, 0, t);
	assert_string_equal(lastl(&l), "kill 0 103 TERM");
	de_sup_on_exit(&s, 0, "exited with status 0", t);
	assert_string_equal(lastl(&l), "spawn 0 104");

	/* a spawn that fails is retried with the backoff */
	de_sup_stop(&s, 0, true, t);
	de_sup_on_exit(&s, 0, "killed by signal 9", t);
	l.spawn_fail = 1;
	de_sup_start(&s, 0, t);
	assert_string_equal(lastl(&l), "spawn 0 failed");
	assert_int_equal(s.c[0].state, DE_SUP_FAILED);
	/* the host's reason, not the code's */
	assert_string_equal(s.c[0].last_error,
	                    "/no/such/collector: no such file or directory");
	de_sup_tick(&s, t + 120 * MS);
	assert_string_equal(lastl(&l), "spawn 0 105");
	/* stop while failed cancels the restart */
	de_sup_on_exit(&s, 0, "exited with status 1", t + 120 * MS);
	de_sup_stop(&s, 0, false, t + 120 * MS);
	assert_int_equal(s.c[0].state, DE_SUP_STOPPED);
	assert_string_equal(de_sup_state_name(DE_SUP_FAILED), "failed");
}

/* health.check: asked once a collector runs (its first heartbeat
 * answered), then every interval; stale answers ignored; an answer is
 * kept, never a reason to kill; interval 0: only the first. */
static void test_supervision_health_checks(void **state)
{
	(void)state;
	struct de_policies p;
	de_policies_defaults(&p);
	p.heartbeat_interval_ns = 100 * MS;
	p.health_check_interval_ns = 1 * S;
	struct sup_log l = {.next_pid = 100};
	struct de_sup_ops ops = {.spawn = o_spawn, .kill = o_kill,
	                         .heartbeat = o_hb, .health_check = o_hc,
	                         .event = o_event};
	struct de_sup s;
	de_sup_init(&s, &p, &ops, &l);
	assert_int_equal(de_sup_add(&s, "p1", "process"), 0);
	uint64_t t = 1 * S;
	de_sup_start(&s, 0, t);
	t += 100 * MS;
	de_sup_tick(&s, t);
	assert_int_equal(l.hc_calls, 0); /* not running yet */
	de_sup_on_heartbeat(&s, 0, l.hb_seq, true, t);
	assert_int_equal(s.c[0].health, -1);
	assert_int_equal(de_sup_next_deadline(&s), t); /* due at once */
	de_sup_tick(&s, t);
	assert_int_equal(l.hc_calls, 1);
	de_sup_tick(&s, t); /* one in flight at a time */
	assert_int_equal(l.hc_calls, 1);
	de_sup_on_health_check(&s, 0, l.hc_seq + 1, 0, t); /* stale */
	assert_int_equal(s.c[0].health, -1);
	de_sup_on_health_check(&s, 0, l.hc_seq, 1, t); /* degraded */
	assert_int_equal(s.c[0].health, 1);
	assert_string_equal(lastl(&l), "event 0 health degraded");
	assert_int_equal(s.c[0].state, DE_SUP_RUNNING); /* not a death */
	/* the next one an interval later, whatever the heartbeats do */
	assert_int_equal(de_sup_next_deadline(&s), t + 100 * MS);
	for (int k = 0; k < 9; k++) {
		t += 100 * MS;
		de_sup_tick(&s, t);
		de_sup_on_heartbeat(&s, 0, l.hb_seq, true, t);
	}
	assert_int_equal(l.hc_calls, 1);
	t += 100 * MS;
	de_sup_tick(&s, t);
	assert_int_equal(l.hc_calls, 2);
	/* unanswered: kept as -1, and not asked again before the interval
	 * (a host whose call fails at once must not spin) */
	de_sup_on_health_check(&s, 0, l.hc_seq, -1, t);
	assert_int_equal(s.c[0].health, -1);
	de_sup_tick(&s, t);
	assert_int_equal(l.hc_calls, 2);
	/* a restart asks again once the new process runs */
	de_sup_on_exit(&s, 0, "killed by signal 9", t);
	de_sup_tick(&s, t + p.restart_delay_ns);
	t += p.restart_delay_ns + 100 * MS;
	de_sup_tick(&s, t);
	de_sup_on_heartbeat(&s, 0, l.hb_seq, true, t);
	de_sup_tick(&s, t);
	assert_int_equal(l.hc_calls, 3);
	/* interval 0: no check after the one already scheduled */
	s.policies.health_check_interval_ns = 0;
	de_sup_on_health_check(&s, 0, l.hc_seq, 0, t);
	assert_int_equal(s.c[0].health, 0);
	assert_string_equal(lastl(&l), "event 0 health healthy");
	for (int k = 0; k < 10; k++) {
		t += 100 * MS;
		de_sup_tick(&s, t);
		de_sup_on_heartbeat(&s, 0, l.hb_seq, true, t);
	}
	assert_int_equal(l.hc_calls, 4); /* scheduled an interval before */
	de_sup_on_health_check(&s, 0, l.hc_seq, 0, t);
	for (int k = 0; k < 50; k++) {
		t += 100 * MS;
		de_sup_tick(&s, t);
		de_sup_on_heartbeat(&s, 0, l.hb_seq, true, t);
	}
	assert_int_equal(l.hc_calls, 4);
}

/* Every problem of a configuration is named, in order, each once. */
static void test_collector_validate_names_each_problem(void **state)
{
	(void)state;
	Daemoneye__CollectorConfig cfg = DAEMONEYE__COLLECTOR_CONFIG__INIT;
	struct de_config_error errs[DE_CONFIG_ERRORS_MAX];
	cfg.scan_interval_ms = 1000;
	assert_int_equal(de_collector_validate(&cfg, errs), 0);
	Daemoneye__CollectorConfig__SettingsEntry e1 =
	    DAEMONEYE__COLLECTOR_CONFIG__SETTINGS_ENTRY__INIT;
	Daemoneye__CollectorConfig__SettingsEntry e2 = e1;
	e1.key = "colour";
	e2.key = "flavour";
	Daemoneye__CollectorConfig__SettingsEntry *es[] = {&e1, &e2};
	cfg.collector_type = "network";
	cfg.scan_interval_ms = 5;
	cfg.max_processes = 4194305;
	cfg.n_settings = 2;
	cfg.settings = es;
	assert_int_equal(de_collector_validate(&cfg, errs), 5);
	assert_string_equal(errs[0].field, "collector_type");
	assert_string_equal(errs[1].field, "scan_interval_ms");
	assert_string_equal(errs[1].message, "must be 10 to 3600000, not 5");
	assert_string_equal(errs[2].field, "max_processes");
	assert_string_equal(errs[3].field, "settings");
	assert_string_equal(errs[3].message, "unknown setting \"colour\"");
	assert_string_equal(errs[4].message, "unknown setting \"flavour\"");
	cfg.scan_interval_ms = 3600001;
	cfg.collector_type = "process";
	cfg.max_processes = 4194304;
	cfg.n_settings = 0;
	assert_int_equal(de_collector_validate(&cfg, errs), 1);
	cfg.scan_interval_ms = 10;
	assert_int_equal(de_collector_validate(&cfg, errs), 0);
	assert_int_equal(de_collector_validate(NULL, errs), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_methods_and_policies),
		cmocka_unit_test(test_serve_and_call),
		cmocka_unit_test(test_collector_validate_names_each_problem),
		cmocka_unit_test(test_snapshot_without_exe),
		cmocka_unit_test(test_procdiff),
		cmocka_unit_test(test_event_pack),
		cmocka_unit_test(test_event_pack_bytes_that_are_not_utf8),
		cmocka_unit_test(test_procfs_fabricated),
		cmocka_unit_test(test_procfs_hash_cache_overflow),
		cmocka_unit_test(test_sha256_read_interrupted),
		cmocka_unit_test(test_procfs_self),
		cmocka_unit_test(test_sup_ids),
		cmocka_unit_test(test_supervision),
		cmocka_unit_test(test_supervision_health_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
