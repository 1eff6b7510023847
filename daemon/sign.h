/*
 * sign.h - Standard Webhooks signatures: HMAC-SHA256 of "id.timestamp.body"
 * in base64, with the key taken from a `whsec_<base64>` secret (or the raw
 * bytes of any other secret).
 */
#ifndef LADDERD_SIGN_H
#define LADDERD_SIGN_H

#include <stddef.h>
#include <stdint.h>

/* Base64 of a 32-byte MAC: 44 characters and the NUL. */
#define LADDERD_SIGN_B64_SIZE 45

/*
 * The HMAC key of `secret`, in a buffer the caller owns and frees (wipe it
 * first: it is a secret). -EINVAL: a `whsec_` secret whose rest is not
 * base64, or an empty key; -ENOMEM.
 */
int ladderd_sign_key(const char *secret, uint8_t **ret_key,
    size_t *ret_keylen);

/*
 * base64(HMAC-SHA256(key, id "." ts "." body)) into out (at least
 * LADDERD_SIGN_B64_SIZE bytes). -EIO if libcrypto fails.
 */
int ladderd_sign_webhook(const uint8_t *key, size_t keylen, const char *id,
    const char *ts, const char *body, size_t bodylen, char *out,
    size_t outsize);

#endif
