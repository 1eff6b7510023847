/*
 * runner.h - where a unit of work runs. The chord plans units (today: one
 * per rung) and joins them; a runner executes them. Every runner starts a
 * unit as a child process of the job, in its own process group, that runs
 * `ladderd rung WORKDIR UNIT` somewhere (here, or on a cluster node through
 * that child), so the chord's SIGCHLD + waitpid join is the same for all:
 *
 *   start   fork the child that runs the unit; its pid, or -1 and errno
 *   start_group  (optional) one child that runs several units together on
 *           one host (`ladderd group`): the shared decode's group where
 *           the units cannot share this host's memory; NULL for runners
 *           whose units run here (they start the group's units one by one)
 *   cancel  stop a started unit: politely (time limit, shutdown) or hard
 *   ended   after the chord reaped it: how a failed unit ended, in words,
 *           when the runner knows better than the exit status
 *
 * A runner owns its in-flight limit: `tokens` is taken before each start
 * and given back when the unit is reaped.
 */
#ifndef LADDERD_RUNNER_H
#define LADDERD_RUNNER_H

/* Units one group may hold (a unit, 16 rungs and the audio; chord.c). */
#define LADDERD_GROUP_MAX 18

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "conf.h"
#include "tokens.h"

struct ladderd_unit {
	const char *work_dir; /* the task's work folder (shared with nodes) */
	const char *task_id;
	const char *name;     /* the unit: a rung name */
	const char *state_dir; /* its folder: request, result, runner log */
	int threads;	      /* CPUs the unit may use */
	int time_limit;	      /* seconds */
	int attempt;	      /* 1, 2, ... */
	int resumed;	      /* an earlier run of the task started it too */
	/* Set when it runs inside a group process: the group's folder. */
	const char *group_dir;
};

struct ladderd_runner;

struct ladderd_runner_ops {
	const char *name;
	pid_t (*start)(struct ladderd_runner *r, const struct ladderd_unit *u,
	    const sigset_t *child_mask);
	/* units[0].threads: the CPUs of the whole group. */
	pid_t (*start_group)(struct ladderd_runner *r,
	    const struct ladderd_unit *units, int n,
	    const sigset_t *child_mask);
	/*
	 * Stop u: SIGTERM (hard: SIGKILL) to pid's process group; hard also
	 * removes what the runner keeps elsewhere (a Slurm job, by name).
	 * pid 0 with hard: only that, for a unit of an earlier run.
	 */
	void (*cancel)(struct ladderd_runner *r, const struct ladderd_unit *u,
	    pid_t pid, int hard);
	/* Fills why (may leave it empty); status is waitpid's. */
	void (*ended)(struct ladderd_runner *r, const struct ladderd_unit *u,
	    int status, char *why, size_t len);
	void (*free)(struct ladderd_runner *r);
};

struct ladderd_runner {
	const struct ladderd_runner_ops *ops;
	struct ladderd_tokens *tokens; /* the in-flight limit */
	int shared_host;	       /* units can share this host's memory */
	int cpus_per_unit;	       /* 0: the chord shares this host's CPUs */
};

/*
 * The runner a task uses: profile.runner in ctx, else the config's. The
 * local runner borrows `machine` (the rung jobserver of this host). NULL
 * and a reason in err when it cannot be set up.
 */
struct ladderd_runner *ladderd_runner_new(const struct ladderd_conf *conf,
    const cJSON *ctx, struct ladderd_tokens *machine, char *err,
    size_t errlen);
void ladderd_runner_free(struct ladderd_runner *r);

/* The runners, for ladderd_runner_new. */
struct ladderd_runner *ladderd_runner_local_new(
    struct ladderd_tokens *machine);
struct ladderd_runner *ladderd_runner_slurm_new(const cJSON *settings,
    char *err, size_t errlen);
int ladderd_runner_slurm_check(const struct ladderd_conf *conf, char *err,
    size_t errlen);

/*
 * check-config's word on a runner: 0 when usable, else -1 and why in err
 * (the Slurm runner asks srun/sinfo and looks up the partition).
 */
int ladderd_runner_check(const struct ladderd_conf *conf, const char *runner,
    char *err, size_t errlen);

#endif
