/*
 * rung.h - the worker side of a unit (`ladderd rung WORKDIR RUNG`).
 */
#ifndef LADDERD_RUNG_H
#define LADDERD_RUNG_H

/* Run the unit's stages; returns the process exit status (rung.c). */
int ladderd_rung_main(const char *work_dir, const char *rung);
/* Run several units together on this host (the shared decode's group). */
int ladderd_rung_group_main(const char *work_dir, int n, char **names);

#endif
