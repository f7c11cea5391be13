/* test_acl.c — the access rules (registry/acl.c) as read from a config.yml
 * (lib/config_access.c): the three examples of docs/config.md ("Access
 * control": CI pushes to the team/ repositories, app servers only pull, one
 * admin cleans up),
 * the longest glob, groups, anonymous actions, admins, the catalog, the
 * behaviour without rules, and the configuration errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include <regfs/config.h>

#include "acl.h"

#define PULL REGFS_ACT_PULL
#define PUSH REGFS_ACT_PUSH
#define DEL REGFS_ACT_DELETE

/* The example of docs/config.md, "Access control". */
static const char docs_example[] =
	"auth:\n"
	"  htpasswd:\n"
	"    realm: registry\n"
	"    path: /etc/regfs/htpasswd\n"
	"regfs:\n"
	"  admins: [ops-alice]\n"
	"  access:\n"
	"    groups:\n"
	"      ci: [ci-bot, jenkins]\n"
	"      appservers: [app1, app2]\n"
	"    catalog: [appservers]\n"
	"    rules:\n"
	"      - repository: \"team/*\"\n"
	"        groups: {ci: [pull, push], appservers: [pull]}\n"
	"      - repository: \"*\"\n"
	"        groups: {appservers: [pull]}\n"
	"      - repository: \"team/secret/*\"\n"
	"        users: {jenkins: [pull]}\n"
	"      - repository: \"public/*\"\n"
	"        anonymous: [pull]\n";

static void load(const char *yaml, struct regfs_config *c)
{
	struct regfs_err e = {0};
	regfs_config_defaults(c, NULL);
	int rc = regfs_config_parse(yaml, strlen(yaml), c, &e);
	if (rc)
		fail_msg("config: %s", regfs_err_str(&e));
}

static void test_ci_pushes_to_team(void **state)
{
	(void)state;
	struct regfs_config c;
	load(docs_example, &c);
	const struct regfs_access *ac = &c.access;
	assert_true(ac->set);
	assert_int_equal(acl_actions(ac, "ci-bot", "team/app"), PULL | PUSH);
	assert_int_equal(acl_actions(ac, "jenkins", "team/a/b/c"), PULL | PUSH); /* a star crosses / */
	assert_int_equal(acl_actions(ac, "ci-bot", "other/app") & PUSH, 0);
	assert_int_equal(acl_actions(ac, "ci-bot", "team/app") & DEL, 0);
	assert_int_equal(acl_actions(ac, "ci-bot", "teamx"), 0); /* "*" rule: not for ci */
	regfs_config_free(&c);
}

static void test_app_servers_only_pull(void **state)
{
	(void)state;
	struct regfs_config c;
	load(docs_example, &c);
	const struct regfs_access *ac = &c.access;
	assert_int_equal(acl_actions(ac, "app1", "team/app"), PULL);
	assert_int_equal(acl_actions(ac, "app2", "anything/else"), PULL);
	assert_int_equal(acl_actions(ac, "app1", "x"), PULL);
	assert_true(acl_catalog(ac, "app1"));
	regfs_config_free(&c);
}

static void test_admin_cleans_up(void **state)
{
	(void)state;
	struct regfs_config c;
	load(docs_example, &c);
	const struct regfs_access *ac = &c.access;
	assert_int_equal(acl_actions(ac, "ops-alice", "team/app"), PULL | PUSH | DEL);
	assert_int_equal(acl_actions(ac, "ops-alice", "team/secret/x"), PULL | PUSH | DEL);
	assert_int_equal(acl_actions(ac, "ops-alice", "nowhere"), PULL | PUSH | DEL);
	assert_true(acl_catalog(ac, "ops-alice"));
	assert_false(acl_catalog(ac, "ci-bot"));
	regfs_config_free(&c);
}

static void test_longest_glob_and_anonymous(void **state)
{
	(void)state;
	struct regfs_config c;
	load(docs_example, &c);
	const struct regfs_access *ac = &c.access;
	/* the team/secret/ glob is longer than the team/ one: only jenkins, only pull */
	assert_string_equal(acl_rule_for(ac, "team/secret/x")->repository, "team/secret/*");
	assert_int_equal(acl_actions(ac, "ci-bot", "team/secret/x"), 0);
	assert_int_equal(acl_actions(ac, "jenkins", "team/secret/x"), PULL);
	assert_int_equal(acl_actions(ac, "app1", "team/secret/x"), 0);
	/* anonymous pull under public/, for everyone; nothing elsewhere */
	assert_int_equal(acl_actions(ac, "", "public/tool"), PULL);
	assert_int_equal(acl_actions(ac, "ci-bot", "public/tool"), PULL);
	assert_int_equal(acl_actions(ac, "", "team/app"), 0);
	assert_false(acl_catalog(ac, ""));
	/* an unknown user gets what anonymous gets */
	assert_int_equal(acl_actions(ac, "mallory", "public/tool"), PULL);
	assert_int_equal(acl_actions(ac, "mallory", "team/app"), 0);
	regfs_config_free(&c);
}

static void test_no_rules(void **state)
{
	(void)state;
	struct regfs_config c;
	load("auth:\n  htpasswd:\n    path: /p\n", &c);
	assert_string_equal(c.htpasswd.path, "/p");
	assert_null(c.htpasswd.realm); /* the backend's default applies */
	assert_int_equal(c.auth_maxfailures, 10);
	assert_false(c.access.set);
	assert_int_equal(acl_actions(&c.access, "anyone", "a/b"), PULL | PUSH | DEL);
	assert_int_equal(acl_actions(&c.access, "", "a/b"), 0);
	assert_true(acl_catalog(&c.access, "anyone"));
	assert_false(acl_catalog(&c.access, ""));
	regfs_config_free(&c);
	/* rules present, none matching: nothing but for admins */
	load("regfs:\n  admins: root\n  access:\n    rules:\n      - repository: a\n"
	     "        users: {u: \"*\"}\n    catalog: [anonymous]\n", &c);
	assert_int_equal(acl_actions(&c.access, "u", "a"), PULL | PUSH | DEL);
	assert_int_equal(acl_actions(&c.access, "u", "ab"), 0);
	assert_int_equal(acl_actions(&c.access, "root", "ab"), PULL | PUSH | DEL);
	assert_true(acl_catalog(&c.access, "")); /* "anonymous" in the catalog list */
	regfs_config_free(&c);
}

static void refused(const char *yaml, const char *want)
{
	struct regfs_config c;
	struct regfs_err e = {0};
	regfs_config_defaults(&c, NULL);
	assert_int_equal(regfs_config_parse(yaml, strlen(yaml), &c, &e), -EINVAL);
	if (!strstr(regfs_err_str(&e), want))
		fail_msg("error \"%s\" does not say \"%s\"", regfs_err_str(&e), want);
	regfs_config_free(&c);
}

static void test_errors(void **state)
{
	(void)state;
	refused("regfs:\n  access:\n    rules:\n      - repository: a\n        groups: {nope: [pull]}\n",
		"group \"nope\" is not defined");
	refused("regfs:\n  access:\n    rules:\n      - repository: a\n        users: {u: [pul]}\n",
		"unknown action \"pul\"");
	refused("regfs:\n  access:\n    rules:\n      - users: {u: [pull]}\n", "a repository");
	refused("regfs:\n  access:\n    rules:\n      - repository: a\n      - repository: a\n",
		"has a rule already");
	refused("regfs:\n  access:\n    rule: []\n", "regfs.access.rule: unknown key");
	refused("regfs:\n  access:\n    rules:\n      - repository: a\n        anonymus: [pull]\n",
		"unknown key");
	refused("regfs:\n  admins: {a: b}\n", "regfs.admins");
	refused("regfs:\n  access: [a]\n", "regfs.access");
	refused("auth:\n  silly:\n    realm: x\n", "auth.silly");
}

static void test_copy(void **state)
{
	(void)state;
	struct regfs_config c;
	load(docs_example, &c);
	struct regfs_access cp;
	assert_int_equal(regfs_access_copy(&cp, &c.access), 0);
	regfs_config_free(&c); /* the copy stands alone */
	assert_int_equal(acl_actions(&cp, "ci-bot", "team/app"), PULL | PUSH);
	assert_int_equal(acl_actions(&cp, "jenkins", "team/secret/x"), PULL);
	assert_true(acl_catalog(&cp, "app2"));
	regfs_access_free(&cp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ci_pushes_to_team),
		cmocka_unit_test(test_app_servers_only_pull),
		cmocka_unit_test(test_admin_cleans_up),
		cmocka_unit_test(test_longest_glob_and_anonymous),
		cmocka_unit_test(test_no_rules),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
