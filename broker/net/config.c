/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c — loads the broker's YAML configuration with libyaml's document
 * API. Every key is known: an unknown key, a wrong type or a value out of
 * range is an error naming file, line and key. Aliases are never expanded
 * (the walker only looks at the fixed shape below), so alias bombs are
 * harmless; files over 1 MiB are refused before parsing, and nesting
 * past BUS_CONFIG_DEPTH_MAX before a document is built (config.h).
 *
 * broker:
 *   mode: embedded | standalone
 *   timeout: seconds                       (ours; busrtd -t)
 *   queue_policy: block | disconnect | drop_newest (ours; block default)
 *   internal_queue_policy: block | disconnect | drop_newest (ours)
 *   block_deadline_ms, low_water_percent, star_is_plus, force_register,
 *   socket_mode (ours)
 *   stats_interval_ms: control/broker/stats every so long (10000; 0 off)
 *   topic_stats: { depth: levels of a topic's prefix (3; 0 off),
 *                  rows: prefixes kept before the "other" row (256) }
 *   metrics: { listen: loopback HOST:PORT of the Prometheus endpoint
 *              ("" none, the default; 127.0.0.1:9464 is the usual) }
 *   limits: { every key of bus.h's BUS_LIMITS_MAP } (ours)
 *   embedded:   { max_connections, buffer_size,
 *                 transport: { type: unix_socket, path } }
 *   standalone: { address, socket (ours), max_connections, buffer_size,
 *                 tls: { enabled, cert_file, key_file } }
 * agent: daemoneye-agent's section (config.h); other programs check it
 *        and ignore it, so one file serves the agent and busrtd.
 * bridge: busrt-bridge's section (config.h), checked and ignored the same.
 */
#include "bus/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/internal.h" /* bus__utf8_valid */
#include "bus/net.h" /* bus_metrics_addr_check */

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define CONFIG_BYTES_MAX (1u << 20)

struct ld {
	yaml_document_t *doc;
	const char *path;
	char *err;
	size_t errlen;
	struct bus_file_config *cfg;
	struct bus_agent_config *agent;       /* agent: being parsed */
	struct bus_collector_config *collector; /* agent.collectors[i] */
	struct bus_rpc_policy *policy;        /* agent.rpc.<service> */
	struct bus_bridge_config *bridge;     /* bridge: being parsed */
	struct bus_acl_rule *rule;            /* broker.acl[i] */
	bool rule_names;                      /* its names were given */
	struct bus_acl_list *list;            /* one of its lists */
	struct bus_acl_who *who;              /* one of its who */
};

static int fail(struct ld *l, const yaml_node_t *n, const char *key,
                const char *what)
{
	snprintf(l->err, l->errlen, "%s:%zu: %s: %s", l->path,
	         n ? n->start_mark.line + 1 : 0, key, what);
	return BUS_ECONFIG;
}

bool bus_config_parse_u64(const char *s, uint64_t min, uint64_t max,
                          uint64_t *out)
{
	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool bus_config_parse_seconds(const char *s, uint64_t *ns)
{
	if (!s || !((*s >= '0' && *s <= '9') || *s == '.'))
		return false;
	errno = 0;
	char *end;
	double v = strtod(s, &end);
	if (errno || *end || !(v > 0) || v > 86400.0 * 365)
		return false;
	*ns = (uint64_t)(v * 1e9);
	return true;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
	                                        : NULL;
}

static int get_u64(struct ld *l, const yaml_node_t *n, const char *key,
                   uint64_t min, uint64_t max, uint64_t *out)
{
	if (!bus_config_parse_u64(scalar(n), min, max, out)) {
		char what[96];
		snprintf(what, sizeof(what),
		         "expected an integer from %llu to %llu",
		         (unsigned long long)min, (unsigned long long)max);
		return fail(l, n, key, what);
	}
	return 0;
}

static int get_u32(struct ld *l, const yaml_node_t *n, const char *key,
                   uint64_t min, uint64_t max, uint32_t *out)
{
	uint64_t v;
	int rc = get_u64(l, n, key, min, max, &v);
	if (!rc)
		*out = (uint32_t)v;
	return rc;
}

static int get_bool(struct ld *l, const yaml_node_t *n, const char *key,
                    bool *out)
{
	const char *s = scalar(n);
	if (s && (!strcmp(s, "true") || !strcmp(s, "yes")))
		*out = true;
	else if (s && (!strcmp(s, "false") || !strcmp(s, "no")))
		*out = false;
	else
		return fail(l, n, key, "expected true or false");
	return 0;
}

static int get_str(struct ld *l, const yaml_node_t *n, const char *key,
                   char *out, size_t cap)
{
	const char *s = scalar(n);
	if (!s)
		return fail(l, n, key, "expected a string");
	if (strlen(s) >= cap)
		return fail(l, n, key, "too long");
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int get_policy(struct ld *l, const yaml_node_t *n, const char *key,
                      enum bus_slow_policy *out)
{
	if (bus_slow_policy_parse(scalar(n), out))
		return fail(l, n, key, "expected block, disconnect or drop_newest");
	return 0;
}

/* Iterates a mapping: calls fn(l, key, value_node, prefix) per pair. */
typedef int (*pair_fn)(struct ld *l, const char *key, const yaml_node_t *v,
                       const char *full);

static int walk_map(struct ld *l, const yaml_node_t *n, const char *prefix,
                    pair_fn fn)
{
	if (!n || n->type != YAML_MAPPING_NODE)
		return fail(l, n, prefix, "expected a mapping");
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
	     p < n->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
		const yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
		const char *ks = scalar(k);
		if (!ks)
			return fail(l, k, prefix, "keys must be strings");
		char full[160];
		snprintf(full, sizeof(full), "%s.%s", prefix, ks);
		int rc = fn(l, ks, v, full);
		if (rc)
			return rc;
	}
	return 0;
}

static int unknown(struct ld *l, const yaml_node_t *v, const char *full)
{
	return fail(l, v, full, "unknown key");
}

/* One reader per limit type; the ranges and relations are
 * bus_core_config_check's (it names the key). */
static int get_limit_uint32_t(struct ld *l, const yaml_node_t *v,
                              const char *f, uint32_t *out)
{
	return get_u32(l, v, f, 0, UINT32_MAX, out);
}

static int get_limit_uint64_t(struct ld *l, const yaml_node_t *v,
                              const char *f, uint64_t *out)
{
	return get_u64(l, v, f, 0, UINT64_MAX / 2, out);
}

/* Every key of bus.h's BUS_LIMITS_MAP. */
static int on_limits(struct ld *l, const char *k, const yaml_node_t *v,
                     const char *f)
{
	struct bus_limits *x = &l->cfg->core.limits;
#define LIMIT_KEY(type, name, what)                                          \
	if (!strcmp(k, #name))                                               \
		return get_limit_##type(l, v, f, &x->name);
	BUS_LIMITS_MAP(LIMIT_KEY)
#undef LIMIT_KEY
	return unknown(l, v, f);
}

static int on_topic_stats(struct ld *l, const char *k, const yaml_node_t *v,
                          const char *f)
{
	struct bus_core_config *c = &l->cfg->core;
	if (!strcmp(k, "depth"))
		return get_u32(l, v, f, 0, 128, &c->topic_stats_depth);
	if (!strcmp(k, "rows"))
		return get_u32(l, v, f, 0, 65536, &c->topic_stats_rows);
	return unknown(l, v, f);
}

static int on_metrics(struct ld *l, const char *k, const yaml_node_t *v,
                      const char *f)
{
	struct bus_file_config *c = l->cfg;
	if (!strcmp(k, "listen")) {
		int rc = get_str(l, v, f, c->metrics_listen,
		                 sizeof(c->metrics_listen));
		if (rc || !c->metrics_listen[0])
			return rc;
		char why[256];
		if (bus_metrics_addr_check(c->metrics_listen, why, sizeof(why)))
			return fail(l, v, f, why);
		return 0;
	}
	return unknown(l, v, f);
}

static int on_tls(struct ld *l, const char *k, const yaml_node_t *v,
                  const char *f)
{
	struct bus_file_config *c = l->cfg;
	if (!strcmp(k, "enabled")) {
		c->tls_enabled_line = (int)v->start_mark.line + 1;
		return get_bool(l, v, f, &c->tls_enabled);
	}
	if (!strcmp(k, "cert_file"))
		return get_str(l, v, f, c->tls_cert_file, sizeof(c->tls_cert_file));
	if (!strcmp(k, "key_file"))
		return get_str(l, v, f, c->tls_key_file, sizeof(c->tls_key_file));
	if (!strcmp(k, "ca_file"))
		return get_str(l, v, f, c->tls_ca_file, sizeof(c->tls_ca_file));
	if (!strcmp(k, "verify_client"))
		return get_bool(l, v, f, &c->tls_verify_client);
	if (!strcmp(k, "client_cert_file"))
		return get_str(l, v, f, c->tls_client_cert_file,
		               sizeof(c->tls_client_cert_file));
	if (!strcmp(k, "client_key_file"))
		return get_str(l, v, f, c->tls_client_key_file,
		               sizeof(c->tls_client_key_file));
	return unknown(l, v, f);
}

static int on_transport(struct ld *l, const char *k, const yaml_node_t *v,
                        const char *f)
{
	struct bus_file_config *c = l->cfg;
	if (!strcmp(k, "type")) {
		const char *s = scalar(v);
		if (!s || strcmp(s, "unix_socket") != 0)
			return fail(l, v, f, "expected unix_socket");
		return 0;
	}
	if (!strcmp(k, "path"))
		return c->embedded ? get_str(l, v, f, c->socket_path,
		                             sizeof(c->socket_path))
		                   : 0;
	return unknown(l, v, f);
}

/* Keys shared by both sections; applied only for the chosen one. */
static int on_section_common(struct ld *l, const char *k, const yaml_node_t *v,
                             const char *f, bool mine, bool *handled)
{
	struct bus_limits dummy, *x = mine ? &l->cfg->core.limits : &dummy;
	*handled = true;
	if (!strcmp(k, "max_connections"))
		return get_u32(l, v, f, 1, 1000000, &x->connections_max);
	if (!strcmp(k, "buffer_size"))
		return get_u32(l, v, f, 2, 100000000, &x->queue_frames_max);
	*handled = false;
	return 0;
}

static int on_embedded(struct ld *l, const char *k, const yaml_node_t *v,
                       const char *f)
{
	bool handled;
	int rc = on_section_common(l, k, v, f, l->cfg->embedded, &handled);
	if (handled)
		return rc;
	if (!strcmp(k, "transport"))
		return walk_map(l, v, f, on_transport);
	return unknown(l, v, f);
}

static int on_standalone(struct ld *l, const char *k, const yaml_node_t *v,
                         const char *f)
{
	struct bus_file_config *c = l->cfg;
	char tmp[256];
	bool handled;
	int rc = on_section_common(l, k, v, f, !c->embedded, &handled);
	if (handled)
		return rc;
	if (!strcmp(k, "address"))
		return get_str(l, v, f, c->embedded ? tmp : c->address,
		               sizeof(c->address));
	if (!strcmp(k, "socket"))
		return get_str(l, v, f, c->embedded ? tmp : c->socket_path,
		               sizeof(c->socket_path));
	if (!strcmp(k, "tls"))
		return walk_map(l, v, f, on_tls);
	return unknown(l, v, f);
}

/* ---- broker.acl ---------------------------------------------------------- */
#define ACL_RULES_MAX 256u
#define ACL_MASKS_MAX 256u

static int acl_masks(struct ld *l, const yaml_node_t *v, const char *f,
                     char ***out, uint32_t *n)
{
	if (!v || v->type != YAML_SEQUENCE_NODE)
		return fail(l, v, f, "expected a list of masks");
	for (yaml_node_item_t *it = v->data.sequence.items.start;
	     it < v->data.sequence.items.top; it++) {
		const yaml_node_t *e = yaml_document_get_node(l->doc, *it);
		const char *m = scalar(e);
		if (!m || !*m || strlen(m) > 1024 ||
		    !bus__utf8_valid((const uint8_t *)m, strlen(m)))
			return fail(l, e, f, "a mask is a non-empty UTF-8 string "
			                     "of at most 1024 bytes");
		if (*n >= ACL_MASKS_MAX)
			return fail(l, e, f, "more than 256 masks");
		char **nv = realloc(*out, (*n + 1) * sizeof(*nv));
		char *d = strdup(m);
		if (nv)
			*out = nv;
		if (!nv || !d) {
			free(d);
			return fail(l, e, f, "out of memory");
		}
		(*out)[(*n)++] = d;
	}
	return 0;
}

static int on_acl_list(struct ld *l, const char *k, const yaml_node_t *v,
                       const char *f)
{
	if (!strcmp(k, "allow"))
		return acl_masks(l, v, f, &l->list->allow, &l->list->n_allow);
	if (!strcmp(k, "deny"))
		return acl_masks(l, v, f, &l->list->deny, &l->list->n_deny);
	return fail(l, v, f, "unknown key (allow, deny)");
}

/* [masks] (all allowed) or {allow: [masks], deny: [masks]} */
static int acl_list(struct ld *l, const yaml_node_t *v, const char *f,
                    struct bus_acl_list *out)
{
	if (v && v->type == YAML_SEQUENCE_NODE)
		return acl_masks(l, v, f, &out->allow, &out->n_allow);
	if (!v || v->type != YAML_MAPPING_NODE)
		return fail(l, v, f, "expected a list of masks or {allow, deny}");
	l->list = out;
	return walk_map(l, v, f, on_acl_list);
}

static bool parse_cidr(const char *s, struct bus_acl_who *w)
{
	char a[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	if (n >= sizeof(a))
		return false;
	memcpy(a, s, n);
	a[n] = 0;
	unsigned max;
	if (inet_pton(AF_INET, a, w->addr) == 1) {
		w->family = 4;
		max = 32;
	} else if (inet_pton(AF_INET6, a, w->addr) == 1) {
		w->family = 6;
		max = 128;
	} else {
		return false;
	}
	uint64_t p = max;
	if (slash && !bus_config_parse_u64(slash + 1, 0, max, &p))
		return false;
	w->prefix = (uint8_t)p;
	return true;
}

static int on_acl_who(struct ld *l, const char *k, const yaml_node_t *v,
                      const char *f)
{
	struct bus_acl_who *w = l->who;
	const char *s = scalar(v);
	uint64_t x;
	int rc = 0;
	if (!strcmp(k, "uid") || !strcmp(k, "gid")) {
		if (!(rc = get_u64(l, v, f, 0, UINT32_MAX - 1, &x))) {
			if (k[0] == 'u')
				w->uid_set = true, w->uid = (uint32_t)x;
			else
				w->gid_set = true, w->gid = (uint32_t)x;
		}
		return rc;
	}
	if (!strcmp(k, "user")) {
		struct passwd *pw = s ? getpwnam(s) : NULL;
		if (!pw)
			return fail(l, v, f, "no such user");
		w->uid_set = true, w->uid = pw->pw_uid;
		return 0;
	}
	if (!strcmp(k, "group")) {
		struct group *gr = s ? getgrnam(s) : NULL;
		if (!gr)
			return fail(l, v, f, "no such group");
		w->gid_set = true, w->gid = gr->gr_gid;
		return 0;
	}
	if (!strcmp(k, "cn"))
		return get_str(l, v, f, w->cn, sizeof(w->cn));
	if (!strcmp(k, "from"))
		return s && parse_cidr(s, w)
		           ? 0
		           : fail(l, v, f, "expected an address or CIDR "
		                           "(10.0.0.0/8, ::1)");
	return fail(l, v, f, "unknown key (uid, gid, user, group, cn, from)");
}

static int acl_who_one(struct ld *l, const yaml_node_t *v, const char *f,
                       struct bus_acl_who *w)
{
	if (!v || v->type != YAML_MAPPING_NODE)
		return fail(l, v, f, "expected {uid, gid, user, group, cn, from}");
	l->who = w;
	return walk_map(l, v, f, on_acl_who);
}

static int acl_who(struct ld *l, const yaml_node_t *v, const char *f,
                   struct bus_acl_rule *r)
{
	const yaml_node_t *one[1] = {v};
	size_t n = 1;
	const yaml_node_t **items = one;
	yaml_node_item_t *start = NULL;
	if (v && v->type == YAML_SEQUENCE_NODE) {
		start = v->data.sequence.items.start;
		n = (size_t)(v->data.sequence.items.top - start);
		items = NULL;
	}
	if (n > 64)
		return fail(l, v, f, "more than 64 alternatives");
	if (r->who)
		return fail(l, v, f, "given twice in one rule");
	r->who = calloc(n ? n : 1, sizeof(*r->who));
	if (!r->who)
		return fail(l, v, f, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const yaml_node_t *e =
		    items ? items[i] : yaml_document_get_node(l->doc, start[i]);
		int rc = acl_who_one(l, e, f, &r->who[r->n_who++]);
		if (rc)
			return rc;
	}
	return 0;
}

static int on_acl_rule(struct ld *l, const char *k, const yaml_node_t *v,
                       const char *f)
{
	struct bus_acl_rule *r = l->rule;
	if (!strcmp(k, "who"))
		return acl_who(l, v, f, r);
	if (!strcmp(k, "reserved"))
		return get_u32(l, v, f, 0, 1000000, &r->reserved);
	for (int i = 0; i < BUS_ACL_KINDS; i++)
		if (!strcmp(k, bus_acl_kind_names[i])) {
			l->rule_names |= i == BUS_ACL_NAMES;
			return acl_list(l, v, f, &r->l[i]);
		}
	return fail(l, v, f, "unknown key (who, names, publish, subscribe, "
	                     "send, broadcast, reserved)");
}

static int acl_rule(struct ld *l, const yaml_node_t *v, const char *f,
                    struct bus_acl_rule *r)
{
	if (!v || v->type != YAML_MAPPING_NODE)
		return fail(l, v, f, "a rule is a mapping (who, names, publish, "
		                     "subscribe, send, broadcast)");
	snprintf(r->label, sizeof(r->label), "%s:%zu", l->path,
	         v->start_mark.line + 1);
	l->rule = r;
	l->rule_names = false;
	int rc = walk_map(l, v, f, on_acl_rule);
	if (rc == 0 && !l->rule_names)
		return fail(l, v, f, "a rule needs names (the client names it "
		                     "applies to)");
	return rc;
}

static int on_acl(struct ld *l, const yaml_node_t *v, const char *f)
{
	struct bus_file_config *c = l->cfg;
	bus_acl_free(&c->acl);
	const char *s = scalar(v);
	if (s && !strcmp(s, "open")) {
		c->acl_mode = BUS_ACL_OPEN;
		return 0;
	}
	if (s && !strcmp(s, "default")) {
		c->acl_mode = BUS_ACL_DEFAULT;
		return 0;
	}
	if (!v || v->type != YAML_SEQUENCE_NODE)
		return fail(l, v, f, "expected open, default, or a list of rules");
	size_t n = (size_t)(v->data.sequence.items.top -
	                    v->data.sequence.items.start);
	if (n > ACL_RULES_MAX)
		return fail(l, v, f, "more than 256 rules");
	c->acl.rules = calloc(n ? n : 1, sizeof(*c->acl.rules));
	if (!c->acl.rules)
		return fail(l, v, f, "out of memory");
	c->acl_mode = BUS_ACL_RULES;
	for (size_t i = 0; i < n; i++) {
		char full[64];
		snprintf(full, sizeof(full), "%s[%zu]", f, i);
		const yaml_node_t *e =
		    yaml_document_get_node(l->doc, v->data.sequence.items.start[i]);
		int rc = acl_rule(l, e, full, &c->acl.rules[c->acl.n_rules++]);
		if (rc)
			return rc;
	}
	return 0;
}

/* audit_log ("" none), audit_max_bytes, audit_keep: the broker's and
 * the agent's trails (bus/rotlog.h). path holds 256 bytes. */
static int on_audit_keys(struct ld *l, const char *k, const yaml_node_t *v,
                         const char *f, char *path, uint64_t *max_bytes,
                         uint32_t *keep, bool *handled)
{
	*handled = true;
	if (!strcmp(k, "audit_log")) {
		if (scalar(v) && !*scalar(v))
			return path[0] = 0, 0;
		return get_str(l, v, f, path, 256);
	}
	if (!strcmp(k, "audit_max_bytes"))
		return get_u64(l, v, f, 0, UINT64_MAX / 2, max_bytes);
	if (!strcmp(k, "audit_keep"))
		return get_u32(l, v, f, 0, 1000, keep);
	*handled = false;
	return 0;
}

/* A uid, or a user name (looked up now). */
static int get_uid(struct ld *l, const yaml_node_t *v, const char *f,
                   int64_t *out)
{
	const char *s = scalar(v);
	uint64_t u;
	if (s && bus_config_parse_u64(s, 0, UINT32_MAX - 1, &u)) {
		*out = (int64_t)u;
		return 0;
	}
	struct passwd *pw = s && *s ? getpwnam(s) : NULL; /* as who.user */
	if (!pw)
		return fail(l, v, f, "expected a uid or an existing user name");
	*out = pw->pw_uid;
	return 0;
}

static int on_broker(struct ld *l, const char *k, const yaml_node_t *v,
                     const char *f)
{
	struct bus_file_config *c = l->cfg;
	if (!strcmp(k, "mode")) {
		const char *s = scalar(v);
		if (!s || (strcmp(s, "embedded") && strcmp(s, "standalone")))
			return fail(l, v, f, "expected embedded or standalone");
		snprintf(c->mode, sizeof(c->mode), "%s", s);
		return 0;
	}
	if (!strcmp(k, "timeout")) {
		if (!bus_config_parse_seconds(scalar(v), &c->core.timeout_ns))
			return fail(l, v, f, "expected a positive number of seconds");
		return 0;
	}
	if (!strcmp(k, "queue_policy"))
		return get_policy(l, v, f, &c->core.slow_policy);
	if (!strcmp(k, "internal_queue_policy"))
		return get_policy(l, v, f, &c->core.internal_slow_policy);
	if (!strcmp(k, "low_water_percent"))
		return get_u32(l, v, f, 0, 99, &c->core.low_water_percent);
	if (!strcmp(k, "block_deadline_ms")) {
		uint64_t ms;
		int rc = get_u64(l, v, f, 1, 3600000, &ms);
		c->core.block_deadline_ns = ms * 1000000u;
		return rc;
	}
	if (!strcmp(k, "stats_interval_ms")) {
		uint64_t ms;
		int rc = get_u64(l, v, f, 0, 86400000, &ms);
		if (!rc && ms && ms < 100)
			return fail(l, v, f, "expected 0 (off) or at least 100");
		c->core.stats_interval_ns = ms * 1000000u;
		return rc;
	}
	if (!strcmp(k, "topic_stats"))
		return walk_map(l, v, f, on_topic_stats);
	if (!strcmp(k, "metrics"))
		return walk_map(l, v, f, on_metrics);
	if (!strcmp(k, "star_is_plus"))
		return get_bool(l, v, f, &c->core.star_is_plus);
	if (!strcmp(k, "force_register"))
		return get_bool(l, v, f, &c->core.force_register);
	if (!strcmp(k, "socket_mode")) {
		const char *s = scalar(v);
		char *end;
		long m = s ? strtol(s, &end, 8) : -1;
		if (!s || !*s || *end || m < 0 || m > 0777)
			return fail(l, v, f, "expected an octal file mode like 0600");
		c->socket_mode = (int)m;
		return 0;
	}
	if (!strcmp(k, "acl"))
		return on_acl(l, v, f);
	if (!strcmp(k, "trusted_group"))
		return get_str(l, v, f, c->trusted_group, sizeof(c->trusted_group));
	if (!strcmp(k, "monitor_group"))
		return get_str(l, v, f, c->monitor_group, sizeof(c->monitor_group));
	bool handled;
	int rc = on_audit_keys(l, k, v, f, c->audit_log, &c->audit_max_bytes,
	                       &c->audit_keep, &handled);
	if (handled)
		return rc;
	if (!strcmp(k, "uid"))
		return get_uid(l, v, f, &c->broker_uid);
	if (!strcmp(k, "limits"))
		return walk_map(l, v, f, on_limits);
	if (!strcmp(k, "embedded"))
		return walk_map(l, v, f, on_embedded);
	if (!strcmp(k, "standalone"))
		return walk_map(l, v, f, on_standalone);
	return unknown(l, v, f);
}

/* ---- agent: ------------------------------------------------------------ */
static int get_ms(struct ld *l, const yaml_node_t *v, const char *f,
                  uint64_t min_ms, uint64_t *ns)
{
	uint64_t ms;
	int rc = get_u64(l, v, f, min_ms, 86400000ull * 365, &ms);
	if (!rc)
		*ns = ms * 1000000ull;
	return rc;
}

static int on_rpc_policy(struct ld *l, const char *k, const yaml_node_t *v,
                         const char *f)
{
	struct bus_rpc_policy *p = l->policy;
	if (!strcmp(k, "timeout_ms"))
		return get_ms(l, v, f, 1, &p->timeout_ns);
	if (!strcmp(k, "retries"))
		return get_u32(l, v, f, 0, 1000, &p->retries);
	if (!strcmp(k, "backoff_ms"))
		return get_ms(l, v, f, 0, &p->backoff_ns);
	if (!strcmp(k, "backoff_max_ms"))
		return get_ms(l, v, f, 0, &p->backoff_max_ns);
	if (!strcmp(k, "total_ms"))
		return get_ms(l, v, f, 0, &p->total_ns);
	return unknown(l, v, f);
}

static int on_rpc(struct ld *l, const char *k, const yaml_node_t *v,
                  const char *f)
{
	struct de_policies *p = &l->agent->policies;
	l->policy = !strcmp(k, "lifecycle") ? &p->lifecycle
	            : !strcmp(k, "health")  ? &p->health
	            : !strcmp(k, "config")  ? &p->config
	                                    : NULL;
	if (!l->policy)
		return fail(l, v, f, "unknown key (lifecycle, health or config)");
	return walk_map(l, v, f, on_rpc_policy);
}

static int on_heartbeat(struct ld *l, const char *k, const yaml_node_t *v,
                        const char *f)
{
	struct de_policies *p = &l->agent->policies;
	if (!strcmp(k, "interval_ms"))
		return get_ms(l, v, f, 1, &p->heartbeat_interval_ns);
	if (!strcmp(k, "timeout_ms"))
		return get_ms(l, v, f, 1, &p->heartbeat.timeout_ns);
	if (!strcmp(k, "retries"))
		return get_u32(l, v, f, 0, 100, &p->heartbeat.retries);
	if (!strcmp(k, "dead_after"))
		return get_u32(l, v, f, 1, 1000, &p->heartbeat_dead_after);
	return unknown(l, v, f);
}

static int on_health_check(struct ld *l, const char *k,
                           const yaml_node_t *v, const char *f)
{
	struct de_policies *p = &l->agent->policies;
	if (!strcmp(k, "interval_ms"))
		return get_ms(l, v, f, 0, &p->health_check_interval_ns);
	return unknown(l, v, f);
}

static int on_restart(struct ld *l, const char *k, const yaml_node_t *v,
                      const char *f)
{
	struct de_policies *p = &l->agent->policies;
	if (!strcmp(k, "delay_ms"))
		return get_ms(l, v, f, 0, &p->restart_delay_ns);
	if (!strcmp(k, "delay_max_ms"))
		return get_ms(l, v, f, 0, &p->restart_delay_max_ns);
	if (!strcmp(k, "stop_timeout_ms"))
		return get_ms(l, v, f, 1, &p->stop_timeout_ns);
	return unknown(l, v, f);
}

static int get_word(struct ld *l, const yaml_node_t *v, const char *f,
                    char *out, size_t cap)
{
	if (!de_name_level_valid(scalar(v), cap))
		return fail(l, v, f, "expected a name of letters, digits, '-' "
		                     "or '_' (no '.')");
	snprintf(out, cap, "%s", scalar(v));
	return 0;
}

static int get_argv(struct ld *l, const yaml_node_t *v, const char *f,
                    struct bus_collector_config *c)
{
	if (scalar(v)) { /* one string: the program alone */
		c->argc = 1;
		return get_str(l, v, f, c->argv[0], sizeof(c->argv[0]));
	}
	if (!v || v->type != YAML_SEQUENCE_NODE)
		return fail(l, v, f, "expected a list: program, arguments...");
	c->argc = 0;
	for (yaml_node_item_t *it = v->data.sequence.items.start;
	     it < v->data.sequence.items.top; it++) {
		if (c->argc == BUS_COLLECTOR_ARGS_MAX)
			return fail(l, v, f, "too many arguments");
		const yaml_node_t *a = yaml_document_get_node(l->doc, *it);
		int rc = get_str(l, a, f, c->argv[c->argc], sizeof(c->argv[0]));
		if (rc)
			return rc;
		c->argc++;
	}
	return c->argc ? 0 : fail(l, v, f, "expected a program");
}

static int on_collector(struct ld *l, const char *k, const yaml_node_t *v,
                        const char *f)
{
	struct bus_collector_config *c = l->collector;
	if (!strcmp(k, "id"))
		return get_word(l, v, f, c->id, sizeof(c->id));
	if (!strcmp(k, "type"))
		return get_word(l, v, f, c->type, sizeof(c->type));
	if (!strcmp(k, "command"))
		return get_argv(l, v, f, c);
	if (!strcmp(k, "scan_interval_ms"))
		return get_u32(l, v, f, 10, 3600000, &c->scan_interval_ms);
	if (!strcmp(k, "max_processes"))
		return get_u32(l, v, f, 0, 4194304, &c->max_processes);
	if (!strcmp(k, "compute_hashes"))
		return get_bool(l, v, f, &c->compute_hashes);
	if (!strcmp(k, "enabled"))
		return get_bool(l, v, f, &c->enabled);
	return unknown(l, v, f);
}

static int on_collectors(struct ld *l, const yaml_node_t *v, const char *f)
{
	struct bus_agent_config *a = l->agent;
	if (!v || v->type != YAML_SEQUENCE_NODE)
		return fail(l, v, f, "expected a list of collectors");
	for (yaml_node_item_t *it = v->data.sequence.items.start;
	     it < v->data.sequence.items.top; it++) {
		const yaml_node_t *n = yaml_document_get_node(l->doc, *it);
		if (a->n_collectors == DE_COLLECTORS_MAX)
			return fail(l, n, f, "too many collectors");
		struct bus_collector_config *c = &a->collectors[a->n_collectors];
		memset(c, 0, sizeof(*c));
		snprintf(c->type, sizeof(c->type), "process");
		c->scan_interval_ms = 1000;
		c->compute_hashes = true;
		c->enabled = true;
		l->collector = c;
		int rc = walk_map(l, n, f, on_collector);
		if (rc)
			return rc;
		if (!c->id[0] || !c->argc)
			return fail(l, n, f, "a collector needs an id and a command");
		for (size_t i = 0; i < a->n_collectors; i++)
			if (!strcmp(a->collectors[i].id, c->id))
				return fail(l, n, f, "duplicate collector id");
		a->n_collectors++;
	}
	return 0;
}

/* A list of at most max non-empty UTF-8 strings into out[max][each]. */
static int get_strlist(struct ld *l, const yaml_node_t *v, const char *f,
                       char *out, size_t each, uint32_t max, uint32_t *n,
                       const char *what)
{
	char msg[96];
	if (!v || v->type != YAML_SEQUENCE_NODE) {
		snprintf(msg, sizeof(msg), "expected a list of %ss", what);
		return fail(l, v, f, msg);
	}
	*n = 0;
	for (yaml_node_item_t *it = v->data.sequence.items.start;
	     it < v->data.sequence.items.top; it++) {
		const yaml_node_t *e = yaml_document_get_node(l->doc, *it);
		if (*n == max) {
			snprintf(msg, sizeof(msg), "too many %ss (%u)", what,
			         (unsigned)max);
			return fail(l, e, f, msg);
		}
		const char *m = scalar(e);
		if (!m || !*m || !bus__utf8_valid((const uint8_t *)m, strlen(m))) {
			snprintf(msg, sizeof(msg),
			         "a %s is a non-empty UTF-8 string", what);
			return fail(l, e, f, msg);
		}
		int rc = get_str(l, e, f, out + (size_t)*n * each, each);
		if (rc)
			return rc;
		(*n)++;
	}
	return 0;
}

static int get_admins(struct ld *l, const yaml_node_t *v, const char *f,
                      struct bus_agent_config *a)
{
	return get_strlist(l, v, f, a->admins[0], sizeof(a->admins[0]),
	                   BUS_AGENT_ADMINS_MAX, &a->n_admins, "name mask");
}

static int on_agent(struct ld *l, const char *k, const yaml_node_t *v,
                    const char *f)
{
	struct bus_agent_config *a = l->agent;
	if (!strcmp(k, "name"))
		return get_str(l, v, f, a->name, sizeof(a->name));
	bool handled;
	int rc = on_audit_keys(l, k, v, f, a->audit_log, &a->audit_max_bytes,
	                       &a->audit_keep, &handled);
	if (handled)
		return rc;
	if (!strcmp(k, "admins"))
		return get_admins(l, v, f, a);
	if (!strcmp(k, "heartbeat"))
		return walk_map(l, v, f, on_heartbeat);
	if (!strcmp(k, "health_check"))
		return walk_map(l, v, f, on_health_check);
	if (!strcmp(k, "restart"))
		return walk_map(l, v, f, on_restart);
	if (!strcmp(k, "rpc"))
		return walk_map(l, v, f, on_rpc);
	if (!strcmp(k, "collectors"))
		return on_collectors(l, v, f);
	if (!strcmp(k, "events")) {
		const char *e = scalar(v);
		if (!e || (strcmp(e, "all") && strcmp(e, "advertised")))
			return fail(l, v, f, "expected all or advertised");
		a->events_advertised = !strcmp(e, "advertised");
		return 0;
	}
	if (!strcmp(k, "bridge"))
		return get_bool(l, v, f, &a->bridge);
	if (!strcmp(k, "status_interval_ms")) {
		uint64_t ms;
		int rc2 = get_u64(l, v, f, 0, 86400000, &ms);
		if (!rc2 && ms && ms < 100)
			return fail(l, v, f, "expected 0 (off) or at least 100");
		a->status_interval_ns = ms * 1000000u;
		return rc2;
	}
	return unknown(l, v, f);
}

void bus_agent_config_defaults(struct bus_agent_config *a)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", DE_AGENT_NAME);
	a->audit_max_bytes = 64u << 20;
	a->audit_keep = 4;
	a->status_interval_ns = 10000000000ull;
	snprintf(a->admins[0], sizeof(a->admins[0]), "admin.*");
	a->n_admins = 1;
	de_policies_defaults(&a->policies);
}

/* ---- bridge: (busrt-bridge) ---------------------------------------------- */
static int on_bridge_tls(struct ld *l, const char *k, const yaml_node_t *v,
                         const char *f)
{
	struct bus_bridge_config *b = l->bridge;
	if (!strcmp(k, "ca_file"))
		return get_str(l, v, f, b->tls_ca_file, sizeof(b->tls_ca_file));
	if (!strcmp(k, "cert_file"))
		return get_str(l, v, f, b->tls_cert_file,
		               sizeof(b->tls_cert_file));
	if (!strcmp(k, "key_file"))
		return get_str(l, v, f, b->tls_key_file, sizeof(b->tls_key_file));
	return fail(l, v, f, "unknown key (ca_file, cert_file, key_file)");
}

static int on_bridge_nats(struct ld *l, const char *k, const yaml_node_t *v,
                          const char *f)
{
	struct bus_bridge_config *b = l->bridge;
	if (!strcmp(k, "urls"))
		return get_strlist(l, v, f, b->urls[0], sizeof(b->urls[0]),
		                   BUS_BRIDGE_URLS_MAX, &b->n_urls, "NATS URL");
	if (!strcmp(k, "creds_file"))
		return get_str(l, v, f, b->creds_file, sizeof(b->creds_file));
	if (!strcmp(k, "tls"))
		return walk_map(l, v, f, on_bridge_tls);
	return fail(l, v, f, "unknown key (urls, creds_file, tls)");
}

static int on_bridge_stream(struct ld *l, const char *k, const yaml_node_t *v,
                            const char *f)
{
	struct bus_bridge_config *b = l->bridge;
	if (!strcmp(k, "name")) {
		int rc = get_str(l, v, f, b->stream, sizeof(b->stream));
		for (const char *p = b->stream; !rc && *p; p++)
			if (*p <= ' ' || *p == '.' || *p == '*' || *p == '>' ||
			    *p == '/' || *p == '\\')
				return fail(l, v, f, "a stream name has no '.', "
				            "'*', '>', '/', '\\' or space");
		if (!rc && !b->stream[0])
			return fail(l, v, f, "expected a stream name");
		return rc;
	}
	if (!strcmp(k, "create"))
		return get_bool(l, v, f, &b->create_stream);
	if (!strcmp(k, "duplicate_window_ms"))
		return get_u64(l, v, f, 1000, 7 * 86400000ull,
		               &b->duplicate_window_ms);
	return fail(l, v, f, "unknown key (name, create, duplicate_window_ms)");
}

static int on_bridge_window(struct ld *l, const char *k, const yaml_node_t *v,
                            const char *f)
{
	struct bus_bridge_config *b = l->bridge;
	if (!strcmp(k, "frames"))
		return get_u64(l, v, f, 2, 1u << 24, &b->window_frames);
	if (!strcmp(k, "mib"))
		return get_u64(l, v, f, 1, 65536, &b->window_mib);
	return fail(l, v, f, "unknown key (frames, mib)");
}

static int on_bridge(struct ld *l, const char *k, const yaml_node_t *v,
                     const char *f)
{
	struct bus_bridge_config *b = l->bridge;
	if (!strcmp(k, "name"))
		return get_str(l, v, f, b->name, sizeof(b->name));
	if (!strcmp(k, "connect"))
		return get_str(l, v, f, b->connect, sizeof(b->connect));
	if (!strcmp(k, "host"))
		return get_str(l, v, f, b->host, sizeof(b->host));
	if (!strcmp(k, "subject_prefix"))
		return get_str(l, v, f, b->subject_prefix,
		               sizeof(b->subject_prefix));
	if (!strcmp(k, "masks"))
		return get_strlist(l, v, f, b->masks[0], sizeof(b->masks[0]),
		                   BUS_BRIDGE_MASKS_MAX, &b->n_masks, "mask");
	if (!strcmp(k, "nats"))
		return walk_map(l, v, f, on_bridge_nats);
	if (!strcmp(k, "stream"))
		return walk_map(l, v, f, on_bridge_stream);
	if (!strcmp(k, "window"))
		return walk_map(l, v, f, on_bridge_window);
	if (!strcmp(k, "ack_timeout_ms"))
		return get_u64(l, v, f, 100, 3600000, &b->ack_timeout_ms);
	if (!strcmp(k, "drain_timeout_ms"))
		return get_u64(l, v, f, 0, 3600000, &b->drain_timeout_ms);
	return unknown(l, v, f);
}

void bus_bridge_config_defaults(struct bus_bridge_config *b)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->name, sizeof(b->name), "daemoneye-bridge");
	snprintf(b->subject_prefix, sizeof(b->subject_prefix), "daemoneye");
	snprintf(b->masks[0], sizeof(b->masks[0]), "events/#");
	b->n_masks = 1;
	snprintf(b->urls[0], sizeof(b->urls[0]), "nats://127.0.0.1:4222");
	b->n_urls = 1;
	snprintf(b->stream, sizeof(b->stream), "DAEMONEYE");
	b->create_stream = true;
	b->duplicate_window_ms = 120000;
	b->window_frames = 65536;
	b->window_mib = 64;
	b->ack_timeout_ms = 10000;
	b->drain_timeout_ms = 5000;
}

static int on_top(struct ld *l, const char *k, const yaml_node_t *v,
                  const char *f)
{
	(void)f;
	if (!strcmp(k, "broker"))
		return walk_map(l, v, "broker", on_broker);
	if (!strcmp(k, "agent")) {
		struct bus_agent_config *dummy = NULL;
		if (!l->cfg->agent) { /* not the agent: check it, keep nothing */
			dummy = malloc(sizeof(*dummy));
			if (!dummy)
				return fail(l, v, k, "out of memory");
			bus_agent_config_defaults(dummy);
		}
		l->agent = dummy ? dummy : l->cfg->agent;
		int rc = walk_map(l, v, "agent", on_agent);
		free(dummy);
		return rc;
	}
	if (!strcmp(k, "bridge")) {
		struct bus_bridge_config *dummy = NULL;
		if (!l->cfg->bridge) { /* not the bridge: check it only */
			dummy = malloc(sizeof(*dummy));
			if (!dummy)
				return fail(l, v, k, "out of memory");
			bus_bridge_config_defaults(dummy);
		}
		l->bridge = dummy ? dummy : l->cfg->bridge;
		int rc = walk_map(l, v, "bridge", on_bridge);
		free(dummy);
		return rc;
	}
	return unknown(l, v, k);
}

void bus_config_defaults(struct bus_file_config *cfg, bool embedded)
{
	memset(cfg, 0, sizeof(*cfg));
	bus_core_config_defaults(&cfg->core, embedded);
	cfg->embedded = embedded;
	cfg->socket_mode = 0600;
	cfg->audit_max_bytes = 64u << 20;
	cfg->audit_keep = 4;
	cfg->broker_uid = -1;
}

void bus_config_free(struct bus_file_config *cfg)
{
	bus_acl_free(&cfg->acl);
	cfg->core.acl = NULL;
}

/* ---- the default ACL: the design's boundaries ------------------------------ */
struct acl_default {
	const char *label;
	int who; /* 0 trusted, 1 root and the broker's uid (not
	            trusted_group: a broker run as root has root alone),
	            2 trusted + the monitor group */
	uint32_t reserved;
	const char *l[BUS_ACL_KINDS][4];   /* allow */
	const char *deny[BUS_ACL_KINDS][4];
};

static const struct acl_default acl_defaults[] = {
    {"default agent", 0, 1,
     {{"daemoneye-agent"}, {"control/collector/#", "control/agent/#"},
      {"#"}, {"*"}, {"*"}}, {{0}}},
    {"default collector", 0, 8,
     {{"collector.*"},
      {"events/{1}/#", "control/collector/capabilities",
       "control/collector/shutdown"},
      {"control/collector/#", "control/agent/shutdown"},
      {"*"}, {0}}, {{0}}},
    {"default admin", 1, 0,
     {{"admin.*"}, {0}, {0}, {"daemoneye-agent"}, {0}}, {{0}}},
    {"default monitor", 2, 0,
     {{"monitor.*"}, {0},
      {"events/+/anomaly", "control/agent/status", "control/broker/#"},
      {"collector.*"}, {0}},
     {{0}}},
    /* the trusted uid's other tools: anything but forging events or
     * control messages (and never under .broker/: the core's) */
    {"default trusted", 0, 0,
     {{"*"}, {"#"}, {"#"}, {"*"}, {"*"}},
     {{"admin.*"}, {"events/#", "control/#"}}},
};

static int strv_add(char ***v, uint32_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(*nv));
	char *d = strdup(s);
	if (nv)
		*v = nv;
	if (!nv || !d) {
		free(d);
		return BUS_ENOMEM;
	}
	(*v)[(*n)++] = d;
	return 0;
}

int bus_acl_defaults(struct bus_acl *acl, uint32_t me,
                     const uint32_t *trusted_gid, const uint32_t *monitor_gid)
{
	bool has_trusted_gid = trusted_gid, has_monitor_gid = monitor_gid;
	size_t n = sizeof(acl_defaults) / sizeof(acl_defaults[0]);
	struct bus_acl_rule *nr =
	    realloc(acl->rules, (acl->n_rules + n) * sizeof(*acl->rules));
	if (!nr)
		return BUS_ENOMEM;
	acl->rules = nr;
	memset(nr + acl->n_rules, 0, n * sizeof(*nr));
	for (size_t i = 0; i < n; i++) {
		const struct acl_default *d = &acl_defaults[i];
		struct bus_acl_rule *r = &acl->rules[acl->n_rules++];
		snprintf(r->label, sizeof(r->label), "%s", d->label);
		r->reserved = d->reserved;
		r->who = calloc(4, sizeof(*r->who));
		if (!r->who)
			return BUS_ENOMEM;
		r->who[r->n_who++] = (struct bus_acl_who){.uid_set = true, .uid = 0};
		if (me != 0)
			r->who[r->n_who++] =
			    (struct bus_acl_who){.uid_set = true, .uid = me};
		if (d->who != 1) {
			if (has_trusted_gid)
				r->who[r->n_who++] = (struct bus_acl_who){
				    .gid_set = true, .gid = *trusted_gid};
		}
		if (d->who == 2 && has_monitor_gid)
			r->who[r->n_who++] =
			    (struct bus_acl_who){.gid_set = true, .gid = *monitor_gid};
		for (int k = 0; k < BUS_ACL_KINDS; k++) {
			for (int j = 0; j < 4 && d->l[k][j]; j++)
				if (strv_add(&r->l[k].allow, &r->l[k].n_allow,
				             d->l[k][j]))
					return BUS_ENOMEM;
			for (int j = 0; j < 4 && d->deny[k][j]; j++)
				if (strv_add(&r->l[k].deny, &r->l[k].n_deny,
				             d->deny[k][j]))
					return BUS_ENOMEM;
		}
	}
	return 0;
}

int bus_config_finish(struct bus_file_config *cfg, char *err, size_t errlen)
{
	cfg->core.acl = NULL;
	if (cfg->acl_mode == BUS_ACL_OPEN)
		return 0;
	if (cfg->acl_mode == BUS_ACL_DEFAULT || cfg->acl_mode == BUS_ACL_UNSET) {
		bus_acl_free(&cfg->acl);
		const char *tg = cfg->trusted_group[0] ? cfg->trusted_group
		                                       : "daemoneye";
		struct group *g = getgrnam(tg);
		if (!g && cfg->trusted_group[0]) {
			snprintf(err, errlen, "broker.trusted_group: no group %s",
			         tg);
			return BUS_ECONFIG;
		}
		uint32_t tgid = g ? g->gr_gid : 0;
		struct group *m = cfg->monitor_group[0]
		                      ? getgrnam(cfg->monitor_group)
		                      : NULL;
		if (cfg->monitor_group[0] && !m) {
			snprintf(err, errlen, "broker.monitor_group: no group %s",
			         cfg->monitor_group);
			return BUS_ECONFIG;
		}
		uint32_t mgid = m ? m->gr_gid : 0;
		if (bus_acl_defaults(&cfg->acl, (uint32_t)geteuid(),
		                     g ? &tgid : NULL, m ? &mgid : NULL)) {
			bus_acl_free(&cfg->acl);
			snprintf(err, errlen, "out of memory");
			return BUS_ECONFIG;
		}
	}
	cfg->core.acl = &cfg->acl;
	return 0;
}

static int yaml_error(const yaml_parser_t *p, const char *name, char *err,
                      size_t errlen)
{
	snprintf(err, errlen, "%s:%zu: YAML error: %s", name,
	         p->problem_mark.line + 1, p->problem ? p->problem : "unknown");
	return BUS_ECONFIG;
}

int bus_yaml_depth_check(const char *text, size_t len, const char *name,
                         unsigned depth_max, char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	unsigned depth = 0;
	int rc = 0;
	for (;;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = yaml_error(&parser, name, err, errlen);
			break;
		}
		yaml_event_type_t t = ev.type;
		size_t line = ev.start_mark.line + 1;
		yaml_event_delete(&ev);
		if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) {
			if (++depth > depth_max) {
				snprintf(err, errlen, "%s:%zu: nested deeper than "
				         "%u levels (the format needs fewer)", name,
				         line, depth_max);
				rc = BUS_ECONFIG;
				break;
			}
		} else if (t == YAML_MAPPING_END_EVENT ||
		           t == YAML_SEQUENCE_END_EVENT) {
			depth--;
		} else if (t == YAML_STREAM_END_EVENT) {
			break;
		}
	}
	yaml_parser_delete(&parser);
	return rc;
}

int bus_config_parse(const char *text, size_t len, const char *name,
                     struct bus_file_config *cfg, char *err, size_t errlen)
{
	if (bus_yaml_depth_check(text, len, name, BUS_CONFIG_DEPTH_MAX, err,
	                         errlen))
		return BUS_ECONFIG;
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	int rc;
	if (!yaml_parser_load(&parser, &doc)) {
		rc = yaml_error(&parser, name, err, errlen);
	} else {
		struct ld l = {.doc = &doc, .path = name, .err = err, .errlen = errlen,
		             .cfg = cfg};
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		rc = root ? walk_map(&l, root, "(top)", on_top) : 0; /* empty ok */
		const char *what;
		if (rc == 0 && bus_core_config_check(&cfg->core, &what) != 0) {
			snprintf(err, errlen, "%s: broker: inconsistent value of %s",
			         name, what);
			rc = BUS_ECONFIG;
		}
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	return rc;
}

int bus_config_load(const char *path, struct bus_file_config *cfg, char *err,
                    size_t errlen)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return BUS_EIO;
	}
	struct stat st;
	if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > CONFIG_BYTES_MAX) {
		snprintf(err, errlen, "%s: not a regular file under 1 MiB", path);
		fclose(fp);
		return BUS_EIO;
	}
	char *text = malloc((size_t)st.st_size + 1);
	size_t n = text ? fread(text, 1, (size_t)st.st_size, fp) : 0;
	int rc;
	if (!text || ferror(fp)) {
		snprintf(err, errlen, "%s: %s", path,
		         text ? strerror(errno) : "out of memory");
		rc = BUS_EIO;
	} else {
		rc = bus_config_parse(text, n, path, cfg, err, errlen);
	}
	free(text);
	fclose(fp);
	return rc;
}
