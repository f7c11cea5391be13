/* test_lifecycle.c — regfs-registry's signal-time configuration
 * (registry/lifecycle.c): http.draintimeout as the config reader gives it (and
 * its environment override, with errors naming the key); the SIGHUP reload
 * applying the log level and the drain timeout, and changing nothing when the
 * file no longer loads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lifecycle.h"

static char path[64];

static void write_cfg(const char *yaml)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(yaml, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof path, "/tmp/test_lifecycle.%d.yml", (int)getpid());
	unsetenv("REGISTRY_HTTP_DRAINTIMEOUT");
	unsetenv("REGISTRY_LOG_LEVEL");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	unsetenv("REGISTRY_HTTP_DRAINTIMEOUT");
	return 0;
}

/* http.draintimeout through the one config reader (regfs_config_load). */
static int load_drain(int64_t *s, struct regfs_err *e)
{
	struct regfs_config c;
	regfs_config_defaults(&c, NULL);
	int rc = regfs_config_load(path, &c, e);
	*s = c.http_drain_s;
	regfs_config_free(&c);
	return rc;
}

static void drain_values(void **state)
{
	(void)state;
	struct regfs_err e = {0};
	int64_t s = -1;
	write_cfg("version: 0.1\nhttp:\n  addr: :5000\n");
	assert_int_equal(load_drain(&s, &e), 0);
	assert_int_equal(s, 5); /* our default: requests in flight get 5 s */
	write_cfg("http:\n  draintimeout: 1m30s\n");
	assert_int_equal(load_drain(&s, &e), 0);
	assert_int_equal(s, 90);
	write_cfg("http:\n  draintimeout: 0s\n");
	assert_int_equal(load_drain(&s, &e), 0);
	assert_int_equal(s, 0); /* registry:2's behaviour, when asked for */
	setenv("REGISTRY_HTTP_DRAINTIMEOUT", "7s", 1);
	assert_int_equal(load_drain(&s, &e), 0);
	assert_int_equal(s, 7); /* the environment wins, as for every key */
}

static void drain_errors(void **state)
{
	(void)state;
	struct regfs_err e = {0};
	int64_t s;
	write_cfg("version: 0.1\nhttp:\n  draintimeout: soon\n");
	assert_int_equal(load_drain(&s, &e), -EINVAL);
	assert_non_null(strstr(regfs_err_str(&e), "draintimeout"));
	assert_non_null(strstr(regfs_err_str(&e), "line 3"));
	setenv("REGISTRY_HTTP_DRAINTIMEOUT", "-3s", 1);
	write_cfg("http: {}\n");
	e = (struct regfs_err){0};
	assert_int_equal(load_drain(&s, &e), -EINVAL);
	assert_non_null(strstr(regfs_err_str(&e), "REGISTRY_HTTP_DRAINTIMEOUT"));
}

static void reload_applies_safe_keys(void **state)
{
	(void)state;
	struct regfs_config run;
	struct regfs_err e = {0};
	write_cfg("log:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: /tmp/a\n"
		  "http:\n  addr: :5000\n");
	regfs_config_defaults(&run, NULL);
	assert_int_equal(regfs_config_load(path, &run, &e), 0);
	write_cfg("log:\n  level: debug\nstorage:\n  filesystem:\n    rootdirectory: /tmp/b\n"
		  "http:\n  addr: :6000\n  draintimeout: 20s\n");
	lifecycle_reload(path, &run, NULL);
	assert_int_equal(run.log_level, REGFS_LOG_DEBUG);
	assert_int_equal(regfs_log_get_level(), REGFS_LOG_DEBUG);
	assert_int_equal(run.http_drain_s, 20);
	/* a restart applies these: the running description keeps the old ones */
	assert_string_equal(run.http_addr, ":5000");
	assert_string_equal(run.fs_rootdirectory, "/tmp/a");

	write_cfg("log: [unclosed\n");
	lifecycle_reload(path, &run, NULL);
	assert_int_equal(run.log_level, REGFS_LOG_DEBUG);
	assert_int_equal(run.http_drain_s, 20);
	lifecycle_reload(NULL, &run, NULL); /* no file: nothing to do */
	assert_int_equal(run.http_drain_s, 20);
	regfs_config_free(&run);
	regfs_log_set_level(REGFS_LOG_WARN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(drain_values, setup, teardown),
		cmocka_unit_test_setup_teardown(drain_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(reload_applies_safe_keys, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
