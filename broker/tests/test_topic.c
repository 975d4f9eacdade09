/* SPDX-License-Identifier: Apache-2.0 */
/* test_topic.c — topic and broadcast mask matching: the truth table of
 * PROTOCOL.md §4, the normaliser, and the trie agreeing with the reference
 * matcher. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "../core/internal.h"

static bool m(const char *mask, const char *topic, bool star)
{
	char norm[256];
	size_t n = bus__mask_normalize(mask, strlen(mask), star, norm);
	return bus__mask_match(norm, n, topic, strlen(topic));
}

static void test_truth_table(void **state)
{
	(void)state;
	static const struct {
		const char *mask, *topic;
		bool star_on, star_off;
	} t[] = {
	    {"a/b", "a/b", 1, 1},       {"a/b", "/a/b", 0, 0},
	    {"a/b", "a//b", 0, 0},      {"/a/b", "/a/b", 1, 1},
	    {"a//b", "a//b", 1, 1},     {"a/+/c", "a/b/c", 1, 1},
	    {"a/+/c", "a/c", 0, 0},     {"a/+", "a/", 1, 1},
	    {"a/*/c", "a/b/c", 1, 0},   {"a/*/c", "a/*/c", 1, 1},
	    {"a/#", "a/b", 1, 1},       {"a/#", "a/b/c/d", 1, 1},
	    {"a/#", "a", 0, 0},         {"#", "a", 1, 1},
	    {"#", "", 1, 1},            {"#", "/", 1, 1},
	    {"a/#/x", "a/b", 1, 1},     {"#/a", "z", 1, 1},
	    {"a/+#", "a/b", 0, 0},      {"a/+#", "a/+#", 1, 1},
	    {"a+", "a+", 1, 1},         {"a+", "ab", 0, 0},
	    {"+", "", 1, 1},            {"+", "a/b", 0, 0},
	    {"", "", 1, 1},             {"", "a", 0, 0},
	    {"events/*/anomaly", "events/process/anomaly", 1, 0},
	    {"events/process/*", "events/process/lifecycle", 1, 0},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (m(t[i].mask, t[i].topic, true) != t[i].star_on ||
		    m(t[i].mask, t[i].topic, false) != t[i].star_off)
			fail_msg("mask '%s' topic '%s'", t[i].mask, t[i].topic);
	}
}

static void test_normalize(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(bus__mask_normalize("a/*/#/x", 7, true, out), 5);
	assert_string_equal(out, "a/+/#");
	bus__mask_normalize("a/*", 3, false, out);
	assert_string_equal(out, "a/*");
	assert_int_equal(bus__levels("", 0), 1);
	assert_int_equal(bus__levels("a//b", 4), 3);
}

static void test_broadcast(void **state)
{
	(void)state;
#define B(mask, name) bus__bcast_match(mask, strlen(mask), name, strlen(name))
	assert_true(B("collector.*", "collector.proc"));
	assert_true(B("collector.*", "collector.net.1"));
	assert_false(B("collector.*", "collector"));
	assert_true(B("collector.?", "collector.proc"));
	assert_false(B("collector.?", "collector.net.1"));
	assert_true(B("*", "anything.at.all"));
	assert_true(B("a.?.c", "a.b.c"));
	assert_false(B("a.b", "a.b.c"));
	assert_true(B("a.b", "a.b"));
	assert_false(B("monitor.*", "collector.x"));
#undef B
}

struct seen {
	struct bus_conn *c[16];
	int n;
};

static void collect(struct bus_conn *c, void *arg)
{
	struct seen *s = arg;
	s->c[s->n++] = c;
}

static void test_trie_agrees_with_reference(void **state)
{
	(void)state;
	static const char *masks[] = {"a/b", "a/+", "a/#", "#", "+/b",
	                              "a/+/c", "/a", "a//b", "x"};
	static const char *topics[] = {"a/b", "a", "a/b/c", "/a", "a//b",
	                               "x", "y/b", ""};
	struct bus_allocator a = {0};
	struct bus_trie t;
	memset(&t, 0, sizeof(t));
	struct bus_conn conns[9];
	for (int i = 0; i < 9; i++)
		assert_int_equal(bus__trie_add(&a, &t, masks[i],
		                               strlen(masks[i]), &conns[i]), 0);
	for (size_t k = 0; k < sizeof(topics) / sizeof(topics[0]); k++) {
		struct seen s = {.n = 0};
		bus__trie_match(&t, topics[k], strlen(topics[k]), collect, &s);
		for (int i = 0; i < 9; i++) {
			bool want = bus__mask_match(masks[i], strlen(masks[i]),
			                            topics[k], strlen(topics[k]));
			bool got = false;
			for (int j = 0; j < s.n; j++)
				got |= s.c[j] == &conns[i];
			if (want != got)
				fail_msg("mask %s topic %s", masks[i], topics[k]);
		}
	}
	for (int i = 0; i < 9; i++)
		bus__trie_remove(&a, &t, masks[i], strlen(masks[i]), &conns[i]);
	assert_int_equal(t.root.children.count, 0);
	assert_null(t.root.plus);
	bus__trie_free(&a, &t);
}

/* Every string of up to n levels over the given level texts, joined by
 * '/'; returns the count. */
static int strings_of(const char *const *lv, int nlv, int n, char out[][16])
{
	int count = 0, first = 0;
	out[count++][0] = 0; /* grown below; removed at the end */
	for (int len = 1; len <= n; len++) {
		int end = count;
		for (int i = first; i < end; i++)
			for (int k = 0; k < nlv; k++) {
				char one[16];
				snprintf(one, sizeof(one), "%s%s%s", out[i],
				         len > 1 ? "/" : "", lv[k]);
				memcpy(out[count++], one, sizeof(one));
			}
		first = end;
	}
	memmove(out, out + 1, sizeof(out[0]) * (size_t)(count - 1));
	return count - 1;
}

/* bus__mask_covers(r, s) holds exactly when every topic s matches, r
 * matches: checked over every mask of up to 3 levels over {a, b, +, #} and
 * every topic of up to 4 levels over {a, b, c, ""} (c stands for any other
 * literal, and a topic one level longer than any mask is enough). */
static void test_covers_is_exact(void **state)
{
	(void)state;
	static char masks[1 + 4 + 16 + 64][16],
	    topics[1 + 4 + 16 + 64 + 256][16];
	static const char *const mlv[] = {"a", "b", "+", "#"};
	static const char *const tlv[] = {"a", "b", "c", ""};
	int nm = strings_of(mlv, 4, 3, masks);
	int nt = strings_of(tlv, 4, 4, topics);
	int covers = 0;
	for (int i = 0; i < nm; i++) {
		char r[16];
		size_t rl = bus__mask_normalize(masks[i], strlen(masks[i]), true, r);
		for (int j = 0; j < nm; j++) {
			char s[16];
			size_t sl = bus__mask_normalize(masks[j], strlen(masks[j]),
			                                true, s);
			bool want = true;
			for (int t = 0; t < nt && want; t++) {
				size_t tl = strlen(topics[t]);
				want = !bus__mask_match(s, sl, topics[t], tl) ||
				       bus__mask_match(r, rl, topics[t], tl);
			}
			uint64_t steps = 0;
			bool got = bus__mask_covers(r, rl, s, sl, &steps);
			if (got != want)
				fail_msg("covers('%s', '%s') = %d", r, s, got);
			assert_true(steps >= 1 && steps <= 3);
			covers += got;
		}
	}
	assert_true(covers > nm); /* more than each mask itself */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_truth_table),
	    cmocka_unit_test(test_normalize),
	    cmocka_unit_test(test_broadcast),
	    cmocka_unit_test(test_trie_agrees_with_reference),
	    cmocka_unit_test(test_covers_is_exact),
	};
	return cmocka_run_group_tests_name("topic", tests, NULL, NULL);
}
