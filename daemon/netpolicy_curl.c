/*
 * netpolicy_curl.c - libcurl glue of the address policy (netpolicy_curl.h).
 */
#include <errno.h>
#include <sys/socket.h>

#include "netpolicy_curl.h"

curl_socket_t
ladderd_netpolicy_opensocket(void *clientp, curlsocktype purpose,
    struct curl_sockaddr *address)
{
	struct ladderd_netpolicy *p = clientp;

	(void)purpose;
	if (!ladderd_netpolicy_check(p, &address->addr, address->addrlen,
		NULL)) {
		p->refused++;
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype | SOCK_CLOEXEC,
	    address->protocol);
}

int
ladderd_netpolicy_curl(CURL *curl, struct ladderd_netpolicy *p)
{
	if (curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION,
		ladderd_netpolicy_opensocket) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, p) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_PROXY, "") != CURLE_OK)
		return -EINVAL;
	return 0;
}
