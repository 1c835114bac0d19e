/* dp_main.c - portcullis-proxy: flags and lifecycle. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "cs.h"
#include "dp.h"
#include "err.h"
#include "hc.h"
#include "log.h"

static const char dp_usage[] =
    "usage: portcullis-proxy [options]\n"
    "  --control-socket PATH   control plane socket (default ./var/control.sock)\n"
    "  --workers N             worker threads (default: number of cores)\n"
    "  --node-id NAME          name reported to the control plane (default: hostname)\n"
    "  --log-level LEVEL       debug, info, warn or error (default info)\n"
    "  --help, --version\n";

static struct dp dp_proc;

/* SIGTERM/SIGINT: stop accepting, let workers drain for the grace period;
 * the main loop ends when the last worker has stopped (dp_ctl_back_cb). */
static void dp_on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct dp *dp = w->data;

    (void)revents;
    if (dp->stopping) {
        log_info("dp", "signal %d again: exiting now", w->signum);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    log_info("dp", "signal %d: shutting down (grace %.1f s)", w->signum, dp->grace);
    dp->stopping = 1;
    ev_timer_stop(loop, &dp->retry);
    dp_workers_stop(dp);
}

/* Grace from PORTCULLIS_GRACE_MS (tests shorten it), default 10 s. */
static double dp_grace(void)
{
    const char *s = getenv("PORTCULLIS_GRACE_MS");
    char *end;
    long ms;

    if (s == NULL || *s == '\0')
        return 10.0;
    errno = 0;
    ms = strtol(s, &end, 10);
    if (*end != '\0' || errno != 0 || ms < 0 || ms > 3600000)
        return 10.0;
    return (double)ms / 1000.0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"control-socket", required_argument, NULL, 's'},
        {"workers", required_argument, NULL, 'w'},
        {"node-id", required_argument, NULL, 'n'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *control_socket = "./var/control.sock";
    char node_id[256] = "";
    struct ev_loop *loop;
    ev_signal sigterm, sigint;
    struct err e = {0};
    struct dp *dp;
    sigset_t term;
    enum log_level lvl;
    long workers;
    char *end;
    int c;

    workers = sysconf(_SC_NPROCESSORS_ONLN);
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            control_socket = optarg;
            break;
        case 'w':
            errno = 0;
            workers = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || errno != 0 || workers < 1 || workers > 256) {
                fprintf(stderr, "portcullis-proxy: bad --workers '%s' (1..256)\n", optarg);
                return 2;
            }
            break;
        case 'n':
            if (*optarg == '\0' || strlen(optarg) >= sizeof(node_id)) {
                fprintf(stderr, "portcullis-proxy: bad --node-id (1..255 bytes)\n");
                return 2;
            }
            snprintf(node_id, sizeof(node_id), "%s", optarg);
            break;
        case 'l':
            if (log_parse_level(optarg, &lvl) < 0) {
                fprintf(stderr, "portcullis-proxy: bad --log-level '%s' (debug|info|warn|error)\n",
                        optarg);
                return 2;
            }
            log_set_level(lvl);
            break;
        case 'h':
            fputs(dp_usage, stdout);
            return 0;
        case 'V':
            printf("portcullis-proxy %s\n", PC_VERSION);
            return 0;
        case ':':
            fprintf(stderr, "portcullis-proxy: option '%s' needs a value (try --help)\n",
                    argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "portcullis-proxy: unknown option '%s' (try --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "portcullis-proxy: unexpected argument '%s' (try --help)\n", argv[optind]);
        return 2;
    }
    if (workers < 1)
        workers = 1;
    if (node_id[0] == '\0' && gethostname(node_id, sizeof(node_id) - 1) < 0)
        snprintf(node_id, sizeof(node_id), "proxy");

    signal(SIGPIPE, SIG_IGN);
    loop = ev_default_loop(EVFLAG_AUTO);
    dp = &dp_proc;
    dp->loop = loop;
    dp->nworkers = (int)workers;
    dp->sock_path = control_socket;
    dp->grace = dp_grace();
    snprintf(dp->node_id, sizeof(dp->node_id), "%s", node_id);
    ev_signal_init(&sigterm, dp_on_signal, SIGTERM);
    sigterm.data = dp;
    ev_signal_init(&sigint, dp_on_signal, SIGINT);
    sigint.data = dp;
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sigint);
    log_info("dp", "proxy %s starting: %ld workers, control socket %s", node_id, workers,
             control_socket);
    dp_ctl_start(dp);
    if (dp_workers_start(dp, &e) < 0) {
        fprintf(stderr, "portcullis-proxy: %s\n", e.message);
        dp_workers_stop(dp);
        dp_workers_join(dp);
        dp_ctl_free(dp);
        return 1;
    }
    ev_run(loop, 0);

    /* A second SIGTERM while we clean up (a supervisor repeating itself)
     * must not turn a clean exit into death by signal once the watchers
     * are gone: keep both blocked until exit. */
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGINT);
    sigprocmask(SIG_BLOCK, &term, NULL);
    dp_workers_stop(dp);
    dp_workers_join(dp);
    hc_free(dp);
    dp_ctl_free(dp);
    dp_config_unref(dp->publishing);
    dp_config_unref(dp->cur);
    dp_stats_free_all(dp);
    ev_signal_stop(loop, &sigterm);
    ev_signal_stop(loop, &sigint);
    ev_loop_destroy(loop);
    log_info("dp", "proxy %s stopped", dp->node_id);
    cs_thread_cleanup();
    return 0;
}
