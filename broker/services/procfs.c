/* SPDX-License-Identifier: Apache-2.0 */
/*
 * procfs.c — reads /proc for procmond (procfs.h). Linux only.
 *
 * Per process: /proc/PID/stat (name, parent, times, start, RSS; the name
 * sits in parentheses and may itself contain ") ", so the fields are
 * parsed after the LAST ')'), the directory's owner (effective uid),
 * /proc/PID/exe, opened: fstat of that descriptor says whether the file
 * is gone (st_nlink 0; the link's " (deleted)" suffix is then not part
 * of the path, and a file really named "x (deleted)" keeps its name),
 * keys the hash cache, and the hash is of that same open file, and
 * /proc/PID/cmdline. ENOENT anywhere: the process vanished, leave it out.
 * EACCES on exe (another user's process without privileges): keep it,
 * accessible = false. A zombie (state Z), a task flagged PF_EXITING, and
 * a user process whose exe link is already gone are exiting: left out, so
 * the TERMINATION comes when it ends (not when its parent reaps it) and
 * carries the process as it was, not a half-torn-down one. Only kernel
 * threads (PF_KTHREAD) have no executable.
 */
#define _DEFAULT_SOURCE
#include "bus/procfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_file(const char *path, char *buf, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = 0;
	while (n < cap) {
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return 0;
}

int de_procfs_init(struct de_procfs *f, const char *root, bool hashes,
                   char *err, size_t errlen)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->root, sizeof(f->root), "%s", root ? root : "/proc");
	f->hashes = hashes;
	f->hash_bytes_max = DE_HASH_BYTES_MAX_DEFAULT;
	f->hash_cycle_bytes_max = DE_HASH_CYCLE_BYTES_DEFAULT;
	long t = sysconf(_SC_CLK_TCK), p = sysconf(_SC_PAGESIZE);
	f->ticks_per_s = t > 0 ? (uint32_t)t : 100;
	f->page_bytes = p > 0 ? (uint64_t)p : 4096;
	char path[96], buf[8192];
	size_t n;
	snprintf(path, sizeof(path), "%s/stat", f->root);
	int rc = read_file(path, buf, sizeof(buf) - 1, &n);
	if (rc) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return BUS_EIO;
	}
	buf[n] = 0;
	const char *bt = strstr(buf, "\nbtime ");
	if (!bt) {
		snprintf(err, errlen, "%s: no btime line", path);
		return BUS_EIO;
	}
	f->boot_time_ms = strtoll(bt + 7, NULL, 10) * 1000;
	if (hashes) {
		f->cache = calloc(DE_HASH_CACHE_SLOTS, sizeof(*f->cache));
		if (!f->cache) {
			snprintf(err, errlen, "out of memory");
			return BUS_ENOMEM;
		}
	}
	return 0;
}

void de_procfs_free(struct de_procfs *f)
{
	free(f->cache);
	f->cache = NULL;
	free(f->jobs);
	f->jobs = NULL;
	f->n_jobs = f->jobs_cap = 0;
}

int de_sha256_fd(int fd, char out[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return BUS_EIO;
	}
	static const char hexd[] = "0123456789abcdef";
	uint8_t buf[65536];
	int rc = 0;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = BUS_EIO;
			break;
		}
		if (r == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)r);
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!rc && EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 32) {
		for (unsigned i = 0; i < 32; i++) {
			out[2 * i] = hexd[md[i] >> 4];
			out[2 * i + 1] = hexd[md[i] & 15];
		}
		out[64] = 0;
	} else {
		rc = BUS_EIO;
	}
	EVP_MD_CTX_free(ctx);
	return rc;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

static uint64_t key_hash(const struct de_hash_entry *k)
{
	return mix(mix(mix(mix(mix(0, k->dev), k->ino), k->size), k->mtime_ns),
	           k->ctime_ns);
}

static bool key_eq(const struct de_hash_entry *a, const struct de_hash_entry *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

static void key_of(const struct stat *st, struct de_hash_entry *k)
{
	memset(k, 0, sizeof(*k));
	k->dev = st->st_dev;
	k->ino = st->st_ino;
	k->size = (uint64_t)st->st_size;
	k->mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000ull +
	              (uint64_t)st->st_mtim.tv_nsec;
	k->ctime_ns = (uint64_t)st->st_ctim.tv_sec * 1000000000ull +
	              (uint64_t)st->st_ctim.tv_nsec;
}

static const struct de_hash_entry *cache_get(const struct de_procfs *f,
                                             const struct de_hash_entry *k)
{
	size_t mask = DE_HASH_CACHE_SLOTS - 1, i = key_hash(k) & mask;
	for (size_t probe = 0; probe < 16; probe++, i = (i + 1) & mask) {
		const struct de_hash_entry *e = &f->cache[i];
		if (!e->used)
			return NULL;
		if (key_eq(e, k))
			return e;
	}
	return NULL;
}

static void cache_put(struct de_procfs *f, const struct de_hash_entry *k)
{
	if (f->cache_used >= DE_HASH_CACHE_SLOTS / 2) {
		memset(f->cache, 0, DE_HASH_CACHE_SLOTS * sizeof(*f->cache));
		f->cache_used = 0; /* bounded: start over rather than grow */
	}
	size_t mask = DE_HASH_CACHE_SLOTS - 1;
	for (size_t i = key_hash(k) & mask;; i = (i + 1) & mask) {
		struct de_hash_entry *e = &f->cache[i];
		if (e->used)
			continue; /* at most half full: a free slot exists */
		*e = *k;
		e->used = true;
		f->cache_used++;
		return;
	}
}

/* The executable, opened through /proc/PID/exe (the file the process
 * runs, even if its path was replaced or deleted): whether it is still
 * on disk, and with hashes on its SHA-256: from the cache when fstat of
 * the descriptor matches, else hashed now or (defer) left as a job for
 * the snapshot's entry idx. -1: it cannot be opened (the caller falls
 * back to the link's text); BUS_ENOMEM. */
static int open_exe(struct de_procfs *f, const char *exe_link,
                    struct de_proc *p, size_t idx)
{
	int fd = open(exe_link, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	p->file_exists = st.st_nlink > 0;
	if (!f->hashes) {
		close(fd);
		return 0;
	}
	if (!S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > f->hash_bytes_max) {
		p->hash_skipped = S_ISREG(st.st_mode) ? "too_large" : "not_regular";
		f->hash_skipped++;
		close(fd);
		return 0;
	}
	struct de_hash_entry k;
	key_of(&st, &k);
	const struct de_hash_entry *e = cache_get(f, &k);
	if (e) {
		memcpy(p->hash, e->hex, sizeof(p->hash));
		f->hash_hits++;
		close(fd);
		return 0;
	}
	if (f->defer) {
		close(fd);
		if (f->n_jobs == f->jobs_cap) {
			size_t nc = f->jobs_cap ? 2 * f->jobs_cap : 64;
			struct de_hash_job *j = realloc(f->jobs, nc * sizeof(*j));
			if (!j)
				return BUS_ENOMEM;
			f->jobs = j;
			f->jobs_cap = nc;
		}
		f->jobs[f->n_jobs++] = (struct de_hash_job){idx, p->pid, k, 0};
		return 0;
	}
	int rc = de_sha256_fd(fd, k.hex);
	close(fd);
	if (rc != 0) {
		p->hash_skipped = "unreadable";
		f->hash_failures++;
		return 0;
	}
	memcpy(p->hash, k.hex, sizeof(p->hash));
	f->hashed++;
	cache_put(f, &k);
	return 0;
}

void de_procfs_hash_jobs(struct de_procfs *f)
{
	uint64_t spent = 0;
	for (size_t i = 0; i < f->n_jobs; i++) {
		struct de_hash_job *j = &f->jobs[i];
		if (spent + j->key.size > f->hash_cycle_bytes_max && spent) {
			j->result = 1; /* next cycle: the cache still misses */
			continue;
		}
		char path[128];
		snprintf(path, sizeof(path), "%s/%u/exe", f->root, j->pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		struct de_hash_entry now;
		j->result = -1;
		if (fd < 0)
			continue;
		/* the same file as when the table was read, or nothing */
		if (fstat(fd, &st) == 0 && (key_of(&st, &now), key_eq(&now, &j->key)) &&
		    de_sha256_fd(fd, j->key.hex) == 0) {
			j->result = 0;
			spent += j->key.size;
		}
		close(fd);
	}
}

void de_procfs_hash_apply(struct de_procfs *f, struct de_snapshot *s)
{
	for (size_t i = 0; i < f->n_jobs; i++) {
		struct de_hash_job *j = &f->jobs[i];
		if (j->idx >= s->n || s->v[j->idx].pid != j->pid)
			continue; /* never: the jobs are this snapshot's */
		struct de_proc *p = &s->v[j->idx];
		if (j->result == 0) {
			memcpy(p->hash, j->key.hex, sizeof(p->hash));
			f->hashed++;
			cache_put(f, &j->key);
		} else {
			p->hash_skipped = j->result == 1 ? "budget" : "unreadable";
			if (j->result == 1)
				f->hash_skipped++;
			else
				f->hash_failures++;
		}
	}
	f->n_jobs = 0;
}

/* Fields of /proc/PID/stat after the name: 0 is state (field 3).
 * Returns 0, 1 for a zombie, or BUS_EIO for a line that does not parse. */
#define PF_EXITING 0x00000004u  /* include/linux/sched.h */
#define PF_KTHREAD 0x00200000u

static int parse_stat(struct de_procfs *f, char *buf, size_t n,
                      struct de_proc *p, char *name, size_t namecap,
                      unsigned long long *flags)
{
	buf[n] = 0;
	char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
	if (!open_paren || !close_paren || close_paren < open_paren)
		return BUS_EIO;
	size_t nl = (size_t)(close_paren - open_paren - 1);
	if (nl >= namecap)
		nl = namecap - 1;
	memcpy(name, open_paren + 1, nl);
	name[nl] = 0;
	unsigned long long v[24] = {0};
	char *s = close_paren + 2;
	if (*s == 'Z' || *s == 'X')
		return 1; /* exited, not yet reaped: it ended, for us */
	for (int i = 0; i < 24 && s && *s; i++) {
		if (i == 0) { /* state: a letter */
			s = strchr(s, ' ');
			s = s ? s + 1 : NULL;
			continue;
		}
		char *end;
		v[i] = strtoull(s, &end, 10);
		s = *end == ' ' ? end + 1 : NULL;
	}
	/* indices: field number - 3 */
	*flags = v[6];
	if (*flags & PF_EXITING)
		return 1; /* on its way out: it ended, for us */
	p->ppid = (uint32_t)v[1];
	p->cpu_ticks = v[11] + v[12];
	p->start_ticks = v[19];
	p->memory_bytes = v[21] * f->page_bytes;
	p->start_time_ms = f->boot_time_ms +
	                   (int64_t)(v[19] * 1000 / f->ticks_per_s);
	return 0;
}

/* One process; 1 when it vanished (skip), 0 read, <0 error. */
static int read_proc(struct de_procfs *f, uint32_t pid, struct de_snapshot *s)
{
	char path[128], buf[DE_CMDLINE_BYTES_MAX], name[64], exe[4096];
	size_t n;
	struct de_proc p = {.pid = pid, .accessible = true, .file_exists = true};
	snprintf(path, sizeof(path), "%s/%u/stat", f->root, pid);
	int rc = read_file(path, buf, sizeof(buf) - 1, &n);
	unsigned long long flags = 0;
	if (rc || parse_stat(f, buf, n, &p, name, sizeof(name), &flags))
		return 1; /* gone, exiting, a zombie, or not a process entry */
	struct stat st;
	snprintf(path, sizeof(path), "%s/%u", f->root, pid);
	if (stat(path, &st) != 0)
		return 1;
	p.uid = st.st_uid;
	snprintf(path, sizeof(path), "%s/%u/exe", f->root, pid);
	ssize_t el = readlink(path, exe, sizeof(exe) - 1);
	if (el < 0) {
		int e = errno;
		char sp[128];
		snprintf(sp, sizeof(sp), "%s/%u/stat", f->root, pid);
		if (e == ENOENT && (access(sp, F_OK) != 0 ||
		                    !(flags & PF_KTHREAD)))
			return 1; /* gone between the reads, or exiting (its
			             memory, and so its exe, already released) */
		el = 0; /* a kernel thread (ENOENT) or not ours (EACCES) */
		if (e != ENOENT)
			p.accessible = false;
		p.file_exists = false;
	}
	exe[el] = 0;
	/* the kernel appends " (deleted)" to the link of a file gone: the
	 * opened file says whether that is the case; if it cannot be opened,
	 * the link's text is all there is */
	static const char deleted[] = " (deleted)";
	size_t dl = sizeof(deleted) - 1;
	bool suffix = (size_t)el > dl && !strcmp(exe + el - dl, deleted);
	size_t jobs = f->n_jobs; /* this process's job goes if it vanishes */
	rc = exe[0] ? open_exe(f, path, &p, s->n) : 0;
	if (rc == BUS_ENOMEM)
		return rc;
	if (rc != 0) {
		p.file_exists = !suffix;
		if (f->hashes) {
			p.hash_skipped = "unreadable";
			f->hash_skipped++;
		}
	}
	if (suffix && !p.file_exists)
		exe[el - dl] = 0;
	snprintf(path, sizeof(path), "%s/%u/cmdline", f->root, pid);
	rc = read_file(path, buf, sizeof(buf), &n);
	if (rc == -ENOENT || rc == -ESRCH) {
		f->n_jobs = jobs;
		return 1;
	}
	if (rc) {
		n = 0;
		p.accessible = false;
	}
	p.name = name;
	p.exe = exe;
	p.cmdline = buf;
	p.cmdline_len = n;
	rc = de_snapshot_add(s, &p);
	if (rc)
		f->n_jobs = jobs;
	return rc;
}

int de_procfs_read_one(struct de_procfs *f, uint32_t pid,
                       struct de_snapshot *s)
{
	return read_proc(f, pid, s);
}

int de_procfs_read(struct de_procfs *f, struct de_snapshot *s, size_t max)
{
	DIR *d = opendir(f->root);
	if (!d)
		return BUS_EIO;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) != NULL && (!max || s->n < max)) {
		char *end;
		unsigned long pid = strtoul(e->d_name, &end, 10);
		if (*end || e->d_name[0] < '1' || e->d_name[0] > '9' ||
		    pid > UINT32_MAX)
			continue;
		rc = read_proc(f, (uint32_t)pid, s);
		if (rc == 1) {
			f->vanished++;
			rc = 0;
		} else if (rc) {
			break;
		}
	}
	closedir(d);
	return rc;
}
