/*
 * supervisor.h - the daemon: one single-threaded event loop (epoll over
 * inotify, signalfd, timerfd) that claims drops, queues tasks, starts and
 * reaps job processes, keeps the webhook worker running and reloads the
 * config. It never loads a stage or touches media.
 */
#ifndef LADDERD_SUPERVISOR_H
#define LADDERD_SUPERVISOR_H

int ladderd_supervisor_main(const char *conf_file, int verbose,
    int allow_root);

#endif
