/* SPDX-License-Identifier: Apache-2.0 */
/*
 * busrt-peers — the peer brokers' side of `make bench`: the same workloads
 * as busrt-bench (bench/run.py drives both), through NATS (libnats),
 * Redis pub/sub (hiredis) and MQTT (libmosquitto), each with its client
 * library's defaults, against its server's default configuration. Each
 * subcommand prints one JSON object on stdout.
 *
 *   pub --proto P --addr A --topic T --messages N [--size B]
 *       the first 8 payload bytes carry the sequence number from 1
 *   sub --proto P --addr A --mask M --expect N [--idle-ms I]
 *       counts what arrives (and what was lost: a sequence jump per
 *       publisher); stops at N, or I ms (2000) after the last message
 *   rpc-server --proto P --addr A        answers bench.rpc until SIGTERM
 *   rpc-client --proto P --addr A --calls N [--size B]
 *   js-pub --proto nats --addr A --messages N [--size B]
 *       JetStream: creates the stream BENCH on bench.> (file storage)
 *       and publishes N messages asynchronously, each with its own
 *       Nats-Msg-Id, until every PubAck came: the bound busrt-bridge is
 *       measured against
 *
 * P: nats (A: nats://127.0.0.1:PORT), redis (A: HOST:PORT or a socket
 * path), mqtt (A: HOST:PORT). Topics are given in our form (bench/p0,
 * bench/+, bench/#) and translated: NATS bench.p0, bench.*, bench.>;
 * Redis channels bench.p0 and PSUBSCRIBE patterns bench.*; MQTT as is.
 * "ready" on stderr once subscribed or serving. Timings: CLOCK_MONOTONIC.
 * Only make bench builds this (its libraries are bench dependencies).
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <mosquitto.h>
#include <nats/nats.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "latency.h"

static const char *o_proto, *o_addr, *o_topic = "bench/p0", *o_mask = "bench/#";
static uint64_t o_n = 100000, o_size = 100, o_idle_ms = 2000;
static volatile sig_atomic_t stop_flag;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "busrt-peers: %s: %s\n", what, why);
	exit(1);
}

/* Our topic or mask in the peer's syntax, into out. */
static void translate(const char *t, char *out, size_t n)
{
	bool mqtt = !strcmp(o_proto, "mqtt");
	size_t k = 0;
	for (; *t && k + 2 < n; t++) {
		char c = *t;
		if (!mqtt && c == '/')
			c = '.';
		else if (!mqtt && c == '+')
			c = '*';
		else if (!mqtt && c == '#')
			c = !strcmp(o_proto, "nats") ? '>' : '*';
		out[k++] = c;
	}
	out[k] = 0;
}

/* ---- counting what arrives ------------------------------------------------- */
#define SENDERS_MAX 64
struct counter {
	pthread_mutex_t mu;
	uint64_t got, lost, dups, t0, t1;
	uint64_t last[SENDERS_MAX]; /* by the topic's last digit(s): p0..p63 */
	bool done;
};
static struct counter cnt = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void count(const char *topic, const void *data, size_t len)
{
	pthread_mutex_lock(&cnt.mu);
	uint64_t t = now_ns();
	if (!cnt.got++)
		cnt.t0 = t;
	cnt.t1 = t;
	const char *p = topic ? strrchr(topic, 'p') : NULL;
	unsigned who = p ? (unsigned)atoi(p + 1) % SENDERS_MAX : 0;
	if (len >= 8) {
		uint64_t seq;
		memcpy(&seq, data, 8);
		if (seq <= cnt.last[who])
			cnt.dups++;
		else
			cnt.lost += seq - cnt.last[who] - 1;
		if (seq > cnt.last[who])
			cnt.last[who] = seq;
	}
	if (cnt.got >= o_n)
		cnt.done = true;
	pthread_mutex_unlock(&cnt.mu);
}

/* Waits until everything came, or o_idle_ms passed without a message. */
static void wait_count(void (*pump)(int ms))
{
	for (;;) {
		pump(50);
		pthread_mutex_lock(&cnt.mu);
		bool done = cnt.done ||
		            (cnt.got && now_ns() - cnt.t1 > o_idle_ms * 1000000u);
		pthread_mutex_unlock(&cnt.mu);
		if (done || stop_flag)
			break;
	}
}

static void print_count(void)
{
	/* what never came, past the last sequence seen, is lost too */
	uint64_t lost = cnt.lost;
	if (cnt.got < o_n && lost < o_n - cnt.got)
		lost = o_n - cnt.got;
	double secs = cnt.t1 > cnt.t0 ? (double)(cnt.t1 - cnt.t0) / 1e9 : 1e-9;
	printf("{\"messages\": %llu, \"seconds\": %.6f, \"lost\": %llu, "
	       "\"duplicated\": %llu}\n",
	       (unsigned long long)cnt.got, secs, (unsigned long long)lost,
	       (unsigned long long)cnt.dups);
}

static uint8_t *payload(void)
{
	uint8_t *p = malloc(o_size ? o_size : 1);
	memset(p, 'p', o_size);
	return p;
}

static void stamp(uint8_t *p, uint64_t seq)
{
	if (o_size >= 8)
		memcpy(p, &seq, 8);
}

/* ---- NATS ------------------------------------------------------------------- */
/* asap: send each message at once (round trips), instead of libnats's
 * default of coalescing in its flusher thread (streams). */
static natsConnection *nats_open_asap(bool asap)
{
	natsConnection *nc = NULL;
	natsOptions *opts = NULL;
	natsStatus s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetURL(opts, o_addr);
	if (s == NATS_OK && asap)
		s = natsOptions_SetSendAsap(opts, true);
	if (s == NATS_OK)
		s = natsConnection_Connect(&nc, opts);
	natsOptions_Destroy(opts);
	if (s != NATS_OK)
		die("nats connect", natsStatus_GetText(s));
	return nc;
}

static natsConnection *nats_open(void)
{
	return nats_open_asap(false);
}

static void nats_pub(void)
{
	natsConnection *nc = nats_open();
	char subj[128];
	translate(o_topic, subj, sizeof(subj));
	uint8_t *p = payload();
	uint64_t t0 = now_ns();
	for (uint64_t i = 1; i <= o_n; i++) {
		stamp(p, i);
		natsStatus s = natsConnection_Publish(nc, subj, p, (int)o_size);
		if (s != NATS_OK)
			die("nats publish", natsStatus_GetText(s));
	}
	natsConnection_FlushTimeout(nc, 60000);
	printf("{\"messages\": %llu, \"seconds\": %.6f}\n",
	       (unsigned long long)o_n, (now_ns() - t0) / 1e9);
	natsConnection_Destroy(nc);
}

static void nats_js_pub(void)
{
	natsConnection *nc = nats_open();
	jsCtx *js = NULL;
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = 65536;
	natsStatus s = natsConnection_JetStream(&js, nc, &jo);
	const char *subjects[] = {"bench.>"};
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	sc.Name = "BENCH";
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	jsStreamInfo *si = NULL;
	if (s == NATS_OK)
		s = js_AddStream(&si, js, &sc, NULL, NULL);
	if (s != NATS_OK)
		die("jetstream stream", natsStatus_GetText(s));
	jsStreamInfo_Destroy(si);
	char subj[128], id[32];
	translate(o_topic, subj, sizeof(subj));
	uint8_t *p = payload();
	uint64_t t0 = now_ns();
	for (uint64_t i = 1; i <= o_n; i++) {
		stamp(p, i);
		jsPubOptions po;
		jsPubOptions_Init(&po);
		snprintf(id, sizeof(id), "b/%llu", (unsigned long long)i);
		po.MsgId = id;
		s = js_PublishAsync(js, subj, p, (int)o_size, &po);
		if (s != NATS_OK)
			die("jetstream publish", natsStatus_GetText(s));
	}
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 600000;
	s = js_PublishAsyncComplete(js, &po);
	if (s != NATS_OK)
		die("jetstream acks", natsStatus_GetText(s));
	printf("{\"messages\": %llu, \"seconds\": %.6f}\n",
	       (unsigned long long)o_n, (now_ns() - t0) / 1e9);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	free(p);
}

static void nats_on_msg(natsConnection *nc, natsSubscription *sub,
                        natsMsg *m, void *arg)
{
	(void)nc, (void)sub, (void)arg;
	count(natsMsg_GetSubject(m), natsMsg_GetData(m),
	      (size_t)natsMsg_GetDataLength(m));
	natsMsg_Destroy(m);
}

static void sleep_ms(int ms)
{
	usleep((useconds_t)ms * 1000);
}

static void nats_sub(void)
{
	natsConnection *nc = nats_open();
	char subj[128];
	translate(o_mask, subj, sizeof(subj));
	natsSubscription *sub = NULL;
	natsStatus s = natsConnection_Subscribe(&sub, nc, subj, nats_on_msg, NULL);
	if (s == NATS_OK)
		s = natsConnection_Flush(nc);
	if (s != NATS_OK)
		die("nats subscribe", natsStatus_GetText(s));
	fprintf(stderr, "ready\n");
	wait_count(sleep_ms);
	int64_t dropped = 0;
	natsSubscription_GetDropped(sub, &dropped);
	print_count();
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(nc);
}

static void nats_on_rpc(natsConnection *nc, natsSubscription *sub, natsMsg *m,
                        void *arg)
{
	(void)sub, (void)arg;
	natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m),
	                       natsMsg_GetDataLength(m));
	natsMsg_Destroy(m);
}

static void nats_rpc_server(void)
{
	natsConnection *nc = nats_open_asap(true);
	natsSubscription *sub = NULL;
	if (natsConnection_Subscribe(&sub, nc, "bench.rpc", nats_on_rpc, NULL) !=
	            NATS_OK ||
	    natsConnection_Flush(nc) != NATS_OK)
		die("nats", "subscribe");
	fprintf(stderr, "ready\n");
	while (!stop_flag)
		sleep_ms(50);
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(nc);
}

static void nats_rpc_client(void)
{
	natsConnection *nc = nats_open_asap(true);
	uint8_t *p = payload();
	uint64_t *lat = malloc(sizeof(*lat) * o_n);
	for (uint64_t i = 0; i < o_n; i++) {
		natsMsg *reply = NULL;
		uint64_t t = now_ns();
		natsStatus s = natsConnection_Request(&reply, nc, "bench.rpc", p,
		                                      (int)o_size, 5000);
		if (s != NATS_OK)
			die("nats request", natsStatus_GetText(s));
		lat[i] = now_ns() - t;
		natsMsg_Destroy(reply);
	}
	print_latencies(lat, o_n);
	natsConnection_Destroy(nc);
}

/* ---- Redis -------------------------------------------------------------------- */
static redisContext *redis_open(void)
{
	redisContext *c;
	const char *colon = strrchr(o_addr, ':');
	if (o_addr[0] == '/' || !colon) {
		c = redisConnectUnix(o_addr);
	} else {
		char host[128];
		snprintf(host, sizeof(host), "%.*s", (int)(colon - o_addr), o_addr);
		c = redisConnect(host, atoi(colon + 1));
	}
	if (!c || c->err)
		die("redis connect", c ? c->errstr : "out of memory");
	return c;
}

static void redis_pub(void)
{
	redisContext *c = redis_open();
	char ch[128];
	translate(o_topic, ch, sizeof(ch));
	uint8_t *p = payload();
	uint64_t t0 = now_ns();
	const uint64_t batch = 1000; /* pipelined, as a fast publisher would */
	for (uint64_t i = 1; i <= o_n; i += batch) {
		uint64_t k = i + batch <= o_n + 1 ? batch : o_n + 1 - i;
		for (uint64_t j = 0; j < k; j++) {
			stamp(p, i + j);
			redisAppendCommand(c, "PUBLISH %s %b", ch, p, (size_t)o_size);
		}
		for (uint64_t j = 0; j < k; j++) {
			redisReply *r = NULL;
			if (redisGetReply(c, (void **)&r) != REDIS_OK)
				die("redis publish", c->errstr);
			freeReplyObject(r);
		}
	}
	printf("{\"messages\": %llu, \"seconds\": %.6f}\n",
	       (unsigned long long)o_n, (now_ns() - t0) / 1e9);
	redisFree(c);
}

static redisContext *redis_sub_ctx;

/* Reads what is there (for up to ms), counting messages. */
static void redis_pump(int ms)
{
	redisContext *c = redis_sub_ctx;
	for (;;) {
		redisReply *r = NULL;
		if (redisReaderGetReply(c->reader, (void **)&r) != REDIS_OK)
			die("redis", "protocol error");
		if (!r) {
			struct pollfd pf = {c->fd, POLLIN, 0};
			if (poll(&pf, 1, ms) <= 0)
				return;
			if (redisBufferRead(c) != REDIS_OK) {
				stop_flag = 1; /* the server closed it */
				return;
			}
			ms = 0;
			continue;
		}
		/* ["message", ch, data] or ["pmessage", pattern, ch, data] */
		if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3) {
			redisReply *ch = r->element[r->elements - 2];
			redisReply *d = r->element[r->elements - 1];
			if (d->type == REDIS_REPLY_STRING)
				count(ch->str, d->str, d->len);
		}
		freeReplyObject(r);
	}
}

static void redis_sub(void)
{
	redisContext *c = redis_sub_ctx = redis_open();
	char pat[128];
	translate(o_mask, pat, sizeof(pat));
	bool wild = strchr(pat, '*') != NULL;
	redisReply *r = redisCommand(c, wild ? "PSUBSCRIBE %s" : "SUBSCRIBE %s", pat);
	if (!r)
		die("redis subscribe", c->errstr);
	freeReplyObject(r);
	fprintf(stderr, "ready\n");
	wait_count(redis_pump);
	print_count();
	redisFree(c);
}

static void redis_rpc_server(void)
{
	redisContext *s = redis_open(), *pub = redis_open();
	redisReply *r = redisCommand(s, "SUBSCRIBE bench.rpc");
	if (!r)
		die("redis subscribe", s->errstr);
	freeReplyObject(r);
	fprintf(stderr, "ready\n");
	while (!stop_flag) {
		struct pollfd pf = {s->fd, POLLIN, 0};
		redisReply *m = NULL;
		if (redisReaderGetReply(s->reader, (void **)&m) == REDIS_OK && !m) {
			if (poll(&pf, 1, 50) <= 0 || redisBufferRead(s) != REDIS_OK)
				continue;
			continue;
		}
		if (m && m->type == REDIS_REPLY_ARRAY && m->elements == 3) {
			redisReply *x = redisCommand(pub, "PUBLISH bench.reply %b",
			                             m->element[2]->str,
			                             (size_t)m->element[2]->len);
			freeReplyObject(x);
		}
		freeReplyObject(m);
	}
	redisFree(s);
	redisFree(pub);
}

static void redis_rpc_client(void)
{
	redisContext *s = redis_open(), *pub = redis_open();
	redisReply *r = redisCommand(s, "SUBSCRIBE bench.reply");
	if (!r)
		die("redis subscribe", s->errstr);
	freeReplyObject(r);
	uint8_t *p = payload();
	uint64_t *lat = malloc(sizeof(*lat) * o_n);
	for (uint64_t i = 0; i < o_n; i++) {
		uint64_t t = now_ns();
		redisReply *x = redisCommand(pub, "PUBLISH bench.rpc %b", p,
		                             (size_t)o_size);
		freeReplyObject(x);
		redisReply *m = NULL;
		if (redisGetReply(s, (void **)&m) != REDIS_OK)
			die("redis reply", s->errstr);
		lat[i] = now_ns() - t;
		freeReplyObject(m);
	}
	print_latencies(lat, o_n);
	redisFree(s);
	redisFree(pub);
}

/* ---- MQTT (Mosquitto) ---------------------------------------------------------- */
static struct mosquitto *mqtt_open(void (*on_msg)(struct mosquitto *, void *,
                                                  const struct mosquitto_message *))
{
	mosquitto_lib_init();
	struct mosquitto *m = mosquitto_new(NULL, true, NULL);
	if (!m)
		die("mqtt", "mosquitto_new");
	if (on_msg)
		mosquitto_message_callback_set(m, on_msg);
	char host[128];
	const char *colon = strrchr(o_addr, ':');
	snprintf(host, sizeof(host), "%.*s",
	         (int)(colon ? colon - o_addr : (long)strlen(o_addr)), o_addr);
	int rc = mosquitto_connect(m, host, colon ? atoi(colon + 1) : 1883, 60);
	if (rc != MOSQ_ERR_SUCCESS)
		die("mqtt connect", mosquitto_strerror(rc));
	return m;
}

static void mqtt_pub(void)
{
	struct mosquitto *m = mqtt_open(NULL);
	uint8_t *p = payload();
	uint64_t t0 = now_ns();
	for (uint64_t i = 1; i <= o_n; i++) {
		stamp(p, i);
		int rc = mosquitto_publish(m, NULL, o_topic, (int)o_size, p, 0, false);
		if (rc != MOSQ_ERR_SUCCESS)
			die("mqtt publish", mosquitto_strerror(rc));
		if (i % 256 == 0)
			mosquitto_loop(m, 0, 1); /* write what is queued */
	}
	while (mosquitto_want_write(m))
		mosquitto_loop(m, 10, 1);
	printf("{\"messages\": %llu, \"seconds\": %.6f}\n",
	       (unsigned long long)o_n, (now_ns() - t0) / 1e9);
	mosquitto_disconnect(m);
	mosquitto_destroy(m);
}

static struct mosquitto *mqtt_sub_ctx;

static void mqtt_on_msg(struct mosquitto *m, void *arg,
                        const struct mosquitto_message *msg)
{
	(void)m, (void)arg;
	count(msg->topic, msg->payload, (size_t)msg->payloadlen);
}

static void mqtt_pump(int ms)
{
	if (mosquitto_loop(mqtt_sub_ctx, ms, 1) != MOSQ_ERR_SUCCESS)
		stop_flag = 1;
}

static void mqtt_sub(void)
{
	struct mosquitto *m = mqtt_sub_ctx = mqtt_open(mqtt_on_msg);
	if (mosquitto_subscribe(m, NULL, o_mask, 0) != MOSQ_ERR_SUCCESS)
		die("mqtt", "subscribe");
	for (int i = 0; i < 20; i++) /* the SUBACK */
		mosquitto_loop(m, 10, 1);
	fprintf(stderr, "ready\n");
	wait_count(mqtt_pump);
	print_count();
	mosquitto_destroy(m);
}

static void mqtt_on_rpc(struct mosquitto *m, void *arg,
                        const struct mosquitto_message *msg)
{
	(void)arg;
	mosquitto_publish(m, NULL, "bench/reply", msg->payloadlen, msg->payload,
	                  0, false);
}

static void mqtt_rpc_server(void)
{
	struct mosquitto *m = mqtt_open(mqtt_on_rpc);
	mosquitto_subscribe(m, NULL, "bench/rpc", 0);
	for (int i = 0; i < 20; i++)
		mosquitto_loop(m, 10, 1);
	fprintf(stderr, "ready\n");
	while (!stop_flag)
		mosquitto_loop(m, 50, 1);
	mosquitto_destroy(m);
}

static volatile bool mqtt_answered;
static void mqtt_on_reply(struct mosquitto *m, void *arg,
                          const struct mosquitto_message *msg)
{
	(void)m, (void)arg, (void)msg;
	mqtt_answered = true;
}

static void mqtt_rpc_client(void)
{
	struct mosquitto *m = mqtt_open(mqtt_on_reply);
	mosquitto_subscribe(m, NULL, "bench/reply", 0);
	for (int i = 0; i < 20; i++)
		mosquitto_loop(m, 10, 1);
	uint8_t *p = payload();
	uint64_t *lat = malloc(sizeof(*lat) * o_n);
	for (uint64_t i = 0; i < o_n; i++) {
		uint64_t t = now_ns();
		mqtt_answered = false;
		mosquitto_publish(m, NULL, "bench/rpc", (int)o_size, p, 0, false);
		while (!mqtt_answered)
			if (mosquitto_loop(m, 1000, 1) != MOSQ_ERR_SUCCESS)
				die("mqtt", "connection lost");
		lat[i] = now_ns() - t;
	}
	print_latencies(lat, o_n);
	mosquitto_destroy(m);
}

/* ---- the command line -------------------------------------------------------------- */
static void on_term(int sig)
{
	(void)sig;
	stop_flag = 1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"proto", required_argument, NULL, 'p'},
	    {"addr", required_argument, NULL, 'a'},
	    {"topic", required_argument, NULL, 't'},
	    {"mask", required_argument, NULL, 'k'},
	    {"messages", required_argument, NULL, 'm'},
	    {"expect", required_argument, NULL, 'm'},
	    {"calls", required_argument, NULL, 'm'},
	    {"size", required_argument, NULL, 'z'},
	    {"idle-ms", required_argument, NULL, 'i'},
	    {NULL, 0, NULL, 0}};
	if (argc < 2) {
		fprintf(stderr, "usage: busrt-peers pub|sub|rpc-server|rpc-client "
		                "--proto nats|redis|mqtt --addr ADDR [options]\n");
		return 2;
	}
	const char *cmd = argv[1];
	optind = 2;
	int opt;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p': o_proto = optarg; break;
		case 'a': o_addr = optarg; break;
		case 't': o_topic = optarg; break;
		case 'k': o_mask = optarg; break;
		case 'm': o_n = strtoull(optarg, NULL, 10); break;
		case 'z': o_size = strtoull(optarg, NULL, 10); break;
		case 'i': o_idle_ms = strtoull(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	if (!o_proto || !o_addr || !o_n || o_size > 65536 ||
	    (strcmp(o_proto, "nats") && strcmp(o_proto, "redis") &&
	     strcmp(o_proto, "mqtt"))) {
		fprintf(stderr, "busrt-peers: need --proto nats|redis|mqtt, --addr, "
		                "a count and --size up to 65536\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_term);
	setvbuf(stdout, NULL, _IOLBF, 0);
	static const struct {
		const char *proto, *cmd;
		void (*fn)(void);
	} table[] = {
	    {"nats", "pub", nats_pub},           {"nats", "sub", nats_sub},
	    {"nats", "js-pub", nats_js_pub},
	    {"nats", "rpc-server", nats_rpc_server},
	    {"nats", "rpc-client", nats_rpc_client},
	    {"redis", "pub", redis_pub},         {"redis", "sub", redis_sub},
	    {"redis", "rpc-server", redis_rpc_server},
	    {"redis", "rpc-client", redis_rpc_client},
	    {"mqtt", "pub", mqtt_pub},           {"mqtt", "sub", mqtt_sub},
	    {"mqtt", "rpc-server", mqtt_rpc_server},
	    {"mqtt", "rpc-client", mqtt_rpc_client},
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (!strcmp(table[i].proto, o_proto) && !strcmp(table[i].cmd, cmd)) {
			table[i].fn();
			return 0;
		}
	fprintf(stderr, "busrt-peers: unknown command '%s'\n", cmd);
	return 2;
}
