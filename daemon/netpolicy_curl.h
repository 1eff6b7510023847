/*
 * netpolicy_curl.h - the address policy (netpolicy.h) on a libcurl handle:
 * every socket libcurl opens, for the first request and each redirect, is
 * checked against the address it is about to connect to.
 */
#ifndef LADDERD_NETPOLICY_CURL_H
#define LADDERD_NETPOLICY_CURL_H

#include <curl/curl.h>

#include "netpolicy.h"

/*
 * Apply the policy to a libcurl easy handle: the socket callback, and no
 * proxy from the environment (the check would see the proxy's address,
 * not the server's). The caller restricts the schemes (CURLOPT_PROTOCOLS_STR
 * and CURLOPT_REDIR_PROTOCOLS_STR). `p` must outlive the transfer. Returns
 * 0 or -EINVAL when libcurl refuses an option.
 */
int ladderd_netpolicy_curl(CURL *curl, struct ladderd_netpolicy *p);

#endif
