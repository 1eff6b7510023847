/*
 * exitcode.h - what our processes exit with, in one place: a job and a
 * rung worker (the supervisor and the chord read the code back), `ladderd
 * run`, `ladderd stage` and the operator commands (their users read it).
 */
#ifndef LADDERD_EXITCODE_H
#define LADDERD_EXITCODE_H

#include "../stages/stage.h"

enum ladderd_exit {
	LADDERD_EXIT_OK = 0,	    /* done */
	LADDERD_EXIT_FAIL = 1,	    /* failed for good, or refused */
	LADDERD_EXIT_USAGE = 2,	    /* a bad command line */
	LADDERD_EXIT_TEMPFAIL = 75, /* EX_TEMPFAIL: transient or interrupted,
				       try again later */
};

/* The exit code of a process whose work ended with `rc`. */
static inline enum ladderd_exit
ladderd_exit_of(enum ladderd_rc rc)
{
	switch (rc) {
	case LADDERD_FAIL:
		return LADDERD_EXIT_FAIL;
	case LADDERD_RETRY:
		return LADDERD_EXIT_TEMPFAIL;
	default:
		return LADDERD_EXIT_OK;
	}
}

#endif
