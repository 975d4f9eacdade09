/* SPDX-License-Identifier: Apache-2.0 */
/*
 * run.c — one simulated run: the loop of the virtual clock (events, then
 * the cores' and actors' deadlines, the core's invariants after each
 * step), the end (time stands still while what is in flight arrives),
 * the run's setup (seeds, fault sites, the broker's configuration and ACL,
 * the actors) and its teardown. The parts: trace.c (randomness, the
 * trace), net.c (the network, the broker's life), actors.c (who runs),
 * faults.c (the plan applied), check.c (the verdicts).
 */
#include "simint.h"
#include "bus/config.h" /* the ACL: bus_config_parse, bus_acl_defaults */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- the loop ------------------------------------------------------------------------------------ */
static void handle(struct sim *s, const struct sim_ev *e)
{
	struct link *l = e->link >= 0 ? &s->links[e->link] : NULL;
	if (l && e->epoch != l->epoch)
		return; /* for a connection that is gone */
	switch (e->type) {
	case EV_CONNECT:
		on_connect(s, l);
		break;
	case EV_PUMP_C2B:
		pump(s, l, 0);
		break;
	case EV_PUMP_B2C:
		pump(s, l, 1);
		break;
	case EV_CDONE: /* (a client that gave up has forgotten its write) */
		if (l->cl && !l->c_closing) {
			l->c_inflight = 0;
			bus_client_on_written(l->cl, 0);
		}
		break;
	case EV_BDONE:
		if (l->conn && s->core) {
			l->b_inflight = 0;
			bus_core_on_written(s->core, l->conn, 0, s->now);
		}
		break;
	case EV_CLOSE_C:
	case EV_CLOSE_B:
		if (e->type == EV_CLOSE_C)
			teardown(s, l, END_CLIENT_CLOSED, "client closed");
		else
			teardown(s, l, END_BROKER_CLOSED, "broker closed");
		break;
	case EV_POLL: {
		int i = (int)(e->arg >> 32);
		if ((int)(uint32_t)e->arg == s->cols[i].pubinc)
			col_poll(s, i); /* of this incarnation, not a dead one */
		break;
	}
	case EV_SPAWN:
		if (!s->agent_down && (uint32_t)(e->arg >> 32) == s->agent_gen)
			col_spawn(s, (int)(uint32_t)e->arg);
		break;
	case EV_EXIT: {
		size_t idx = (size_t)(e->arg >> 32);
		if (!s->agent_down && s->sup.c[idx].pid == (uint32_t)e->arg) {
			/* a crash, or its agent's SIGTERM/SIGKILL of a collector
			 * that stopped answering, or an operator's restart: the
			 * agent must spawn it again (none here asks a stop) */
			if (!s->shutting) {
				s->cols[idx].dead_since = s->now;
				s->cols[idx].exits_in_row++;
			}
			de_sup_on_exit(&s->sup, idx, "killed", s->now);
		}
		bool all = s->shutting && !s->shut_done_at;
		for (int i = 0; all && i < s->n_cols; i++)
			all = s->sup.c[i].state == DE_SUP_STOPPED ||
			      s->sup.c[i].state == DE_SUP_FAILED;
		if (all)
			s->shut_done_at = s->now;
		break;
	}
	case EV_FAULT:
	case EV_FAULT_END:
		fault(s, (size_t)e->arg, e->type == EV_FAULT);
		break;
	case EV_OPERATOR:
		operator_call(s, e->arg);
		break;
	case EV_SHUT_CRASH:
	case EV_SHUT_EXIT: {
		int i = (int)(e->arg >> 32);
		if ((int)(uint32_t)e->arg == s->cols[i].pubinc)
			col_kill(s, i, e->type == EV_SHUT_CRASH
			                       ? "crashed while shutting down"
			                       : "exited after its answer");
		break;
	}
	}
}

static uint64_t next_deadline(struct sim *s)
{
	uint64_t t = s->n_ev ? s->ev[0].t : UINT64_MAX;
	if (s->core) {
		uint64_t d = bus_core_next_deadline(s->core);
		t = d < t ? d : t;
	}
	for (int i = 0; i < s->n_links; i++)
		if (s->links[i].cl) {
			uint64_t d = bus_client_next_deadline(s->links[i].cl);
			t = d < t ? d : t;
		}
	if (s->agent_link >= 0 && s->links[s->agent_link].cl) {
		uint64_t d = bus_link_next_deadline(&s->links[s->agent_link].il);
		t = d < t ? d : t;
		d = de_sup_next_deadline(&s->sup);
		t = d < t ? d : t;
		d = de_intake_next_deadline(&s->intake);
		t = d < t ? d : t;
	}
	return t;
}

static void flush_all(struct sim *s)
{
	if (s->core)
		bus_core_flush(s->core, s->now);
	for (int i = 0; i < s->n_links; i++)
		if (s->links[i].cl)
			bus_client_flush(s->links[i].cl);
	ilink_pump(s);
}

/* After a step of the loop: the broker core's invariants and every
 * client core's, every check_every-th step and once at the end (final)
 * whatever the count (the first broken one is the verdict). */
static void step_check(struct sim *s, bool final)
{
	if ((++s->steps % s->check_every && !final) || s->inv_fault[0])
		return;
	s->inv_checks++;
	char why[256];
	int rc = s->core ? bus_core_check_invariants(s->core, why, sizeof(why))
	                 : 0;
	for (int i = 0; !rc && i < s->n_links; i++)
		if (s->links[i].cl)
			rc = bus_client_check_invariants(s->links[i].cl, why,
			                                 sizeof(why));
	if (rc) {
		snprintf(s->inv_fault, sizeof(s->inv_fault), "%s", why);
		s->inv_fault_at = s->now;
	}
}

static int loop(struct sim *s)
{
	uint64_t same = 0, last = UINT64_MAX;
	for (;;) {
		flush_all(s);
		if (s->shutting && s->shut_done_at)
			return 0; /* every collector reaped: the agent exits */
		uint64_t t = next_deadline(s);
		if (t == UINT64_MAX || (t > s->stop && t > s->now))
			return 0;
		if (t > s->now)
			s->now = t;
		same = s->now == last ? same + 1 : 0;
		last = s->now;
		if (same > 10000000)
			return -1; /* stuck: something re-arms at the same instant */
		while (s->n_ev && s->ev[0].t <= s->now) {
			struct sim_ev e = pop(s);
			handle(s, &e);
			flush_all(s);
			step_check(s, false);
		}
		if (s->core && bus_core_next_deadline(s->core) <= s->now) {
			bus_core_on_tick(s->core, s->now);
			step_check(s, false);
		}
		for (int i = 0; i < s->n_links; i++)
			if (s->links[i].cl &&
			    bus_client_next_deadline(s->links[i].cl) <= s->now)
				bus_client_on_tick(s->links[i].cl);
		if (s->agent_link >= 0 && s->links[s->agent_link].cl &&
		    de_sup_next_deadline(&s->sup) <= s->now)
			de_sup_tick(&s->sup, s->now);
		if (s->agent_link >= 0 && s->links[s->agent_link].cl &&
		    de_intake_next_deadline(&s->intake) <= s->now)
			de_intake_tick(&s->intake, s->now);
	}
}

/* End of the run: time stands still while everything in flight arrives
 * and what it causes is written, so the counters can be compared. */
static void quiesce(struct sim *s)
{
	for (int round = 0; round < 100000; round++) {
		bool moved = false;
		flush_all(s);
		while (s->n_ev && s->ev[0].t <= s->now) {
			struct sim_ev e = pop(s);
			handle(s, &e);
			flush_all(s);
			step_check(s, false);
			moved = true;
		}
		for (int i = 0; i < s->n_links; i++) {
			struct link *l = &s->links[i];
			if (l->stalled)
				continue;
			if (l->c2b.head || l->b2c.head ||
			    (l->cl && bus_link_busy(&l->il)))
				moved = true;
			deliver_all(s, l, 0);
			deliver_all(s, l, 1);
		}
		if (!moved)
			return;
	}
}

static void setup(struct sim *s)
{
	const struct sim_scenario *sc = s->sc;
	for (int k = 0; k < SIM_RNG_N; k++) { /* one sub-seed per subsystem */
		uint64_t x = s->o->seed + 0x1000 * (uint64_t)(k + 1);
		s->rng[k].state = bus_splitmix64(&x);
	}
	/* swarm: each seed arms its own sites, drawn apart from the stream
	 * that decides firings, so a saved failure that names its sites
	 * replays the same firings */
	s->r->buggify = s->o->buggify;
	struct sim_rng arm = {s->o->seed ^ 0xb0661f7ull,
	                      s->o->tape ? &s->tape : NULL};
	for (int k = 0; k < BUS_SITE_N && s->o->buggify_drawn; k++)
		if (sim_below(&arm, 2))
			s->r->buggify |= 1u << k;
	bus_core_config_defaults(&s->core_cfg, true);
	s->core_cfg.allocator = (struct bus_allocator){site_alloc, site_realloc,
	                                               site_free, &s->alloc_core};
	s->core_cfg.sim = &s->hooks;
	s->core_cfg.slow_policy = sc->slow_policy;
	s->core_cfg.limits.queue_frames_max = sc->queue_frames_max;
	acl_build(s, sc);
	s->core_cfg.acl = &s->acl;
	s->core_cfg.timeout_ns = 2 * SIM_S;
	s->next_pid = 1000;
	s->agent_link = -1;
	s->n_recv = (int)sc->n_monitors + 1;
	s->recv = calloc((size_t)s->n_recv, sizeof(*s->recv));
	s->n_cols = (int)sc->n_collectors;
	s->cols = calloc((size_t)s->n_cols, sizeof(*s->cols));
	/* room for every actor and two more, so a conn_limit fault is what
	 * fills the broker: the ACL's reserved places (the agent's and the
	 * collectors', which only they take), and the shared rest for the
	 * monitors, the intruder and two more */
	uint32_t reserved = 0;
	for (uint32_t i = 0; i < s->acl.n_rules; i++)
		reserved += s->acl.rules[i].reserved;
	static const struct bus_ident root = {.cred = true};
	const struct bus_acl_rule *cr =
	    bus_acl_find(&s->acl, &root, "collector.x", 11); /* theirs */
	uint32_t col_res = cr ? cr->reserved : 0;
	s->core_cfg.limits.connections_max =
	    reserved + (uint32_t)sc->n_monitors + 3 +
	    ((uint32_t)s->n_cols > col_res ? (uint32_t)s->n_cols - col_res : 0);
	broker_start(s);
	s->cap_links = s->n_cols + s->n_recv + 3; /* + intruder, impostor,
	                                             the operator */
	for (size_t i = 0; s->plan && i < s->plan->n; i++)
		s->cap_links += s->plan->v[i].kind == SIM_F_CONN_LIMIT
		                        ? (int)s->core_cfg.limits.connections_max
		                        : 1;
	s->links = calloc((size_t)s->cap_links, sizeof(*s->links));
	if (!s->recv || !s->cols || !s->links)
		abort();
	/* links first (the array moves while growing), then clients */
	for (int i = 0; i < s->n_cols; i++) {
		char name[DE_BUS_NAME_BYTES_MAX];
		snprintf(name, sizeof(name), "collector.process.%s",
		         sc->collectors[i].id);
		s->cols[i].spec = &sc->collectors[i];
		s->cols[i].dead_since = UINT64_MAX;
		sim_replay_init(&s->cols[i].table, s->cols[i].spec);
		sim_replay_init(&s->cols[i].truth, s->cols[i].spec);
		s->cols[i].link = new_link(s, LK_COLLECTOR, i, name);
	}
	for (int i = 0; i < (int)sc->n_monitors; i++) {
		struct receiver *r = &s->recv[i];
		snprintf(r->name, sizeof(r->name), "%s", sc->monitors[i].name);
		memcpy(r->masks, sc->monitors[i].masks, sizeof(r->masks));
		r->n_masks = sc->monitors[i].n_masks;
		r->link = new_link(s, LK_MONITOR, i, r->name);
		r->up_since = UINT64_MAX;
	}
	struct receiver *ag = &s->recv[s->n_recv - 1];
	snprintf(ag->name, sizeof(ag->name), "%s", DE_AGENT_NAME);
	snprintf(ag->masks[0], sizeof(ag->masks[0]), "%s", SIM_AGENT_MASK);
	ag->n_masks = 1;
	ag->up_since = UINT64_MAX;
	s->agent_link = ag->link = new_link(s, LK_AGENT, 0, DE_AGENT_NAME);
	if (sc->topology == SIM_EMBEDDED) { /* the agent hosts the broker */
		struct link *l = &s->links[s->agent_link];
		l->internal = true;
		bus_link_init(&l->il, NULL, NULL, (void *)(intptr_t)l->idx,
		              BUS_KIND_INTERNAL, sim_clock, s);
		l->il.has_ident = true; /* the broker's own process */
		l->il.ident = (struct bus_ident){.cred = true, .uid = 0, .gid = 0,
		                                 .pid = 1 + (uint32_t)l->idx};
		l->ish = (struct bus_link_shape){NULL, NULL, ilink_dropping, l};
		l->il.shape = &l->ish;
	}
	/* the monitors' clients; then the agent, whose supervision spawns
	 * the collectors */
	for (int i = 0; i < s->n_recv - 1; i++) {
		struct link *l = &s->links[s->recv[i].link];
		l->cl = make_client(s, l);
		const char *m[8];
		for (int k = 0; k < s->recv[i].n_masks; k++)
			m[k] = s->recv[i].masks[k];
		s->quiet = true;
		bus_client_subscribe(l->cl, m, (size_t)s->recv[i].n_masks, NULL,
		                     NULL);
		bus_client_start(l->cl);
		s->quiet = false;
		bus_client_on_tick(l->cl);
	}
	agent_boot(s);
	static const char *const admins[] = {"admin.*", NULL};
	s->agent_access.callers[DE_SVC_LIFECYCLE] = admins;
	s->agent_access.sim = &s->hooks;
	s->admin = new_link(s, LK_ADMIN, -1, OPERATOR_NAME);
	struct link *op = &s->links[s->admin];
	op->cl = make_client(s, op);
	s->quiet = true;
	bus_client_start(op->cl);
	s->quiet = false;
	bus_client_on_tick(op->cl);
	s->intruder = new_link(s, LK_INTRUDER, -1, INTRUDER_NAME);
	s->impostor = new_link(s, LK_IMPOSTOR, -1,
	                       s->n_cols ? s->links[s->cols[0].link].name
	                                 : DE_AGENT_NAME);
	push(s, SIM_MS, EV_CONNECT, s->intruder, 0);
	push(s, SIM_MS, EV_CONNECT, s->impostor, 0);
	for (size_t i = 0; s->plan && i < s->plan->n; i++)
		push(s, s->plan->v[i].at_ns, EV_FAULT, -1, i);
}

/* The broker's ACL: the default rules (the broker and every actor root,
 * the intruder and impostor uid and group 65534, the monitor group),
 * after one rule for the scenario's own monitors, which hold any masks a
 * scenario gives them. */
void acl_build(struct sim *s, const struct sim_scenario *sc)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		abort();
	fputs("broker:\n  acl:\n    - who: {uid: 0}\n      subscribe: ['#']\n"
	      "      send: ['*']\n      names: [", f);
	for (size_t i = 0; i < sc->n_monitors; i++) {
		fputs(i ? ", " : "", f);
		sim_yq(f, sc->monitors[i].name, strlen(sc->monitors[i].name));
	}
	fputs("]\n", f);
	fclose(f);
	struct bus_file_config fc;
	char err[256];
	bus_config_defaults(&fc, true);
	uint32_t nobody = SIM_NOBODY;
	if (sc->n_monitors == 0) {
		memset(&s->acl, 0, sizeof(s->acl));
	} else if (bus_config_parse(text, len, "sim acl", &fc, err,
	                            sizeof(err)) != 0) {
		fprintf(stderr, "busrt-sim: %s\n", err);
		abort(); /* the names were validated: a bug */
	} else {
		s->acl = fc.acl;
	}
	free(text);
	if (bus_acl_defaults(&s->acl, 0, NULL, &nobody))
		abort();
}

static void teardown_all(struct sim *s)
{
	s->finishing = true;
	s->da.closed = true;
	for (int i = 0; i < s->n_links; i++) {
		struct link *l = &s->links[i];
		pipe_clear(&l->c2b);
		pipe_clear(&l->b2c);
		free(l->led[0].ends);
		free(l->led[1].ends);
		bus_link_free(&l->il);
		if (l->cl)
			bus_client_free(l->cl);
		l->cl = NULL;
	}
	for (int i = 0; i < s->n_cols; i++) {
		if (s->cols[i].col_init)
			de_collector_free(&s->cols[i].col);
		sim_replay_free(&s->cols[i].table);
		sim_replay_free(&s->cols[i].truth);
	}
	if (s->core)
		bus_core_free(s->core);
	bus_acl_free(&s->acl);
	for (int i = 0; i < s->n_recv; i++) {
		free(s->recv[i].v);
		free(s->recv[i].downs);
		free(s->recv[i].excused);
		free(s->recv[i].cuts);
	}
	for (int i = 0; i < s->n_pubs; i++) {
		free(s->pubs[i].v);
		free(s->pubs[i].ev);
		free(s->pubs[i].done);
		free(s->pubs[i].missed);
	}
	free(s->pubs);
	de_intake_free(&s->intake);
	de_agent_free(&s->da);
	for (int i = 0; i < s->n_topics; i++)
		free(s->topics[i]);
	free(s->topics);
	free(s->recv);
	free(s->cols);
	free(s->links);
	free(s->ev);
	free(s->windows);
	free(s->by_hash_key);
	free(s->by_hash_val);
	sim_plan_free(&s->tape_plan);
}

void sim_log_free(struct sim_log *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].data);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

int sim_run(const struct sim_scenario *sc, const struct sim_options *o,
            struct sim_report *r)
{
	struct sim *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	memset(r, 0, sizeof(*r));
	r->seed = o->seed;
	s->sc = sc;
	s->o = o;
	s->r = r;
	s->hash = 0xcbf29ce484222325ull;
	s->end = sc->duration_ns;
	s->plan = o->plan;
	s->check_every = o->check_every ? o->check_every : 1;
	if (o->tape) { /* every stream reads the one tape */
		s->tape = (struct sim_tape){o->tape, o->tape_len, 0};
		for (int k = 0; k < SIM_RNG_N; k++)
			s->rng[k].tape = &s->tape;
		if (!o->plan && o->tape_plan) {
			sim_plan_draw_from(sc, &s->rng[SIM_RNG_FAULTS], &s->tape_plan);
			s->plan = &s->tape_plan;
		}
	}
	for (size_t i = 0; s->plan && i < s->plan->n; i++) {
		const struct sim_fault *f = &s->plan->v[i];
		uint64_t e = f->at_ns + (f->for_ns ? f->for_ns : 500 * SIM_MS);
		if (e > s->last_fault_end)
			s->last_fault_end = e;
	}
	s->stop = s->end > s->last_fault_end + sc->liveness_ns
	                  ? s->end
	                  : s->last_fault_end + sc->liveness_ns;
	s->stop += 2 * SIM_S; /* drain: the last events reach everyone */
	s->poll_until = s->stop - SIM_S;
	/* the cores' own sites and reports (the simulator's build; other
	 * builds have only the simulator's sites: allocators, network) */
	s->hooks = (struct bus_sim_hooks){.plant = o->plant, .buggify = site_hook,
	                                  .policy = policy_hook, .arg = s};
	s->alloc_core = (struct sim_alloc_site){s, BUS_SITE_CORE_ALLOC};
	s->alloc_client = (struct sim_alloc_site){s, BUS_SITE_CLIENT_ALLOC};
	setup(s);
	if (r->buggify & LOSSY_SITES) { /* they fire until the workload ends */
		uint64_t last = s->end > s->last_fault_end ? s->end : s->last_fault_end;
		if (last + sc->liveness_ns + 2 * SIM_S > s->stop)
			s->stop = last + sc->liveness_ns + 2 * SIM_S;
	}
	int rc = loop(s);
	r->virtual_ns = s->now;
	if (rc == 0) {
		quiesce(s);
		step_check(s, true);
		sim_check_all(s, r);
		/* then the agent stops its collectors, under faults of its own */
		agent_shutdown(s);
		if (s->shutting) {
			s->stop = s->now + s->sc->policies.stop_timeout_ns + SIM_S;
			rc = loop(s);
		}
		sim_check_shutdown(s, r);
	}
	r->trace_hash = s->hash;
	r->plant_fired = s->hooks.plant_fired;
	teardown_all(s);
	free(s);
	return rc;
}
