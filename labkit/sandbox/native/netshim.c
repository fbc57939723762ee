/*
 * netshim: an LD_PRELOAD library that gives each pod of labkit's embedded cluster its own
 * ports, its own localhost and its own hostname, without root and without namespaces.
 *
 * Configuration is read once, from the environment, by a constructor (the values are copied,
 * so an app may clear its environment afterwards). With LABKIT_POD_IP unset or invalid the
 * library is a pure pass-through: every hook is one predictable branch and a call.
 *
 *   LABKIT_POD_IP=127.244.1.5        the pod's IPv4 loopback address (switches everything on)
 *   LABKIT_PORT_OFFSET=N             ports 1..1023 become N+1..N+1023 on cluster addresses
 *   LABKIT_CLUSTER_NETS=a/b,c/d      IPv4 CIDRs of pod and Service addresses (the pod IP counts)
 *   LABKIT_LOOPBACK_ONLY=1           destinations outside 127.0.0.0/8 fail with ENETUNREACH
 *   LABKIT_HOSTNAME=name             gethostname() and uname().nodename (cut to 63 bytes)
 *   LABKIT_SHIM_REPORT=/path         one line per EADDRINUSE / BLOCKED / LISTEN event
 *
 * The report file is opened for each event (O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC), written
 * with one write() and closed again. No descriptor is kept open, so fork() and exec() need
 * no care (a child reports through its own open), an app that closes all its descriptors
 * cannot make the shim write into some other file, and no descriptor leaks into children.
 * After exec, the new program's copy of the shim reads the environment again.
 *
 * Hooked: bind, listen, connect, sendto, sendmsg, recvfrom, recvmsg, getsockname,
 * getpeername, socket, accept, accept4, gethostname, uname.
 *
 * Limits (by design of LD_PRELOAD): calls made inside libc itself (its resolver's own
 * connect()), raw syscall(2), io_uring and statically linked programs are not seen.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define MAX_NETS 32
#define HOST_MAX 63

/* ---- configuration (written once by the constructor, read-only afterwards) ---------------- */

struct net4 {
    uint32_t addr; /* host byte order */
    uint32_t mask;
};

static int active;            /* LABKIT_POD_IP was valid */
static uint32_t pod_ip;       /* host byte order */
static unsigned port_offset;  /* 0: off */
static int loopback_only;
static int have_hostname;
static char hostname[HOST_MAX + 1];
static char report_path[4096];
static struct net4 nets[MAX_NETS];
static int n_nets;
static int bindv6only_default; /* /proc/sys/net/ipv6/bindv6only */

/* ---- the real functions ------------------------------------------------------------------- */

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
typedef ssize_t (*sendto_fn)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);
typedef int (*getname_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*listen_fn)(int, int);
typedef ssize_t (*recvfrom_fn)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);
typedef int (*socket_fn)(int, int, int);
typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);
typedef int (*gethostname_fn)(char *, size_t);
typedef int (*uname_fn)(struct utsname *);

static bind_fn real_bind;
static connect_fn real_connect;
static sendto_fn real_sendto;
static sendmsg_fn real_sendmsg;
static getname_fn real_getsockname;
static getname_fn real_getpeername;
static listen_fn real_listen;
static recvfrom_fn real_recvfrom;
static recvmsg_fn real_recvmsg;
static socket_fn real_socket;
static accept_fn real_accept;
static accept4_fn real_accept4;
static gethostname_fn real_gethostname;
static uname_fn real_uname;

/* Resolve a symbol on first use too: another library's constructor may call us before ours. */
static void *next_symbol(void **slot, const char *name) {
    void *fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!fn) {
        fn = dlsym(RTLD_NEXT, name);
        __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
    }
    return fn;
}

#define REAL(var, name) ((__typeof__(var))next_symbol((void **)&(var), name))

/* ---- per-socket memory of rewritten binds ------------------------------------------------- */

union addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

struct entry {
    int valid;
    union addr asked; /* what the app passed to bind() */
    union addr real;  /* what the socket is really bound to */
};

#define CHUNK 256
#define CHUNKS 4096 /* fds below 1,048,576 */

static struct entry *chunks[CHUNKS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static void lock_before_fork(void) { pthread_mutex_lock(&table_lock); }
static void unlock_after_fork(void) { pthread_mutex_unlock(&table_lock); }

static struct entry *chunk_of(int fd) {
    if (fd < 0 || fd / CHUNK >= CHUNKS) return NULL;
    return __atomic_load_n(&chunks[fd / CHUNK], __ATOMIC_ACQUIRE);
}

static void table_set(int fd, const union addr *asked, const union addr *real) {
    if (fd < 0 || fd / CHUNK >= CHUNKS) return;
    pthread_mutex_lock(&table_lock);
    struct entry *chunk = chunks[fd / CHUNK];
    if (!chunk) {
        chunk = calloc(CHUNK, sizeof(struct entry));
        if (chunk) __atomic_store_n(&chunks[fd / CHUNK], chunk, __ATOMIC_RELEASE);
    }
    if (chunk) {
        struct entry *e = &chunk[fd % CHUNK];
        e->asked = *asked;
        e->real = *real;
        e->valid = 1;
    }
    pthread_mutex_unlock(&table_lock);
}

static void table_clear(int fd) {
    struct entry *chunk = chunk_of(fd);
    if (!chunk) return;
    pthread_mutex_lock(&table_lock);
    chunk[fd % CHUNK].valid = 0;
    pthread_mutex_unlock(&table_lock);
}

/* Copy out the entry of fd; 0 when there is none. */
static int table_get(int fd, struct entry *out) {
    struct entry *chunk = chunk_of(fd);
    if (!chunk) return 0;
    pthread_mutex_lock(&table_lock);
    *out = chunk[fd % CHUNK];
    pthread_mutex_unlock(&table_lock);
    return out->valid;
}

/* ---- address helpers ---------------------------------------------------------------------- */

static const unsigned char mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* The IPv4 address inside an AF_INET or v4-mapped AF_INET6 address (host order). */
static int ipv4_of(const union addr *a, uint32_t *out) {
    if (a->sa.sa_family == AF_INET) {
        *out = ntohl(a->in.sin_addr.s_addr);
        return 1;
    }
    if (a->sa.sa_family == AF_INET6 && memcmp(a->in6.sin6_addr.s6_addr, mapped_prefix, 12) == 0) {
        uint32_t v;
        memcpy(&v, a->in6.sin6_addr.s6_addr + 12, 4);
        *out = ntohl(v);
        return 1;
    }
    return 0;
}

static int in_cluster(const union addr *a) {
    uint32_t ip;
    if (!ipv4_of(a, &ip)) return 0;
    if (ip == pod_ip) return 1;
    for (int i = 0; i < n_nets; i++)
        if ((ip & nets[i].mask) == nets[i].addr) return 1;
    return 0;
}

static int is_v6_any(const struct in6_addr *a) { return IN6_IS_ADDR_UNSPECIFIED(a); }
static int is_v6_loopback(const struct in6_addr *a) { return IN6_IS_ADDR_LOOPBACK(a); }

/* 0.0.0.0, 127.0.0.1, ::, ::1, ::ffff:0.0.0.0, ::ffff:127.0.0.1: "this machine" to the app. */
static int is_local_alias(const union addr *a) {
    uint32_t ip;
    if (a->sa.sa_family == AF_INET6 &&
        (is_v6_any(&a->in6.sin6_addr) || is_v6_loopback(&a->in6.sin6_addr)))
        return 1;
    if (ipv4_of(a, &ip)) return ip == INADDR_ANY || ip == INADDR_LOOPBACK;
    return 0;
}

static int is_loopback_dest(const union addr *a) {
    uint32_t ip;
    if (a->sa.sa_family == AF_INET6 && is_v6_loopback(&a->in6.sin6_addr)) return 1;
    if (ipv4_of(a, &ip)) return (ip >> 24) == 127;
    return 0;
}

static void set_pod_ip(union addr *a) {
    uint32_t n = htonl(pod_ip);
    if (a->sa.sa_family == AF_INET) {
        a->in.sin_addr.s_addr = n;
    } else {
        memcpy(a->in6.sin6_addr.s6_addr, mapped_prefix, 12);
        memcpy(a->in6.sin6_addr.s6_addr + 12, &n, 4);
        a->in6.sin6_flowinfo = 0;
        a->in6.sin6_scope_id = 0;
    }
}

static uint16_t port_of(const union addr *a) {
    return ntohs(a->sa.sa_family == AF_INET ? a->in.sin_port : a->in6.sin6_port);
}

static void set_port(union addr *a, uint16_t port) {
    if (a->sa.sa_family == AF_INET)
        a->in.sin_port = htons(port);
    else
        a->in6.sin6_port = htons(port);
}

/* Copy an app's INET/INET6 address into *out; 0 for other families or short lengths. */
static int load_addr(const struct sockaddr *sa, socklen_t len, union addr *out) {
    if (!sa) return 0;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        memset(out, 0, sizeof(*out));
        memcpy(&out->in, sa, sizeof(struct sockaddr_in));
        return 1;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        memset(out, 0, sizeof(*out));
        memcpy(&out->in6, sa, sizeof(struct sockaddr_in6));
        return 1;
    }
    return 0;
}

static socklen_t addr_len(const union addr *a) {
    return a->sa.sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static int same_addr(const union addr *a, const union addr *b) {
    if (a->sa.sa_family != b->sa.sa_family || port_of(a) != port_of(b)) return 0;
    if (a->sa.sa_family == AF_INET) return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr;
    return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof(struct in6_addr)) == 0;
}

/* "ip:port" as Node prints it (":::4000"); parse with rpartition(':'). */
static void format_addr(const union addr *a, char *buf, size_t size) {
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->sa.sa_family == AF_INET)
        inet_ntop(AF_INET, &a->in.sin_addr, ip, sizeof(ip));
    else
        inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof(ip));
    snprintf(buf, size, "%s:%u", ip, (unsigned)port_of(a));
}

/* ---- events ------------------------------------------------------------------------------- */

static void report(const char *kind, const union addr *asked, const union addr *real) {
    if (!report_path[0]) return;
    int saved = errno;
    char what[80], where[80] = "", comm[17] = "", line[320];
    format_addr(asked, what, sizeof(what));
    if (real) {
        char r[72];
        format_addr(real, r, sizeof(r));
        snprintf(where, sizeof(where), " real=%s", r);
    }
    /* the process's name (its main thread's), else the calling thread's */
    int cfd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    ssize_t cn = cfd >= 0 ? read(cfd, comm, sizeof(comm) - 1) : -1;
    if (cfd >= 0) close(cfd);
    if (cn > 0) {
        comm[cn] = 0;
        comm[strcspn(comm, "\n")] = 0;
    } else if (prctl(PR_GET_NAME, comm, 0, 0, 0) != 0) {
        strcpy(comm, "?");
    }
    for (char *c = comm; *c; c++)
        if (*c == ' ' || *c == '\n' || *c == '\t') *c = '_';
    int n = snprintf(line, sizeof(line), "%s %s%s pid=%ld comm=%s\n", kind, what, where,
                     (long)getpid(), comm);
    int fd = open(report_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (n > 0 && (size_t)n < sizeof(line)) {
            ssize_t w = write(fd, line, (size_t)n);
            (void)w;
        }
        close(fd);
    }
    errno = saved;
}

/* ---- destinations: connect, sendto, sendmsg ----------------------------------------------- */

enum { DEST_PASS, DEST_CHANGED, DEST_BLOCKED };

/* Rewrite a destination in place: localhost to the pod, privileged cluster ports, blocking. */
static int rewrite_dest(int fd, union addr *a) {
    union addr asked = *a;
    uint16_t port = port_of(a);
    int changed = 0;
    if (is_local_alias(a)) {
        set_pod_ip(a);
        changed = 1;
        if (a->sa.sa_family == AF_INET6) {
            int off = 0; /* a v4-mapped destination needs a dual-stack socket */
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
        }
    }
    if (loopback_only && !is_loopback_dest(a)) {
        report("BLOCKED", &asked, NULL);
        return DEST_BLOCKED;
    }
    if (port_offset && port >= 1 && port <= 1023 && in_cluster(a)) {
        set_port(a, (uint16_t)(port + port_offset));
        changed = 1;
    }
    return changed ? DEST_CHANGED : DEST_PASS;
}

EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len) {
    connect_fn next = REAL(real_connect, "connect");
    union addr a;
    if (!active || !load_addr(sa, len, &a)) return next(fd, sa, len);
    int saved = errno;
    switch (rewrite_dest(fd, &a)) {
    case DEST_BLOCKED:
        errno = ENETUNREACH;
        return -1;
    case DEST_CHANGED:
        errno = saved;
        return next(fd, &a.sa, addr_len(&a));
    default:
        errno = saved;
        return next(fd, sa, len);
    }
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa,
                      socklen_t len) {
    sendto_fn next = REAL(real_sendto, "sendto");
    union addr a;
    if (!active || !load_addr(sa, len, &a)) return next(fd, buf, n, flags, sa, len);
    int saved = errno;
    switch (rewrite_dest(fd, &a)) {
    case DEST_BLOCKED:
        errno = ENETUNREACH;
        return -1;
    case DEST_CHANGED:
        errno = saved;
        return next(fd, buf, n, flags, &a.sa, addr_len(&a));
    default:
        errno = saved;
        return next(fd, buf, n, flags, sa, len);
    }
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
    sendmsg_fn next = REAL(real_sendmsg, "sendmsg");
    union addr a;
    if (!active || !msg || !load_addr(msg->msg_name, msg->msg_namelen, &a))
        return next(fd, msg, flags);
    int saved = errno;
    struct msghdr copy;
    switch (rewrite_dest(fd, &a)) {
    case DEST_BLOCKED:
        errno = ENETUNREACH;
        return -1;
    case DEST_CHANGED:
        copy = *msg;
        copy.msg_name = &a;
        copy.msg_namelen = addr_len(&a);
        errno = saved;
        return next(fd, &copy, flags);
    default:
        errno = saved;
        return next(fd, msg, flags);
    }
}

/* ---- bind, listen, getsockname, getpeername ----------------------------------------------- */

EXPORT int bind(int fd, const struct sockaddr *sa, socklen_t len) {
    bind_fn next = REAL(real_bind, "bind");
    union addr asked;
    if (!active) return next(fd, sa, len);
    if (!load_addr(sa, len, &asked)) {
        table_clear(fd);
        return next(fd, sa, len);
    }
    int saved = errno;
    union addr a = asked;
    uint16_t port = port_of(&a);
    int changed = 0;
    if (is_local_alias(&a)) {
        if (a.sa.sa_family == AF_INET6) {
            int v6only = 0;
            socklen_t sl = sizeof(v6only);
            int pure_v6 = is_v6_any(&a.in6.sin6_addr) || is_v6_loopback(&a.in6.sin6_addr);
            if (pure_v6 && getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &sl) == 0 && v6only &&
                !bindv6only_default) {
                /* The app asked for an IPv6-only socket next to an IPv4 one (nginx's
                   "listen [::]:80"). All pod traffic is IPv4, so park it on [::1]:0,
                   where it takes no port a pod needs; getsockname still shows [::]:80. */
                a.in6.sin6_addr = in6addr_loopback;
                set_port(&a, 0);
                port = 0;
            } else {
                int off = 0;
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
                set_pod_ip(&a);
            }
        } else {
            set_pod_ip(&a);
        }
        changed = 1;
    }
    if (port_offset && port >= 1 && port <= 1023 && in_cluster(&a)) {
        set_port(&a, (uint16_t)(port + port_offset));
        changed = 1;
    }
    if (!changed) {
        table_clear(fd);
        errno = saved;
        return next(fd, sa, len);
    }
    errno = saved;
    int rc = next(fd, &a.sa, addr_len(&a));
    if (rc != 0) {
        if (errno == EADDRINUSE) report("EADDRINUSE", &asked, NULL);
        table_clear(fd);
        return rc;
    }
    union addr real;
    socklen_t rl = sizeof(real);
    memset(&real, 0, sizeof(real));
    if (REAL(real_getsockname, "getsockname")(fd, &real.sa, &rl) != 0) real = a;
    table_set(fd, &asked, &real);
    errno = saved;
    return rc;
}

/* listen() on an unbound socket would bind the wildcard address: bind it as the app's
   bind(("", 0)) would be, so that it lands on the pod IP. */
static void bind_before_listen(int fd) {
    union addr now, any;
    socklen_t len = sizeof(now);
    memset(&now, 0, sizeof(now));
    if (REAL(real_getsockname, "getsockname")(fd, &now.sa, &len) != 0) return;
    if ((now.sa.sa_family != AF_INET && now.sa.sa_family != AF_INET6) || port_of(&now) != 0) return;
    memset(&any, 0, sizeof(any));
    any.sa.sa_family = now.sa.sa_family;
    bind(fd, &any.sa, addr_len(&any)); /* on failure, listen() binds as it always does */
}

EXPORT int listen(int fd, int backlog) {
    listen_fn next = REAL(real_listen, "listen");
    if (!active) return next(fd, backlog);
    int saved = errno;
    struct entry e;
    if (!table_get(fd, &e)) bind_before_listen(fd);
    errno = saved;
    int rc = next(fd, backlog);
    if (table_get(fd, &e)) {
        union addr asked = e.asked;
        if (port_of(&asked) == 0) set_port(&asked, port_of(&e.real));
        if (rc == 0)
            report("LISTEN", &asked, &e.real);
        else if (errno == EADDRINUSE)
            report("EADDRINUSE", &e.asked, NULL);
    }
    return rc;
}

/* Write addr into the app's buffer with the kernel's truncation rules. */
static void store_addr(const union addr *a, struct sockaddr *sa, socklen_t *len) {
    socklen_t full = addr_len(a);
    memcpy(sa, a, *len < full ? *len : full);
    *len = full;
}

/* Show a privileged cluster port as the app expects it (N+80 -> 80). */
static void unmap_port(struct sockaddr *sa, socklen_t *len, socklen_t given) {
    union addr a;
    if (!port_offset || !load_addr(sa, given < *len ? given : *len, &a) || !in_cluster(&a)) return;
    uint16_t port = port_of(&a);
    if (port > port_offset && port <= port_offset + 1023) {
        set_port(&a, (uint16_t)(port - port_offset));
        socklen_t l = given;
        store_addr(&a, sa, &l);
    }
}

EXPORT int getsockname(int fd, struct sockaddr *sa, socklen_t *len) {
    getname_fn next = REAL(real_getsockname, "getsockname");
    if (!active || !sa || !len) return next(fd, sa, len);
    socklen_t given = *len;
    int rc = next(fd, sa, len);
    if (rc != 0) return rc;
    struct entry e;
    union addr now;
    if (table_get(fd, &e) && load_addr(sa, given < *len ? given : *len, &now) &&
        same_addr(&now, &e.real)) {
        union addr shown = e.asked;
        if (port_of(&shown) == 0) set_port(&shown, port_of(&e.real));
        *len = given;
        store_addr(&shown, sa, len);
        return 0;
    }
    unmap_port(sa, len, given);
    return 0;
}

EXPORT int getpeername(int fd, struct sockaddr *sa, socklen_t *len) {
    getname_fn next = REAL(real_getpeername, "getpeername");
    if (!active || !sa || !len) return next(fd, sa, len);
    socklen_t given = *len;
    int rc = next(fd, sa, len);
    if (rc == 0) unmap_port(sa, len, given);
    return rc;
}

/* Sources of datagrams from privileged cluster ports show the port the app expects. */
EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *sa, socklen_t *len) {
    recvfrom_fn next = REAL(real_recvfrom, "recvfrom");
    if (!active || !port_offset || !sa || !len) return next(fd, buf, n, flags, sa, len);
    socklen_t given = *len;
    ssize_t r = next(fd, buf, n, flags, sa, len);
    if (r >= 0) unmap_port(sa, len, given);
    return r;
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
    recvmsg_fn next = REAL(real_recvmsg, "recvmsg");
    if (!active || !port_offset || !msg || !msg->msg_name) return next(fd, msg, flags);
    socklen_t given = msg->msg_namelen;
    ssize_t r = next(fd, msg, flags);
    if (r >= 0) unmap_port(msg->msg_name, &msg->msg_namelen, given);
    return r;
}

/* New descriptors forget what an earlier socket with the same number was bound to. */
EXPORT int socket(int domain, int type, int protocol) {
    socket_fn next = REAL(real_socket, "socket");
    int fd = next(domain, type, protocol);
    if (active && fd >= 0) table_clear(fd);
    return fd;
}

EXPORT int accept(int fd, struct sockaddr *sa, socklen_t *len) {
    accept_fn next = REAL(real_accept, "accept");
    int c = next(fd, sa, len);
    if (active && c >= 0) table_clear(c);
    return c;
}

EXPORT int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags) {
    accept4_fn next = REAL(real_accept4, "accept4");
    int c = next(fd, sa, len, flags);
    if (active && c >= 0) table_clear(c);
    return c;
}

/* ---- hostname ----------------------------------------------------------------------------- */

EXPORT int gethostname(char *name, size_t len) {
    gethostname_fn next = REAL(real_gethostname, "gethostname");
    if (!active || !have_hostname) return next(name, len);
    size_t n = strlen(hostname);
    if (len == 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (n + 1 > len) { /* as glibc: truncate, then say so */
        memcpy(name, hostname, len);
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(name, hostname, n + 1);
    return 0;
}

EXPORT int uname(struct utsname *buf) {
    uname_fn next = REAL(real_uname, "uname");
    int rc = next(buf);
    if (rc == 0 && active && have_hostname) {
        memset(buf->nodename, 0, sizeof(buf->nodename));
        strncpy(buf->nodename, hostname, sizeof(buf->nodename) - 1);
    }
    return rc;
}

/* ---- configuration ------------------------------------------------------------------------ */

static int parse_ipv4(const char *s, size_t len, uint32_t *out) {
    char tmp[INET_ADDRSTRLEN];
    struct in_addr a;
    if (len == 0 || len >= sizeof(tmp)) return 0;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    if (inet_pton(AF_INET, tmp, &a) != 1) return 0;
    *out = ntohl(a.s_addr);
    return 1;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out) {
    char *end;
    if (!s || !*s || *s < '0' || *s > '9') return 0;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max) return 0;
    *out = v;
    return 1;
}

/* One "a.b.c.d[/bits]" or "::ffff:a.b.c.d[/96+bits]" entry; 0 if malformed. */
static int parse_net(const char *s, size_t len, struct net4 *out) {
    unsigned long bits = 32, base = 0;
    if (len > 7 && strncasecmp(s, "::ffff:", 7) == 0) {
        s += 7;
        len -= 7;
        bits = 128;
        base = 96;
    }
    const char *slash = memchr(s, '/', len);
    size_t ip_len = slash ? (size_t)(slash - s) : len;
    if (slash) {
        char b[4];
        size_t bl = len - ip_len - 1;
        if (bl == 0 || bl >= sizeof(b)) return 0;
        memcpy(b, slash + 1, bl);
        b[bl] = 0;
        if (!parse_uint(b, base + 32, &bits) || bits < base) return 0;
    }
    bits -= base;
    uint32_t ip;
    if (!parse_ipv4(s, ip_len, &ip)) return 0;
    uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    out->addr = ip & mask;
    out->mask = mask;
    return 1;
}

/* Comma-separated networks; malformed entries are skipped (the shim never prints). */
static void parse_nets(const char *s) {
    while (s && *s && n_nets < MAX_NETS) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        while (len && (*s == ' ')) {
            s++;
            len--;
        }
        while (len && s[len - 1] == ' ') len--;
        if (parse_net(s, len, &nets[n_nets])) n_nets++;
        s = comma ? comma + 1 : NULL;
    }
}

static void read_bindv6only(void) {
    int fd = open("/proc/sys/net/ipv6/bindv6only", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char c = '0';
    if (read(fd, &c, 1) == 1) bindv6only_default = c == '1';
    close(fd);
}

__attribute__((constructor)) static void netshim_init(void) {
    int saved = errno;
    const char *ip = getenv("LABKIT_POD_IP");
    uint32_t addr;
    if (!ip || !parse_ipv4(ip, strlen(ip), &addr)) goto out;
    pod_ip = addr;

    unsigned long v;
    if (parse_uint(getenv("LABKIT_PORT_OFFSET"), 65535 - 1023, &v)) port_offset = (unsigned)v;
    parse_nets(getenv("LABKIT_CLUSTER_NETS"));
    const char *lo = getenv("LABKIT_LOOPBACK_ONLY");
    loopback_only = lo && *lo && strcmp(lo, "0") != 0;
    const char *h = getenv("LABKIT_HOSTNAME");
    if (h && *h) {
        strncpy(hostname, h, HOST_MAX);
        hostname[HOST_MAX] = 0;
        have_hostname = 1;
    }
    const char *r = getenv("LABKIT_SHIM_REPORT");
    if (r && *r && strlen(r) < sizeof(report_path)) strcpy(report_path, r);
    read_bindv6only();

    REAL(real_bind, "bind");
    REAL(real_connect, "connect");
    REAL(real_sendto, "sendto");
    REAL(real_sendmsg, "sendmsg");
    REAL(real_getsockname, "getsockname");
    REAL(real_getpeername, "getpeername");
    REAL(real_listen, "listen");
    REAL(real_recvfrom, "recvfrom");
    REAL(real_recvmsg, "recvmsg");
    REAL(real_socket, "socket");
    REAL(real_accept, "accept");
    REAL(real_accept4, "accept4");
    REAL(real_gethostname, "gethostname");
    REAL(real_uname, "uname");
    pthread_atfork(lock_before_fork, unlock_after_fork, unlock_after_fork);
    active = 1;
out:
    errno = saved;
}
