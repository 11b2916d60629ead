/*
 * The C reference for the relay benchmark: the same raw UDP forwarder as
 * `livechat-relay-bench forward mmsg` (benches/relay/src/forward.rs), written in C, so the
 * benchmark measures in one run whether the Rust forwarder it uses as the physical limit
 * leaves anything on the table. recvmmsg (up to 32, returning after the first), then one
 * sendmmsg of every copy (up to 256 per call) pointing at the received buffers; the daemon's
 * media socket buffers (1 MiB each way). No parsing, no crypto, no event loop.
 *
 * Usage: forward-c SECONDS DEST... (DEST as 127.0.0.1:PORT). Prints `port=N` once bound,
 * then forwards until killed or for at most SECONDS. Built by benches/relay/run.sh with
 * the system's C compiler (-O2).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { RX = 32, TX = 256, BUF = 2048, MAX_DESTS = 1024 };

static unsigned char bufs[RX][BUF];
static struct iovec rx_iov[RX];
static struct mmsghdr rx_msgs[RX];
static struct iovec tx_iov[TX];
static struct mmsghdr tx_msgs[TX];
static struct sockaddr_in dests[MAX_DESTS];

static int parse_dest(const char *s, struct sockaddr_in *out) {
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host) return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    long port = strtol(colon + 1, NULL, 10);
    if (port <= 0 || port > 65535) return -1;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((unsigned short)port);
    return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

/* Sends every header; a datagram the kernel refuses is skipped, like the daemon's batch. */
static void send_all(int fd, int n) {
    int done = 0;
    while (done < n) {
        int r = sendmmsg(fd, tx_msgs + done, (unsigned)(n - done), 0);
        done += r <= 0 ? 1 : r;
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: forward-c SECONDS DEST...\n");
        return 2;
    }
    unsigned secs = (unsigned)strtoul(argv[1], NULL, 10);
    int ndest = argc - 2;
    if (ndest > MAX_DESTS) {
        fprintf(stderr, "forward-c: at most %d destinations\n", MAX_DESTS);
        return 2;
    }
    for (int i = 0; i < ndest; i++) {
        if (parse_dest(argv[i + 2], &dests[i]) != 0) {
            fprintf(stderr, "forward-c: bad destination %s\n", argv[i + 2]);
            return 2;
        }
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof local;
    int sockbuf = 1 << 20;
    if (fd < 0 || bind(fd, (struct sockaddr *)&local, sizeof local) != 0 ||
        getsockname(fd, (struct sockaddr *)&local, &len) != 0) {
        perror("forward-c: socket");
        return 1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sockbuf, sizeof sockbuf);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sockbuf, sizeof sockbuf);
    printf("port=%u\n", ntohs(local.sin_port));
    fflush(stdout);
    /* Bounded in time whatever the parent does: SIGALRM's default action ends the process. */
    alarm(secs);
    for (int i = 0; i < RX; i++) {
        rx_iov[i].iov_base = bufs[i];
        rx_iov[i].iov_len = BUF;
        rx_msgs[i].msg_hdr.msg_iov = &rx_iov[i];
        rx_msgs[i].msg_hdr.msg_iovlen = 1;
    }
    for (;;) {
        int n = recvmmsg(fd, rx_msgs, RX, MSG_WAITFORONE, NULL);
        if (n <= 0) continue;
        int k = 0;
        for (int i = 0; i < n; i++) {
            for (int d = 0; d < ndest; d++) {
                tx_iov[k].iov_base = bufs[i];
                tx_iov[k].iov_len = rx_msgs[i].msg_len;
                tx_msgs[k].msg_hdr.msg_iov = &tx_iov[k];
                tx_msgs[k].msg_hdr.msg_iovlen = 1;
                tx_msgs[k].msg_hdr.msg_name = &dests[d];
                tx_msgs[k].msg_hdr.msg_namelen = sizeof dests[d];
                if (++k == TX) {
                    send_all(fd, k);
                    k = 0;
                }
            }
        }
        send_all(fd, k);
    }
}
