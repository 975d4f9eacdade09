/* SPDX-License-Identifier: Apache-2.0 */
/* test_acl.c — the ACL: rules from the YAML configuration (bus_config_parse,
 * bus_config_finish), their matching (who, names, each list's allow and
 * deny, placeholders), and the core enforcing them on the in-memory host:
 * 0x79 at the handshake and per frame, counted, audited, nothing applied;
 * a reload that cuts a client its identity no longer allows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../core/internal.h"
#include "bus/config.h"
#include "memhost.h"

static const struct bus_ident ROOT = {.cred = true, .uid = 0, .gid = 0,
                                      .pid = 1};
static const struct bus_ident NOBODY = {.cred = true, .uid = 65534,
                                        .gid = 65534, .pid = 2};

/* Parses text as a configuration and builds its ACL; fails the test on
 * an error. */
static void load(struct bus_file_config *fc, const char *text)
{
	char err[512] = "";
	bus_config_defaults(fc, false);
	int rc = bus_config_parse(text, strlen(text), "t.yaml", fc, err,
	                          sizeof(err));
	if (rc == 0)
		rc = bus_config_finish(fc, err, sizeof(err));
	if (rc)
		fail_msg("%s", err);
}

static const char *load_error(const char *text)
{
	static char err[512];
	struct bus_file_config fc;
	err[0] = 0;
	bus_config_defaults(&fc, false);
	int rc = bus_config_parse(text, strlen(text), "t.yaml", &fc, err,
	                          sizeof(err));
	if (rc == 0)
		rc = bus_config_finish(&fc, err, sizeof(err));
	bus_config_free(&fc);
	return rc ? err : NULL;
}

#define RULES                                                                \
	"broker:\n"                                                          \
	"  acl:\n"                                                           \
	"    - who: [{uid: 0}, {gid: 4242}]\n"                               \
	"      names: [collector.*]\n"                                       \
	"      publish: ['events/{1}/#']\n"                                    \
	"      subscribe: {allow: ['#'], deny: [secret/#]}\n"                \
	"      send: [daemoneye-agent]\n"                                    \
	"    - who: {from: 10.1.0.0/16}\n"                                   \
	"      names: {allow: ['net.*'], deny: [net.bad]}\n"                 \
	"      publish: {allow: ['#'], deny: [events/#]}\n"                  \
	"      broadcast: [net.*]\n"                                         \
	"    - who: {cn: agent.example}\n"                                   \
	"      names: ['{name}']\n"                                          \
	"      send: ['*']\n"                                                \
	"    - names: [monitor.?]\n"                                         \
	"      subscribe: [events/+/anomaly]\n"

static void test_rules_match(void **state)
{
	(void)state;
	struct bus_file_config fc;
	load(&fc, RULES);
	const struct bus_acl *acl = fc.core.acl;
	assert_non_null(acl);
	assert_int_equal(acl->n_rules, 4);
	assert_string_equal(acl->rules[0].label, "t.yaml:3");
	const char *cp = "collector.process.p1";
	/* who: uid 0, or gid 4242 as primary or supplementary group */
	assert_ptr_equal(bus_acl_find(acl, &ROOT, cp, strlen(cp)),
	                 &acl->rules[0]);
	assert_null(bus_acl_find(acl, &NOBODY, cp, strlen(cp)));
	struct bus_ident g = NOBODY;
	g.n_groups = 2;
	g.groups[0] = 7;
	g.groups[1] = 4242;
	assert_ptr_equal(bus_acl_find(acl, &g, cp, strlen(cp)), &acl->rules[0]);
	/* {1}: the collector's own type only */
	const struct bus_acl_rule *r = &acl->rules[0];
	assert_true(bus_acl_allows(r, BUS_ACL_PUBLISH, cp, strlen(cp),
	                           "events/process/lifecycle", 24));
	assert_false(bus_acl_allows(r, BUS_ACL_PUBLISH, cp, strlen(cp),
	                            "events/network/x", 16));
	assert_false(bus_acl_allows(r, BUS_ACL_PUBLISH, cp, strlen(cp),
	                            "events/process", 14));
	/* subscribe: covered by an allow, and overlapping no deny */
	assert_true(bus_acl_allows(r, BUS_ACL_SUBSCRIBE, cp, strlen(cp),
	                           "events/#", 8));
	assert_false(bus_acl_allows(r, BUS_ACL_SUBSCRIBE, cp, strlen(cp),
	                            "#", 1)); /* would receive secret/x */
	assert_false(bus_acl_allows(r, BUS_ACL_SUBSCRIBE, cp, strlen(cp),
	                            "+/x", 3));
	assert_true(bus_acl_allows(r, BUS_ACL_SUBSCRIBE, cp, strlen(cp),
	                           "public/+", 8));
	assert_true(bus_acl_allows(r, BUS_ACL_SEND, cp, strlen(cp),
	                           "daemoneye-agent", 15));
	assert_false(bus_acl_allows(r, BUS_ACL_SEND, cp, strlen(cp),
	                            "monitor.a", 9));
	assert_false(bus_acl_allows(r, BUS_ACL_BROADCAST, cp, strlen(cp), "*",
	                            1)); /* an empty list allows nothing */
	/* from: an address in the network, and a deny among the names */
	struct bus_ident net = {.family = 4, .addr = {10, 1, 200, 3}};
	assert_ptr_equal(bus_acl_find(acl, &net, "net.a", 5), &acl->rules[1]);
	assert_null(bus_acl_find(acl, &net, "net.bad", 7));
	net.addr[1] = 2;
	assert_null(bus_acl_find(acl, &net, "net.a", 5));
	r = &acl->rules[1];
	assert_true(bus_acl_allows(r, BUS_ACL_PUBLISH, "net.a", 5, "x/y", 3));
	assert_false(bus_acl_allows(r, BUS_ACL_PUBLISH, "net.a", 5,
	                            "events/x", 8));
	assert_true(bus_acl_allows(r, BUS_ACL_BROADCAST, "net.a", 5,
	                           "net.?", 5));
	assert_false(bus_acl_allows(r, BUS_ACL_BROADCAST, "net.a", 5, "*", 1));
	/* cn: a verified certificate's name; {name} is the client's */
	struct bus_ident cert = {.family = 4, .addr = {192, 0, 2, 1}};
	snprintf(cert.cn, sizeof(cert.cn), "agent.example");
	assert_ptr_equal(bus_acl_find(acl, &cert, "anything.at.all", 15),
	                 &acl->rules[2]);
	/* no who: anyone, for the names it allows */
	assert_ptr_equal(bus_acl_find(acl, &NOBODY, "monitor.x", 9),
	                 &acl->rules[3]);
	assert_null(bus_acl_find(acl, &NOBODY, "monitor.x.y", 11));
	bus_config_free(&fc);
}

/* The defaults encode the design's boundaries. */
static void test_default_rules(void **state)
{
	(void)state;
	struct bus_file_config fc;
	load(&fc, "broker: {acl: default}\n");
	const struct bus_acl *acl = fc.core.acl;
	assert_non_null(acl);
	const char *ag = "daemoneye-agent", *cp = "collector.process.p1";
	const struct bus_acl_rule *a = bus_acl_find(acl, &ROOT, ag, strlen(ag));
	const struct bus_acl_rule *c = bus_acl_find(acl, &ROOT, cp, strlen(cp));
	assert_non_null(a);
	assert_non_null(c);
	assert_string_equal(a->label, "default agent");
	assert_string_equal(c->label, "default collector");
	/* nobody else's uid registers the agent, a collector or a monitor */
	assert_null(bus_acl_find(acl, &NOBODY, ag, strlen(ag)));
	assert_null(bus_acl_find(acl, &NOBODY, cp, strlen(cp)));
	assert_null(bus_acl_find(acl, &NOBODY, "monitor.m", 9));
	assert_null(bus_acl_find(acl, &NOBODY, "x", 1));
	/* TCP without credentials: refused */
	struct bus_ident tcp = {.family = 4, .addr = {127, 0, 0, 1}};
	assert_null(bus_acl_find(acl, &tcp, "x", 1));
	/* only the agent controls; a collector publishes its own events */
	assert_true(bus_acl_allows(a, BUS_ACL_PUBLISH, ag, strlen(ag),
	                           "control/collector/p1", 20));
	assert_false(bus_acl_allows(c, BUS_ACL_PUBLISH, cp, strlen(cp),
	                            "control/collector/p1", 20));
	assert_true(bus_acl_allows(c, BUS_ACL_PUBLISH, cp, strlen(cp),
	                           "events/process/hash", 19));
	assert_false(bus_acl_allows(c, BUS_ACL_PUBLISH, cp, strlen(cp),
	                            "events/network/x", 16));
	/* root's other tools may not forge events or control messages */
	const struct bus_acl_rule *t = bus_acl_find(acl, &ROOT, "tool", 4);
	assert_non_null(t);
	assert_false(bus_acl_allows(t, BUS_ACL_PUBLISH, "tool", 4,
	                            "events/process/lifecycle", 24));
	assert_false(bus_acl_allows(t, BUS_ACL_PUBLISH, "tool", 4,
	                            "control/agent/x", 15));
	assert_true(bus_acl_allows(t, BUS_ACL_PUBLISH, "tool", 4, "tool/x", 6));
	/* monitors: events/+/anomaly and nothing else */
	const struct bus_acl_rule *m = bus_acl_find(acl, &ROOT, "monitor.m", 9);
	assert_non_null(m);
	assert_true(bus_acl_allows(m, BUS_ACL_SUBSCRIBE, "monitor.m", 9,
	                           "events/+/anomaly", 16));
	assert_true(bus_acl_allows(m, BUS_ACL_SUBSCRIBE, "monitor.m", 9,
	                           "events/process/anomaly", 22));
	assert_false(bus_acl_allows(m, BUS_ACL_SUBSCRIBE, "monitor.m", 9,
	                            "events/#", 8));
	assert_false(bus_acl_allows(m, BUS_ACL_PUBLISH, "monitor.m", 9,
	                            "events/process/anomaly", 22));
	/* admin.*: root (and the broker's uid, here root too) */
	assert_non_null(bus_acl_find(acl, &ROOT, "admin.me", 8));
	assert_null(bus_acl_find(acl, &NOBODY, "admin.me", 8));
	bus_config_free(&fc);
	/* a broker run by uid 1000 with trusted_group 50: uid 1000 is an
	 * admin (it could take the agent's name anyway), the group is not */
	struct bus_acl d = {0};
	uint32_t gid = 50;
	assert_int_equal(bus_acl_defaults(&d, 1000, &gid, NULL), 0);
	struct bus_ident me = {.cred = true, .uid = 1000, .gid = 1000};
	struct bus_ident grp = {.cred = true, .uid = 2000, .gid = 50};
	assert_non_null(bus_acl_find(&d, &me, "admin.me", 8));
	assert_null(bus_acl_find(&d, &grp, "admin.me", 8));
	assert_non_null(bus_acl_find(&d, &grp, cp, strlen(cp)));
	assert_non_null(bus_acl_find(&d, &ROOT, "admin.me", 8));
	bus_acl_free(&d);
	load(&fc, "broker: {acl: open}\n");
	assert_null(fc.core.acl);
	bus_config_free(&fc);
	load(&fc, "broker: {mode: standalone}\n"); /* no acl: the defaults */
	assert_non_null(fc.core.acl);
	assert_string_equal(fc.core.acl->rules[0].label, "default agent");
	bus_config_free(&fc);
}

/* A CIDR's partial byte: 10.16.0.0/12 is 10.16.0.0 to 10.31.255.255. */
static void test_cidr_prefixes(void **state)
{
	(void)state;
	struct bus_file_config fc;
	load(&fc, "broker:\n  acl:\n    - {who: {from: 10.16.0.0/12}, names: [x]}\n"
	          "    - {who: {from: '192.168.1.128/25'}, names: [y]}\n");
	static const struct {
		uint8_t a[4];
		const char *name;
		bool ok;
	} cases[] = {
	    {{10, 16, 0, 1}, "x", true},      {{10, 31, 255, 255}, "x", true},
	    {{10, 32, 0, 1}, "x", false},     {{10, 15, 255, 255}, "x", false},
	    {{192, 168, 1, 128}, "y", true},  {{192, 168, 1, 255}, "y", true},
	    {{192, 168, 1, 127}, "y", false}, {{192, 168, 0, 200}, "y", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bus_ident id = {.family = 4};
		memcpy(id.addr, cases[i].a, 4);
		const struct bus_acl_rule *r =
		    bus_acl_find(fc.core.acl, &id, cases[i].name, 1);
		assert_int_equal(r != NULL, cases[i].ok);
	}
	bus_config_free(&fc);
}

static void test_config_errors_name_file_line_and_key(void **state)
{
	(void)state;
	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"broker:\n  acl: closed\n", "t.yaml:2: broker.acl: expected open"},
	    {"broker:\n  acl:\n    - {who: {uid: 0}}\n",
	     "t.yaml:3: broker.acl[0]: a rule needs names"},
	    {"broker:\n  acl:\n    - names: [x]\n      publsh: [y]\n",
	     "t.yaml:4: broker.acl[0].publsh: unknown key"},
	    {"broker:\n  acl:\n    - names: [x]\n      who: {user: no-such-user-x}\n",
	     "t.yaml:4: broker.acl[0].who.user: no such user"},
	    {"broker:\n  acl:\n    - names: [x]\n      who: {from: 10.0.0.0/33}\n",
	     "t.yaml:4: broker.acl[0].who.from: expected an address"},
	    {"broker:\n  acl:\n    - names: {allow: [x], except: [y]}\n",
	     "t.yaml:3: broker.acl[0].names.except: unknown key"},
	    {"broker:\n  acl:\n    - names: [x]\n      who: {uid: 0}\n"
	     "      who: {uid: 1}\n",
	     "t.yaml:5: broker.acl[0].who: given twice"},
	    {"broker:\n  acl:\n    - names: ['']\n",
	     "t.yaml:3: broker.acl[0].names: a mask is a non-empty"},
	    {"broker:\n  monitor_group: no-such-group-x\n",
	     "broker.monitor_group: no group no-such-group-x"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err = load_error(bad[i].text);
		if (!err || !strstr(err, bad[i].want))
			fail_msg("%zu: got '%s', want '%s'", i, err ? err : "(ok)",
			         bad[i].want);
	}
}

/* ---- the core enforcing it ---------------------------------------------- */
static struct bus_file_config core_fc;

static struct memhost *acl_host(const char *text)
{
	load(&core_fc, text);
	struct bus_core_config cfg = core_fc.core;
	struct memhost *mh = calloc(1, sizeof(*mh));
	mh_init(mh, &cfg);
	return mh;
}

static void end(struct memhost *mh)
{
	mh_free(mh);
	free(mh);
	bus_config_free(&core_fc);
}

static int as(struct memhost *mh, const struct bus_ident *id, const char *name,
              int *res)
{
	int i = mh_connect(mh, BUS_KIND_LOCAL_IPC);
	bus_core_set_ident(mh->core, mh->c[i].conn, id);
	*res = mh_handshake(mh, i, name, strlen(name));
	return i;
}

static uint32_t pub(struct memhost *mh, int i, const char *topic)
{
	uint8_t buf[512];
	size_t n = mh_join(buf, topic, "x", NULL);
	return mh_frame(mh, i, BUS_OP_PUBLISH, 1, buf, n);
}

static int drain(struct memhost *mh, int i, uint8_t kind)
{
	struct mh_msg m;
	int n = 0;
	while (mh_next(mh, i, &m))
		n += m.kind == kind;
	return n;
}

static void test_core_denies_and_audits(void **state)
{
	(void)state;
	struct memhost *mh = acl_host("broker: {acl: default}\n");
	struct bus_stats st;
	int res;
	/* registration: 0x79 before any BUSY, audited */
	int agent = as(mh, &ROOT, "daemoneye-agent", &res);
	assert_int_equal(res, BUS_RES_OK);
	as(mh, &NOBODY, "daemoneye-agent", &res);
	assert_int_equal(res, BUS_RES_ACCESS);
	assert_int_equal(mh->audits, 1);
	assert_string_equal(mh->last_audit, "register daemoneye-agent ");
	int col = as(mh, &ROOT, "collector.process.p1", &res);
	assert_int_equal(res, BUS_RES_OK);
	int mon = as(mh, &ROOT, "monitor.m", &res);
	assert_int_equal(res, BUS_RES_OK);
	int tool = as(mh, &ROOT, "tool", &res);
	assert_int_equal(res, BUS_RES_OK);
	/* subscribe: a frame with one forbidden mask changes nothing */
	const char two[] = "events/+/anomaly\0events/#";
	assert_int_equal(mh_ack(mh, mon, mh_frame(mh, mon, BUS_OP_SUBSCRIBE, 1,
	                                          two, sizeof(two) - 1)),
	                 BUS_RES_ACCESS);
	assert_string_equal(mh->last_audit, "subscribe monitor.m events/#");
	assert_int_equal(mh_ack(mh, mon, mh_frame(mh, mon, BUS_OP_SUBSCRIBE, 1,
	                                          "events/+/anomaly", 16)),
	                 BUS_RES_OK);
	assert_int_equal(mh_ack(mh, agent, mh_frame(mh, agent, BUS_OP_SUBSCRIBE,
	                                            1, "#", 1)),
	                 BUS_RES_OK);
	drain(mh, agent, 0);
	/* publish: a tool may not forge events; nothing reaches anyone */
	assert_int_equal(mh_ack(mh, tool, pub(mh, tool, "events/process/anomaly")),
	                 BUS_RES_ACCESS);
	assert_int_equal(drain(mh, agent, BUS_OP_PUBLISH), 0);
	assert_int_equal(drain(mh, mon, BUS_OP_PUBLISH), 0);
	/* a collector publishes its own type's events, not another's */
	assert_int_equal(mh_ack(mh, col, pub(mh, col, "events/process/anomaly")),
	                 BUS_RES_OK);
	assert_int_equal(drain(mh, mon, BUS_OP_PUBLISH), 1);
	assert_int_equal(drain(mh, agent, BUS_OP_PUBLISH), 1);
	assert_int_equal(mh_ack(mh, col, pub(mh, col, "events/network/anomaly")),
	                 BUS_RES_ACCESS);
	assert_int_equal(drain(mh, mon, BUS_OP_PUBLISH), 0);
	/* one-to-one: refused before the lookup (no probing for names) */
	uint8_t buf[64];
	size_t n = mh_join(buf, "nobody.here", "x", NULL);
	assert_int_equal(mh_ack(mh, mon, mh_frame(mh, mon, BUS_OP_MESSAGE, 1,
	                                          buf, n)),
	                 BUS_RES_ACCESS);
	n = mh_join(buf, "daemoneye-agent", "x", NULL);
	assert_int_equal(mh_ack(mh, mon, mh_frame(mh, mon, BUS_OP_MESSAGE, 1,
	                                          buf, n)),
	                 BUS_RES_ACCESS);
	assert_int_equal(drain(mh, agent, BUS_OP_MESSAGE), 0);
	/* a monitor may not broadcast; .broker calls are everyone's */
	n = mh_join(buf, "*", "x", NULL);
	assert_int_equal(mh_ack(mh, mon, mh_frame(mh, mon, BUS_OP_BROADCAST, 1,
	                                          buf, n)),
	                 BUS_RES_ACCESS);
	n = mh_join(buf, ".broker", "\x01\x01\x00\x00\x00test", NULL);
	assert_int_equal(mh_ack(mh, mon, mh_frame(mh, mon, BUS_OP_MESSAGE, 1,
	                                          buf, n)),
	                 BUS_RES_OK);
	bus_core_stats(mh->core, &st);
	assert_int_equal(st.denied_register, 1);
	assert_int_equal(st.denied_subscribe, 1);
	assert_int_equal(st.denied_publish, 2);
	assert_int_equal(st.denied_send, 2);
	assert_int_equal(st.denied_broadcast, 1);
	assert_int_equal(mh->audits, 7);
	end(mh);
}

/* A reload: the monitor rule gone, a client whose name its identity no
 * longer allows is cut, one whose masks the new rule does not allow too;
 * the others stay, with their new rules. */
static void test_reload_cuts_what_is_no_longer_allowed(void **state)
{
	(void)state;
	struct memhost *mh = acl_host("broker: {acl: default}\n");
	int res;
	int mon = as(mh, &ROOT, "monitor.m", &res);
	int tool = as(mh, &ROOT, "tool", &res);
	int col = as(mh, &ROOT, "collector.process.p1", &res);
	assert_int_equal(mh_ack(mh, tool, mh_frame(mh, tool, BUS_OP_SUBSCRIBE,
	                                           1, "x/#", 3)),
	                 BUS_RES_OK);
	struct bus_file_config next;
	load(&next, "broker:\n  acl:\n"
	            "    - names: [tool]\n      subscribe: [y/#]\n"
	            "    - names: [collector.*]\n      publish: ['#']\n");
	bus_core_set_acl(mh->core, next.core.acl);
	mh_run(mh);
	assert_true(mh->c[mon].closed);
	assert_true(mh->c[tool].closed); /* x/# is no longer its to hold */
	assert_false(mh->c[col].closed);
	struct bus_stats st;
	bus_core_stats(mh->core, &st);
	assert_int_equal(st.disconnects_acl, 2);
	assert_int_equal(mh_ack(mh, col, pub(mh, col, "anything/at/all")),
	                 BUS_RES_OK);
	bus_core_set_acl(mh->core, NULL); /* open */
	mh_free(mh);
	free(mh);
	bus_config_free(&next);
	bus_config_free(&core_fc);
}

/* Reserved places: with 12 places, the defaults keep 1 for the agent
 * and 8 for collectors; junk clients fill the 3 shared ones and no more,
 * and the agent and the collectors still come in. */
static void test_reserved_places_are_kept_for_the_design_s_names(void **state)
{
	(void)state;
	struct memhost *mh = acl_host("broker:\n  acl: default\n"
	                              "  standalone: {max_connections: 12}\n");
	int res, junk[4];
	char name[32];
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "junk.%d", i);
		junk[i] = as(mh, &ROOT, name, &res);
		assert_int_equal(res, i < 3 ? BUS_RES_OK : BUS_RES_BUSY);
	}
	as(mh, &ROOT, "daemoneye-agent", &res);
	assert_int_equal(res, BUS_RES_OK);
	for (int i = 0; i < 9; i++) {
		snprintf(name, sizeof(name), "collector.process.c%d", i);
		as(mh, &ROOT, name, &res);
		assert_int_equal(res, i < 8 ? BUS_RES_OK : BUS_RES_BUSY);
	}
	as(mh, &ROOT, "monitor.m", &res);
	assert_int_equal(res, BUS_RES_BUSY);
	/* a shared place freed: the next one to ask takes it */
	mh_drop(mh, junk[0]);
	mh_run(mh);
	as(mh, &ROOT, "collector.process.c8", &res);
	assert_int_equal(res, BUS_RES_OK);
	struct bus_stats st;
	bus_core_stats(mh->core, &st);
	assert_int_equal(st.rejects_connections, 3);
	end(mh);
}

/* One uid (root aside) or one TCP address registers at most
 * connections_per_peer_max clients. */
static void test_one_peer_takes_a_bounded_share(void **state)
{
	(void)state;
	struct memhost *mh = acl_host("broker:\n  acl: [{names: ['*']}]\n"
	                              "  limits: {connections_per_peer_max: 2}\n");
	int res;
	char name[32];
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		as(mh, &NOBODY, name, &res);
		assert_int_equal(res, i < 2 ? BUS_RES_OK : BUS_RES_BUSY);
		snprintf(name, sizeof(name), "r%d", i);
		as(mh, &ROOT, name, &res);
		assert_int_equal(res, BUS_RES_OK); /* root: everything anyway */
	}
	struct bus_ident tcp = {.family = 4, .addr = {10, 0, 0, 7}};
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		as(mh, &tcp, name, &res);
		assert_int_equal(res, i < 2 ? BUS_RES_OK : BUS_RES_BUSY);
	}
	tcp.addr[3] = 8; /* another address */
	as(mh, &tcp, "t-other", &res);
	assert_int_equal(res, BUS_RES_OK);
	end(mh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rules_match),
	    cmocka_unit_test(test_default_rules),
	    cmocka_unit_test(test_config_errors_name_file_line_and_key),
	    cmocka_unit_test(test_core_denies_and_audits),
	    cmocka_unit_test(test_cidr_prefixes),
	    cmocka_unit_test(test_reload_cuts_what_is_no_longer_allowed),
	    cmocka_unit_test(test_reserved_places_are_kept_for_the_design_s_names),
	    cmocka_unit_test(test_one_peer_takes_a_bounded_share),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
