/* SPDX-License-Identifier: Apache-2.0 */
/*
 * route.c — what the broker core does with a registered client's frames:
 * routing (publishes to subscribers, messages and broadcasts to names),
 * each operation's handler, ACKs, and the mask books' comparisons.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static void send_ack(struct bus_core *core, struct bus_conn *c,
		     uint32_t op_id, uint8_t qos, uint8_t result)
{
	if (!(qos & BUS_QOS_PROCESSED))
		return;
	struct bus_msg *m = bus__msg_ack(core, op_id, result);
	if (!m) {
		bus__conn_abort(core, c);
		return;
	}
	queue__deliver(core, c, m, (qos & BUS_QOS_REALTIME) != 0);
	bus__msg_unref(core, m);
}

/* May c do k with s? If not: counted, audited, answered 0x79 (at QoS >= 1)
 * and not done. */
static bool acl_permits(struct bus_core *core, struct bus_conn *c,
			enum bus_acl_kind k, const char *s, size_t len,
			const struct bus_frame *f)
{
	if (!c->rule ||
	    (BUS_PLANTED(core->cfg.sim, BUS_PLANT_ACL_OPEN) &&
	     k == BUS_ACL_PUBLISH && BUS_PLANT_HIT(core->cfg.sim)))
		return true;
	bool pub = k == BUS_ACL_PUBLISH;
	if (pub && len == c->acl_pub_len && memcmp(s, c->acl_pub, len) == 0)
		return true; /* the same topic as last time: the same answer */
	if (bus_acl_allows(c->rule, k, c->name, c->primary_len, s, len)) {
		if (pub && len <= sizeof(c->acl_pub)) {
			memcpy(c->acl_pub, s, len);
			c->acl_pub_len = (uint32_t)len;
		}
		return true;
	}
	uint64_t *n[BUS_ACL_KINDS] = {
	    &core->st.denied_register, &core->st.denied_publish,
	    &core->st.denied_subscribe, &core->st.denied_send,
	    &core->st.denied_broadcast};
	(*n[k])++;
	bus__audit(core, c, bus_acl_kind_names[k], c->name, c->name_len, s, len);
	send_ack(core, c, f->op_id, f->qos, BUS_RES_ACCESS);
	return false;
}

/* ---- routing ----------------------------------------------------------- */
struct route_ctx {
	struct bus_core *core;
	const char *topic;
	size_t topic_len;
	const char *for_name; /* PUBLISH_FOR receiver primary, or NULL */
	size_t for_len;
};

/* The receivers' array has room for every connection (grown when one is
 * accepted), so collecting the receivers of a frame never allocates and
 * never loses one. */
int bus__rcv_reserve(struct bus_core *core, uint32_t conns)
{
	if (conns <= core->rcv_cap)
		return 0;
	uint32_t ncap = core->rcv_cap ? core->rcv_cap * 2 : 64;
	while (ncap < conns)
		ncap *= 2;
	void *n = bus__realloc(&core->a, core->rcv, sizeof(*core->rcv) * ncap);
	if (!n)
		return BUS_ENOMEM;
	core->rcv = n;
	core->rcv_cap = ncap;
	return 0;
}

static void rcv_add(struct bus_core *core, struct bus_conn *c)
{
	core->rcv[core->rcv_count++] = c; /* route_mark: once per frame */
}

static void route_visit(struct bus_conn *c, void *arg)
{
	struct route_ctx *r = arg;
	if (c->route_mark == r->core->route_gen)
		return;
	c->route_mark = r->core->route_gen;
	if (r->for_name && (c->primary_len != r->for_len ||
	                    memcmp(c->name, r->for_name, r->for_len) != 0))
		return;
	if (c->excl.set.count &&
	    bus__trie_any(&c->excl_trie, r->topic, r->topic_len))
		return;
	rcv_add(r->core, c);
}

/* Collects the receivers of a publish into core->rcv. */
static void route_collect(struct bus_core *core, struct route_ctx *r)
{
	core->rcv_count = 0;
	core->route_gen++;
	bus__trie_match(&core->trie, r->topic, r->topic_len, route_visit, r);
	if (r->topic_len == sizeof(BROKER_WARN_TOPIC) - 1 &&
	    memcmp(r->topic, BROKER_WARN_TOPIC, r->topic_len) == 0)
		for (uint32_t i = 0; i < core->names_count; i++)
			route_visit(core->names[i], r); /* implicit */
}

/* The bytes of a delivered frame: header, sender \0, [topic \0], data. */
static size_t delivered_len(size_t slen, size_t tlen, bool topic, size_t dlen)
{
	return BUS_SERVER_HDR_BYTES + slen + 1 + (topic ? tlen + 1 : 0) + dlen;
}

/* Under block: must sender wait before this frame (the receivers are in
 * core->rcv)? Then it waits, and the frame stays unread in its input. */
static bool must_wait(struct bus_core *core, struct bus_conn *sender,
                      size_t len, bool answer)
{
	struct bus_conn *b = queue__blocker(core, sender, len, answer);
	if (!b)
		return false;
	queue__wait(core, sender, b);
	return true;
}

/* Publishes to the receivers collected in core->rcv. 0, or BUS_ENOMEM:
 * no receiver got it (the frame could not be built). */
static int publish(struct bus_core *core, struct bus_conn *sender,
                   const char *sname, size_t slen, const struct route_ctx *r,
                   const uint8_t *data, size_t dlen, bool realtime,
                   bool checked)
{
	struct bus_tstat_row *ts = bus__tstats_row(
	    core, r->topic, r->topic_len, sender ? &sender->ts_row : NULL);
	if (core->rcv_count == 0) {
		bus__tstats_count(ts, dlen, 0, 0, 0);
		return 0;
	}
	struct bus_msg *m =
	    bus__msg_delivery(core, BUS_OP_PUBLISH, realtime, sname, slen,
	                      r->topic, r->topic_len, data, dlen);
	if (!m) {
		core->st.drops_slow += core->rcv_count;
		bus__tstats_count(ts, dlen, core->rcv_count, 0, 0);
		return BUS_ENOMEM;
	}
	uint32_t queued = queue__fan_out(core, m, realtime, checked);
	bus__tstats_count(ts, dlen, core->rcv_count, queued, dlen);
	bus__msg_unref(core, m);
	return 0;
}

void bus__route_publish_from_broker(struct bus_core *core, const char *topic,
                                    const void *data, size_t len)
{
	struct route_ctx r = {core, topic, strlen(topic), NULL, 0};
	route_collect(core, &r);
	publish(core, NULL, BUS_BROKER_NAME, sizeof(BUS_BROKER_NAME) - 1, &r,
	        data, len, false, false);
}

/* A topic's or mask's limits (levels separated by sep: '/' for topics,
 * '.' for broadcast masks over client names). */
static bool topic_within_limits_sep(const struct bus_core *core, const char *t,
                                    size_t len, char sep)
{
	return len <= core->cfg.limits.topic_bytes_max &&
	       bus__levels_sep(t, len, sep) <= core->cfg.limits.topic_levels_max;
}

static bool topic_within_limits(const struct bus_core *core, const char *t,
                                size_t len)
{
	return topic_within_limits_sep(core, t, len, '/');
}

/* ---- frame handlers ---------------------------------------------------- */
/* A protocol error ends the connection: nothing more is read from it or
 * routed to it, but the answers already queued (ACKs of the frames before
 * the bad one) still go out, so what a client sees does not depend on how
 * its bytes were cut into reads. */
void bus__proto_error(struct bus_core *core, struct bus_conn *c)
{
	core->st.disconnects_proto++;
	bus__conn_unregister(core, c);
	bus__conn_close_after_flush(core, c);
}

/* Splits off the first \0-terminated field; false if no separator. */
static bool take_field(const uint8_t **p, size_t *len, const char **field,
                       size_t *flen)
{
	const uint8_t *z = memchr(*p, 0, *len);
	if (!z)
		return false;
	*field = (const char *)*p;
	*flen = (size_t)(z - *p);
	*len -= *flen + 1;
	*p = z + 1;
	return true;
}

/* The frame handlers: true when the frame was handled, false when its
 * sender waits for a receiver (block) and it stays unread. */
static bool on_publish(struct bus_core *core, struct bus_conn *c,
                       const struct bus_frame *f, bool for_op)
{
	const uint8_t *p = f->payload;
	size_t len = f->len, tlen, flen = 0;
	const char *topic, *forname = NULL;
	if (!take_field(&p, &len, &topic, &tlen) ||
	    (for_op && !take_field(&p, &len, &forname, &flen)) ||
	    !bus__utf8_valid((const uint8_t *)topic, tlen) ||
	    (for_op && !bus__utf8_valid((const uint8_t *)forname, flen))) {
		bus__proto_error(core, c);
		return true;
	}
	if (!topic_within_limits(core, topic, tlen)) {
		core->st.rejects_limit++;
		send_ack(core, c, f->op_id, f->qos, BUS_RES_DATA);
		return true;
	}
	if (bus__topic_is_broker(topic, tlen)) { /* whatever an ACL says */
		core->st.rejects_access++;
		/* a forgery of the broker's own topics: audited as a denial */
		bus__audit(core, c, "publish", c->name, c->name_len, topic, tlen);
		send_ack(core, c, f->op_id, f->qos, BUS_RES_ACCESS);
		return true;
	}
	if (!acl_permits(core, c, BUS_ACL_PUBLISH, topic, tlen, f) ||
	    (for_op && !acl_permits(core, c, BUS_ACL_SEND, forname, flen, f)))
		return true;
	struct route_ctx r = {core, topic, tlen, forname, flen};
	route_collect(core, &r);
	if (must_wait(core, c, delivered_len(c->name_len, tlen, true, len),
	              false))
		return false;
	/* not built (no memory), delivered to nobody: never ACKed OK, and
	 * the publisher is cut, so that none of its later frames overtakes
	 * this one (it sends again from its first unacknowledged; the
	 * simulator caught the agent getting 904 before 903) */
	int rc = publish(core, c, c->name, c->name_len, &r, p, len,
	                 f->qos & BUS_QOS_REALTIME, true);
	send_ack(core, c, f->op_id, f->qos,
	         rc ? BUS_RES_NOT_DELIVERED : BUS_RES_OK);
	if (rc)
		bus__conn_abort(core, c);
	return true;
}

static bool on_message(struct bus_core *core, struct bus_conn *c,
                       const struct bus_frame *f)
{
	const uint8_t *p = f->payload;
	size_t len = f->len, tlen;
	const char *target;
	if (!take_field(&p, &len, &target, &tlen) ||
	    !bus__utf8_valid((const uint8_t *)target, tlen)) {
		bus__proto_error(core, c);
		return true;
	}
	core->rcv_count = 0;
	if (tlen == sizeof(BUS_BROKER_NAME) - 1 &&
	    memcmp(target, BUS_BROKER_NAME, tlen) == 0) {
		if (must_wait(core, c, 0, true)) /* the reply comes to c */
			return false;
		send_ack(core, c, f->op_id, f->qos, BUS_RES_OK);
		bus__brpc_handle(core, c, p, len);
		return true;
	}
	if (!acl_permits(core, c, BUS_ACL_SEND, target, tlen, f))
		return true; /* before the lookup: no probing for names */
	struct bus_conn *t = bus__find_name(core, target, tlen);
	if (!t) {
		send_ack(core, c, f->op_id, f->qos, BUS_RES_NOT_REGISTERED);
		return true;
	}
	rcv_add(core, t);
	if (must_wait(core, c, delivered_len(c->name_len, 0, false, len),
	              false))
		return false;
	bool rt = f->qos & BUS_QOS_REALTIME;
	struct bus_msg *m = bus__msg_delivery(core, BUS_OP_MESSAGE, rt,
	                                      c->name, c->name_len, NULL, 0, p,
	                                      len);
	if (!m) { /* no memory: cut, as a publish (its order stands) */
		send_ack(core, c, f->op_id, f->qos, BUS_RES_NOT_DELIVERED);
		bus__conn_abort(core, c);
		return true;
	}
	bool ok = queue__deliver(core, t, m, rt) == QUEUE_OK;
	send_ack(core, c, f->op_id, f->qos,
	         ok ? BUS_RES_OK : BUS_RES_NOT_DELIVERED);
	bus__msg_unref(core, m);
	return true;
}

static bool on_broadcast(struct bus_core *core, struct bus_conn *c,
                         const struct bus_frame *f)
{
	const uint8_t *p = f->payload;
	size_t len = f->len, mlen;
	const char *mask;
	if (!take_field(&p, &len, &mask, &mlen) ||
	    !bus__utf8_valid((const uint8_t *)mask, mlen)) {
		bus__proto_error(core, c);
		return true;
	}
	if (!topic_within_limits_sep(core, mask, mlen, '.')) {
		core->st.rejects_limit++;
		send_ack(core, c, f->op_id, f->qos, BUS_RES_DATA);
		return true;
	}
	if (!acl_permits(core, c, BUS_ACL_BROADCAST, mask, mlen, f))
		return true;
	/* only the sorted names that start with the mask's literal prefix:
	 * a mask costs the names it may match, not every client */
	core->rcv_count = 0;
	size_t pl = bus__bcast_prefix(mask, mlen);
	for (uint32_t i = bus__names_lower(core, mask, pl); i < core->names_count;
	     i++) {
		struct bus_conn *t = core->names[i];
		if (t->name_len < pl || memcmp(t->name, mask, pl) != 0)
			break;
		if (bus__bcast_match(mask, mlen, t->name, t->name_len))
			rcv_add(core, t);
	}
	if (must_wait(core, c, delivered_len(c->name_len, 0, false, len),
	              false))
		return false;
	bool rt = f->qos & BUS_QOS_REALTIME;
	uint8_t res = BUS_RES_OK;
	if (core->rcv_count) {
		struct bus_msg *m =
		    bus__msg_delivery(core, BUS_OP_BROADCAST, rt, c->name,
		                      c->name_len, NULL, 0, p, len);
		if (m) {
			queue__fan_out(core, m, rt, true);
			bus__msg_unref(core, m);
		} else { /* delivered to nobody: never ACKed OK, and cut, as
		          * a publish (its order stands) */
			core->st.drops_slow += core->rcv_count;
			res = BUS_RES_NOT_DELIVERED;
		}
	}
	send_ack(core, c, f->op_id, f->qos, res);
	if (res == BUS_RES_NOT_DELIVERED)
		bus__conn_abort(core, c);
	return true;
}

/* ---- mask books (book.c): their comparisons (internal.h: the slices) --- */
static bool books_work(struct bus_core *core, struct bus_conn *c,
                       uint64_t *steps, uint64_t limit)
{
	bool left = bus__book_work(&core->a, &c->subs, c, steps, limit);
	return bus__book_work(&core->a, &c->excl, c, steps, limit) || left;
}

static void books_list(struct bus_core *core, struct bus_conn *c)
{
	if (c->book_listed)
		return;
	c->book_listed = true;
	c->book_next = NULL;
	if (core->book_last)
		core->book_last->book_next = c;
	else
		core->book_first = c;
	core->book_last = c;
}

void bus__books_unlist(struct bus_core *core, struct bus_conn *c)
{
	if (!c->book_listed)
		return;
	struct bus_conn **pp = &core->book_first, *prev = NULL;
	while (*pp != c) {
		prev = *pp;
		pp = &(*pp)->book_next;
	}
	*pp = c->book_next;
	if (core->book_last == c)
		core->book_last = prev;
	c->book_listed = false;
	c->book_next = NULL;
}

/* At a tick: one slice, shared by the listed clients in turn. */
void bus__books_tick(struct bus_core *core)
{
	uint64_t steps = 0;
	while (core->book_first && steps < BUS_BOOK_SLICE_STEPS) {
		struct bus_conn *c = core->book_first;
		bus__books_unlist(core, c);
		if (books_work(core, c, &steps, BUS_BOOK_SLICE_STEPS))
			books_list(core, c); /* to the back */
	}
}

/* SUBSCRIBE / UNSUBSCRIBE / EXCLUDE / UNEXCLUDE: masks separated by \0.
 * Every mask is validated before any is applied, so a rejected frame
 * changes nothing: the count limits, and the bytes charged for masks
 * (bus__mask_charge) against the client's and the broker-wide budget. */
static bool on_masks(struct bus_core *core, struct bus_conn *c,
                     const struct bus_frame *f)
{
	const struct bus_limits *l = &core->cfg.limits;
	bool adding = f->op == BUS_OP_SUBSCRIBE || f->op == BUS_OP_EXCLUDE;
	bool subs = f->op == BUS_OP_SUBSCRIBE || f->op == BUS_OP_UNSUBSCRIBE;
	struct bus_book *book = subs ? &c->subs : &c->excl;
	uint32_t max = subs ? l->subscriptions_max : l->exclusions_max;
	const char *buf = (const char *)f->payload;
	size_t len = f->len;
	if (!bus__utf8_valid(f->payload, len)) {
		bus__proto_error(core, c);
		return true;
	}
	char *norm = bus__alloc(&core->a, len + 1);
	if (!norm) {
		bus__conn_abort(core, c);
		return true;
	}
	uint32_t fresh = 0;
	uint64_t charge = 0;
	bool ok = true, nomem = false, denied = false;
	bool check_acl = c->rule && f->op == BUS_OP_SUBSCRIBE;
	for (int pass = 0; pass < 2 && ok; pass++) {
		size_t pos = 0;
		for (;;) {
			const char *z = memchr(buf + pos, 0, len - pos);
			size_t end = z ? (size_t)(z - buf) : len;
			size_t ml = end - pos;
			size_t nl = bus__mask_normalize(
			    buf + pos, ml, core->cfg.star_is_plus, norm);
			uint64_t cost = bus__mask_charge(nl, bus__levels(norm, nl));
			bool known = bus__book_has(book, norm, nl);
			if (pass == 0 && check_acl && !denied &&
			    !bus_acl_allows(c->rule, BUS_ACL_SUBSCRIBE, c->name,
			                    c->primary_len, norm, nl)) {
				denied = true;
				ok = false;
				bus__audit(core, c, "subscribe", c->name, c->name_len,
				      buf + pos, ml);
			}
			if (pass == 0 && adding) {
				if (!topic_within_limits(core, buf + pos, ml))
					ok = false;
				fresh += !known;
				charge += known ? 0 : cost;
			} else if (pass == 1 && adding && !known) {
				if (bus__book_add(&core->a, book, norm, nl, c) !=
				    0) {
					ok = false;
					nomem = true;
					break;
				}
				c->mask_bytes += cost;
				core->mask_bytes += cost;
			} else if (pass == 1 && !adding && known) {
				c->mask_bytes -= cost;
				core->mask_bytes -= cost;
				if (bus__book_remove(&core->a, book, norm, nl,
				                     c) != 0) {
					ok = false;
					nomem = true;
					break;
				}
			}
			if (!z)
				break;
			pos = end + 1;
		}
		if (pass == 0 && adding &&
		    ((uint64_t)book->set.count + fresh > max ||
		     c->mask_bytes + charge > l->subscriptions_bytes_max ||
		     core->mask_bytes + charge > l->subscriptions_bytes_total_max))
			ok = false;
	}
	bus__free(&core->a, norm);
	if (nomem) {
		/* some masks may be applied, the client cannot know which: cut
		 * it, and its resubscribe on reconnect restores the whole set */
		bus__conn_abort(core, c);
		return true;
	}
	if (denied)
		core->st.denied_subscribe++;
	else if (!ok)
		core->st.rejects_limit++;
	uint64_t steps = 0;
	if (books_work(core, c, &steps, BUS_BOOK_SLICE_STEPS))
		books_list(core, c);
	send_ack(core, c, f->op_id, f->qos,
	         ok ? BUS_RES_OK : denied ? BUS_RES_ACCESS : BUS_RES_DATA);
	return true;
}

/* Handles one frame; false: c waits for a receiver (block), and the
 * frame stays unread, to be handled again when c goes on. */
bool bus__on_frame(struct bus_core *core, struct bus_conn *c,
		   const struct bus_frame *f)
{
	BUS_ASSERT(c->state == BUS_CS_READY && c->close == BUS_CLOSE_NONE &&
	           !c->wait_on);
	if (f->op == BUS_OP_NOP)
		return true;
	core->rcv_count = 0; /* an ACK to come needs room in c's own queue */
	if ((f->qos & BUS_QOS_PROCESSED) && must_wait(core, c, 0, true))
		return false;
	/* planted: the first frame read, then every 31st, uncounted */
	bool counted = !(BUS_PLANTED(core->cfg.sim, BUS_PLANT_MISCOUNT) &&
	                 ++core->plant_n % 31 == 1 &&
	                 BUS_PLANT_HIT(core->cfg.sim));
	/* counted before it is handled (a stats reply includes it) */
	c->r_frames++;
	c->r_bytes += f->len;
	core->st.r_frames += counted;
	core->st.r_bytes += f->len;
	bool done;
	switch (f->op) {
	case BUS_OP_PUBLISH:
		done = on_publish(core, c, f, false);
		break;
	case BUS_OP_PUBLISH_FOR:
		done = on_publish(core, c, f, true);
		break;
	case BUS_OP_MESSAGE:
		done = on_message(core, c, f);
		break;
	case BUS_OP_BROADCAST:
		done = on_broadcast(core, c, f);
		break;
	default:
		done = on_masks(core, c, f);
		break;
	}
	/* not done: only because c now waits for a receiver (block) */
	BUS_ASSERT(done || c->wait_on);
	if (!done) { /* not read after all: it is counted when handled */
		c->r_frames--;
		c->r_bytes -= f->len;
		core->st.r_frames -= counted;
		core->st.r_bytes -= f->len;
	}
	return done;
}

