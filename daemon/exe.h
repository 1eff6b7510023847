/*
 * exe.h - the path of ladderd's own binary (for fork + exec of workers)
 * and of its helper programs.
 */
#ifndef LADDERD_EXE_H
#define LADDERD_EXE_H

/* Remember argv[0]; main() calls it once, before anything forks. */
void ladderd_exe_set(const char *argv0);
/* Our binary: argv[0] made absolute, else /proc/self/exe. */
const char *ladderd_exe_path(void);
/*
 * The path of the helper program NAME (ladderd-notify): next to our own
 * binary when it is there (a build tree, or a bin/ install), else in the
 * installed PKGLIBEXECDIR. Returns a static buffer.
 */
const char *ladderd_exe_helper(const char *name);

#endif
