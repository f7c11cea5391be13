/* fuzz_config.c — libFuzzer target: regfs_config_parse (lib/config.c) on
 * arbitrary YAML, on top of the defaults, then regfs_config_free: never a
 * crash, never a leak (ASan's leak check runs at exit and with
 * -detect_leaks), whether the parse succeeds or fails half way. A refusal
 * must say why. The environment overrides are cleared so that the outcome
 * depends on the input only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "regfs/config.h"
#include "regfs/log.h"

extern char **environ;

static void clear_regfs_env(void)
{
	/* REGISTRY_* and REGFS_* variables override keys: drop them once */
	for (int again = 1; again;) {
		again = 0;
		for (char **e = environ; e && *e; e++) {
			if (!strncmp(*e, "REGISTRY_", 9) || !strncmp(*e, "REGFS_", 6)) {
				char name[256];
				size_t n = strcspn(*e, "=");
				if (n >= sizeof name)
					continue;
				memcpy(name, *e, n);
				name[n] = '\0';
				unsetenv(name);
				again = 1;
				break;
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int once;
	if (!once++) {
		regfs_log_set_level(REGFS_LOG_ERROR);
		clear_regfs_env();
	}
	struct regfs_config cfg;
	struct regfs_err err = {0};
	regfs_config_defaults(&cfg, "/nonexistent/regfs-fuzz");
	int rc = regfs_config_parse((const char *)data, size, &cfg, &err);
	if (rc > 0 || (rc < 0 && !regfs_err_str(&err)[0]))
		abort();
	regfs_config_free(&cfg);
	return 0;
}
