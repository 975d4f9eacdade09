/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proto — every protobuf message of proto/daemoneye.proto through bounded
 * decoding. Input: a byte choosing the message type, then the encoding.
 * Property: what unpacks packs again, and that packing unpacks to a
 * message that packs to the very same bytes (a stable round trip).
 */
#include "fuzz.h"
#include "bus/pb.h"

#include <string.h>

static const ProtobufCMessageDescriptor *const types[] = {
	&daemoneye__busrt_event__descriptor,
	&daemoneye__event_correlation__descriptor,
	&daemoneye__process_event__descriptor,
	&daemoneye__process_record__descriptor,
	&daemoneye__collector_config__descriptor,
	&daemoneye__collector_status__descriptor,
	&daemoneye__start_collector_request__descriptor,
	&daemoneye__start_collector_response__descriptor,
	&daemoneye__stop_collector_request__descriptor,
	&daemoneye__stop_collector_response__descriptor,
	&daemoneye__restart_collector_request__descriptor,
	&daemoneye__restart_collector_response__descriptor,
	&daemoneye__collector_status_request__descriptor,
	&daemoneye__collector_status_response__descriptor,
	&daemoneye__health_check_request__descriptor,
	&daemoneye__health_check_response__descriptor,
	&daemoneye__heartbeat_request__descriptor,
	&daemoneye__heartbeat_response__descriptor,
	&daemoneye__metrics_request__descriptor,
	&daemoneye__metrics_response__descriptor,
	&daemoneye__config_validation_error__descriptor,
	&daemoneye__update_config_request__descriptor,
	&daemoneye__update_config_response__descriptor,
	&daemoneye__get_config_request__descriptor,
	&daemoneye__get_config_response__descriptor,
	&daemoneye__validate_config_request__descriptor,
	&daemoneye__validate_config_response__descriptor,
	&daemoneye__resync_request__descriptor,
	&daemoneye__resync_response__descriptor,
	&daemoneye__collector_capabilities__descriptor,
	&daemoneye__agent_shutdown__descriptor,
	&daemoneye__collector_shutdown__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 64 * 1024)
		return 0;
	const ProtobufCMessageDescriptor *d =
	        types[data[0] % (sizeof(types) / sizeof(types[0]))];
	ProtobufCMessage *m = bus_pb_unpack(d, data + 1, size - 1, 1 << 20);
	if (!m)
		return 0;
	size_t n1, n2;
	uint8_t *p1 = bus_pb_pack(m, &n1);
	FUZZ_CHECK(p1, "pack");
	ProtobufCMessage *m2 = bus_pb_unpack(d, p1, n1, 1 << 22);
	FUZZ_CHECK(m2, "our own packing did not unpack (%zu bytes)", n1);
	uint8_t *p2 = bus_pb_pack(m2, &n2);
	FUZZ_CHECK(p2 && n1 == n2 && !memcmp(p1, p2, n1),
	           "the round trip is not stable (%zu vs %zu bytes)", n1, n2);
	free(p1);
	free(p2);
	bus_pb_free(m);
	bus_pb_free(m2);
	return 0;
}
