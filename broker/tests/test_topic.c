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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_truth_table),
	    cmocka_unit_test(test_normalize),
	    cmocka_unit_test(test_broadcast),
	    cmocka_unit_test(test_trie_agrees_with_reference),
	};
	return cmocka_run_group_tests_name("topic", tests, NULL, NULL);
}
