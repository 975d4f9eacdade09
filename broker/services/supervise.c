/* SPDX-License-Identifier: Apache-2.0 */
/*
 * supervise.c — the agent's decisions about its collectors (daemoneye.h),
 * without I/O: the agent's libuv host and the simulator carry them out.
 *
 *   STOPPED --start--> STARTING --heartbeat ok--> RUNNING
 *   STARTING/RUNNING --exit--> FAILED --restart delay--> STARTING
 *   STARTING/RUNNING --dead_after failed heartbeats--> STOPPING (SIGKILL)
 *                    --exit--> FAILED (restart scheduled)
 *   any running state --stop--> STOPPING (SIGTERM; SIGKILL after
 *                    stop_timeout) --exit--> STOPPED
 *   any running state --shutdown (asked on the bus)--> STOPPING (SIGTERM
 *                    after stop_timeout / 2, SIGKILL at stop_timeout)
 *
 * Restart delays double per death in a row (restart_delay_ns ..
 * restart_delay_max_ns); an answered heartbeat resets the streak.
 */
#include "bus/daemoneye.h"

#include <stdio.h>
#include <string.h>

const char *de_sup_state_name(enum de_sup_state s)
{
	switch (s) {
	case DE_SUP_STOPPED:
		return "stopped";
	case DE_SUP_STARTING:
		return "starting";
	case DE_SUP_RUNNING:
		return "running";
	case DE_SUP_STOPPING:
		return "stopping";
	case DE_SUP_FAILED:
		return "failed";
	}
	return "?";
}

void de_sup_init(struct de_sup *s, const struct de_policies *p,
                 const struct de_sup_ops *ops, void *host)
{
	memset(s, 0, sizeof(*s));
	s->policies = *p;
	s->ops = *ops;
	s->host = host;
}

bool de_name_level_valid(const char *w, size_t cap)
{
	size_t n = w ? strlen(w) : 0;
	if (n == 0 || n >= cap)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = w[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false; /* no '.', '/', wildcards: a name level */
	}
	return true;
}

int de_sup_add(struct de_sup *s, const char *id, const char *type)
{
	if (!de_name_level_valid(id, sizeof(s->c[0].id)) ||
	    !de_name_level_valid(type, sizeof(s->c[0].type)) ||
	    de_sup_find(s, id) >= 0)
		return BUS_EINVAL;
	if (s->n == DE_COLLECTORS_MAX)
		return BUS_ELIMIT;
	struct de_sup_collector *c = &s->c[s->n];
	memset(c, 0, sizeof(*c));
	c->health = -1;
	snprintf(c->id, sizeof(c->id), "%s", id);
	snprintf(c->type, sizeof(c->type), "%s", type);
	snprintf(c->bus_name, sizeof(c->bus_name), "collector.%s.%s", type, id);
	return (int)s->n++;
}

int de_sup_find(const struct de_sup *s, const char *id)
{
	for (size_t i = 0; id && i < s->n; i++)
		if (!strcmp(s->c[i].id, id))
			return (int)i;
	return -1;
}

int de_sup_find_pid(const struct de_sup *s, uint32_t pid)
{
	for (size_t i = 0; pid && i < s->n; i++)
		if (s->c[i].pid == pid)
			return (int)i;
	return -1;
}

static void note(struct de_sup *s, size_t idx, const char *what,
                 const char *detail)
{
	if (s->ops.event)
		s->ops.event(s->host, idx, what, detail);
}

static uint64_t restart_delay(const struct de_sup *s, uint32_t deaths)
{
	uint64_t d = s->policies.restart_delay_ns;
	for (uint32_t k = 1; k < deaths && d < s->policies.restart_delay_max_ns;
	     k++)
		d *= 2;
	return d < s->policies.restart_delay_max_ns
	               ? d
	               : s->policies.restart_delay_max_ns;
}

static void died(struct de_sup *s, size_t idx, uint64_t now,
                 const char *why)
{
	struct de_sup_collector *c = &s->c[idx];
	c->deaths_in_row++;
	c->restarts++;
	c->restart_at_ns = now + restart_delay(s, c->deaths_in_row);
	snprintf(c->last_error, sizeof(c->last_error), "%s", why);
}

static void spawn(struct de_sup *s, size_t idx, uint64_t now)
{
	struct de_sup_collector *c = &s->c[idx];
	uint32_t pid = 0;
	char why[sizeof(c->last_error)] = "";
	int rc = s->ops.spawn(s->host, idx, &pid, why, sizeof(why));
	c->restart_after_exit = false;
	c->hb_inflight = false;
	c->hc_inflight = false;
	c->health = -1;
	c->hb_failures = 0;
	if (rc) {
		c->state = DE_SUP_FAILED;
		died(s, idx, now, why[0] ? why : bus_strerror(rc));
		note(s, idx, "spawn failed", c->last_error);
		return;
	}
	c->state = DE_SUP_STARTING;
	c->pid = pid;
	c->started_ns = now;
	c->next_hb_ns = now + s->policies.heartbeat_interval_ns;
	char d[32];
	snprintf(d, sizeof(d), "pid %u", pid);
	note(s, idx, "spawned", d);
}

static void signal_stop(struct de_sup *s, size_t idx, bool hard, uint64_t now)
{
	struct de_sup_collector *c = &s->c[idx];
	c->state = DE_SUP_STOPPING;
	c->hb_inflight = false;
	c->hc_inflight = false;
	c->kill_at_ns = now + s->policies.stop_timeout_ns;
	c->term_at_ns = 0;
	s->ops.kill(s->host, idx, c->pid, hard);
}

static bool running(const struct de_sup_collector *c)
{
	return c->state == DE_SUP_STARTING || c->state == DE_SUP_RUNNING;
}

int de_sup_start(struct de_sup *s, size_t idx, uint64_t now)
{
	struct de_sup_collector *c = &s->c[idx];
	c->want_running = true;
	if (c->state == DE_SUP_STOPPING)
		c->restart_after_exit = true, c->restart_at_ns = now;
	else if (c->state == DE_SUP_STOPPED || c->state == DE_SUP_FAILED)
		spawn(s, idx, now);
	return 0; /* already running: starting is idempotent */
}

int de_sup_stop(struct de_sup *s, size_t idx, bool force, uint64_t now)
{
	struct de_sup_collector *c = &s->c[idx];
	c->want_running = false;
	c->restart_after_exit = false;
	if (running(c))
		signal_stop(s, idx, force, now);
	else if (c->state == DE_SUP_STOPPING && force)
		s->ops.kill(s->host, idx, c->pid, true);
	else if (c->state == DE_SUP_FAILED)
		c->state = DE_SUP_STOPPED;
	return 0;
}

int de_sup_shutdown(struct de_sup *s, size_t idx, uint64_t now)
{
	struct de_sup_collector *c = &s->c[idx];
	c->want_running = false;
	c->restart_after_exit = false;
	if (running(c)) {
		c->state = DE_SUP_STOPPING;
		c->hb_inflight = false;
		c->hc_inflight = false;
		c->term_at_ns = now + s->policies.stop_timeout_ns / 2;
		c->kill_at_ns = now + s->policies.stop_timeout_ns;
		if (BUS_PLANTED(s->sim, BUS_PLANT_SHUTDOWN_WAITS) &&
		    BUS_PLANT_HIT(s->sim)) {
			c->term_at_ns = 0; /* planted: trusts the bus alone */
			c->kill_at_ns = UINT64_MAX;
		}
	} else if (c->state == DE_SUP_FAILED) {
		c->state = DE_SUP_STOPPED;
	}
	return 0;
}

int de_sup_restart(struct de_sup *s, size_t idx, uint64_t now)
{
	struct de_sup_collector *c = &s->c[idx];
	c->want_running = true;
	c->restarts++;
	if (running(c)) {
		signal_stop(s, idx, false, now);
		c->restart_after_exit = true;
		c->restart_at_ns = now;
	} else if (c->state == DE_SUP_STOPPING) {
		c->restart_after_exit = true;
		c->restart_at_ns = now;
	} else {
		spawn(s, idx, now);
	}
	return 0;
}

void de_sup_on_exit(struct de_sup *s, size_t idx, const char *how,
                    uint64_t now)
{
	struct de_sup_collector *c = &s->c[idx];
	bool was_running = running(c);
	c->pid = 0;
	c->hb_inflight = false;
	c->hc_inflight = false;
	note(s, idx, "exited", how);
	if (was_running && c->want_running &&
	    BUS_PLANTED(s->sim, BUS_PLANT_NO_RESTART) && BUS_PLANT_HIT(s->sim)) {
		c->state = DE_SUP_STOPPED; /* planted: never restarted */
	} else if (was_running && c->want_running) {
		c->state = DE_SUP_FAILED; /* died on its own */
		died(s, idx, now, how);
	} else if (c->state == DE_SUP_STOPPING && c->restart_after_exit &&
	           c->want_running) {
		c->state = DE_SUP_FAILED; /* restarts at restart_at_ns */
	} else {
		c->state = DE_SUP_STOPPED;
	}
	if (c->state == DE_SUP_FAILED && c->restart_at_ns <= now)
		spawn(s, idx, now);
}

void de_sup_on_heartbeat(struct de_sup *s, size_t idx, uint64_t seq, bool ok,
                         uint64_t now)
{
	struct de_sup_collector *c = &s->c[idx];
	if (!c->hb_inflight || seq != c->hb_seq || !running(c))
		return; /* an answer for an earlier process or request */
	c->hb_inflight = false;
	if (ok) {
		c->hb_failures = 0;
		c->deaths_in_row = 0;
		if (c->state == DE_SUP_STARTING) {
			c->state = DE_SUP_RUNNING;
			c->next_hc_ns = now; /* the first health check at once */
			note(s, idx, "running", "heartbeat answered");
		}
		return;
	}
	c->hb_failures++;
	char d[64];
	snprintf(d, sizeof(d), "%u of %u in a row", c->hb_failures,
	         s->policies.heartbeat_dead_after);
	note(s, idx, "heartbeat failed", d);
	if (c->hb_failures < s->policies.heartbeat_dead_after)
		return;
	died(s, idx, now, "declared dead: heartbeats unanswered");
	note(s, idx, "declared dead", d);
	signal_stop(s, idx, true, now);
	c->restart_after_exit = true;
}

void de_sup_on_health_check(struct de_sup *s, size_t idx, uint64_t seq,
                            int status, uint64_t now)
{
	(void)now;
	struct de_sup_collector *c = &s->c[idx];
	if (!c->hc_inflight || seq != c->hc_seq || c->state != DE_SUP_RUNNING)
		return; /* an answer for an earlier process or request */
	c->hc_inflight = false;
	static const char *const names[] = {"healthy", "degraded", "unhealthy",
	                                    "unknown"};
	int was = c->health;
	c->health = status;
	if (status != was) /* a change is worth a line, the same answer not */
		note(s, idx, "health",
		     status < 0 ? "health check unanswered"
		     : status < 4 ? names[status]
		                  : "an unknown status");
}

/* Whether a running collector's health checks are scheduled (at
 * next_hc_ns: UINT64_MAX after the first when the interval is 0). */
static bool health_due(const struct de_sup *s, const struct de_sup_collector *c)
{
	return s->ops.health_check && c->state == DE_SUP_RUNNING &&
	       !c->hc_inflight;
}

void de_sup_tick(struct de_sup *s, uint64_t now)
{
	for (size_t i = 0; i < s->n; i++) {
		struct de_sup_collector *c = &s->c[i];
		if (health_due(s, c) && now >= c->next_hc_ns) {
			c->hc_inflight = true;
			uint64_t every = s->policies.health_check_interval_ns;
			c->next_hc_ns = every ? now + every : UINT64_MAX;
			s->ops.health_check(s->host, i, ++c->hc_seq);
		}
		if (running(c) && !c->hb_inflight && now >= c->next_hb_ns) {
			c->hb_inflight = true;
			c->next_hb_ns = now + s->policies.heartbeat_interval_ns;
			s->ops.heartbeat(s->host, i, ++c->hb_seq);
		} else if (c->state == DE_SUP_FAILED && c->want_running &&
		           now >= c->restart_at_ns) {
			spawn(s, i, now);
		} else if (c->state == DE_SUP_STOPPING && c->term_at_ns &&
		           now >= c->term_at_ns && now < c->kill_at_ns) {
			c->term_at_ns = 0; /* not gone on the bus's word */
			s->ops.kill(s->host, i, c->pid, false);
		} else if (c->state == DE_SUP_STOPPING && now >= c->kill_at_ns) {
			c->term_at_ns = 0;
			c->kill_at_ns = now + s->policies.stop_timeout_ns;
			s->ops.kill(s->host, i, c->pid, true);
		}
	}
}

uint64_t de_sup_next_deadline(const struct de_sup *s)
{
	uint64_t t = UINT64_MAX;
	for (size_t i = 0; i < s->n; i++) {
		const struct de_sup_collector *c = &s->c[i];
		uint64_t d = UINT64_MAX;
		if (health_due(s, c) && c->next_hc_ns < t)
			t = c->next_hc_ns;
		if (running(c) && !c->hb_inflight)
			d = c->next_hb_ns;
		else if (c->state == DE_SUP_FAILED && c->want_running)
			d = c->restart_at_ns;
		else if (c->state == DE_SUP_STOPPING)
			d = c->term_at_ns && c->term_at_ns < c->kill_at_ns
			        ? c->term_at_ns : c->kill_at_ns;
		if (d < t)
			t = d;
	}
	return t;
}
