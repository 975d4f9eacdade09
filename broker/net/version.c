/* SPDX-License-Identifier: Apache-2.0 */
/*
 * version.c — the tools' --version (net.h): BUS_VERSION, and the git
 * describe of the checkout the build ran in (scripts/gen-version.sh).
 */
#include "bus/net.h"
#include "bus_version.h"

#include <stdio.h>

const char *bus_version_describe(void)
{
	return BUS_GIT_DESCRIBE;
}

void bus_version_print(FILE *f, const char *prog)
{
	const char *git = bus_version_describe();
	fprintf(f, "%s %s%s%s%s\nBUS/RT protocol %d\n", prog, BUS_VERSION,
	        *git ? " (git " : "", git, *git ? ")" : "",
	        BUS_PROTOCOL_VERSION);
}
