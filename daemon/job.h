/*
 * job.h - the job worker, `ladderd job [-c FILE] TASKDIR [fetch]`: one
 * task's process, started by the supervisor (fork + exec). It runs the
 * task's workflow with the engine and exits with an enum ladderd_exit
 * (exitcode.h): 0 complete, 1 failed, 75 stopped or transient.
 */
#ifndef LADDERD_JOB_H
#define LADDERD_JOB_H

/*
 * `fetch`: only fetch the source (engine fetch_only) and exit 0, for a
 * download slot.
 */
int ladderd_job_main(const char *conf_file, const char *task_dir,
    int verbose, int fetch);

#endif
