/* Unit tests for fs/options.c: every option of the table in its --name and
 * -o forms, defaults, fstab words, values refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "options.h"

/* Parses a NULL-terminated argv (after "regfs") into c; 0 or -1. */
static int parse(struct cli *c, const char *const *args)
{
	char *argv[64];
	int argc = 0;
	argv[argc++] = "regfs";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	optind = 0; /* glibc: start over */
	*c = (struct cli){0};
	const char *url = NULL, *mnt = NULL;
	int rc = cli_parse(argc, argv, c, &url, &mnt);
	if (rc == 0) {
		assert_string_equal(url, "URL");
		assert_string_equal(mnt, "MNT");
	}
	return rc;
}

static void test_defaults(void **state)
{
	(void)state;
	struct cli c;
	assert_int_equal(parse(&c, (const char *[]){"URL", "MNT", NULL}), 0);
	assert_true(c.o.ttl == 10);
	assert_int_equal(c.o.timeout_s, 10);
	assert_int_equal(c.o.max_parallel, 16);
	assert_true(c.o.cache_size == 1ull << 30);
	assert_true(c.o.memory_bytes == 256ull << 20);
	assert_false(c.o.foreground || c.o.debug || c.o.insecure || c.o.ro || c.force_remount);
	assert_null(c.o.user);
	assert_null(c.o.cache_dir);
	assert_null(c.o.fuse_opts);
	assert_null(c.log_file);
	cli_free(&c);
}

/* What a command line setting every option is expected to give. */
struct want {
	const char *user, *pass, *ca_cert, *cache_dir, *protect, *log_file;
	double ttl;
	int timeout_s, max_parallel;
	uint64_t cache_size;
};

static void check_all_set(const struct cli *c, const struct want *w)
{
	assert_true(c->o.foreground && c->o.debug && c->o.insecure && c->force_remount);
	assert_string_equal(c->o.user, w->user);
	if (w->pass)
		assert_string_equal(c->o.pass, w->pass);
	else
		assert_null(c->o.pass);
	assert_string_equal(c->o.ca_cert, w->ca_cert);
	assert_true(c->o.ttl == w->ttl);
	assert_int_equal(c->o.timeout_s, w->timeout_s);
	assert_string_equal(c->o.cache_dir, w->cache_dir);
	assert_true(c->o.cache_size == w->cache_size);
	assert_int_equal(c->o.max_parallel, w->max_parallel);
	assert_string_equal(c->o.protect, w->protect);
	assert_string_equal(c->log_file, w->log_file);
}

static void test_long_forms(void **state)
{
	(void)state;
	struct cli c;
	assert_int_equal(parse(&c, (const char *[]){"-f", "-d", "--user", "bob:s3:cret",
		"--ca-cert", "/ca.pem", "--insecure", "--ttl", "2.5", "--timeout", "7",
		"--cache-dir", "/c", "--cache-size", "512M", "--max-parallel", "256",
		"--protect", "latest,v*", "--log-file", "/l", "--force-remount", "-s",
		"URL", "MNT", NULL}), 0);
	check_all_set(&c, &(struct want){"bob", "s3:cret", "/ca.pem", "/c", "latest,v*", "/l",
					  2.5, 7, 256, 512ull << 20});
	cli_free(&c);
}

static void test_o_forms(void **state)
{
	(void)state;
	struct cli c;
	assert_int_equal(parse(&c, (const char *[]){"URL", "MNT", "-o",
		"defaults,user,_netdev,x-systemd.automount,comment=x,username=al,ca_cert=/a,"
		"insecure,ttl=0,timeout=1,cache_dir=/d,cache_size=2GiB,max_parallel=1,"
		"protect=a:b,log_file=/f,force_remount,debug,foreground,allow_other,ro",
		NULL}), 0);
	check_all_set(&c, &(struct want){"al", NULL, "/a", "/d", "a:b", "/f", 0, 1, 1, 2ull << 30});
	/* Only FUSE's own options are passed on; fstab's words are dropped. */
	assert_string_equal(c.o.fuse_opts, "allow_other,ro");
	assert_true(c.o.ro);
	cli_free(&c);
	/* The dashed names work in -o too. */
	assert_int_equal(parse(&c, (const char *[]){"-o", "cache-size=0,max-parallel=3", "URL",
		"MNT", NULL}), 0);
	assert_true(c.o.cache_size == 0);
	assert_int_equal(c.o.max_parallel, 3);
	cli_free(&c);
	assert_int_equal(parse(&c, (const char *[]){"--memory", "64M", "-o", "memory=1G",
		"URL", "MNT", NULL}), 0);
	assert_true(c.o.memory_bytes == 1ull << 30);
	cli_free(&c);
	assert_int_equal(parse(&c, (const char *[]){"--memory", "16M", "URL", "MNT", NULL}), 0);
	assert_true(c.o.memory_bytes == 16ull << 20);
	cli_free(&c);
}

static void test_refused(void **state)
{
	(void)state;
	static const char *const bad[][4] = {
		{"--ttl", "-1"}, {"--ttl", "x"}, {"--timeout", "0"}, {"--timeout", "1s"},
		{"--cache-size", "5X"}, {"--cache-size", "-1"}, {"--max-parallel", "0"},
		{"--max-parallel", "257"}, {"--memory", "0"}, {"--memory", "15M"},
		{"--memory", "1Q"}, {"-o", "memory"}, {"-o", "ttl"}, {"-o", "cache_dir"},
		{"-o", "max_parallel=300"}, {"--no-such-option"}, {"--user"},
		/* a password in fstab: refused, password_file= is the way */
		{"-o", "user=a,password=secret"}, {"-o", "pass=secret"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *args[6] = {bad[i][0], bad[i][1], "URL", "MNT", NULL};
		if (!bad[i][1]) {
			args[1] = "URL";
			args[2] = "MNT";
			args[3] = NULL;
		}
		struct cli c;
		assert_int_equal(parse(&c, args), -1);
		cli_free(&c);
	}
	struct cli c;
	assert_int_equal(parse(&c, (const char *[]){"URL", NULL}), -1);
	cli_free(&c);
}

/* The TLS and password-file rows, in both forms. */
static void test_tls_and_password_file(void **state)
{
	(void)state;
	struct cli c;
	assert_int_equal(parse(&c, (const char *[]){"--client-cert", "c.pem", "--client-key", "k.pem",
					       "--password-file", "pw", "URL", "MNT", NULL}), 0);
	assert_string_equal(c.o.client_cert, "c.pem");
	assert_string_equal(c.o.client_key, "k.pem");
	assert_string_equal(c.o.password_file, "pw");
	cli_free(&c);
	assert_int_equal(parse(&c, (const char *[]){"-o", "client_cert=c,client_key=k,password_file=-",
					       "URL", "MNT", NULL}), 0);
	assert_string_equal(c.o.client_cert, "c");
	assert_string_equal(c.o.client_key, "k");
	assert_string_equal(c.o.password_file, "-");
	assert_null(c.o.fuse_opts);
	cli_free(&c);
	/* --password-file without --user, or with a password given twice */
	assert_int_equal(parse(&c, (const char *[]){"--password-file", "pw", "URL", "MNT", NULL}), 0);
	assert_int_equal(cli_password(&c), -1);
	cli_free(&c);
	assert_int_equal(parse(&c, (const char *[]){"--user", "a:b", "--password-file", "pw", "URL",
					       "MNT", NULL}), 0);
	assert_int_equal(cli_password(&c), -1);
	cli_free(&c);
}

/* argv_hide_password rewrites the strings in place: what ps shows. */
static void test_hide_password(void **state)
{
	(void)state;
	char a0[] = "regfs", a1[] = "--user", a2[] = "alice:s3cret", a3[] = "-o",
	     a4[] = "ro,user=alice:s3cret,ttl=3", a5[] = "--user=bob:pw", a6[] = "s3cret";
	char *argv[] = {a0, a1, a2, a3, a4, a5, a6, NULL};
	argv_hide_password(7, argv, "s3cret");
	assert_string_equal(a2, "alice:***");
	assert_memory_equal(a2 + 9, "\0\0\0\0", 4); /* the freed tail is zeroed */
	assert_string_equal(a4, "ro,user=alice:***,ttl=3");
	assert_string_equal(a5, "--user=bob:pw");
	assert_string_equal(a6, "s3cret"); /* not after a ':': not the password's place */
	argv_hide_password(7, argv, "pw"); /* shorter than the mask: as many stars */
	assert_string_equal(a5, "--user=bob:**");
	argv_hide_password(7, argv, "");
	assert_string_equal(a2, "alice:***");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_long_forms),
		cmocka_unit_test(test_o_forms),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_tls_and_password_file),
		cmocka_unit_test(test_hide_password),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
