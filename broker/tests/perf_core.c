/* SPDX-License-Identifier: Apache-2.0 */
/*
 * perf_core — fixed workloads through the broker core on the in-memory
 * host, for the instruction-count gate (ci/perf-gate.sh runs this under
 * valgrind --tool=callgrind --toggle-collect=workload and divides by the
 * delivered messages). No timing here: the count is what is compared.
 *
 *   perf_core 1to1 | 1to4
 *
 * 20,000 QoS-0 publishes of 100 bytes on "bench/t", fed 100 frames per
 * read; 1 subscriber of "bench/#", or 4 of "bench/+". The broker's
 * default configuration, as busrtd ships it: the default ACL, every
 * client the broker's own uid (PERF_ACL=open: without it, to compare).
 */
#include "memhost.h"
#include "bus/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MESSAGES 20000
#define PER_READ 100

static uint8_t batch[PER_READ * 128];

static size_t make_batch(void)
{
	static const char topic[] = "bench/t";
	size_t off = 0;
	for (int i = 0; i < PER_READ; i++) {
		uint32_t len = sizeof(topic) + 100;
		uint8_t *f = batch + off;
		memset(f, 0, 9);
		f[0] = (uint8_t)(i + 1);
		f[4] = 0x01; /* PUBLISH, QoS 0 */
		f[5] = (uint8_t)len;
		memcpy(f + 9, topic, sizeof(topic));
		memset(f + 9 + sizeof(topic), 'p', 100);
		off += 9 + len;
	}
	return off;
}

/* Everything counted happens in here (and below). */
__attribute__((noinline)) void workload(struct memhost *mh, int pub,
                                        const int *subs, int nsubs,
                                        size_t blen);
__attribute__((noinline)) void workload(struct memhost *mh, int pub,
                                        const int *subs, int nsubs,
                                        size_t blen)
{
	for (int b = 0; b < MESSAGES / PER_READ; b++) {
		mh_send(mh, pub, batch, blen);
		for (int s = 0; s < nsubs; s++)
			mh_take(mh, subs[s], mh->c[subs[s]].out_len, NULL);
	}
}

/* A client as busrtd sees a local one of its own uid. */
static int client(struct memhost *mh, const char *name)
{
	static const struct bus_ident me = {.cred = true, .uid = 0, .pid = 1};
	int i = mh_connect(mh, BUS_KIND_LOCAL_IPC);
	bus_core_set_ident(mh->core, mh->c[i].conn, &me);
	if (mh_handshake(mh, i, name, strlen(name)) != BUS_RES_OK)
		exit(1);
	return i;
}

int main(int argc, char **argv)
{
	int fanout = argc > 1 && !strcmp(argv[1], "1to4") ? 4 : 1;
	if (argc != 2 || (strcmp(argv[1], "1to1") && strcmp(argv[1], "1to4"))) {
		fprintf(stderr, "usage: perf_core 1to1|1to4\n");
		return 2;
	}
	static struct memhost mh;
	struct bus_core_config cfg;
	bus_core_config_defaults(&cfg, false);
	static struct bus_acl acl;
	const char *open = getenv("PERF_ACL");
	if (!(open && !strcmp(open, "open"))) {
		if (bus_acl_defaults(&acl, 0, NULL, NULL))
			return 1;
		cfg.acl = &acl;
	}
	mh_init(&mh, &cfg);
	int subs[4];
	for (int i = 0; i < fanout; i++) {
		char name[16];
		snprintf(name, sizeof(name), "sub%d", i);
		subs[i] = client(&mh, name);
		uint8_t f[32] = {1, 0, 0, 0, 0x42, 0, 0, 0, 0};
		const char *mask = fanout == 1 ? "bench/#" : "bench/+";
		f[5] = (uint8_t)strlen(mask);
		memcpy(f + 9, mask, strlen(mask));
		mh_send(&mh, subs[i], f, 9 + strlen(mask));
		mh_take(&mh, subs[i], mh.c[subs[i]].out_len, NULL);
	}
	int pub = client(&mh, "pub");
	for (int i = 0; i < fanout; i++) /* the .broker/info announcement */
		mh_take(&mh, subs[i], mh.c[subs[i]].out_len, NULL);
	size_t blen = make_batch();
	mh.skip_checks = true; /* the invariant walk is test cost, not ours */
	workload(&mh, pub, subs, fanout, blen);
	mh.skip_checks = false;
	mh_run(&mh);
	struct bus_stats st;
	bus_core_stats(mh.core, &st);
	printf("delivered %d\n", MESSAGES * fanout);
	mh_free(&mh);
	bus_acl_free(&acl);
	return 0;
}
