/*
 * operator.h - `ladderd status`, `ladderd cancel`, `ladderd retry`
 * (operator.c): the operator's view of the daemon's tasks and requests
 * to it.
 */
#ifndef LADDERD_OPERATOR_H
#define LADDERD_OPERATOR_H

int ladderd_operator_status(int argc, char **argv);
int ladderd_operator_request(const char *verb, int argc, char **argv);

#endif
