/*
 * metrics.c: see metrics.h. Labelled attempt counters live in a fixed
 * table (providers x ports x modes x results stays tiny).
 */
#include "metrics.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "gate.h"

#include "log.h"

#define REQUEST_MAX 4096
#define REQUEST_TIMEOUT 5.0
/* Distinct (provider, port, mode, result) label sets; more are not counted. */
#define ATTEMPTS_MAX 256
/* Providers with auth = xoauth2 whose token expiry is shown. */
#define OAUTH2_MAX 64
/* Providers whose health is followed (a reload may bring new names). */
#define PROVIDERS_MAX 256

static const char *const message_results[] = { "accepted", "delivered", "deferred", "failed", "delivered_live" };
#define NRESULTS (sizeof(message_results) / sizeof(message_results[0]))

static const double latency_buckets[] = { 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600 };
#define NBUCKETS (sizeof(latency_buckets) / sizeof(latency_buckets[0]))

struct attempt_counter {
	char provider[64];
	uint16_t port;
	char mode[12];
	char result[24];
	uint64_t count;
};

struct oauth2_expiry {
	char provider[64];
	int64_t expiry;
};

struct provider_health {
	char provider[64];
	struct metrics_provider_state st;
};

/*
 * Everything counted, in one block that relay.workers processes share
 * (a MAP_SHARED mapping made before fork). Counters change with relaxed
 * atomic adds; a new attempts row is filled under `lock` and published
 * by a release store of nattempts, so readers never see half a row.
 * Provider health rows are written and read whole under `lock`.
 */
struct metrics_shared {
	uint64_t sessions_total;
	uint64_t client_auth[2];     /* AUTH by clients: failed, ok */
	uint64_t spool_fsyncs;
	uint64_t message_counts[NRESULTS];
	uint64_t latency_counts[NBUCKETS];
	uint64_t latency_count;
	uint64_t latency_sum_us;
	uint32_t lock;
	uint32_t nattempts;
	struct attempt_counter attempts[ATTEMPTS_MAX];
	uint32_t noauth2;
	struct oauth2_expiry oauth2[OAUTH2_MAX];
	uint32_t nproviders;
	struct provider_health providers[PROVIDERS_MAX];
	struct metrics_worker_gauges gauges[METRICS_WORKERS_MAX];
};

static struct metrics_shared fallback;
static struct metrics_shared *shm = &fallback;
static unsigned my_slot;

bool metrics_init_shared(void)
{
	void *p = mmap(NULL, sizeof(struct metrics_shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return false;
	memcpy(p, shm, sizeof(struct metrics_shared)); /* keep what was counted so far */
	shm = p;
	return true;
}

void metrics_set_worker(unsigned k)
{
	assert(k < METRICS_WORKERS_MAX);
	my_slot = k;
}

static inline void add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static inline uint64_t get(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

void metrics_message(const char *result)
{
	for (size_t i = 0; i < NRESULTS; i++)
		if (strcmp(message_results[i], result) == 0)
			add(&shm->message_counts[i], 1);
}

void metrics_write_messages(FILE *out)
{
	for (size_t i = 0; i < NRESULTS; i++)
		fprintf(out, "%s %llu\n", message_results[i], (unsigned long long)get(&shm->message_counts[i]));
}

void metrics_delivery_seconds(double seconds)
{
	for (size_t i = 0; i < NBUCKETS; i++)
		if (seconds <= latency_buckets[i])
			add(&shm->latency_counts[i], 1);
	add(&shm->latency_count, 1);
	add(&shm->latency_sum_us, seconds > 0 ? (uint64_t)(seconds * 1e6 + 0.5) : 0);
}

void metrics_session_opened(void)
{
	add(&shm->sessions_total, 1);
}

void metrics_client_auth(bool ok)
{
	add(&shm->client_auth[ok], 1);
}

void metrics_spool_fsync(void)
{
	add(&shm->spool_fsyncs, 1);
}

static struct attempt_counter *find_attempt(uint32_t n, const char *provider, uint16_t port, const char *mode,
    const char *result)
{
	for (uint32_t i = 0; i < n; i++) {
		struct attempt_counter *a = &shm->attempts[i];
		if (a->port == port && strcmp(a->provider, provider) == 0 && strcmp(a->mode, mode) == 0 &&
		    strcmp(a->result, result) == 0)
			return a;
	}
	return NULL;
}

/* A spinlock holding the owner's pid: inserts are rare (a new label set)
 * and short. A worker killed inside (kill -9, the OOM killer) must not
 * block the others for ever, so a dead owner's lock is taken over; the
 * row it was filling is not published yet (nattempts moves last). */
static void lock_attempts(void)
{
	uint32_t self = (uint32_t)getpid(), owner = 0;

	while (!__atomic_compare_exchange_n(&shm->lock, &owner, self, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
		if (kill((pid_t)owner, 0) < 0 && errno == ESRCH)
			__atomic_compare_exchange_n(&shm->lock, &owner, 0, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		owner = 0;
		sched_yield();
	}
}

static void unlock_attempts(void)
{
	__atomic_store_n(&shm->lock, 0, __ATOMIC_RELEASE);
}

void metrics_attempt(const char *provider, uint16_t port, const char *mode, const char *result)
{
	struct attempt_counter *a = find_attempt(__atomic_load_n(&shm->nattempts, __ATOMIC_ACQUIRE), provider, port,
	    mode, result);

	if (a == NULL) {
		lock_attempts();
		uint32_t n = shm->nattempts;
		a = find_attempt(n, provider, port, mode, result);
		if (a == NULL && n < ATTEMPTS_MAX) {
			a = &shm->attempts[n];
			snprintf(a->provider, sizeof(a->provider), "%s", provider);
			a->port = port;
			snprintf(a->mode, sizeof(a->mode), "%s", mode);
			snprintf(a->result, sizeof(a->result), "%s", result);
			__atomic_store_n(&shm->nattempts, n + 1, __ATOMIC_RELEASE);
		}
		unlock_attempts();
		if (a == NULL)
			return; /* table full: the label set goes uncounted */
	}
	add(&a->count, 1);
}

void metrics_oauth2_expiry(const char *provider, double timestamp)
{
	struct oauth2_expiry *e = NULL;

	lock_attempts();
	for (uint32_t i = 0; e == NULL && i < shm->noauth2; i++)
		if (strcmp(shm->oauth2[i].provider, provider) == 0)
			e = &shm->oauth2[i];
	if (e == NULL && shm->noauth2 < OAUTH2_MAX) {
		e = &shm->oauth2[shm->noauth2];
		snprintf(e->provider, sizeof(e->provider), "%s", provider);
		__atomic_store_n(&shm->noauth2, shm->noauth2 + 1, __ATOMIC_RELEASE);
	}
	if (e != NULL)
		__atomic_store_n(&e->expiry, (int64_t)timestamp, __ATOMIC_RELAXED);
	unlock_attempts();
}

/* The provider's row (added when create and there is room), under the lock. */
static struct provider_health *provider_row(const char *provider, bool create)
{
	for (uint32_t i = 0; i < shm->nproviders; i++)
		if (strcmp(shm->providers[i].provider, provider) == 0)
			return &shm->providers[i];
	if (!create || shm->nproviders == PROVIDERS_MAX)
		return NULL;
	struct provider_health *h = &shm->providers[shm->nproviders++];
	memset(h, 0, sizeof(*h));
	snprintf(h->provider, sizeof(h->provider), "%s", provider);
	return h;
}

void metrics_provider_outcome(const char *provider, bool ok, const char *reason, double now)
{
	lock_attempts();
	struct provider_health *h = provider_row(provider, true);
	if (h != NULL && ok) {
		h->st.last_ok = now;
		h->st.failing_since = 0;
	} else if (h != NULL) {
		h->st.last_fail = now;
		if (h->st.failing_since == 0)
			h->st.failing_since = now;
		snprintf(h->st.reason, sizeof(h->st.reason), "%s", reason);
	}
	unlock_attempts();
}

void metrics_provider_get(const char *provider, struct metrics_provider_state *out)
{
	lock_attempts();
	const struct provider_health *h = provider_row(provider, false);
	if (h != NULL)
		*out = h->st;
	else
		memset(out, 0, sizeof(*out));
	unlock_attempts();
}

void metrics_worker_set(unsigned sessions, unsigned idle, double now)
{
	__atomic_store_n(&shm->gauges[my_slot].sessions, sessions, __ATOMIC_RELAXED);
	__atomic_store_n(&shm->gauges[my_slot].idle, idle, __ATOMIC_RELAXED);
	__atomic_store(&shm->gauges[my_slot].beat, &now, __ATOMIC_RELAXED);
}

double metrics_worker_beat(unsigned k)
{
	double beat = 0;

	if (k < METRICS_WORKERS_MAX)
		__atomic_load(&shm->gauges[k].beat, &beat, __ATOMIC_RELAXED);
	return beat;
}

void metrics_worker_sessions(unsigned sessions)
{
	__atomic_store_n(&shm->gauges[my_slot].sessions, sessions, __ATOMIC_RELAXED);
}

void metrics_worker_clear(unsigned k)
{
	if (k < METRICS_WORKERS_MAX)
		memset(&shm->gauges[k], 0, sizeof(shm->gauges[k]));
}

struct metrics_worker_gauges metrics_workers_sum(unsigned nworkers)
{
	struct metrics_worker_gauges sum = { 0, 0, 0 };

	for (unsigned k = 0; k < nworkers && k < METRICS_WORKERS_MAX; k++) {
		sum.sessions += __atomic_load_n(&shm->gauges[k].sessions, __ATOMIC_RELAXED);
		sum.idle += __atomic_load_n(&shm->gauges[k].idle, __ATOMIC_RELAXED);
	}
	return sum;
}

void metrics_write(FILE *out, const struct metrics_handlers *h)
{
	uint32_t nattempts = __atomic_load_n(&shm->nattempts, __ATOMIC_ACQUIRE);

	fputs("# HELP subrelay_sessions_total Client sessions accepted.\n# TYPE subrelay_sessions_total counter\n", out);
	fprintf(out, "subrelay_sessions_total %llu\n", (unsigned long long)get(&shm->sessions_total));
	fputs("# HELP subrelay_client_auth_total AUTH attempts of clients (relay.users_file) by result.\n"
	      "# TYPE subrelay_client_auth_total counter\n", out);
	fprintf(out, "subrelay_client_auth_total{result=\"ok\"} %llu\n", (unsigned long long)get(&shm->client_auth[1]));
	fprintf(out, "subrelay_client_auth_total{result=\"failed\"} %llu\n",
	    (unsigned long long)get(&shm->client_auth[0]));
	fputs("# HELP subrelay_spool_fsyncs_total fsync calls on spool files and directories (durability paid).\n"
	      "# TYPE subrelay_spool_fsyncs_total counter\n", out);
	fprintf(out, "subrelay_spool_fsyncs_total %llu\n", (unsigned long long)get(&shm->spool_fsyncs));
	fputs("# HELP subrelay_messages_total Messages by outcome.\n# TYPE subrelay_messages_total counter\n", out);
	for (size_t i = 0; i < NRESULTS; i++)
		fprintf(out, "subrelay_messages_total{result=\"%s\"} %llu\n", message_results[i],
		    (unsigned long long)get(&shm->message_counts[i]));
	fputs("# HELP subrelay_upstream_attempts_total Upstream attempts by provider, port, mode and result.\n"
	      "# TYPE subrelay_upstream_attempts_total counter\n", out);
	for (uint32_t i = 0; i < nattempts; i++) {
		const struct attempt_counter *a = &shm->attempts[i];
		fprintf(out, "subrelay_upstream_attempts_total{provider=\"%s\",port=\"%u\",mode=\"%s\",result=\"%s\"} %llu\n",
		    a->provider, a->port, a->mode, a->result, (unsigned long long)get(&a->count));
	}
	fputs("# HELP subrelay_delivery_seconds Time from acceptance to the provider's verdict.\n"
	      "# TYPE subrelay_delivery_seconds histogram\n", out);
	for (size_t i = 0; i < NBUCKETS; i++)
		fprintf(out, "subrelay_delivery_seconds_bucket{le=\"%g\"} %llu\n", latency_buckets[i],
		    (unsigned long long)get(&shm->latency_counts[i]));
	fprintf(out, "subrelay_delivery_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)get(&shm->latency_count));
	fprintf(out, "subrelay_delivery_seconds_sum %.6f\nsubrelay_delivery_seconds_count %llu\n",
	    (double)get(&shm->latency_sum_us) / 1e6, (unsigned long long)get(&shm->latency_count));
	uint32_t noauth2 = __atomic_load_n(&shm->noauth2, __ATOMIC_ACQUIRE);
	if (noauth2 > 0)
		fputs("# HELP subrelay_oauth2_token_expiry_timestamp_seconds When the provider's OAuth2 access token expires.\n"
		      "# TYPE subrelay_oauth2_token_expiry_timestamp_seconds gauge\n", out);
	for (uint32_t i = 0; i < noauth2; i++)
		fprintf(out, "subrelay_oauth2_token_expiry_timestamp_seconds{provider=\"%s\"} %lld\n", shm->oauth2[i].provider,
		    (long long)__atomic_load_n(&shm->oauth2[i].expiry, __ATOMIC_RELAXED));
	if (h->gauges != NULL)
		h->gauges(out, h->arg);
}

/* ---- the HTTP side ---- */

/* Scrapers at once; more wait in the listen backlog, so a flood of them
 * cannot take the descriptors the SMTP clients need. */
#define METRICS_MAX_CONNS 16

struct metrics_server {
	struct ev_loop *loop;
	int fd;
	struct gate gate;
	struct metrics_handlers h;
	bool closed;               /* freed with its last connection */
};

struct http_conn {
	struct metrics_server *m;
	int fd;
	ev_io w;
	ev_timer timer;
	char req[REQUEST_MAX];
	size_t len;
	char *reply;
	size_t reply_len, sent;
};

static void conn_free(struct http_conn *c)
{
	struct metrics_server *m = c->m;

	ev_io_stop(m->loop, &c->w);
	ev_timer_stop(m->loop, &c->timer);
	gate_closed(&m->gate);
	if (m->closed && m->gate.nconns == 0)
		free(m);
	close(c->fd);
	free(c->reply);
	free(c);
}

/* The paths served, numbered as route() returns them. */
static const char *const paths[] = { "/metrics", "/healthz", "/readyz" };

/* Which of paths[] the request line "METHOD PATH[?QUERY] VERSION" asks
 * for: its index, or -1 when none (404). *get: the method is GET. */
static int route(const char *req, bool *get)
{
	size_t mlen = strcspn(req, " \r\n");
	const char *path = req + mlen + (req[mlen] == ' ');
	size_t plen = strcspn(path, " ?\r\n");

	*get = mlen == 3 && memcmp(req, "GET", 3) == 0;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (strlen(paths[i]) == plen && memcmp(path, paths[i], plen) == 0)
			return (int)i;
	return -1;
}

/* Writes the body for the request into out; returns the HTTP status
 * line's end (a 405 carries its Allow header after it). */
static const char *answer(const struct http_conn *c, FILE *out)
{
	const struct metrics_handlers *h = &c->m->h;
	bool get;
	int which = route(c->req, &get);

	if (which < 0) {
		fputs("not found: try /metrics, /healthz or /readyz\n", out);
		return "404 Not Found";
	}
	if (!get) {
		fputs("method not allowed: only GET\n", out);
		return "405 Method Not Allowed\r\nAllow: GET";
	}
	if (which == 0) {
		metrics_write(out, h);
		return "200 OK";
	}
	bool ok = which == 1 ? h->live(out, h->arg) : h->ready(out, h->arg);
	return ok ? "200 OK" : "503 Service Unavailable";
}

static void build_reply(struct http_conn *c)
{
	char *body = NULL;
	size_t body_len = 0;
	FILE *out = open_memstream(&body, &body_len);
	const char *status = "500 Internal Server Error";

	if (out != NULL) {
		status = answer(c, out);
		fclose(out);
	}
	FILE *r = open_memstream(&c->reply, &c->reply_len);
	if (r == NULL) {
		free(body);
		return;
	}
	fprintf(r, "HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, body_len);
	if (body != NULL)
		fwrite(body, 1, body_len, r);
	fclose(r);
	free(body);
}

static void on_conn(struct ev_loop *loop, ev_io *w, int revents)
{
	struct http_conn *c = w->data;
	(void)loop;

	if (revents & EV_READ) {
		ssize_t n = read(c->fd, c->req + c->len, sizeof(c->req) - 1 - c->len);
		if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) {
			conn_free(c);
			return;
		}
		if (n > 0)
			c->len += (size_t)n;
		c->req[c->len] = '\0';
		if (strstr(c->req, "\r\n\r\n") == NULL && strstr(c->req, "\n\n") == NULL && c->len < sizeof(c->req) - 1)
			return;
		build_reply(c);
		ev_io_stop(c->m->loop, &c->w);
		ev_io_set(&c->w, c->fd, EV_WRITE);
		ev_io_start(c->m->loop, &c->w);
		return;
	}
	ssize_t n = write(c->fd, c->reply + c->sent, c->reply_len - c->sent);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		c->sent += (size_t)n;
	if (n < 0 || c->sent == c->reply_len)
		conn_free(c);
}

static void on_conn_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	conn_free(w->data);
}

static void on_conn_accepted(int fd, void *arg)
{
	struct metrics_server *m = arg;
	struct http_conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		close(fd);
		gate_closed(&m->gate);
		return;
	}
	c->m = m;
	c->fd = fd;
	ev_io_init(&c->w, on_conn, fd, EV_READ);
	c->w.data = c;
	ev_io_start(m->loop, &c->w);
	ev_timer_init(&c->timer, on_conn_timeout, REQUEST_TIMEOUT, 0.);
	c->timer.data = c;
	ev_timer_start(m->loop, &c->timer);
}

int metrics_bind(const struct sockaddr_any *addr, char *err, size_t errlen)
{
	int one = 1;
	int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0 || listen(fd, 64) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char bound[64] = "?";
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		sockaddr_format(bound, sizeof(bound), (struct sockaddr *)&ss);
	log_info("metrics address=%s path=/metrics", bound);
	return fd;
}

struct metrics_server *metrics_serve(struct ev_loop *loop, int fd, const struct metrics_handlers *h)
{
	struct metrics_server *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->loop = loop;
	m->fd = fd;
	m->h = *h;
	gate_start(&m->gate, loop, fd, METRICS_MAX_CONNS, "metrics", on_conn_accepted, m);
	return m;
}

void metrics_close(struct metrics_server *m)
{
	if (m == NULL)
		return;
	gate_stop(&m->gate);
	close(m->fd);
	m->closed = true;
	if (m->gate.nconns == 0)
		free(m);
}
