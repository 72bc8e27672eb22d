/*
 * oauth2_jwt.c: see oauth2_jwt.h. JSON through jansson, RS256 through
 * EVP_DigestSign.
 */
#include "oauth2_jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#define JWT_LIFETIME 3600

static const char *member(json_t *obj, const char *name)
{
	return json_string_value(json_object_get(obj, name));
}

bool oauth2_key_load(const char *json, struct oauth2_key *key, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loads(json, 0, &jerr);
	bool ok = false;

	memset(key, 0, sizeof(*key));
	if (root == NULL || !json_is_object(root)) {
		/* jerr.text may quote the file: only the position is given. */
		snprintf(err, errlen, "not a JSON object (line %d)", root == NULL ? jerr.line : 1);
	} else if (member(root, "client_email") == NULL || member(root, "private_key") == NULL) {
		snprintf(err, errlen, "no \"%s\" (a service account's JSON key is needed)",
		    member(root, "client_email") == NULL ? "client_email" : "private_key");
	} else {
		const char *pem = member(root, "private_key");
		BIO *bio = BIO_new_mem_buf(pem, (int)strlen(pem));
		key->pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
		key->client_email = strdup(member(root, "client_email"));
		key->token_uri = member(root, "token_uri") ? strdup(member(root, "token_uri")) : NULL;
		const char *problem = key->pkey == NULL ? "\"private_key\" is not a PEM private key"
		    : EVP_PKEY_base_id(key->pkey) != EVP_PKEY_RSA ? "\"private_key\" is not an RSA key (RS256 needs one)"
		    : key->client_email == NULL || (member(root, "token_uri") && key->token_uri == NULL) ? "out of memory"
		    : NULL;
		ok = problem == NULL;
		if (!ok)
			snprintf(err, errlen, "%s", problem);
	}
	if (root != NULL) {
		/* The PEM text lives in jansson's strings: wipe it before freeing. */
		json_t *pk = json_object_get(root, "private_key");
		if (json_is_string(pk))
			OPENSSL_cleanse((char *)json_string_value(pk), json_string_length(pk));
		json_decref(root);
	}
	if (!ok)
		oauth2_key_free(key);
	return ok;
}

void oauth2_key_free(struct oauth2_key *key)
{
	free(key->client_email);
	free(key->token_uri);
	EVP_PKEY_free(key->pkey);
	memset(key, 0, sizeof(*key));
}

/* base64url without padding (RFC 7515 section 2), malloc'd. */
static char *base64url(const unsigned char *data, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	if (out == NULL)
		return NULL;
	int len = EVP_EncodeBlock((unsigned char *)out, data, (int)n);
	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = '\0';
	for (char *p = out; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	return out;
}

static char *encode_json(json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	char *out = text ? base64url((const unsigned char *)text, strlen(text)) : NULL;

	free(text);
	json_decref(obj);
	return out;
}

/* RS256 over the signing input; the signature base64url-encoded. */
static char *sign(EVP_PKEY *pkey, const char *input)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *sig = NULL;
	size_t siglen = 0;
	char *out = NULL;

	if (md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
	    EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)input, strlen(input)) == 1 &&
	    (sig = malloc(siglen)) != NULL &&
	    EVP_DigestSign(md, sig, &siglen, (const unsigned char *)input, strlen(input)) == 1)
		out = base64url(sig, siglen);
	free(sig);
	EVP_MD_CTX_free(md);
	return out;
}

char *oauth2_jwt(const struct oauth2_key *key, const char *scope, const char *aud, const char *sub, time_t now,
    char *err, size_t errlen)
{
	json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", key->client_email, "scope", scope ? scope : "",
	    "aud", aud, "iat", (json_int_t)now, "exp", (json_int_t)now + JWT_LIFETIME);

	if (claims != NULL && sub != NULL && json_object_set_new(claims, "sub", json_string(sub)) != 0) {
		json_decref(claims);
		claims = NULL;
	}
	char *header = encode_json(json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT"));
	char *body = encode_json(claims);
	char *input = NULL, *sig = NULL, *jwt = NULL;

	if (header != NULL && body != NULL && asprintf(&input, "%s.%s", header, body) < 0)
		input = NULL;
	if (input != NULL && (sig = sign(key->pkey, input)) != NULL && asprintf(&jwt, "%s.%s", input, sig) < 0)
		jwt = NULL;
	if (jwt == NULL)
		snprintf(err, errlen, "cannot sign the JWT assertion");
	free(header);
	free(body);
	free(input);
	free(sig);
	return jwt;
}
