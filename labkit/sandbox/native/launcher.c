/*
 * launcher: a tiny exec wrapper for labkit's container processes.
 *
 *   launcher [--pdeathsig] [--no-new-privs] [--no-statx] [--no-userns] -- PROGRAM ARGS...
 *
 * --pdeathsig     PR_SET_PDEATHSIG=SIGKILL: the program is killed when the launcher's parent
 *                 ends (strictly: when the parent *thread* that forked it ends, as with
 *                 setpriv). If the parent dies while the signal is being set, the launcher
 *                 kills itself at once; a parent gone before the launcher ran is not seen
 *                 (getppid() is then already the reaper's pid), as with setpriv.
 * --no-new-privs  PR_SET_NO_NEW_PRIVS=1 (implied by the two filters below).
 * --no-statx      a seccomp filter answering ENOSYS to statx, so libuv (Node) falls back to
 *                 stat, which PRoot 5.1.0 translates.
 * --no-userns     rehearse Docker's default seccomp profile (Binder): unshare and clone with
 *                 CLONE_NEWUSER fail with EPERM, clone3 fails with ENOSYS (callers such as
 *                 glibc then fall back to clone, which the filter can inspect).
 *
 * The filters know x86_64 (x32 numbers included) and aarch64, both little-endian. On every
 * other architecture, and for 32-bit compat calls (i386, arm), they allow everything.
 * Errors print one line "launcher: ..." on stderr and exit 127 (126 when PROGRAM exists but
 * cannot be executed), as shells do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AUDIT_ARCH_AARCH64
#define AUDIT_ARCH_AARCH64 (EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE)
#endif
#ifndef CLONE_NEWUSER
#define CLONE_NEWUSER 0x10000000
#endif

#define X32_BIT 0x40000000u

/* Syscall numbers of one architecture. */
struct arch_nrs {
    unsigned arch, statx, unshare, clone, clone3;
};

static const struct arch_nrs ARCHES[] = {
    {AUDIT_ARCH_X86_64, 332, 272, 56, 435},
    {AUDIT_ARCH_AARCH64, 291, 97, 220, 435},
};

#define N_ARCHES (sizeof(ARCHES) / sizeof(ARCHES[0]))
#define MAX_INSNS 64

static int fail(int code, const char *fmt, const char *arg) {
    fputs("launcher: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return code;
}

struct prog {
    struct sock_filter insn[MAX_INSNS];
    unsigned short n;
};

static void emit(struct prog *p, unsigned short code, unsigned char jt, unsigned char jf,
                 unsigned k) {
    struct sock_filter f = {code, jt, jf, k};
    p->insn[p->n++] = f;
}

#define LOAD(off) emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, (off))
#define RET(val) emit(p, BPF_RET | BPF_K, 0, 0, (val))
#define ERRNO(e) (SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))

/*
 * One block per architecture:
 *   A = arch; if A != this arch: jump to the next block
 *   A = nr & ~X32_BIT
 *   statx  -> ENOSYS                      (--no-statx)
 *   clone3 -> ENOSYS                      (--no-userns)
 *   unshare/clone: A = low word of args[0]; A & CLONE_NEWUSER ? EPERM : ALLOW
 *   ALLOW
 * and a final ALLOW for unknown architectures.
 */
static void build(struct prog *p, int no_statx, int no_userns) {
    p->n = 0;
    for (unsigned i = 0; i < N_ARCHES; i++) {
        const struct arch_nrs *a = &ARCHES[i];
        LOAD(offsetof(struct seccomp_data, arch));
        unsigned short arch_jump = p->n;
        emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0 /* patched below */, a->arch);
        LOAD(offsetof(struct seccomp_data, nr));
        emit(p, BPF_ALU | BPF_AND | BPF_K, 0, 0, ~X32_BIT);
        if (no_statx) {
            emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, a->statx);
            RET(ERRNO(ENOSYS));
        }
        if (no_userns) {
            emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, a->clone3);
            RET(ERRNO(ENOSYS));
            emit(p, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, a->unshare);
            emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 3, a->clone);
            LOAD(offsetof(struct seccomp_data, args[0])); /* low word on little-endian */
            emit(p, BPF_JMP | BPF_JSET | BPF_K, 0, 1, CLONE_NEWUSER);
            RET(ERRNO(EPERM));
        }
        RET(SECCOMP_RET_ALLOW);
        p->insn[arch_jump].jf = (unsigned char)(p->n - arch_jump - 1);
    }
    RET(SECCOMP_RET_ALLOW);
}

static int install_filter(int no_statx, int no_userns) {
    struct prog p;
    build(&p, no_statx, no_userns);
    struct sock_fprog fprog = {p.n, p.insn};
#ifdef SYS_seccomp
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0) return 0;
    if (errno != ENOSYS) return -1;
#endif
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0);
}

/* Whether PROGRAM (no slash) names a file in some $PATH directory, as a shell would find it. */
static int in_path(const char *prog) {
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    char buf[4096];
    while (1) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        int n = len ? snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, prog)
                    : snprintf(buf, sizeof(buf), "%s", prog);
        struct stat st;
        if (n > 0 && (size_t)n < sizeof(buf) && stat(buf, &st) == 0 && S_ISREG(st.st_mode)) return 1;
        if (!colon) return 0;
        path = colon + 1;
    }
}

static const char USAGE[] =
    "usage: launcher [--pdeathsig] [--no-new-privs] [--no-statx] [--no-userns] -- PROGRAM [ARGS...]";

int main(int argc, char **argv) {
    pid_t parent = getppid();
    int pdeathsig = 0, nnp = 0, no_statx = 0, no_userns = 0, i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-') break;
        if (strcmp(a, "--pdeathsig") == 0)
            pdeathsig = 1;
        else if (strcmp(a, "--no-new-privs") == 0)
            nnp = 1;
        else if (strcmp(a, "--no-statx") == 0)
            no_statx = 1;
        else if (strcmp(a, "--no-userns") == 0)
            no_userns = 1;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return puts(USAGE) < 0 ? 1 : 0;
        else
            return fail(127, "unknown option '%s' (see --help)", a);
    }
    if (i >= argc) return fail(127, "no program given; %s", USAGE);

    if (pdeathsig) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
            return fail(127, "cannot set the parent-death signal: %s", strerror(errno));
        if (getppid() != parent) kill(getpid(), SIGKILL); /* the parent died before prctl */
    }
    if (nnp || no_statx || no_userns) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            return fail(127, "cannot set no-new-privs: %s", strerror(errno));
    }
    if ((no_statx || no_userns) && install_filter(no_statx, no_userns) != 0)
        return fail(127, "cannot install the seccomp filter: %s", strerror(errno));

    execvp(argv[i], argv + i);
    int e = errno;
    /* execvp says EACCES when a $PATH directory cannot be searched; a shell says not found */
    if (e == EACCES && !strchr(argv[i], '/') && !in_path(argv[i])) e = ENOENT;
    fprintf(stderr, "launcher: %s: %s\n", argv[i], strerror(e));
    return (e == EACCES || e == EPERM || e == ENOEXEC || e == EISDIR) ? 126 : 127;
}
