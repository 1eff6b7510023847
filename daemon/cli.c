/*
 * cli.c - the options and the config loading the commands share (cli.h).
 * The one place that prints to stderr on behalf of conf.c, which returns
 * its messages.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int
ladderd_cli_parse(int argc, char **argv, unsigned allow,
    struct ladderd_cli *ret)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(ret, 0, sizeof(*ret));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			ret->conf_file = optarg;
			break;
		case 'v':
			if (!(allow & LADDERD_CLI_VERBOSE))
				return -1;
			ret->verbose++;
			break;
		case 'j':
			if (!(allow & LADDERD_CLI_JSON))
				return -1;
			ret->json = 1;
			break;
		default:
			return -1;
		}
	}
	return optind;
}

struct ladderd_conf *
ladderd_cli_conf(const char *file)
{
	struct ladderd_conf *c = NULL;
	char err[2048];

	if (ladderd_conf_load_cli(file, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "ladderd: %s\n", err);
		return NULL;
	}
	return c;
}
