/* cp-t.h - control plane process settings. */
#ifndef PC_CP_T_H
#define PC_CP_T_H

struct cp_opts {
    const char *data_dir;       /* --data-dir, default ./var */
    const char *api_listen;     /* --api-listen ADDR:PORT, default 127.0.0.1:9000 */
    const char *control_socket; /* --control-socket, default DATA_DIR/control.sock */
    int ack_timeout_ms;         /* bound on waiting for proxies; 0: the default */
};

#endif
