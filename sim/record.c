/*
 * record.c — busrt-sim record: real process lifecycles of this machine,
 * read with procmond's own /proc reader every poll, written as a scenario
 * (scenarios/README.md): the first table whole, then per poll what was
 * added, deleted or changed. With --command the recording runs a workload
 * and ends with it; --subtree keeps only the workload's processes (and
 * those that ever descended from it), so a recording carries no unrelated
 * details of the machine.
 */
#define _DEFAULT_SOURCE
#include "sim.h"
#include "bus/procfs.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A YAML double-quoted scalar. */
void sim_yq(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* The command line as the scenario stores it: arguments by spaces. */
static void yq_cmd(FILE *f, const struct de_proc *p)
{
	char buf[DE_CMDLINE_BYTES_MAX];
	size_t n = p->cmdline_len;
	while (n && p->cmdline[n - 1] == 0)
		n--;
	if (n > sizeof(buf))
		n = sizeof(buf);
	for (size_t i = 0; i < n; i++)
		buf[i] = p->cmdline[i] ? p->cmdline[i] : ' ';
	sim_yq(f, buf, n);
}

static int cmp_key(const struct de_proc *a, const struct de_proc *b)
{
	if (a->pid != b->pid)
		return a->pid < b->pid ? -1 : 1;
	return a->start_ticks < b->start_ticks ? -1 : a->start_ticks > b->start_ticks;
}

/* Keeps the processes of the subtree rooted at root (and every process
 * that was in it at an earlier poll, while it lives). */
struct keyset {
	struct {
		uint32_t pid;
		uint64_t start;
	} *v;
	size_t n, cap;
};

static bool in_set(const struct keyset *k, uint32_t pid, uint64_t start)
{
	for (size_t i = 0; i < k->n; i++)
		if (k->v[i].pid == pid && k->v[i].start == start)
			return true;
	return false;
}

static void add_set(struct keyset *k, uint32_t pid, uint64_t start)
{
	if (in_set(k, pid, start))
		return;
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 64;
		k->v = realloc(k->v, k->cap * sizeof(*k->v));
		if (!k->v)
			abort();
	}
	k->v[k->n].pid = pid;
	k->v[k->n++].start = start;
}

static void subtree(struct de_snapshot *s, uint32_t root, struct keyset *keep)
{
	/* grow the set to a fixed point: a process whose parent is in it */
	for (bool grew = true; grew;) {
		grew = false;
		for (size_t i = 0; i < s->n; i++) {
			struct de_proc *p = &s->v[i];
			if (in_set(keep, p->pid, p->start_ticks))
				continue;
			bool parent_in = p->pid == root;
			for (size_t j = 0; !parent_in && j < s->n; j++)
				parent_in = s->v[j].pid == p->ppid &&
				            in_set(keep, s->v[j].pid, s->v[j].start_ticks);
			if (parent_in) {
				add_set(keep, p->pid, p->start_ticks);
				grew = true;
			}
		}
	}
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (in_set(keep, s->v[i].pid, s->v[i].start_ticks))
			s->v[k++] = s->v[i];
		else {
			free(s->v[i].name);
			free(s->v[i].exe);
			free(s->v[i].cmdline);
		}
	}
	s->n = k;
}

static void add_line(FILE *f, const struct de_proc *p)
{
	fprintf(f, "          - [%u, %llu, %u, %u, ", p->pid,
	        (unsigned long long)p->start_ticks, p->ppid, p->uid);
	sim_yq(f, p->name, strlen(p->name));
	fputs(", ", f);
	sim_yq(f, p->exe, strlen(p->exe));
	fputs(", ", f);
	yq_cmd(f, p);
	fputs("]\n", f);
}

static bool same_cmd(const struct de_proc *a, const struct de_proc *b)
{
	return a->cmdline_len == b->cmdline_len &&
	       !memcmp(a->cmdline, b->cmdline, a->cmdline_len);
}

bool sim_write_delta(FILE *f, uint64_t at_ms, const struct de_snapshot *prev,
                     const struct de_snapshot *cur, bool first)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	bool any = false, del_open = false, add_open = false, set_open = false;
	size_t i = 0, j = 0;
	/* del first: a reused pid's old process goes before its new one */
	for (i = 0, j = 0; !first && i < prev->n;) {
		int c = j == cur->n ? -1 : cmp_key(&prev->v[i], &cur->v[j]);
		if (c < 0) {
			fprintf(m, "%s[%u, %llu]", del_open ? ", " : "        del: [",
			        prev->v[i].pid,
			        (unsigned long long)prev->v[i].start_ticks);
			del_open = any = true;
			i++;
		} else if (c > 0) {
			j++;
		} else {
			i++;
			j++;
		}
	}
	if (del_open)
		fputs("]\n", m);
	for (i = 0, j = 0; j < cur->n;) {
		int c = first || i == prev->n ? 1 : cmp_key(&prev->v[i], &cur->v[j]);
		if (c < 0) {
			i++;
		} else if (c > 0) {
			if (!add_open)
				fputs("        add:\n", m);
			add_open = any = true;
			add_line(m, &cur->v[j++]);
		} else {
			i++;
			j++;
		}
	}
	/* what changed in a process, and the hash of a new one (an add line
	 * has no hash field) */
	static const struct de_proc blank = {.name = "", .exe = "",
	                                     .cmdline = ""};
	for (i = 0, j = 0; j < cur->n;) {
		int c = first || i == prev->n ? 1 : cmp_key(&prev->v[i], &cur->v[j]);
		if (c < 0) {
			i++;
			continue;
		}
		const struct de_proc *a = c > 0 ? &blank : &prev->v[i++];
		const struct de_proc *b = &cur->v[j++];
		if (c > 0 && !b->hash[0])
			continue;
		struct {
			const char *field;
			bool changed;
		} ch[] = {{"name", c == 0 && strcmp(a->name, b->name) != 0},
		          {"exe", c == 0 && strcmp(a->exe, b->exe) != 0},
		          {"cmdline", c == 0 && !same_cmd(a, b)},
		          {"ppid", c == 0 && a->ppid != b->ppid},
		          {"uid", c == 0 && a->uid != b->uid},
		          {"hash", strcmp(a->hash, b->hash) != 0}};
		for (size_t k = 0; k < sizeof(ch) / sizeof(ch[0]); k++) {
			if (!ch[k].changed)
				continue;
			if (!set_open)
				fputs("        set:\n", m);
			set_open = any = true;
			fprintf(m, "          - [%u, %llu, %s, ", b->pid,
			        (unsigned long long)b->start_ticks, ch[k].field);
			if (k == 0)
				sim_yq(m, b->name, strlen(b->name));
			else if (k == 1)
				sim_yq(m, b->exe, strlen(b->exe));
			else if (k == 2)
				yq_cmd(m, b);
			else if (k == 5)
				sim_yq(m, b->hash, strlen(b->hash));
			else
				fprintf(m, "%u", k == 3 ? b->ppid : b->uid);
			fputs("]\n", m);
		}
	}
	fclose(m);
	if (any || first) {
		fprintf(f, "      - at_ms: %llu\n", (unsigned long long)at_ms);
		fwrite(buf, 1, len, f);
	}
	free(buf);
	return any;
}

int sim_record(const char *name, uint64_t poll_ms, double seconds,
               const char *command, bool only_subtree, FILE *out)
{
	struct de_procfs fs;
	char err[256];
	if (de_procfs_init(&fs, NULL, false, err, sizeof(err))) {
		fprintf(stderr, "busrt-sim: record: %s\n", err);
		return 2;
	}
	pid_t child = 0, root = 0;
	uint64_t t0 = mono_ns();
	if (command) {
		child = fork();
		if (child == 0) {
			execl("/bin/sh", "sh", "-c", command, (char *)NULL);
			_exit(127);
		}
		root = child;
	}
	/* the body goes to memory: the header needs the duration */
	char *body = NULL;
	size_t blen = 0;
	FILE *b = open_memstream(&body, &blen);
	struct de_snapshot prev, cur;
	de_snapshot_init(&prev);
	struct keyset keep = {0};
	uint64_t polls = 0, changes = 0, last_ms = 0;
	bool done = false, ending = false;
	for (uint64_t k = 0; !done; k++) {
		uint64_t due = t0 + k * poll_ms * 1000000ull, now = mono_ns();
		if (due > now) {
			struct timespec ts = {(time_t)((due - now) / 1000000000ull),
			                      (long)((due - now) % 1000000000ull)};
			nanosleep(&ts, NULL);
		}
		uint64_t at_ms = (mono_ns() - t0) / 1000000ull;
		if (k && at_ms <= last_ms)
			at_ms = last_ms + 1;
		de_snapshot_init(&cur);
		if (de_procfs_read(&fs, &cur, 0))
			break;
		if (root && only_subtree)
			subtree(&cur, (uint32_t)root, &keep);
		de_snapshot_sort(&cur);
		if (sim_write_delta(b, at_ms, &prev, &cur, k == 0) || k == 0) {
			changes++;
			last_ms = at_ms;
		}
		polls++;
		de_snapshot_free(&prev);
		prev = cur;
		done = ending; /* one poll after the workload ended: its ends */
		if (child && waitpid(child, NULL, WNOHANG) == child) {
			child = 0;
			ending = true;
		}
		if ((double)(mono_ns() - t0) / 1e9 >= seconds)
			done = true;
	}
	if (child) {
		kill(child, SIGTERM);
		waitpid(child, NULL, 0);
	}
	fclose(b);
	de_snapshot_free(&prev);
	free(keep.v);
	uint64_t dur = last_ms + 2000;
	fprintf(out,
	        "# recorded by busrt-sim record on this machine: %llu polls "
	        "every %llu ms, %llu with changes\n"
	        "version: 1\nname: %s\ndescription: ",
	        (unsigned long long)polls, (unsigned long long)poll_ms,
	        (unsigned long long)changes, name);
	const char *desc = command ? command : "this machine's processes";
	sim_yq(out, desc, strlen(desc));
	fprintf(out,
	        "\nduration_ms: %llu\nliveness_ms: 10000\n"
	        "monitors:\n"
	        "  - name: monitor.all\n    masks: [\"events/#\"]\n"
	        "  - name: monitor.lifecycle\n"
	        "    masks: [\"events/process/lifecycle\", "
	        "\"events/process/enumeration\"]\n"
	        "collectors:\n"
	        "  - id: rec\n    poll_ms: %llu\n    ticks_per_s: %u\n"
	        "    table:\n",
	        (unsigned long long)dur, (unsigned long long)poll_ms,
	        fs.ticks_per_s);
	fwrite(body, 1, blen, out);
	free(body);
	de_procfs_free(&fs);
	return 0;
}
