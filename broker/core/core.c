/*
 * core.c — the sans-I/O BUS/RT broker: connections, handshake, routing,
 * bounded outgoing queues, slow-consumer policies, keepalives.
 *
 * Contract with the host (bus.h): the host reports bytes, write completions,
 * closes and time; the core asks it to write, to pause/resume reading and to
 * close. The core never calls back into itself: work that would nest (the
 * .broker/info announcement of a client that leaves while a frame is being
 * routed) is queued and done at the end of the current entry point.
 *
 * Must never: do I/O, read a clock, draw randomness, iterate in an order that
 * depends on addresses. Connections are kept in serial (connect) order,
 * registered clients in name order.
 */
#include "internal.h"

#include <string.h>

#define BROKER_WARN_TOPIC ".broker/warn"
#define BROKER_INFO_TOPIC ".broker/info"

/* ---- configuration ----------------------------------------------------- */
void bus_core_config_defaults(struct bus_core_config *cfg, bool embedded)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->limits = (struct bus_limits){
	    .payload_bytes_max = 16u << 20,
	    .name_bytes_max = 256,
	    .topic_bytes_max = 1024,
	    .topic_levels_max = 128,
	    .subscriptions_max = 1024,
	    .exclusions_max = 1024,
	    .subscriptions_bytes_max = 4u << 20,
	    .subscriptions_bytes_total_max = embedded ? 64u << 20 : 256u << 20,
	    .connections_max = embedded ? 64 : 1000,
	    .connections_per_peer_max = embedded ? 32 : 256,
	    .queue_frames_max = 10000,
	    .queue_bytes_max = 32u << 20,
	    .queued_bytes_total_max = 512u << 20,
	    .read_bytes_per_turn_max = 256u << 10,
	    .rpc_params_bytes_max = 64u << 10,
	    .input_bytes_total_max = embedded ? 64u << 20 : 256u << 20,
	};
	cfg->timeout_ns = 5000000000ull;
	cfg->slow_policy = BUS_SLOW_BLOCK;
	cfg->internal_slow_policy = BUS_SLOW_BLOCK;
	cfg->block_deadline_ns = 0; /* the timeout */
	cfg->low_water_percent = 50;
	cfg->star_is_plus = true;
	cfg->force_register = false;
}

int bus_core_config_check(const struct bus_core_config *cfg, const char **what)
{
	const struct bus_limits *l = &cfg->limits;
#define CHECK(cond, key)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			*what = (key);                                       \
			return BUS_ECONFIG;                                  \
		}                                                            \
	} while (0)
	CHECK(l->payload_bytes_max > 0, "payload_bytes_max");
	CHECK(l->name_bytes_max > 0 && l->name_bytes_max <= 65535,
	      "name_bytes_max");
	CHECK(l->topic_bytes_max > 0, "topic_bytes_max");
	CHECK(l->topic_levels_max > 0 && l->topic_levels_max <= 4096,
	      "topic_levels_max");
	CHECK(l->connections_max > 0, "connections_max");
	CHECK(l->subscriptions_bytes_max >= 4096, "subscriptions_bytes_max");
	CHECK(l->subscriptions_bytes_total_max >= l->subscriptions_bytes_max,
	      "subscriptions_bytes_total_max");
	CHECK(l->queue_frames_max >= 2, "queue_frames_max");
	CHECK(l->queue_bytes_max >= 64, "queue_bytes_max");
	CHECK(l->queued_bytes_total_max >= l->queue_bytes_max,
	      "queued_bytes_total_max");
	CHECK(l->read_bytes_per_turn_max >= 1, "read_bytes_per_turn_max");
	CHECK(l->rpc_params_bytes_max >= 64, "rpc_params_bytes_max");
	CHECK(l->input_bytes_total_max >= l->payload_bytes_max,
	      "input_bytes_total_max");
	CHECK(cfg->timeout_ns >= 1000000ull, "timeout");
	CHECK(cfg->slow_policy <= BUS_SLOW_BLOCK, "queue_policy");
	CHECK(cfg->internal_slow_policy <= BUS_SLOW_BLOCK,
	      "internal_queue_policy");
	CHECK(cfg->low_water_percent < 100, "low_water_percent");
#undef CHECK
	return 0;
}

/* ---- small helpers ----------------------------------------------------- */
uint64_t bus__unix_ns(const struct bus_core *core)
{
	return core->realtime_base_ns + (core->now_ns - core->mono_base_ns);
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int r = memcmp(a, b, alen < blen ? alen : blen);
	if (r)
		return r;
	return alen < blen ? -1 : alen > blen;
}

/* Index of the first registered name >= (name, len). */
static uint32_t names_lower(const struct bus_core *core, const char *name,
                            size_t len)
{
	uint32_t lo = 0, hi = core->names_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct bus_conn *c = core->names[mid];
		if (name_cmp(c->name, c->name_len, name, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct bus_conn *bus__find_name(struct bus_core *core, const char *name,
                                size_t len)
{
	uint32_t i = names_lower(core, name, len);
	if (i < core->names_count &&
	    name_cmp(core->names[i]->name, core->names[i]->name_len, name,
	             len) == 0)
		return core->names[i];
	return NULL;
}

static int names_insert(struct bus_core *core, struct bus_conn *c)
{
	if (core->names_count == core->names_cap) {
		uint32_t ncap = core->names_cap ? core->names_cap * 2 : 16;
		void *n = bus__realloc(&core->a, core->names,
		                       sizeof(*core->names) * ncap);
		if (!n)
			return BUS_ENOMEM;
		core->names = n;
		core->names_cap = ncap;
	}
	uint32_t i = names_lower(core, c->name, c->name_len);
	memmove(core->names + i + 1, core->names + i,
	        sizeof(*core->names) * (core->names_count - i));
	core->names[i] = c;
	core->names_count++;
	core->internal_names += c->kind == BUS_KIND_INTERNAL;
	return 0;
}

static void names_remove(struct bus_core *core, struct bus_conn *c)
{
	uint32_t i = names_lower(core, c->name, c->name_len);
	BUS_ASSERT(i < core->names_count && core->names[i] == c);
	memmove(core->names + i, core->names + i + 1,
	        sizeof(*core->names) * (core->names_count - i - 1));
	core->names_count--;
	core->internal_names -= c->kind == BUS_KIND_INTERNAL;
}

static void announce_later(struct bus_core *core, const char *topic,
                           const char *subject, const char *name)
{
	size_t nl = name ? strlen(name) : 0;
	struct bus_pending_ann *p = bus__alloc(&core->a, sizeof(*p) + nl + 1);
	if (!p)
		return; /* an announcement is best effort, like BUS/RT's */
	p->next = NULL;
	p->topic = topic;
	p->subject = subject;
	if (name)
		memcpy(p->name, name, nl + 1);
	else
		p->name[0] = '\0';
	if (core->ann_last)
		core->ann_last->next = p;
	else
		core->ann_first = p;
	core->ann_last = p;
}

/* ---- connections ending ------------------------------------------------ */
static void conn_request_close(struct bus_core *core, struct bus_conn *c)
{
	if (c->close == BUS_CLOSE_REQUESTED)
		return;
	c->close = BUS_CLOSE_REQUESTED;
	queue__truncate(core, c, c->q_inflight);
	queue__unmark_dirty(core, c);
	core->ops.close(core->host, c->ctx);
	queue__wait_end(core, c); /* its waiters go on without it */
}

static void conn_unregister(struct bus_core *core, struct bus_conn *c);
static void books_unlist(struct bus_core *core, struct bus_conn *c);
static void core_end(struct bus_core *core);

void bus__conn_abort(struct bus_core *core, struct bus_conn *c)
{
	if (c->close == BUS_CLOSE_REQUESTED)
		return;
	conn_unregister(core, c);
	conn_request_close(core, c);
}

/* Writes what is queued, then closes (handshake refusals, shutdown). */
static void conn_close_after_flush(struct bus_core *core, struct bus_conn *c)
{
	if (c->close != BUS_CLOSE_NONE)
		return;
	c->close = BUS_CLOSE_AFTER_FLUSH;
	c->deadline_ns = core->now_ns + core->cfg.timeout_ns;
	bus__conn_reading(core, c);
	queue__wait_end(core, c); /* it takes no more frames */
	if (c->q_count == 0)
		conn_request_close(core, c);
	else
		queue__write(core, c);
}

void bus__deliver_broker(struct bus_core *core, struct bus_conn *c,
                         struct bus_msg *m)
{
	queue__deliver(core, c, m, false);
}

static void send_byte(struct bus_core *core, struct bus_conn *c, uint8_t b)
{
	struct bus_msg *m = core->m_byte[b];
	if (!m) {
		m = bus__msg_new(&core->a, 1);
		if (!m) {
			bus__conn_abort(core, c);
			return;
		}
		m->data[0] = b;
		core->m_byte[b] = m;
	}
	queue__deliver(core, c, m, true);
}

static void send_ack(struct bus_core *core, struct bus_conn *c,
                     uint32_t op_id, uint8_t qos, uint8_t result)
{
	if (!(qos & BUS_QOS_PROCESSED))
		return;
	struct bus_msg *m = bus__msg_ack(&core->a, op_id, result);
	if (!m) {
		bus__conn_abort(core, c);
		return;
	}
	queue__deliver(core, c, m, (qos & BUS_QOS_REALTIME) != 0);
	bus__msg_unref(&core->a, m);
}

/* ---- registration ------------------------------------------------------ */
static void conn_unregister(struct bus_core *core, struct bus_conn *c)
{
	queue__wait_end(core, c);
	if (!c->registered)
		return;
	c->registered = false;
	names_remove(core, c);
	books_unlist(core, c);
	bus__book_free(&core->a, &c->subs, c);
	bus__book_free(&core->a, &c->excl, c);
	bus__trie_free(&core->a, &c->excl_trie);
	core->mask_bytes -= c->mask_bytes;
	c->mask_bytes = 0;
	if (c->primary) {
		c->primary->secondaries--;
		return;
	}
	core->primaries_count--;
	/* Secondaries "name%%..." are among the names starting with "name"
	 * (so are others, like "name!x"); abort them one by one. */
	for (uint32_t i = names_lower(core, c->name, c->name_len);
	     i < core->names_count;) {
		struct bus_conn *s = core->names[i];
		if (s->name_len < c->name_len ||
		    memcmp(s->name, c->name, c->name_len) != 0)
			break;
		if (s->primary == c)
			bus__conn_abort(core, s); /* removes names[i] */
		else
			i++;
	}
	announce_later(core, BROKER_INFO_TOPIC, "unreg", c->name);
}

/* ---- the ACL (acl.c matches) ------------------------------------------ */
static void audit(struct bus_core *core, const struct bus_conn *c,
                  const char *what, const char *name, size_t nl,
                  const char *obj, size_t ol)
{
	if (!core->ops.audit)
		return;
	struct bus_audit a = {what, name, nl, obj, ol, &c->ident,
	                      c->rule ? c->rule->label : ""};
	core->ops.audit(core->host, &a);
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
	audit(core, c, bus_acl_kind_names[k], c->name, c->name_len, s, len);
	send_ack(core, c, f->op_id, f->qos, BUS_RES_ACCESS);
	return false;
}

void bus_core_set_ident(struct bus_core *core, struct bus_conn *conn,
                        const struct bus_ident *id)
{
	(void)core;
	conn->ident = *id;
	if (conn->ident.n_groups > BUS_IDENT_GROUPS_MAX)
		conn->ident.n_groups = BUS_IDENT_GROUPS_MAX;
}

/* Does c's rule still allow every mask it holds? */
static bool acl_keeps_masks(const struct bus_conn *c)
{
	const struct bus_strmap *m = &c->subs.set;
	for (uint32_t i = 0; i < m->cap; i++)
		if (bus__strmap_live(m, i) &&
		    !bus_acl_allows(c->rule, BUS_ACL_SUBSCRIBE, c->name,
		                    c->primary_len, m->slots[i].key,
		                    m->slots[i].key_len))
			return false;
	return true;
}

void bus_core_set_acl(struct bus_core *core, const struct bus_acl *acl)
{
	core->cfg.acl = acl;
	for (struct bus_conn *c = core->first; c; c = c->next) {
		if (!c->registered)
			continue;
		c->rule = acl ? bus_acl_find(acl, &c->ident, c->name,
		                             c->primary_len)
		              : NULL;
		c->acl_pub_len = UINT32_MAX; /* the new rule decides again */
		if (!acl || (c->rule && acl_keeps_masks(c)))
			continue;
		core->st.disconnects_acl++;
		audit(core, c, "revoked", c->name, c->name_len, "", 0);
		bus__conn_abort(core, c);
	}
	core_end(core);
}

/* Is there a place among connections_max for a socket client under
 * rule? A rule may reserve places that only its clients take (the
 * agent's and the collectors' in the defaults): 64 junk clients of
 * another rule fill the shared rest, never those. */
/* The same peer: a uid (root aside: it is everything anyway), or a TCP
 * address. */
static bool same_peer(const struct bus_ident *a, const struct bus_ident *b)
{
	if (a->cred && b->cred)
		return a->uid != 0 && a->uid == b->uid;
	return a->family && a->family == b->family &&
	       memcmp(a->addr, b->addr, a->family == 4 ? 4 : 16) == 0;
}

/* A peer's registered clients: at most connections_per_peer_max. */
static bool peer_place_free(const struct bus_core *core,
                            const struct bus_conn *c)
{
	uint32_t n = 0, max = core->cfg.limits.connections_per_peer_max;
	if (!max || (!(c->ident.cred && c->ident.uid != 0) && !c->ident.family))
		return true;
	for (uint32_t i = 0; i < core->names_count; i++)
		n += core->names[i]->kind != BUS_KIND_INTERNAL &&
		     same_peer(&core->names[i]->ident, &c->ident);
	return n < max;
}

static bool place_free(const struct bus_core *core,
                       const struct bus_acl_rule *rule)
{
	uint32_t max = core->cfg.limits.connections_max;
	uint32_t used = core->names_count - core->internal_names;
	const struct bus_acl *acl = core->cfg.acl;
	if (!acl || acl->n_rules == 0)
		return used < max;
	uint32_t counts[256] = {0}, n = acl->n_rules < 256 ? acl->n_rules : 256;
	uint64_t reserved = 0;
	for (uint32_t i = 0; i < n; i++)
		reserved += acl->rules[i].reserved;
	if (reserved >= max) /* no room left to share: places are not kept */
		return used < max;
	for (uint32_t i = 0; i < core->names_count; i++) {
		const struct bus_conn *x = core->names[i];
		if (x->kind != BUS_KIND_INTERNAL && x->rule &&
		    x->rule >= acl->rules && x->rule < acl->rules + n)
			counts[x->rule - acl->rules]++;
	}
	uint64_t shared_used = used;
	for (uint32_t i = 0; i < n; i++) /* what sits in reserved places */
		shared_used -= counts[i] < acl->rules[i].reserved
		                   ? counts[i]
		                   : acl->rules[i].reserved;
	size_t k = rule && rule >= acl->rules && rule < acl->rules + n
	               ? (size_t)(rule - acl->rules)
	               : SIZE_MAX;
	if (k != SIZE_MAX && counts[k] < rule->reserved)
		return true; /* one of its own places */
	return used < max && shared_used < max - reserved;
}

static void handshake_refuse(struct bus_core *core, struct bus_conn *c,
                             uint8_t code, bool limit)
{
	if (limit)
		core->st.rejects_connections++;
	else
		core->st.rejects_handshake++;
	send_byte(core, c, code);
	conn_close_after_flush(core, c);
}

static void conn_register(struct bus_core *core, struct bus_conn *c,
                          const uint8_t *name, size_t len)
{
	const struct bus_core_config *cfg = &core->cfg;
	if (len == 0 || name[0] == '.' || len > cfg->limits.name_bytes_max ||
	    memchr(name, 0, len) || !bus__utf8_valid(name, len)) {
		handshake_refuse(core, c, BUS_RES_DATA, false);
		return;
	}
	const char *sep = NULL;
	for (size_t i = 0; i + 1 < len; i++)
		if (name[i] == '%' && name[i + 1] == '%') {
			sep = (const char *)name + i;
			break;
		}
	size_t plen = sep ? (size_t)(sep - (const char *)name) : len;
	const struct bus_acl_rule *rule = NULL;
	if (cfg->acl) {
		rule = bus_acl_find(cfg->acl, &c->ident, (const char *)name,
		                    plen);
		if (!rule) { /* before BUSY: whether the name is taken is
		                none of this peer's business */
			core->st.denied_register++;
			audit(core, c, "register", (const char *)name, len, "",
			      0);
			send_byte(core, c, BUS_RES_ACCESS);
			conn_close_after_flush(core, c);
			return;
		}
	}
	struct bus_conn *primary = NULL;
	if (sep) {
		primary = bus__find_name(core, (const char *)name, plen);
		if (!primary || primary->primary) {
			handshake_refuse(core, c, BUS_RES_NOT_REGISTERED, false);
			return;
		}
	}
	struct bus_conn *old = bus__find_name(core, (const char *)name, len);
	if (old && !cfg->force_register) {
		handshake_refuse(core, c, BUS_RES_BUSY, false);
		return;
	}
	/* the limit is on socket clients: the embedding process's own
	 * internal clients do not take a collector's place */
	if (!old && c->kind != BUS_KIND_INTERNAL &&
	    (!place_free(core, rule) || !peer_place_free(core, c))) {
		handshake_refuse(core, c, BUS_RES_BUSY, true);
		return;
	}
	if (old) {
		if (old == primary) { /* "x%%y" cannot replace "x" */
			handshake_refuse(core, c, BUS_RES_BUSY, false);
			return;
		}
		bus__conn_abort(core, old);
	}
	c->name = bus__strndup(&core->a, (const char *)name, len);
	c->name_len = len;
	if (!c->name || names_insert(core, c) != 0) {
		bus__conn_abort(core, c);
		return;
	}
	c->primary_len = plen;
	c->primary = primary;
	c->rule = rule;
	c->registered = true;
	c->state = BUS_CS_READY;
	c->next_nop_ns = core->now_ns + cfg->timeout_ns / 2;
	if (primary) {
		primary->secondaries++;
	} else {
		core->primaries_count++;
		announce_later(core, BROKER_INFO_TOPIC, "reg", c->name);
	}
	send_byte(core, c, BUS_RES_OK);
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
static int rcv_reserve(struct bus_core *core, uint32_t conns)
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
static int publish(struct bus_core *core, const char *sname, size_t slen,
                   const struct route_ctx *r, const uint8_t *data,
                   size_t dlen, bool realtime, bool checked)
{
	if (core->rcv_count == 0)
		return 0;
	struct bus_msg *m =
	    bus__msg_delivery(&core->a, BUS_OP_PUBLISH, realtime, sname, slen,
	                      r->topic, r->topic_len, data, dlen);
	if (!m) {
		core->st.drops_slow += core->rcv_count;
		return BUS_ENOMEM;
	}
	queue__fan_out(core, m, realtime, checked);
	bus__msg_unref(&core->a, m);
	return 0;
}

void bus__route_publish_from_broker(struct bus_core *core, const char *topic,
                                    const void *data, size_t len)
{
	struct route_ctx r = {core, topic, strlen(topic), NULL, 0};
	route_collect(core, &r);
	publish(core, BUS_BROKER_NAME, sizeof(BUS_BROKER_NAME) - 1, &r, data,
	        len, false, false);
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
static void proto_error(struct bus_core *core, struct bus_conn *c)
{
	core->st.disconnects_proto++;
	conn_unregister(core, c);
	conn_close_after_flush(core, c);
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
		proto_error(core, c);
		return true;
	}
	if (!topic_within_limits(core, topic, tlen)) {
		core->st.rejects_limit++;
		send_ack(core, c, f->op_id, f->qos, BUS_RES_DATA);
		return true;
	}
	if (bus__topic_is_broker(topic, tlen)) { /* whatever an ACL says */
		core->st.rejects_access++;
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
	int rc = publish(core, c->name, c->name_len, &r, p, len,
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
		proto_error(core, c);
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
	struct bus_msg *m = bus__msg_delivery(&core->a, BUS_OP_MESSAGE, rt,
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
	bus__msg_unref(&core->a, m);
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
		proto_error(core, c);
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
	for (uint32_t i = names_lower(core, mask, pl); i < core->names_count;
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
		    bus__msg_delivery(&core->a, BUS_OP_BROADCAST, rt, c->name,
		                      c->name_len, NULL, 0, p, len);
		if (m) {
			queue__fan_out(core, m, rt, true);
			bus__msg_unref(&core->a, m);
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

/* ---- mask books (book.c): their comparisons --------------------------
 * Right after a frame that queued some, and then at ticks 10 ms apart
 * while any are left, in slices of so many mask levels compared: no frame
 * stalls the broker for more than a slice (64 K levels, about 1 ms; plus
 * the comparisons of the mask at hand), and a client that keeps queueing
 * comparisons (a cover added and removed in a loop) holds at most a
 * tenth of the broker's time, and only while it does. */
#define BUS_BOOK_SLICE_STEPS (1u << 16)
#define BUS_BOOK_TICK_NS 10000000ull

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

static void books_unlist(struct bus_core *core, struct bus_conn *c)
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
static void books_tick(struct bus_core *core)
{
	uint64_t steps = 0;
	while (core->book_first && steps < BUS_BOOK_SLICE_STEPS) {
		struct bus_conn *c = core->book_first;
		books_unlist(core, c);
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
		proto_error(core, c);
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
				audit(core, c, "subscribe", c->name, c->name_len,
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
static bool on_frame(struct bus_core *core, struct bus_conn *c,
                     const struct bus_frame *f)
{
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
	if (!done) { /* not read after all: it is counted when handled */
		c->r_frames--;
		c->r_bytes -= f->len;
		core->st.r_frames -= counted;
		core->st.r_bytes -= f->len;
	}
	return done;
}

/* ---- input ------------------------------------------------------------- */
/* Consumes what it can of buf; stops at a partial frame, a close, or when
 * the connection waits for a receiver (block policy). */
static size_t conn_process(struct bus_core *core, struct bus_conn *c,
                           const uint8_t *buf, size_t len)
{
	size_t pos = 0;
	while (c->close == BUS_CLOSE_NONE && !c->wait_on && pos < len) {
		const uint8_t *p = buf + pos;
		size_t avail = len - pos;
		if (c->state == BUS_CS_GREETING) {
			if (avail < 3)
				break;
			pos += 3;
			if (p[0] != BUS_GREETING ||
			    (p[1] | p[2] << 8) != BUS_PROTOCOL_VERSION) {
				handshake_refuse(core, c, BUS_RES_NOT_SUPPORTED, false);
				break;
			}
			send_byte(core, c, BUS_RES_OK);
			c->state = BUS_CS_NAME_LEN;
			c->deadline_ns = core->now_ns + core->cfg.timeout_ns;
		} else if (c->state == BUS_CS_NAME_LEN) {
			if (avail < 2)
				break;
			pos += 2;
			c->name_expect = (uint16_t)(p[0] | p[1] << 8);
			if (c->name_expect == 0 ||
			    c->name_expect > core->cfg.limits.name_bytes_max) {
				handshake_refuse(core, c, BUS_RES_DATA, false);
				break;
			}
			c->state = BUS_CS_NAME;
			c->deadline_ns = core->now_ns + core->cfg.timeout_ns;
		} else if (c->state == BUS_CS_NAME) {
			if (avail < c->name_expect)
				break;
			pos += c->name_expect;
			conn_register(core, c, p, c->name_expect);
		} else {
			struct bus_frame f;
			const char *why = NULL;
			enum bus_decode d = bus__frame_decode(
			    p, avail, core->cfg.limits.payload_bytes_max, &f,
			    &why);
			if (d == BUS_DECODE_NEED_MORE)
				break;
			if (d == BUS_DECODE_ERROR) {
				proto_error(core, c);
				break;
			}
			if (on_frame(core, c, &f))
				pos += f.consumed;
		}
	}
	return pos;
}

/* ---- the input budget --------------------------------------------------
 * Every connection's rx counts (its capacity: what it holds in memory).
 * Past input_bytes_total_max a connection that needs more pauses, in a
 * FIFO, except one, the owner, which goes on so that its frame completes
 * and the budget frees; the total stays within twice the budget plus a
 * frame. The owner that completes no frame for the block deadline while
 * others wait is cut (disconnects_input): a slow sender cannot hold the
 * others. */
#define RX_KEEP_BYTES 4096u /* an empty rx this small stays allocated */
#define RX_FREE_NOW_BYTES (1u << 20) /* larger: shrunk at once after use;
                                        smaller: freed empty at a tick
                                        (no churn on the hot path) */ /* an empty rx this small stays allocated */

void bus__conn_reading(struct bus_core *core, struct bus_conn *c)
{
	bool want = c->close == BUS_CLOSE_NONE && !c->wait_on &&
	            !c->input_paused;
	if (want != c->reading_paused)
		return; /* the host already does what we want */
	c->reading_paused = !want;
	core->ops.set_reading(core->host, c->ctx, want);
}

static void rx_set_cap(struct bus_core *core, struct bus_conn *c, size_t cap)
{
	core->rx_bytes = core->rx_bytes - c->rx_cap + cap;
	c->rx_cap = cap;
}

static void input_admit(struct bus_core *core)
{
	uint64_t max = core->cfg.limits.input_bytes_total_max;
	while (core->in_first && (!core->in_owner || core->rx_bytes < max)) {
		struct bus_conn *c = core->in_first;
		core->in_first = c->in_next;
		if (!core->in_first)
			core->in_last = NULL;
		c->in_next = NULL;
		c->input_paused = false;
		if (core->rx_bytes >= max) {
			core->in_owner = c;
			core->in_owner_since_ns = core->now_ns;
		}
		bus__conn_reading(core, c);
	}
}

/* c handled input or holds less now: the owner's turn ends when its
 * large frame is done; the paused may go on. */
static void input_released(struct bus_core *core, struct bus_conn *c)
{
	if (core->in_owner == c && c->rx_len <= RX_KEEP_BYTES)
		core->in_owner = NULL;
	input_admit(core);
}

/* c's rx grew: past the budget, it pauses unless it is (or becomes) the
 * owner. */
static void input_grew(struct bus_core *core, struct bus_conn *c)
{
	if (core->rx_bytes <= core->cfg.limits.input_bytes_total_max ||
	    c->input_paused || core->in_owner == c)
		return;
	if (!core->in_owner) {
		core->in_owner = c;
		core->in_owner_since_ns = core->now_ns;
		return;
	}
	c->input_paused = true;
	c->in_next = NULL;
	if (core->in_last)
		core->in_last->in_next = c;
	else
		core->in_first = c;
	core->in_last = c;
	core->st.input_pauses++;
	bus__conn_reading(core, c);
}

static void input_forget(struct bus_core *core, struct bus_conn *c)
{
	if (c->input_paused) {
		struct bus_conn **pp = &core->in_first, *prev = NULL;
		while (*pp != c) {
			prev = *pp;
			pp = &(*pp)->in_next;
		}
		*pp = c->in_next;
		if (core->in_last == c)
			core->in_last = prev;
		c->input_paused = false;
	}
	bus__free(&core->a, c->rx);
	c->rx = NULL;
	c->rx_len = 0;
	rx_set_cap(core, c, 0);
	if (core->in_owner == c)
		core->in_owner = NULL;
	input_admit(core);
}

static uint64_t input_deadline(const struct bus_core *core)
{
	if (!core->in_owner || !core->in_first)
		return UINT64_MAX;
	return core->in_owner_since_ns + queue__block_deadline_ns(core);
}

static void input_stall_check(struct bus_core *core)
{
	struct bus_conn *o = core->in_owner;
	if (o && core->now_ns >= input_deadline(core) &&
	    o->close == BUS_CLOSE_NONE) {
		core->st.disconnects_input++;
		bus__conn_abort(core, o); /* its input goes at its close */
		core->in_owner = NULL;
		input_admit(core);
	}
}

static void rx_keep(struct bus_core *core, struct bus_conn *c,
                    const uint8_t *rest, size_t len)
{
	if (c->rx_len + len > c->rx_cap) {
		size_t ncap = c->rx_cap ? c->rx_cap : 256;
		while (ncap < c->rx_len + len)
			ncap *= 2;
		uint8_t *n = bus__realloc(&core->a, c->rx, ncap);
		if (!n) {
			bus__conn_abort(core, c);
			return;
		}
		c->rx = n;
		rx_set_cap(core, c, ncap);
		input_grew(core, c);
	}
	memcpy(c->rx + c->rx_len, rest, len);
	c->rx_len += len;
}

/* After a large frame the buffer goes back: an idle connection does not
 * keep 16 MiB. Past RX_FREE_NOW_BYTES: freed when empty, shrunk when a
 * quarter used; smaller ones empty at a tick (idle) are freed. */
static void rx_shrink(struct bus_core *core, struct bus_conn *c, bool idle)
{
	if (c->rx_cap <= (idle ? RX_KEEP_BYTES : RX_FREE_NOW_BYTES))
		return;
	if (c->rx_len == 0) {
		bus__free(&core->a, c->rx);
		c->rx = NULL;
		rx_set_cap(core, c, 0);
	} else if (!idle && c->rx_len <= c->rx_cap / 4) {
		size_t ncap = c->rx_cap / 2;
		while (ncap / 2 >= c->rx_len * 2 && ncap / 2 >= RX_KEEP_BYTES)
			ncap /= 2;
		uint8_t *n = bus__realloc(&core->a, c->rx, ncap);
		if (!n)
			return; /* keeps the larger one: harmless */
		c->rx = n;
		rx_set_cap(core, c, ncap);
	}
}

/* Processes the buffered input of c and keeps only what is left. */
void bus__rx_drain(struct bus_core *core, struct bus_conn *c)
{
	if (c->rx_len == 0)
		return; /* nothing buffered (rx may not even exist) */
	size_t used = conn_process(core, c, c->rx, c->rx_len);
	if (c->close != BUS_CLOSE_NONE)
		return;
	memmove(c->rx, c->rx + used, c->rx_len - used);
	c->rx_len -= used;
	if (used && core->in_owner == c)
		core->in_owner_since_ns = core->now_ns; /* a frame done */
	rx_shrink(core, c, false);
	if (used && (core->in_owner == c || core->in_first))
		input_released(core, c);
}

/* ---- lifecycle --------------------------------------------------------- */
/* End of every entry point: emit queued announcements. */
static void core_end(struct bus_core *core)
{
	while (core->ann_first) {
		struct bus_pending_ann *p = core->ann_first;
		core->ann_first = p->next;
		if (!core->ann_first)
			core->ann_last = NULL;
		bus__announce(core, p->topic, p->subject,
		              p->name[0] ? p->name : NULL);
		bus__free(&core->a, p);
	}
}

struct bus_core *bus_core_new(const struct bus_core_config *cfg,
                              const struct bus_core_ops *ops, void *host,
                              uint64_t now_ns, uint64_t realtime_ns)
{
	const char *what;
	if (bus_core_config_check(cfg, &what) != 0)
		return NULL;
	struct bus_core *core = bus__calloc(&cfg->allocator, sizeof(*core));
	if (!core)
		return NULL;
	core->cfg = *cfg;
	core->a = cfg->allocator;
	core->ops = *ops;
	core->host = host;
	core->start_ns = core->mono_base_ns = core->now_ns = now_ns;
	core->realtime_base_ns = realtime_ns;
	core->iov_cap = BUS_IOV_BATCH;
	core->iov = bus__alloc(&core->a, sizeof(*core->iov) * BUS_IOV_BATCH);
	core->m_nop = bus__msg_new(&core->a, BUS_SERVER_HDR_BYTES);
	core->m_greeting = bus__msg_new(&core->a, 3);
	if (!core->iov || !core->m_nop || !core->m_greeting) {
		bus_core_free(core);
		return NULL;
	}
	memset(core->m_nop->data, 0, BUS_SERVER_HDR_BYTES);
	core->m_greeting->data[0] = BUS_GREETING;
	core->m_greeting->data[1] = BUS_PROTOCOL_VERSION & 0xFF;
	core->m_greeting->data[2] = BUS_PROTOCOL_VERSION >> 8;
	return core;
}

static void conn_free(struct bus_core *core, struct bus_conn *c)
{
	c->q_inflight = 0;
	queue__truncate(core, c, 0);
	bus__free(&core->a, c->q);
	input_forget(core, c);
	bus__free(&core->a, c->name);
	books_unlist(core, c);
	bus__book_free(&core->a, &c->subs, c);
	bus__book_free(&core->a, &c->excl, c);
	bus__trie_free(&core->a, &c->excl_trie);
	bus__free(&core->a, c);
}

void bus_core_free(struct bus_core *core)
{
	if (!core)
		return;
	core->in_first = core->in_last = core->in_owner = NULL;
	for (struct bus_conn *c = core->first; c; c = c->next)
		c->input_paused = false; /* nobody is admitted at the end */
	while (core->first) {
		struct bus_conn *c = core->first;
		core->first = c->next;
		conn_unregister(core, c);
		queue__unmark_dirty(core, c);
		conn_free(core, c);
	}
	while (core->ann_first) {
		struct bus_pending_ann *p = core->ann_first;
		core->ann_first = p->next;
		bus__free(&core->a, p);
	}
	bus__trie_free(&core->a, &core->trie);
	for (int i = 0; i < 256; i++)
		if (core->m_byte[i])
			bus__msg_unref(&core->a, core->m_byte[i]);
	if (core->m_nop)
		bus__msg_unref(&core->a, core->m_nop);
	if (core->m_greeting)
		bus__msg_unref(&core->a, core->m_greeting);
	bus__free(&core->a, core->names);
	bus__free(&core->a, core->rcv);
	bus__free(&core->a, core->iov);
	struct bus_allocator a = core->a;
	bus__free(&a, core);
}

/* Every entry point's clock: time never goes backwards (a host that
 * passes a wall clock, or mixes clocks, is caught at once). */
static void clock_at(struct bus_core *core, uint64_t now_ns)
{
	BUS_ASSERT(now_ns >= core->now_ns);
	core->now_ns = now_ns;
}

struct bus_conn *bus_core_on_connect(struct bus_core *core, void *conn_ctx,
                                     enum bus_conn_kind kind,
                                     const char *source, const char *port,
                                     uint64_t now_ns)
{
	clock_at(core, now_ns);
	if (rcv_reserve(core, core->conn_count + 1))
		return NULL;
	struct bus_conn *c = bus__calloc(&core->a, sizeof(*c));
	if (!c)
		return NULL;
	c->core = core;
	c->ctx = conn_ctx;
	c->serial = ++core->next_serial;
	c->kind = kind;
	c->state = BUS_CS_GREETING;
	c->subs.trie = &core->trie;
	c->excl.trie = &c->excl_trie;
	c->acl_pub_len = UINT32_MAX;
	c->last_rx_ns = now_ns;
	c->deadline_ns = now_ns + core->cfg.timeout_ns;
	snprintf(c->source, sizeof(c->source), "%s", source ? source : "");
	snprintf(c->port, sizeof(c->port), "%s", port ? port : "");
	c->prev = core->last;
	if (core->last)
		core->last->next = c;
	else
		core->first = c;
	core->last = c;
	core->conn_count++;
	if (core->shutting_down) {
		conn_request_close(core, c);
		return c;
	}
	queue__deliver(core, c, core->m_greeting, true);
	return c;
}

void bus_core_on_bytes(struct bus_core *core, struct bus_conn *c,
                       const void *data, size_t len, uint64_t now_ns)
{
	clock_at(core, now_ns);
	if (c->close != BUS_CLOSE_NONE || len == 0)
		return;
	c->last_rx_ns = now_ns;
	if (c->rx_len == 0 && !c->wait_on) {
		size_t used = conn_process(core, c, data, len);
		if (c->close == BUS_CLOSE_NONE && used < len)
			rx_keep(core, c, (const uint8_t *)data + used,
			        len - used);
	} else {
		rx_keep(core, c, data, len);
		if (c->close == BUS_CLOSE_NONE && !c->wait_on)
			bus__rx_drain(core, c);
	}
	core_end(core);
}

void bus_core_on_written(struct bus_core *core, struct bus_conn *c,
                         int status, uint64_t now_ns)
{
	clock_at(core, now_ns);
	queue__complete(core, c, status >= 0);
	if (status < 0 && c->state == BUS_CS_READY &&
	    c->close == BUS_CLOSE_NONE && !c->out_dead) {
		/* the peer cannot hear (it closed after its last frames, say:
		 * EPIPE on a keepalive): it is a receiver no more, but what it
		 * sent stands, and is handled before its EOF closes it. Before,
		 * the frames it had sent that waited for a slow receiver were
		 * dropped here (test_backpressure caught ~0.1%) */
		c->out_dead = true;
		queue__truncate(core, c, 0);
		queue__unmark_dirty(core, c);
		conn_unregister(core, c);
		bus__rx_drain(core, c);
		bus__conn_reading(core, c);
	} else if (status < 0) {
		bus__conn_abort(core, c);
	} else if (c->close == BUS_CLOSE_AFTER_FLUSH && c->q_count == 0) {
		conn_request_close(core, c);
	} else {
		if (c->q_count)
			queue__mark_dirty(core, c);
		queue__progress(core, c);
	}
	core_end(core);
}

void bus_core_on_close(struct bus_core *core, struct bus_conn *c,
                       uint64_t now_ns)
{
	clock_at(core, now_ns);
	/* gone: before its waiters go on (they may route a frame to it
	 * again), nobody may queue for it or wait for it */
	c->close = BUS_CLOSE_REQUESTED;
	conn_unregister(core, c);
	queue__unmark_dirty(core, c);
	if (c->prev)
		c->prev->next = c->next;
	else
		core->first = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		core->last = c->prev;
	core->conn_count--;
	conn_free(core, c);
	core_end(core);
}

void bus_core_flush(struct bus_core *core, uint64_t now_ns)
{
	clock_at(core, now_ns);
	while (core->dirty_first) {
		struct bus_conn *c = core->dirty_first;
		core->dirty_first = c->dirty_next;
		if (!core->dirty_first)
			core->dirty_last = NULL;
		c->dirty = false;
		queue__write(core, c);
	}
}

void bus_core_on_tick(struct bus_core *core, uint64_t now_ns)
{
	clock_at(core, now_ns);
	uint64_t idle_ns = core->cfg.timeout_ns / 4 * 5;
	for (struct bus_conn *c = core->first; c; c = c->next) {
		if (c->close == BUS_CLOSE_AFTER_FLUSH) {
			if (now_ns >= c->deadline_ns)
				conn_request_close(core, c);
			continue;
		}
		if (c->close != BUS_CLOSE_NONE)
			continue;
		if (c->rx_len == 0 && c->rx_cap > RX_KEEP_BYTES) {
			rx_shrink(core, c, true);
			input_released(core, c);
		}
		if (c->state != BUS_CS_READY) {
			if (now_ns >= c->deadline_ns) {
				core->st.rejects_handshake++;
				bus__conn_abort(core, c);
			}
			continue;
		}
		if (!c->reading_paused && now_ns - c->last_rx_ns >= idle_ns) {
			core->st.disconnects_idle++;
			bus__conn_abort(core, c);
			continue;
		}
		if (now_ns >= c->next_nop_ns) {
			c->next_nop_ns = now_ns + core->cfg.timeout_ns / 2;
			queue__deliver(core, c, core->m_nop, false);
		}
	}
	queue__stall_check(core);
	input_stall_check(core);
	books_tick(core);
	core_end(core);
}

uint64_t bus_core_next_deadline(const struct bus_core *core)
{
	uint64_t d = UINT64_MAX;
	uint64_t idle_ns = core->cfg.timeout_ns / 4 * 5;
#define MIN_INTO(v)                                                          \
	do {                                                                 \
		uint64_t v_ = (v);                                           \
		if (v_ < d)                                                  \
			d = v_;                                              \
	} while (0)
	for (const struct bus_conn *c = core->first; c; c = c->next) {
		if (c->close == BUS_CLOSE_AFTER_FLUSH || (c->close ==
		    BUS_CLOSE_NONE && c->state != BUS_CS_READY)) {
			MIN_INTO(c->deadline_ns);
		} else if (c->close == BUS_CLOSE_NONE) {
			MIN_INTO(c->next_nop_ns);
			if (!c->reading_paused)
				MIN_INTO(c->last_rx_ns + idle_ns);
			MIN_INTO(queue__stall_deadline(core, c));
		}
	}
	MIN_INTO(input_deadline(core));
	if (core->book_first)
		MIN_INTO(core->now_ns + BUS_BOOK_TICK_NS);
#undef MIN_INTO
	return d;
}

void bus_core_shutdown(struct bus_core *core, uint64_t now_ns)
{
	clock_at(core, now_ns);
	if (core->shutting_down)
		return;
	core->shutting_down = true;
	bus__announce(core, BROKER_WARN_TOPIC, "shutdown", NULL);
	for (struct bus_conn *c = core->first; c; c = c->next)
		conn_close_after_flush(core, c);
	core_end(core);
}

bool bus_core_has_pending_writes(const struct bus_core *core)
{
	for (const struct bus_conn *c = core->first; c; c = c->next)
		if (c->q_count && c->close != BUS_CLOSE_REQUESTED)
			return true;
	return false;
}

void bus_core_count_refused(struct bus_core *core)
{
	core->st.rejects_accept++;
}

void bus_core_count_tls(struct bus_core *core, int outcome)
{
	if (outcome == 0)
		core->st.tls_handshakes++;
	else if (outcome == 2)
		core->st.tls_plaintext++;
	else
		core->st.tls_failures++;
}

void bus_core_stats(const struct bus_core *core, struct bus_stats *out)
{
	*out = core->st;
	out->connections = core->conn_count;
	out->clients = core->names_count;
	out->queued_bytes = core->queued_bytes;
	out->subscriptions_bytes = core->mask_bytes;
	out->input_bytes = core->rx_bytes;
	uint64_t frames = 0;
	for (const struct bus_conn *c = core->first; c; c = c->next)
		frames += c->q_count;
	out->queued_frames = frames;
}

const struct bus_core_config *bus_core_config_get(const struct bus_core *core)
{
	return &core->cfg;
}

uint64_t bus_core_trie_visits(const struct bus_core *core)
{
	return core->trie.visits;
}

const char *bus_conn_name(const struct bus_conn *conn)
{
	return conn->name ? conn->name : "";
}

void *bus_conn_ctx(const struct bus_conn *conn) { return conn->ctx; }

uint64_t bus_conn_dbg_frames(const struct bus_conn *conn);
uint64_t bus_conn_dbg_frames(const struct bus_conn *conn) { return conn->r_frames; }
uint64_t bus_conn_dbg_bytes(const struct bus_conn *conn);
uint64_t bus_conn_dbg_bytes(const struct bus_conn *conn) { return conn->r_bytes; }

size_t bus_conn_input_pending(const struct bus_conn *conn)
{
	return conn->rx_len;
}
