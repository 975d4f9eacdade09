/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn.c — a connection's life in the broker core: how it ends (asked to
 * close, closed after its output flushes, aborted), its registration
 * (names, secondaries, places under connections_max and the ACL's
 * reservations), the ACL's checks and audit, and the handshake.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* ---- connections ending ------------------------------------------------ */
void bus__conn_request_close(struct bus_core *core, struct bus_conn *c)
{
	if (c->close == BUS_CLOSE_REQUESTED)
		return;
	c->close = BUS_CLOSE_REQUESTED;
	queue__truncate(core, c, c->q_inflight);
	queue__unmark_dirty(core, c);
	core->ops.close(core->host, c->ctx);
	queue__wait_end(core, c); /* its waiters go on without it */
}


void bus__conn_abort(struct bus_core *core, struct bus_conn *c)
{
	if (c->close == BUS_CLOSE_REQUESTED)
		return;
	bus__conn_unregister(core, c);
	bus__conn_request_close(core, c);
}

/* Writes what is queued, then closes (handshake refusals, shutdown). */
void bus__conn_close_after_flush(struct bus_core *core, struct bus_conn *c)
{
	if (c->close != BUS_CLOSE_NONE)
		return;
	c->close = BUS_CLOSE_AFTER_FLUSH;
	c->deadline_ns = core->now_ns + core->cfg.timeout_ns;
	timer__changed(core, c);
	bus__conn_reading(core, c);
	queue__wait_end(core, c); /* it takes no more frames */
	if (c->q_count == 0)
		bus__conn_request_close(core, c);
	else
		queue__write(core, c);
}

void bus__deliver_broker(struct bus_core *core, struct bus_conn *c,
                         struct bus_msg *m)
{
	queue__deliver(core, c, m, false);
}

void bus__send_byte(struct bus_core *core, struct bus_conn *c, uint8_t b)
{
	struct bus_msg *m = core->m_byte[b];
	if (!m) {
		m = bus__msg_new(core, 1);
		if (!m) {
			bus__conn_abort(core, c);
			return;
		}
		m->data[0] = b;
		core->m_byte[b] = m;
	}
	queue__deliver(core, c, m, true);
}

/* ---- registration ------------------------------------------------------ */
void bus__conn_unregister(struct bus_core *core, struct bus_conn *c)
{
	queue__wait_end(core, c);
	if (!c->registered)
		return;
	c->registered = false;
	bus__names_remove(core, c);
	bus__books_unlist(core, c);
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
	for (uint32_t i = bus__names_lower(core, c->name, c->name_len);
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
	bus__announce_later(core, BROKER_INFO_TOPIC, "unreg", c->name);
}

/* ---- the ACL (acl.c matches) ------------------------------------------ */
void bus__audit(struct bus_core *core, const struct bus_conn *c,
		const char *what, const char *name, size_t nl,
		const char *obj, size_t ol)
{
	/* remembered for .broker diagnostics (the ring's last ones) */
	struct bus_denial *d = &core->denials[core->denials_n++ % BUS_DENIALS];
	d->t_ns = bus__unix_ns(core);
	bus__copy_cut(d->what, sizeof(d->what), what, strlen(what));
	bus__copy_cut(d->who, sizeof(d->who), name ? name : "", name ? nl : 0);
	bus__copy_cut(d->obj, sizeof(d->obj), obj ? obj : "", obj ? ol : 0);
	if (!core->ops.audit)
		return;
	struct bus_audit a = {what, name, nl, obj, ol, &c->ident,
	                      c->rule ? c->rule->label : ""};
	core->ops.audit(core->host, &a);
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
		bus__audit(core, c, "revoked", c->name, c->name_len, "", 0);
		bus__conn_abort(core, c);
	}
	bus__core_end(core);
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

void bus__handshake_refuse(struct bus_core *core, struct bus_conn *c,
			   uint8_t code, bool limit)
{
	if (limit)
		core->st.rejects_connections++;
	else
		core->st.rejects_handshake++;
	bus__send_byte(core, c, code);
	bus__conn_close_after_flush(core, c);
}

void bus__conn_register(struct bus_core *core, struct bus_conn *c,
			const uint8_t *name, size_t len)
{
	const struct bus_core_config *cfg = &core->cfg;
	if (len == 0 || name[0] == '.' || len > cfg->limits.name_bytes_max ||
	    memchr(name, 0, len) || !bus__utf8_valid(name, len)) {
		bus__handshake_refuse(core, c, BUS_RES_DATA, false);
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
			bus__audit(core, c, "register", (const char *)name, len, "",
			      0);
			bus__send_byte(core, c, BUS_RES_ACCESS);
			bus__conn_close_after_flush(core, c);
			return;
		}
	}
	struct bus_conn *primary = NULL;
	if (sep) {
		primary = bus__find_name(core, (const char *)name, plen);
		if (!primary || primary->primary) {
			bus__handshake_refuse(core, c, BUS_RES_NOT_REGISTERED, false);
			return;
		}
	}
	struct bus_conn *old = bus__find_name(core, (const char *)name, len);
	if (old && !cfg->force_register) {
		bus__handshake_refuse(core, c, BUS_RES_BUSY, false);
		return;
	}
	/* the limit is on socket clients: the embedding process's own
	 * internal clients do not take a collector's place */
	if (!old && c->kind != BUS_KIND_INTERNAL &&
	    (!place_free(core, rule) || !peer_place_free(core, c))) {
		bus__handshake_refuse(core, c, BUS_RES_BUSY, true);
		return;
	}
	if (old) {
		if (old == primary) { /* "x%%y" cannot replace "x" */
			bus__handshake_refuse(core, c, BUS_RES_BUSY, false);
			return;
		}
		bus__conn_abort(core, old);
	}
	c->name = bus__strndup(&core->a, (const char *)name, len);
	c->name_len = len;
	if (!c->name || bus__names_insert(core, c) != 0) {
		bus__conn_abort(core, c);
		return;
	}
	c->primary_len = plen;
	c->primary = primary;
	c->rule = rule;
	c->registered = true;
	c->state = BUS_CS_READY;
	c->next_nop_ns = core->now_ns + cfg->timeout_ns / 2;
	timer__changed(core, c);
	if (primary) {
		primary->secondaries++;
	} else {
		core->primaries_count++;
		bus__announce_later(core, BROKER_INFO_TOPIC, "reg", c->name);
	}
	bus__send_byte(core, c, BUS_RES_OK);
}

