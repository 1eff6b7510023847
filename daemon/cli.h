/*
 * cli.h - what the command lines of ladderd's programs share: "-c FILE"
 * (also --config FILE), -v, --json where a command takes it, and loading
 * the config they name (ladderd_conf_load_cli's rule) with the error on
 * standard error.
 */
#ifndef LADDERD_CLI_H
#define LADDERD_CLI_H

#include "conf.h"

struct ladderd_cli {
	const char *conf_file; /* -c FILE, or NULL */
	int verbose;	       /* how many -v */
	int json;	       /* --json given */
};

#define LADDERD_CLI_VERBOSE 0x1u /* the command takes -v */
#define LADDERD_CLI_JSON 0x2u	 /* the command takes --json */

/*
 * Parse the options before a command's positional arguments (argv[0] is
 * the command word). Returns the index of the first positional argument,
 * or -1 on an option the command does not take.
 */
int ladderd_cli_parse(int argc, char **argv, unsigned allow,
    struct ladderd_cli *ret);
/* The config `file` names (or the installed one, or the defaults); NULL
 * after printing why it cannot be loaded. The caller frees it. */
struct ladderd_conf *ladderd_cli_conf(const char *file);

#endif
