/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pbtext.c — protobuf messages for people (pb.h): any message as JSON, and
 * a message built from key=value pairs, both driven by protobuf-c's
 * descriptors, so every message of proto/ works without per-message code.
 * busrt-cli --proto uses them.
 */
#include "bus/bus.h"
#include "bus/json.h"
#include "bus/pb.h"

#include <errno.h>
#include <jansson.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH_MAX 16

static json_t *value_json(const ProtobufCFieldDescriptor *fd, const void *p,
                          unsigned depth);

/* The size of one element of a repeated field of fd's type. */
static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_MESSAGE:
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_DOUBLE:
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

/* A repeated field: an array, or for a map (protoc's KeyEntry message of
 * key and value) an object, where a key given twice keeps the last value,
 * as protobuf's own parsers do. */
static json_t *repeated_json(const ProtobufCFieldDescriptor *fd,
                             const char *base, unsigned depth)
{
	size_t n = *(const size_t *)(base + fd->quantifier_offset);
	const char *arr = *(const char *const *)(base + fd->offset);
	const ProtobufCMessageDescriptor *sub = fd->descriptor;
	bool map = fd->type == PROTOBUF_C_TYPE_MESSAGE && sub &&
	           sub->n_fields == 2 && !strcmp(sub->fields[0].name, "key") &&
	           strstr(sub->name, "Entry");
	json_t *j = map ? json_object() : json_array();
	size_t sz = elem_size(fd->type);
	int bad = !j;
	for (size_t k = 0; k < n && !bad; k++) {
		if (!map) {
			bad = json_array_append_new(j, value_json(fd, arr + k * sz,
			                                          depth));
			continue;
		}
		const char *e = ((const char *const *)arr)[k];
		/* a key of another type than string is its JSON text */
		bad = bus_json_set_any(
			j,
			value_json(&sub->fields[0], e + sub->fields[0].offset,
			           depth + 1),
			value_json(&sub->fields[1], e + sub->fields[1].offset,
			           depth + 1));
	}
	if (bad) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static json_t *msg_json(const ProtobufCMessage *m, unsigned depth)
{
	if (!m || depth > DEPTH_MAX)
		return json_null();
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	json_t *o = json_object();
	int bad = !o;
	for (unsigned i = 0; i < d->n_fields && !bad; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
			continue;
		bad = json_object_set_new(
			o, fd->name,
			fd->label == PROTOBUF_C_LABEL_REPEATED
				? repeated_json(fd, base, depth)
				: value_json(fd, base + fd->offset, depth));
	}
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *value_json(const ProtobufCFieldDescriptor *fd, const void *p,
                          unsigned depth)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return json_integer(*(const int64_t *)p);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return bus_json_u64(*(const uint64_t *)p);
	case PROTOBUF_C_TYPE_FLOAT:
		return bus_json_real(*(const float *)p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return bus_json_real(*(const double *)p);
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev =
			protobuf_c_enum_descriptor_get_value(fd->descriptor, v);
		return ev ? json_string(ev->name) : json_integer(v);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)p;
		return bus_json_string(s ? s : "", s ? strlen(s) : 0);
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		return bus_json_hex(b->data, b->len);
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		return msg_json(*(const ProtobufCMessage *const *)p, depth + 1);
	}
	return json_null();
}

json_t *bus_pb_json_value(const ProtobufCMessage *m)
{
	return msg_json(m, 0);
}

int bus_pb_json(FILE *f, const ProtobufCMessage *m)
{
	json_t *j = msg_json(m, 0);
	int rc = bus_json_dump(f, j);
	json_decref(j);
	return rc;
}

/* ---- key=value ---------------------------------------------------------------------- */
ProtobufCMessage *bus_pb_new(const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = malloc(d->sizeof_message);
	if (m)
		protobuf_c_message_init(d, m);
	return m;
}

static int set_scalar(const ProtobufCFieldDescriptor *fd, void *p,
                      const char *v, char *err, size_t errlen)
{
	char *end = NULL;
	errno = 0;
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32: {
		long long x = strtoll(v, &end, 10);
		if (*v && !*end && !errno && x >= INT32_MIN && x <= INT32_MAX)
			return *(int32_t *)p = (int32_t)x, 0;
		break;
	}
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: {
		unsigned long long x = strtoull(v, &end, 10);
		if (*v && *v != '-' && !*end && !errno && x <= UINT32_MAX)
			return *(uint32_t *)p = (uint32_t)x, 0;
		break;
	}
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: {
		long long x = strtoll(v, &end, 10);
		if (*v && !*end && !errno)
			return *(int64_t *)p = x, 0;
		break;
	}
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: {
		unsigned long long x = strtoull(v, &end, 10);
		if (*v && *v != '-' && !*end && !errno)
			return *(uint64_t *)p = x, 0;
		break;
	}
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE: {
		double x = strtod(v, &end);
		if (*v && !*end && !errno) {
			if (fd->type == PROTOBUF_C_TYPE_FLOAT)
				*(float *)p = (float)x;
			else
				*(double *)p = x;
			return 0;
		}
		break;
	}
	case PROTOBUF_C_TYPE_BOOL:
		if (!strcmp(v, "true") || !strcmp(v, "false"))
			return *(protobuf_c_boolean *)p = v[0] == 't', 0;
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev =
			protobuf_c_enum_descriptor_get_value_by_name(
				fd->descriptor, v);
		if (ev)
			return *(int *)p = ev->value, 0;
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		char *s = strdup(v);
		if (!s)
			break;
		char **slot = p;
		if (*slot && *slot != fd->default_value)
			free(*slot);
		*slot = s;
		return 0;
	}
	default:
		break;
	}
	snprintf(err, errlen, "%s: '%s' is not a valid %s", fd->name, v,
	         fd->type == PROTOBUF_C_TYPE_ENUM ? "name of the enum"
	         : fd->type == PROTOBUF_C_TYPE_BOOL ? "true or false"
	         : fd->type == PROTOBUF_C_TYPE_STRING ? "string"
	                                             : "number of this field");
	return BUS_EINVAL;
}

int bus_pb_set(ProtobufCMessage *m, const char *key, const char *value,
               char *err, size_t errlen)
{
	char name[128];
	const char *dot = strchr(key, '.');
	size_t n = dot ? (size_t)(dot - key) : strlen(key);
	if (n == 0 || n >= sizeof(name)) {
		snprintf(err, errlen, "'%s': bad field name", key);
		return BUS_EINVAL;
	}
	memcpy(name, key, n);
	name[n] = 0;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const ProtobufCFieldDescriptor *fd =
		protobuf_c_message_descriptor_get_field_by_name(d, name);
	if (!fd) {
		snprintf(err, errlen, "%s has no field '%s'", d->name, name);
		return BUS_EINVAL;
	}
	char *base = (char *)m;
	if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
		if (fd->type != PROTOBUF_C_TYPE_STRING || dot) {
			snprintf(err, errlen, "%s: only repeated strings can be "
			                      "given as key=value (use --raw)",
			         fd->name);
			return BUS_EINVAL;
		}
		size_t *count = (size_t *)(base + fd->quantifier_offset);
		char ***arr = (char ***)(base + fd->offset);
		char **grown = realloc(*arr, (*count + 1) * sizeof(char *));
		char *s = strdup(value);
		if (!grown || !s) {
			free(s);
			if (grown)
				*arr = grown;
			snprintf(err, errlen, "out of memory");
			return BUS_ENOMEM;
		}
		*arr = grown;
		grown[(*count)++] = s;
		return 0;
	}
	if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		*(uint32_t *)(base + fd->quantifier_offset) = fd->id;
	if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
		ProtobufCMessage **sub = (ProtobufCMessage **)(base + fd->offset);
		if (!dot) {
			snprintf(err, errlen, "%s is a message: give %s.FIELD=VALUE",
			         fd->name, fd->name);
			return BUS_EINVAL;
		}
		if (!*sub && !(*sub = bus_pb_new(fd->descriptor))) {
			snprintf(err, errlen, "out of memory");
			return BUS_ENOMEM;
		}
		return bus_pb_set(*sub, dot + 1, value, err, errlen);
	}
	if (dot) {
		snprintf(err, errlen, "%s is not a message", fd->name);
		return BUS_EINVAL;
	}
	return set_scalar(fd, base + fd->offset, value, err, errlen);
}
