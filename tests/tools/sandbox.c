/*
 * sandbox.c - run a command under the seccomp filters systemd installs for
 * two settings of contrib/systemd/ladderd.service.in, so a test can show
 * ladderd, its stages, libav* and libx264 run under them without systemd
 * as pid 1. Filters are inherited by every child (exec included).
 *
 * MemoryDenyWriteExecute=yes (systemd 252, seccomp_memory_deny_write_execute):
 * EPERM for mmap with PROT_WRITE and PROT_EXEC together, for mprotect and
 * pkey_mprotect adding PROT_EXEC, and for shmat with SHM_EXEC.
 *
 * SystemCallFilter= as an allow list with SystemCallErrorNumber=EPERM and
 * SystemCallArchitectures=native: every system call whose number is not in
 * FILE (decimal numbers, one per line; the test makes it from
 * `systemd-analyze syscall-filter`) fails with EPERM, and so does any call
 * of a foreign ABI.
 *
 *   sandbox --check                      prove the filters refuse
 *   sandbox [--syscalls FILE] CMD [ARG...]
 *
 * Exit 77 (automake's skip) where a filter cannot be installed.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define MDWE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define MDWE_ARCH AUDIT_ARCH_AARCH64
#endif

#ifndef SHM_EXEC
#define SHM_EXEC 0100000
#endif

/* Low 32 bits of argument N (little-endian). */
#define ARG_LO(n) (offsetof(struct seccomp_data, args) + 8 * (n))
#define EPERM_RET (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

/* The MemoryDenyWriteExecute filter. */
static int
install_mdwe(void)
{
#ifdef MDWE_ARCH
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MDWE_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 4, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mprotect, 6, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pkey_mprotect, 5, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_shmat, 7, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* mmap: prot & (W|X) == W|X */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2)),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, PROT_WRITE | PROT_EXEC),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROT_WRITE | PROT_EXEC, 7,
		    6),
		/* mprotect, pkey_mprotect: prot & X */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2)),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, PROT_EXEC),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROT_EXEC, 4, 3),
		/* shmat: shmflg & SHM_EXEC */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2)),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, SHM_EXEC),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SHM_EXEC, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, EPERM_RET),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]),
		.filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		fprintf(stderr, "sandbox: cannot install the filter: %s\n",
		    strerror(errno));
		return -1;
	}
	return 0;
#else
	fprintf(stderr, "sandbox: unsupported architecture\n");
	return -1;
#endif
}

/*
 * The SystemCallFilter= allow list of FILE, a second filter (the kernel
 * applies both; the stricter answer wins). A pair of instructions per
 * number: a BPF jump reaches at most 255 instructions ahead.
 */
static int
install_syscalls(const char *file)
{
#ifdef MDWE_ARCH
	struct sock_filter *f = NULL;
	struct sock_fprog prog;
	FILE *in = fopen(file, "r");
	size_t n = 0, cap = 1100;
	long nr;
	int rc = -1;

	if (in == NULL) {
		fprintf(stderr, "sandbox: cannot open '%s': %s\n", file,
		    strerror(errno));
		return -1;
	}
	if ((f = calloc(cap, sizeof(*f))) == NULL)
		goto out;
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
	    offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
	    MDWE_ARCH, 1, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, EPERM_RET);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
	    offsetof(struct seccomp_data, nr));
	while (fscanf(in, "%ld", &nr) == 1) {
		if (n + 3 > cap || nr < 0) {
			fprintf(stderr, "sandbox: too many or bad numbers\n");
			goto out;
		}
		f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
		    (unsigned)nr, 0, 1);
		f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
		    SECCOMP_RET_ALLOW);
	}
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, EPERM_RET);
	prog.len = (unsigned short)n;
	prog.filter = f;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		fprintf(stderr, "sandbox: cannot install the filter: %s\n",
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(f);
	fclose(in);
	return rc;
#else
	(void)file;
	fprintf(stderr, "sandbox: unsupported architecture\n");
	return -1;
#endif
}

/* The filter refuses what it should and allows the rest. */
static int
check(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	void *wx, *rw;
	int bad = 0;

	wx = mmap(NULL, pg, PROT_READ | PROT_WRITE | PROT_EXEC,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (wx != MAP_FAILED || errno != EPERM) {
		fprintf(stderr, "sandbox: a W+X mmap was allowed\n");
		bad = 1;
	}
	rw = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (rw == MAP_FAILED) {
		fprintf(stderr, "sandbox: a plain mmap was refused\n");
		return 1;
	}
	if (mprotect(rw, pg, PROT_READ | PROT_EXEC) == 0 || errno != EPERM) {
		fprintf(stderr, "sandbox: mprotect to PROT_EXEC was "
		    "allowed\n");
		bad = 1;
	}
	if (mprotect(rw, pg, PROT_READ) != 0) {
		fprintf(stderr, "sandbox: mprotect to PROT_READ was "
		    "refused\n");
		bad = 1;
	}
	munmap(rw, pg);
	if (!bad)
		printf("sandbox: W+X mmap and mprotect(PROT_EXEC) refused\n");
	return bad;
}

int
main(int argc, char **argv)
{
	int i = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: sandbox --check | "
				"sandbox [--syscalls FILE] CMD [ARG...]\n");
		return 2;
	}
	if (install_mdwe() < 0)
		return 77;
	if (strcmp(argv[1], "--check") == 0)
		return check();
	if (strcmp(argv[1], "--syscalls") == 0 && argc >= 4) {
		if (install_syscalls(argv[2]) < 0)
			return 77;
		i = 3;
	}
	execvp(argv[i], argv + i);
	fprintf(stderr, "sandbox: cannot run '%s': %s\n", argv[i],
	    strerror(errno));
	return 127;
}
