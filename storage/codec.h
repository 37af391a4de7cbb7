/* Page-data compression: CKPTMPI_COMPRESS, and the chunk formats of HDF5's
 * registered filters (deflate 1, zstd 32015, lz4 32004, blosc 32001) written and read
 * here, bit for bit as the community plugins do, so that chunks can be
 * compressed and decompressed on every core (chunk_pool.c) while any HDF5
 * reader with the standard plugins (h5dump, h5py + hdf5plugin) reads them.
 *
 *   zstd  one zstd frame (content size in its header); cd_values[0] = level
 *   lz4   8-byte big-endian size, 4-byte big-endian block size, then per
 *         block a 4-byte big-endian stored size and the LZ4 block (the
 *         block itself, uncompressed, when the stored size equals it)
 *   blosc one Blosc buffer (libblosc: self-describing), made with Blosc's
 *         byte shuffle by 8-byte elements before its compressor (blosclz,
 *         lz4 or zstd), so the exponent bytes of a field of doubles sit
 *         side by side: a smooth field shrinks to about 4% instead of 17%
 *         (zstd alone), several times faster. cd_values as the hdf5-blosc
 *         plugin's: filter revision 2, Blosc format, element size, chunk
 *         bytes, level, shuffle, compressor. /memory is a dataset of
 *         bytes and the plugin's own set_local would take the element
 *         size (1) from it; ckptmpi's set_local keeps the 8 given.
 *
 * A chunk that does not shrink is stored as it is, the compressor skipped
 * in its filter mask (bit 0), as HDF5 does for an optional filter. */
#ifndef CKPTMPI_STORAGE_CODEC_H
#define CKPTMPI_STORAGE_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <hdf5.h>

#define CK_FILTER_ZSTD 32015
#define CK_FILTER_LZ4 32004
#define CK_FILTER_BLOSC 32001

enum ck_codec { CK_CODEC_NONE, CK_CODEC_DEFLATE, CK_CODEC_ZSTD, CK_CODEC_LZ4, CK_CODEC_BLOSC };

struct ck_compress {
	int codec;                  /* enum ck_codec */
	int level;                  /* deflate 0..9, zstd its levels, lz4 acceleration,
	                               blosc 1..9 */
	int inner;                  /* blosc: its compressor (BLOSC_BLOSCLZ, _LZ4, _ZSTD) */
};

/* none | deflate[:0..9] | zstd[:LEVEL] | lz4[:ACCELERATION] |
 * blosc[:1..9] | blosc-lz4[:1..9] | blosc-zstd[:1..9]; NULL or "" is
 * none. -1 with the reason, naming `what` (a directory). */
int ck_compress_parse(const char *what, const char *value, struct ck_compress *c);
/* CKPTMPI_COMPRESS, parsed. */
int ck_compress_from_env(const char *what, struct ck_compress *c);
const char *ck_codec_name(int codec);
/* The HDF5 filter id of a codec (0 for none). */
int ck_codec_filter(int codec);
/* The codec of an HDF5 filter id, or -1 if ckptmpi does not do it. */
int ck_codec_of_filter(int filter);

/* Make zstd and lz4 known to HDF5 in this process (idempotent). */
int ck_codecs_register(void);
/* Add the compressor to a dataset's pipeline (before fletcher32). */
int ck_compress_set_filter(hid_t dcpl, const struct ck_compress *c);

/* Room for one compressed chunk of n bytes, plus 4 for its checksum. */
size_t ck_chunk_bound(size_t n);

/* A thread's codec state (zstd contexts); one per thread. */
struct ck_codec_ctx;
struct ck_codec_ctx *ck_codec_ctx_new(void);
void ck_codec_ctx_free(struct ck_codec_ctx *x);

/* in[n] compressed into out (ck_chunk_bound(n) bytes): its size, or 0 when
 * it would not shrink (store in[] as it is). */
size_t ck_chunk_compress(struct ck_codec_ctx *x, const struct ck_compress *c, const void *in,
                         size_t n, void *out);
/* A stored chunk in[n] back into out[len], exactly len bytes: 0, or -1
 * with why[] saying what is wrong with the data. */
int ck_chunk_decompress(struct ck_codec_ctx *x, int codec, const void *in, size_t n, void *out,
                        size_t len, char *why, size_t whylen);

#endif
