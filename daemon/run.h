/* run.h - `ladderd run`: one task, once, in the foreground. */
#ifndef LADDERD_RUN_H
#define LADDERD_RUN_H

int ladderd_run_main(int argc, char **argv);

#endif
