/*
 * crashpoint.h - named points where a test build can kill -9 the whole
 * daemon, to prove that every state change survives a crash (the crash
 * matrix, tests/integration/t0450-crash-matrix.sh).
 *
 *   LADDERD_CRASH_POINT("ingest.claimed", NULL);
 *   LADDERD_CRASH_POINT("transcode.frame", rung);
 *
 * Only when built with `configure --enable-crash-points` (which defines
 * LADDERD_CRASH_POINTS; tests/run-all.sh does) and only when the
 * environment says LADDERD_CRASH_AT=NAME[/QUAL][#N]: the N-th time (default
 * the first) this process passes point NAME (with qualifier QUAL, for
 * example a rung's name, if given), it SIGKILLs every process of its
 * session (the daemon, its jobs, their rungs: the session that
 * `setsid ladderd` started), itself last, as a power cut would. A release
 * build has no hook: the macro compiles to nothing, and no code reads the
 * variable.
 *
 * Header-only (static functions) so stage plugins, which link no daemon
 * symbol, can carry points too.
 */
#ifndef LADDERD_CRASHPOINT_H
#define LADDERD_CRASHPOINT_H

#ifdef LADDERD_CRASH_POINTS
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The session id in /proc/PID/stat (field 6), or -1. */
static inline pid_t
ladderd_crash_sid_of(const char *pid)
{
	char path[64], buf[512];
	const char *p;
	FILE *f;
	int pgrp, sid = -1;

	if (snprintf(path, sizeof(path), "/proc/%s/stat", pid) >=
		(int)sizeof(path) ||
	    (f = fopen(path, "re")) == NULL)
		return -1;
	/* The command name may hold spaces and ')': skip to the last ')'. */
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) != NULL &&
	    sscanf(p + 1, " %*c %*d %d %d", &pgrp, &sid) != 2)
		sid = -1;
	fclose(f);
	return sid;
}

/* SIGKILL every other process of our session, repeated until none is left
 * (a process may fork while /proc is walked), then ourselves. */
static inline void
ladderd_crash_now(const char *what)
{
	pid_t sid = getsid(0), self = getpid();

	fprintf(stderr, "ladderd[%ld]: crash point '%s': killing session %ld\n",
	    (long)self, what, (long)sid);
	for (int round = 0; sid > 1 && round < 50; round++) {
		struct dirent *de;
		DIR *d = opendir("/proc");
		int killed = 0;

		if (d == NULL)
			break;
		while ((de = readdir(d)) != NULL) {
			pid_t pid = (pid_t)atoi(de->d_name);

			if (pid > 1 && pid != self &&
			    ladderd_crash_sid_of(de->d_name) == sid &&
			    kill(pid, SIGKILL) == 0)
				killed++;
		}
		closedir(d);
		if (killed == 0)
			break;
	}
	(void)kill(self, SIGKILL);
	_exit(137);
}

static inline void
ladderd_crash_point(const char *name, const char *qual)
{
	static int hits;
	const char *want = getenv("LADDERD_CRASH_AT");
	size_t n = strlen(name), q = qual ? strlen(qual) : 0;
	long nth = 1;

	if (want == NULL || strncmp(want, name, n) != 0)
		return;
	if (want[n] == '/') {
		if (qual == NULL || strncmp(want + n + 1, qual, q) != 0)
			return;
		n += 1 + q;
	}
	if (want[n] == '#')
		nth = strtol(want + n + 1, NULL, 10);
	else if (want[n] != '\0')
		return;
	if (++hits == nth)
		ladderd_crash_now(want);
}

#define LADDERD_CRASH_POINT(name, qual) ladderd_crash_point((name), (qual))
#else
#define LADDERD_CRASH_POINT(name, qual) ((void)0)
#endif

#endif
