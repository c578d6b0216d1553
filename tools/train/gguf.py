"""A minimal GGUF v3 writer (little-endian), enough for bitnet-vk's models.

Layout: header (magic, version, tensor count, key count), the key/value
pairs, the tensor infos (name, dims, type, offset), padding to the
alignment, then the tensor data, each tensor starting on the alignment.
"""

import struct

import numpy as np

ALIGN = 32

# value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)

# tensor types (ggml ids)
T_F32, T_F16, T_TQ2_0, T_I2_S = 0, 1, 35, 36


def _str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


class Writer:
    def __init__(self):
        self.kv = []       # encoded key/value pairs
        self.tensors = []  # (name, ne, type, bytes)

    def add(self, key, vtype, value):
        out = _str(key) + struct.pack("<I", vtype)
        if vtype == STR:
            out += _str(value)
        elif vtype == BOOL:
            out += struct.pack("<B", 1 if value else 0)
        else:
            out += struct.pack({U32: "<I", I32: "<i", F32: "<f", U64: "<Q"}[vtype], value)
        self.kv.append(out)

    def add_array(self, key, etype, values):
        out = _str(key) + struct.pack("<IIQ", ARR, etype, len(values))
        if etype == STR:
            out += b"".join(_str(v) for v in values)
        else:
            out += np.asarray(values, dtype={I32: "<i4", U32: "<u4", F32: "<f4"}[etype]).tobytes()
        self.kv.append(out)

    def add_tensor(self, name, ne, ttype, data):
        self.tensors.append((name, list(ne), ttype, bytes(data)))

    def write(self, path):
        head = b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv)) + b"".join(self.kv)
        infos, offset = b"", 0
        for name, ne, ttype, data in self.tensors:
            infos += _str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
            infos += struct.pack("<IQ", ttype, offset)
            offset += (len(data) + ALIGN - 1) // ALIGN * ALIGN
        meta = head + infos
        meta += b"\0" * (-len(meta) % ALIGN)
        with open(path, "wb") as f:
            f.write(meta)
            for _, _, _, data in self.tensors:
                f.write(data)
                f.write(b"\0" * (-len(data) % ALIGN))


def pack_i2s(trits, scale):
    """bitnet.cpp's I2_S: the tensor as one stream of 128-weight blocks; in a
    block, byte p holds weights p, p+32, p+64, p+96 in bits 7-6, 5-4, 3-2,
    1-0 as codes t+1 (0 = -1, 1 = 0, 2 = +1); then a 32-byte tail whose first
    four bytes are the float32 scale."""
    c = (trits.reshape(-1, 4, 32).astype(np.int64) + 1).astype(np.uint8)  # [block, group, p]
    packed = (c[:, 0] << 6) | (c[:, 1] << 4) | (c[:, 2] << 2) | c[:, 3]
    tail = struct.pack("<f", scale) + b"\0" * 28
    return packed.astype(np.uint8).tobytes() + tail


def pack_tq2_0(trits, d_f16):
    """llama.cpp's TQ2_0: 256-weight blocks of 66 bytes, qs[64] then fp16 d.
    Weight e = 128g + 32l + m sits in byte 32g + m at bits 2l."""
    c = (trits.reshape(-1, 2, 4, 32).astype(np.int64) + 1).astype(np.uint8)  # [block, g, l, m]
    qs = c[:, :, 0] | (c[:, :, 1] << 2) | (c[:, :, 2] << 4) | (c[:, :, 3] << 6)  # [block, g, m]
    qs = qs.reshape(-1, 64).astype(np.uint8)
    d = np.full((qs.shape[0], 1), d_f16, dtype="<f2").view(np.uint8)
    return np.concatenate([qs, d], axis=1).tobytes()
