/* fletcher32 as HDF5 stores it, with SSE2.
 *
 * HDF5 sums big-endian 16-bit words, sum1 += w and sum2 += sum1, and folds
 * both (x & 0xffff) + (x >> 16) every 360 words and at the end. A fold keeps
 * the value modulo 65535 and keeps it non-zero once it is, so the result is
 * each sum modulo 65535, written 65535 rather than 0 once any word was
 * non-zero. That lets blocks be summed in any grouping: over n words w_i
 * following sums s1, s2, s1 grows by the sum of the w_i and s2 by
 * n * s1 + the sum of (n - i) * w_i (i from 0). */
#include <string.h>

#include "storage/fletcher32.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MOD 65535u
/* 16-byte vectors per block: the 32-bit lane sums cannot overflow (the
 * weighted one stays below 256 * 255 / 2 * 65535 < 2^32) */
#define BLOCK_VECS 256u

static void scalar_words(struct ck_fletcher *f, const uint8_t *p, size_t words)
{
	uint64_t s1 = f->s1, s2 = f->s2;
	unsigned nz = 0;

	while (words) {
		/* 4096 steps keep both below 2^64 with room to spare */
		size_t n = words > 4096 ? 4096 : words;

		words -= n;
		for (size_t i = 0; i < n; i++, p += 2) {
			unsigned w = (unsigned)p[0] << 8 | p[1];

			nz |= w;
			s1 += w;
			s2 += s1;
		}
		s1 %= MOD;
		s2 %= MOD;
	}
	f->s1 = s1;
	f->s2 = s2;
	f->nonzero |= nz != 0;
}

#if defined(__SSE2__)
/* Whole blocks of 8-word vectors. Per lane l of vector k (of K): s1 gets
 * the word, pre gets the s1 of the vectors before, so that the word's
 * weight 8 * (K - k) - l becomes 8 * (pre + s1) - l * s1 summed per lane. */
static size_t simd_blocks(struct ck_fletcher *f, const uint8_t *p, size_t len)
{
	const __m128i zero = _mm_setzero_si128();
	size_t done = 0;
	__m128i any = zero;

	while (len - done >= 16) {
		size_t vecs = (len - done) / 16;
		__m128i s1lo = zero, s1hi = zero, prelo = zero, prehi = zero;
		uint32_t a[4], b[4], c[4], d[4];
		uint64_t sum = 0, weighted = 0;

		if (vecs > BLOCK_VECS)
			vecs = BLOCK_VECS;
		for (size_t k = 0; k < vecs; k++) {
			__m128i v = _mm_loadu_si128((const __m128i *)(p + done + 16 * k));

			any = _mm_or_si128(any, v);
			/* big-endian words */
			v = _mm_or_si128(_mm_slli_epi16(v, 8), _mm_srli_epi16(v, 8));
			prelo = _mm_add_epi32(prelo, s1lo);
			prehi = _mm_add_epi32(prehi, s1hi);
			s1lo = _mm_add_epi32(s1lo, _mm_unpacklo_epi16(v, zero));
			s1hi = _mm_add_epi32(s1hi, _mm_unpackhi_epi16(v, zero));
		}
		_mm_storeu_si128((__m128i *)a, s1lo);
		_mm_storeu_si128((__m128i *)b, s1hi);
		_mm_storeu_si128((__m128i *)c, prelo);
		_mm_storeu_si128((__m128i *)d, prehi);
		for (unsigned l = 0; l < 4; l++) {
			sum += (uint64_t)a[l] + b[l];
			weighted += 8 * ((uint64_t)c[l] + a[l]) - (uint64_t)l * a[l];
			weighted += 8 * ((uint64_t)d[l] + b[l]) - (uint64_t)(l + 4) * b[l];
		}
		f->s2 = (f->s2 + (uint64_t)(8 * vecs) % MOD * f->s1 + weighted) % MOD;
		f->s1 = (f->s1 + sum) % MOD;
		done += 16 * vecs;
	}
	if (_mm_movemask_epi8(_mm_cmpeq_epi8(any, zero)) != 0xffff)
		f->nonzero = 1;
	return done;
}
#endif

void ck_fletcher_update(struct ck_fletcher *f, const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t done = 0;

#if defined(__SSE2__)
	done = simd_blocks(f, b, len);
#endif
	scalar_words(f, b + done, (len - done) / 2);
	if (len % 2) {
		/* a trailing byte counts as the high half of a last word */
		unsigned w = (unsigned)b[len - 1] << 8;

		f->s1 = (f->s1 + w) % MOD;
		f->s2 = (f->s2 + f->s1) % MOD;
		f->nonzero |= w != 0;
	}
}

uint32_t ck_fletcher_final(const struct ck_fletcher *f)
{
	uint32_t s1 = (uint32_t)(f->s1 % MOD), s2 = (uint32_t)(f->s2 % MOD);

	if (f->nonzero) {
		if (!s1)
			s1 = MOD;
		if (!s2)
			s2 = MOD;
	}
	return s2 << 16 | s1;
}

uint32_t ck_fletcher32(const void *p, size_t len)
{
	struct ck_fletcher f;

	ck_fletcher_init(&f);
	ck_fletcher_update(&f, p, len);
	return ck_fletcher_final(&f);
}
