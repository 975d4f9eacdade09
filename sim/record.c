/* SPDX-License-Identifier: Apache-2.0 */
/*
 * record.c — busrt-sim record: real process lifecycles of this machine,
 * read with procmond's own /proc reader every poll, written as a scenario
 * (scenarios/README.md): the first table whole, then per poll what was
 * added, deleted or changed. With --command the recording runs a workload
 * and ends with it; --subtree keeps only the workload's processes (and
 * those that ever descended from it), so a recording carries no unrelated
 * details of the machine.
 *
 * --netlink: the kernel's proc connector says when a process forks, execs
 * or exits; the recorder reads that one process at once and writes a
 * table at that instant, so even a process shorter than any poll is in
 * the recording (a full read every poll still resynchronises). It needs
 * CAP_NET_ADMIN and the initial pid namespace; without them it says so.
 */
#define _DEFAULT_SOURCE
#include "sim.h"
#include "bus/procfs.h"
#include "../broker/core/internal.h" /* bus__utf8_valid */

#include <errno.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
	if (!bus__utf8_valid((const uint8_t *)s, n)) {
		/* YAML strings are UTF-8, a process's text need not be: the
		 * scenario's !bytes, every byte past printable ASCII as \xNN */
		fputs("!bytes '", f);
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '\'')
				fputs("''", f);
			else if (c == '\\')
				fputs("\\\\", f);
			else if (c < 0x20 || c >= 0x7f)
				fprintf(f, "\\x%02x", c);
			else
				fputc(c, f);
		}
		fputc('\'', f);
		return;
	}
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		/* what YAML would not read back as it is: the other line
		 * breaks (NEL, LS, PS fold to a space) and the C1 controls,
		 * BOM and non-characters it refuses; the scenario fuzz target
		 * found the first */
		const unsigned char *u = (const unsigned char *)s + i;
		if (c == 0xc2 && i + 1 < n && u[1] >= 0x80 && u[1] <= 0x9f) {
			fprintf(f, "\\x%02x", u[1]);
			i += 1;
			continue;
		}
		if (i + 2 < n && ((c == 0xe2 && u[1] == 0x80 &&
		                   (u[2] == 0xa8 || u[2] == 0xa9)) ||
		                  (c == 0xef && u[1] == 0xbb && u[2] == 0xbf) ||
		                  (c == 0xef && u[1] == 0xbf && u[2] >= 0xbe))) {
			fprintf(f, "\\u%04x", (unsigned)((c & 0x0f) << 12 |
			                                 (u[1] & 0x3f) << 6 |
			                                 (u[2] & 0x3f)));
			i += 2;
			continue;
		}
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
			de_proc_release(&s->v[i]);
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

/* ---- the proc connector (--netlink) ------------------------------------------ */
/* A socket subscribed to the kernel's process events, or -1 (err says). */
static int nl_open(char *err, size_t errlen)
{
	int fd = socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC};
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(err, errlen, "the netlink proc connector is not available "
		                      "(%s): record without --netlink",
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	uint8_t buf[NLMSG_SPACE(sizeof(struct cn_msg) + sizeof(uint32_t))];
	memset(buf, 0, sizeof(buf));
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	h->nlmsg_len = NLMSG_LENGTH(sizeof(struct cn_msg) + sizeof(uint32_t));
	h->nlmsg_type = NLMSG_DONE;
	h->nlmsg_pid = (uint32_t)getpid();
	struct cn_msg *c = NLMSG_DATA(h);
	c->id.idx = CN_IDX_PROC;
	c->id.val = CN_VAL_PROC;
	c->len = sizeof(uint32_t);
	uint32_t op = PROC_CN_MCAST_LISTEN;
	memcpy(c->data, &op, sizeof(op));
	if (send(fd, buf, h->nlmsg_len, 0) != (ssize_t)h->nlmsg_len) {
		snprintf(err, errlen, "the netlink proc connector refused to "
		                      "listen (%s): record without --netlink",
		         strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Drops every process with this pid from s. */
static void drop_pid(struct de_snapshot *s, uint32_t pid)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].pid != pid) {
			s->v[k++] = s->v[i];
			continue;
		}
		de_proc_release(&s->v[i]);
	}
	s->n = k;
}

/* A child gone before it could be read: what fork gave it, its parent's
 * name, exe and command line, and the event's time as its start. */
static void fork_of(struct de_snapshot *live, const struct proc_event *ev,
                    uint32_t ticks_per_s)
{
	uint32_t parent = (uint32_t)ev->event_data.fork.parent_tgid;
	for (size_t i = 0; i < live->n; i++) {
		if (live->v[i].pid != parent)
			continue;
		struct de_proc c = live->v[i];
		c.pid = (uint32_t)ev->event_data.fork.child_pid;
		c.ppid = parent;
		c.start_ticks = ev->timestamp_ns / (1000000000ull / ticks_per_s);
		if (de_snapshot_add(live, &c))
			abort();
		return;
	}
}

struct rec;
static bool unwritten(const struct rec *r, uint32_t pid);
static void rec_live(struct rec *r, const struct de_snapshot *live);

/* Applies the pending events to live; true if any process changed. A
 * process about to exit that no table has shown yet is written first, so
 * even the shortest lives are in the recording (at the price of tables a
 * millisecond apart drifting later than the events). */
static bool nl_drain(int fd, struct de_procfs *fs, struct de_snapshot *live,
                     struct rec *r)
{
	bool changed = false;
	for (;;) {
		uint8_t buf[8192] __attribute__((aligned(8)));
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			return changed; /* drained (or ENOBUFS: the resync fixes it) */
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf;
		     NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			struct cn_msg *c = NLMSG_DATA(h);
			struct proc_event ev;
			if (c->len < sizeof(ev) - sizeof(ev.event_data) + 16)
				continue;
			memset(&ev, 0, sizeof(ev));
			memcpy(&ev, c->data, c->len < sizeof(ev) ? c->len : sizeof(ev));
			uint32_t pid = 0;
			if (ev.what == PROC_EVENT_FORK &&
			    ev.event_data.fork.child_pid == ev.event_data.fork.child_tgid)
				pid = (uint32_t)ev.event_data.fork.child_pid;
			else if (ev.what == PROC_EVENT_EXEC)
				pid = (uint32_t)ev.event_data.exec.process_tgid;
			else if (ev.what == PROC_EVENT_EXIT &&
			         ev.event_data.exit.process_pid ==
			                 ev.event_data.exit.process_tgid)
				pid = (uint32_t)ev.event_data.exit.process_pid;
			if (!pid)
				continue; /* a thread, or an event we do not follow */
			if (ev.what == PROC_EVENT_EXIT && unwritten(r, pid))
				rec_live(r, live);
			struct de_snapshot one; /* the process as it is now */
			de_snapshot_init(&one);
			bool read = ev.what != PROC_EVENT_EXIT &&
			            de_procfs_read_one(fs, pid, &one) == 0;
			/* an exec we came too late to read keeps what it was */
			if (read || ev.what != PROC_EVENT_EXEC)
				drop_pid(live, pid);
			if (read && de_snapshot_add(live, &one.v[0]))
				abort();
			if (!read && ev.what == PROC_EVENT_FORK)
				fork_of(live, &ev, fs->ticks_per_s);
			de_snapshot_free(&one);
			changed = true;
		}
	}
}

/* ---- the recording --------------------------------------------------------- */
struct rec {
	struct de_procfs fs;
	FILE *body;
	struct de_snapshot prev; /* the last table written */
	struct keyset keep;
	pid_t root;
	bool only_subtree, first;
	uint64_t t0, polls, changes, last_ms;
};

/* cur (taken over) is the table now: written if it differs. */
static void rec_table(struct rec *r, struct de_snapshot *cur)
{
	uint64_t at_ms = (mono_ns() - r->t0) / 1000000ull;
	if (!r->first && at_ms <= r->last_ms)
		at_ms = r->last_ms + 1;
	if (r->root && r->only_subtree)
		subtree(cur, (uint32_t)r->root, &r->keep);
	de_snapshot_sort(cur);
	if (sim_write_delta(r->body, at_ms, &r->prev, cur, r->first) || r->first) {
		r->changes++;
		r->last_ms = at_ms;
	}
	r->first = false;
	r->polls++;
	de_snapshot_free(&r->prev);
	r->prev = *cur;
}

static void copy_table(const struct de_snapshot *from, struct de_snapshot *to)
{
	de_snapshot_init(to);
	for (size_t i = 0; i < from->n; i++)
		if (de_snapshot_add(to, &from->v[i]))
			abort();
}

/* live, as the table now. */
static void rec_live(struct rec *r, const struct de_snapshot *live)
{
	struct de_snapshot cur;
	copy_table(live, &cur);
	rec_table(r, &cur);
}

/* Has no table shown this pid yet? */
static bool unwritten(const struct rec *r, uint32_t pid)
{
	for (size_t i = 0; i < r->prev.n; i++)
		if (r->prev.v[i].pid == pid)
			return false;
	return true;
}

int sim_record(const char *name, uint64_t poll_ms, double seconds,
               const char *command, bool only_subtree, bool netlink,
               FILE *out)
{
	struct rec r = {.only_subtree = only_subtree, .first = true};
	char err[256];
	if (de_procfs_init(&r.fs, NULL, false, err, sizeof(err))) {
		fprintf(stderr, "busrt-sim: record: %s\n", err);
		return 2;
	}
	int nl = -1;
	if (netlink && (nl = nl_open(err, sizeof(err))) < 0) {
		fprintf(stderr, "busrt-sim: record: %s\n", err);
		de_procfs_free(&r.fs);
		return 2;
	}
	pid_t child = 0;
	r.t0 = mono_ns();
	if (command) {
		child = fork();
		if (child == 0) {
			execl("/bin/sh", "sh", "-c", command, (char *)NULL);
			_exit(127);
		}
		r.root = child;
	}
	/* the body goes to memory: the header needs the duration */
	char *body = NULL;
	size_t blen = 0;
	r.body = open_memstream(&body, &blen);
	de_snapshot_init(&r.prev);
	struct de_snapshot live; /* --netlink: the table as events leave it */
	de_snapshot_init(&live);
	bool done = false, ending = false;
	for (uint64_t k = 0; !done; k++) {
		uint64_t due = r.t0 + k * poll_ms * 1000000ull;
		/* until the poll is due: sleep, or follow the kernel's events,
		 * a table per millisecond at most (tables are in whole ms) */
		bool pending = false;
		for (uint64_t now = mono_ns(); due > now; now = mono_ns()) {
			if (nl < 0) {
				struct timespec ts = {(time_t)((due - now) / 1000000000ull),
				                      (long)((due - now) % 1000000000ull)};
				nanosleep(&ts, NULL);
				continue;
			}
			if (pending && (r.first || (now - r.t0) / 1000000ull > r.last_ms)) {
				rec_live(&r, &live);
				pending = false;
			}
			struct pollfd pf = {nl, POLLIN, 0};
			int ms = pending ? 1 : (int)((due - now + 999999) / 1000000ull);
			if (poll(&pf, 1, ms) > 0 && nl_drain(nl, &r.fs, &live, &r))
				pending = true;
		}
		struct de_snapshot cur;
		de_snapshot_init(&cur);
		if (de_procfs_read(&r.fs, &cur, 0))
			break;
		if (nl >= 0) { /* the resync: live is the full read */
			de_snapshot_free(&live);
			copy_table(&cur, &live);
		}
		rec_table(&r, &cur);
		done = ending; /* one poll after the workload ended: its ends */
		if (child && waitpid(child, NULL, WNOHANG) == child) {
			child = 0;
			ending = true;
		}
		if ((double)(mono_ns() - r.t0) / 1e9 >= seconds)
			done = true;
	}
	if (child) {
		kill(child, SIGTERM);
		waitpid(child, NULL, 0);
	}
	if (nl >= 0)
		close(nl);
	fclose(r.body);
	de_snapshot_free(&r.prev);
	de_snapshot_free(&live);
	free(r.keep.v);
	uint64_t dur = r.last_ms + 2000;
	fprintf(out,
	        "# recorded by busrt-sim record on this machine: %llu tables "
	        "(polls every %llu ms%s), %llu with changes\n"
	        "version: 1\nname: %s\ndescription: ",
	        (unsigned long long)r.polls, (unsigned long long)poll_ms,
	        nl >= 0 ? ", and at each process event (netlink)" : "",
	        (unsigned long long)r.changes, name);
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
	        r.fs.ticks_per_s);
	fwrite(body, 1, blen, out);
	free(body);
	de_procfs_free(&r.fs);
	return 0;
}
