/* SPDX-License-Identifier: Apache-2.0 */
/*
 * intake.c — the agent's intake of collectors' events, end to end
 * (daemoneye.h "the agent's intake"): de-duplication by (collector,
 * incarnation, sequence), gaps, resyncs, and each collector's process
 * table as the processed events describe it.
 *
 * The rules, per collector stream:
 *   - an older incarnation's event is stale: ignored;
 *   - a newer incarnation starts the stream again at sequence 1, with an
 *     empty view (its first cycle enumerates every process);
 *   - below next_seq: a duplicate (a re-send), ignored;
 *   - at next_seq: processed (DISCOVERY and UPDATE set the process in the
 *     view, TERMINATION removes it; a gap marker asks for a full resync);
 *   - above next_seq: missing events. Ignored, and a resync from next_seq
 *     is asked
 *     (one at a time; again after resync_retry_ns if it fails) — except
 *     the first event of the full resync asked for (its resync id), which
 *     is accepted past the gap: the view starts again from it.
 * Sans I/O: time comes in as arguments; the host makes the RPC calls.
 */
#include "bus/daemoneye.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the view: (pid, start) -> process ---------------------------------------- */
static size_t view_slot(const struct de_view *w, uint32_t pid, int64_t start)
{
	uint64_t h = ((uint64_t)pid << 32 ^ (uint64_t)start) *
	             0x9e3779b97f4a7c15ull;
	return (size_t)(h ^ h >> 29) & (w->cap - 1);
}

static void proc_free(struct de_view_proc *p)
{
	free(p->name);
	free(p->exe);
	free(p->cmdline);
	memset(p, 0, sizeof(*p));
}

/* The slot of (pid, start), or the free slot to put it in; NULL: full. */
static struct de_view_proc *view_lookup(const struct de_view *w, uint32_t pid,
                                        int64_t start, bool *found)
{
	*found = false;
	if (!w->cap)
		return NULL;
	struct de_view_proc *free_slot = NULL;
	for (size_t i = view_slot(w, pid, start), k = 0; k < w->cap;
	     i = (i + 1) & (w->cap - 1), k++) {
		struct de_view_proc *p = &w->v[i];
		if (p->live && p->pid == pid && p->start_ms == start) {
			*found = true;
			return p;
		}
		if (!p->live && !free_slot)
			free_slot = p;
		if (!p->live && !p->name && p->pid == 0 && p->start_ms == 0)
			break; /* never used: the chain ends */
	}
	return free_slot;
}

const struct de_view_proc *de_view_find(const struct de_view *w, uint32_t pid,
                                        int64_t start_ms)
{
	bool found;
	const struct de_view_proc *p = view_lookup(w, pid, start_ms, &found);
	return found ? p : NULL;
}

static void view_clear(struct de_view *w)
{
	for (size_t i = 0; i < w->cap; i++)
		proc_free(&w->v[i]);
	free(w->v);
	memset(w, 0, sizeof(*w));
}

static int view_grow(struct de_view *w)
{
	size_t cap = w->cap ? w->cap * 2 : 64;
	struct de_view_proc *v = calloc(cap, sizeof(*v));
	if (!v)
		return BUS_ENOMEM;
	struct de_view old = *w;
	w->v = v;
	w->cap = cap;
	w->n = w->used = 0;
	for (size_t i = 0; i < old.cap; i++) {
		if (!old.v[i].live)
			continue;
		bool found;
		struct de_view_proc *p =
		    view_lookup(w, old.v[i].pid, old.v[i].start_ms, &found);
		*p = old.v[i];
		w->n++;
		w->used++;
	}
	free(old.v);
	return 0;
}

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

/* A text field as the process had it: its exact bytes when the collector
 * sent them (they were not UTF-8), else the string. */
static char *dup_exact(const char *s, ProtobufCBinaryData raw)
{
	if (!raw.len)
		return dup_or_empty(s);
	char *d = malloc(raw.len + 1);
	if (d) {
		memcpy(d, raw.data, raw.len);
		d[raw.len] = 0;
	}
	return d;
}

/* The command line joined by spaces, as the simulator's scenarios write
 * it; each argument exact (command_line_raw) when the collector sent the
 * bytes. */
static char *join_args(const Daemoneye__ProcessRecord *r)
{
	bool exact = r->n_command_line_raw == r->n_command_line;
	size_t n = 1;
	for (size_t i = 0; i < r->n_command_line; i++)
		n += (exact ? r->command_line_raw[i].len
		            : strlen(r->command_line[i])) + 1;
	char *s = malloc(n), *w = s;
	if (!s)
		return NULL;
	for (size_t i = 0; i < r->n_command_line; i++) {
		const void *a = exact ? (const void *)r->command_line_raw[i].data
		                      : r->command_line[i];
		size_t k = exact ? r->command_line_raw[i].len
		                 : strlen(r->command_line[i]);
		if (i)
			*w++ = ' ';
		if (k)
			memcpy(w, a, k);
		w += k;
	}
	*w = 0;
	return s;
}

static void view_set(struct de_view *w, const Daemoneye__ProcessRecord *r)
{
	bool found;
	struct de_view_proc *p = view_lookup(w, r->pid, r->start_time, &found);
	if (!found && (w->n >= DE_VIEW_MAX)) {
		w->overflow++;
		return;
	}
	if (!found && (!p || 2 * (w->used + 1) > w->cap)) {
		if (view_grow(w)) {
			w->overflow++;
			return;
		}
		p = view_lookup(w, r->pid, r->start_time, &found);
	}
	char *name = dup_exact(r->name, r->name_raw);
	char *exe = dup_exact(r->executable_path, r->executable_path_raw);
	char *cmd = join_args(r);
	if (!name || !exe || !cmd) {
		free(name), free(exe), free(cmd);
		w->overflow++;
		return;
	}
	if (found) {
		free(p->name), free(p->exe), free(p->cmdline);
	} else {
		bool fresh = !p->name && p->pid == 0 && p->start_ms == 0;
		w->n++;
		w->used += fresh;
	}
	p->live = true;
	p->pid = r->pid;
	p->start_ms = r->start_time;
	p->ppid = r->ppid;
	p->uid = r->user_id;
	p->name = name;
	p->exe = exe;
	p->cmdline = cmd;
	snprintf(p->hash, sizeof(p->hash), "%s",
	         r->executable_hash ? r->executable_hash : "");
}

static void view_del(struct de_view *w, uint32_t pid, int64_t start)
{
	bool found;
	struct de_view_proc *p = view_lookup(w, pid, start, &found);
	if (!found)
		return;
	free(p->name), free(p->exe), free(p->cmdline);
	p->name = p->exe = p->cmdline = NULL;
	p->live = false; /* a tombstone: pid/start stay, the chain goes on */
	w->n--;
}

/* ---- streams ------------------------------------------------------------------- */
void de_intake_init(struct de_intake *in, const struct de_intake_ops *ops,
                    void *host, uint64_t resync_retry_ns)
{
	memset(in, 0, sizeof(*in));
	in->ops = *ops;
	in->host = host;
	in->resync_retry_ns = resync_retry_ns;
}

void de_intake_free(struct de_intake *in)
{
	for (size_t i = 0; i < in->n; i++)
		view_clear(&in->s[i].view);
	free(in->s);
	memset(in, 0, sizeof(*in));
}

struct de_stream *de_intake_find(const struct de_intake *in, const char *name)
{
	for (size_t i = 0; i < in->n; i++)
		if (!strcmp(in->s[i].name, name))
			return &in->s[i];
	return NULL;
}

static struct de_stream *stream_of(struct de_intake *in, const char *name)
{
	struct de_stream *st = de_intake_find(in, name);
	if (st || strlen(name) >= DE_BUS_NAME_BYTES_MAX)
		return st;
	if (in->n == DE_STREAMS_MAX) {
		in->unknown_senders++;
		return NULL;
	}
	if (in->n == in->cap) {
		size_t cap = in->cap ? in->cap * 2 : 8;
		struct de_stream *s = realloc(in->s, cap * sizeof(*s));
		if (!s)
			return NULL;
		in->s = s;
		in->cap = cap;
	}
	st = &in->s[in->n++];
	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "%s", name);
	st->next_seq = 1;
	return st;
}

static void note(struct de_intake *in, const struct de_stream *st,
                 const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void note(struct de_intake *in, const struct de_stream *st,
                 const char *what, const char *fmt, ...)
{
	if (!in->ops.note)
		return;
	char d[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d, sizeof(d), fmt, ap);
	va_end(ap);
	in->ops.note(in->host, st, what, d);
}

static void ask(struct de_intake *in, struct de_stream *st, uint64_t now)
{
	if (st->resync_inflight || !in->ops.resync)
		return;
	st->resync_inflight = true;
	st->resync_wanted = false;
	st->resync_id = ++in->resync_seq;
	st->resync_at_ns = now;
	/* whether it turns out a re-send or a full resync, events marked
	 * with its id are a full one's */
	st->resync_accept = st->resync_id;
	Daemoneye__ResyncRequest q = DAEMONEYE__RESYNC_REQUEST__INIT;
	const char *dot = strrchr(st->name, '.');
	q.collector_id = (char *)(dot ? dot + 1 : st->name);
	q.incarnation = st->incarnation;
	q.from_sequence = st->resync_from;
	q.full = st->resync_full;
	q.resync_id = st->resync_id;
	note(in, st, "resync asked", "%s from sequence %llu (incarnation %llu)",
	     q.full ? "full" : "re-send", (unsigned long long)q.from_sequence,
	     (unsigned long long)q.incarnation);
	in->ops.resync(in->host, st, &q);
}

/* A resync from next_seq (full: every live process), now or, while one
 * is asked, once it is answered. */
static void want_resync(struct de_intake *in, struct de_stream *st, bool full,
                        uint64_t now)
{
	st->want_full |= full;
	if (st->resync_inflight) {
		if (full) { /* a declared gap: a re-send cannot fill it */
			st->resync_wanted = true;
			st->resync_at_ns = now;
		}
		return;
	}
	st->resync_full = st->want_full;
	st->want_full = false;
	st->resync_from = st->next_seq;
	ask(in, st, now);
}

static void new_incarnation(struct de_intake *in, struct de_stream *st,
                            uint64_t inc)
{
	if (st->incarnation)
		note(in, st, "new incarnation", "%llu after %llu (at sequence "
		     "%llu)", (unsigned long long)inc,
		     (unsigned long long)st->incarnation,
		     (unsigned long long)st->next_seq);
	st->incarnation = inc;
	st->next_seq = 1;
	st->resync_inflight = st->resync_wanted = st->resync_full = false;
	st->want_full = false;
	st->resync_accept = 0;
	view_clear(&st->view);
}

static void apply(struct de_stream *st, const Daemoneye__BusrtEvent *ev)
{
	if (ev->payload_case != DAEMONEYE__BUSRT_EVENT__PAYLOAD_PROCESS_EVENT ||
	    !ev->process_event || !ev->process_event->process)
		return;
	const Daemoneye__ProcessEvent *pe = ev->process_event;
	const Daemoneye__ProcessRecord *r = pe->process;
	if (pe->event_type == DAEMONEYE__PROCESS_EVENT__EVENT_TYPE__TERMINATION)
		view_del(&st->view, r->pid, r->start_time);
	else if (pe->event_type != DAEMONEYE__PROCESS_EVENT__EVENT_TYPE__ANOMALY)
		view_set(&st->view, r);
}

int de_intake_event(struct de_intake *in, const char *sender,
                    const uint8_t *data, size_t len, uint64_t now)
{
	Daemoneye__BusrtEvent *ev = (Daemoneye__BusrtEvent *)bus_pb_unpack(
	    &daemoneye__busrt_event__descriptor, data, len,
	    BUS_PB_BUDGET_DEFAULT);
	struct de_stream *st = stream_of(in, sender);
	if (!ev || !st || !ev->incarnation || !ev->sequence) {
		if (st)
			st->st.malformed++;
		bus_pb_free(ev ? &ev->base : NULL);
		return ev && !st ? 0 : BUS_EPROTO;
	}
	int done = 0;
	if (ev->incarnation < st->incarnation) {
		st->st.stale++;
		goto out;
	}
	if (ev->incarnation > st->incarnation)
		new_incarnation(in, st, ev->incarnation);
	if (ev->sequence < st->next_seq) {
		st->st.duplicates++;
		goto out;
	}
	/* the first event of a full resync: the view starts again from it,
	 * past the gap it fills if there is one */
	bool restart = ev->resync && ev->resync == st->resync_accept;
	if (ev->sequence > st->next_seq && !restart) {
		if (!st->resync_inflight) {
			st->st.missing++;
			note(in, st, "missing", "sequence %llu came, %llu was next",
			     (unsigned long long)ev->sequence,
			     (unsigned long long)st->next_seq);
		}
		want_resync(in, st, false, now); /* go back to next_seq */
		goto out;
	}
	if (ev->sequence > st->next_seq) {
		uint64_t lost = ev->sequence - st->next_seq;
		st->st.gaps++;
		st->st.events_lost += lost;
		note(in, st, "gap", "%llu events lost before sequence %llu; a "
		     "full resync restates the table",
		     (unsigned long long)lost, (unsigned long long)ev->sequence);
		st->next_seq = ev->sequence;
	}
	if (restart) {
		view_clear(&st->view);
		st->resync_accept = 0;
		if (ev->resync == st->resync_id)
			st->resync_inflight = false; /* its events are here */
	}
	st->next_seq++;
	st->st.events++;
	done = 1;
	if (ev->gap) {
		st->st.gaps++;
		note(in, st, "gap", "the collector lost events before sequence "
		     "%llu", (unsigned long long)ev->sequence);
		want_resync(in, st, true, now);
	} else {
		apply(st, ev);
	}
	if (in->ops.processed)
		in->ops.processed(in->host, st, ev, data, len);
out:
	bus_pb_free(&ev->base);
	return done;
}

void de_intake_ack(const struct de_intake *in, const char *name,
                   uint64_t *incarnation, uint64_t *sequence)
{
	const struct de_stream *st = de_intake_find(in, name);
	*incarnation = st ? st->incarnation : 0;
	*sequence = st && st->next_seq > 1 ? st->next_seq - 1 : 0;
	if (st && *sequence && in->ops.ack_cap)
		*sequence = in->ops.ack_cap(in->host, st, *sequence);
}

void de_heartbeat_request(const struct de_intake *in, const char *name,
                          uint64_t seq, int64_t now_ms,
                          Daemoneye__HeartbeatRequest *q)
{
	daemoneye__heartbeat_request__init(q);
	q->sender = DE_AGENT_NAME;
	q->sequence = seq;
	q->timestamp_ms = now_ms;
	if (in)
		de_intake_ack(in, name, &q->acked_incarnation,
		              &q->acked_sequence);
}

void de_intake_heartbeat(struct de_intake *in, const char *name,
                         uint64_t incarnation, uint64_t last_sequence,
                         uint64_t now)
{
	struct de_stream *st = stream_of(in, name);
	if (!st || !incarnation || incarnation < st->incarnation)
		return;
	if (incarnation > st->incarnation)
		new_incarnation(in, st, incarnation); /* none of it arrived */
	/* the reply travels behind every event sent before it: one at or
	 * past next_seq that is not here was lost */
	if (last_sequence >= st->next_seq && !st->resync_inflight) {
		st->st.missing++; /* a re-send may still fill it */
		note(in, st, "missing", "the collector sent up to %llu, "
		     "processed up to %llu", (unsigned long long)last_sequence,
		     (unsigned long long)(st->next_seq - 1));
		want_resync(in, st, false, now);
	}
}

void de_intake_resync_done(struct de_intake *in, const char *name,
                           uint64_t resync_id,
                           const Daemoneye__ResyncResponse *resp,
                           uint64_t now)
{
	struct de_stream *st = de_intake_find(in, name);
	if (!st || resync_id != st->resync_id || !st->resync_inflight)
		return; /* answered already (its events came), or superseded */
	if (!resp) {
		st->st.resyncs_failed++;
		st->resync_inflight = false;
		st->resync_wanted = true; /* asked again after the retry delay */
		st->resync_at_ns = now + in->resync_retry_ns;
		note(in, st, "resync failed", "asked again in %llu ms",
		     (unsigned long long)(in->resync_retry_ns / 1000000u));
		return;
	}
	st->st.resyncs++;
	note(in, st, resp->replayed ? "resync re-sent" : "resync full",
	     "sequences %llu..%llu%s", (unsigned long long)resp->first_sequence,
	     (unsigned long long)resp->last_sequence,
	     resp->replayed ? "" : ", every live process");
	/* answered: its events were handed to the bus before the reply, or
	 * follow it in order; if they are lost, the next heartbeat's reply
	 * shows the gap and a resync is asked again */
	st->resync_inflight = false;
}

void de_intake_tick(struct de_intake *in, uint64_t now)
{
	for (size_t i = 0; i < in->n; i++) {
		struct de_stream *st = &in->s[i];
		if (st->resync_wanted && !st->resync_inflight &&
		    now >= st->resync_at_ns) {
			st->resync_full = st->want_full;
			st->want_full = false;
			st->resync_from = st->next_seq;
			ask(in, st, now);
		}
	}
}

uint64_t de_intake_next_deadline(const struct de_intake *in)
{
	uint64_t t = UINT64_MAX;
	for (size_t i = 0; i < in->n; i++)
		if (in->s[i].resync_wanted && !in->s[i].resync_inflight &&
		    in->s[i].resync_at_ns < t)
			t = in->s[i].resync_at_ns;
	return t;
}
