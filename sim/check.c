/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check.c — the simulator's checkers. Each names the first offending event.
 *
 * The oracle is the bus being replaced: per subscriber a FIFO channel fed
 * from the publishers' own send logs (what each collector handed to its
 * client, in order), never from broker output. Per (publisher incarnation,
 * subscriber) projection:
 *   delivery     — no duplicated, reordered or unexpected event (Jepsen's
 *                  queue anomalies; none is allowed by BUS/RT's delivery);
 *                  at the source, every event a collector made handed to
 *                  the bus at least once or still held (source_check);
 *   equivalence  — without faults the projection equals the oracle's;
 *                  with faults it is a subsequence whose every lost event
 *                  was sent inside a fault window, and no event the broker
 *                  ACKed OK is lost at a subscriber that stayed connected
 *                  (disconnect policy; drop_newest may also lose at a slow
 *                  consumer). Losses are named prefix / middle / postfix.
 *                  A reconnected client's masks are all at the broker
 *                  once its resubscribe is due (held_masks);
 *   ordering     — sequence numbers strictly increase per projection;
 *   lifecycle    — per process (incarnation, pid, start): DISCOVERY, then
 *                  UPDATEs, then TERMINATION; a new parent's DISCOVERY
 *                  before its children's;
 *   liveness     — after the last fault heals, every collector answered a
 *                  heartbeat and a health check within the bound; one
 *                  whose exit the agent heard started again within the
 *                  restart policy's delay (restart_check);
 *   accounting   — the broker's frame counters, and each client's, equal
 *                  the frames their connections' bytes hold up to the
 *                  offset each side reached (ledger.c): every run, frames
 *                  that died in flight accounted; none left at the end;
 *   stream       — end to end: the agent processed every event of each
 *                  collector incarnation, in sequence, once: 1, 2, ..., n
 *                  with n all it made — except, for an incarnation that
 *                  died, a tail it made and that never reached the agent
 *                  (its only copy died with it); no gap declared;
 *   convergence  — after the last fault heals, the agent's view of each
 *                  collector's process table equals the scenario's table.
 * The oracle's feed is the send log: a re-send (after a reconnect or a
 * resync request) is an entry of its own, with the same bytes, so a
 * delivery may repeat an event only as a delivery of its re-send.
 */
#include "simint.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *const sim_check_names[SIM_C_N] = {
	"ordering", "lifecycle", "delivery", "equivalence", "liveness",
	"accounting", "stream", "convergence", "access", "invariants",
	"control",
};

/* BUS/RT masks, with '*' as '+' (our broker's default): '+' one level,
 * '#' one or more levels to the end. Written apart from the broker's trie
 * on purpose: the oracle must not share the code it checks. */
bool sim_mask_match(const char *mask, const char *topic)
{
	for (;;) {
		const char *me = strchr(mask, '/'), *te = strchr(topic, '/');
		size_t ml = me ? (size_t)(me - mask) : strlen(mask);
		size_t tl = te ? (size_t)(te - topic) : strlen(topic);
		if (ml == 1 && mask[0] == '#')
			return true; /* at least this level exists */
		bool any = ml == 1 && (mask[0] == '+' || mask[0] == '*');
		if (!any && (ml != tl || memcmp(mask, topic, ml)))
			return false;
		if (!me || !te)
			return !me && !te;
		mask = me + 1;
		topic = te + 1;
	}
}

typedef unsigned long long ull;

/* Records check c's first offence, at virtual time t. */
static void fail(struct sim_report *r, enum sim_check c, uint64_t t,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void fail(struct sim_report *r, enum sim_check c, uint64_t t,
                 const char *fmt, ...)
{
	if (!r->ok[c])
		return; /* the first offence is the one reported */
	r->ok[c] = false;
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(r->why[c], sizeof(r->why[c]), fmt, ap);
	va_end(ap);
	if (k >= 0 && (size_t)k < sizeof(r->why[c]))
		snprintf(r->why[c] + k, sizeof(r->why[c]) - (size_t)k,
		         " (at %llu.%06llu ms)", (unsigned long long)(t / SIM_MS),
		         (unsigned long long)(t % SIM_MS));
}

/* One flag per topic of the run: does some mask of rc's match it? */
static bool *wanted(const struct sim *s, const struct receiver *rc)
{
	bool *w = calloc(s->n_topics ? (size_t)s->n_topics : 1, sizeof(*w));
	if (!w)
		abort();
	for (int t = 0; t < s->n_topics; t++)
		for (int k = 0; k < rc->n_masks && !w[t]; k++)
			w[t] = sim_mask_match(rc->masks[k], s->topics[t]);
	return w;
}

/* Is t inside one of the [from, to) pairs of v (n values)? */
static bool in_spans(const uint64_t *v, size_t n, uint64_t t)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		if (t >= v[i] && t < v[i + 1])
			return true;
	return false;
}

static bool in_window(const struct sim *s, uint64_t t)
{
	return in_spans(s->windows, 2 * s->n_windows, t);
}

/* What each delivery mode and slow-consumer policy allows a receiver to
 * miss of what the oracle gave it. No mode and no policy allows a
 * duplicated, reordered or unexpected delivery. The policy's own acts are
 * allowed wherever they happen, exactly (the core reports them in the
 * simulator's build): an event drop_newest dropped for this receiver, or
 * discarded from its queue when it was cut (disconnect; block, a receiver
 * that stalled); and, after such a cut, what was sent from a second
 * before it until the receiver's subscriptions were in effect again. Any
 * other loss outside every fault window fails. Inside one:
 *
 *   mode (qos)           policy        a loss inside a fault window
 *   processed,           block,        allowed, except of an event the
 *   realtime_processed   disconnect    broker ACKed OK to a receiver that
 *                                      stayed connected: the broker
 *                                      routed it, and a queue it could
 *                                      not take would have made the
 *                                      sender wait (block) or cut the
 *                                      receiver (disconnect)
 *   processed,           drop_newest   allowed (a full queue drops it)
 *   realtime_processed
 *   none, realtime       any           allowed (nothing is acknowledged)
 *
 * These are raw deliveries. What the agent processes is the stream
 * check's: end to end, nothing is excused there but the tail of a dead
 * collector. */
enum loss { LOSS_ALLOWED, LOSS_OUTSIDE, LOSS_ACKED };

static bool stayed(const struct receiver *rc, uint64_t from);

static int pair_cmp(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return x[1] < y[1] ? -1 : x[1] > y[1];
}

static int key_cmp(const void *k, const void *e)
{
	uint64_t x = *(const uint64_t *)k, y = *(const uint64_t *)e;
	return x < y ? -1 : x > y;
}

/* Did the policy drop or discard, for rc, the event (pubinc << 32 | seq)
 * sent at t — at t or later? rc->excused holds (key, when) pairs, sorted
 * (sim_check_all). */
static bool excused(const struct receiver *rc, uint64_t key, uint64_t t)
{
	size_t n = rc->n_excused / 2;
	const uint64_t *v = rc->excused;
	const uint64_t *hit = n ? bsearch(&key, v, n, 2 * sizeof(*v), key_cmp)
	                        : NULL;
	if (!hit)
		return false;
	while (hit + 2 < v + 2 * n && hit[2] == key)
		hit += 2; /* the latest act on it */
	return hit[1] >= t;
}

static enum loss loss_kind(const struct sim *s, const struct receiver *rc,
                           const struct pubinc *p, const struct sent *x)
{
	uint64_t key = (uint64_t)(p - s->pubs) << 32 | x->seq;
	if (excused(rc, key, x->t) || in_spans(rc->cuts, rc->n_cuts, x->t))
		return LOSS_ALLOWED;
	if (!in_window(s, x->t))
		return LOSS_OUTSIDE;
	bool acked = (s->cols[p->collector].spec->qos & BUS_QOS_PROCESSED) &&
	             x->ack == 1;
	if (acked && s->sc->slow_policy != BUS_SLOW_DROP_NEWEST &&
	    stayed(rc, x->t))
		return LOSS_ACKED;
	return LOSS_ALLOWED;
}

/* Was the receiver connected, its subscriptions in effect at the broker,
 * from before the event was sent to the end? */
static bool stayed(const struct receiver *rc, uint64_t from)
{
	for (size_t i = 0; i < rc->n_downs; i++)
		if (rc->downs[i] >= from)
			return false;
	return rc->up_since != UINT64_MAX && rc->up_since <= from;
}

static const char *pub_name(const struct sim *s, int pi)
{
	return s->links[s->cols[s->pubs[pi].collector].link].name;
}

/* One (publisher incarnation, receiver) projection: want, the topics rc
 * wants; mine, the indexes into rc->v of what it got from pi, in order.
 * Each delivery is matched with the next send of its event at or after
 * where the walk is (a re-send is a send of its own): found ahead, the
 * sends passed over are candidates for loss; found only behind, it is
 * duplicated (that send was matched already) or reordered. */
static void projection(struct sim *s, struct sim_report *r, int pi,
                       struct receiver *rc, const bool *want,
                       const size_t *mine, size_t n_mine)
{
	const struct pubinc *p = &s->pubs[pi];
	/* the oracle's channel: the send log filtered by the masks */
	size_t ne = 0;
	size_t *exp = malloc((p->n ? p->n : 1) * sizeof(*exp));
	bool *first = calloc(p->n ? p->n : 1, sizeof(*first));
	bool *sent_once = calloc(p->n_ev ? p->n_ev : 1, sizeof(*sent_once));
	if (!exp || !first || !sent_once)
		abort();
	for (size_t i = 0; i < p->n; i++) {
		uint64_t q = p->v[i].seq - 1;
		first[i] = q < p->n_ev && !sent_once[q];
		if (q < p->n_ev)
			sent_once[q] = true;
		if (want[p->v[i].topic])
			exp[ne++] = i;
	}
	r->oracle_delivered += ne;
	/* walk what arrived against it */
	size_t e = 0; /* next expected index into exp */
	size_t first_e = SIZE_MAX, last_e = 0;
	char *seen = calloc(ne ? ne : 1, 1);
	for (size_t m = 0; m < n_mine; m++) {
		struct got *x = &rc->v[mine[m]];
		size_t k = e;
		while (k < ne && p->v[exp[k]].seq != x->seq)
			k++;
		if (k == ne) { /* not ahead in the oracle: behind, or unknown */
			size_t j = 0, dup = SIZE_MAX, late = SIZE_MAX;
			for (; j < ne; j++)
				if (p->v[exp[j]].seq == x->seq) {
					if (seen[j])
						dup = j;
					else if (late == SIZE_MAX)
						late = j;
				}
			if (dup == SIZE_MAX && late == SIZE_MAX) {
				fail(r, SIM_C_DELIVERY, x->t,
				     "%s: %s seq %llu unexpected (never sent to it; %llu)",
				     rc->name, pub_name(s, pi), (ull)x->seq, (ull)ne);
			} else if (late != SIZE_MAX) {
				fail(r, SIM_C_ORDERING, x->t, "%s got %s's seq %llu "
				     "after a later send", rc->name, pub_name(s, pi),
				     (ull)x->seq);
				fail(r, SIM_C_DELIVERY, x->t, "%s: %s seq %llu "
				     "reordered", rc->name, pub_name(s, pi),
				     (ull)x->seq);
				seen[late] = 1; /* late, not lost */
				x->again = !first[exp[late]];
			} else {
				fail(r, SIM_C_DELIVERY, x->t, "%s: %s seq %llu "
				     "duplicated (delivered more often than sent)",
				     rc->name, pub_name(s, pi), (ull)x->seq);
				x->again = true;
			}
			continue;
		}
		seen[k] = 1;
		x->again = !first[exp[k]];
		r->redelivered += x->again;
		if (first_e == SIZE_MAX)
			first_e = k;
		last_e = k;
		e = k + 1;
	}
	/* which events arrived (by any of their sends: the bytes of a send
	 * and its re-send are the same, so which one came cannot be told) */
	bool *arrived = calloc(p->n_ev ? p->n_ev : 1, sizeof(*arrived));
	if (!arrived)
		abort();
	for (size_t k = 0; k < ne; k++)
		if (seen[k] && p->v[exp[k]].seq <= p->n_ev)
			arrived[p->v[exp[k]].seq - 1] = true;
	/* what the oracle delivered and the broker did not: an event none of
	 * whose sends arrived, each send judged by when it was made */
	for (size_t k = 0; k < ne; k++) {
		const struct sent *x = &p->v[exp[k]];
		uint64_t key = (uint64_t)pi << 32 | x->seq;
		/* sent once: the frame the policy dropped was this one */
		if (seen[k] && excused(rc, key, x->t) && x->seq <= p->n_ev &&
		    p->ev[x->seq - 1].sends == 1)
			fail(r, SIM_C_ACCOUNTING, x->t, "%s: %s seq %llu "
			     "arrived, yet the broker counted it dropped for it",
			     rc->name, pub_name(s, pi), (ull)x->seq);
		if (seen[k] || (x->seq <= p->n_ev && arrived[x->seq - 1]))
			continue;
		const char *where = first_e == SIZE_MAX || k < first_e ? "prefix"
		                    : k > last_e                   ? "postfix"
		                                                   : "middle";
		enum loss why = loss_kind(s, rc, p, x);
		if (why != LOSS_ALLOWED)
			fail(r, SIM_C_EQUIVALENCE, x->t,
			     "%s: %s seq %llu lost (%s; %s) of %llu sent", rc->name,
			     pub_name(s, pi), (ull)x->seq, where,
			     why == LOSS_OUTSIDE
			             ? "outside every fault window"
			             : "ACKed OK, receiver stayed connected",
			     (ull)ne);
	}
	free(arrived);
	free(seen);
	free(exp);
	free(first);
	free(sent_once);
}

/* A process as one receiver saw it: (incarnation, pid, start). */
struct pkey {
	int pubinc;
	uint32_t pid, ppid;
	int64_t start;
	size_t disc;    /* stream index of its DISCOVERY, SIZE_MAX if none */
	size_t next;    /* the next entry of this (pubinc, pid), SIZE_MAX */
	int state;      /* 0 none yet, 1 discovered, 2 terminated, 3 seen
	                   first as an update */
};

/* The processes one receiver saw, in the order first seen, and a hash
 * table on (pubinc, pid) whose slots head each pid's chain of starts:
 * one pass over the stream, no sort. */
struct ptab {
	struct pkey *v;
	size_t n;
	size_t *slot;   /* index + 1 into v, 0 empty */
	size_t mask;
};

static size_t *pid_slot(struct ptab *t, int pubinc, uint32_t pid)
{
	uint64_t h = ((uint64_t)(uint32_t)pubinc << 32 | pid) *
	             0x9e3779b97f4a7c15ull;
	for (size_t j = (size_t)(h ^ h >> 32) & t->mask;; j = (j + 1) & t->mask) {
		size_t k = t->slot[j];
		if (!k || (t->v[k - 1].pubinc == pubinc && t->v[k - 1].pid == pid))
			return &t->slot[j];
	}
}

static struct pkey *process_of(struct ptab *t, const struct got *x)
{
	size_t *head = pid_slot(t, x->pubinc, x->pid);
	for (size_t k = *head ? *head - 1 : SIZE_MAX; k != SIZE_MAX;
	     k = t->v[k].next)
		if (t->v[k].start == x->start_ms)
			return &t->v[k];
	struct pkey *p = &t->v[t->n];
	*p = (struct pkey){x->pubinc, x->pid, x->ppid, x->start_ms, SIZE_MAX,
	                   *head ? *head - 1 : SIZE_MAX, 0};
	*head = ++t->n;
	return p;
}

static void lifecycle(struct sim *s, struct sim_report *r,
                      const struct receiver *rc)
{
	size_t cap = 16;
	while (cap < 2 * rc->n)
		cap *= 2;
	struct ptab t = {malloc((rc->n ? rc->n : 1) * sizeof(*t.v)), 0,
	                 calloc(cap, sizeof(*t.slot)), cap - 1};
	if (!t.v || !t.slot)
		abort();
	for (size_t g = 0; g < rc->n; g++) {
		const struct got *x = &rc->v[g];
		/* an event's first send only: a re-send restates what came
		 * (or was lost) before; so does a resync's DISCOVERY */
		if (x->pubinc < 0 || !x->pid || x->again || x->type < 0)
			continue;
		struct pkey *p = process_of(&t, x);
		if (p->state == 2)
			fail(r, SIM_C_LIFECYCLE, x->t, "%s: %s pid %u: an event "
			     "after its TERMINATION (type %d)", rc->name,
			     pub_name(s, x->pubinc), x->pid, x->type);
		else if (x->type == DE_DISCOVERY && p->state != 0)
			fail(r, SIM_C_LIFECYCLE, x->t, "%s: %s pid %u: DISCOVERY "
			     "after other events of it (%d)", rc->name,
			     pub_name(s, x->pubinc), x->pid, p->state);
		if (x->type == DE_DISCOVERY && p->state == 0) {
			p->state = 1;
			p->disc = g;
			p->ppid = x->ppid;
		} else if (x->type == DE_TERMINATION) {
			p->state = 2;
		} else if (p->state == 0) {
			p->state = 3;
		}
	}
	/* a new parent's DISCOVERY before its children's, when both came */
	for (size_t i = 0; i < t.n; i++) {
		const struct pkey *c = &t.v[i];
		if (c->disc == SIZE_MAX || c->ppid == c->pid)
			continue;
		size_t *head = pid_slot(&t, c->pubinc, c->ppid);
		for (size_t k = *head ? *head - 1 : SIZE_MAX; k != SIZE_MAX;
		     k = t.v[k].next) {
			const struct pkey *p = &t.v[k];
			if (p->start <= c->start && p->disc != SIZE_MAX &&
			    p->disc > c->disc && p->ppid != c->pid)
				fail(r, SIM_C_LIFECYCLE, rc->v[p->disc].t,
				     "%s: parent %s %u discovered after its child "
				     "%u", rc->name, pub_name(s, c->pubinc), c->ppid,
				     c->pid);
		}
	}
	free(t.slot);
	free(t.v);
}

static void liveness(struct sim *s, struct sim_report *r)
{
	for (int i = 0; i < s->n_cols; i++)
		restart_check(s, i, true); /* the run's end */
	if (s->restart_fault[0])
		fail(r, SIM_C_LIVENESS, s->restart_fault_at, "%s",
		     s->restart_fault);
	for (int i = 0; i < s->n_cols; i++) {
		const struct collector *c = &s->cols[i];
		const char *name = s->links[c->link].name;
		/* converged: both a heartbeat and a health check answered */
		uint64_t at = c->healed_hb_ok > c->healed_hc_ok ? c->healed_hb_ok
		                                                 : c->healed_hc_ok;
		if (!c->healed_hb_ok)
			fail(r, SIM_C_LIVENESS, s->now, "%s answered no heartbeat "
			     "after the last fault healed (at %llu ms; last answer "
			     "at %llu ms)", name, (ull)(s->last_fault_end / SIM_MS),
			     (ull)(c->last_hb_ok / SIM_MS));
		else if (!c->healed_hc_ok)
			fail(r, SIM_C_LIVENESS, s->now, "%s answered no health "
			     "check after the last fault healed (at %llu ms; last "
			     "answer at %llu ms)", name,
			     (ull)(s->last_fault_end / SIM_MS),
			     (ull)(c->last_hc_ok / SIM_MS));
		else if (at - s->last_fault_end > s->sc->liveness_ns)
			fail(r, SIM_C_LIVENESS, at, "%s answered %llu ms after the "
			     "last fault healed (bound %llu ms)", name,
			     (ull)((at - s->last_fault_end) / SIM_MS),
			     (ull)(s->sc->liveness_ns / SIM_MS));
	}
}

static void accounting(struct sim *s, struct sim_report *r)
{
	struct bus_stats st;
	if (s->acct_fault[0])
		fail(r, SIM_C_ACCOUNTING, s->acct_fault_at, "%s", s->acct_fault);
	if (s->sub_fault[0])
		fail(r, SIM_C_EQUIVALENCE, s->sub_fault_at, "%s", s->sub_fault);
	if (!s->core)
		return;
	bus_core_stats(s->core, &st);
	r->accounting_compared = true;
	/* the connections still open: what they carried so far */
	for (int i = 0; i < s->n_links; i++)
		conn_accounted(s, &s->links[i], conn_of(&s->links[i]), false);
	r->flight_c2b = s->flight_c2b;
	r->flight_b2c = s->flight_b2c;
	if (s->acc_out != st.r_frames)
		fail(r, SIM_C_ACCOUNTING, s->now, "broker read %llu frames, "
		     "its connections' bytes hold %llu it took", (ull)st.r_frames,
		     (ull)s->acc_out);
	else if (s->acc_in != st.w_frames)
		fail(r, SIM_C_ACCOUNTING, s->now, "broker wrote %llu frames, "
		     "its connections' bytes hold %llu of completed writes",
		     (ull)st.w_frames, (ull)s->acc_in);
}

/* rc's projections. What it got is grouped by publisher incarnation
 * first (a counting sort, stream order kept within each); a delivery
 * whose bytes match no event sent is unexpected. */
static void projections(struct sim *s, struct sim_report *r,
                        struct receiver *rc)
{
	size_t np = (size_t)s->n_pubs;
	size_t *from = calloc(np + 2, sizeof(*from));
	size_t *idx = malloc((rc->n ? rc->n : 1) * sizeof(*idx));
	if (!from || !idx)
		abort();
	for (size_t g = 0; g < rc->n; g++) {
		const struct got *x = &rc->v[g];
		if (x->pubinc >= 0)
			from[(size_t)x->pubinc + 2]++;
		else
			fail(r, SIM_C_DELIVERY, x->t, "%s: a delivery of %u bytes "
			     "unexpected (they match no event sent)", rc->name,
			     x->len);
	}
	for (size_t pi = 2; pi < np + 2; pi++)
		from[pi] += from[pi - 1];
	for (size_t g = 0; g < rc->n; g++)
		if (rc->v[g].pubinc >= 0)
			idx[from[(size_t)rc->v[g].pubinc + 1]++] = g;
	/* now pi's are idx[from[pi] .. from[pi + 1]) */
	bool *want = wanted(s, rc);
	for (size_t pi = 0; pi < np; pi++)
		projection(s, r, (int)pi, rc, want, idx + from[pi],
		           from[pi + 1] - from[pi]);
	free(want);
	free(idx);
	free(from);
}

/* End to end: per collector incarnation, the agent processed 1..n in
 * order, once each, n being every event it made — or, if it died, a
 * prefix: the tail it made and the agent never got had no copy left
 * once the process was gone (no design without a disk could keep it).
 * A declared gap (the collector could not keep its events) fails. */
static void stream(struct sim *s, struct sim_report *r)
{
	for (int pi = 0; pi < s->n_pubs; pi++) {
		const struct pubinc *p = &s->pubs[pi];
		const char *name = pub_name(s, pi);
		for (size_t i = 0; i < p->n_done; i++) {
			uint64_t q = p->done[i];
			if (q == i + 1 && !(q <= p->n_ev && p->ev[q - 1].gap))
				continue;
			const struct made *e = q <= p->n_ev ? &p->ev[q - 1] : NULL;
			if (e && q == i + 1)
				fail(r, SIM_C_STREAM, e->t, "%s (incarnation %d): a "
				     "gap declared at seq %llu", name, pi, (ull)q);
			else
				fail(r, SIM_C_STREAM, e ? e->t : s->now, "%s "
				     "(incarnation %d): the agent processed seq %llu "
				     "where %llu was next (%s)", name, pi, (ull)q,
				     (ull)(i + 1), q > i + 1 ? "a gap" : "a duplicate");
			break;
		}
		bool alive = p->ended == UINT64_MAX;
		if (alive && p->n_done < p->n_ev)
			fail(r, SIM_C_STREAM, p->ev[p->n_done].t, "%s (incarnation "
			     "%d, running): the agent never processed seq %zu of "
			     "%zu made", name, pi, p->n_done + 1, p->n_ev);
	}
}

/* An event the agent found missing and its resync fetched again: healed
 * end to end, but outside every fault window (and every cut of the agent,
 * and every drop its queue's policy reported) nothing may lose one on
 * the way. Every policy: drop_newest too (its own drops are reported). */
static void missed(struct sim *s, struct sim_report *r)
{
	const struct receiver *ag = &s->recv[s->n_recv - 1];
	for (int pi = 0; pi < s->n_pubs; pi++) {
		const struct pubinc *p = &s->pubs[pi];
		for (size_t i = 0; i < p->n_missed; i++) {
			size_t k = 0;
			while (k < p->n && p->v[k].seq != p->missed[i])
				k++;
			uint64_t key = (uint64_t)pi << 32 | p->missed[i];
			if (k == p->n || in_window(s, p->v[k].t) ||
			    in_spans(ag->cuts, ag->n_cuts, p->v[k].t) ||
			    excused(ag, key, p->v[k].t))
				continue;
			fail(r, SIM_C_STREAM, p->v[k].t, "%s (incarnation %d): "
			     "seq %llu never reached the agent, outside every "
			     "fault window (its resync fetched it again)",
			     pub_name(s, pi), pi, (ull)p->missed[i]);
			return;
		}
	}
}

/* After the last fault heals: the agent's view of each collector's table
 * (its running incarnation's) equals the scenario's table now. */
static void convergence(struct sim *s, struct sim_report *r)
{
	for (int i = 0; i < s->n_cols; i++) {
		struct collector *c = &s->cols[i];
		const char *name = s->links[c->link].name;
		if (!c->alive) {
			fail(r, SIM_C_CONVERGENCE, s->now, "%s is not running at "
			     "the end: nothing watches its processes", name);
			continue;
		}
		const struct de_stream *st = de_intake_find(&s->intake, name);
		uint64_t inc = s->pubs[c->pubinc].incarnation;
		if (!st || st->incarnation != inc) {
			fail(r, SIM_C_CONVERGENCE, s->now, "%s: the agent has no "
			     "view of its incarnation %llu", name, (ull)inc);
			continue;
		}
		/* what it is, for the incarnation the agent watches */
		const Daemoneye__CollectorCapabilities *cp = s->da.caps[i];
		if (!cp || cp->incarnation != inc)
			fail(r, SIM_C_CONTROL, s->now, "%s: the agent holds no "
			     "capabilities of its incarnation %llu", name,
			     (ull)inc);
		struct de_snapshot truth;
		de_snapshot_init(&truth);
		sim_table_snapshot(&c->truth, sim_table_at(c->spec, s->now), &truth);
		size_t same = 0;
		for (size_t k = 0; k < truth.n; k++) {
			const struct de_proc *t = &truth.v[k];
			const struct de_view_proc *v =
			    de_view_find(&st->view, t->pid, t->start_time_ms);
			char cmd[4096];
			size_t n = t->cmdline_len < sizeof(cmd) ? t->cmdline_len
			                                        : sizeof(cmd) - 1;
			memcpy(cmd, t->cmdline, n);
			while (n && !cmd[n - 1])
				n--; /* the last argument's NUL */
			for (size_t j = 0; j < n; j++)
				cmd[j] = cmd[j] ? cmd[j] : ' ';
			cmd[n] = 0;
			const char *what = !v                       ? "missing"
			                   : strcmp(v->name, t->name) ? "name"
			                   : strcmp(v->exe, t->exe)   ? "executable"
			                   : strcmp(v->cmdline, cmd)  ? "command line"
			                   : v->ppid != t->ppid      ? "parent"
			                   : v->uid != t->uid        ? "user"
			                   : strcmp(v->hash, t->hash) ? "hash"
			                                              : NULL;
			if (what) {
				fail(r, SIM_C_CONVERGENCE, s->now, "%s: pid %u %s in "
				     "the agent's view (%zu of %zu right)", name,
				     t->pid, what, same, truth.n);
				break;
			}
			same++;
		}
		if (same == truth.n && st->view.n != truth.n)
			fail(r, SIM_C_CONVERGENCE, s->now, "%s: the agent's view "
			     "holds %zu processes, the table %zu", name,
			     st->view.n, truth.n);
		de_snapshot_free(&truth);
	}
}

static void handed_over(struct sim *s, struct sim_report *r)
{
	for (int i = 0; i < s->n_cols; i++)
		if (s->cols[i].alive)
			source_check(s, i);
	if (s->source_fault[0])
		fail(r, SIM_C_DELIVERY, s->source_fault_at, "%s",
		     s->source_fault);
}

void sim_check_all(struct sim *s, struct sim_report *r)
{
	for (int c = 0; c < SIM_C_N; c++)
		r->ok[c] = true;
	for (int i = 0; i < s->n_recv; i++) {
		struct receiver *rc = &s->recv[i];
		if (rc->n_excused) /* (key, when) pairs */
			qsort(rc->excused, rc->n_excused / 2,
			      2 * sizeof(*rc->excused), pair_cmp);
		projections(s, r, rc);
		lifecycle(s, r, rc);
	}
	handed_over(s, r);
	liveness(s, r);
	accounting(s, r);
	/* another uid's tries: every one refused, none reached anyone */
	r->access_denied = s->access_denied;
	r->caps_received = s->caps_received;
	r->stats_got = s->stats_got;
	for (int i = 0; i < s->n_cols; i++)
		r->caps_sent += s->cols[i].caps_sent;
	r->operator_served = s->operator_served;
	if (s->access_fault[0])
		fail(r, SIM_C_ACCESS, s->access_fault_at, "%s", s->access_fault);
	if (s->control_fault[0])
		fail(r, SIM_C_CONTROL, s->control_fault_at, "%s",
		     s->control_fault);
	r->invariant_checks = s->inv_checks;
	if (s->inv_fault[0])
		fail(r, SIM_C_INVARIANTS, s->inv_fault_at, "%s", s->inv_fault);
	/* drop_newest drops for a full receiver whatever comes, the agent's
	 * re-sends and RPC replies among them: its stream recovers only as
	 * far as its queue lets them through, so end to end is promised
	 * under block and disconnect alone */
	missed(s, r);
	r->end_to_end_checked = s->sc->slow_policy != BUS_SLOW_DROP_NEWEST;
	if (r->end_to_end_checked) {
		stream(s, r);
		convergence(s, r);
	}
}

void sim_check_shutdown(struct sim *s, struct sim_report *r)
{
	r->shutdown_checked = s->shutting;
	if (s->source_fault[0]) /* a collector's death in the shutdown */
		fail(r, SIM_C_DELIVERY, s->source_fault_at, "%s",
		     s->source_fault);
	if (!s->shutting)
		return;
	uint64_t limit = s->sc->policies.stop_timeout_ns;
	if (!s->shut_done_at) {
		fail(r, SIM_C_CONTROL, s->now, "shutdown: the agent still waits "
		     "for its collectors %.0f ms after it began (stop_timeout "
		     "%.0f ms)", (s->now - s->shut_t0) / 1e6, limit / 1e6);
		return;
	}
	r->shutdown_ns = s->shut_done_at - s->shut_t0;
	/* SIGKILL at stop_timeout, its SIGCHLD a moment later */
	if (r->shutdown_ns > limit + 2 * SIM_MS)
		fail(r, SIM_C_CONTROL, s->shut_done_at, "shutdown took %.3f ms, "
		     "past stop_timeout (%.0f ms)", r->shutdown_ns / 1e6,
		     limit / 1e6);
	for (int i = 0; i < s->n_cols; i++) {
		const struct collector *c = &s->cols[i];
		const char *name = s->links[c->link].name;
		r->shut_crashed += c->shut_fault == SHUT_CRASHES;
		r->shut_deaf += c->shut_fault == SHUT_DEAF;
		const Daemoneye__CollectorShutdown *d = s->da.down[i];
		uint64_t inc = s->pubs[c->pubinc].incarnation;
		if (d && d->incarnation == inc)
			r->shut_answered++;
		if (c->shut_fault != SHUT_OBEYS)
			continue;
		if (!d || d->incarnation != inc) {
			fail(r, SIM_C_CONTROL, s->shut_done_at, "shutdown: %s "
			     "obeyed but its answer never reached the agent",
			     name);
			continue;
		}
		const struct de_stream *st = de_intake_find(&s->intake, name);
		if (r->end_to_end_checked &&
		    (!st || st->incarnation != inc ||
		     st->next_seq != d->last_sequence + 1))
			fail(r, SIM_C_CONTROL, s->shut_done_at, "shutdown: %s "
			     "answered after sequence %llu, the agent processed "
			     "up to %llu", name, (ull)d->last_sequence,
			     st ? (ull)(st->next_seq - 1) : 0ull);
	}
}
