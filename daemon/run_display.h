/*
 * run_display.h - the terminal display of `ladderd run` (run_display.c):
 * a progress area redrawn in place, log lines above it, a summary table.
 */
#ifndef LADDERD_RUN_DISPLAY_H
#define LADDERD_RUN_DISPLAY_H

/*
 * Run `ladderd run ARGV...` (argv[0] is "run") as a child and draw its
 * progress on stderr, a terminal. Returns the child's exit status, or -1
 * when the display could not be set up (run the task without it).
 */
int ladderd_run_display(int argc, char **argv, int verbose);

#endif
