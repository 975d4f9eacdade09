/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay.c — the plain driver: runs each file named on the command line
 * (a directory: each file in it, sorted) through the harness once. Built
 * with ASan+UBSan for `make test`, which replays every seed and regression
 * input of every target in seconds.
 */
#define _DEFAULT_SOURCE
#include "fuzz.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return 1;
	}
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	fclose(f);
	if (!buf)
		return 1;
	/* an exact-size copy, so reads past the end are caught */
	uint8_t *exact = malloc(n ? n : 1);
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 0;
}


int main(int argc, char **argv)
{
	int files = 0, bad = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			return 2;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad |= run_file(argv[i]);
			files++;
			continue;
		}
		struct dirent **list;
		int k = scandir(argv[i], &list, NULL, alphasort);
		for (int j = 0; j < k; j++) {
			char p[4096];
			snprintf(p, sizeof(p), "%s/%s", argv[i], list[j]->d_name);
			if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
				bad |= run_file(p);
				files++;
			}
			free(list[j]);
		}
		free(list);
	}
	fprintf(stderr, "replayed %d inputs\n", files);
	return bad;
}
