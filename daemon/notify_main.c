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

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "outbox.h"

int
main(int argc, char **argv)
{
	const char *file = NULL;
	struct ladderd_conf *c = NULL;
	char err[2048];
	int ch, verbose = 0, rc;

	/* Called as `ladderd notify ...`: skip the command word. */
	if (argc >= 2 && strcmp(argv[1], "notify") == 0) {
		argc--;
		argv++;
	}
	while ((ch = getopt(argc, argv, "c:v")) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 'v':
			verbose++;
			break;
		default:
			fprintf(stderr, "usage: ladderd notify [-c FILE] [-v]\n");
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: ladderd notify [-c FILE] [-v]\n");
		return 2;
	}
	log_init(verbose);
	if (ladderd_conf_load_cli(file, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "ladderd: %s\n", err);
		return 1;
	}
	rc = ladderd_outbox_worker(c, file);
	ladderd_conf_free(c);
	return rc < 0 ? 1 : 0;
}
