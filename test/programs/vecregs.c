/* vecregs: state that lives only in vector and x87/MXCSR registers while a
 * checkpoint stops the program. Each step spins ~SPIN iterations of an asm
 * loop that keeps its whole state in ymm0-ymm7 (and the rounding mode in
 * MXCSR); a lost or stale register changes the step's digest.
 *
 *   vecregs [NSTEPS=40] [SPIN=40000000] */
#include <immintrin.h>
#include <string.h>

#include "common.h"

__attribute__((target("avx2"))) static void spin(uint64_t lanes[32], long iters)
{
	__asm__ volatile(
		"vmovdqu   0(%0), %%ymm0\n\t"
		"vmovdqu  32(%0), %%ymm1\n\t"
		"vmovdqu  64(%0), %%ymm2\n\t"
		"vmovdqu  96(%0), %%ymm3\n\t"
		"vmovdqu 128(%0), %%ymm4\n\t"
		"vmovdqu 160(%0), %%ymm5\n\t"
		"vmovdqu 192(%0), %%ymm6\n\t"
		"vmovdqu 224(%0), %%ymm7\n\t"
		"1:\n\t"
		"vpaddq %%ymm1, %%ymm0, %%ymm0\n\t"
		"vpxor  %%ymm0, %%ymm2, %%ymm2\n\t"
		"vpaddq %%ymm3, %%ymm2, %%ymm2\n\t"
		"vpsllq $1, %%ymm4, %%ymm5\n\t"
		"vpxor  %%ymm5, %%ymm1, %%ymm1\n\t"
		"vpaddq %%ymm6, %%ymm4, %%ymm4\n\t"
		"vpxor  %%ymm2, %%ymm7, %%ymm7\n\t"
		"vpaddq %%ymm7, %%ymm6, %%ymm6\n\t"
		"vpaddq %%ymm0, %%ymm3, %%ymm3\n\t"
		"dec %1\n\t"
		"jnz 1b\n\t"
		"vmovdqu %%ymm0,   0(%0)\n\t"
		"vmovdqu %%ymm1,  32(%0)\n\t"
		"vmovdqu %%ymm2,  64(%0)\n\t"
		"vmovdqu %%ymm3,  96(%0)\n\t"
		"vmovdqu %%ymm4, 128(%0)\n\t"
		"vmovdqu %%ymm5, 160(%0)\n\t"
		"vmovdqu %%ymm6, 192(%0)\n\t"
		"vmovdqu %%ymm7, 224(%0)\n\t"
		"vzeroupper\n\t"
		: "+r"(lanes), "+r"(iters)
		:
		: "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "cc");
}

int main(int argc, char **argv)
{
	int nsteps = argc > 1 ? atoi(argv[1]) : 40;
	long iters = argc > 2 ? atol(argv[2]) : 40000000;
	uint64_t lanes[32], h = 1;
	volatile float f = 1.0f;

	if (!__builtin_cpu_supports("avx2")) {
		printf("0 skip: no avx2\n");
		return 77;
	}
	for (int i = 0; i < 32; i++)
		lanes[i] = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
	/* a non-default rounding mode that must survive in MXCSR */
	_mm_setcsr((_mm_getcsr() & ~0x6000u) | 0x2000u); /* round down */
	printf("0 start lanes=%d\n", 32);
	for (int s = 1; s <= nsteps; s++) {
		spin(lanes, iters);
		f = f / 3.0f * 3.0f + 1.0f / 7.0f; /* rounding-mode dependent */
		for (int i = 0; i < 32; i++)
			h = mix64(h, lanes[i]);
		uint32_t fb;
		memcpy(&fb, (const void *)&f, 4);
		printf("%d digest=%016llx f=%08x mxcsr_rc=%u\n", s, (unsigned long long)h, fb,
		       (_mm_getcsr() >> 13) & 3);
		fflush(stdout);
	}
	hold_before_final();
	printf("%d final checksum=%016llx\n", nsteps + 1, (unsigned long long)h);
	return 0;
}
