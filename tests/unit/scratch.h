/*
 * tests/unit/scratch.h - a scratch folder for a unit test that works on
 * real files: scratch_setup (the group setup) makes /tmp/ladderd-unit.XXXXXX,
 * scratch_teardown removes it with all it holds, scratch_path names a file
 * in it. Include after fsutil.h; the test links daemon/fsutil.c.
 */
#ifndef LADDERD_TEST_SCRATCH_H
#define LADDERD_TEST_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>

static char scratch[] = "/tmp/ladderd-unit.XXXXXX";

static int
scratch_setup(void **state)
{
	(void)state;
	return mkdtemp(scratch) == NULL ? -1 : 0;
}

static int
scratch_teardown(void **state)
{
	(void)state;
	return ladderd_fsutil_rmtree(scratch) == 0 ? 0 : -1;
}

/* buf = scratch/name; fails the test when it does not fit. */
static void
scratch_path(char *buf, size_t size, const char *name)
{
	assert_true(snprintf(buf, size, "%s/%s", scratch, name) < (int)size);
}

#endif
