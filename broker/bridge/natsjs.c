/* SPDX-License-Identifier: Apache-2.0 */
/*
 * natsjs.c — the bridge's NATS side (natsjs.h): libnats, JetStream
 * publishes with PubAcks, the connection's events; the window
 * (services/bridge.c) under one mutex. Linked by busrt-bridge and by
 * daemoneye-agent (agent.bridge); not part of libbusrt (libnats is only
 * theirs).
 */
#define _DEFAULT_SOURCE
#include "natsjs.h"
#include "bus/json.h"

#include <errno.h>
#include <jansson.h>
#include <nats/nats.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

struct natsjs {
	const struct bus_bridge_config *cfg; /* the caller's, kept alive */
	const char *urls[BUS_BRIDGE_URLS_MAX];
	char host[BUS_BR_HOST_BYTES_MAX];
	natsjs_log_fn log;
	void *log_arg;
	int log_level;

	pthread_mutex_t mu;     /* guards what follows, to pub */
	pthread_cond_t cv;
	struct bus_bridge br;
	bool nats_up;
	bool stream_ok;
	bool stopping;          /* the publisher thread ends */
	bool published_any;     /* js_PublishMsgAsync took a message */
	bool pub_idle;          /* the publisher waits for work: signal it */
	uint64_t expired_at;    /* the last bus_br_expire */
	uint64_t disconnects, connects;

	pthread_t pub;
	bool pub_started;
	natsOptions *opts;
	natsConnection *nc;
	jsCtx *js;
};

static void jlog(struct natsjs *a, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void jlog(struct natsjs *a, int level, const char *fmt, ...)
{
	if (level > a->log_level || !a->log)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	a->log(a->log_arg, level, line);
}

/* libnats's last error text for this thread, else the status's. */
static const char *nats_err(natsStatus s)
{
	const char *t = nats_GetLastError(NULL);
	return t && *t ? t : natsStatus_GetText(s);
}

static uint64_t now_ns(void)
{
	return uv_hrtime();
}

/* ---- NATS side ------------------------------------------------------------ */
/* The stream: found, or created on PREFIX.> (file storage, our
 * duplicate window) when bridge.stream.create allows. */
static bool ensure_stream(struct natsjs *a)
{
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;
	natsStatus s = js_GetStreamInfo(&si, a->js, a->cfg->stream, NULL, &ec);
	if (s == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return true;
	}
	if (s != NATS_NOT_FOUND && ec != JSStreamNotFoundErr) {
		jlog(a, 1, "stream %s: %s", a->cfg->stream, natsStatus_GetText(s));
		return false;
	}
	if (!a->cfg->create_stream) {
		jlog(a, 0, "stream %s does not exist (bridge.stream.create is "
		      "false)", a->cfg->stream);
		return false;
	}
	char subj[80];
	snprintf(subj, sizeof(subj), "%s.>", a->cfg->subject_prefix);
	const char *subjects[] = {subj};
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	sc.Name = a->cfg->stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Duplicates = (int64_t)a->cfg->duplicate_window_ms * 1000000;
	s = js_AddStream(&si, a->js, &sc, NULL, &ec);
	if (s != NATS_OK) {
		jlog(a, 0, "creating stream %s on %s: %s (error %d)",
		      a->cfg->stream, subj, nats_err(s), (int)ec);
		return false;
	}
	jsStreamInfo_Destroy(si);
	jlog(a, 2, "created stream %s on %s", a->cfg->stream, subj);
	return true;
}

/* Header values carry no control character. */
static bool header_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			return false;
	return true;
}

static void timed_wait(struct natsjs *a, uint64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&a->cv, &a->mu, &ts);
}

#define PUB_BATCH 32

static void *publisher(void *arg)
{
	struct natsjs *a = arg;
	pthread_mutex_lock(&a->mu);
	while (!a->stopping) {
		if (!a->nats_up) {
			timed_wait(a, 1000);
			continue;
		}
		if (!a->stream_ok) {
			pthread_mutex_unlock(&a->mu);
			bool ok = ensure_stream(a);
			pthread_mutex_lock(&a->mu);
			a->stream_ok = ok;
			if (!ok)
				timed_wait(a, 1000);
			continue;
		}
		struct bus_br_entry *e = bus_br_next(&a->br);
		if (!e) {
			/* a scan of the window: every 100 ms at most */
			uint64_t now = now_ns();
			size_t expired = 0;
			if (now - a->expired_at >= 100000000u) {
				a->expired_at = now;
				expired = bus_br_expire(&a->br, now);
			}
			if (!expired) {
				a->pub_idle = true; /* takers wake us */
				timed_wait(a, 100);
				a->pub_idle = false;
			}
			continue;
		}
		/* up to PUB_BATCH messages made under the lock (an entry may
		 * be freed by a PubAck once the lock is let go), published
		 * without it */
		natsMsg *ms[PUB_BATCH];
		char *ids[PUB_BATCH];
		int k = 0;
		for (; e && k < PUB_BATCH; e = bus_br_next(&a->br)) {
			natsMsg *m = NULL;
			char *id = strdup(e->msgid);
			if (!id || natsMsg_Create(&m, e->subject, NULL,
			                          (const char *)e->data,
			                          (int)e->len) != NATS_OK) {
				free(id);
				break; /* out of memory: later */
			}
			natsMsgHeader_Set(m, "Busrt-Sender", e->sender);
			if (header_ok(e->topic))
				natsMsgHeader_Set(m, "Busrt-Topic", e->topic);
			bus_br_sent(&a->br, e, now_ns());
			ms[k] = m;
			ids[k++] = id;
		}
		if (!k) {
			timed_wait(a, 100);
			continue;
		}
		pthread_mutex_unlock(&a->mu);
		natsStatus st[PUB_BATCH];
		for (int i = 0; i < k; i++) {
			jsPubOptions po;
			jsPubOptions_Init(&po);
			po.MsgId = ids[i];
			po.MaxWait = (int64_t)a->cfg->ack_timeout_ms;
			st[i] = js_PublishMsgAsync(a->js, &ms[i], &po);
			natsMsg_Destroy(ms[i]); /* NULL when the library took it */
		}
		pthread_mutex_lock(&a->mu);
		bool failed = false;
		for (int i = 0; i < k; i++) {
			a->published_any |= st[i] == NATS_OK;
			if (st[i] != NATS_OK) {
				bus_br_answer(&a->br, ids[i], false, false);
				if (!failed)
					jlog(a, 3, "publish %s: %s", ids[i],
					     natsStatus_GetText(st[i]));
				failed = true;
			}
			free(ids[i]);
		}
		if (failed)
			timed_wait(a, 50);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
                   void *closure)
{
	(void)js;
	struct natsjs *a = closure;
	const char *id = NULL;
	if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK || !id) {
		natsMsg_Destroy(msg);
		return;
	}
	pthread_mutex_lock(&a->mu);
	bool stored = pa && !pae;
	bus_br_answer(&a->br, id, stored, stored && pa->Duplicate);
	if (!stored)
		jlog(a, 3, "no PubAck for %s: %s", id,
		      pae && pae->ErrText ? pae->ErrText
		      : pae               ? natsStatus_GetText(pae->Err)
		                          : "?");
	if (!stored) /* to publish again */
		pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	natsMsg_Destroy(msg); /* the handler's to free (nats.h) */
}

/* Connected again: what the library still waits an answer for is taken
 * back (its answers would be dropped) and every frame not stored goes
 * out again from the window. */
static void nats_up(struct natsjs *a, const char *what)
{
	natsMsgList pending = {0};
	pthread_mutex_lock(&a->mu);
	bool any = a->published_any;
	pthread_mutex_unlock(&a->mu);
	/* (libnats 3.4 crashes asking before its first async publish) */
	if (any && js_PublishAsyncGetPendingList(&pending, a->js) == NATS_OK)
		natsMsgList_Destroy(&pending);
	pthread_mutex_lock(&a->mu);
	bus_br_reset(&a->br);
	a->nats_up = true;
	a->stream_ok = false; /* a new server may not have it */
	a->connects++;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	jlog(a, 2, "NATS %s", what);
}

static void on_connected(natsConnection *nc, void *closure)
{
	(void)nc;
	nats_up(closure, "connected");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	(void)nc;
	nats_up(closure, "reconnected: re-sending what was not stored");
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	(void)nc;
	struct natsjs *a = closure;
	pthread_mutex_lock(&a->mu);
	bool was = a->nats_up && !a->stopping; /* not our own close */
	a->nats_up = false;
	a->disconnects += was;
	pthread_mutex_unlock(&a->mu);
	if (was)
		jlog(a, 1, "NATS disconnected: holding what was not stored");
}

static int nats_options(struct natsjs *a, bool retry, char *err, size_t errlen)
{
	natsStatus s = natsOptions_Create(&a->opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(a->opts, a->urls, (int)a->cfg->n_urls);
	if (s == NATS_OK)
		s = natsOptions_SetName(a->opts, a->cfg->name);
	if (s == NATS_OK && a->cfg->creds_file[0])
		s = natsOptions_SetUserCredentialsFromFiles(a->opts,
		                                            a->cfg->creds_file,
		                                            NULL);
	if (s == NATS_OK && (a->cfg->tls_ca_file[0] || a->cfg->tls_cert_file[0]))
		s = natsOptions_SetSecure(a->opts, true);
	if (s == NATS_OK && a->cfg->tls_ca_file[0])
		s = natsOptions_LoadCATrustedCertificates(a->opts,
		                                          a->cfg->tls_ca_file);
	if (s == NATS_OK && a->cfg->tls_cert_file[0])
		s = natsOptions_LoadCertificatesChain(a->opts, a->cfg->tls_cert_file,
		                                      a->cfg->tls_key_file);
	if (s == NATS_OK && retry) {
		/* "forever": libnats counts attempts in an int */
		s = natsOptions_SetMaxReconnect(a->opts, 1 << 30);
		if (s == NATS_OK)
			s = natsOptions_SetReconnectWait(a->opts, 250);
		if (s == NATS_OK)
			s = natsOptions_SetRetryOnFailedConnect(a->opts, true,
			                                        on_connected, a);
		if (s == NATS_OK)
			s = natsOptions_SetDisconnectedCB(a->opts, on_disconnected,
			                                  a);
		if (s == NATS_OK)
			s = natsOptions_SetReconnectedCB(a->opts, on_reconnected, a);
	}
	if (s != NATS_OK) {
		snprintf(err, errlen, "NATS options: %s", nats_err(s));
		return BUS_ECONFIG;
	}
	return 0;
}

static int nats_open(struct natsjs *a, char *err, size_t errlen)
{
	if (nats_options(a, true, err, errlen))
		return BUS_ECONFIG;
	natsStatus s = natsConnection_Connect(&a->nc, a->opts);
	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
		snprintf(err, errlen, "NATS %s: %s", a->urls[0], nats_err(s));
		return BUS_EIO;
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = (int64_t)a->cfg->ack_timeout_ms;
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = a;
	/* the window bounds what is in flight: the library never stalls us */
	jo.PublishAsync.MaxPending = (int64_t)a->cfg->window_frames * 4 + 64;
	s = natsConnection_JetStream(&a->js, a->nc, &jo);
	if (s != NATS_OK) {
		snprintf(err, errlen, "JetStream: %s", nats_err(s));
		return BUS_EIO;
	}
	if (natsConnection_Status(a->nc) == NATS_CONN_STATUS_CONNECTED) {
		pthread_mutex_lock(&a->mu);
		a->nats_up = true;
		a->connects++;
		pthread_mutex_unlock(&a->mu);
		jlog(a, 2, "NATS connected");
	} else {
		jlog(a, 1, "NATS %s not reachable yet: retrying", a->urls[0]);
	}
	if (pthread_create(&a->pub, NULL, publisher, a)) {
		snprintf(err, errlen, "cannot start the publisher thread");
		return BUS_ENOMEM;
	}
	a->pub_started = true;
	return 0;
}

static void nats_close(struct natsjs *a)
{
	if (a->pub_started) {
		pthread_mutex_lock(&a->mu);
		a->stopping = true;
		pthread_cond_broadcast(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->pub, NULL);
		a->pub_started = false;
	}
	/* publishes still unanswered are taken back first: no PubAck
	 * handler may run for them once we are gone */
	natsMsgList pending = {0};
	if (a->published_any &&
	    js_PublishAsyncGetPendingList(&pending, a->js) == NATS_OK)
		natsMsgList_Destroy(&pending);
	if (a->nc)
		natsConnection_Close(a->nc);
	jsCtx_Destroy(a->js);
	natsConnection_Destroy(a->nc);
	natsOptions_Destroy(a->opts);
	a->js = NULL;
	a->nc = NULL;
	a->opts = NULL;
}

/* ---- --dump ------------------------------------------------------------- */
/* Header key of m, when it has one, as member name of o. */
static int json_header(json_t *o, natsMsg *m, const char *key,
                       const char *name)
{
	const char *v = NULL;
	if (natsMsgHeader_Get(m, key, &v) != NATS_OK || !v)
		return 0;
	return json_object_set_new(o, name, bus_json_string(v, strlen(v)));
}

static int dump(struct natsjs *a, FILE *f, char *err, size_t errlen)
{
	if (nats_options(a, false, err, errlen))
		return 2;
	natsStatus s = natsConnection_Connect(&a->nc, a->opts);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&a->js, a->nc, NULL);
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;
	if (s == NATS_OK)
		s = js_GetStreamInfo(&si, a->js, a->cfg->stream, NULL, &ec);
	if (s != NATS_OK) {
		bool none = s == NATS_NOT_FOUND || ec == JSStreamNotFoundErr;
		snprintf(err, errlen, "%s on %s: %s", a->cfg->stream, a->urls[0],
		         none ? "no such stream" : nats_err(s));
		nats_close(a);
		return 1;
	}
	/* an ephemeral pull consumer of the whole stream, as a downstream
	 * reader sees it: every message once (no acks asked, none
	 * redelivered), each with its stream sequence */
	uint64_t msgs = si->State.Msgs;
	char filter[160];
	snprintf(filter, sizeof(filter), "%s",
	         si->Config && si->Config->SubjectsLen == 1
	             ? si->Config->Subjects[0] : ">");
	jsStreamInfo_Destroy(si);
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = a->cfg->stream;
	so.Config.DeliverPolicy = js_DeliverAll;
	so.Config.AckPolicy = js_AckNone;
	natsSubscription *sub = NULL;
	int rc = 0;
	uint64_t got = 0;
	if (msgs) {
		s = js_PullSubscribe(&sub, a->js, filter, NULL, NULL, &so, &ec);
		if (s != NATS_OK) {
			snprintf(err, errlen, "%s: a consumer on %s: %s",
			         a->cfg->stream, filter, nats_err(s));
			nats_close(a);
			return 1;
		}
	}
	while (got < msgs) {
		natsMsgList l = {0};
		s = natsSubscription_Fetch(&l, sub, 256, 5000, &ec);
		if (s != NATS_OK) {
			snprintf(err, errlen, "%s: the consumer delivered %llu of "
			         "%llu messages: %s", a->cfg->stream,
			         (unsigned long long)got, (unsigned long long)msgs,
			         nats_err(s));
			rc = 1;
			break;
		}
		for (int i = 0; i < l.Count; i++, got++) {
			natsMsg *m = l.Msgs[i];
			jsMsgMetaData *meta = NULL;
			uint64_t seq = 0;
			if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
				seq = meta->Sequence.Stream;
				jsMsgMetaData_Destroy(meta);
			}
			const char *subj = natsMsg_GetSubject(m);
			json_t *o = json_pack(
				"{sIso}", "seq", (json_int_t)seq, "subject",
				bus_json_string(subj, strlen(subj)));
			if (o && (json_header(o, m, "Nats-Msg-Id", "msg_id") ||
			          json_header(o, m, "Busrt-Sender", "sender") ||
			          json_header(o, m, "Busrt-Topic", "topic") ||
			          json_object_set_new(
					  o, "data",
					  bus_json_hex(natsMsg_GetData(m),
			                               (size_t)natsMsg_GetDataLength(m))))) {
				json_decref(o);
				o = NULL;
			}
			if (bus_json_line(f, o) && !rc) { /* releases o */
				snprintf(err, errlen, "message %llu of the stream "
				         "could not be written: out of memory or %s",
				         (unsigned long long)seq, strerror(errno));
				rc = 1;
			}
		}
		natsMsgList_Destroy(&l);
	}
	if (sub) {
		natsSubscription_Unsubscribe(sub); /* its consumer goes too */
		natsSubscription_Destroy(sub);
	}
	fflush(f);
	nats_close(a);
	return rc;
}


/* ---- the API -------------------------------------------------------------- */
int natsjs_br_config(const struct bus_bridge_config *cfg,
                     struct bus_br_config *out, char *err, size_t errlen)
{
	bus_br_config_defaults(out);
	char hn[256] = "";
	if (!cfg->host[0] && gethostname(hn, sizeof(hn) - 1))
		snprintf(hn, sizeof(hn), "localhost");
	bus_br_host_token(cfg->host[0] ? cfg->host : hn, out->host,
	                  sizeof(out->host));
	_Static_assert(sizeof(out->prefix) == sizeof(cfg->subject_prefix),
	               "the prefix fits");
	memcpy(out->prefix, cfg->subject_prefix, sizeof(out->prefix));
	out->incarnation = (uint64_t)time(NULL) * 1000000000ull;
	out->window_frames = cfg->window_frames;
	out->window_bytes = cfg->window_mib << 20;
	/* the library's own timeout (MaxWait) comes first */
	out->ack_timeout_ns = cfg->ack_timeout_ms * 2000000u;
	struct bus_bridge probe;
	if (bus_br_init(&probe, out)) {
		snprintf(err, errlen, "bridge.subject_prefix '%s': not a NATS "
		         "subject prefix (tokens without '*', '>', spaces, "
		         "separated by single '.')", cfg->subject_prefix);
		return BUS_ECONFIG;
	}
	bus_br_free(&probe);
	if (!cfg->n_urls) {
		snprintf(err, errlen, "no NATS URL (bridge.nats.urls)");
		return BUS_ECONFIG;
	}
	if ((cfg->tls_cert_file[0] != 0) != (cfg->tls_key_file[0] != 0)) {
		snprintf(err, errlen, "bridge.nats.tls: cert_file and key_file "
		         "go together");
		return BUS_ECONFIG;
	}
	return 0;
}

static struct natsjs *alloc(const struct bus_bridge_config *cfg,
                            natsjs_log_fn log, void *log_arg, int log_level)
{
	struct natsjs *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->cfg = cfg;
	a->log = log;
	a->log_arg = log_arg;
	a->log_level = log_level;
	for (uint32_t i = 0; i < cfg->n_urls; i++)
		a->urls[i] = cfg->urls[i];
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	return a;
}

static void release(struct natsjs *a)
{
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	bus_br_free(&a->br);
	free(a);
}

int natsjs_open(struct natsjs **out, const struct bus_bridge_config *cfg,
                natsjs_log_fn log, void *log_arg, int log_level, char *err,
                size_t errlen)
{
	struct bus_br_config bc;
	int rc = natsjs_br_config(cfg, &bc, err, errlen);
	if (rc)
		return rc;
	struct natsjs *a = alloc(cfg, log, log_arg, log_level);
	if (!a || bus_br_init(&a->br, &bc)) {
		if (a)
			release(a);
		snprintf(err, errlen, "out of memory");
		return BUS_ENOMEM;
	}
	snprintf(a->host, sizeof(a->host), "%s", bc.host);
	if (nats_Open(-1) != NATS_OK) {
		snprintf(err, errlen, "cannot start libnats");
		release(a);
		return BUS_EIO;
	}
	if ((rc = nats_open(a, err, errlen))) {
		nats_close(a);
		release(a);
		nats_Close();
		return rc;
	}
	*out = a;
	return 0;
}

const char *natsjs_host(const struct natsjs *j)
{
	return j->host;
}

int natsjs_take(struct natsjs *j, const char *sender, const char *topic,
                const uint8_t *data, size_t len, bool *paused)
{
	pthread_mutex_lock(&j->mu);
	int rc = bus_br_take(&j->br, sender, topic, data, len);
	*paused = bus_br_paused(&j->br);
	if (j->pub_idle) /* a futex wake only when it sleeps */
		pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

bool natsjs_paused(struct natsjs *j)
{
	pthread_mutex_lock(&j->mu);
	bool p = bus_br_paused(&j->br);
	pthread_mutex_unlock(&j->mu);
	return p;
}

uint64_t natsjs_stored_through(struct natsjs *j, const char *sender,
                               uint64_t incarnation, uint64_t upto)
{
	pthread_mutex_lock(&j->mu);
	uint64_t s = bus_br_stored_through(&j->br, sender, incarnation, upto);
	pthread_mutex_unlock(&j->mu);
	return s;
}

void natsjs_stats(struct natsjs *j, struct natsjs_stats *out)
{
	pthread_mutex_lock(&j->mu);
	out->br = j->br.st;
	out->pending = bus_br_pending(&j->br);
	out->disconnects = j->disconnects;
	out->connects = j->connects;
	out->up = j->nats_up;
	pthread_mutex_unlock(&j->mu);
}

void natsjs_stats_json(FILE *f, const struct natsjs_stats *s,
                       uint64_t not_publish)
{
	json_t *o = json_pack(
		"{sosososososososososososososo}", "taken", bus_json_u64(s->br.taken),
		"events", bus_json_u64(s->br.events), "published",
		bus_json_u64(s->br.published), "resent", bus_json_u64(s->br.resent),
		"stored", bus_json_u64(s->br.stored), "duplicates",
		bus_json_u64(s->br.duplicates), "errors", bus_json_u64(s->br.errors),
		"resets", bus_json_u64(s->br.resets), "late_acks",
		bus_json_u64(s->br.late_acks), "paused", bus_json_u64(s->br.paused),
		"nats_disconnects", bus_json_u64(s->disconnects), "nats_connects",
		bus_json_u64(s->connects), "not_publish", bus_json_u64(not_publish),
		"unstored", bus_json_u64(s->pending));
	if (bus_json_line(f, o))
		fputs("{\"error\": \"the counters: out of memory\"}\n", f);
	fflush(f);
}

void natsjs_close(struct natsjs *j)
{
	if (!j)
		return;
	nats_close(j);
	release(j);
	nats_Close();
}

int natsjs_dump(const struct bus_bridge_config *cfg, FILE *f, char *err,
                size_t errlen)
{
	struct natsjs *a = alloc(cfg, NULL, NULL, 0);
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return 1;
	}
	if (nats_Open(-1) != NATS_OK) {
		snprintf(err, errlen, "cannot start libnats");
		release(a);
		return 1;
	}
	int rc = dump(a, f, err, errlen);
	release(a);
	nats_Close();
	return rc;
}
