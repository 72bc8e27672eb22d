/*
 * curl_ev: libcurl's multi socket interface driven by a libev loop, for
 * HTTPS requests that must not block it (the OAuth2 token endpoint).
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: one
 * ev_io per socket) and when to call it back (CURLMOPT_TIMERFUNCTION:
 * one ev_timer); each event goes back to curl_multi_socket_action() and
 * finished transfers are reported through `done`. The caller builds the
 * easy handles (URL, body, verification) and owns them; this module never
 * calls a blocking curl function.
 */
#ifndef SUBRELAY_CURL_EV_H
#define SUBRELAY_CURL_EV_H

#include <stdbool.h>
#include <curl/curl.h>
#include <ev.h>

struct curl_ev;

/* A transfer ended (removed from the multi handle already); arg is what
 * curl_ev_add() was given. It may free the curl_ev. */
typedef void (*curl_ev_done_fn)(CURL *easy, CURLcode result, void *arg);

/* NULL when out of memory (or curl cannot start). */
struct curl_ev *curl_ev_new(struct ev_loop *loop, curl_ev_done_fn done);
/* Transfers still running are dropped without `done` (their easy handles
 * stay the caller's). Safe from inside `done`. */
void curl_ev_free(struct curl_ev *c);
bool curl_ev_add(struct curl_ev *c, CURL *easy, void *arg);
/* Stops a transfer without `done`. */
void curl_ev_remove(struct curl_ev *c, CURL *easy);

#endif
