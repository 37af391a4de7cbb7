/* HDF5's fletcher32 checksum, bit for bit, computed fast enough not to
 * slow a checkpoint down: the writers checksum every chunk themselves
 * (H5Dwrite_chunk, or chunks placed by the parallel writer). No HDF5 here,
 * so the unit tests can check it on its own. */
#ifndef CKPTMPI_STORAGE_FLETCHER32_H
#define CKPTMPI_STORAGE_FLETCHER32_H

#include <stddef.h>
#include <stdint.h>

/* Running sums over a stream given in pieces; every piece but the last
 * must have an even length (the checksum works on 16-bit words). */
struct ck_fletcher {
	uint64_t s1, s2;            /* the sums, modulo 65535 */
	int nonzero;                /* a non-zero word was seen */
};

static inline void ck_fletcher_init(struct ck_fletcher *f)
{
	f->s1 = f->s2 = 0;
	f->nonzero = 0;
}

void ck_fletcher_update(struct ck_fletcher *f, const void *p, size_t len);
uint32_t ck_fletcher_final(const struct ck_fletcher *f);

/* The checksum of one buffer, as H5_checksum_fletcher32 computes it. */
uint32_t ck_fletcher32(const void *p, size_t len);

#endif
