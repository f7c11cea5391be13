/* main.c — the regfs-registry command line, shaped like registry:2's:
 *   regfs-registry serve [CONFIG]
 *   regfs-registry garbage-collect [--dry-run] [--delete-untagged] CONFIG
 *   regfs-registry --version | --help */
#include "gc.h"
#include "registry.h"
#include "server.h"

#include <regfs/log.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"regfs-registry %s — an OCI Distribution v1.1 registry, drop-in for registry:2\n"
		"\n"
		"Usage:\n"
		"  regfs-registry serve [CONFIG]\n"
		"      Serve the registry API. CONFIG is a registry:2 config.yml; without it,\n"
		"      filesystem storage in ./data and 127.0.0.1:5000.\n"
		"  regfs-registry garbage-collect [--dry-run] [--delete-untagged] CONFIG\n"
		"      Delete blobs no manifest references. -d/--dry-run lists them and deletes\n"
		"      nothing; -m/--delete-untagged first deletes manifests no tag reaches.\n"
		"  regfs-registry -v, --version\n"
		"  regfs-registry -h, --help\n"
		"\n"
		"Signals (serve): SIGHUP reloads CONFIG (log level and formatter, http.draintimeout;\n"
		"the log names what needs a restart); SIGTERM refuses new clients and lets requests\n"
		"in flight finish for up to http.draintimeout. Under systemd (Type=notify) it sends\n"
		"READY=1 once listening.\n"
		"\n"
		"Docs: regfs-registry(8), docs/registry.md (endpoints, layout, GC), docs/deploy.md.\n",
		REGFS_VERSION);
}

static int load_config(const char *path, struct regfs_config *cfg)
{
	struct regfs_err e = {0};
	if (!path) {
		regfs_config_defaults(cfg, "./data");
	} else {
		regfs_config_defaults(cfg, NULL);
		if (regfs_config_load(path, cfg, &e) != 0) {
			fprintf(stderr, "regfs-registry: configuration %s: %s\n", path, regfs_err_str(&e));
			return -1;
		}
	}
	regfs_log_set_level(cfg->log_level);
	regfs_log_set_json(cfg->log_json);
	if (regfs_log_set_fields((const char *const *)cfg->log_fields, cfg->n_log_fields))
		fprintf(stderr, "regfs-registry: log.fields: at most 32 fields (none added)\n");
	return 0;
}

static int cmd_serve(int argc, char **argv)
{
	if (argc > 3) {
		fprintf(stderr, "regfs-registry: serve takes at most one argument (CONFIG)\n");
		return 2;
	}
	struct regfs_config cfg;
	if (load_config(argc == 3 ? argv[2] : NULL, &cfg))
		return 1;
	struct regfs_err e = {0};
	int rc = server_run(&cfg, argc == 3 ? argv[2] : NULL, &e);
	if (rc)
		fprintf(stderr, "regfs-registry: %s\n", regfs_err_str(&e));
	regfs_config_free(&cfg);
	return rc ? 1 : 0;
}

static int cmd_gc(int argc, char **argv)
{
	struct gc_opts o = {0};
	const char *path = NULL;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--dry-run") || !strcmp(argv[i], "-d"))
			o.dry_run = true;
		else if (!strcmp(argv[i], "--delete-untagged") || !strcmp(argv[i], "-m"))
			o.delete_untagged = true;
		else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "regfs-registry: garbage-collect: unknown option %s "
				"(expected --dry-run, --delete-untagged)\n", argv[i]);
			return 2;
		} else if (!path)
			path = argv[i];
		else {
			fprintf(stderr, "regfs-registry: garbage-collect takes one CONFIG\n");
			return 2;
		}
	}
	if (!path) {
		fprintf(stderr, "regfs-registry: garbage-collect needs a CONFIG file "
			"(regfs-registry garbage-collect [--dry-run] [--delete-untagged] CONFIG)\n");
		return 2;
	}
	struct regfs_config cfg;
	if (load_config(path, &cfg))
		return 1;
	struct registry r;
	struct regfs_err e = {0};
	int rc = registry_open(&r, &cfg, &e);
	if (rc == 0) {
		struct gc_stats s;
		rc = gc_run(&r, &o, &s, &e);
	}
	if (rc)
		fprintf(stderr, "regfs-registry: garbage-collect: %s\n", regfs_err_str(&e));
	registry_close(&r);
	regfs_config_free(&cfg);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-v") || !strcmp(cmd, "version")) {
		printf("regfs-registry %s\n", REGFS_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "serve"))
		return cmd_serve(argc, argv);
	if (!strcmp(cmd, "garbage-collect"))
		return cmd_gc(argc, argv);
	fprintf(stderr, "regfs-registry: unknown command \"%s\" (expected serve, garbage-collect, "
		"--version, --help)\n", cmd);
	return 2;
}
