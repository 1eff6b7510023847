/*
 * netpolicy_curl.c - libcurl glue of the address policy (netpolicy_curl.h).
 */
#include <errno.h>
#include <sys/socket.h>

#include "netpolicy_curl.h"

/*
 * CURLOPT_OPENSOCKETFUNCTION with CURLOPT_OPENSOCKETDATA = a
 * struct ladderd_netpolicy *: opens the socket (close-on-exec) when the
 * address is allowed, else counts it in p->refused and returns
 * CURL_SOCKET_BAD, which libcurl reports as CURLE_COULDNT_CONNECT after
 * trying the host's other addresses.
 */
static curl_socket_t
netpolicy_opensocket(void *clientp, curlsocktype purpose,
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
		netpolicy_opensocket) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, p) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_PROXY, "") != CURLE_OK)
		return -EINVAL;
	return 0;
}
