#!/usr/bin/python3
"""Read /memory of a ckptmpi generation without ckptmpi, the way another
HDF5 user would, and check the program's heap (DUMP, as the program wrote
it) is in it, byte for byte.

    compress_interop.py FILE CODEC DUMP

zstd: every chunk's stored bytes through h5py (read_direct_chunk), their
fletcher32 checked here, each decoded as one zstd frame by python3-zstandard
(the HDF5 zstd filter's format). lz4, blosc and others: h5py reads the
dataset through HDF5's pipeline, with the filter plugin from
HDF5_PLUGIN_PATH.
Prints what it did; exits non-zero on any difference."""
import sys

import h5py
import numpy as np

FILTERS = {"zstd": 32015, "lz4": 32004, "blosc": 32001, "deflate": 1}
CHUNK = 1 << 20


def fletcher32(data):
    """HDF5's fletcher32: big-endian 16-bit words, sums modulo 65535."""
    if len(data) % 2:
        data += b"\0"
    w = np.frombuffer(data, dtype=">u2").astype(np.uint64)
    n = len(w)
    s1 = int(w.sum()) % 65535
    s2 = int((w * np.arange(n, 0, -1, dtype=np.uint64)).sum()) % 65535
    if n and not s1 and w.any():
        s1 = 65535
    if n and not s2 and w.any():
        s2 = 65535
    return s2 << 16 | s1


def main():
    path, codec, dump = sys.argv[1:4]
    heap = open(dump, "rb").read()
    with h5py.File(path, "r") as f:
        ds = f["/memory"]
        plist = ds.id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        want = [FILTERS[codec], 3]
        if filters != want:
            sys.exit(f"{path}: /memory's filters are {filters}, expected {want}")
        if codec == "zstd":
            import zstandard
            parts, packed = [], 0
            for i in range(ds.id.get_num_chunks()):
                info = ds.id.get_chunk_info(i)
                mask, raw = ds.id.read_direct_chunk(info.chunk_offset)
                body, tail = raw[:-4], raw[-4:]
                if fletcher32(body) != int.from_bytes(tail, "little"):
                    sys.exit(f"{path}: chunk {i}: fletcher32 differs")
                if mask & 1:
                    data = body
                else:
                    data = zstandard.ZstdDecompressor().decompress(body)
                    packed += 1
                if len(data) != CHUNK:
                    sys.exit(f"{path}: chunk {i} holds {len(data)} bytes")
                parts.append(data)
            memory = b"".join(parts)
            print(f"{ds.id.get_num_chunks()} chunks, {packed} zstd frames decoded by python3-zstandard")
            if not packed:
                sys.exit(f"{path}: no chunk is compressed")
        else:
            n = ds.id.get_num_chunks()
            packed = sum(1 for i in range(n) if ds.id.get_chunk_info(i).size < CHUNK)
            if not packed:
                sys.exit(f"{path}: no chunk is compressed")
            memory = ds[:].tobytes()
            print(f"{len(memory)} bytes ({packed} of {n} chunks compressed) decoded by "
                  f"HDF5's {codec} filter plugin")
    at = memory.find(heap[:4096])
    if at < 0 or memory[at:at + len(heap)] != heap:
        sys.exit(f"{path}: the program's heap ({len(heap)} bytes) is not in /memory")
    print(f"the heap's {len(heap)} bytes are at /memory offset {at}")


main()
