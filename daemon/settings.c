/*
 * settings.c - gathers the settings stages declare (settings.h): loads
 * each stage the config's workflows name, checks every declaration (a
 * name in a group of its own, a known type, a default of that type within
 * the range or among the choices) and refuses two stages that declare one
 * name differently. The supervisor gets the same array from a worker,
 * `ladderd settings --json`, so it never maps plugin code; the worker's
 * answer is bounded in size and time. Started as root with a `user` to
 * drop to, the worker becomes that user before it loads any stage: stage
 * code never runs as root unless --allow-root says so.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exe.h"
#include "plugin.h"
#include "privdrop.h"
#include "settings.h"

#define SETTINGS_PER_STAGE 256	      /* a table without its end is a bug */
#define SETTINGS_WORKER_BYTES (1 << 20) /* the worker's answer, at most */
#define SETTINGS_WORKER_MS 30000	      /* and its time */

/* The distinct stage names of every workflow of `c`, at most `max`. */
static size_t
workflow_names(const struct ladderd_conf *c, char **names, size_t max)
{
	size_t n = 0;

	for (size_t w = 0; w <= c->nprofiles; w++) {
		const struct ladderd_workflow *wf = w == 0 ? &c->workflow :
		    c->profiles[w - 1].workflow;

		for (int ph = 0; wf && ph < LADDERD_PHASE__COUNT; ph++)
			for (size_t i = 0; i < wf->n[ph]; i++) {
				char *s = wf->stages[ph][i].name;
				size_t j = 0;

				while (j < n && strcmp(names[j], s) != 0)
					j++;
				if (j == n && n < max)
					names[n++] = s;
			}
	}
	return n;
}

/* Whether `name` is dotted lowercase words: "profile.video.preset". */
static bool
decl_name_ok(const char *name)
{
	const char *c = name;

	if (*c == '\0' || *c == '.')
		return false;
	for (; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
			*c == '_' || (*c == '.' && c[1] != '.' && c[1] != '\0')))
			return false;
	return true;
}

/* Whether `v` is one of "a|b|c". */
static bool
decl_choice(const char *choices, const char *v)
{
	size_t n = strlen(v);

	for (const char *c = choices; c != NULL; c = strchr(c, '|')) {
		c += *c == '|';
		if (strncmp(c, v, n) == 0 && (c[n] == '|' || c[n] == '\0'))
			return true;
	}
	return false;
}

/*
 * Why declaration `s` of stage `stage` is unusable, or NULL: the rules of
 * struct ladderd_setting (stage.h), so a stage's mistake shows up at
 * check-config, not as a config a user cannot write.
 */
static const char *
decl_fault(const char *stage, const struct ladderd_setting *s)
{
	size_t n = strlen(stage);
	const char *dflt = s->dflt ? s->dflt : "";
	char *end;
	double v;

	if (!decl_name_ok(s->name))
		return "its name is not dotted lowercase words";
	if (strncmp(s->name, "profile.", 8) == 0 ?
		strchr(s->name + 8, '.') == NULL :
		strncmp(s->name, stage, n) != 0 || s->name[n] != '.')
		return "its name is neither profile.GROUP.KEY nor STAGE.KEY";
	switch (s->type) {
	case LADDERD_SETTING_INT:
	case LADDERD_SETTING_FLOAT:
		v = strtod(dflt, &end);
		if (end == dflt || *end != '\0' || s->min > s->max ||
		    (s->type == LADDERD_SETTING_INT && v != (double)(long)v))
			return "its default is not a number of its type";
		if ((v < s->min || v > s->max) &&
		    !(s->choices && decl_choice(s->choices, dflt)))
			return "its default is out of its range";
		return NULL;
	case LADDERD_SETTING_BOOL:
		return strcmp(dflt, "true") == 0 || strcmp(dflt, "false") == 0 ?
		    NULL : "its default is neither true nor false";
	case LADDERD_SETTING_STRING:
		return s->choices && !decl_choice(s->choices, dflt) ?
		    "its default is not one of its choices" : NULL;
	case LADDERD_SETTING_STRINGS:
	case LADDERD_SETTING_NETWORKS:
		return NULL;
	default:
		return "its type is unknown";
	}
}

/* Declaration `s` of stage `stage` as JSON (settings.h); NULL: no memory. */
static cJSON *
decl_json(const char *stage, const struct ladderd_setting *s)
{
	cJSON *d = cJSON_CreateObject();

	if (d == NULL ||
	    cJSON_AddStringToObject(d, "stage", stage) == NULL ||
	    cJSON_AddStringToObject(d, "name", s->name) == NULL ||
	    cJSON_AddStringToObject(d, "type",
		ladderd_conf_type_names[s->type]) == NULL ||
	    cJSON_AddStringToObject(d, "default", s->dflt ? s->dflt : "") ==
		NULL ||
	    cJSON_AddStringToObject(d, "doc", s->doc ? s->doc : "") == NULL ||
	    (s->choices &&
		cJSON_AddStringToObject(d, "choices", s->choices) == NULL) ||
	    ((s->type == LADDERD_SETTING_INT ||
		 s->type == LADDERD_SETTING_FLOAT) &&
		(cJSON_AddNumberToObject(d, "min", s->min) == NULL ||
		    cJSON_AddNumberToObject(d, "max", s->max) == NULL))) {
		cJSON_Delete(d);
		return NULL;
	}
	return d;
}

/*
 * Add the table of stage `stage` to `decls`. A name declared before is
 * skipped when both declarations agree and refused when they do not.
 */
static int
decl_add_table(cJSON *decls, const char *stage,
    const struct ladderd_setting *table, char *err, size_t errlen)
{
	static const char *const same[] = { "type", "default", "min", "max",
		"choices" };

	for (size_t i = 0; table[i].name != NULL; i++) {
		const char *why = decl_fault(stage, &table[i]);
		cJSON *d, *old = NULL, *it;

		if (i == SETTINGS_PER_STAGE)
			why = "the table has no end (a NULL name)";
		if (why != NULL) {
			snprintf(err, errlen, "stage '%s' declares setting "
			    "'%s' badly: %s", stage, table[i].name, why);
			return -EINVAL;
		}
		if ((d = decl_json(stage, &table[i])) == NULL)
			return -ENOMEM;
		cJSON_ArrayForEach(it, decls)
			if (strcmp(ladderd_ctx_str(it, "name", ""),
				table[i].name) == 0)
				old = it;
		for (size_t k = 0; old && k < sizeof(same) / sizeof(*same); k++)
			if (!cJSON_Compare(cJSON_GetObjectItem(old, same[k]),
				cJSON_GetObjectItem(d, same[k]), 1) &&
			    (cJSON_GetObjectItem(old, same[k]) ||
				cJSON_GetObjectItem(d, same[k]))) {
				snprintf(err, errlen, "stages '%s' and '%s' "
				    "declare setting '%s' differently (%s)",
				    ladderd_ctx_str(old, "stage", "?"), stage,
				    table[i].name, same[k]);
				cJSON_Delete(d);
				return -EINVAL;
			}
		if (old != NULL)
			cJSON_Delete(d);
		else
			cJSON_AddItemToArray(decls, d);
	}
	return 0;
}

/* The declarations of stages `names` found in `stage_path`, loaded here. */
static int
collect_here(const char *stage_path, const char *const *names, size_t n,
    cJSON **ret, char *err, size_t errlen)
{
	struct ladderd_plugins *reg = ladderd_plugins_new(stage_path);
	cJSON *decls = cJSON_CreateArray();
	int rc = 0;

	if (reg == NULL || decls == NULL)
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct ladderd_plugin *p;
		const struct ladderd_stage *d;
		char why[1024];

		/* Not loadable: it declares nothing; check-config says why. */
		if (ladderd_plugins_get(reg, names[i], &p, why,
			sizeof(why)) < 0)
			continue;
		d = p->desc;
		if (d->size >= offsetof(struct ladderd_stage, settings) +
			    sizeof(d->settings) &&
		    d->settings != NULL)
			rc = decl_add_table(decls, d->name, d->settings, err,
			    errlen);
	}
	ladderd_plugins_free(reg);
	if (rc < 0) {
		if (rc == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		cJSON_Delete(decls);
		return rc;
	}
	*ret = decls;
	return 0;
}

/* Milliseconds of CLOCK_MONOTONIC. */
static long long
settings_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Read fd to its end into a string (caller frees), within the bounds of
 * size and time. NULL when they are exceeded or memory runs out.
 */
static char *
read_bounded(int fd)
{
	long long deadline = settings_now_ms() + SETTINGS_WORKER_MS;
	size_t len = 0;
	char *buf = malloc(SETTINGS_WORKER_BYTES + 1);

	while (buf != NULL) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - settings_now_ms();
		ssize_t r;

		if (left <= 0 || len == SETTINGS_WORKER_BYTES ||
		    (poll(&pfd, 1, (int)left) < 0 && errno != EINTR))
			break;
		if ((pfd.revents & (POLLIN | POLLHUP)) == 0)
			continue;
		if ((r = read(fd, buf + len, SETTINGS_WORKER_BYTES - len)) == 0) {
			buf[len] = '\0';
			return buf;
		}
		if (r < 0 && errno != EINTR && errno != EAGAIN)
			break;
		len += r > 0 ? (size_t)r : 0;
	}
	free(buf);
	return NULL;
}

/*
 * The same as collect_here from `ladderd settings --json`: fork + exec,
 * its standard output read within bounds, then reaped.
 */
static int
collect_worker(char *stage_path, const char *user, char *const *names,
    size_t n, cJSON **ret, char *err, size_t errlen)
{
	char *argv[64 + 8];
	char *out = NULL;
	cJSON *answer = NULL;
	int fds[2], status = 0, i = 0;
	pid_t pid;

	argv[i++] = (char *)"ladderd";
	argv[i++] = (char *)"settings";
	argv[i++] = (char *)"--json";
	argv[i++] = (char *)"--stage-path";
	argv[i++] = stage_path;
	argv[i++] = (char *)"--";
	for (size_t k = 0; k < n && i < (int)(sizeof(argv) / sizeof(*argv)) - 1;
	     k++)
		argv[i++] = names[k];
	argv[i] = NULL;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "cannot ask the stages for their "
		    "settings: pipe: %s", strerror(errno));
		return -errno;
	}
	if ((pid = fork()) == 0) {
		sigset_t none;

		sigemptyset(&none);
		(void)sigprocmask(SIG_SETMASK, &none, NULL);
		/* Root with a user to drop to: stage code runs as that user. */
		if (geteuid() == 0 && user != NULL && user[0] != '\0') {
			struct passwd *pw = getpwnam(user);
			char why[256];

			if (pw == NULL || pw->pw_uid == 0 ||
			    ladderd_privdrop_become(pw, why, sizeof(why)) < 0)
				_exit(126);
		}
		if (dup2(fds[1], STDOUT_FILENO) >= 0)
			execv(ladderd_exe_path(), argv);
		_exit(127);
	}
	close(fds[1]);
	if (pid > 0)
		out = read_bounded(fds[0]);
	close(fds[0]);
	if (pid > 0 && out == NULL)
		(void)kill(pid, SIGKILL); /* too slow or too long */
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (out != NULL && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		answer = cJSON_Parse(out);
	free(out);
	if (!cJSON_IsArray(answer)) {
		snprintf(err, errlen, "cannot ask the stages for their "
		    "settings: `%s settings --json` %s",
		    ladderd_exe_path(), pid < 0 ? "could not start" :
		    WIFEXITED(status) && WEXITSTATUS(status) == 126 ?
				  "could not become the 'user' of the config" :
		    cJSON_IsObject(answer) ? ladderd_ctx_str(answer, "error",
			"failed") : "failed");
		cJSON_Delete(answer);
		return -EIO;
	}
	*ret = answer;
	return 0;
}

int
ladderd_settings_collect(const struct ladderd_conf *c, bool in_worker,
    cJSON **ret_decls, char *err, size_t errlen)
{
	char *names[64];
	size_t n = workflow_names(c, names, sizeof(names) / sizeof(*names));

	err[0] = '\0';
	return in_worker ?
	    collect_worker(c->stage_path, c->user, names, n, ret_decls, err,
		errlen) :
	    collect_here(c->stage_path, (const char *const *)names, n,
		ret_decls, err, errlen);
}

int
ladderd_settings_check(struct ladderd_conf *c, bool in_worker, char *err,
    size_t errlen)
{
	cJSON *decls = NULL;
	int rc;

	if ((rc = ladderd_settings_collect(c, in_worker, &decls, err,
		 errlen)) < 0)
		return rc;
	rc = ladderd_conf_check_settings(c, decls, err, errlen);
	cJSON_Delete(decls);
	return rc;
}

/*
 * A declaration's default as it would be written in the config:
 * "veryfast" quoted, 5 bare, a list as [ "http", "https" ].
 */
static void
default_text(const cJSON *d, char *buf, size_t size)
{
	const char *type = ladderd_ctx_str(d, "type", "");
	const char *v = ladderd_ctx_str(d, "default", "");
	size_t len = 0;

	if (strcmp(type, "string") == 0) {
		snprintf(buf, size, "\"%s\"", v);
		return;
	}
	if (strcmp(type, "strings") != 0 && strcmp(type, "networks") != 0) {
		snprintf(buf, size, "%s", v);
		return;
	}
	len = (size_t)snprintf(buf, size, "[");
	for (const char *c = v; *c != '\0' && len < size;) {
		size_t n = strcspn(c, ",");

		len += (size_t)snprintf(buf + len, size - len, " \"%.*s\"%s",
		    (int)n, c, c[n] == ',' ? "," : "");
		c += n + (c[n] == ',');
	}
	if (len < size)
		snprintf(buf + len, size - len, " ]");
}

/* "int, 0..50" / "string, one of a|b" / "float, 0 or -70..-5". */
static void
range_text(const cJSON *d, char *buf, size_t size)
{
	const char *type = ladderd_ctx_str(d, "type", "");
	const char *ch = ladderd_ctx_str(d, "choices", NULL);

	if (ladderd_ctx_get(d, "min") != NULL)
		snprintf(buf, size, "%s, %s%s%.16g..%.16g", type, ch ? ch : "",
		    ch ? " or " : "", ladderd_ctx_num(d, "min", 0),
		    ladderd_ctx_num(d, "max", 0));
	else if (ch != NULL)
		snprintf(buf, size, "%s, one of %s", type, ch);
	else
		snprintf(buf, size, "%s", type);
}

void
ladderd_settings_print(const cJSON *decls, FILE *out)
{
	const cJSON *d;

	fprintf(out, "settings\n");
	cJSON_ArrayForEach(d, decls) {
		char dflt[512], range[512];

		default_text(d, dflt, sizeof(dflt));
		range_text(d, range, sizeof(range));
		fprintf(out, "  %s = %s  (%s; stage %s) %s\n",
		    ladderd_ctx_str(d, "name", "?"), dflt, range,
		    ladderd_ctx_str(d, "stage", "?"),
		    ladderd_ctx_str(d, "doc", ""));
	}
}

/* `s` for mdoc: backslashes, double quotes and hyphens escaped. */
static void
roff_put(FILE *out, const char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '\\')
			fputs("\\e", out);
		else if (*s == '"')
			fputs("\\(dq", out);
		else if (*s == '-')
			fputs("\\-", out);
		else
			fputc(*s, out);
}

/*
 * The SETTINGS list of ladderd-stages(7), one .It each, between the
 * markers a test compares the page's copy with.
 */
static void
settings_print_man(const cJSON *decls, FILE *out)
{
	const cJSON *d;

	fputs(".\\\" BEGIN SETTINGS: `ladderd settings --man` writes this "
	      "list, do not edit\n.Bl -tag -width Ds\n", out);
	cJSON_ArrayForEach(d, decls) {
		char dflt[512], range[512];

		default_text(d, dflt, sizeof(dflt));
		range_text(d, range, sizeof(range));
		fputs(".It Li \"", out);
		roff_put(out, ladderd_ctx_str(d, "name", "?"));
		fputs(" = ", out);
		roff_put(out, dflt);
		fputs("\"\n\\&", out);
		roff_put(out, range);
		fputs("; stage ", out);
		roff_put(out, ladderd_ctx_str(d, "stage", "?"));
		fputs(":\n\\&", out);
		roff_put(out, ladderd_ctx_str(d, "doc", ""));
		fputs(".\n", out);
	}
	fputs(".El\n.\\\" END SETTINGS\n", out);
}

static void
settings_usage(void)
{
	fprintf(stderr, "usage: ladderd settings [-c FILE] [--json | --man]\n"
			"       ladderd settings --json --stage-path PATH "
			"[--] STAGE...\n");
}

/* The answer of `--json` when it fails: the supervisor quotes `error`. */
static int
settings_fail(bool json, const char *err)
{
	if (json) {
		cJSON *o = cJSON_CreateObject();
		char *text;

		cJSON_AddStringToObject(o, "error", err);
		text = cJSON_PrintUnformatted(o);
		if (text != NULL)
			puts(text);
		cJSON_free(text);
		cJSON_Delete(o);
	} else
		fprintf(stderr, "ladderd: %s\n", err);
	return 1;
}

int
ladderd_settings_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "man", no_argument, NULL, 'm' },
		{ "stage-path", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL, *stage_path = NULL;
	struct ladderd_conf *c = NULL;
	cJSON *decls = NULL;
	bool json = false, man = false;
	char err[2048];
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		if (ch == 'c')
			file = optarg;
		else if (ch == 'j' || ch == 'm')
			*(ch == 'j' ? &json : &man) = true;
		else if (ch == 's')
			stage_path = optarg;
		else {
			settings_usage();
			return 2;
		}
	}
	if ((json && man) || (stage_path == NULL) != (optind == argc) ||
	    (stage_path != NULL && file != NULL)) {
		settings_usage();
		return 2;
	}
	if (stage_path != NULL)
		rc = collect_here(stage_path, (const char *const *)argv + optind,
		    (size_t)(argc - optind), &decls, err, sizeof(err));
	else if ((rc = ladderd_conf_load_cli(file, &c, err, sizeof(err))) ==
	    0)
		rc = ladderd_settings_collect(c, false, &decls, err,
		    sizeof(err));
	ladderd_conf_free(c);
	if (rc < 0)
		return settings_fail(json, err);
	if (json) {
		char *text = cJSON_Print(decls);

		if (text != NULL)
			puts(text);
		cJSON_free(text);
	} else if (man)
		settings_print_man(decls, stdout);
	else
		ladderd_settings_print(decls, stdout);
	cJSON_Delete(decls);
	return 0;
}
