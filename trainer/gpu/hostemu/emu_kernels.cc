//go:build cgo

/* The kernel sources compiled for the host, and their table. */
#include <type_traits>
#include <utility>

#include "emu_api.h"
#include "hostemu.h"

namespace {

/* emu_call calls f with the values cuLaunchKernel-style params point at. */
template <typename... A, size_t... I>
void emu_call_impl(void (*f)(A...), void **params, std::index_sequence<I...>) {
	f(*static_cast<std::remove_cv_t<A> *>(params[I])...);
}

template <typename... A>
void emu_call(void (*f)(A...), void **params) {
	emu_call_impl(f, params, std::index_sequence_for<A...>{});
}

struct emu_kernel {
	const char *name;
	int params;
	void (*call)(void **);
};

} // namespace

#include "zz_kernels.h"

extern "C" int emu_run(void (*call)(void **), unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                       unsigned bz, size_t shmem, void **params);

extern "C" int emu_kernel_count(void) { return sizeof emu_kernels / sizeof emu_kernels[0]; }
extern "C" const char *emu_kernel_name(int k) { return emu_kernels[k].name; }
extern "C" int emu_kernel_params(int k) { return emu_kernels[k].params; }

extern "C" int emu_launch(int k, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                          size_t shmem, void **params) {
	if (k < 0 || k >= emu_kernel_count()) return EMU_BAD_KERNEL;
	return emu_run(emu_kernels[k].call, gx, gy, gz, bx, by, bz, shmem, params);
}
