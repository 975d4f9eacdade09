/* SPDX-License-Identifier: Apache-2.0 */
/*
 * faults.c — the faults of a plan, applied and healed, and the swarm
 * plans drawn from a seed.
 */
#include "simint.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- faults ------------------------------------------------------------------------------------ */
static int link_named(struct sim *s, const char *name, int kind_pref)
{
	for (int i = 0; i < s->n_links; i++)
		if (!strcmp(s->links[i].name, name))
			return i;
	for (int i = 0; i < s->n_cols && kind_pref == LK_COLLECTOR; i++)
		if (!strcmp(s->cols[i].spec->id, name))
			return s->cols[i].link;
	return -1;
}


void fault(struct sim *s, size_t i, bool begin)
{
	const struct sim_fault *f = &s->plan->v[i];
	uint64_t dur = f->for_ns ? f->for_ns : 500 * SIM_MS;
	int t;
	bool embedded = s->sc->topology == SIM_EMBEDDED;
	bool process = f->kind == SIM_F_BROKER_CRASH ||
	               f->kind == SIM_F_AGENT_CRASH;
	if (!begin && embedded && process) {
		/* the agent's process is the broker's: both come back at the
		 * end of the last of overlapping crashes of either */
		sim_trace(s, "fault end %s", sim_fault_names[f->kind]);
		if (!s->broker_up && s->now >= s->broker_down_until &&
		    s->now >= s->agent_down_until) {
			broker_start(s);
			push(s, s->now + SIM_MS, EV_CONNECT, s->intruder, 0);
			push(s, s->now + SIM_MS, EV_CONNECT, s->impostor, 0);
			sim_trace(s, "agent up");
			agent_boot(s);
		}
		return;
	}
	if (!begin) {
		sim_trace(s, "fault end %s", sim_fault_names[f->kind]);
		if (f->kind == SIM_F_BROKER_CRASH && !s->broker_up &&
		    s->now >= s->broker_down_until)
		{
			broker_start(s); /* the last of overlapping crashes */
			push(s, s->now + SIM_MS, EV_CONNECT, s->intruder, 0);
			push(s, s->now + SIM_MS, EV_CONNECT, s->impostor, 0);
		}
		if (f->kind == SIM_F_AGENT_CRASH && s->agent_down &&
		    s->now >= s->agent_down_until) {
			sim_trace(s, "agent up");
			agent_boot(s);
		}
		for (int k = 0; f->kind == SIM_F_CONN_LIMIT && k < s->n_links; k++)
			if (s->links[k].kind == LK_HOG && s->links[k].actor == (int)i &&
			    s->links[k].conn)
				teardown(s, &s->links[k], END_CLIENT_CLOSED, "hog left");
		if (f->kind == SIM_F_SLOW_CONSUMER &&
		    (t = link_named(s, f->target, LK_MONITOR)) >= 0) {
			s->links[t].stalled = false;
			arm(s, &s->links[t], 1);
		}
		return;
	}
	s->r->faults[f->kind]++;
	sim_trace(s, "fault %s %s", sim_fault_names[f->kind], f->target);
	/* losses are allowed from the fault until reconnects settle: the
	 * client's backoff tops out at 5 s */
	uint64_t settle = 6 * SIM_S + dur;
	window(s, s->now, s->now + settle);
	if (s->now + dur > s->last_fault_end)
		s->last_fault_end = s->now + dur;
	if (embedded && process) { /* one process: broker and agent */
		broker_crash(s);
		agent_crash(s);
		uint64_t *until = f->kind == SIM_F_BROKER_CRASH
		                          ? &s->broker_down_until
		                          : &s->agent_down_until;
		if (s->now + dur > *until)
			*until = s->now + dur;
		push(s, s->now + dur, EV_FAULT_END, -1, i);
		return;
	}
	switch (f->kind) {
	case SIM_F_BROKER_CRASH:
		broker_crash(s);
		if (s->now + dur > s->broker_down_until)
			s->broker_down_until = s->now + dur;
		push(s, s->now + dur, EV_FAULT_END, -1, i);
		break;
	case SIM_F_AGENT_CRASH:
		agent_crash(s);
		if (s->now + dur > s->agent_down_until)
			s->agent_down_until = s->now + dur;
		push(s, s->now + dur, EV_FAULT_END, -1, i);
		break;
	case SIM_F_COLLECTOR_CRASH:
		t = link_named(s, f->target, LK_COLLECTOR);
		if (t >= 0 && s->links[t].kind == LK_COLLECTOR)
			col_kill(s, s->links[t].actor, "crashed");
		break;
	case SIM_F_RESET:
		t = link_named(s, f->target, LK_MONITOR);
		if (t >= 0 && s->links[t].conn)
			teardown(s, &s->links[t], END_RESET, "reset");
		break;
	case SIM_F_DELAY:
		s->delay_until = s->now + dur;
		s->delay_ns = (f->ms ? f->ms : 20) * SIM_MS;
		break;
	case SIM_F_SHORT_IO:
		s->short_until = s->now + dur;
		break;
	case SIM_F_SLOW_CONSUMER:
		t = link_named(s, f->target, LK_MONITOR);
		if (t >= 0)
			s->links[t].stalled = true;
		push(s, s->now + dur, EV_FAULT_END, -1, i);
		break;
	case SIM_F_CONN_LIMIT: {
		/* hogs fill every free place of connections_max; the target,
		 * if any, is reset and must come back into a full broker */
		for (int k = 0; k < (int)s->core_cfg.limits.connections_max; k++) {
			char name[40];
			snprintf(name, sizeof(name), "hog.%zu.%d", i, k);
			int h = new_link(s, LK_HOG, (int)i, name);
			push(s, s->now, EV_CONNECT, h, 0);
		}
		t = link_named(s, f->target, LK_COLLECTOR);
		if (t >= 0 && s->links[t].conn)
			teardown(s, &s->links[t], END_RESET, "reset");
		push(s, s->now + dur, EV_FAULT_END, -1, i);
		break;
	}
	case SIM_F_OPERATOR:
		t = link_named(s, f->target, LK_COLLECTOR);
		if (t >= 0 && s->links[t].kind == LK_COLLECTOR)
			operator_call(s, OPERATOR_RESTART(s->links[t].actor));
		break;
	case SIM_F_MALFORMED: {
		char name[32];
		snprintf(name, sizeof(name), "rogue.%zu", i);
		int k = new_link(s, LK_ROGUE, -1, name);
		push(s, s->now, EV_CONNECT, k, 0);
		break;
	}
	case SIM_F_KINDS:
		break;
	}
}

void sim_plan_draw(const struct sim_scenario *sc, uint64_t seed,
                   struct sim_plan *p)
{
	struct sim_rng r = {seed ^ 0x5eedf00dull, NULL};
	sim_plan_draw_from(sc, &r, p);
}

void sim_plan_draw_from(const struct sim_scenario *sc, struct sim_rng *rng,
                        struct sim_plan *p)
{
	struct sim_rng r = *rng;
	memset(p, 0, sizeof(*p));
	bool on[SIM_F_KINDS];
	bool any = false;
	for (int k = 0; k < SIM_F_KINDS; k++)
		any |= on[k] = sim_below(&r, 2);
	if (!any) {
		*rng = r;
		return; /* some seeds run fault-free: the exact-equality case */
	}
	size_t n = 1 + sim_below(&r, 6);
	p->v = calloc(n, sizeof(*p->v));
	if (!p->v) {
		*rng = r;
		return;
	}
	uint64_t span = sc->duration_ns > SIM_S ? sc->duration_ns - SIM_S : 1;
	int kinds = 0;
	for (int k = 0; k < SIM_F_KINDS; k++)
		kinds += on[k];
	for (size_t i = 0; i < n; i++) {
		/* the j-th enabled kind: no rejection loop, which a tape of
		 * zeros (the sim fuzz target's) would never leave */
		int j = (int)sim_below(&r, (uint64_t)kinds), k = 0;
		for (;; k++)
			if (on[k] && j-- == 0)
				break;
		struct sim_fault *f = &p->v[p->n++];
		f->kind = (enum sim_fault_kind)k;
		f->at_ns = SIM_S / 2 + sim_below(&r, span) / SIM_MS * SIM_MS;
		f->for_ns = (50 + sim_below(&r, 1500)) * SIM_MS;
		f->ms = 1 + sim_below(&r, 40);
		if (k == SIM_F_COLLECTOR_CRASH || k == SIM_F_OPERATOR)
			snprintf(f->target, sizeof(f->target), "%s",
			         sc->collectors[sim_below(&r, sc->n_collectors)].id);
		else if ((k == SIM_F_RESET || k == SIM_F_SLOW_CONSUMER) &&
		         sc->n_monitors)
			snprintf(f->target, sizeof(f->target), "%s",
			         sc->monitors[sim_below(&r, sc->n_monitors)].name);
		else if (k == SIM_F_CONN_LIMIT) { /* who must come back in */
			size_t w = sim_below(&r, sc->n_monitors + sc->n_collectors);
			snprintf(f->target, sizeof(f->target), "%s",
			         w < sc->n_monitors
			                 ? sc->monitors[w].name
			                 : sc->collectors[w - sc->n_monitors].id);
		}
	}
	/* in time order, for people reading the plan */
	for (size_t i = 1; i < p->n; i++)
		for (size_t j = i; j > 0 && p->v[j].at_ns < p->v[j - 1].at_ns; j--) {
			struct sim_fault t = p->v[j];
			p->v[j] = p->v[j - 1];
			p->v[j - 1] = t;
		}
	*rng = r;
}
