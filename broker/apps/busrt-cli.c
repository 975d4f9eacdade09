/* SPDX-License-Identifier: Apache-2.0 */
/*
 * busrt-cli — talk to a BUS/RT broker from a shell.
 *
 *   busrt-cli [-s PATH|HOST:PORT] [-n NAME] [--timeout SEC] [--json] COMMAND
 *     listen MASK...                 [--count N] [--seconds S] [--reconnect]
 *     publish TOPIC DATA             [--qos N]
 *     send TARGET DATA               [--qos N]
 *     broadcast MASK DATA            [--qos N]
 *     rpc call TARGET METHOD [key=value ...] | --raw DATA
 *     broker test|info|stats|clients|topics|diagnostics
 *                                    [--prometheus: stats as Prometheus text]
 *
 * --proto: DaemonEye payloads are protobuf (proto/daemoneye.proto): listen
 * prints events as JSON; rpc call builds the method's request from
 * key=value (sub.field=value for nested fields) and prints the reply as
 * JSON.
 *
 * DATA is a literal, @FILE, or - for stdin. RPC params are packed as a
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
	        "usage: busrt-cli [-s PATH|HOST:PORT] [-n NAME] [--timeout SEC] "
	        "[--json]\n"
	        "                 [--broker-uid UID] [--tls-ca FILE] [--tls-cert FILE "
	        "--tls-key FILE] COMMAND\n"
	        "  listen MASK... [--count N] [--seconds S] [--reconnect]\n"
	        "  publish TOPIC DATA [--qos N]\n"
	        "  send TARGET DATA [--qos N]\n"
	        "  broadcast MASK DATA [--qos N]\n"
	        "  rpc call TARGET METHOD [key=value ...]   (--raw DATA: bytes "
	        "as params)\n"
	        "  broker test|info|stats|clients|topics|diagnostics "
	        "(stats --prometheus: the\n"
	        "    Prometheus text of the broker's /metrics endpoint)\n"
	        "--proto: DaemonEye protobuf payloads (events, RPC params and "
	        "replies)\n"
	        "DATA: a literal, @FILE, or - for stdin. Default socket: %s\n"
	        "--broker-uid: the broker must run as UID (default: root or "
	        "our own uid)\n"
	        "-s tls://HOST:PORT: TLS, the broker verified against --tls-ca "
	        "(default: the system's CAs);\n"
	        "  --tls-cert/--tls-key: our client certificate\n"
	        "-h, --help: this text; -V, --version: the version\n",
	        BUS_DEFAULT_SOCKET);
}

enum cmd { C_LISTEN, C_PUBLISH, C_SEND, C_BROADCAST, C_RPC, C_BROKER };

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
	long count, seen;
	double seconds;
	char **args;
	int nargs;
	const char *target, *method, *broker_op;
	uint8_t *data;
	size_t len;
	int status;
	bool started, finished;
	uv_signal_t sigint, sigterm;
	uv_timer_t stop_timer;
};

static void finish(struct cli *k, int status)
{
	if (k->finished)
		return;
	k->finished = true;
	k->status = status;
	uv_signal_stop(&k->sigint);
	uv_signal_stop(&k->sigterm);
	uv_timer_stop(&k->stop_timer);
	bus_client_close(k->c);
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

/* MessagePack (parsed by msgpack-c) printed as JSON. */
static void json_obj(FILE *f, const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		fputs("null", f);
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		fputs(o->via.boolean ? "true" : "false", f);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		fprintf(f, "%" PRIu64, o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		fprintf(f, "%" PRId64, o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		fprintf(f, "%.17g", o->via.f64);
		break;
	case MSGPACK_OBJECT_STR:
		bus_json_str(f, o->via.str.ptr, o->via.str.size);
		break;
	case MSGPACK_OBJECT_BIN:
		fputc('"', f);
		print_hex(f, (const uint8_t *)o->via.bin.ptr, o->via.bin.size);
		fputc('"', f);
		break;
	case MSGPACK_OBJECT_ARRAY:
		fputc('[', f);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if (i)
				fputs(", ", f);
			json_obj(f, &o->via.array.ptr[i]);
		}
		fputc(']', f);
		break;
	case MSGPACK_OBJECT_MAP:
		fputc('{', f);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			if (i)
				fputs(", ", f);
			if (kv->key.type == MSGPACK_OBJECT_STR)
				json_obj(f, &kv->key);
			else {
				fputc('"', f);
				msgpack_object_print(f, kv->key);
				fputc('"', f);
			}
			fputs(": ", f);
			json_obj(f, &kv->val);
		}
		fputc('}', f);
		break;
	default:
		fputs("null", f);
	}
}

/* Prints a payload: MessagePack as JSON when it is exactly one object,
 * else text when printable, else hex. */
static void print_result(const uint8_t *p, size_t n)
{
	if (n) {
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		size_t off = 0;
		if (msgpack_unpack_next(&u, (const char *)p, n, &off) ==
		            MSGPACK_UNPACK_SUCCESS &&
		    off == n && (u.data.type == MSGPACK_OBJECT_MAP ||
		                 u.data.type == MSGPACK_OBJECT_ARRAY)) {
			json_obj(stdout, &u.data);
			fputc('\n', stdout);
			msgpack_unpacked_destroy(&u);
			return;
		}
		msgpack_unpacked_destroy(&u);
	}
	if (printable(p, n, true))
		printf("%.*s\n", (int)n, (const char *)p);
	else {
		print_hex(stdout, p, n);
		fputc('\n', stdout);
	}
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
	if (k->cmd != C_LISTEN || k->finished)
		return;
	char t[40];
	bus_utc_now(t, sizeof(t));
	/* names and topics are the peers': escaped (json.h) in text output */
	char sender[1100], topic[4200];
#define SAFE(buf, str) bus_text_escape(buf, sizeof(buf), str, strlen(str))
	ProtobufCMessage *ev = NULL;
	if (k->proto && d->kind == BUS_OP_PUBLISH)
		ev = bus_pb_unpack(&daemoneye__busrt_event__descriptor, d->data,
		                   d->len, BUS_PB_BUDGET_DEFAULT);
	bool text = printable(d->data, d->len, k->json);
	if (ev) {
		if (k->json) {
			printf("{\"time\": \"%s\", \"sender\": ", t);
			bus_json_str(stdout, d->sender, strlen(d->sender));
			fputs(", \"topic\": ", stdout);
			bus_json_str(stdout, d->topic, strlen(d->topic));
			fputs(", \"event\": ", stdout);
		} else {
			printf("%s %s %s %s ", t,
			       kind_name(d->kind), SAFE(sender, d->sender),
			       SAFE(topic, d->topic));
		}
		bus_pb_json(stdout, ev);
		fputs(k->json ? "}\n" : "\n", stdout);
		bus_pb_free(ev);
	} else if (k->json) {
		printf("{\"time\": \"%s\", \"kind\": \"%s\", \"sender\": ",
		       t, kind_name(d->kind));
		bus_json_str(stdout, d->sender, strlen(d->sender));
		if (d->topic) {
			fputs(", \"topic\": ", stdout);
			bus_json_str(stdout, d->topic, strlen(d->topic));
		}
		if (text) {
			fputs(", \"data\": ", stdout);
			bus_json_str(stdout, (const char *)d->data, d->len);
		} else {
			fputs(", \"hex\": \"", stdout);
			print_hex(stdout, d->data, d->len);
			fputc('"', stdout);
		}
		fputs("}\n", stdout);
	} else {
		printf("%s %s %s %s ", t,
		       kind_name(d->kind), SAFE(sender, d->sender),
		       d->topic ? SAFE(topic, d->topic) : "-");
		if (text)
			printf("%.*s\n", (int)d->len, (const char *)d->data);
		else {
			fputs("hex:", stdout);
			print_hex(stdout, d->data, d->len);
			fputc('\n', stdout);
		}
	}
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
	if (k->cmd == C_LISTEN) {
		fprintf(stderr, "busrt-cli: listening\n");
		return;
	}
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
		bus_pb_json(stdout, m);
		fputc('\n', stdout);
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
		rc = bus_client_subscribe(c, (const char *const *)k->args,
		                          (size_t)k->nargs, op_done, k);
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
	            k->cmd == C_BROADCAST)) {
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
	uv_close((uv_handle_t *)&k->sigint, NULL);
	uv_close((uv_handle_t *)&k->sigterm, NULL);
	uv_close((uv_handle_t *)&k->stop_timer, NULL);
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
	    {"timeout", required_argument, NULL, 't'},
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
	while ((opt = getopt_long(argc, argv, "s:n:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			k.addr = optarg;
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
		case 't':
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
	if (n < 1)
		return bad("%s", "missing COMMAND");
	const char *cmd = a[0];
	a++;
	n--;
	int rc;
	if (!strcmp(cmd, "listen")) {
		if (n < 1)
			return bad("%s", "listen: at least one MASK");
		k.cmd = C_LISTEN;
		k.args = a;
		k.nargs = n;
	} else if (!strcmp(cmd, "publish") || !strcmp(cmd, "send") ||
	           !strcmp(cmd, "broadcast")) {
		if (n != 2)
			return bad("%s: expected 2 arguments", cmd);
		k.cmd = cmd[0] == 'p' ? C_PUBLISH : cmd[0] == 's' ? C_SEND
		                                                  : C_BROADCAST;
		k.cmd_word = cmd;
		k.target = a[0];
		if ((rc = load_data(a[1], &k.data, &k.len)))
			return rc;
	} else if (!strcmp(cmd, "rpc")) {
		if (n < 3 || strcmp(a[0], "call"))
			return bad("%s", "rpc: expected call TARGET METHOD "
			                 "[key=value ...]");
		k.cmd = C_RPC;
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
		                               {"topics", "topic.stats"},
		                               {"diagnostics", "diagnostics"}};
		if (n != 1)
			return bad("%s", "broker: expected test, info, stats, "
			                 "clients, topics or diagnostics");
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			if (!strcmp(a[0], ops[i][0])) {
				k.method = ops[i][1];
				k.broker_op = ops[i][0];
			}
		if (!k.method)
			return bad("broker: '%s' is not test, info, stats, "
			           "clients, topics or diagnostics", a[0]);
		if (k.prom && strcmp(k.broker_op, "stats"))
			return bad("%s", "--prometheus goes with broker stats");
		k.cmd = C_BROKER;
		k.target = ".broker";
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
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&k.loop);
	struct bus_client_config cfg;
	bus_client_config_defaults(&cfg);
	cfg.name = name;
	cfg.broker_uid = broker_uid;
	cfg.tls = &tls;
	cfg.reconnect = reconnect && k.cmd == C_LISTEN;
	cfg.op_timeout_ns = k.timeout_ns;
	k.out_max = cfg.out_bytes_max;
	struct bus_client_handlers h = {on_delivery, NULL, on_state, NULL, &k};
	char aerr[300] = "";
	if (bus_address_check(k.addr, aerr, sizeof(aerr)))
		return bad("%s", aerr);
	rc = bus_client_open(&k.loop, k.addr, &cfg, &h, &k.c);
	if (rc) {
		fprintf(stderr, "busrt-cli: %s: %s\n", k.addr,
		        rc == BUS_EINVAL ? "bad client name" : bus_strerror(rc));
		return 2;
	}
	uv_signal_init(&k.loop, &k.sigint);
	uv_signal_init(&k.loop, &k.sigterm);
	uv_timer_init(&k.loop, &k.stop_timer);
	k.sigint.data = k.sigterm.data = k.stop_timer.data = &k;
	uv_signal_start(&k.sigint, on_signal, SIGINT);
	uv_signal_start(&k.sigterm, on_signal, SIGTERM);
	if (k.cmd == C_LISTEN && k.seconds > 0)
		uv_timer_start(&k.stop_timer, on_stop_timer,
		               (uint64_t)(k.seconds * 1000), 0);
	uv_run(&k.loop, UV_RUN_DEFAULT);
	uv_loop_close(&k.loop);
	free(k.data);
	free(k.stats);
	return k.status;
}
