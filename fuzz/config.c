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
		} else {
			FUZZ_CHECK(rc == BUS_ECONFIG, "rc %d", rc);
			FUZZ_CHECK(strncmp(err, "fuzz.yaml", 9) == 0,
			           "message without the file name: %s", err);
		}
	}
	return 0;
}
