/* SPDX-License-Identifier: Apache-2.0 */
/*
 * acl.c — matching an ACL (bus.h: who a peer is, and what it may do).
 * Pure functions of the rules, the peer's identity and the strings: the
 * host builds the rules (broker/net/config.c), the core asks them.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const bus_acl_kind_names[BUS_ACL_KINDS] = {
    "names", "publish", "subscribe", "send", "broadcast"};

void bus_ident_text(const struct bus_ident *id, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN] = "";
	if (id->family)
		inet_ntop(id->family == 4 ? AF_INET : AF_INET6, id->addr, a,
		          sizeof(a));
	if (id->cred)
		snprintf(out, cap, "uid %u gid %u pid %u", id->uid, id->gid,
		         id->pid);
	else if (id->cn[0])
		snprintf(out, cap, "cn %s from %s", id->cn, a);
	else if (a[0])
		snprintf(out, cap, "from %s", a);
	else
		snprintf(out, cap, "no credentials");
}

static bool addr_in(const struct bus_acl_who *w, const struct bus_ident *id)
{
	if (id->family != w->family)
		return false;
	unsigned bits = w->prefix, max = w->family == 4 ? 32 : 128;
	if (bits > max)
		return false;
	unsigned full = bits / 8, rest = bits % 8;
	if (memcmp(id->addr, w->addr, full) != 0)
		return false;
	if (!rest)
		return true;
	uint8_t m = (uint8_t)(0xff << (8 - rest));
	return (id->addr[full] & m) == (w->addr[full] & m);
}

static bool who_one(const struct bus_acl_who *w, const struct bus_ident *id)
{
	if (w->uid_set && (!id->cred || id->uid != w->uid))
		return false;
	if (w->gid_set) {
		bool in = id->cred && id->gid == w->gid;
		for (uint32_t i = 0; !in && id->cred && i < id->n_groups &&
		                     i < BUS_IDENT_GROUPS_MAX;
		     i++)
			in = id->groups[i] == w->gid;
		if (!in)
			return false;
	}
	if (w->cn[0] && strcmp(w->cn, id->cn) != 0)
		return false;
	return !w->family || addr_in(w, id);
}

bool bus_acl_who_match(const struct bus_acl_rule *r, const struct bus_ident *id)
{
	if (r->n_who == 0)
		return true;
	for (uint32_t i = 0; i < r->n_who; i++)
		if (who_one(&r->who[i], id))
			return true;
	return false;
}

/* pat with {N} and {name} replaced from name (levels split on '.'), into
 * out; false if a placeholder names a level the name does not have or
 * the result does not fit (then the pattern matches nothing). */
static bool expand(const char *pat, const char *name, size_t nl, char *out,
                   size_t cap, size_t *olen)
{
	size_t o = 0;
	for (const char *p = pat; *p;) {
		const char *ins = NULL;
		size_t il = 0, skip = 1;
		if (p[0] == '{' && !strncmp(p, "{name}", 6)) {
			ins = name;
			il = nl;
			skip = 6;
		} else if (p[0] == '{' && p[1] >= '0' && p[1] <= '9' &&
		           p[2] == '}') {
			unsigned want = (unsigned)(p[1] - '0'), lv = 0;
			size_t start = 0;
			for (size_t i = 0; i <= nl; i++) {
				if (i < nl && name[i] != '.')
					continue;
				if (lv++ == want) {
					ins = name + start;
					il = i - start;
					break;
				}
				start = i + 1;
			}
			if (!ins)
				return false;
			skip = 3;
		}
		if (!ins) {
			ins = p;
			il = 1;
		}
		if (o + il >= cap)
			return false;
		memcpy(out + o, ins, il);
		o += il;
		p += skip;
	}
	out[o] = 0;
	*olen = o;
	return true;
}

/* Does pattern (expanded) allow s, for list kind k? */
static bool one_allows(enum bus_acl_kind k, const char *pat, const char *name,
                       size_t nl, const char *s, size_t len, bool deny)
{
	char buf[2048];
	size_t pl;
	const char *m = buf;
	if (!strchr(pat, '{')) { /* nothing to expand: as written */
		m = pat;
		pl = strlen(pat);
	} else if (!expand(pat, name, nl, buf, sizeof(buf), &pl)) {
		return false;
	}
	uint64_t steps = 0;
	switch (k) {
	case BUS_ACL_NAMES:
	case BUS_ACL_SEND:
		return bus__bcast_match(m, pl, s, len);
	case BUS_ACL_PUBLISH:
		return bus__mask_match(m, pl, s, len);
	case BUS_ACL_SUBSCRIBE:
		return deny ? bus__mask_overlap(m, pl, s, len)
		            : bus__mask_covers(m, pl, s, len, &steps);
	case BUS_ACL_BROADCAST:
		return deny ? bus__bcast_overlap(m, pl, s, len)
		            : bus__bcast_covers(m, pl, s, len);
	default:
		return false;
	}
}

bool bus_acl_allows(const struct bus_acl_rule *r, enum bus_acl_kind k,
                    const char *name, size_t name_len, const char *s,
                    size_t len)
{
	const struct bus_acl_list *l = &r->l[k];
	bool ok = false;
	for (uint32_t i = 0; i < l->n_allow && !ok; i++)
		ok = one_allows(k, l->allow[i], name, name_len, s, len, false);
	for (uint32_t i = 0; i < l->n_deny && ok; i++)
		ok = !one_allows(k, l->deny[i], name, name_len, s, len, true);
	return ok;
}

const struct bus_acl_rule *bus_acl_find(const struct bus_acl *acl,
                                        const struct bus_ident *id,
                                        const char *name, size_t len)
{
	for (uint32_t i = 0; i < acl->n_rules; i++) {
		const struct bus_acl_rule *r = &acl->rules[i];
		if (bus_acl_who_match(r, id) &&
		    bus_acl_allows(r, BUS_ACL_NAMES, name, len, name, len))
			return r;
	}
	return NULL;
}

void bus_acl_free(struct bus_acl *acl)
{
	for (uint32_t i = 0; i < acl->n_rules; i++) {
		struct bus_acl_rule *r = &acl->rules[i];
		for (int k = 0; k < BUS_ACL_KINDS; k++) {
			for (uint32_t j = 0; j < r->l[k].n_allow; j++)
				free(r->l[k].allow[j]);
			for (uint32_t j = 0; j < r->l[k].n_deny; j++)
				free(r->l[k].deny[j]);
			free(r->l[k].allow);
			free(r->l[k].deny);
		}
		free(r->who);
	}
	free(acl->rules);
	acl->rules = NULL;
	acl->n_rules = 0;
}
