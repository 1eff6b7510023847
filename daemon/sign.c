/*
 * sign.c - webhook signatures with OpenSSL's libcrypto.
 *
 * Why libcrypto: Debian's libcurl (libcurl4-openssl-dev) already maps it
 * into every process that sends a webhook, so HMAC costs no extra library;
 * libavutil did the same job but dragged the whole graphics and GPU stack
 * (X11, VA-API, VDPAU, OpenCL) into the supervisor. HMAC() and
 * EVP_{En,De}codeBlock are the one-shot interfaces, not deprecated in 3.0.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sign.h"

int
ladderd_sign_key(const char *secret, uint8_t **ret_key, size_t *ret_keylen)
{
	size_t len = strlen(secret);
	uint8_t *key;
	int n;

	*ret_key = NULL;
	*ret_keylen = 0;
	if (len == 0 || len > 65536)
		return -EINVAL;
	/* EVP_DecodeBlock writes 3 bytes per 4 characters, padding included. */
	if ((key = malloc(len + 4)) == NULL)
		return -ENOMEM;
	if (strncmp(secret, "whsec_", 6) != 0) {
		memcpy(key, secret, len);
		*ret_key = key;
		*ret_keylen = len;
		return 0;
	}
	secret += 6;
	len -= 6;
	/* Whole 4-character groups only; EVP_DecodeBlock counts '=' as 0s. */
	if (len == 0 || len % 4 != 0 ||
	    (n = EVP_DecodeBlock(key, (const unsigned char *)secret,
		 (int)len)) <= 0)
		goto bad;
	if (secret[len - 1] == '=')
		n--;
	if (secret[len - 2] == '=')
		n--;
	if (n <= 0)
		goto bad;
	*ret_key = key;
	*ret_keylen = (size_t)n;
	return 0;
bad:
	explicit_bzero(key, len + 4);
	free(key);
	return -EINVAL;
}

int
ladderd_sign_webhook(const uint8_t *key, size_t keylen, const char *id,
    const char *ts, const char *body, size_t bodylen, char *out,
    size_t outsize)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	size_t idlen = strlen(id), tslen = strlen(ts);
	size_t msglen = idlen + 1 + tslen + 1 + bodylen;
	unsigned char *msg;
	int rc = -EIO;

	if (outsize < LADDERD_SIGN_B64_SIZE || keylen > (size_t)INT32_MAX)
		return -EINVAL;
	/* One buffer: the one-shot HMAC() needs the message in one piece. */
	if ((msg = malloc(msglen)) == NULL)
		return -ENOMEM;
	memcpy(msg, id, idlen);
	msg[idlen] = '.';
	memcpy(msg + idlen + 1, ts, tslen);
	msg[idlen + 1 + tslen] = '.';
	memcpy(msg + idlen + tslen + 2, body, bodylen);
	if (HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, mac, &maclen) !=
		NULL &&
	    maclen == 32) {
		(void)EVP_EncodeBlock((unsigned char *)out, mac, 32);
		rc = 0;
	}
	explicit_bzero(mac, sizeof(mac));
	free(msg);
	return rc;
}
