/*
 * notify_main.c - ladderd-notify, the webhook worker as its own program:
 *
 *   ladderd-notify [notify] [-c FILE] [-v]
 *
 * The supervisor starts it (as `ladderd notify -c SNAPSHOT`, the name the
 * process table shows), and `ladderd notify` execs it. It is the only
 * program of ladderd's that links libcurl and libcrypto: the supervisor,
 * which runs for months, maps neither (see contrib/bench/lean).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "conf.h"
#include "log.h"
#include "outbox.h"

int
main(int argc, char **argv)
{
	struct ladderd_cli o;
	struct ladderd_conf *c = NULL;
	int rc;

	/* Called as `ladderd notify ...`: skip the command word. */
	if (argc >= 2 && strcmp(argv[1], "notify") == 0) {
		argc--;
		argv++;
	}
	if (ladderd_cli_parse(argc, argv, LADDERD_CLI_VERBOSE, &o) != argc) {
		fprintf(stderr, "usage: ladderd notify [-c FILE] [-v]\n");
		return 2;
	}
	log_init(o.verbose);
	if ((c = ladderd_cli_conf(o.conf_file)) == NULL)
		return 1;
	rc = ladderd_outbox_worker(c, o.conf_file);
	ladderd_conf_free(c);
	return rc < 0 ? 1 : 0;
}
