//go:build cgo

/* The grid scheduler of the host emulation (see doc.go). */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "emu_api.h"
#include "hostemu.h"

dim3 threadIdx, blockIdx, blockDim, gridDim;
char *emu_dynamic_smem;

namespace {

enum { kFresh, kRunning, kWaiting, kDone };
const size_t kStack = 128 * 1024;

/* A fiber is made once and then parks between the threads it runs: it
 * loops over kernel calls, so starting a thread costs two jumps, not a
 * context made and swapped in (swapcontext changes the signal mask, a
 * system call). */
struct Fiber {
	ucontext_t uc;
	jmp_buf jb;
	char *stack;
	int state;
	int barriers;
};

Fiber *fibers;
int fiberCount;
jmp_buf scheduler;
void (*kernelCall)(void **);
void **kernelArgs;
int current;
bool fiberMode;
size_t smemSize;

dim3 coords(int i) {
	dim3 d = {(unsigned)i % blockDim.x, ((unsigned)i / blockDim.x) % blockDim.y, (unsigned)i / (blockDim.x * blockDim.y)};
	return d;
}

void fiberLoop() {
	for (;;) {
		kernelCall(kernelArgs);
		Fiber &f = fibers[current];
		f.state = kDone;
		if (!_setjmp(f.jb)) _longjmp(scheduler, 1);
		/* Resumed: run the next thread. */
	}
}

/* startThread runs thread i of the current block on fiber i until it
 * waits at a barrier or finishes. */
void startThread(int i) {
	Fiber &f = fibers[i];
	current = i;
	threadIdx = coords(i);
	f.barriers = 0;
	if (f.state == kFresh) {
		getcontext(&f.uc);
		f.uc.uc_stack.ss_sp = f.stack;
		f.uc.uc_stack.ss_size = kStack;
		f.uc.uc_link = nullptr;
		makecontext(&f.uc, fiberLoop, 0);
		f.state = kRunning;
		ucontext_t here;
		if (!_setjmp(scheduler)) swapcontext(&here, &f.uc);
		return;
	}
	f.state = kRunning;
	if (!_setjmp(scheduler)) _longjmp(f.jb, 1);
}

void resumeFiber(int i) {
	current = i;
	threadIdx = coords(i);
	fibers[i].state = kRunning;
	if (!_setjmp(scheduler)) _longjmp(fibers[i].jb, 1);
}

bool ensureFibers(int n) {
	if (n <= fiberCount) return true;
	Fiber *f = (Fiber *)realloc(fibers, n * sizeof(Fiber));
	if (!f) return false;
	fibers = f;
	for (int i = fiberCount; i < n; i++) {
		fibers[i].stack = (char *)malloc(kStack);
		if (!fibers[i].stack) return false;
		fibers[i].state = kFresh;
	}
	fiberCount = n;
	return true;
}

/* runBlock runs the current block's n threads; false when their barrier
 * counts differ. */
bool runBlock(int n) {
	fiberMode = true;
	startThread(0);
	if (fibers[0].state == kDone) {
		/* No barrier in thread 0: the kernel has none (a barrier in only
		 * some threads is caught by emu_syncthreads). */
		fiberMode = false;
		for (int i = 1; i < n; i++) {
			threadIdx = coords(i);
			kernelCall(kernelArgs);
		}
		return true;
	}
	for (int i = 1; i < n; i++) startThread(i);
	for (;;) {
		bool waiting = false;
		for (int i = 0; i < n; i++) {
			if (fibers[i].state == kWaiting) {
				waiting = true;
				resumeFiber(i);
			}
		}
		if (!waiting) break;
	}
	fiberMode = false;
	for (int i = 1; i < n; i++)
		if (fibers[i].barriers != fibers[0].barriers) return false;
	return true;
}

} // namespace

void emu_syncthreads() {
	if (!fiberMode) {
		fprintf(stderr, "hostemu: __syncthreads in a thread other than 0 of a block whose thread 0 passed none\n");
		abort();
	}
	Fiber &f = fibers[current];
	f.state = kWaiting;
	f.barriers++;
	if (!_setjmp(f.jb)) _longjmp(scheduler, 1);
}

extern "C" int emu_run(void (*call)(void **), unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                       unsigned bz, size_t shmem, void **params) {
	unsigned threads = bx * by * bz;
	if (threads == 0 || threads > 1024 || bx > 1024 || by > 1024 || bz > 64 || gx == 0 || gy == 0 || gz == 0 ||
	    gy > 65535 || gz > 65535)
		return EMU_BAD_SHAPE;
	if (shmem > 48 * 1024) return EMU_BAD_SHARED;
	if (!ensureFibers((int)threads)) return EMU_BAD_SHAPE;
	if (shmem > smemSize) {
		emu_dynamic_smem = (char *)realloc(emu_dynamic_smem, shmem);
		smemSize = shmem;
	}
	blockDim = {bx, by, bz};
	gridDim = {gx, gy, gz};
	kernelCall = call;
	kernelArgs = params;
	for (unsigned z = 0; z < gz; z++)
		for (unsigned y = 0; y < gy; y++)
			for (unsigned x = 0; x < gx; x++) {
				blockIdx = {x, y, z};
				if (!runBlock((int)threads)) return EMU_BARRIER_DIVERGED;
			}
	return EMU_OK;
}
