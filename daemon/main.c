/*
 * main.c - the command line (ladderd(8)) and worker-mode dispatch:
 *
 *   ladderd [-c FILE] [-v] [--allow-root]  the daemon (foreground)
 *   ladderd run [-c FILE] INPUT [-o DIR] [--task-id ID] [-p PROFILE] [--replace]
 *   ladderd status [-c FILE] [ID...] [--json]  tasks, or one task (operator.c)
 *   ladderd cancel [-c FILE] ID             stop a queued or running task
 *   ladderd retry [-c FILE] ID              queue a failed task again
 *   ladderd check-config [-c FILE]         validate, load every stage, print
 *   ladderd settings [-c FILE] [--json|--man]  the settings stages declare
 *   ladderd stage [-c FILE] NAME CTX.json  run one stage on a context file
 *   ladderd job [-c FILE] TASKDIR [fetch]  worker: one task (internal)
 *   ladderd rung WORKDIR RUNG              worker: one rung (internal)
 *   ladderd notify [-c FILE]               worker: webhook outbox (internal)
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chord.h"
#include "cli.h"
#include "conf.h"
#include "ctx.h"
#include "exe.h"
#include "exitcode.h"
#include "fsutil.h"
#include "host.h"
#include "job.h"
#include "log.h"
#include "operator.h"
#include "plugin.h"
#include "run.h"
#include "runner.h"
#include "rung.h"
#include "settings.h"
#include "supervisor.h"


static const char *const usage_lines[] = {
	"ladderd [-c FILE] [-v] [--allow-root]",
	"ladderd run [-c FILE] INPUT [-o DIR] [--task-id ID] [-p PROFILE] "
	"[--replace] [-v]",
	"ladderd status [-c FILE] [ID...] [--json]",
	"ladderd cancel [-c FILE] ID",
	"ladderd retry [-c FILE] ID",
	"ladderd check-config [-c FILE]",
	"ladderd settings [-c FILE] [--json | --man]",
	"ladderd stage [-c FILE] NAME CONTEXT.json",
	"ladderd notify [-c FILE] [-v]",
	"ladderd --version",
	NULL,
};

/*
 * The usage of every command, or of `cmd` alone when it is one of them;
 * on stdout when asked for (--help), else on stderr.
 */
static void
usage_of(FILE *fp, const char *cmd)
{
	size_t n = cmd ? strlen(cmd) : 0;
	int shown = 0;

	for (int i = 0; cmd && usage_lines[i]; i++)
		if (strncmp(usage_lines[i] + 8, cmd, n) == 0 &&
		    usage_lines[i][8 + n] == ' ')
			shown = fprintf(fp, "usage: %s\n", usage_lines[i]) > 0;
	for (int i = 0; !shown && usage_lines[i]; i++)
		fprintf(fp, "%s%s\n", i ? "       " : "usage: ", usage_lines[i]);
	if (fp == stdout)
		fprintf(fp, "See ladderd(8), ladderd.conf(5) and "
			    "ladderd-stages(7).\n");
}

static void
usage(void)
{
	usage_of(stderr, NULL);
}

/*
 * `ladderd COMMAND ... --help` (or -h) before any "--": that command's
 * usage on stdout, exit 0, whatever else the line says.
 */
static int
asks_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0)
			return 1;
	return 0;
}

/*
 * The config the command line names (ladderd_cli_conf), with the stages'
 * groups checked against the settings the stages declare, loaded here;
 * *decls keeps those declarations. NULL after saying why.
 */
static struct ladderd_conf *
load_checked(const char *file, cJSON **decls)
{
	struct ladderd_conf *c = ladderd_cli_conf(file);
	char err[2048];

	if (c != NULL &&
	    (ladderd_settings_collect(c, false, decls, err, sizeof(err)) < 0 ||
		ladderd_conf_check_settings(c, *decls, err, sizeof(err)) < 0)) {
		fprintf(stderr, "ladderd: %s\n", err);
		ladderd_conf_free(c);
		return NULL;
	}
	return c;
}

/*
 * check-config's part on runners: each runner the config or a profile
 * names must answer (the Slurm runner: srun, sinfo, the partition), and
 * with Slurm the folders must be shared. 1 when one is not usable.
 */
static int
check_runners(const struct ladderd_conf *c)
{
	const char *names[] = { "local", "slurm" };
	int bad = 0;

	printf("runners\n");
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		int used = strcmp(c->runner, names[k]) == 0;
		char err[1024];

		for (size_t i = 0; i < c->nprofiles; i++)
			used |= strcmp(ladderd_ctx_str(c->profiles[i].settings,
					   "runner", ""),
				    names[k]) == 0;
		if (!used)
			continue;
		if (ladderd_runner_check(c, names[k], err, sizeof(err)) < 0) {
			printf("  %-12s ERROR %s\n", names[k], err);
			bad = 1;
			continue;
		}
		printf("  %-12s ok\n", names[k]);
		if (strcmp(names[k], "slurm") == 0)
			printf("  note: with runner = \"slurm\" the spool (%s), "
			       "publish (%s), status and ingest folders, the "
			       "stage folders and %s must be on file systems "
			       "every node mounts at the same paths\n",
			    c->spool, c->publish, ladderd_exe_path());
	}
	return bad;
}

static int
cmd_check_config(int argc, char **argv)
{
	struct ladderd_cli o;
	int bad = 0;
	struct ladderd_conf *c;
	struct ladderd_plugins *reg;
	cJSON *decls = NULL;

	if (ladderd_cli_parse(argc, argv, LADDERD_CLI_VERBOSE, &o) != argc) {
		usage();
		return 2;
	}
	if ((c = load_checked(o.conf_file, &decls)) == NULL) {
		cJSON_Delete(decls);
		return 1;
	}
	ladderd_conf_print(c, stdout);
	ladderd_settings_print(decls, stdout);
	cJSON_Delete(decls);
	if ((reg = ladderd_plugins_new(c->stage_path)) == NULL) {
		ladderd_conf_free(c);
		return 1;
	}
	printf("stages\n");
	for (size_t w = 0; w <= c->nprofiles; w++) {
		const struct ladderd_workflow *wf = w == 0 ? &c->workflow :
							     c->profiles[w - 1].workflow;

		for (int ph = 0; wf && ph < LADDERD_PHASE__COUNT; ph++) {
			for (size_t i = 0; i < wf->n[ph]; i++) {
				const struct ladderd_stage_ref *s =
				    &wf->stages[ph][i];
				const struct ladderd_plugin *p;
				char err[1024];
				void *state = NULL;

				if (ladderd_plugins_get(reg, s->name, &p, err,
					sizeof(err)) < 0) {
					printf("  %-12s ERROR %s\n", s->name,
					    err);
					bad = 1;
					continue;
				}
				/* init + fini validate the stage's args. */
				if (p->desc->init &&
				    p->desc->init(s->args, &state) < 0) {
					printf("  %-12s ERROR its arguments "
					       "were refused\n", s->name);
					bad = 1;
					continue;
				}
				if (p->desc->fini)
					p->desc->fini(state);
				printf("  %-12s %-9s v%s %s\n", s->name,
				    ladderd_phase_names[ph], p->desc->version,
				    p->path);
			}
		}
	}
	ladderd_plugins_free(reg);
	bad |= check_runners(c);
	ladderd_conf_free(c);
	printf("%s\n", bad ? "config has errors" : "config ok");
	return bad ? 1 : 0;
}

/*
 * Run one stage on a context file and print the result (for testing and
 * for writing stages): `ladderd stage [-c FILE] NAME CTX.json`.
 */
static int
cmd_stage(int argc, char **argv)
{
	struct ladderd_cli o;
	int idx, code;
	struct ladderd_conf *c = NULL;
	struct ladderd_plugins *reg = NULL;
	const struct ladderd_plugin *p;
	const struct ladderd_profile *pr;
	const struct ladderd_stage_ref *ref;
	const char *pname;
	cJSON *ctx = NULL, *decls = NULL;
	char err[1024], *text;
	enum ladderd_rc rc;

	idx = ladderd_cli_parse(argc, argv, LADDERD_CLI_VERBOSE, &o);
	if (idx < 0 || argc - idx != 2) {
		usage();
		return 2;
	}
	log_init(o.verbose);
	if ((c = load_checked(o.conf_file, &decls)) == NULL) {
		cJSON_Delete(decls);
		return 1;
	}
	cJSON_Delete(decls);
	if (ladderd_ctx_load(argv[idx + 1], &ctx) < 0) {
		fprintf(stderr, "ladderd: cannot read context '%s'\n",
		    argv[idx + 1]);
		ladderd_conf_free(c);
		return 1;
	}
	/*
	 * As in a task: the profile named by task.profile (default
	 * "default") gives the settings when the context has none, and the
	 * stage's named arguments come from that profile's workflow.
	 */
	pname = ladderd_ctx_str(ctx, "task.profile", "default");
	if ((pr = ladderd_conf_profile(c, pname)) == NULL) {
		ladderd_conf_profile_names(c, err, sizeof(err));
		fprintf(stderr, "ladderd: unknown profile '%s' (configured: "
				"%s)\n", pname, err);
		code = 1;
		goto out;
	}
	if (!cJSON_IsObject(ladderd_ctx_get(ctx, "profile"))) {
		cJSON *ps = cJSON_Duplicate(pr->settings, 1);

		if (ladderd_ctx_set(ctx, "profile", ps) < 0)
			cJSON_Delete(ps);
	}
	ref = ladderd_conf_stage_ref(c, pr, argv[idx]);
	reg = ladderd_plugins_new(c->stage_path);
	if (reg == NULL ||
	    ladderd_plugins_get(reg, argv[idx], &p, err, sizeof(err)) < 0) {
		fprintf(stderr, "ladderd: %s\n", reg ? err : "out of memory");
		code = 1;
		goto out;
	}
	/* A rung's lines name it, as in a rung worker. */
	if (ladderd_ctx_str(ctx, "rung.name", NULL) != NULL) {
		char prefix[96];

		(void)snprintf(prefix, sizeof(prefix), "rendition=%s: ",
		    ladderd_ctx_str(ctx, "rung.name", ""));
		log_set_prefix(prefix);
	}
	rc = ladderd_host_run_stage(p, ref ? ref->args : NULL, ctx,
	    ladderd_ctx_str(ctx, "rung.name", NULL),
	    (int)ladderd_ctx_num(ctx, "threads", c->max_rungs));
	fprintf(stderr, "ladderd: stage %s: %s%s%s\n", argv[idx],
	    ladderd_host_rc_name(rc), rc >= LADDERD_RETRY ? ": " : "",
	    rc >= LADDERD_RETRY ? ladderd_ctx_str(ctx, "error.message", "") :
				  "");
	text = cJSON_Print(ctx);
	if (text)
		puts(text);
	cJSON_free(text);
	code = ladderd_exit_of(rc);
out:
	ladderd_plugins_free(reg);
	cJSON_Delete(ctx);
	ladderd_conf_free(c);
	return code;
}

/*
 * The webhook worker is its own program (ladderd-notify(8)): only it maps
 * libcurl and libcrypto, so the supervisor, jobs and rungs do not.
 */
static int
cmd_notify(char **argv)
{
	const char *helper = ladderd_exe_helper("ladderd-notify");

	execv(helper, argv);
	fprintf(stderr, "ladderd: cannot run '%s': %s\n", helper,
	    strerror(errno));
	return 1;
}

int
main(int argc, char **argv)
{
	ladderd_exe_set(argv[0]);
	if (asks_help(argc, argv)) {
		usage_of(stdout, argc >= 2 && argv[1][0] != '-' ? argv[1] :
		    NULL);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("ladderd %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return ladderd_run_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return ladderd_operator_status(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "cancel") == 0 ||
			     strcmp(argv[1], "retry") == 0))
		return ladderd_operator_request(argv[1], argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "settings") == 0)
		return ladderd_settings_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "check-config") == 0)
		return cmd_check_config(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "stage") == 0)
		return cmd_stage(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "notify") == 0)
		return cmd_notify(argv);
	if (argc >= 4 && strcmp(argv[1], "group") == 0) {
		log_init(getenv("LADDERD_VERBOSE") != NULL);
		return ladderd_rung_group_main(argv[2], argc - 3, argv + 3);
	}
	if (argc == 4 && strcmp(argv[1], "rung") == 0) {
		log_init(getenv("LADDERD_VERBOSE") != NULL);
		return ladderd_rung_main(argv[2], argv[3]);
	}
	if (argc >= 2 && strcmp(argv[1], "job") == 0) {
		struct ladderd_cli o;
		int idx = ladderd_cli_parse(argc - 1, argv + 1,
		    LADDERD_CLI_VERBOSE, &o);

		/* TASKDIR, or TASKDIR fetch (a download slot's job) */
		if (idx < 0 || argc - 1 - idx < 1 || argc - 1 - idx > 2 ||
		    (argc - 1 - idx == 2 &&
			strcmp(argv[2 + idx], "fetch") != 0)) {
			usage();
			return 2;
		}
		return ladderd_job_main(o.conf_file, argv[1 + idx], o.verbose,
		    argc - 1 - idx == 2);
	}
	if (argc >= 2 && argv[1][0] != '-') {
		usage();
		return 2;
	}
	{
		struct ladderd_cli o;
		int allow_root = 0;

		/* --allow-root is the daemon's alone; take it out of argv. */
		for (int i = 1; i < argc; i++) {
			if (strcmp(argv[i], "--allow-root") != 0)
				continue;
			allow_root = 1;
			memmove(&argv[i], &argv[i + 1],
			    (size_t)(argc - i) * sizeof(*argv));
			argc--;
			i--;
		}
		if (ladderd_cli_parse(argc, argv, LADDERD_CLI_VERBOSE, &o) !=
		    argc) {
			usage();
			return 2;
		}
		return ladderd_supervisor_main(
		    ladderd_conf_cli_file(o.conf_file), o.verbose, allow_root);
	}
}
