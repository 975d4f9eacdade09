/* SPDX-License-Identifier: Apache-2.0 */
/*
 * event.c — a process record as the BusrtEvent procmond publishes
 * (daemoneye.h): the design's fields plus ours (schema version,
 * incarnation, sequence). event_id is "<collector>/<incarnation>/<seq>",
 * unique without a random source; correlation_id names the cycle.
 */
#include "bus/daemoneye.h"
#include "bus/json.h"
#include "../core/internal.h" /* bus__utf8_valid */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARGS_MAX 4096 /* command line arguments carried per record */

/* Splits the NUL-separated command line into at most ARGS_MAX pointers
 * into it (argv NULL: only counts); returns how many. */
static size_t split_args(const struct de_proc *p, char **argv)
{
	size_t n = 0;
	for (size_t off = 0; off < p->cmdline_len && n < ARGS_MAX; n++) {
		const char *a = p->cmdline + off;
		if (argv)
			argv[n] = (char *)a;
		off += strnlen(a, p->cmdline_len - off) + 1;
	}
	return n;
}

/* proto3 strings are UTF-8 and a process's need not be: a value that is
 * not is sent escaped (json.h) in the string and exactly in its _raw
 * twin, so that no process is ever undecodable. Returns what the string
 * field carries (s itself if it is UTF-8; else a buffer added to *owned),
 * NULL for no memory. */
struct owned {
	char **v;
	size_t n;
};

static ProtobufCBinaryData raw_of(const char *s)
{
	return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

static bool is_text(const char *s)
{
	return bus__utf8_valid((const uint8_t *)s, strlen(s));
}

/* raw (if not NULL) gets s's bytes when s is not text. */
static char *text_field(const char *s, ProtobufCBinaryData *raw,
                        struct owned *own)
{
	if (is_text(s))
		return (char *)s;
	char **v = realloc(own->v, (own->n + 1) * sizeof(*v));
	if (!v)
		return NULL;
	own->v = v;
	size_t n = strlen(s), cap = 4 * n + 4; /* never cut: a byte is at most 4 */
	if (!(v[own->n] = malloc(cap)))
		return NULL;
	if (raw)
		*raw = raw_of(s);
	return bus_text_escape(v[own->n++], cap, s, n);
}

static void owned_free(struct owned *own)
{
	for (size_t i = 0; i < own->n; i++)
		free(own->v[i]);
	free(own->v);
}

/* "<collector>/<incarnation>/<seq>" into id (DE_BUS_NAME_BYTES_MAX + 48). */
static void event_id(const struct de_event_source *src, uint64_t seq,
                     char *id)
{
	size_t cl = strnlen(src->collector, DE_BUS_NAME_BYTES_MAX - 1);
	memcpy(id, src->collector, cl);
	char *w = id + cl;
	*w++ = '/';
	w = bus_put_u64(w, src->incarnation, 1);
	*w++ = '/';
	*bus_put_u64(w, seq, 1) = 0;
}

uint8_t *de_event_pack(struct de_event_source *src, const char *topic,
                       enum de_event_type type, const struct de_proc *p,
                       uint64_t cycle, int64_t now_ms, size_t *len)
{
	Daemoneye__ProcessRecord rec = DAEMONEYE__PROCESS_RECORD__INIT;
	struct owned own = {NULL, 0};
	rec.pid = p->pid;
	rec.ppid = p->ppid;
	/* proto3: an empty bytes field is an absent one */
	rec.name = text_field(p->name, &rec.name_raw, &own);
	rec.executable_path = text_field(p->exe, &rec.executable_path_raw, &own);
	rec.start_time = p->start_time_ms;
	rec.cpu_usage = p->cpu_usage;
	rec.memory_usage = p->memory_bytes;
	rec.executable_hash = (char *)p->hash;
	rec.hash_algorithm = p->hash[0] ? "sha256" : "";
	rec.hash_skipped = (char *)(p->hash_skipped ? p->hash_skipped : "");
	rec.user_id = p->uid;
	rec.accessible = p->accessible;
	rec.file_exists = p->file_exists;
	rec.collection_time = now_ms;
	size_t nargs = split_args(p, NULL); /* not ARGS_MAX (32 KiB) each */
	char **argv = malloc((nargs ? nargs : 1) * sizeof(*argv));
	ProtobufCBinaryData *raw = NULL;
	if (!argv || !rec.name || !rec.executable_path)
		goto fail;
	/* the last argument may lack its NUL if the table was cut short: the
	 * snapshot always NUL-terminates the whole buffer, so strnlen stops */
	rec.n_command_line = split_args(p, argv);
	rec.command_line = argv;
	size_t bad = 0;
	for (size_t i = 0; i < rec.n_command_line; i++)
		bad += !is_text(argv[i]);
	if (bad) { /* every argument's bytes, so the list is whole */
		raw = malloc(rec.n_command_line * sizeof(*raw));
		if (!raw)
			goto fail;
		for (size_t i = 0; i < rec.n_command_line; i++) {
			raw[i] = raw_of(argv[i]);
			if (!(argv[i] = text_field(argv[i], NULL, &own)))
				goto fail;
		}
		rec.n_command_line_raw = rec.n_command_line;
		rec.command_line_raw = raw;
	}

	/* "cycle-N" and "<collector>/<incarnation>/<seq>", by hand: printf
	 * was a tenth of an event's cost */
	char cycle_id[32], event_id_[DE_BUS_NAME_BYTES_MAX + 48];
	memcpy(cycle_id, "cycle-", 6);
	*bus_put_u64(cycle_id + 6, cycle, 1) = 0;
	uint64_t seq = src->sequence + 1;
	event_id(src, seq, event_id_);

	Daemoneye__ProcessEvent pe = DAEMONEYE__PROCESS_EVENT__INIT;
	pe.process = &rec;
	pe.collection_cycle_id = cycle_id;
	pe.event_type = (Daemoneye__ProcessEvent__EventType)type;

	Daemoneye__BusrtEvent ev = DAEMONEYE__BUSRT_EVENT__INIT;
	ev.event_id = event_id_;
	ev.correlation_id = cycle_id;
	ev.timestamp_ms = now_ms;
	ev.source_collector = (char *)src->collector;
	ev.topic = (char *)topic;
	ev.payload_case = DAEMONEYE__BUSRT_EVENT__PAYLOAD_PROCESS_EVENT;
	ev.process_event = &pe;
	ev.schema_version = DE_SCHEMA_VERSION;
	ev.incarnation = src->incarnation;
	ev.sequence = seq;
	ev.resync = src->resync;
	uint8_t *out = bus_pb_pack(&ev.base, len);
	free(argv);
	free(raw);
	owned_free(&own);
	if (out)
		src->sequence = seq; /* numbers have no gaps a reader can see */
	return out;
fail:
	free(argv);
	free(raw);
	owned_free(&own);
	return NULL;
}

uint8_t *de_event_pack_gap(const struct de_event_source *src, uint64_t seq,
                           const char *topic, int64_t now_ms, size_t *len)
{
	char id[DE_BUS_NAME_BYTES_MAX + 48];
	event_id(src, seq, id);
	Daemoneye__BusrtEvent ev = DAEMONEYE__BUSRT_EVENT__INIT;
	ev.event_id = id;
	ev.correlation_id = "gap";
	ev.timestamp_ms = now_ms;
	ev.source_collector = (char *)src->collector;
	ev.topic = (char *)topic;
	ev.schema_version = DE_SCHEMA_VERSION;
	ev.incarnation = src->incarnation;
	ev.sequence = seq;
	ev.gap = true;
	return bus_pb_pack(&ev.base, len);
}
