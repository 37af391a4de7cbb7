/* Chunk compression in the registered filters' formats (codec.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <blosc.h>
#include <lz4.h>
#include <zlib.h>
#include <zstd.h>

#include "storage/codec.h"
#include "storage/container.h"
#include "storage/container_internal.h"

#define LZ4_HEADER 12u              /* size (8) and block size (4) */
#define CK_BLOSC_ELEMENT 8u         /* Blosc's shuffle: by doubles and 64-bit words */
#define LZ4_DEFAULT_BLOCK (1u << 30)

struct ck_codec_ctx {
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
};

const char *ck_codec_name(int codec)
{
	switch (codec) {
	case CK_CODEC_DEFLATE: return "deflate";
	case CK_CODEC_ZSTD: return "zstd";
	case CK_CODEC_LZ4: return "lz4";
	case CK_CODEC_BLOSC: return "blosc";
	default: return "none";
	}
}

int ck_codec_filter(int codec)
{
	switch (codec) {
	case CK_CODEC_DEFLATE: return H5Z_FILTER_DEFLATE;
	case CK_CODEC_ZSTD: return CK_FILTER_ZSTD;
	case CK_CODEC_LZ4: return CK_FILTER_LZ4;
	case CK_CODEC_BLOSC: return CK_FILTER_BLOSC;
	default: return 0;
	}
}

int ck_codec_of_filter(int filter)
{
	switch (filter) {
	case H5Z_FILTER_DEFLATE: return CK_CODEC_DEFLATE;
	case CK_FILTER_ZSTD: return CK_CODEC_ZSTD;
	case CK_FILTER_LZ4: return CK_CODEC_LZ4;
	case CK_FILTER_BLOSC: return CK_CODEC_BLOSC;
	default: return -1;
	}
}

/* An integer in [lo, hi], all of s. */
static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

int ck_compress_parse(const char *what, const char *value, struct ck_compress *c)
{
	const char *colon, *arg;
	size_t nlen;
	int lo = 0, hi = 0;

	memset(c, 0, sizeof *c);
	if (!value || !*value || !strcmp(value, "none"))
		return 0;
	colon = strchr(value, ':');
	nlen = colon ? (size_t)(colon - value) : strlen(value);
	arg = colon ? colon + 1 : NULL;
	if (nlen == 7 && !strncmp(value, "deflate", 7)) {
		c->codec = CK_CODEC_DEFLATE, c->level = 1, lo = 0, hi = 9;
	} else if (nlen == 4 && !strncmp(value, "zstd", 4)) {
		/* level 1: the fast end, what a checkpoint wants */
		c->codec = CK_CODEC_ZSTD, c->level = 1, lo = ZSTD_minCLevel(), hi = ZSTD_maxCLevel();
		if (lo < -99)
			lo = -99;
	} else if (nlen == 3 && !strncmp(value, "lz4", 3)) {
		c->codec = CK_CODEC_LZ4, c->level = 1, lo = 1, hi = 65537;
	} else if ((nlen == 5 && !strncmp(value, "blosc", 5)) ||
	           (nlen == 9 && !strncmp(value, "blosc-lz4", 9)) ||
	           (nlen == 10 && !strncmp(value, "blosc-zstd", 10))) {
		/* level 5: Blosc's own default; the fastest on a field of
		 * doubles is blosclz, measured in bench/compress_bench.sh */
		c->codec = CK_CODEC_BLOSC, c->level = 5, lo = 1, hi = 9;
		c->inner = nlen == 5 ? BLOSC_BLOSCLZ : nlen == 9 ? BLOSC_LZ4 : BLOSC_ZSTD;
	} else {
		ck_set_error("%s: CKPTMPI_COMPRESS=%s not understood (use none, deflate[:0..9], "
		             "zstd[:LEVEL], lz4[:ACCELERATION], blosc[:1..9], blosc-lz4[:1..9] or "
		             "blosc-zstd[:1..9])", what, value);
		return -1;
	}
	if (arg && parse_int(arg, lo, hi, &c->level)) {
		ck_set_error("%s: CKPTMPI_COMPRESS=%s: the %s %s must be a number from %d to %d", what,
		             value, ck_codec_name(c->codec),
		             c->codec == CK_CODEC_LZ4 ? "acceleration" : "level", lo, hi);
		memset(c, 0, sizeof *c);
		return -1;
	}
	if (ck_codecs_register() < 0 || H5Zfilter_avail((H5Z_filter_t)ck_codec_filter(c->codec)) <= 0) {
		ck_set_error("%s: CKPTMPI_COMPRESS=%s but this HDF5 has no %s filter", what, value,
		             ck_codec_name(c->codec));
		memset(c, 0, sizeof *c);
		return -1;
	}
	return 0;
}

int ck_compress_from_env(const char *what, struct ck_compress *c)
{
	return ck_compress_parse(what, getenv("CKPTMPI_COMPRESS"), c);
}

int container_compress_setting_check(void)
{
	struct ck_compress c;

	return ck_compress_from_env("ckptmpi", &c);
}

size_t ck_chunk_bound(size_t n)
{
	size_t z = ZSTD_compressBound(n), l = LZ4_HEADER + 4 + (size_t)LZ4_compressBound((int)n),
	       d = compressBound((uLong)n), b = n + BLOSC_MAX_OVERHEAD;

	if (z < l)
		z = l;
	if (z < d)
		z = d;
	if (z < b)
		z = b;
	return z + 4;
}

struct ck_codec_ctx *ck_codec_ctx_new(void)
{
	struct ck_codec_ctx *x = calloc(1, sizeof *x);

	if (x && (!(x->zc = ZSTD_createCCtx()) || !(x->zd = ZSTD_createDCtx()))) {
		ck_codec_ctx_free(x);
		x = NULL;
	}
	return x;
}

void ck_codec_ctx_free(struct ck_codec_ctx *x)
{
	if (!x)
		return;
	ZSTD_freeCCtx(x->zc);
	ZSTD_freeDCtx(x->zd);
	free(x);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The lz4 filter's layout; 0 on failure. */
static size_t lz4_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, uint32_t block,
                         int accel)
{
	size_t at = LZ4_HEADER;

	if (!n || n > INT_MAX)
		return 0;
	if (block > n)
		block = (uint32_t)n;
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	put_be32(out + 8, block);
	for (size_t done = 0; done < n;) {
		size_t b = n - done < block ? n - done : block;
		int bound = LZ4_compressBound((int)b), s;

		if (at + 4 + (size_t)bound > cap)
			return 0;
		s = LZ4_compress_fast((const char *)in + done, (char *)out + at + 4, (int)b, bound, accel);
		if (s <= 0)
			return 0;
		if ((size_t)s >= b) {
			/* the filter's way of storing a block that does not shrink */
			memcpy(out + at + 4, in + done, b);
			s = (int)b;
		}
		put_be32(out + at, (uint32_t)s);
		at += 4 + (size_t)s;
		done += b;
	}
	return at;
}

static int lz4_decode(const uint8_t *in, size_t n, uint8_t *out, size_t len, char *why,
                      size_t whylen)
{
	uint64_t orig = 0;
	uint32_t block;
	size_t at = LZ4_HEADER, done = 0;

	if (n < LZ4_HEADER) {
		snprintf(why, whylen, "lz4 chunk of %zu bytes, shorter than its header", n);
		return -1;
	}
	for (int i = 0; i < 8; i++)
		orig = orig << 8 | in[i];
	block = get_be32(in + 8);
	if (orig != len || !block) {
		snprintf(why, whylen, "lz4 chunk says %llu bytes (block %u), %zu expected",
		         (unsigned long long)orig, block, len);
		return -1;
	}
	if (block > len)
		block = (uint32_t)len;
	while (done < len) {
		size_t b = len - done < block ? len - done : block;
		uint32_t s;

		if (at + 4 > n || (s = get_be32(in + at)) > n - at - 4) {
			snprintf(why, whylen, "lz4 chunk cut short at byte %zu", at);
			return -1;
		}
		at += 4;
		if (s == b)
			memcpy(out + done, in + at, b);
		else if (LZ4_decompress_safe((const char *)in + at, (char *)out + done, (int)s, (int)b) !=
		         (int)b) {
			snprintf(why, whylen, "lz4 block at byte %zu does not decode", at);
			return -1;
		}
		at += s;
		done += b;
	}
	return 0;
}

/* One Blosc buffer of in[n], shuffled by 8-byte elements, on this thread
 * alone (the _ctx calls keep no global state); 0 on failure. */
static size_t blosc_encode(int level, int inner, const void *in, size_t n, void *out, size_t cap)
{
	const char *name = NULL;
	int s;

	if (n > BLOSC_MAX_BUFFERSIZE || blosc_compcode_to_compname(inner, &name) < 0 || !name)
		return 0;
	s = blosc_compress_ctx(level, BLOSC_SHUFFLE, CK_BLOSC_ELEMENT, n, in, out, cap, name, 0, 1);
	return s > 0 ? (size_t)s : 0;
}

static int blosc_decode(const void *in, size_t n, void *out, size_t len, char *why, size_t whylen)
{
	size_t said = 0;
	int got;

	if (blosc_cbuffer_validate(in, n, &said) < 0 || said != len) {
		snprintf(why, whylen, "blosc chunk of %zu bytes is not one buffer of %zu", n, len);
		return -1;
	}
	got = blosc_decompress_ctx(in, out, len, 1);
	if (got < 0 || (size_t)got != len) {
		snprintf(why, whylen, "blosc chunk does not decode (%d)", got);
		return -1;
	}
	return 0;
}

size_t ck_chunk_compress(struct ck_codec_ctx *x, const struct ck_compress *c, const void *in,
                         size_t n, void *out)
{
	size_t cap = ck_chunk_bound(n) - 4, s = 0;

	switch (c->codec) {
	case CK_CODEC_DEFLATE: {
		uLongf len = (uLongf)cap;

		if (compress2(out, &len, in, (uLong)n, c->level) == Z_OK)
			s = len;
		break;
	}
	case CK_CODEC_ZSTD:
		s = ZSTD_compressCCtx(x->zc, out, cap, in, n, c->level);
		if (ZSTD_isError(s))
			s = 0;
		break;
	case CK_CODEC_LZ4:
		s = lz4_encode(in, n, out, cap, LZ4_DEFAULT_BLOCK, c->level);
		break;
	case CK_CODEC_BLOSC:
		s = blosc_encode(c->level, c->inner, in, n, out, cap);
		break;
	default:
		break;
	}
	return s && s < n ? s : 0;
}

int ck_chunk_decompress(struct ck_codec_ctx *x, int codec, const void *in, size_t n, void *out,
                        size_t len, char *why, size_t whylen)
{
	switch (codec) {
	case CK_CODEC_DEFLATE: {
		uLongf got = (uLongf)len;
		int e = uncompress(out, &got, in, (uLong)n);

		if (e != Z_OK || got != len) {
			snprintf(why, whylen, "deflate chunk does not decode (%s)",
			         e == Z_OK ? "wrong size" : zError(e));
			return -1;
		}
		return 0;
	}
	case CK_CODEC_ZSTD: {
		unsigned long long size = ZSTD_getFrameContentSize(in, n);
		size_t got;

		if (size != len) {
			snprintf(why, whylen, "zstd chunk is not one frame of %zu bytes", len);
			return -1;
		}
		got = ZSTD_decompressDCtx(x->zd, out, len, in, n);
		if (ZSTD_isError(got) || got != len) {
			snprintf(why, whylen, "zstd chunk does not decode (%s)",
			         ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong size");
			return -1;
		}
		return 0;
	}
	case CK_CODEC_LZ4:
		return lz4_decode(in, n, out, len, why, whylen);
	case CK_CODEC_BLOSC:
		return blosc_decode(in, n, out, len, why, whylen);
	default:
		snprintf(why, whylen, "unknown codec %d", codec);
		return -1;
	}
}

/* ---- the same formats as HDF5 filters, for HDF5's own pipeline (the
 * MPI writer, tools reading through H5Dread) ---- */

static size_t zstd_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[],
                          size_t nbytes, size_t *buf_size, void **buf)
{
	void *out;
	size_t s;

	if (flags & H5Z_FLAG_REVERSE) {
		unsigned long long size = ZSTD_getFrameContentSize(*buf, nbytes);

		if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
		    size > SIZE_MAX / 2 || !(out = malloc(size ? (size_t)size : 1)))
			return 0;
		s = ZSTD_decompress(out, (size_t)size, *buf, nbytes);
		if (ZSTD_isError(s) || s != size) {
			free(out);
			return 0;
		}
	} else {
		int level = cd_nelmts ? (int)cd_values[0] : 1;
		size_t cap = ZSTD_compressBound(nbytes);

		if (!(out = malloc(cap)))
			return 0;
		s = ZSTD_compress(out, cap, *buf, nbytes, level);
		if (ZSTD_isError(s)) {
			free(out);
			return 0;
		}
	}
	free(*buf);
	*buf = out;
	*buf_size = s;
	return s;
}

static size_t lz4_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[],
                         size_t nbytes, size_t *buf_size, void **buf)
{
	uint8_t *in = *buf, *out;
	size_t s;
	char why[128];

	if (flags & H5Z_FLAG_REVERSE) {
		uint64_t orig = 0;

		if (nbytes < LZ4_HEADER)
			return 0;
		for (int i = 0; i < 8; i++)
			orig = orig << 8 | in[i];
		if (orig > SIZE_MAX / 2 || !(out = malloc(orig ? (size_t)orig : 1)))
			return 0;
		if (lz4_decode(in, nbytes, out, (size_t)orig, why, sizeof why)) {
			free(out);
			return 0;
		}
		s = (size_t)orig;
	} else {
		uint32_t block = cd_nelmts && cd_values[0] ? cd_values[0] : LZ4_DEFAULT_BLOCK;
		size_t nblocks, cap;

		if (!nbytes || nbytes > INT_MAX)
			return 0;
		if (block > nbytes)
			block = (uint32_t)nbytes;
		nblocks = (nbytes + block - 1) / block;
		cap = LZ4_HEADER + nblocks * (4 + (size_t)LZ4_compressBound((int)block));
		if (!(out = malloc(cap)))
			return 0;
		if (!(s = lz4_encode(in, nbytes, out, cap, block, 1))) {
			free(out);
			return 0;
		}
	}
	free(*buf);
	*buf = out;
	*buf_size = s;
	return s;
}

/* cd_values of the hdf5-blosc plugin (blosc_filter.h) */
enum { BLOSC_CD_REVISION, BLOSC_CD_FORMAT, BLOSC_CD_TYPESIZE, BLOSC_CD_CHUNK, BLOSC_CD_LEVEL,
       BLOSC_CD_SHUFFLE, BLOSC_CD_COMPRESSOR, BLOSC_CD_N };

static size_t blosc_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[],
                           size_t nbytes, size_t *buf_size, void **buf)
{
	void *out;
	size_t s;
	char why[128];

	if (flags & H5Z_FLAG_REVERSE) {
		size_t len = 0, cbytes = 0, block = 0;

		if (nbytes < BLOSC_MIN_HEADER_LENGTH)
			return 0;
		blosc_cbuffer_sizes(*buf, &len, &cbytes, &block);
		if (!len || len > SIZE_MAX / 2 || !(out = malloc(len)))
			return 0;
		if (blosc_decode(*buf, nbytes, out, len, why, sizeof why)) {
			free(out);
			return 0;
		}
		s = len;
	} else {
		size_t cap = nbytes + BLOSC_MAX_OVERHEAD;
		const char *name = NULL;
		int level = cd_nelmts > BLOSC_CD_LEVEL ? (int)cd_values[BLOSC_CD_LEVEL] : 5;
		int shuffle = cd_nelmts > BLOSC_CD_SHUFFLE ? (int)cd_values[BLOSC_CD_SHUFFLE] : 1;
		int inner = cd_nelmts > BLOSC_CD_COMPRESSOR ? (int)cd_values[BLOSC_CD_COMPRESSOR] : 0;
		size_t type = cd_nelmts > BLOSC_CD_TYPESIZE ? cd_values[BLOSC_CD_TYPESIZE] : 1;
		int r;

		if (nbytes > BLOSC_MAX_BUFFERSIZE || blosc_compcode_to_compname(inner, &name) < 0 ||
		    !name || !(out = malloc(cap)))
			return 0;
		r = blosc_compress_ctx(level, shuffle, type ? type : 1, nbytes, *buf, out, cap, name, 0,
		                       1);
		if (r <= 0) {
			free(out);
			return 0;
		}
		s = (size_t)r;
	}
	free(*buf);
	*buf = out;
	*buf_size = s;
	return s;
}

/* The plugin's set_local, but an element size given is kept (codec.h) */
static herr_t blosc_set_local(hid_t dcpl, hid_t type, hid_t space)
{
	unsigned flags, cd[BLOSC_CD_N] = {0};
	size_t n = BLOSC_CD_N;
	hsize_t dims[32];
	int nd;
	size_t bytes;

	(void)space;
	if (H5Pget_filter_by_id2(dcpl, CK_FILTER_BLOSC, &flags, &n, cd, 0, NULL, NULL) < 0)
		return -1;
	if (n < 4)
		n = 4;
	cd[BLOSC_CD_REVISION] = 2;
	cd[BLOSC_CD_FORMAT] = BLOSC_VERSION_FORMAT;
	if (!cd[BLOSC_CD_TYPESIZE])
		cd[BLOSC_CD_TYPESIZE] = (unsigned)H5Tget_size(type);
	if (!cd[BLOSC_CD_TYPESIZE] || cd[BLOSC_CD_TYPESIZE] > BLOSC_MAX_TYPESIZE)
		cd[BLOSC_CD_TYPESIZE] = 1;
	if ((nd = H5Pget_chunk(dcpl, 32, dims)) < 0)
		return -1;
	bytes = H5Tget_size(type);
	for (int i = 0; i < nd; i++)
		bytes *= dims[i];
	cd[BLOSC_CD_CHUNK] = (unsigned)bytes;
	return H5Pmodify_filter(dcpl, CK_FILTER_BLOSC, flags, n, cd) < 0 ? -1 : 0;
}

static const H5Z_class2_t blosc_class = {
	H5Z_CLASS_T_VERS, (H5Z_filter_t)CK_FILTER_BLOSC, 1, 1, "blosc", NULL, blosc_set_local,
	blosc_filter,
};

static const H5Z_class2_t zstd_class = {
	H5Z_CLASS_T_VERS, (H5Z_filter_t)CK_FILTER_ZSTD, 1, 1,
	"Zstandard compression: http://www.zstd.net", NULL, NULL, zstd_filter,
};

static const H5Z_class2_t lz4_class = {
	H5Z_CLASS_T_VERS, (H5Z_filter_t)CK_FILTER_LZ4, 1, 1,
	"HDF5 lz4 filter; see http://www.hdfgroup.org/services/contributions.html", NULL, NULL,
	lz4_filter,
};

int ck_codecs_register(void)
{
	if (H5Zregister(&zstd_class) < 0 || H5Zregister(&lz4_class) < 0 ||
	    H5Zregister(&blosc_class) < 0) {
		ck_set_error("HDF5: cannot register the zstd, lz4 and blosc filters");
		return -1;
	}
	return 0;
}

int ck_compress_set_filter(hid_t dcpl, const struct ck_compress *c)
{
	unsigned cd;

	switch (c ? c->codec : CK_CODEC_NONE) {
	case CK_CODEC_DEFLATE:
		return H5Pset_deflate(dcpl, (unsigned)c->level) < 0 ? -1 : 0;
	case CK_CODEC_ZSTD:
		cd = (unsigned)c->level;
		return H5Pset_filter(dcpl, CK_FILTER_ZSTD, H5Z_FLAG_OPTIONAL, 1, &cd) < 0 ? -1 : 0;
	case CK_CODEC_LZ4:
		/* one block per chunk, as the plugin's default */
		cd = 0;
		return H5Pset_filter(dcpl, CK_FILTER_LZ4, H5Z_FLAG_OPTIONAL, 1, &cd) < 0 ? -1 : 0;
	case CK_CODEC_BLOSC: {
		/* revision, format and chunk bytes: set_local's */
		unsigned b[BLOSC_CD_N] = {0, 0, CK_BLOSC_ELEMENT, 0, (unsigned)c->level, BLOSC_SHUFFLE,
		                          (unsigned)c->inner};
		return H5Pset_filter(dcpl, CK_FILTER_BLOSC, H5Z_FLAG_OPTIONAL, BLOSC_CD_N, b) < 0 ? -1
		                                                                                   : 0;
	}
	default:
		return 0;
	}
}
