/* SPDX-License-Identifier: Apache-2.0 */
/*
 * report.c — a run drawn for a person: `busrt-sim report FILE --html OUT`
 * writes one self-contained HTML page (inline SVG, no script, nothing
 * fetched) with the run's timeline, as Jepsen's timelines and
 * FoundationDB's trace tools show a failure: one lane per actor (the
 * broker, the agent, each collector and monitor, the fault sites), every
 * trace event a tick in its lane (events close in time share one, its
 * tooltip counts them and quotes the first), each fault of the plan a band
 * over the lanes for as long as it lasts, and the first offending event —
 * the instant the first failed check names — a red line with its reason.
 * Above it: the scenario, seed, topology, every check's verdict and the
 * command that replays the run.
 *
 * The page is a function of the run alone (no clock, no randomness): the
 * same saved failure draws the same bytes.
 */
#include "simint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LANES_MAX 48
#define COLS 1160    /* time buckets: one per pixel of the plot */
#define LABEL_W 230  /* the lanes' names */
#define ROW_H 20
#define TOP 40       /* the fault bands' labels */

/* What a tick says, by the trace line's kind. */
enum tclass { T_LIFE, T_PUB, T_GOT, T_RPC, T_SEC, T_FAULT, T_OTHER, T_N };
static const char *const tclass_color[T_N] = {
    "#1f5fbf", "#2e8b57", "#17a2b8", "#7b4fb5", "#e67e22", "#7f7f7f",
    "#333333"};
static const char *const tclass_name[T_N] = {
    "lifecycle (state, connect, close, spawn, kill)", "publish",
    "delivery", "RPC and control (heartbeat, health, ctl)",
    "refused (intruder, impostor, rogue)", "fault site fired", "other"};

struct cell {
	uint32_t n;
	uint8_t cls;
	const char *first; /* the first line in it (into the trace text) */
	size_t first_len;
};

struct lanes {
	char name[LANES_MAX][72];
	int n;
	struct cell (*cells)[COLS];
};

static enum tclass classify(const char *kind, size_t n)
{
#define IS(s) (n == sizeof(s) - 1 && !memcmp(kind, s, n))
	if (IS("state") || IS("connect") || IS("close") || IS("spawn") ||
	    IS("kill") || IS("stop") || IS("shutdown") || IS("broker") ||
	    IS("agent"))
		return T_LIFE;
	if (IS("pub"))
		return T_PUB;
	if (IS("got"))
		return T_GOT;
	if (IS("heartbeat") || IS("health") || IS("ctl"))
		return T_RPC;
	if (IS("intruder") || IS("refused") || IS("rogue"))
		return T_SEC;
	if (IS("buggify") || IS("fault"))
		return T_FAULT;
	return T_OTHER;
#undef IS
}

/* The lane of a trace line "TIME KIND ACTOR ...": the actor named after
 * the kind; the broker's and the agent's own lines, the fault sites and
 * the plan's faults have lanes of their own. */
static void lane_name(const char *kind, size_t kn, const char *rest,
                      size_t rn, char *out, size_t cap)
{
#define IS(s) (kn == sizeof(s) - 1 && !memcmp(kind, s, kn))
	if (IS("broker")) {
		snprintf(out, cap, "broker");
	} else if (IS("agent")) {
		snprintf(out, cap, "daemoneye-agent");
	} else if (IS("buggify")) {
		snprintf(out, cap, "fault sites");
	} else if (IS("fault")) {
		snprintf(out, cap, "faults");
	} else {
		size_t k = 0;
		while (k < rn && rest[k] != ' ' && rest[k] != ':')
			k++;
		if (k == 0)
			snprintf(out, cap, "%.*s", (int)kn, kind);
		else
			snprintf(out, cap, "%.*s", (int)(k < cap - 1 ? k : cap - 1),
			         rest);
	}
#undef IS
}

static int lane_of(struct lanes *L, const char *name)
{
	for (int i = 0; i < L->n; i++)
		if (!strcmp(L->name[i], name))
			return i;
	if (L->n == LANES_MAX - 1) { /* the last lane takes the rest */
		snprintf(L->name[L->n], sizeof(L->name[0]), "(other actors)");
		return L->n++;
	}
	if (L->n == LANES_MAX)
		return LANES_MAX - 1;
	snprintf(L->name[L->n], sizeof(L->name[0]), "%s", name);
	return L->n++;
}

void sim_markup_text(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '<')
			fputs("&lt;", f);
		else if (c == '>')
			fputs("&gt;", f);
		else if (c == '&')
			fputs("&amp;", f);
		else if (c == '"')
			fputs("&quot;", f);
		else if (c == '\'')
			fputs("&apos;", f);
		else if (c < 0x20 && c != '\t' && c != '\n')
			fputs("\xef\xbf\xbd", f);
		else
			fputc(c, f);
	}
}

static void escz(FILE *f, const char *s)
{
	sim_markup_text(f, s, strlen(s));
}

/* "(at 3005.158671 ms)" in a check's reason: that instant in ms, or -1. */
static double failure_at(const char *why)
{
	const char *p = strstr(why, "(at ");
	double ms;
	if (!p || sscanf(p, "(at %lf ms)", &ms) != 1)
		return -1;
	return ms;
}

int sim_report_html(FILE *f, const struct sim_scenario *sc,
                    const struct sim_plan *plan, const struct sim_report *r,
                    const char *trace, size_t trace_len, const char *replay)
{
	struct lanes L = {.n = 0};
	L.cells = calloc(LANES_MAX, sizeof(*L.cells));
	if (!L.cells)
		return -1;
	/* the lanes in the order actors first appear, the broker first */
	lane_of(&L, "broker");
	lane_of(&L, "daemoneye-agent");
	double tmax = (double)r->virtual_ns / 1e6;
	if (tmax < (double)sc->duration_ns / 1e6)
		tmax = (double)sc->duration_ns / 1e6;
	if (tmax <= 0)
		tmax = 1;
	uint64_t lines = 0;
	for (const char *p = trace, *end = trace + trace_len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		char *after;
		double t = strtod(p, &after);
		const char *kind = after < le && *after == ' ' ? after + 1 : le;
		const char *ke = kind;
		while (ke < le && *ke != ' ')
			ke++;
		const char *rest = ke < le ? ke + 1 : le;
		if (after != p && kind < le) {
			char name[72];
			lane_name(kind, (size_t)(ke - kind), rest, (size_t)(le - rest),
			          name, sizeof(name));
			int lane = lane_of(&L, name);
			int col = (int)(t / tmax * (COLS - 1));
			col = col < 0 ? 0 : col >= COLS ? COLS - 1 : col;
			struct cell *c = &L.cells[lane][col];
			if (!c->n) {
				c->cls = (uint8_t)classify(kind, (size_t)(ke - kind));
				c->first = p;
				c->first_len = (size_t)(le - p);
			}
			c->n++;
			lines++;
		}
		p = nl ? nl + 1 : end;
	}
	int first_bad = -1;
	for (int c = 0; c < SIM_C_N && first_bad < 0; c++)
		if (!r->ok[c])
			first_bad = c;
	double fail_ms = first_bad >= 0 ? failure_at(r->why[first_bad]) : -1;
	int plot_w = COLS, w = LABEL_W + plot_w + 40;
	int h = TOP + L.n * ROW_H + 40;
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
	           "charset=\"utf-8\"><title>busrt-sim: ");
	escz(f, sc->name);
	fprintf(f, " seed %llu</title>\n<style>\nbody{font:14px sans-serif;"
	           "margin:16px;color:#222}\nh1{font-size:20px;margin:0 0 6px}\n"
	           ".ok{color:#2e7d32}.bad{color:#c00000;font-weight:bold}\n"
	           "table{border-collapse:collapse;margin:8px 0}\ntd{padding:1px "
	           "10px 1px 0;vertical-align:top}\ncode{background:#f3f3f3;"
	           "padding:2px 4px}\n.legend span{display:inline-block;"
	           "margin-right:14px}\n.sw{display:inline-block;width:10px;"
	           "height:10px;margin-right:4px}\n</style></head><body>\n",
	        (unsigned long long)r->seed);
	fprintf(f, "<h1>busrt-sim: ");
	escz(f, sc->name);
	fprintf(f, " (%s), seed %llu: %s</h1>\n",
	        sim_topology_names[sc->topology], (unsigned long long)r->seed,
	        first_bad < 0 ? "<span class=\"ok\">every check holds</span>"
	                      : "<span class=\"bad\">FAILED</span>");
	fprintf(f, "<div>virtual time %.3f s; %llu trace events, hash "
	           "%016llx; %llu published, %llu deliveries; fault sites "
	           "armed: ",
	        (double)r->virtual_ns / 1e9, (unsigned long long)lines,
	        (unsigned long long)r->trace_hash,
	        (unsigned long long)r->published,
	        (unsigned long long)r->delivered);
	if (!sim_sites_print(f, r->buggify, ", "))
		fputs("none", f);
	fprintf(f, "</div>\n<table>\n");
	for (int c = 0; c < SIM_C_N; c++) {
		fprintf(f, "<tr><td>%s</td><td class=\"%s\">%s", sim_check_names[c],
		        r->ok[c] ? "ok" : "bad", r->ok[c] ? "ok" : "FAILED: ");
		if (!r->ok[c])
			escz(f, r->why[c]);
		fprintf(f, "</td></tr>\n");
	}
	fprintf(f, "</table>\n<div>replay: <code>");
	escz(f, replay);
	fprintf(f, "</code></div>\n<div class=\"legend\" style=\"margin:10px "
	           "0\">");
	for (int k = 0; k < T_N; k++)
		fprintf(f, "<span><i class=\"sw\" style=\"background:%s\"></i>%s"
		           "</span>", tclass_color[k], tclass_name[k]);
	fprintf(f, "<span><i class=\"sw\" style=\"background:#f0c040\"></i>a "
	           "fault of the plan, while it lasts</span><span><i class=\"sw\" "
	           "style=\"background:#d00000\"></i>the first offending "
	           "event</span></div>\n");
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	           "height=\"%d\" viewBox=\"0 0 %d %d\" font-size=\"12\" "
	           "font-family=\"sans-serif\">\n", w, h, w, h);
	/* lanes, striped */
	for (int i = 0; i < L.n; i++) {
		int y = TOP + i * ROW_H;
		fprintf(f, "<rect x=\"0\" y=\"%d\" width=\"%d\" height=\"%d\" "
		           "fill=\"%s\"/>\n<text x=\"4\" y=\"%d\">",
		        y, w, ROW_H, i % 2 ? "#ffffff" : "#f4f6f8", y + 14);
		escz(f, L.name[i]);
		fprintf(f, "</text>\n");
	}
	/* the plan's faults: bands over every lane, labelled above */
	for (size_t i = 0; plan && i < plan->n; i++) {
		const struct sim_fault *x = &plan->v[i];
		double a = (double)x->at_ns / 1e6;
		double d = (double)(x->for_ns ? x->for_ns : 500 * SIM_MS) / 1e6;
		int x0 = LABEL_W + (int)(a / tmax * plot_w);
		int bw = (int)(d / tmax * plot_w);
		bw = bw < 2 ? 2 : bw;
		fprintf(f, "<g><title>%s at %.0f ms for %.0f ms",
		        sim_fault_names[x->kind], a, d);
		if (x->target[0]) {
			fputs(", target ", f);
			escz(f, x->target);
		}
		fprintf(f, "</title><rect x=\"%d\" y=\"%d\" width=\"%d\" "
		           "height=\"%d\" fill=\"#f0c040\" fill-opacity=\"0.35\"/>"
		           "<text x=\"%d\" y=\"%d\" fill=\"#8a6d00\">%s</text></g>\n",
		        x0, TOP - 4, bw, L.n * ROW_H + 4, x0 + 2,
		        TOP - 8 - (int)(i % 2) * 14, sim_fault_names[x->kind]);
	}
	/* the events */
	for (int i = 0; i < L.n; i++)
		for (int col = 0; col < COLS; col++) {
			const struct cell *c = &L.cells[i][col];
			if (!c->n)
				continue;
			fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"2\" height=\"%d\" "
			           "fill=\"%s\"><title>%u event%s; the first: ",
			        LABEL_W + col, TOP + i * ROW_H + 3, ROW_H - 6,
			        tclass_color[c->cls], c->n, c->n == 1 ? "" : "s");
			sim_markup_text(f, c->first, c->first_len);
			fprintf(f, "</title></rect>\n");
		}
	/* the time axis */
	int ay = TOP + L.n * ROW_H + 16;
	for (int k = 0; k <= 10; k++) {
		int x = LABEL_W + k * plot_w / 10;
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
		           "stroke=\"#999\"/><text x=\"%d\" y=\"%d\" "
		           "text-anchor=\"%s\">%.0f ms</text>\n",
		        x, TOP + L.n * ROW_H, x, ay - 10, x, ay + 4,
		        k == 10 ? "end" : "middle", tmax * k / 10);
	}
	/* the first offending event */
	if (fail_ms >= 0) {
		int x = LABEL_W + (int)(fail_ms / tmax * plot_w);
		fprintf(f, "<g><title>");
		fprintf(f, "%s: ", sim_check_names[first_bad]);
		escz(f, r->why[first_bad]);
		fprintf(f, "</title><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
		           "stroke=\"#d00000\" stroke-width=\"3\"/>"
		           "<text x=\"%d\" y=\"12\" fill=\"#d00000\" "
		           "font-weight=\"bold\" text-anchor=\"%s\">first failure: "
		           "%s at %.3f ms</text></g>\n",
		        x, 14, x, TOP + L.n * ROW_H, x,
		        x > w / 2 ? "end" : "start", sim_check_names[first_bad],
		        fail_ms);
	}
	fprintf(f, "</svg>\n<p>Hover a tick for its events, a band for its "
	           "fault, the red line for the check's words.</p>\n</body>"
	           "</html>\n");
	free(L.cells);
	return ferror(f) ? -1 : 0;
}
