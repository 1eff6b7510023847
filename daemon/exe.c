/*
 * exe.c - where ladderd's own binary is, so that the daemon, a job and a
 * rung can fork + exec ladderd again (workers are never forked without
 * exec), and where its helper programs are.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exe.h"

/*
 * The path of our own binary, for fork + exec of workers: argv[0] made
 * absolute when it names a file (so a wrapper such as valgrind, whose
 * /proc/self/exe is its own tool, still starts ladderd), else
 * /proc/self/exe. Set once by main() before anything forks.
 */
static char exe_path[PATH_MAX] = "/proc/self/exe";

void
ladderd_exe_set(const char *argv0)
{
	char abs[PATH_MAX];

	if (argv0 && strchr(argv0, '/') && realpath(argv0, abs) != NULL)
		snprintf(exe_path, sizeof(exe_path), "%s", abs);
}

const char *
ladderd_exe_path(void)
{
	return exe_path;
}

const char *
ladderd_exe_helper(const char *name)
{
	static char path[PATH_MAX];
	char self[PATH_MAX], *slash;

	/* realpath resolves /proc/self/exe too. */
	if (realpath(exe_path, self) != NULL &&
	    (slash = strrchr(self, '/')) != NULL) {
		*slash = '\0';
		if (snprintf(path, sizeof(path), "%s/%s", self, name) <
			(int)sizeof(path) &&
		    access(path, X_OK) == 0)
			return path;
	}
	(void)snprintf(path, sizeof(path), "%s/%s", PKGLIBEXECDIR, name);
	return path;
}
