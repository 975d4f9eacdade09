/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config — the YAML configuration loader (libyaml underneath), for both
 * deployments. Properties: an accepted file gives a configuration the core
 * accepts; a refused one gives a message naming the file.
 */
#include "fuzz.h"
#include "bus/config.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	for (int embedded = 0; embedded < 2; embedded++) {
		struct bus_file_config cfg;
		bus_config_defaults(&cfg, embedded);
		char err[512] = "";
		int rc = bus_config_parse((const char *)data, size, "fuzz.yaml",
		                          &cfg, err, sizeof(err));
		if (rc == 0) {
			const char *what;
			FUZZ_CHECK(bus_core_config_check(&cfg.core, &what) == 0,
			           "accepted an inconsistent config: %s", what);
			FUZZ_CHECK(memchr(cfg.socket_path, 0,
			                  sizeof(cfg.socket_path)) != NULL,
			           "socket path not terminated");
			/* the ACL section: built, then asked as the core would */
			if (bus_config_finish(&cfg, err, sizeof(err)) == 0 &&
			    cfg.core.acl) {
				static const struct bus_ident ids[2] = {
				    {.cred = true, .uid = 0},
				    {.cred = true, .uid = 65534, .gid = 65534,
				     .family = 0}};
				static const char *const names[] = {
				    "daemoneye-agent", "collector.process.p1",
				    "monitor.x", "x"};
				for (int i = 0; i < 2; i++)
					for (int n = 0; n < 4; n++) {
						const struct bus_acl_rule *r = bus_acl_find(
						    cfg.core.acl, &ids[i], names[n],
						    strlen(names[n]));
						if (!r)
							continue;
						FUZZ_CHECK(memchr(r->label, 0,
						                  sizeof(r->label)),
						           "label not terminated");
						for (int k = 0; k < BUS_ACL_KINDS; k++)
							(void)bus_acl_allows(
							    r, (enum bus_acl_kind)k,
							    names[n], strlen(names[n]),
							    "events/process/x", 16);
					}
			}
		} else {
			FUZZ_CHECK(rc == BUS_ECONFIG, "rc %d", rc);
			FUZZ_CHECK(strncmp(err, "fuzz.yaml", 9) == 0,
			           "message without the file name: %s", err);
		}
		bus_config_free(&cfg);
	}
	return 0;
}
