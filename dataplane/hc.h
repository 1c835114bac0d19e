/* hc.h - health checks and draining reports, run by the proxy's main
 * thread (never by workers): one checker per target per proxy. */
#ifndef PC_HC_H
#define PC_HC_H

#include "dp-t.h"
#include "hc-t.h"

/* Results of hc_http_feed. */
#define HC_HTTP_AGAIN 0      /* no complete status line yet */
#define HC_HTTP_MALFORMED -1 /* garbage, or a line longer than HC_HTTP_MAX */

/* Feed 'n' bytes of a response to 'h'. Returns the status code (100..599)
 * once a whole, well-formed status line ("HTTP/1.x NNN ...") arrived,
 * HC_HTTP_AGAIN while more is needed, HC_HTTP_MALFORMED otherwise. Pure. */
int hc_http_feed(struct hc_http *h, const char *data, size_t n);

/* Whether an HTTP status counts as healthy (2xx and 3xx). */
int hc_http_ok(int status);

/* Feed one check result (ok 1/0) to 'sm' with the group's thresholds.
 * From TG_H_INITIAL the first result decides; then unhealthy after
 * 'unhealthy_threshold' consecutive failures, healthy after
 * 'healthy_threshold' consecutive successes. Returns 1 when the state
 * changed. Pure. */
/* The Host header value of an HTTP check: "host:port", "[v6]:port", no
 * port for 80. */
void hc_host_header(char *out, size_t cap, const char *host, int port);
int hc_sm_feed(struct hc_sm *sm, int ok, int healthy_threshold, int unhealthy_threshold);

/* The API name of a health state ("initial", "healthy", "unhealthy"). */
const char *hc_state_name(enum tg_health h);

/* dp->cur just became current (every worker serves it): start, keep, reset
 * or stop checkers, start draining targets that left or went to weight 0,
 * and report what changed. Main thread. */
void hc_apply(struct dp *dp);

/* The control channel just (re)connected (hello sent): report the state of
 * every known target. Main thread. */
void hc_report_all(struct dp *dp);

/* Stop every check and drain timer and free everything (exit). */
void hc_free(struct dp *dp);

#endif
