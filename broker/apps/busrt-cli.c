/* SPDX-License-Identifier: Apache-2.0 */
/*
 * busrt-cli — talk to a BUS/RT broker from a shell.
 *
 *   busrt-cli [-s PATH|HOST:PORT | PATH|HOST:PORT] [-n NAME] [--timeout SEC]
 *             [--json] COMMAND
 *     listen [MASK...] [-t MASK]... [--exclude MASK]...
 *                                    [--count N] [--seconds S] [--reconnect]
 *     publish TOPIC [DATA]           [--qos N]
 *     send TARGET [DATA]             [--qos N] (a TARGET with * or ?:
 *                                    broadcast, as BUS/RT's)
 *     broadcast MASK [DATA]          [--qos N]
 *     rpc call TARGET METHOD [key=value ...] | --raw DATA | -
 *     rpc call0 TARGET METHOD [key=value ...] (no reply: BUS/RT's call0)
 *     rpc notify TARGET [DATA]
 *     rpc listen [MASK...] [-t MASK]... (print calls, answer them empty)
 *     broker test|info|stats|clients|client.list|topics|diagnostics
 *                                    [--prometheus: stats as Prometheus text]
 *     benchmark [-w WORKERS] [--payload-size N] [-i ITERS]
 *
 * The address may come first, without -s, as BUS/RT's CLI takes it.
 *
 * --proto: DaemonEye payloads are protobuf (proto/daemoneye.proto): listen
 * prints events as JSON; rpc call builds the method's request from
 * key=value (sub.field=value for nested fields) and prints the reply as
 * JSON.
 *
 * DATA is a literal, @FILE, or - for stdin; missing, it is read from
 * stdin (as BUS/RT's CLI does). RPC params are packed as a
 * MessagePack map (true/false, integers, floats, else strings), as BUS/RT's
 * CLI does. Exit status: 0 done, 1 the operation or connection failed,
 * 2 bad arguments or an unreadable DATA file.
 */
#define _DEFAULT_SOURCE
#include "bus/config.h"
#include "bus/daemoneye.h"
#include "bus/json.h"
#include "bus/net.h"
#include "bus/prom.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: busrt-cli [-s PATH|HOST:PORT | PATH|HOST:PORT] [-n NAME] "
	        "[--timeout SEC] [--json]\n"
	        "                 [--broker-uid UID] [--tls-ca FILE] [--tls-cert FILE "
	        "--tls-key FILE]\n"
	        "                 [--silent] [-v] [--buf-size BYTES] COMMAND\n"
	        "  listen [MASK...] [-t MASK]... [--exclude MASK]... [--count N] "
	        "[--seconds S] [--reconnect]\n"
	        "  publish TOPIC [DATA] [--qos N]\n"
	        "  send TARGET [DATA] [--qos N]   (TARGET with * or ?: a "
	        "broadcast)\n"
	        "  broadcast MASK [DATA] [--qos N]\n"
	        "  rpc call TARGET METHOD [key=value ...|-]   (--raw DATA: bytes "
	        "as params)\n"
	        "  rpc call0 TARGET METHOD [key=value ...|-]  (no reply wanted)\n"
	        "  rpc notify TARGET [DATA]\n"
	        "  rpc listen [MASK...] [-t MASK]...   (prints calls and "
	        "notifications, answers calls empty)\n"
	        "  broker test|info|stats|clients|client.list|topics|diagnostics "
	        "(stats --prometheus: the\n"
	        "    Prometheus text of the broker's /metrics endpoint)\n"
	        "  benchmark [-w WORKERS] [--payload-size BYTES] [-i ITERS]\n"
	        "--proto: DaemonEye protobuf payloads (events, RPC params and "
	        "replies)\n"
	        "DATA: a literal, @FILE, or - for stdin; missing: stdin. Default "
	        "socket: %s\n"
	        "--broker-uid: the broker must run as UID (default: root or "
	        "our own uid)\n"
	        "-s tls://HOST:PORT: TLS, the broker verified against --tls-ca "
	        "(default: the system's CAs);\n"
	        "  --tls-cert/--tls-key: our client certificate\n"
	        "-h, --help: this text; -V, --version: the version\n",
	        BUS_DEFAULT_SOCKET);
}

enum cmd {
	C_LISTEN, C_PUBLISH, C_SEND, C_BROADCAST, C_RPC, C_BROKER,
	C_RPC_LISTEN, C_NOTIFY, C_CALL0, C_BENCH
};

struct bench;

struct cli {
	uv_loop_t loop;
	struct bus_client *c;
	const char *addr;
	enum cmd cmd;
	bool json;
	bool proto;
	bool prom;          /* broker stats --prometheus */
	uint8_t *stats;     /* its first reply (stats), while topic.stats runs */
	size_t stats_len;
	int qos;
	uint64_t timeout_ns;
	size_t out_max;     /* the client's out_bytes_max: one frame's bound */
	const char *cmd_word; /* as typed: "publish" */
	char **topics, **excl; /* listen's masks (positional and -t), --exclude */
	int ntopics, nexcl;
	bool silent;        /* --silent: no progress lines on stderr */
	bool verbose;       /* -v: what it connects to, as whom */
	struct bench *bench;
	long count, seen;
	double seconds;
	const char *target, *method, *broker_op;
	uint8_t *data;
	size_t len;
	int status;
	bool started, finished;
	uv_signal_t sigint, sigterm;
	uv_timer_t stop_timer;
};

static void bench_stop(struct bench *b);

static void finish(struct cli *k, int status)
{
	if (k->finished)
		return;
	k->finished = true;
	k->status = status;
	uv_signal_stop(&k->sigint);
	uv_signal_stop(&k->sigterm);
	uv_timer_stop(&k->stop_timer);
	if (k->bench)
		bench_stop(k->bench);
	else
		bus_client_close(k->c);
}

/* The last client is closed: nothing may keep the loop running. */
static void close_handles(struct cli *k)
{
	uv_close((uv_handle_t *)&k->sigint, NULL);
	uv_close((uv_handle_t *)&k->sigterm, NULL);
	uv_close((uv_handle_t *)&k->stop_timer, NULL);
}

/* ---- data ---------------------------------------------------------------- */
static int read_all(FILE *f, uint8_t **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	uint8_t *p = malloc(cap);
	if (!p)
		return -1;
	size_t r;
	while ((r = fread(p + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			uint8_t *q = realloc(p, cap *= 2);
			if (!q) {
				free(p);
				return -1;
			}
			p = q;
		}
	}
	if (ferror(f)) {
		free(p);
		return -1;
	}
	*out = p;
	*len = n;
	return 0;
}

static int load_data(const char *spec, uint8_t **out, size_t *len)
{
	if (!strcmp(spec, "-")) {
		if (isatty(STDIN_FILENO)) /* as BUS/RT's CLI says it */
			fprintf(stderr, "busrt-cli: reading DATA from stdin, "
			                "Ctrl-D to finish...\n");
		if (read_all(stdin, out, len)) {
			fprintf(stderr, "busrt-cli: stdin: %s\n", strerror(errno));
			return 2;
		}
		return 0;
	}
	if (spec[0] == '@') {
		FILE *f = fopen(spec + 1, "rb");
		if (!f || read_all(f, out, len)) {
			fprintf(stderr, "busrt-cli: %s: %s\n", spec + 1,
			        strerror(errno));
			if (f)
				fclose(f);
			return 2;
		}
		fclose(f);
		return 0;
	}
	*len = strlen(spec);
	*out = (uint8_t *)strdup(spec);
	return *out ? 0 : 1;
}

/* key=value ... -> a MessagePack map, values typed as BUS/RT's CLI does */
static int bad(const char *fmt, const char *arg);

/* --proto: the method's request message from key=value pairs. */
static int proto_params(const char *method, char **kv, int n, uint8_t **out,
                        size_t *len)
{
	const struct de_method *m = de_method_find(method);
	ProtobufCMessage *q = bus_pb_new(m->request);
	if (!q)
		return bad("%s", "out of memory");
	for (int i = 0; i < n; i++) {
		char key[256], err[256];
		const char *eq = strchr(kv[i], '=');
		size_t kl = eq ? (size_t)(eq - kv[i]) : 0;
		if (!eq || kl == 0 || kl >= sizeof(key)) {
			bus_pb_free(q);
			return bad("rpc call: '%s' is not key=value", kv[i]);
		}
		memcpy(key, kv[i], kl);
		key[kl] = 0;
		if (bus_pb_set(q, key, eq + 1, err, sizeof(err))) {
			bus_pb_free(q);
			return bad("rpc call: %s", err);
		}
	}
	*out = bus_pb_pack(q, len);
	bus_pb_free(q);
	return *out ? 0 : bad("%s", "out of memory");
}

static int pack_params(char **kv, int n, uint8_t **out, size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, (size_t)n);
	for (int i = 0; i < n; i++) {
		char *eq = strchr(kv[i], '=');
		if (!eq || eq == kv[i]) {
			fprintf(stderr, "busrt-cli: rpc param '%s': expected "
			                "key=value\n", kv[i]);
			msgpack_sbuffer_destroy(&sb);
			return 2;
		}
		size_t kl = (size_t)(eq - kv[i]);
		const char *v = eq + 1;
		msgpack_pack_str(&pk, kl);
		msgpack_pack_str_body(&pk, kv[i], kl);
		char *end;
		errno = 0;
		long long ll = strtoll(v, &end, 10);
		if (!strcmp(v, "true")) {
			msgpack_pack_true(&pk);
		} else if (!strcmp(v, "false")) {
			msgpack_pack_false(&pk);
		} else if (*v && !*end && !errno) {
			msgpack_pack_int64(&pk, ll);
		} else {
			errno = 0;
			double d = strtod(v, &end);
			if (*v && !*end && !errno) {
				msgpack_pack_double(&pk, d);
			} else {
				msgpack_pack_str(&pk, strlen(v));
				msgpack_pack_str_body(&pk, v, strlen(v));
			}
		}
	}
	*len = sb.size;
	*out = (uint8_t *)sb.data; /* malloc'd by the sbuffer */
	return 0;
}

/* ---- output -------------------------------------------------------------- */
/* Text is UTF-8 without control bytes (newlines only where allowed: a
 * listen line stays one line per frame). */
static bool printable(const uint8_t *p, size_t n, bool newlines)
{
	for (size_t i = 0; i < n; i++)
		if ((p[i] < 0x20 && p[i] != '\t' && (p[i] != '\n' || !newlines)) ||
		    p[i] == 0x7f)
			return false;
	/* bytes >= 0x80 must form UTF-8 */
	for (size_t i = 0; i < n;) {
		uint8_t c = p[i];
		size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
		                       : (c >> 3) == 30 ? 4 : 0;
		if (!k || i + k > n)
			return false;
		for (size_t j = 1; j < k; j++)
			if ((p[i + j] & 0xC0) != 0x80)
				return false;
		i += k;
	}
	return true;
}

static void print_hex(FILE *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

/* MessagePack (parsed by msgpack-c) as JSON (built by jansson): bin as
 * hex, ext as {"ext_type": T, "hex": ...}, a map key that is not a string
 * as its JSON text, a key given twice keeps the last value. NULL out of
 * memory. */
static json_t *mp_json(const msgpack_object *o)
{
	json_t *j = NULL;
	int bad = 0;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return bus_json_u64(o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer(o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return bus_json_real(o->via.f64);
	case MSGPACK_OBJECT_STR:
		return bus_json_string(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN:
		return bus_json_hex(o->via.bin.ptr, o->via.bin.size);
	case MSGPACK_OBJECT_EXT:
		return json_pack("{siso}", "ext_type", (int)o->via.ext.type, "hex",
		                 bus_json_hex(o->via.ext.ptr, o->via.ext.size));
	case MSGPACK_OBJECT_ARRAY:
		if (!(j = json_array()))
			return NULL;
		for (uint32_t i = 0; i < o->via.array.size && !bad; i++)
			bad = json_array_append_new(j, mp_json(&o->via.array.ptr[i]));
		break;
	case MSGPACK_OBJECT_MAP:
		if (!(j = json_object()))
			return NULL;
		for (uint32_t i = 0; i < o->via.map.size && !bad; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			bad = bus_json_set_any(j, mp_json(&kv->key),
			                       mp_json(&kv->val));
		}
		break;
	default:
		return json_null();
	}
	if (bad) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* Is p exactly one MessagePack map or array (BUS/RT's payloads, the
 * broker's notices)? Then u holds it: destroy it after use. */
static bool msgpack_whole(const uint8_t *p, size_t n, msgpack_unpacked *u)
{
	msgpack_unpacked_init(u);
	size_t off = 0;
	if (n && msgpack_unpack_next(u, (const char *)p, n, &off) ==
	                 MSGPACK_UNPACK_SUCCESS &&
	    off == n && (u->data.type == MSGPACK_OBJECT_MAP ||
	                 u->data.type == MSGPACK_OBJECT_ARRAY))
		return true;
	msgpack_unpacked_destroy(u);
	return false;
}

/* A payload on one line of text: MessagePack as JSON when it is exactly
 * one object, else text when printable (newlines allowed: an RPC
 * result), else hex ("hex:" first where prefix says so). */
static void print_payload(const uint8_t *p, size_t n, bool newlines,
                          const char *hex_prefix)
{
	msgpack_unpacked u;
	if (msgpack_whole(p, n, &u)) {
		json_t *j = mp_json(&u.data);
		msgpack_unpacked_destroy(&u);
		if (bus_json_dump(stdout, j))
			fputs("(out of memory)", stdout);
		json_decref(j);
	} else if (printable(p, n, newlines)) {
		printf("%.*s", (int)n, (const char *)p);
	} else {
		fputs(hex_prefix, stdout);
		print_hex(stdout, p, n);
	}
	fputc('\n', stdout);
}

/* The payload as a member of o: "msgpack": its JSON, "data": the text,
 * or "hex". 0, or -1 out of memory. */
static int json_payload(json_t *o, const uint8_t *p, size_t n)
{
	msgpack_unpacked u;
	if (msgpack_whole(p, n, &u)) {
		json_t *j = mp_json(&u.data);
		msgpack_unpacked_destroy(&u);
		return json_object_set_new(o, "msgpack", j);
	}
	if (printable(p, n, true))
		return json_object_set_new(o, "data",
		                           bus_json_string((const char *)p, n));
	return json_object_set_new(o, "hex", bus_json_hex(p, n));
}

/* A JSON line of the tool's own (a delivery, a call): printed, or when it
 * could not be built said on stderr, not dropped unseen. */
static void json_out(json_t *j)
{
	if (bus_json_line(stdout, j))
		fprintf(stderr, "busrt-cli: a JSON line could not be written: "
		                "out of memory or %s\n", strerror(errno));
}

/* {"time", "kind", "sender", KEY: NAME} as a new object: the start of
 * every line listen and rpc listen print. NULL out of memory. */
static json_t *json_head(const char *kind, const char *sender,
                         const char *key, const char *name)
{
	char t[40];
	json_t *o = json_pack("{ssssso}", "time", bus_utc_now(t, sizeof(t)),
	                      "kind", kind, "sender",
	                      bus_json_string(sender, strlen(sender)));
	if (o && name &&
	    json_object_set_new(o, key, bus_json_string(name, strlen(name)))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static void print_result(const uint8_t *p, size_t n)
{
	print_payload(p, n, true, "");
}

static const char *kind_name(uint8_t k)
{
	return k == BUS_OP_PUBLISH ? "publish"
	       : k == BUS_OP_MESSAGE ? "message" : "broadcast";
}

static void on_delivery(struct bus_client *c, const struct bus_delivery *d,
                        void *arg)
{
	(void)c;
	struct cli *k = arg;
	if ((k->cmd != C_LISTEN && k->cmd != C_RPC_LISTEN) || k->finished)
		return;
	char t[40];
	/* names and topics are the peers': escaped (json.h) in text output */
	char sender[1100], topic[4200];
#define SAFE(buf, str) bus_text_escape(buf, sizeof(buf), str, strlen(str))
	ProtobufCMessage *ev = NULL;
	if (k->proto && d->kind == BUS_OP_PUBLISH)
		ev = bus_pb_unpack(&daemoneye__busrt_event__descriptor, d->data,
		                   d->len, BUS_PB_BUDGET_DEFAULT);
	if (k->json) {
		json_t *o = json_head(kind_name(d->kind), d->sender, "topic",
		                      d->topic);
		if (o && (ev ? json_object_set_new(o, "event",
		                                   bus_pb_json_value(ev))
		             : json_payload(o, d->data, d->len))) {
			json_decref(o);
			o = NULL;
		}
		json_out(o);
	} else {
		printf("%s %s %s %s ", bus_utc_now(t, sizeof(t)),
		       kind_name(d->kind), SAFE(sender, d->sender),
		       d->topic ? SAFE(topic, d->topic) : "-");
		if (ev) {
			if (bus_pb_json(stdout, ev))
				fputs("(out of memory)", stdout);
			fputc('\n', stdout);
		} else {
			print_payload(d->data, d->len, false, "hex:");
		}
	}
	bus_pb_free(ev);
#undef SAFE
	fflush(stdout);
	if (k->count && ++k->seen >= k->count)
		finish(k, 0);
}

/* ---- operations ------------------------------------------------------------ */
static void op_done(struct bus_client *c, int status, void *arg)
{
	(void)c;
	struct cli *k = arg;
	if (status) {
		fprintf(stderr, "busrt-cli: %s: %s\n",
		        k->target ? k->target : "operation",
		        bus_strerror(status));
		finish(k, 1);
		return;
	}
	if (k->cmd == C_LISTEN || k->cmd == C_RPC_LISTEN) {
		if (!k->silent)
			fprintf(stderr, "busrt-cli: listening\n");
		return;
	}
	finish(k, 0);
}

/* listen --exclude: the exclusions are in; then the subscriptions (or,
 * without masks, listening for messages and broadcasts only). */
static void excl_done(struct bus_client *c, int status, void *arg)
{
	struct cli *k = arg;
	if (status || !k->ntopics) {
		op_done(c, status, arg);
		return;
	}
	int rc = bus_client_subscribe(c, (const char *const *)k->topics,
	                              (size_t)k->ntopics, op_done, k);
	if (rc)
		op_done(c, rc, arg);
}

/* rpc listen: every call and notification printed; calls answered with
 * an empty result (as BUS/RT's CLI does), call0s (call id 0) not. */
static void on_rpc_listen(struct bus_client *c, const struct bus_rpc_request *r,
                          void *arg)
{
	struct cli *k = arg;
	if (k->finished)
		return;
	const char *kind = !r->method ? "notification" : r->call_id ? "call"
	                                                           : "call0";
	char t[40], sender[1100], method[1100];
	if (k->json) {
		char kk[24];
		snprintf(kk, sizeof(kk), "rpc.%s", kind);
		json_t *o = json_head(kk, r->sender, "method", r->method);
		if (o && json_payload(o, r->params, r->params_len)) {
			json_decref(o);
			o = NULL;
		}
		json_out(o);
	} else {
		printf("%s rpc.%s %s %s ", bus_utc_now(t, sizeof(t)), kind,
		       bus_text_escape(sender, sizeof(sender), r->sender,
		                       strlen(r->sender)),
		       r->method ? bus_text_escape(method, sizeof(method), r->method,
		                                   strlen(r->method))
		                 : "-");
		print_payload(r->params, r->params_len, false, "hex:");
	}
	fflush(stdout);
	if (r->method && r->call_id) {
		int rc = bus_client_rpc_reply(c, r->sender, r->call_id, NULL, 0);
		if (rc && !k->silent)
			fprintf(stderr, "busrt-cli: the reply to %s: %s\n", sender,
			        bus_strerror(rc));
	}
	if (k->count && ++k->seen >= k->count)
		finish(k, 0);
}

/* One line per map of a: the columns keys (strings escaped, unsigned
 * integers), "-" for what is missing; a negative width aligns left. */
static void print_rows(const msgpack_object_array *a, const char *const *keys,
                       const int *width, int ncols, const char *first)
{
	if (!first) { /* the header; first names a row that has no key */
		for (int c = 0; c < ncols; c++)
			printf(c ? " %*s" : "%*s", width[c], keys[c]);
		fputc('\n', stdout);
	}
	for (uint32_t i = 0; i < a->size; i++) {
		if (a->ptr[i].type != MSGPACK_OBJECT_MAP)
			continue;
		const msgpack_object_map *m = &a->ptr[i].via.map;
		char cols[8][64] = {{0}};
		for (uint32_t j = 0; j < m->size; j++) {
			const msgpack_object *key = &m->ptr[j].key;
			const msgpack_object *v = &m->ptr[j].val;
			if (key->type != MSGPACK_OBJECT_STR)
				continue;
			for (int c = 0; c < ncols && c < 8; c++) {
				if (key->via.str.size != strlen(keys[c]) ||
				    memcmp(key->via.str.ptr, keys[c],
				           key->via.str.size))
					continue;
				if (v->type == MSGPACK_OBJECT_STR)
					bus_text_escape(cols[c], 64,
					                v->via.str.ptr,
					                v->via.str.size);
				else if (v->type ==
				         MSGPACK_OBJECT_POSITIVE_INTEGER)
					snprintf(cols[c], 64, "%" PRIu64,
					         v->via.u64);
			}
		}
		if (first)
			snprintf(cols[0], sizeof(cols[0]), "%s", first);
		for (int c = 0; c < ncols && c < 8; c++)
			printf(c ? " %*s" : "%*s", width[c],
			       cols[c][0] ? cols[c] : "-");
		fputc('\n', stdout);
	}
}

/* The value of key in a map, or NULL. */
static const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
	if (m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR &&
		    k->via.str.size == strlen(key) &&
		    !memcmp(k->via.str.ptr, key, k->via.str.size))
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

/* broker clients and broker topics as tables (--json: the map as JSON). */
static void print_table(const char *op, const uint8_t *p, size_t n)
{
	static const char *const client_keys[] = {
	    "name", "kind", "source", "port", "r_frames", "w_frames", "queue",
	    "instances"};
	static const int client_w[] = {-32, -10, -16, 6, 10, 10, 6, 9};
	static const char *const topic_keys[] = {
	    "topic",     "frames_in", "bytes_in", "frames_out",
	    "bytes_out", "drops",     "subscribers"};
	static const int topic_w[] = {-32, 10, 12, 10, 12, 8, 11};
	bool topics = !strcmp(op, "topics");
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	const msgpack_object *rows = NULL;
	if (msgpack_unpack_next(&u, (const char *)p, n, &off) ==
	    MSGPACK_UNPACK_SUCCESS)
		rows = map_get(&u.data, topics ? "topics" : "clients");
	if (!rows || rows->type != MSGPACK_OBJECT_ARRAY) {
		msgpack_unpacked_destroy(&u);
		print_result(p, n);
		return;
	}
	if (topics) {
		print_rows(&rows->via.array, topic_keys, topic_w, 7, NULL);
		const msgpack_object *other = map_get(&u.data, "other");
		if (other) { /* every prefix past the table's size, together */
			msgpack_object_array one = {1, (msgpack_object *)other};
			print_rows(&one, topic_keys, topic_w, 7, "(other)");
		}
	} else {
		print_rows(&rows->via.array, client_keys, client_w, 8, NULL);
	}
	msgpack_unpacked_destroy(&u);
}

static void rpc_done(struct bus_client *c, int status,
                     const struct bus_rpc_result *r, void *arg)
{
	(void)c;
	struct cli *k = arg;
	if (status == BUS_ERPC) {
		fprintf(stderr, "busrt-cli: %s %s: rpc error %d: %.*s\n",
		        k->target, k->method, r->code, (int)r->len,
		        (const char *)r->data);
		finish(k, 1);
		return;
	}
	if (status) {
		fprintf(stderr, "busrt-cli: %s %s: %s (code %d)\n", k->target,
		        k->method, bus_strerror(status), r->code);
		finish(k, 1);
		return;
	}
	if (k->prom && !k->stats) {
		/* stats came: the topic table next, then one page of both */
		k->stats = malloc(r->len ? r->len : 1);
		if (!k->stats) {
			finish(k, 1);
			return;
		}
		memcpy(k->stats, r->data, r->len);
		k->stats_len = r->len;
		k->method = "topic.stats";
		struct bus_rpc_policy pol = {.timeout_ns = k->timeout_ns};
		int rc = bus_client_rpc_call(c, k->target, k->method, NULL, 0,
		                             &pol, rpc_done, k);
		if (rc) {
			fprintf(stderr, "busrt-cli: %s\n", bus_strerror(rc));
			finish(k, 1);
		}
		return;
	}
	if (k->prom) {
		if (bus_prom_broker(stdout, k->stats, k->stats_len, r->data,
		                    r->len)) {
			fprintf(stderr, "busrt-cli: .broker stats: the reply is "
			                "not a MessagePack map\n");
			finish(k, 1);
			return;
		}
	} else if (k->cmd == C_BROKER && !k->json &&
	           (!strcmp(k->broker_op, "clients") ||
	            !strcmp(k->broker_op, "topics")))
		print_table(k->broker_op, r->data, r->len);
	else if (k->proto && de_method_find(k->method)) {
		ProtobufCMessage *m = de_reply_unpack(k->method, r);
		if (!m) {
			fprintf(stderr, "busrt-cli: %s %s: the reply is not a "
			                "valid %s\n", k->target, k->method,
			        de_method_find(k->method)->response->name);
			finish(k, 1);
			return;
		}
		json_out(bus_pb_json_value(m));
		bus_pb_free(m);
	} else
		print_result(r->data, r->len);
	finish(k, 0);
}

static void start(struct cli *k)
{
	struct bus_client *c = k->c;
	int rc = 0;
	switch (k->cmd) {
	case C_LISTEN:
	case C_RPC_LISTEN:
		if (k->nexcl)
			rc = bus_client_exclude(c, (const char *const *)k->excl,
			                        (size_t)k->nexcl, excl_done, k);
		else if (k->ntopics)
			rc = bus_client_subscribe(c, (const char *const *)k->topics,
			                          (size_t)k->ntopics, op_done, k);
		else if (!k->silent) /* messages and broadcasts only */
			fprintf(stderr, "busrt-cli: listening\n");
		break;
	case C_NOTIFY:
		rc = bus_client_rpc_notify(c, k->target, k->data, k->len, k->qos,
		                           k->qos & 1 ? op_done : NULL, k);
		break;
	case C_CALL0:
		rc = bus_client_rpc_call0(c, k->target, k->method, k->data, k->len,
		                          k->qos, k->qos & 1 ? op_done : NULL, k);
		break;
	case C_BENCH:
		break;
	case C_PUBLISH:
		rc = bus_client_publish(c, k->target, k->data, k->len, k->qos,
		                        k->qos & 1 ? op_done : NULL, k);
		break;
	case C_SEND:
		rc = bus_client_send(c, k->target, k->data, k->len, k->qos,
		                     k->qos & 1 ? op_done : NULL, k);
		break;
	case C_BROADCAST:
		rc = bus_client_broadcast(c, k->target, k->data, k->len, k->qos,
		                          k->qos & 1 ? op_done : NULL, k);
		break;
	case C_RPC:
	case C_BROKER: {
		struct bus_rpc_policy pol = {.timeout_ns = k->timeout_ns};
		rc = bus_client_rpc_call(c, k->target, k->method, k->data,
		                         k->len, &pol, rpc_done, k);
		break;
	}
	}
	if (rc == BUS_ELIMIT && k->cmd_word) {
		fprintf(stderr, "busrt-cli: %s: DATA is %zu bytes; one frame holds "
		        "at most %zu (the client's out_bytes_max; busrtd refuses "
		        "payloads over its payload_bytes_max, 16 MiB by default)\n",
		        k->cmd_word, k->len, k->out_max);
		finish(k, 1);
	} else if (rc) {
		fprintf(stderr, "busrt-cli: %s\n", bus_strerror(rc));
		finish(k, 1);
	} else if (!(k->qos & 1) &&
	           (k->cmd == C_PUBLISH || k->cmd == C_SEND ||
	            k->cmd == C_BROADCAST || k->cmd == C_NOTIFY ||
	            k->cmd == C_CALL0)) {
		finish(k, 0); /* no answer to wait for: close after the write */
	}
}

static void on_state(struct bus_client *c, enum bus_client_state st,
                     int reason, void *arg)
{
	struct cli *k = arg;
	if (st == BUS_CLIENT_READY && !k->started) {
		k->started = true;
		start(k);
		return;
	}
	if (st == BUS_CLIENT_READY || st == BUS_CLIENT_DISCONNECTED) {
		/* listen --reconnect: the client re-subscribes by itself */
		fprintf(stderr, "busrt-cli: %s\n",
		        st == BUS_CLIENT_READY ? "reconnected" : "disconnected");
		return;
	}
	if (st != BUS_CLIENT_CLOSED)
		return;
	if (!k->finished) {
		const char *why = bus_client_net_error(c);
		if (!k->started &&
		    (reason == BUS_EBUSY || reason == BUS_EDATA ||
		     reason == BUS_ENOTREG || reason == BUS_EACCESS))
			fprintf(stderr, "busrt-cli: %s refused the name: %s\n",
			        k->addr, bus_strerror(reason));
		else if (why[0])
			fprintf(stderr, "busrt-cli: %s\n", why);
		else
			fprintf(stderr, "busrt-cli: %s: %s\n", k->addr,
			        bus_strerror(reason));
		k->finished = true;
		k->status = 1;
	}
	close_handles(k);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)signum;
	finish(h->data, 0);
}

static void on_stop_timer(uv_timer_t *t)
{
	finish(t->data, 0);
}

/* ---- benchmark ----------------------------------------------------------- */
/* BUS/RT's `benchmark`: WORKERS clients share ITERS operations, stage by
 * stage, and each stage's rate is printed. Where an answer is awaited
 * (RPC, QoS processed) each worker has one operation in flight, as BUS/RT's
 * does; at QoS 0 it sends as much as its output buffer takes, and a
 * QoS-processed frame after the last one says when the broker has read
 * them all. The "-null" targets are nobody: the broker's ACK says
 * "not registered", which these stages expect. */
enum bstage {
	B_CALL, B_CALL_HANDLE, B_CALL0, B_SEND_NO, B_SEND_PROC, B_SR_NO,
	B_SR_PROC, B_STAGES
};
static const char *const bstage_name[B_STAGES] = {
    "rpc.call",    "rpc.call+handle",    "rpc.call0",
    "send.qos.no", "send.qos.processed", "send+recv.qos.no",
    "send+recv.qos.processed"};

struct bworker {
	struct bench *b;
	struct bus_client *c;
	char name[128], null[140];
	uint32_t sent, answered, received;
	bool inflight, fence, done, ready, closed;
};

struct bench {
	struct cli *k;
	struct bworker *w;
	int workers, ready, done, closed;
	uint32_t per;
	size_t psize;
	uint8_t *payload;
	int stage;
	uint64_t t0;
	bool stopping;
};

static void bench_pump(struct bworker *w);

static void bench_fail(struct bworker *w, const char *what, int status)
{
	struct bench *b = w->b;
	if (!b->stopping)
		fprintf(stderr, "busrt-cli: benchmark %s: %s: %s: %s\n",
		        bstage_name[b->stage], w->name, what,
		        bus_client_reason(w->c, status));
	finish(b->k, 1);
}

static void bench_stage_begin(struct bench *b)
{
	b->done = 0;
	b->t0 = uv_hrtime();
	for (int i = 0; i < b->workers; i++) {
		struct bworker *w = &b->w[i];
		w->sent = w->answered = w->received = 0;
		w->inflight = w->fence = w->done = false;
	}
	for (int i = 0; i < b->workers && !b->stopping; i++)
		bench_pump(&b->w[i]);
}

static void bench_check(struct bworker *w)
{
	struct bench *b = w->b;
	uint32_t per = b->per;
	bool done;
	switch (b->stage) {
	case B_SEND_NO:
		done = w->fence && w->answered == 1;
		break;
	case B_SR_NO:
		done = w->received == per;
		break;
	case B_SR_PROC:
		done = w->answered == per && w->received == per;
		break;
	default:
		done = w->answered == per;
	}
	if (!done || w->done || b->stopping)
		return;
	w->done = true;
	if (++b->done < b->workers)
		return;
	double sec = (double)(uv_hrtime() - b->t0) / 1e9;
	uint64_t total = (uint64_t)per * (uint64_t)b->workers;
	double rate = sec > 0 ? (double)total / sec : 0;
	if (b->k->json)
		json_out(json_pack("{sssisIsIsfsI}", "stage", bstage_name[b->stage],
		                   "workers", b->workers, "payload_size",
		                   (json_int_t)b->psize, "iters", (json_int_t)total,
		                   "seconds", sec, "iters_per_s",
		                   (json_int_t)(rate + 0.5)));
	else
		printf("%-24s %10" PRIu64 " %10.3f %12.0f\n",
		       bstage_name[b->stage], total, sec, rate);
	fflush(stdout);
	if (++b->stage == B_STAGES)
		finish(b->k, 0);
	else
		bench_stage_begin(b);
}

static void bench_rpc_done(struct bus_client *c, int status,
                           const struct bus_rpc_result *r, void *arg)
{
	(void)c, (void)r;
	struct bworker *w = arg;
	if (w->b->stopping)
		return;
	w->inflight = false;
	if (status) {
		bench_fail(w, "rpc call", status);
		return;
	}
	w->answered++;
	bench_check(w);
	bench_pump(w);
}

static void bench_acked(struct bus_client *c, int status, void *arg)
{
	(void)c;
	struct bworker *w = arg;
	struct bench *b = w->b;
	if (b->stopping)
		return;
	w->inflight = false;
	/* the -null targets: refused as not registered, and that is all */
	bool to_null = b->stage != B_SR_PROC;
	if (status && !(to_null && status == BUS_ENOTREG)) {
		bench_fail(w, "send", status);
		return;
	}
	w->answered++;
	bench_check(w);
	bench_pump(w);
}

static void bench_pump(struct bworker *w)
{
	struct bench *b = w->b;
	struct cli *k = b->k;
	if (b->stopping || w->done || !w->ready)
		return;
	int rc = 0;
	const char *self = w->name;
	switch (b->stage) {
	case B_CALL:
	case B_CALL_HANDLE:
		if (w->inflight || w->sent == b->per)
			return;
		{
			struct bus_rpc_policy pol = {.timeout_ns = k->timeout_ns};
			bool broker = b->stage == B_CALL;
			rc = bus_client_rpc_call(w->c, broker ? ".broker" : self,
			                         broker ? "benchmark.test"
			                                : "benchmark.selftest",
			                         b->payload, b->psize, &pol,
			                         bench_rpc_done, w);
		}
		break;
	case B_CALL0:
		if (w->inflight || w->sent == b->per)
			return;
		rc = bus_client_rpc_call0(w->c, w->null, "test", b->payload,
		                          b->psize, BUS_QOS_PROCESSED |
		                                        BUS_QOS_REALTIME,
		                          bench_acked, w);
		break;
	case B_SEND_PROC:
	case B_SR_PROC:
		if (w->inflight || w->sent == b->per)
			return;
		rc = bus_client_send(w->c, b->stage == B_SR_PROC ? self : w->null,
		                     b->payload, b->psize,
		                     BUS_QOS_PROCESSED | BUS_QOS_REALTIME,
		                     bench_acked, w);
		break;
	case B_SEND_NO:
	case B_SR_NO:
		while (w->sent < b->per) {
			rc = bus_client_send(w->c, b->stage == B_SR_NO ? self
			                                              : w->null,
			                     b->payload, b->psize, 0, NULL, NULL);
			if (rc == BUS_EAGAIN)
				return; /* on_drain pumps again */
			if (rc)
				break;
			w->sent++;
		}
		if (rc || b->stage == B_SR_NO || w->fence)
			break;
		/* the fence: its ACK comes after the broker read the rest */
		rc = bus_client_send(w->c, w->null, NULL, 0, BUS_QOS_PROCESSED,
		                     bench_acked, w);
		if (rc == BUS_EAGAIN)
			return;
		w->fence = rc == 0;
		return;
	default:
		return;
	}
	if (rc == BUS_EAGAIN)
		return;
	if (rc) {
		bench_fail(w, "send", rc);
		return;
	}
	if (b->stage != B_SEND_NO && b->stage != B_SR_NO) {
		w->inflight = true;
		w->sent++;
	}
}

static void bench_drain(struct bus_client *c, void *arg)
{
	(void)c;
	bench_pump(arg);
}

static void bench_delivery(struct bus_client *c, const struct bus_delivery *d,
                           void *arg)
{
	(void)c, (void)d;
	struct bworker *w = arg;
	if (w->b->stopping)
		return;
	w->received++;
	bench_check(w);
}

static void bench_rpc(struct bus_client *c, const struct bus_rpc_request *r,
                      void *arg)
{
	(void)arg;
	if (!r->method || !r->call_id)
		return;
	if (!strcmp(r->method, "benchmark.selftest"))
		bus_client_rpc_reply(c, r->sender, r->call_id, r->params,
		                     r->params_len);
	else
		bus_client_rpc_error(c, r->sender, r->call_id,
		                     BUS_RPC_ERR_METHOD_NOT_FOUND, NULL, 0);
}

static void bench_state(struct bus_client *c, enum bus_client_state st,
                        int reason, void *arg)
{
	struct bworker *w = arg;
	struct bench *b = w->b;
	if (st == BUS_CLIENT_READY && !w->ready) {
		w->ready = true;
		if (++b->ready == b->workers)
			bench_stage_begin(b);
		return;
	}
	if (st != BUS_CLIENT_CLOSED)
		return;
	w->closed = true;
	if (!b->stopping) {
		const char *why = bus_client_net_error(c);
		fprintf(stderr, "busrt-cli: benchmark: %s: %s\n", w->name,
		        why[0] ? why : bus_strerror(reason));
		finish(b->k, 1);
	}
	if (++b->closed == b->workers)
		close_handles(b->k);
}

/* finish(): every worker closed; the loop ends when the last is. */
static void bench_stop(struct bench *b)
{
	b->stopping = true;
	for (int i = 0; i < b->workers; i++)
		if (b->w[i].c && !b->w[i].closed)
			bus_client_close(b->w[i].c);
}

static int bench_open(struct cli *k, struct bench *b,
                      const struct bus_client_config *base)
{
	b->k = k;
	k->bench = b;
	b->w = calloc((size_t)b->workers, sizeof(*b->w));
	b->payload = malloc(b->psize ? b->psize : 1);
	if (!b->w || !b->payload)
		return BUS_ENOMEM;
	memset(b->payload, 0xee, b->psize);
	char info[160];
	snprintf(info, sizeof(info), "benchmark: %d worker(s), %" PRIu64
	         " iters, %u iters/worker, %zu byte(s) payload", b->workers,
	         (uint64_t)b->per * (uint64_t)b->workers, b->per, b->psize);
	if (k->json)
		json_out(json_pack("{ss}", "info", info));
	else
		puts(info);
	if (!k->json)
		printf("%-24s %10s %10s %12s\n", "stage", "iters", "seconds",
		       "iters/s");
	for (int i = 0; i < b->workers; i++) {
		struct bworker *w = &b->w[i];
		w->b = b;
		snprintf(w->name, sizeof(w->name), "%s-%d", base->name, i + 1);
		snprintf(w->null, sizeof(w->null), "%s-null", w->name);
		struct bus_client_config cfg = *base;
		cfg.name = w->name;
		struct bus_client_handlers h = {bench_delivery, bench_rpc,
		                                bench_state, bench_drain, w};
		int rc = bus_client_open(&k->loop, k->addr, &cfg, &h, &w->c);
		if (rc) {
			for (int j = 0; j < i; j++)
				bus_client_close(b->w[j].c);
			b->workers = i; /* the loop closes the ones opened */
			b->stopping = true;
			return rc;
		}
	}
	return 0;
}

/* ---- arguments ------------------------------------------------------------ */
static int bad(const char *fmt, const char *arg)
{
	fprintf(stderr, "busrt-cli: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"proto", no_argument, NULL, 'P'},
	    {"timeout", required_argument, NULL, 'O'},
	    {"topics", required_argument, NULL, 't'},
	    {"exclude", required_argument, NULL, 'x'},
	    {"silent", no_argument, NULL, 'Q'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"buf-size", required_argument, NULL, 'b'},
	    {"queue-size", required_argument, NULL, 'z'},
	    {"token", required_argument, NULL, 'k'},
	    {"workers", required_argument, NULL, 'w'},
	    {"payload-size", required_argument, NULL, 'p'},
	    {"iters", required_argument, NULL, 'i'},
	    {"qos", required_argument, NULL, 'q'},
	    {"count", required_argument, NULL, 'c'},
	    {"seconds", required_argument, NULL, 'S'},
	    {"raw", required_argument, NULL, 'r'},
	    {"reconnect", no_argument, NULL, 'R'},
	    {"broker-uid", required_argument, NULL, 'U'},
	    {"tls-ca", required_argument, NULL, 'A'},
	    {"tls-cert", required_argument, NULL, 'C'},
	    {"tls-key", required_argument, NULL, 'K'},
	    {"prometheus", no_argument, NULL, 'M'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0}};
	struct cli k;
	memset(&k, 0, sizeof(k));
	k.addr = BUS_DEFAULT_SOCKET;
	k.qos = BUS_QOS_PROCESSED;
	k.timeout_ns = 5000000000ull;
	char name[128];
	snprintf(name, sizeof(name), "busrt-cli.%d", (int)getpid());
	const char *raw = NULL;
	bool reconnect = false;
	int64_t broker_uid = -1;
	struct bus_tls_config tls = {0};
	int opt;
	uint64_t u;
	bool addr_given = false;
	uint64_t buf_size = 0;
	struct bench bench = {.workers = 1};
	uint64_t iters = 1000000, psize = 100;
	/* listen's masks and exclusions: argv's strings, at most argc each;
	 * held by a static (a usage error returns with it, not a leak) */
	static char **masks;
	masks = calloc(2 * ((size_t)argc + 1), sizeof(char *));
	if (!masks)
		return bad("%s", "out of memory");
	k.topics = masks;
	k.excl = masks + argc + 1;
	while ((opt = getopt_long(argc, argv, "s:n:hVt:vw:i:", longopts,
	                          NULL)) != -1) {
		switch (opt) {
		case 's':
			k.addr = optarg;
			addr_given = true;
			break;
		case 't':
			k.topics[k.ntopics++] = optarg;
			break;
		case 'x':
			k.excl[k.nexcl++] = optarg;
			break;
		case 'Q':
			k.silent = true;
			break;
		case 'v':
			k.verbose = true;
			break;
		case 'b':
			if (!bus_config_parse_u64(optarg, 1, 16u << 20, &buf_size))
				return bad("--buf-size: '%s' is not 1..16777216 "
				           "bytes", optarg);
			break;
		case 'z':
			return bad("--queue-size %s: BUS/RT's client queue has no "
			           "counterpart here (the client buffers up to "
			           "out_bytes_max, 16 MiB, and then says EAGAIN)",
			           optarg);
		case 'k':
			(void)optarg;
			return bad("%s", "--token: this broker knows peers by their "
			                 "uid, address or certificate (the ACL), "
			                 "not by tokens");
		case 'w':
			if (!bus_config_parse_u64(optarg, 1, 1000, &u))
				return bad("--workers: '%s' is not 1..1000", optarg);
			bench.workers = (int)u;
			break;
		case 'p':
			if (!bus_config_parse_u64(optarg, 0, 16u << 20, &psize))
				return bad("--payload-size: '%s' is not 0..16777216 "
				           "bytes", optarg);
			break;
		case 'i':
			if (!bus_config_parse_u64(optarg, 1, UINT32_MAX, &iters))
				return bad("--iters: '%s' is not a positive "
				           "integer", optarg);
			break;
		case 'n':
			snprintf(name, sizeof(name), "%s", optarg);
			break;
		case 'j':
			k.json = true;
			break;
		case 'P':
			k.proto = true;
			break;
		case 'O':
			if (!bus_config_parse_seconds(optarg, &k.timeout_ns))
				return bad("--timeout: '%s' is not a positive "
				           "number of seconds", optarg);
			break;
		case 'q':
			if (!bus_config_parse_u64(optarg, 0, 3, &u))
				return bad("--qos: '%s' is not 0, 1, 2 or 3",
				           optarg);
			k.qos = (int)u;
			break;
		case 'c':
			if (!bus_config_parse_u64(optarg, 1, INT32_MAX, &u))
				return bad("--count: '%s' is not a positive "
				           "integer", optarg);
			k.count = (long)u;
			break;
		case 'S': {
			uint64_t ns;
			if (!bus_config_parse_seconds(optarg, &ns))
				return bad("--seconds: '%s' is not a positive "
				           "number", optarg);
			k.seconds = (double)ns / 1e9;
			break;
		}
		case 'r':
			raw = optarg;
			break;
		case 'R':
			reconnect = true;
			break;
		case 'A':
			tls.ca_file = optarg;
			break;
		case 'C':
			tls.cert_file = optarg;
			break;
		case 'K':
			tls.key_file = optarg;
			break;
		case 'M':
			k.prom = true;
			break;
		case 'U':
			if (!bus_config_parse_u64(optarg, 0, UINT32_MAX - 1, &u))
				return bad("--broker-uid: '%s' is not a uid",
				           optarg);
			broker_uid = (int64_t)u;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			bus_version_print(stdout, "busrt-cli");
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	/* GNU getopt permutes: options may also follow the command; "--"
	 * ends them (for DATA that starts with '-') */
	char **a = argv + optind;
	int n = argc - optind;
	static const char *const commands[] = {"listen", "publish", "send",
	                                       "broadcast", "rpc", "broker",
	                                       "benchmark"};
	bool is_cmd = false;
	for (size_t i = 0; n >= 1 && i < sizeof(commands) / sizeof(commands[0]);
	     i++)
		is_cmd |= !strcmp(a[0], commands[i]);
	if (n >= 2 && !is_cmd) { /* BUS/RT's CLI: the address comes first */
		if (addr_given)
			return bad("'%s': an address after -s; expected COMMAND",
			           a[0]);
		k.addr = a[0];
		a++;
		n--;
	}
	if (n < 1)
		return bad("%s", "missing COMMAND");
	const char *cmd = a[0];
	a++;
	n--;
	int rc;
	if ((k.ntopics || k.nexcl) && strcmp(cmd, "listen") &&
	    !(!strcmp(cmd, "rpc") && n >= 1 && !strcmp(a[0], "listen") &&
	      !k.nexcl))
		return bad("%s", "-t/--topics and --exclude go with listen "
		                 "(--topics also with rpc listen)");
	if (!strcmp(cmd, "listen")) {
		k.cmd = C_LISTEN;
		for (int i = 0; i < n; i++)
			k.topics[k.ntopics++] = a[i];
	} else if (!strcmp(cmd, "publish") || !strcmp(cmd, "send") ||
	           !strcmp(cmd, "broadcast")) {
		if (n < 1 || n > 2)
			return bad("%s: expected TARGET and DATA (DATA missing: "
			           "stdin)", cmd);
		k.cmd = cmd[0] == 'p' ? C_PUBLISH : cmd[0] == 's' ? C_SEND
		                                                  : C_BROADCAST;
		k.cmd_word = cmd;
		k.target = a[0];
		/* BUS/RT's send: a target with wildcards is a broadcast */
		if (k.cmd == C_SEND && strpbrk(k.target, "*?"))
			k.cmd = C_BROADCAST;
		if ((rc = load_data(n == 2 ? a[1] : "-", &k.data, &k.len)))
			return rc;
	} else if (!strcmp(cmd, "rpc") && n >= 1 && !strcmp(a[0], "listen")) {
		k.cmd = C_RPC_LISTEN;
		for (int i = 1; i < n; i++)
			k.topics[k.ntopics++] = a[i];
	} else if (!strcmp(cmd, "rpc") && n >= 1 && !strcmp(a[0], "notify")) {
		if (n < 2 || n > 3)
			return bad("%s", "rpc notify: expected TARGET [DATA]");
		k.cmd = C_NOTIFY;
		k.cmd_word = "rpc notify";
		k.target = a[1];
		if ((rc = load_data(n == 3 ? a[2] : "-", &k.data, &k.len)))
			return rc;
	} else if (!strcmp(cmd, "rpc")) {
		bool call0 = n >= 1 && !strcmp(a[0], "call0");
		if (n < 3 || (strcmp(a[0], "call") && !call0))
			return bad("%s", "rpc: expected call|call0 TARGET METHOD "
			                 "[key=value ...], notify TARGET [DATA] "
			                 "or listen [MASK...]");
		k.cmd = call0 ? C_CALL0 : C_RPC;
		k.target = a[1];
		k.method = a[2];
		if (raw) {
			if (n > 3)
				return bad("%s", "rpc call: --raw and key=value "
				                 "params together");
			if ((rc = load_data(raw, &k.data, &k.len)))
				return rc;
		} else if (n == 4 && !strcmp(a[3], "-")) {
			if ((rc = load_data("-", &k.data, &k.len)))
				return rc;
		} else if (k.proto && de_method_find(k.method)) {
			if ((rc = proto_params(k.method, a + 3, n - 3, &k.data,
			                       &k.len)))
				return rc;
		} else if (n > 3 &&
		           (rc = pack_params(a + 3, n - 3, &k.data, &k.len))) {
			return rc;
		}
	} else if (!strcmp(cmd, "broker")) {
		static const char *ops[][2] = {{"test", "test"},
		                               {"info", "info"},
		                               {"stats", "stats"},
		                               {"clients", "client.list"},
		                               {"client.list", "client.list"},
		                               {"topics", "topic.stats"},
		                               {"diagnostics", "diagnostics"}};
		if (n != 1)
			return bad("%s", "broker: expected test, info, stats, "
			                 "clients, topics or diagnostics");
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			if (!strcmp(a[0], ops[i][0])) {
				k.method = ops[i][1];
				/* BUS/RT's name for it prints the same table */
				k.broker_op = strcmp(ops[i][0], "client.list")
				                  ? ops[i][0]
				                  : "clients";
			}
		if (!k.method)
			return bad("broker: '%s' is not test, info, stats, "
			           "clients, topics or diagnostics", a[0]);
		if (k.prom && strcmp(k.broker_op, "stats"))
			return bad("%s", "--prometheus goes with broker stats");
		k.cmd = C_BROKER;
		k.target = ".broker";
	} else if (!strcmp(cmd, "benchmark")) {
		if (n)
			return bad("benchmark: unexpected '%s'", a[0]);
		if (iters < (uint64_t)bench.workers)
			return bad("%s", "benchmark: --iters must be at least "
			                 "--workers");
		k.cmd = C_BENCH;
		bench.per = (uint32_t)(iters / (uint64_t)bench.workers);
		bench.psize = (size_t)psize;
	} else {
		return bad("unknown command '%s'", cmd);
	}
	if (k.prom && k.cmd != C_BROKER)
		return bad("%s", "--prometheus goes with broker stats");

	if (!strncmp(k.addr, "tls://", 6) || tls.ca_file || tls.cert_file ||
	    tls.key_file) {
		char terr[512];
		if ((!tls.cert_file) != (!tls.key_file))
			return bad("%s", "--tls-cert and --tls-key go together");
		if (bus_tls_check(&tls, false, terr, sizeof(terr)) != 0)
			return bad("%s", terr);
	}
	char aerr[300] = "";
	if (bus_address_check(k.addr, aerr, sizeof(aerr)))
		return bad("%s", aerr);
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&k.loop);
	struct bus_client_config cfg;
	bus_client_config_defaults(&cfg);
	cfg.name = name;
	cfg.broker_uid = broker_uid;
	cfg.tls = &tls;
	cfg.reconnect = reconnect && (k.cmd == C_LISTEN || k.cmd == C_RPC_LISTEN);
	cfg.op_timeout_ns = k.timeout_ns;
	if (buf_size) { /* BUS/RT's --buf-size: how much is written at once */
		cfg.flush_bytes = (size_t)buf_size;
		if (cfg.flush_bytes > cfg.out_bytes_max)
			cfg.out_bytes_max = cfg.flush_bytes;
	}
	k.out_max = cfg.out_bytes_max;
	struct bus_client_handlers h = {
	    on_delivery, k.cmd == C_RPC_LISTEN ? on_rpc_listen : NULL, on_state,
	    NULL, &k};
	if (k.verbose)
		fprintf(stderr, "busrt-cli: connecting to %s as %s%s\n", k.addr,
		        name, k.cmd == C_BENCH ? "-N" : "");
	uv_signal_init(&k.loop, &k.sigint);
	uv_signal_init(&k.loop, &k.sigterm);
	uv_timer_init(&k.loop, &k.stop_timer);
	k.sigint.data = k.sigterm.data = k.stop_timer.data = &k;
	if (k.cmd == C_BENCH) {
		rc = bench_open(&k, &bench, &cfg);
		if (rc) {
			fprintf(stderr, "busrt-cli: benchmark: %s\n", bus_strerror(rc));
			k.finished = true;
			k.status = 2;
			if (bench.workers == 0)
				close_handles(&k);
		}
	} else {
		rc = bus_client_open(&k.loop, k.addr, &cfg, &h, &k.c);
		if (rc) {
			fprintf(stderr, "busrt-cli: %s: %s\n", k.addr,
			        rc == BUS_EINVAL ? "bad client name" : bus_strerror(rc));
			close_handles(&k);
			uv_run(&k.loop, UV_RUN_DEFAULT);
			uv_loop_close(&k.loop);
			return 2;
		}
	}
	uv_signal_start(&k.sigint, on_signal, SIGINT);
	uv_signal_start(&k.sigterm, on_signal, SIGTERM);
	if ((k.cmd == C_LISTEN || k.cmd == C_RPC_LISTEN) && k.seconds > 0)
		uv_timer_start(&k.stop_timer, on_stop_timer,
		               (uint64_t)(k.seconds * 1000), 0);
	uv_run(&k.loop, UV_RUN_DEFAULT);
	uv_loop_close(&k.loop);
	free(k.data);
	free(k.stats);
	free(masks);
	free(bench.w);
	free(bench.payload);
	return k.status;
}
