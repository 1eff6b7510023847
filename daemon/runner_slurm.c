/*
 * runner_slurm.c - units on a Slurm cluster. Each unit is
 *
 *   srun --job-name=ladderd-TASK-UNIT-HASH --nodes=1 --ntasks=1
 *        --cpus-per-task=N --time=MIN [--partition --account --mem]
 *        [extra_args] LADDERD rung WORKDIR UNIT
 *
 * run as a child of the job process (srun blocks until the step ends), so
 * the chord's waitpid join is unchanged. srun forwards SIGTERM to the
 * step: that is the polite cancel, and what srun receives when the job
 * process dies (PR_SET_PDEATHSIG). A hard cancel kills srun and scancels
 * the job by its name. A unit that an earlier run of the task (or an
 * earlier attempt killed hard) may have left running is started after
 * `scancel --name` with --dependency=singleton, so Slurm itself holds the
 * new step until the old one has gone: two steps never write one unit.
 *
 * The shared decode's group (one decoder feeding the video rungs through
 * shared memory) runs as one step too, `ladderd group WORKDIR UNIT...`,
 * with the group's CPUs: its units meet in the memory of one node.
 *
 * srun's own output (and the worker's stderr) goes to the unit's (or the
 * group's) slurm.log, where `ended` looks for Slurm's reason (time limit,
 * cancellation, allocation errors). The in-flight limit is per job
 * process: slurm.max_units steps at once (Slurm queues the rest anyway).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ctx.h"
#include "exe.h"
#include "fsutil.h"
#include "runner.h"

#define SLURM_MAX_ARGS 64
#define SLURM_LOG "slurm.log"

struct slurm_runner {
	struct ladderd_runner base; /* first: the chord sees only this */
	struct ladderd_tokens own;  /* max_units */
	char srun[PATH_MAX], scancel[PATH_MAX];
	char exe[PATH_MAX]; /* ladderd's real path: the nodes run it too */
	char partition[128], account[128], mem[64];
	int time_limit; /* minutes, 0: from the unit's time limit */
	char *extra[SLURM_MAX_ARGS];
	int nextra;
};

/*
 * PROG as an executable path: as it is when it has a slash, else from
 * PATH; "next to" another tool when `near` is given and has it there.
 */
static int
slurm_which(const char *prog, const char *near, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char dir[PATH_MAX];

	if (strchr(prog, '/'))
		return snprintf(out, len, "%s", prog) < (int)len &&
			access(out, X_OK) == 0 ? 0 : -ENOENT;
	if (near && strchr(near, '/')) {
		const char *slash = strrchr(near, '/');

		if (snprintf(out, len, "%.*s/%s", (int)(slash - near), near,
			prog) < (int)len &&
		    access(out, X_OK) == 0)
			return 0;
	}
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");

		if (n > 0 && n < sizeof(dir)) {
			memcpy(dir, p, n);
			dir[n] = '\0';
			if (snprintf(out, len, "%s/%s", dir, prog) < (int)len &&
			    access(out, X_OK) == 0)
				return 0;
		}
		p += n;
		if (*p == ':')
			p++;
	}
	return -ENOENT;
}

/*
 * The unit's Slurm job name: task, unit (or "group" for the shared
 * decode's group) and a hash of the work folder.
 */
static void
slurm_job_name(const struct ladderd_unit *u, char *buf, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const char *p = u->work_dir; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	(void)snprintf(buf, len, "ladderd-%s-%s-%08x", u->task_id,
	    u->group_dir ? "group" : u->name, h);
}

/* Where srun writes for u: its group's folder, else its own. */
static const char *
slurm_log_dir(const struct ladderd_unit *u)
{
	return u->group_dir ? u->group_dir : u->state_dir;
}

/* Run argv to its end (a child of ours; fork-safe: no allocation). */
static int
slurm_run_wait(char *const argv[])
{
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		if (devnull >= 0) {
			(void)dup2(devnull, 0);
			(void)dup2(devnull, 1);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid < 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return 0;
}

/*
 * fork the child that runs `srun [options] LADDERD WORDS...` for u (whose
 * threads are the step's CPUs), after scancel when an earlier one may be
 * left; its stdout and stderr go to slurm.log.
 */
static pid_t
slurm_spawn(struct slurm_runner *s, const struct ladderd_unit *u,
    char *const *words, int nwords, int resumed, const sigset_t *child_mask)
{
	char name[256], a_name[300], a_cpus[32], a_time[32], a_part[160];
	char a_acct[160], a_mem[80], a_cname[300], log[PATH_MAX];
	char *argv[SLURM_MAX_ARGS + 22 + LADDERD_GROUP_MAX], *cancel[5];
	int i = 0, minutes, fd, cleanup = resumed || u->attempt > 1;
	pid_t pid;

	slurm_job_name(u, name, sizeof(name));
	minutes = s->time_limit > 0 ? s->time_limit :
				      (u->time_limit + 59) / 60 + 1;
	snprintf(a_name, sizeof(a_name), "--job-name=%s", name);
	snprintf(a_cpus, sizeof(a_cpus), "--cpus-per-task=%d",
	    u->threads > 0 ? u->threads : 1);
	snprintf(a_time, sizeof(a_time), "--time=%d", minutes);
	argv[i++] = s->srun;
	argv[i++] = a_name;
	argv[i++] = (char *)"--nodes=1";
	argv[i++] = (char *)"--ntasks=1";
	argv[i++] = a_cpus;
	argv[i++] = a_time;
	argv[i++] = (char *)"--kill-on-bad-exit=1";
	if (s->partition[0]) {
		snprintf(a_part, sizeof(a_part), "--partition=%s",
		    s->partition);
		argv[i++] = a_part;
	}
	if (s->account[0]) {
		snprintf(a_acct, sizeof(a_acct), "--account=%s", s->account);
		argv[i++] = a_acct;
	}
	if (s->mem[0]) {
		snprintf(a_mem, sizeof(a_mem), "--mem=%s", s->mem);
		argv[i++] = a_mem;
	}
	if (cleanup)
		argv[i++] = (char *)"--dependency=singleton";
	for (int k = 0; k < s->nextra; k++)
		argv[i++] = s->extra[k];
	argv[i++] = s->exe;
	for (int k = 0; k < nwords && k < LADDERD_GROUP_MAX + 2; k++)
		argv[i++] = words[k];
	argv[i] = NULL;
	snprintf(a_cname, sizeof(a_cname), "--name=%s", name);
	cancel[0] = s->scancel;
	cancel[1] = (char *)"--quiet";
	cancel[2] = a_cname;
	cancel[3] = NULL;
	if (snprintf(log, sizeof(log), "%s/" SLURM_LOG, slurm_log_dir(u)) >=
	    (int)sizeof(log)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		 0640)) < 0)
		return -1;
	if ((pid = fork()) != 0) {
		int e = errno;

		close(fd);
		errno = e;
		return pid;
	}
	/* Child: between fork and exec only async-signal-safe calls. */
	(void)setpgid(0, 0);
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	(void)sigprocmask(SIG_SETMASK, child_mask, NULL);
	(void)dup2(fd, 1);
	(void)dup2(fd, 2);
	if (cleanup && s->scancel[0])
		(void)slurm_run_wait(cancel);
	execv(s->srun, argv);
	_exit(127);
}

static pid_t
slurm_start(struct ladderd_runner *base, const struct ladderd_unit *u,
    const sigset_t *child_mask)
{
	char *words[] = { (char *)"rung", (char *)u->work_dir,
		(char *)u->name };

	return slurm_spawn((struct slurm_runner *)base, u, words, 3,
	    u->resumed, child_mask);
}

/* `ladderd group WORKDIR UNIT...` as one step with the group's CPUs. */
static pid_t
slurm_start_group(struct ladderd_runner *base,
    const struct ladderd_unit *units, int n, const sigset_t *child_mask)
{
	char *words[LADDERD_GROUP_MAX + 2];
	int k = 0, resumed = 0;

	if (n < 1 || n > LADDERD_GROUP_MAX) {
		errno = E2BIG;
		return -1;
	}
	words[k++] = (char *)"group";
	words[k++] = (char *)units[0].work_dir;
	for (int i = 0; i < n; i++) {
		words[k++] = (char *)units[i].name;
		resumed |= units[i].resumed;
	}
	return slurm_spawn((struct slurm_runner *)base, &units[0], words, k,
	    resumed, child_mask);
}

static void
slurm_cancel(struct ladderd_runner *base, const struct ladderd_unit *u,
    pid_t pid, int hard)
{
	struct slurm_runner *s = (struct slurm_runner *)base;
	char name[256], a_cname[300];
	char *cancel[4] = { s->scancel, (char *)"--quiet", a_cname, NULL };

	if (pid > 0)
		(void)kill(-pid, hard ? SIGKILL : SIGTERM);
	if (!hard || !s->scancel[0])
		return;
	/* srun is gone without a word to Slurm: cancel the job by name. */
	slurm_job_name(u, name, sizeof(name));
	snprintf(a_cname, sizeof(a_cname), "--name=%s", name);
	(void)slurm_run_wait(cancel);
}

static void
slurm_ended(struct ladderd_runner *base, const struct ladderd_unit *u,
    int status, char *why, size_t len)
{
	struct slurm_runner *s = (struct slurm_runner *)base;
	char path[PATH_MAX], buf[8192], *line, *err = NULL;
	ssize_t n = 0;
	int fd;

	(void)status;
	why[0] = '\0';
	if (snprintf(path, sizeof(path), "%s/" SLURM_LOG, slurm_log_dir(u)) >=
		(int)sizeof(path) ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return;
	/* The tail is where srun and slurmstepd say why. */
	if (lseek(fd, 0, SEEK_END) > (off_t)sizeof(buf) - 1)
		(void)lseek(fd, -(off_t)sizeof(buf) + 1, SEEK_END);
	else
		(void)lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (strstr(buf, "DUE TO TIME LIMIT")) {
		snprintf(why, len, "Slurm stopped it at its time limit "
		    "(--time=%d min)", s->time_limit > 0 ? s->time_limit :
		    (u->time_limit + 59) / 60 + 1);
		return;
	}
	if (strstr(buf, "CANCELLED")) {
		snprintf(why, len, "its Slurm job was cancelled");
		return;
	}
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if (strstr(line, "srun: error:"))
			err = line;
	if (err)
		snprintf(why, len, "%.300s", err);
}

static void
slurm_free(struct ladderd_runner *base)
{
	struct slurm_runner *s = (struct slurm_runner *)base;

	if (s == NULL)
		return;
	for (int k = 0; k < s->nextra; k++)
		free(s->extra[k]);
	ladderd_tokens_release(&s->own);
	free(s);
}

static const struct ladderd_runner_ops slurm_ops = {
	.name = "slurm",
	.start = slurm_start,
	.start_group = slurm_start_group,
	.cancel = slurm_cancel,
	.ended = slurm_ended,
	.free = slurm_free,
};

/* Owned by the caller (ladderd_runner_free). */
struct ladderd_runner *
ladderd_runner_slurm_new(const cJSON *settings, char *err, size_t errlen)
{
	struct slurm_runner *s = calloc(1, sizeof(*s));
	const char *srun = ladderd_ctx_str(settings, "srun", "srun");
	const cJSON *it;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->own.rfd = s->own.wfd = -1;
	s->base.ops = &slurm_ops;
	s->base.tokens = &s->own;
	s->base.shared_host = 0; /* units may land on different nodes */
	s->base.cpus_per_unit = (int)ladderd_ctx_num(settings,
	    "cpus_per_unit", 0);
	s->time_limit = (int)ladderd_ctx_num(settings, "time_limit", 0);
	if (slurm_which(srun, NULL, s->srun, sizeof(s->srun)) < 0) {
		snprintf(err, errlen, "runner = \"slurm\": '%s' not found "
		    "(install slurm-client, or set slurm.srun)", srun);
		goto fail;
	}
	/* Not /proc/self/exe: that names nothing on another node. */
	if (realpath(ladderd_exe_path(), s->exe) == NULL) {
		snprintf(err, errlen, "cannot resolve the path of ladderd: %s",
		    strerror(errno));
		goto fail;
	}
	if (slurm_which("scancel", s->srun, s->scancel, sizeof(s->scancel)) <
	    0)
		s->scancel[0] = '\0'; /* units are still cancelled via srun */
	snprintf(s->partition, sizeof(s->partition), "%s",
	    ladderd_ctx_str(settings, "partition", ""));
	snprintf(s->account, sizeof(s->account), "%s",
	    ladderd_ctx_str(settings, "account", ""));
	snprintf(s->mem, sizeof(s->mem), "%s",
	    ladderd_ctx_str(settings, "mem_per_unit", ""));
	cJSON_ArrayForEach(it, ladderd_ctx_get(settings, "extra_args")) {
		if (!cJSON_IsString(it) || s->nextra >= SLURM_MAX_ARGS)
			continue;
		if ((s->extra[s->nextra] = strdup(it->valuestring)) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		s->nextra++;
	}
	if (ladderd_tokens_init(&s->own, (int)ladderd_ctx_num(settings,
		 "max_units", 64)) < 0) {
		snprintf(err, errlen, "cannot create the unit limit: %s",
		    strerror(errno));
		goto fail;
	}
	return &s->base;
fail:
	slurm_free(&s->base);
	return NULL;
}

/*
 * Run `sinfo -h -o %R` (partition names) into out, at most `timeout_s`
 * seconds. 0, or -1 with why in err.
 */
static int
slurm_partitions(const char *sinfo, char *out, size_t len, int timeout_s,
    char *err, size_t errlen)
{
	int p[2], st = 0;
	size_t got = 0;
	pid_t pid;
	uint64_t t0;

	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == 0) {
		(void)dup2(p[1], 1);
		execl(sinfo, "sinfo", "-h", "-o", "%R", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	t0 = ladderd_clock_mono_ms();
	for (;;) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		ssize_t n;
		int left;

		left = timeout_s * 1000 - (int)(ladderd_clock_mono_ms() - t0);
		if (left <= 0 || poll(&pfd, 1, left) <= 0) {
			(void)kill(pid, SIGKILL);
			(void)waitpid(pid, NULL, 0);
			close(p[0]);
			snprintf(err, errlen, "'%s' did not answer within %d s "
			    "(is slurmctld reachable?)", sinfo, timeout_s);
			return -1;
		}
		if ((n = read(p[0], out + got, len - 1 - got)) <= 0)
			break;
		got += (size_t)n;
		if (got >= len - 1)
			break;
	}
	out[got] = '\0';
	close(p[0]);
	(void)waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(err, errlen, "'%s' failed (exit status %d): is "
		    "slurmctld running and SLURM_CONF right?", sinfo,
		    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return -1;
	}
	return 0;
}

int
ladderd_runner_slurm_check(const struct ladderd_conf *conf, char *err,
    size_t errlen)
{
	struct ladderd_runner *r;
	char sinfo[PATH_MAX], parts[8192], *line;
	const char *want = ladderd_ctx_str(conf->slurm, "partition", "");
	int found = 0;

	if ((r = ladderd_runner_slurm_new(conf->slurm, err, errlen)) == NULL)
		return -1;
	if (slurm_which("sinfo", ((struct slurm_runner *)r)->srun, sinfo,
		sizeof(sinfo)) < 0) {
		snprintf(err, errlen, "runner = \"slurm\": 'sinfo' not found "
		    "next to '%s' nor on PATH", ((struct slurm_runner *)r)->srun);
		ladderd_runner_free(r);
		return -1;
	}
	ladderd_runner_free(r);
	if (slurm_partitions(sinfo, parts, sizeof(parts), 15, err, errlen) < 0)
		return -1;
	if (parts[0] == '\0') {
		snprintf(err, errlen, "the Slurm cluster has no partition");
		return -1;
	}
	for (line = strtok(parts, "\n"); line && want[0];
	     line = strtok(NULL, "\n"))
		found |= strcmp(line, want) == 0;
	if (want[0] && !found) {
		snprintf(err, errlen, "slurm.partition '%s' is not a partition "
		    "of the cluster (sinfo)", want);
		return -1;
	}
	return 0;
}
