/* cp_main.c - portcullisd: flags, data directory, lifecycle. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "cp-t.h"
#include "err.h"
#include "log.h"
#include "net.h"

static const char cp_usage[] =
    "usage: portcullisd [options]\n"
    "  --data-dir DIR           state directory (default ./var, created 0700)\n"
    "  --api-listen ADDR:PORT   REST API address (default 127.0.0.1:9000; port 0 picks one)\n"
    "  --control-socket PATH    data-plane socket (default DIR/control.sock)\n"
    "  --log-level LEVEL        debug, info, warn or error (default info)\n"
    "  --help, --version\n"
    "environment: PORTCULLIS_ADMIN_TOKEN  admin token to use instead of a generated one\n";

/* Create 'dir' (and parents) with mode 0700 if missing, and check that we
 * can create files in it. */
static int cp_prepare_dir(const char *dir, struct err *err)
{
    char path[PATH_MAX], probe[PATH_MAX + 32];
    struct stat st;
    size_t n = strlen(dir);
    int fd;

    if (n == 0 || n >= sizeof(path))
        return err_set(err, ERR_INVALID, "bad_data_dir", NULL,
                       "data dir path is empty or too long");
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return err_set(err, ERR_INVALID, "bad_data_dir", NULL, "cannot create %s: %s", path,
                           strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return err_set(err, ERR_INVALID, "bad_data_dir", NULL, "cannot create data dir %s: %s",
                       path, strerror(errno));
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return err_set(err, ERR_INVALID, "bad_data_dir", NULL, "data dir %s is not a directory",
                       path);
    /* access(2) lies for root on read-only mounts; really create a file. */
    snprintf(probe, sizeof(probe), "%s/.probe.%ld", path, (long)getpid());
    fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return err_set(err, ERR_INVALID, "bad_data_dir", NULL, "data dir %s is not writable: %s",
                       path, strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"api-listen", required_argument, NULL, 'a'},
        {"control-socket", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct cp_opts opts = {.data_dir = "./var", .api_listen = "127.0.0.1:9000"};
    char sockpath[PATH_MAX], addr[NET_ADDRSTRLEN];
    struct sockaddr_storage ss;
    struct api *api = NULL;
    struct err err = {0};
    enum log_level lvl;
    socklen_t sslen;
    sigset_t sigs;
    int c, sig, lfd = -1;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            opts.data_dir = optarg;
            break;
        case 'a':
            opts.api_listen = optarg;
            break;
        case 's':
            opts.control_socket = optarg;
            break;
        case 'l':
            if (log_parse_level(optarg, &lvl) < 0) {
                fprintf(stderr, "portcullisd: bad --log-level '%s' (debug|info|warn|error)\n",
                        optarg);
                return 2;
            }
            log_set_level(lvl);
            break;
        case 'h':
            fputs(cp_usage, stdout);
            return 0;
        case 'V':
            printf("portcullisd %s\n", PC_VERSION);
            return 0;
        case ':':
            fprintf(stderr, "portcullisd: option '%s' needs a value (try --help)\n",
                    argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "portcullisd: unknown option '%s' (try --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "portcullisd: unexpected argument '%s' (try --help)\n", argv[optind]);
        return 2;
    }
    if (net_parse_hostport(opts.api_listen, &ss, &sslen, &err) < 0) {
        fprintf(stderr, "portcullisd: bad --api-listen: %s\n", err.message);
        return 2;
    }
    if (opts.control_socket == NULL) {
        snprintf(sockpath, sizeof(sockpath), "%s/control.sock", opts.data_dir);
        opts.control_socket = sockpath;
    }
    umask(077);
    if (cp_prepare_dir(opts.data_dir, &err) < 0) {
        fprintf(stderr, "portcullisd: %s\n", err.message);
        return 1;
    }

    /* Block the stop signals before any thread starts so that only the
     * main thread, in sigwait(), receives them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (net_listen_tcp((struct sockaddr *)&ss, sslen, 0, 512, &lfd, &err) < 0) {
        fprintf(stderr, "portcullisd: %s\n", err.message);
        return 1;
    }
    sslen = sizeof(ss);
    getsockname(lfd, (struct sockaddr *)&ss, &sslen);
    if (api_start(&opts, lfd, &api, &err) < 0) {
        fprintf(stderr, "portcullisd: %s\n", err.message);
        return 1;
    }
    log_info("cp", "api listening on %s", net_addr_str((struct sockaddr *)&ss, addr, sizeof(addr)));

    do {
        if (sigwait(&sigs, &sig) != 0)
            sig = SIGTERM;
    } while (sig != SIGTERM && sig != SIGINT);
    log_info("cp", "signal %d: shutting down", sig);
    api_stop(api);
    return 0;
}
