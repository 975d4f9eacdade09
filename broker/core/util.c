/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util.c — the core's small shared helpers: assertions, the allocator hook,
 * UTF-8 validation, the error table and a string-keyed hash map.
 * No I/O except the assertion message on the way to abort().
 */
#include "internal.h"

#include <string.h>

_Noreturn void bus__assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "BUS_ASSERT failed: %s at %s:%d\n", expr, file, line);
	abort();
}

const char *bus_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
#define BUS__ERRNO_CASE(name, value, text)                                   \
	case (value):                                                        \
		return (text);
		BUS_ERRNO_MAP(BUS__ERRNO_CASE)
#undef BUS__ERRNO_CASE
	default:
		return "unknown error";
	}
}

static const char *const policy_names[] = {
	[BUS_SLOW_DISCONNECT] = "disconnect",
	[BUS_SLOW_DROP_NEWEST] = "drop_newest",
	[BUS_SLOW_BLOCK] = "block",
};

const char *bus_slow_policy_name(enum bus_slow_policy p)
{
	return (unsigned)p <= BUS_SLOW_BLOCK ? policy_names[p] : "?";
}

int bus_slow_policy_parse(const char *name, enum bus_slow_policy *out)
{
	for (unsigned i = 0; name && i <= BUS_SLOW_BLOCK; i++)
		if (!strcmp(name, policy_names[i])) {
			*out = (enum bus_slow_policy)i;
			return 0;
		}
	return BUS_EINVAL;
}

uint64_t bus_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* ---- allocation -------------------------------------------------------- */
void *bus__alloc(const struct bus_allocator *a, size_t size)
{
	return a->alloc ? a->alloc(a->ctx, size) : malloc(size);
}

void *bus__realloc(const struct bus_allocator *a, void *ptr, size_t size)
{
	return a->realloc ? a->realloc(a->ctx, ptr, size) : realloc(ptr, size);
}

void bus__free(const struct bus_allocator *a, void *ptr)
{
	if (!ptr)
		return;
	if (a->free)
		a->free(a->ctx, ptr);
	else
		free(ptr);
}

void *bus__calloc(const struct bus_allocator *a, size_t size)
{
	void *p = bus__alloc(a, size);
	if (p)
		memset(p, 0, size);
	return p;
}

char *bus__strndup(const struct bus_allocator *a, const char *s, size_t len)
{
	char *p = bus__alloc(a, len + 1);
	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* ---- UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF) -------- */
size_t bus__utf8_seq(const uint8_t *s, size_t len)
{
	uint8_t c = s[0];
	if (c < 0x80)
		return 1;
	size_t n;
	uint32_t cp;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 1;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 2;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 3;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len <= n)
		return 0;
	for (size_t k = 1; k <= n; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3F);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
	    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n + 1;
}

bool bus__utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		if (s[i] < 0x80) { /* the common case, inline */
			i++;
			continue;
		}
		size_t k = bus__utf8_seq(s + i, len - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

void bus__copy_cut(char *dst, size_t n, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t k = bus__utf8_seq((const uint8_t *)s + i, len - i);
		if (!k || i + k > n - 1)
			break; /* not valid here, or not whole: cut before it */
		i += k;
	}
	memcpy(dst, s, i);
	dst[i] = 0;
}

/* ---- string map -------------------------------------------------------- */
static char bus__tombstone_key[1];
#define TOMBSTONE (bus__tombstone_key)

uint32_t bus__hash(const void *key, size_t len)
{
	const uint8_t *p = key;
	uint32_t h = 2166136261u; /* FNV-1a: stable everywhere */
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

bool bus__strmap_live(const struct bus_strmap *m, uint32_t i)
{
	return m->slots[i].key != NULL && m->slots[i].key != TOMBSTONE;
}

void **bus__strmap_get(const struct bus_strmap *m, const char *key, size_t len)
{
	if (m->count == 0)
		return NULL;
	uint32_t h = bus__hash(key, len);
	uint32_t mask = m->cap - 1;
	for (uint32_t i = h & mask, n = 0; n < m->cap; i = (i + 1) & mask, n++) {
		struct bus_strmap_slot *s = &m->slots[i];
		if (s->key == NULL)
			return NULL;
		if (s->key != TOMBSTONE && s->hash == h && s->key_len == len &&
		    memcmp(s->key, key, len) == 0)
			return &s->value;
	}
	return NULL;
}

const char *bus__strmap_key(const struct bus_strmap *m, const char *key,
                            size_t len)
{
	void **v = bus__strmap_get(m, key, len);
	if (!v)
		return NULL;
	return ((struct bus_strmap_slot *)((char *)v -
	                                   offsetof(struct bus_strmap_slot,
	                                            value)))->key;
}

static int strmap_grow(const struct bus_allocator *a, struct bus_strmap *m)
{
	uint32_t ncap = m->cap ? m->cap * 2 : 8;
	if (m->count * 2 < m->cap)
		ncap = m->cap; /* mostly tombstones: rehash in place size */
	struct bus_strmap_slot *ns = bus__calloc(a, sizeof(*ns) * ncap);
	if (!ns)
		return BUS_ENOMEM;
	for (uint32_t i = 0; i < m->cap; i++) {
		struct bus_strmap_slot *s = &m->slots[i];
		if (s->key == NULL || s->key == TOMBSTONE)
			continue;
		uint32_t j = s->hash & (ncap - 1);
		while (ns[j].key)
			j = (j + 1) & (ncap - 1);
		ns[j] = *s;
	}
	bus__free(a, m->slots);
	m->slots = ns;
	m->cap = ncap;
	m->used = m->count;
	return 0;
}

int bus__strmap_put(const struct bus_allocator *a, struct bus_strmap *m,
                    const char *key, size_t len, void *value)
{
	if (len > UINT32_MAX)
		return BUS_EINVAL;
	if ((m->used + 1) * 4 >= m->cap * 3) {
		int rc = strmap_grow(a, m);
		if (rc)
			return rc;
	}
	char *k = bus__strndup(a, key, len);
	if (!k)
		return BUS_ENOMEM;
	uint32_t h = bus__hash(key, len);
	uint32_t i = h & (m->cap - 1);
	while (m->slots[i].key && m->slots[i].key != TOMBSTONE)
		i = (i + 1) & (m->cap - 1);
	if (m->slots[i].key == NULL)
		m->used++;
	m->slots[i] = (struct bus_strmap_slot){k, (uint32_t)len, h, value};
	m->count++;
	return 0;
}

bool bus__strmap_del(const struct bus_allocator *a, struct bus_strmap *m,
                     const char *key, size_t len)
{
	void **v = bus__strmap_get(m, key, len);
	if (!v)
		return false;
	struct bus_strmap_slot *s =
	    (struct bus_strmap_slot *)((char *)v -
	                               offsetof(struct bus_strmap_slot, value));
	bus__free(a, s->key);
	s->key = TOMBSTONE;
	s->value = NULL;
	m->count--;
	if (m->count == 0) {
		/* empty: drop every tombstone at once */
		bus__free(a, m->slots);
		*m = (struct bus_strmap){0};
	}
	return true;
}

void bus__strmap_free(const struct bus_allocator *a, struct bus_strmap *m)
{
	for (uint32_t i = 0; i < m->cap; i++)
		if (bus__strmap_live(m, i))
			bus__free(a, m->slots[i].key);
	bus__free(a, m->slots);
	*m = (struct bus_strmap){0};
}

/* ---- indexed min-heap --------------------------------------------------- */
static bool heap_less(const struct bus_heap_item *x,
                      const struct bus_heap_item *y)
{
	return x->key < y->key || (x->key == y->key && x->seq < y->seq);
}

static void heap_set(struct bus_heap *h, uint32_t i, struct bus_heap_item *it)
{
	h->items[i] = it;
	it->idx = i;
}

static void heap_up(struct bus_heap *h, uint32_t i)
{
	struct bus_heap_item *it = h->items[i];
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (!heap_less(it, h->items[p]))
			break;
		heap_set(h, i, h->items[p]);
		i = p;
	}
	heap_set(h, i, it);
}

static void heap_down(struct bus_heap *h, uint32_t i)
{
	struct bus_heap_item *it = h->items[i];
	for (;;) {
		uint32_t l = 2 * i + 1, m = i;
		const struct bus_heap_item *best = it;
		if (l < h->count && heap_less(h->items[l], best))
			m = l, best = h->items[l];
		if (l + 1 < h->count && heap_less(h->items[l + 1], best))
			m = l + 1;
		if (m == i)
			break;
		heap_set(h, i, h->items[m]);
		i = m;
	}
	heap_set(h, i, it);
}

int bus__heap_reserve(const struct bus_allocator *a, struct bus_heap *h,
                      uint32_t n)
{
	if (n <= h->cap)
		return 0;
	uint32_t cap = h->cap ? h->cap * 2 : 16;
	while (cap < n)
		cap *= 2;
	void *p = bus__realloc(a, h->items, sizeof(*h->items) * cap);
	if (!p)
		return BUS_ENOMEM;
	h->items = p;
	h->cap = cap;
	return 0;
}

int bus__heap_push(const struct bus_allocator *a, struct bus_heap *h,
                   struct bus_heap_item *it, uint64_t key)
{
	if (bus__heap_reserve(a, h, h->count + 1))
		return BUS_ENOMEM;
	it->key = key;
	it->seq = h->seq++;
	heap_set(h, h->count++, it);
	heap_up(h, it->idx);
	/* where it went, it is known to be; the top is never after it */
	BUS_ASSERT(it->idx < h->count && h->items[it->idx] == it);
	BUS_ASSERT(h->items[0]->key <= key);
	return 0;
}

void bus__heap_remove(struct bus_heap *h, struct bus_heap_item *it)
{
	uint32_t i = it->idx;
	if (i == UINT32_MAX)
		return;
	BUS_ASSERT(i < h->count && h->items[i] == it);
	it->idx = UINT32_MAX;
	struct bus_heap_item *last = h->items[--h->count];
	if (last == it)
		return;
	heap_set(h, i, last);
	if (i > 0 && heap_less(last, h->items[(i - 1) / 2]))
		heap_up(h, i);
	else
		heap_down(h, i);
}

void bus__heap_update(struct bus_heap *h, struct bus_heap_item *it,
                      uint64_t key)
{
	uint32_t i = it->idx;
	BUS_ASSERT(i < h->count && h->items[i] == it);
	uint64_t old = it->key;
	it->key = key;
	if (key < old)
		heap_up(h, i);
	else if (key > old)
		heap_down(h, i);
}

void bus__heap_free(const struct bus_allocator *a, struct bus_heap *h)
{
	bus__free(a, h->items);
	*h = (struct bus_heap){0};
}

/* ---- MessagePack bounds ------------------------------------------------- */
static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

size_t bus__msgpack_check(const uint8_t *p, size_t n, unsigned depth_max)
{
	uint64_t stack[64]; /* items still to read per open container */
	unsigned depth = 0;
	size_t off = 0;
	if (depth_max > 64)
		depth_max = 64;
	uint64_t items = 1; /* at the top: one object */
	for (;;) {
		while (items == 0) {
			if (depth == 0)
				return off;
			items = stack[--depth];
		}
		items--;
		if (off >= n)
			return 0;
		uint8_t t = p[off++];
		uint64_t skip = 0, count = 0;
		int lb = 0; /* bytes of a length field */
		if (t <= 0x7f || t >= 0xe0 || (t >= 0xc2 && t <= 0xc3) || t == 0xc0)
			continue;
		if (t >= 0xa0 && t <= 0xbf) {
			skip = t & 0x1f;
		} else if (t >= 0x80 && t <= 0x8f) {
			count = 2u * (t & 0x0f);
		} else if (t >= 0x90 && t <= 0x9f) {
			count = t & 0x0f;
		} else {
			switch (t) {
			case 0xc4: case 0xd9: lb = 1; break; /* bin8, str8 */
			case 0xc5: case 0xda: lb = 2; break;
			case 0xc6: case 0xdb: lb = 4; break;
			case 0xc7: lb = 1; skip = 1; break; /* ext: + type */
			case 0xc8: lb = 2; skip = 1; break;
			case 0xc9: lb = 4; skip = 1; break;
			case 0xca: skip = 4; break;
			case 0xcb: skip = 8; break;
			case 0xcc: case 0xd0: skip = 1; break;
			case 0xcd: case 0xd1: skip = 2; break;
			case 0xce: case 0xd2: skip = 4; break;
			case 0xcf: case 0xd3: skip = 8; break;
			case 0xd4: skip = 2; break;
			case 0xd5: skip = 3; break;
			case 0xd6: skip = 5; break;
			case 0xd7: skip = 9; break;
			case 0xd8: skip = 17; break;
			case 0xdc: case 0xde: lb = 2; break;
			case 0xdd: case 0xdf: lb = 4; break;
			default: return 0; /* 0xc1: never used */
			}
			if (lb) {
				if (n - off < (size_t)lb)
					return 0;
				uint64_t v = be(p + off, lb);
				off += (size_t)lb;
				if (t == 0xdc || t == 0xdd)
					count = v;
				else if (t == 0xde || t == 0xdf)
					count = 2 * v;
				else
					skip += v;
			}
		}
		if (skip > n - off)
			return 0;
		off += (size_t)skip;
		if (count) {
			/* every item takes at least one byte: a declared count
			 * past the input is a lie, refused before anything
			 * allocates for it */
			if (count > n - off || depth == depth_max)
				return 0;
			stack[depth++] = items;
			items = count;
		}
	}
}

char *bus_put_u64(char *p, uint64_t v, int width)
{
	/* two digits per division, from the end */
	static const char pairs[] = "00010203040506070809101112131415161718"
	                            "19202122232425262728293031323334353637"
	                            "38394041424344454647484950515253545556"
	                            "57585960616263646566676869707172737475"
	                            "767778798081828384858687888990919293949596979899";
	char d[24];
	size_t k = sizeof(d);
	while (v >= 100) {
		size_t r = (size_t)(v % 100) * 2;
		v /= 100;
		d[--k] = pairs[r + 1];
		d[--k] = pairs[r];
	}
	if (v >= 10) {
		d[--k] = pairs[v * 2 + 1];
		d[--k] = pairs[v * 2];
	} else {
		d[--k] = (char)('0' + v);
	}
	while (k > 0 && (int)(sizeof(d) - k) < width)
		d[--k] = '0';
	while (k < sizeof(d)) /* a few bytes: a call to memcpy costs more */
		*p++ = d[k++];
	return p;
}

