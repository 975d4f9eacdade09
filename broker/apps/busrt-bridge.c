/* SPDX-License-Identifier: Apache-2.0 */
/*
 * busrt-bridge — our broker's frames into NATS JetStream (README: the
 * bridge to NATS JetStream).
 *
 *   busrt-bridge [--config FILE] [--connect ADDR] [--nats URL]...
 *                [--stream NAME] [--host NAME] [--mask MASK]...
 *   busrt-bridge --dump [--config FILE] [--nats URL] [--stream NAME]
 *   busrt-bridge --check-config [--config FILE] [options]
 *
 * Subscribes to its masks on the broker and publishes each frame to
 * PREFIX.HOST.<topic levels> on JetStream with its message id
 * (Nats-Msg-Id; bridge.h says which) and the headers Busrt-Sender and
 * Busrt-Topic. A frame stays in the bridge's window until JetStream
 * acknowledged storing it: a publish that failed, timed out, or was in
 * flight when the connection to NATS dropped goes out again after the
 * reconnect with the same id, and the stream's duplicate window keeps one
 * copy. A full window stops the bridge reading the broker (backpressure:
 * under the broker's block policy the publishers wait). SIGTERM / SIGINT:
 * stop reading, wait up to drain_timeout_ms for the window to be stored,
 * print the counts as one JSON line, exit 0 (1 if frames were left
 * unstored: counted in "unstored"). --dump prints the stream's messages,
 * one JSON line each, and exits. Bad arguments or configuration: exit 2.
 *
 * Threads: the libuv loop reads the broker; one publisher thread
 * publishes (js_PublishMsgAsync); libnats's threads deliver the PubAcks
 * and connection events. The window (services/bridge.c, no I/O) is
 * shared under one mutex.
 */
#define _DEFAULT_SOURCE
#include "bus/bridge.h"
#include "bus/config.h"
#include "bus/json.h"
#include "bus/net.h"

#include <nats/nats.h>

#include <getopt.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct app {
	uv_loop_t loop;
	uv_signal_t sigterm, sigint;
	uv_timer_t tick;
	struct bus_client *bc;
	struct bus_bridge_config cfg;
	const char *masks[BUS_BRIDGE_MASKS_MAX];
	const char *urls[BUS_BRIDGE_URLS_MAX];
	int log_level;

	pthread_mutex_t mu;     /* guards what follows, to pub */
	pthread_cond_t cv;
	struct bus_bridge br;
	bool nats_up;
	bool stream_ok;
	bool stopping;          /* the publisher thread ends */
	bool published_any;     /* js_PublishMsgAsync took a message */
	uint64_t disconnects, reconnects;

	pthread_t pub;
	bool pub_started;
	natsOptions *opts;
	natsConnection *nc;
	jsCtx *js;

	bool read_paused;       /* loop thread only */
	bool closing;
	uint64_t drain_deadline;
	uint64_t next_log;
	uint64_t not_publish;   /* deliveries that were not PUBLISH frames */
	int exit_code;
};

static void logf_(struct app *a, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(struct app *a, int level, const char *fmt, ...)
{
	if (level > a->log_level)
		return;
	static const char *names[] = {"error", "warn", "info", "debug"};
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "busrt-bridge: %s: %s\n", names[level], line);
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
static bool ensure_stream(struct app *a)
{
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;
	natsStatus s = js_GetStreamInfo(&si, a->js, a->cfg.stream, NULL, &ec);
	if (s == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return true;
	}
	if (s != NATS_NOT_FOUND && ec != JSStreamNotFoundErr) {
		logf_(a, 1, "stream %s: %s", a->cfg.stream, natsStatus_GetText(s));
		return false;
	}
	if (!a->cfg.create_stream) {
		logf_(a, 0, "stream %s does not exist (bridge.stream.create is "
		      "false)", a->cfg.stream);
		return false;
	}
	char subj[80];
	snprintf(subj, sizeof(subj), "%s.>", a->cfg.subject_prefix);
	const char *subjects[] = {subj};
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	sc.Name = a->cfg.stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Duplicates = (int64_t)a->cfg.duplicate_window_ms * 1000000;
	s = js_AddStream(&si, a->js, &sc, NULL, &ec);
	if (s != NATS_OK) {
		logf_(a, 0, "creating stream %s on %s: %s (error %d)",
		      a->cfg.stream, subj, nats_err(s), (int)ec);
		return false;
	}
	jsStreamInfo_Destroy(si);
	logf_(a, 2, "created stream %s on %s", a->cfg.stream, subj);
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

static void timed_wait(struct app *a, uint64_t ms)
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

static void *publisher(void *arg)
{
	struct app *a = arg;
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
			if (!bus_br_expire(&a->br, now_ns()))
				timed_wait(a, 250);
			continue;
		}
		natsMsg *m = NULL;
		char *id = strdup(e->msgid);
		if (!id || natsMsg_Create(&m, e->subject, NULL,
		                          (const char *)e->data,
		                          (int)e->len) != NATS_OK) {
			free(id);
			timed_wait(a, 100); /* out of memory: later */
			continue;
		}
		natsMsgHeader_Set(m, "Busrt-Sender", e->sender);
		if (header_ok(e->topic))
			natsMsgHeader_Set(m, "Busrt-Topic", e->topic);
		bus_br_sent(&a->br, e, now_ns());
		pthread_mutex_unlock(&a->mu);

		jsPubOptions po;
		jsPubOptions_Init(&po);
		po.MsgId = id;
		po.MaxWait = (int64_t)a->cfg.ack_timeout_ms;
		natsStatus s = js_PublishMsgAsync(a->js, &m, &po);
		natsMsg_Destroy(m); /* NULL when the library took it */

		pthread_mutex_lock(&a->mu);
		a->published_any |= s == NATS_OK;
		if (s != NATS_OK) {
			bus_br_answer(&a->br, id, false, false);
			logf_(a, 3, "publish %s: %s", id, natsStatus_GetText(s));
			timed_wait(a, 50);
		}
		free(id);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
                   void *closure)
{
	(void)js;
	struct app *a = closure;
	const char *id = NULL;
	if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK || !id)
		return;
	pthread_mutex_lock(&a->mu);
	bool stored = pa && !pae;
	bus_br_answer(&a->br, id, stored, stored && pa->Duplicate);
	if (!stored)
		logf_(a, 3, "no PubAck for %s: %s", id,
		      pae && pae->ErrText ? pae->ErrText
		      : pae               ? natsStatus_GetText(pae->Err)
		                          : "?");
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

/* Connected again: what the library still waits an answer for is taken
 * back (its answers would be dropped) and every frame not stored goes
 * out again from the window. */
static void nats_up(struct app *a, const char *what)
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
	a->reconnects++;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	logf_(a, 2, "NATS %s", what);
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
	struct app *a = closure;
	pthread_mutex_lock(&a->mu);
	bool was = a->nats_up && !a->stopping; /* not our own close */
	a->nats_up = false;
	a->disconnects += was;
	pthread_mutex_unlock(&a->mu);
	if (was)
		logf_(a, 1, "NATS disconnected: holding what was not stored");
}

static int nats_options(struct app *a, bool retry, char *err, size_t errlen)
{
	natsStatus s = natsOptions_Create(&a->opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(a->opts, a->urls, (int)a->cfg.n_urls);
	if (s == NATS_OK)
		s = natsOptions_SetName(a->opts, a->cfg.name);
	if (s == NATS_OK && a->cfg.creds_file[0])
		s = natsOptions_SetUserCredentialsFromFiles(a->opts,
		                                            a->cfg.creds_file,
		                                            NULL);
	if (s == NATS_OK && (a->cfg.tls_ca_file[0] || a->cfg.tls_cert_file[0]))
		s = natsOptions_SetSecure(a->opts, true);
	if (s == NATS_OK && a->cfg.tls_ca_file[0])
		s = natsOptions_LoadCATrustedCertificates(a->opts,
		                                          a->cfg.tls_ca_file);
	if (s == NATS_OK && a->cfg.tls_cert_file[0])
		s = natsOptions_LoadCertificatesChain(a->opts, a->cfg.tls_cert_file,
		                                      a->cfg.tls_key_file);
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

static int nats_open(struct app *a, char *err, size_t errlen)
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
	jo.Wait = (int64_t)a->cfg.ack_timeout_ms;
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = a;
	/* the window bounds what is in flight: the library never stalls us */
	jo.PublishAsync.MaxPending = (int64_t)a->cfg.window_frames * 4 + 64;
	s = natsConnection_JetStream(&a->js, a->nc, &jo);
	if (s != NATS_OK) {
		snprintf(err, errlen, "JetStream: %s", nats_err(s));
		return BUS_EIO;
	}
	if (natsConnection_Status(a->nc) == NATS_CONN_STATUS_CONNECTED) {
		pthread_mutex_lock(&a->mu);
		a->nats_up = true;
		pthread_mutex_unlock(&a->mu);
		logf_(a, 2, "NATS connected");
	} else {
		logf_(a, 1, "NATS %s not reachable yet: retrying", a->urls[0]);
	}
	if (pthread_create(&a->pub, NULL, publisher, a)) {
		snprintf(err, errlen, "cannot start the publisher thread");
		return BUS_ENOMEM;
	}
	a->pub_started = true;
	return 0;
}

static void nats_close(struct app *a)
{
	if (a->pub_started) {
		pthread_mutex_lock(&a->mu);
		a->stopping = true;
		pthread_cond_broadcast(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->pub, NULL);
		a->pub_started = false;
	}
	if (a->nc)
		natsConnection_Close(a->nc);
	jsCtx_Destroy(a->js);
	natsConnection_Destroy(a->nc);
	natsOptions_Destroy(a->opts);
	a->js = NULL;
	a->nc = NULL;
	a->opts = NULL;
}

/* ---- the broker side ------------------------------------------------------ */
static void print_stats(struct app *a, FILE *f)
{
	pthread_mutex_lock(&a->mu);
	struct bus_br_stats st = a->br.st;
	size_t pending = bus_br_pending(&a->br);
	uint64_t disc = a->disconnects, rec = a->reconnects;
	pthread_mutex_unlock(&a->mu);
	fprintf(f, "{\"taken\":%llu,\"events\":%llu,\"published\":%llu,"
	        "\"resent\":%llu,\"stored\":%llu,\"duplicates\":%llu,"
	        "\"errors\":%llu,\"resets\":%llu,\"late_acks\":%llu,"
	        "\"paused\":%llu,\"nats_disconnects\":%llu,"
	        "\"nats_connects\":%llu,\"not_publish\":%llu,"
	        "\"unstored\":%zu}\n",
	        (unsigned long long)st.taken, (unsigned long long)st.events,
	        (unsigned long long)st.published, (unsigned long long)st.resent,
	        (unsigned long long)st.stored,
	        (unsigned long long)st.duplicates,
	        (unsigned long long)st.errors, (unsigned long long)st.resets,
	        (unsigned long long)st.late_acks, (unsigned long long)st.paused,
	        (unsigned long long)disc, (unsigned long long)rec,
	        (unsigned long long)a->not_publish, pending);
	fflush(f);
}

static void on_delivery(struct bus_client *c, const struct bus_delivery *d,
                        void *arg)
{
	struct app *a = arg;
	if (d->kind != BUS_OP_PUBLISH || !d->topic) {
		a->not_publish++;
		return;
	}
	pthread_mutex_lock(&a->mu);
	int rc = bus_br_take(&a->br, d->sender, d->topic, d->data, d->len);
	bool paused = bus_br_paused(&a->br);
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	if (rc) { /* out of memory: nothing else can hold it */
		logf_(a, 0, "out of memory taking a frame of %s on %s",
		      d->sender, d->topic);
		a->exit_code = 1;
	}
	if (paused && !a->read_paused) {
		bus_client_read_pause(c, true);
		a->read_paused = true;
		logf_(a, 3, "window full: not reading the broker");
	}
}

static void subscribed(struct bus_client *c, int status, void *arg)
{
	(void)c;
	struct app *a = arg;
	if (status && status != BUS_ECLOSED) {
		logf_(a, 0, "subscribe: %s", bus_strerror(status));
		a->exit_code = 2;
		uv_stop(&a->loop);
	}
}

static void on_state(struct bus_client *c, enum bus_client_state st,
                     int reason, void *arg)
{
	struct app *a = arg;
	if (st == BUS_CLIENT_READY) {
		a->read_paused = false; /* a new connection reads */
		logf_(a, 2, "registered as %s", a->cfg.name);
		pthread_mutex_lock(&a->mu);
		bool paused = bus_br_paused(&a->br);
		pthread_mutex_unlock(&a->mu);
		if (paused) {
			bus_client_read_pause(c, true);
			a->read_paused = true;
		}
	} else if (st == BUS_CLIENT_DISCONNECTED && reason) {
		a->read_paused = false;
		logf_(a, 1, "broker: %s", bus_client_reason(c, reason));
	} else if (st == BUS_CLIENT_CLOSED) {
		a->bc = NULL;
	}
}

static void finish(struct app *a)
{
	uv_timer_stop(&a->tick);
	uv_close((uv_handle_t *)&a->tick, NULL);
	uv_close((uv_handle_t *)&a->sigterm, NULL);
	uv_close((uv_handle_t *)&a->sigint, NULL);
	if (a->bc)
		bus_client_close(a->bc);
}

/* Every 100 ms: read again below the low-water mark; the periodic log;
 * at exit, the drain. */
static void on_tick(uv_timer_t *t)
{
	struct app *a = t->data;
	pthread_mutex_lock(&a->mu);
	bool paused = bus_br_paused(&a->br);
	size_t pending = bus_br_pending(&a->br);
	struct bus_br_stats st = a->br.st;
	bool up = a->nats_up;
	pthread_mutex_unlock(&a->mu);
	uint64_t now = now_ns();
	if (a->read_paused && !paused && a->bc) {
		bus_client_read_pause(a->bc, false);
		a->read_paused = false;
		logf_(a, 3, "window drained: reading the broker");
	}
	if (now >= a->next_log) {
		a->next_log = now + 10000000000ull;
		logf_(a, 3, "taken %llu, stored %llu, in the window %zu, "
		      "NATS %s", (unsigned long long)st.taken,
		      (unsigned long long)st.stored, pending, up ? "up" : "down");
	}
	if (a->closing && (!pending || now >= a->drain_deadline)) {
		if (pending) {
			logf_(a, 0, "%zu frames not stored by JetStream at exit "
			      "(drain_timeout_ms %llu): lost", pending,
			      (unsigned long long)a->cfg.drain_timeout_ms);
			if (!a->exit_code)
				a->exit_code = 1;
		}
		finish(a);
	}
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct app *a = h->data;
	if (a->closing)
		return;
	logf_(a, 2, "signal %d: storing what is held, then exiting", signum);
	a->closing = true;
	a->drain_deadline = now_ns() + a->cfg.drain_timeout_ms * 1000000u;
	if (a->bc) { /* no more frames: the broker's unsubscribe */
		bus_client_unsubscribe(a->bc, a->masks, a->cfg.n_masks, NULL,
		                       NULL);
	}
}

/* ---- --dump ------------------------------------------------------------- */
static void hex(FILE *f, const char *p, int n)
{
	static const char d[] = "0123456789abcdef";
	for (int i = 0; i < n; i++) {
		fputc(d[(unsigned char)p[i] >> 4], f);
		fputc(d[(unsigned char)p[i] & 15], f);
	}
}

static void json_header(FILE *f, natsMsg *m, const char *key,
                        const char *name)
{
	const char *v = NULL;
	if (natsMsgHeader_Get(m, key, &v) == NATS_OK && v) {
		fprintf(f, ",\"%s\":", name);
		bus_json_str(f, v, strlen(v));
	}
}

static int dump(struct app *a)
{
	char err[512];
	if (nats_options(a, false, err, sizeof(err))) {
		fprintf(stderr, "busrt-bridge: %s\n", err);
		return 2;
	}
	natsStatus s = natsConnection_Connect(&a->nc, a->opts);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&a->js, a->nc, NULL);
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;
	if (s == NATS_OK)
		s = js_GetStreamInfo(&si, a->js, a->cfg.stream, NULL, &ec);
	if (s != NATS_OK) {
		bool none = s == NATS_NOT_FOUND || ec == JSStreamNotFoundErr;
		fprintf(stderr, "busrt-bridge: --dump %s on %s: %s\n",
		        a->cfg.stream, a->urls[0],
		        none ? "no such stream" : nats_err(s));
		nats_close(a);
		return 1;
	}
	uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
	uint64_t msgs = si->State.Msgs;
	jsStreamInfo_Destroy(si);
	int rc = 0;
	for (uint64_t seq = first; msgs && seq <= last; seq++) {
		natsMsg *m = NULL;
		s = js_GetMsg(&m, a->js, a->cfg.stream, seq, NULL, &ec);
		if (s == NATS_NOT_FOUND || ec == JSNoMessageFoundErr)
			continue; /* deleted */
		if (s != NATS_OK) {
			fprintf(stderr, "busrt-bridge: --dump %s seq %llu: %s\n",
			        a->cfg.stream, (unsigned long long)seq, nats_err(s));
			rc = 1;
			break;
		}
		const char *subj = natsMsg_GetSubject(m);
		printf("{\"seq\":%llu,\"subject\":", (unsigned long long)seq);
		bus_json_str(stdout, subj, strlen(subj));
		json_header(stdout, m, "Nats-Msg-Id", "msg_id");
		json_header(stdout, m, "Busrt-Sender", "sender");
		json_header(stdout, m, "Busrt-Topic", "topic");
		printf(",\"data\":\"");
		hex(stdout, natsMsg_GetData(m), natsMsg_GetDataLength(m));
		printf("\"}\n");
		natsMsg_Destroy(m);
	}
	fflush(stdout);
	nats_close(a);
	return rc;
}

/* ---- main ----------------------------------------------------------------- */
static void usage(FILE *f)
{
	fprintf(f,
	    "usage: busrt-bridge [--config FILE] [--connect ADDR] [--nats URL]...\n"
	    "                    [--stream NAME] [--host NAME] [--mask MASK]...\n"
	    "                    [--log-level error|warn|info|debug]\n"
	    "       busrt-bridge --dump [--config FILE] [--nats URL] "
	    "[--stream NAME]\n"
	    "  --config FILE   YAML with a bridge: section (README: the bridge "
	    "to NATS JetStream)\n"
	    "  --connect ADDR  the broker: a Unix socket path or HOST:PORT\n"
	    "                  (default: bridge.connect, else %s)\n"
	    "  --nats URL      a NATS server (repeatable; replaces "
	    "bridge.nats.urls)\n"
	    "  --stream NAME   the JetStream stream (bridge.stream.name, "
	    "DAEMONEYE)\n"
	    "  --host NAME     the host's subject token (default: the host "
	    "name)\n"
	    "  --mask MASK     subscribe to MASK (repeatable; replaces "
	    "bridge.masks)\n"
	    "  --dump          print the stream's messages as JSON lines, "
	    "then exit\n"
	    "  --check-config  check the configuration, then exit (0: valid)\n"
	    "  -h, --help      this text; -V, --version: the version\n",
	    BUS_DEFAULT_SOCKET);
}

static int set_str(char *dst, size_t cap, const char *v, const char *opt)
{
	if (!*v || strlen(v) >= cap) {
		fprintf(stderr, "busrt-bridge: %s: %s\n", opt,
		        *v ? "too long" : "empty");
		return 2;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"connect", required_argument, NULL, 'C'},
		{"nats", required_argument, NULL, 'n'},
		{"stream", required_argument, NULL, 's'},
		{"host", required_argument, NULL, 'H'},
		{"mask", required_argument, NULL, 'm'},
		{"dump", no_argument, NULL, 'D'},
		{"check-config", no_argument, NULL, 'X'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	static struct app app;
	struct app *a = &app;
	a->log_level = 1;
	const char *config = NULL, *connect = NULL, *stream = NULL,
	           *host = NULL;
	const char *nats_urls[BUS_BRIDGE_URLS_MAX], *masks[BUS_BRIDGE_MASKS_MAX];
	uint32_t n_nats = 0, n_masks = 0;
	bool do_dump = false, check_only = false;
	int opt;
	while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': config = optarg; break;
		case 'C': connect = optarg; break;
		case 's': stream = optarg; break;
		case 'H': host = optarg; break;
		case 'D': do_dump = true; break;
		case 'X': check_only = true; break;
		case 'n':
			if (n_nats == BUS_BRIDGE_URLS_MAX) {
				fprintf(stderr, "busrt-bridge: at most %d --nats\n",
				        BUS_BRIDGE_URLS_MAX);
				return 2;
			}
			nats_urls[n_nats++] = optarg;
			break;
		case 'm':
			if (n_masks == BUS_BRIDGE_MASKS_MAX) {
				fprintf(stderr, "busrt-bridge: at most %d --mask\n",
				        BUS_BRIDGE_MASKS_MAX);
				return 2;
			}
			masks[n_masks++] = optarg;
			break;
		case 'l':
			if ((a->log_level = bus_log_level_parse(optarg)) < 0) {
				fprintf(stderr, "busrt-bridge: bad --log-level %s\n",
				        optarg);
				usage(stderr);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		case 'V': bus_version_print(stdout, "busrt-bridge"); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "busrt-bridge: unexpected argument '%s'\n",
		        argv[optind]);
		usage(stderr);
		return 2;
	}

	/* the file, then the command line over it */
	struct bus_file_config fc;
	bus_config_defaults(&fc, false);
	bus_bridge_config_defaults(&a->cfg);
	fc.bridge = &a->cfg;
	char err[512] = "";
	if (config && bus_config_load(config, &fc, err, sizeof(err))) {
		fprintf(stderr, "busrt-bridge: %s\n", err);
		bus_config_free(&fc);
		return 2;
	}
	bus_config_free(&fc);
	int bad = 0;
	if (connect)
		bad |= set_str(a->cfg.connect, sizeof(a->cfg.connect), connect,
		               "--connect");
	if (stream)
		bad |= set_str(a->cfg.stream, sizeof(a->cfg.stream), stream,
		               "--stream");
	if (host)
		bad |= set_str(a->cfg.host, sizeof(a->cfg.host), host, "--host");
	for (uint32_t i = 0; i < n_nats; i++)
		bad |= set_str(a->cfg.urls[i], sizeof(a->cfg.urls[i]),
		               nats_urls[i], "--nats");
	if (n_nats)
		a->cfg.n_urls = n_nats;
	for (uint32_t i = 0; i < n_masks; i++)
		bad |= set_str(a->cfg.masks[i], sizeof(a->cfg.masks[i]), masks[i],
		               "--mask");
	if (n_masks)
		a->cfg.n_masks = n_masks;
	if (bad)
		return 2;
	if (!a->cfg.n_urls || !a->cfg.n_masks) {
		fprintf(stderr, "busrt-bridge: %s\n",
		        !a->cfg.n_urls ? "no NATS URL (bridge.nats.urls)"
		                       : "no mask (bridge.masks)");
		return 2;
	}
	for (uint32_t i = 0; i < a->cfg.n_urls; i++)
		a->urls[i] = a->cfg.urls[i];
	for (uint32_t i = 0; i < a->cfg.n_masks; i++)
		a->masks[i] = a->cfg.masks[i];
	if ((a->cfg.tls_cert_file[0] != 0) != (a->cfg.tls_key_file[0] != 0)) {
		fprintf(stderr, "busrt-bridge: bridge.nats.tls: cert_file and "
		                "key_file go together\n");
		return 2;
	}

	struct bus_br_config bcfg;
	bus_br_config_defaults(&bcfg);
	char hn[256] = "";
	if (!a->cfg.host[0] && gethostname(hn, sizeof(hn) - 1))
		snprintf(hn, sizeof(hn), "localhost");
	bus_br_host_token(a->cfg.host[0] ? a->cfg.host : hn, bcfg.host,
	              sizeof(bcfg.host));
	_Static_assert(sizeof(bcfg.prefix) == sizeof(a->cfg.subject_prefix),
	               "the prefix fits");
	memcpy(bcfg.prefix, a->cfg.subject_prefix, sizeof(bcfg.prefix));
	bcfg.incarnation = (uint64_t)time(NULL) * 1000000000ull;
	bcfg.window_frames = a->cfg.window_frames;
	bcfg.window_bytes = a->cfg.window_mib << 20;
	bcfg.ack_timeout_ns = a->cfg.ack_timeout_ms * 2000000u; /* the
	    library's own timeout (MaxWait) comes first */
	if (bus_br_init(&a->br, &bcfg)) {
		fprintf(stderr, "busrt-bridge: bridge.subject_prefix '%s': not a "
		        "NATS subject prefix (tokens without '*', '>', spaces, "
		        "separated by single '.')\n", a->cfg.subject_prefix);
		return 2;
	}
	if (check_only) {
		printf("busrt-bridge: %s: the configuration is valid (%s, "
		       "stream %s, %u mask%s, subjects %s.%s.*)\n",
		       config ? config : "(defaults)", a->urls[0], a->cfg.stream,
		       (unsigned)a->cfg.n_masks, a->cfg.n_masks == 1 ? "" : "s",
		       bcfg.prefix, bcfg.host);
		bus_br_free(&a->br);
		return 0;
	}
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (nats_Open(-1) != NATS_OK) {
		fprintf(stderr, "busrt-bridge: cannot start libnats\n");
		return 1;
	}
	if (do_dump) {
		int rc = dump(a);
		bus_br_free(&a->br);
		nats_Close();
		return rc;
	}

	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&a->loop);
	uv_signal_init(&a->loop, &a->sigterm);
	uv_signal_init(&a->loop, &a->sigint);
	a->sigterm.data = a->sigint.data = a;
	uv_signal_start(&a->sigterm, on_signal, SIGTERM);
	uv_signal_start(&a->sigint, on_signal, SIGINT);
	uv_timer_init(&a->loop, &a->tick);
	a->tick.data = a;
	uv_timer_start(&a->tick, on_tick, 100, 100);

	if (nats_open(a, err, sizeof(err))) {
		fprintf(stderr, "busrt-bridge: %s\n", err);
		nats_close(a);
		nats_Close();
		return 2;
	}
	struct bus_client_config cc;
	bus_client_config_defaults(&cc);
	cc.name = a->cfg.name;
	cc.idle_timeout_ns = 0; /* a full window stops reading: the broker
	                           is not silent, we are not listening */
	struct bus_client_handlers h = {.on_delivery = on_delivery,
	                                .on_state = on_state, .arg = a};
	const char *to = a->cfg.connect[0] ? a->cfg.connect : BUS_DEFAULT_SOCKET;
	int rc = bus_client_open(&a->loop, to, &cc, &h, &a->bc);
	if (!rc) { /* recorded, sent once READY (ECLOSED until then) */
		rc = bus_client_subscribe(a->bc, a->masks, a->cfg.n_masks,
		                          subscribed, a);
		if (rc == BUS_ECLOSED)
			rc = 0;
	}
	if (rc) {
		fprintf(stderr, "busrt-bridge: %s: %s\n", to, bus_strerror(rc));
		nats_close(a);
		nats_Close();
		return 2;
	}
	logf_(a, 2, "%s -> %s stream %s as %s.%s.*", to, a->urls[0],
	      a->cfg.stream, bcfg.prefix, bcfg.host);
	uv_run(&a->loop, UV_RUN_DEFAULT);
	nats_close(a);
	print_stats(a, stdout);
	uv_loop_close(&a->loop);
	bus_br_free(&a->br);
	nats_Close();
	return a->exit_code;
}
