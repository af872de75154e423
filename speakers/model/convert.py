#!/usr/bin/env python3
"""Convert Resemblyzer's legacy PyTorch checkpoint (pretrained.pt) to safetensors.

Pure standard library: no torch, no numpy.

The input is the legacy (pre-1.6, non-zip) torch.save format, which is a sequence of
pickles followed by raw storage data:

    pickle(MAGIC_NUMBER)              int 0x1950a86a20f9469cfc6c
    pickle(PROTOCOL_VERSION)          int 1001
    pickle(sys_info)                  dict: little_endian, type_sizes
    pickle(obj)                       the checkpoint; tensors refer to storages through
                                      persistent ids ('storage', StorageType, key,
                                      location, numel, view_metadata)
    pickle(storage_keys)              list of storage keys, in the order written below
    for each key in storage_keys:
        int64 little-endian element count, then count * element_size raw bytes

Only the tensors of checkpoint["model_state"] that the VoiceEncoder uses are kept
(LSTM and Linear, with their PyTorch names); similarity_weight / similarity_bias (the
GE2E loss scale/offset) and the optimizer state are dropped. All kept tensors are
float32 and are written little-endian, C-contiguous, in checkpoint order.

Usage:
    python3 convert.py pretrained.pt ge2e.safetensors
"""

import collections
import json
import pickle
import struct
import sys

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Storage class name -> (element size in bytes, safetensors dtype or None)
STORAGE_TYPES = {
    "FloatStorage": (4, "F32"),
    "DoubleStorage": (8, "F64"),
    "HalfStorage": (2, "F16"),
    "BFloat16Storage": (2, "BF16"),
    "LongStorage": (8, "I64"),
    "IntStorage": (4, "I32"),
    "ShortStorage": (2, "I16"),
    "CharStorage": (1, "I8"),
    "ByteStorage": (1, "U8"),
    "BoolStorage": (1, "BOOL"),
}

DROP = {"similarity_weight", "similarity_bias"}


class StorageType:
    def __init__(self, name):
        if name not in STORAGE_TYPES:
            raise ValueError("unsupported storage type torch.%s" % name)
        self.name = name
        self.elem_size, self.dtype = STORAGE_TYPES[name]


class StorageRef:
    """A storage referenced from the pickle; its bytes are filled in later."""

    def __init__(self, stype, key, numel):
        self.stype = stype
        self.key = key
        self.numel = numel
        self.data = None


class StorageView:
    """Legacy storage view (view_metadata = (view_key, offset, view_size))."""

    def __init__(self, base, offset, numel):
        self.base = base
        self.offset = offset
        self.numel = numel
        self.stype = base.stype


class TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = tuple(size)
        self.stride = tuple(stride)

    def to_bytes(self):
        st = self.storage
        offset = self.offset
        if isinstance(st, StorageView):
            offset += st.offset
            st = st.base
        es = st.stype.elem_size
        data = st.data
        numel = 1
        for d in self.size:
            numel *= d
        # C-contiguous strides for this shape
        contig = []
        acc = 1
        for d in reversed(self.size):
            contig.append(acc)
            acc *= d
        contig = tuple(reversed(contig))
        if numel == 0:
            return b""
        if all(s == c for s, c, d in zip(self.stride, contig, self.size) if d != 1):
            return bytes(data[offset * es:(offset + numel) * es])
        # General strided gather (not needed for this checkpoint, kept for safety).
        out = bytearray()
        idx = [0] * len(self.size)
        for _ in range(numel):
            pos = offset + sum(i * s for i, s in zip(idx, self.stride))
            out += data[pos * es:(pos + 1) * es]
            for k in range(len(idx) - 1, -1, -1):
                idx[k] += 1
                if idx[k] < self.size[k]:
                    break
                idx[k] = 0
        return bytes(out)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    return data


class LegacyUnpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages  # key -> StorageRef

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_tensor":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name.endswith("Storage"):
            return StorageType(name)
        raise pickle.UnpicklingError("refusing to load global %s.%s" % (module, name))

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError("unexpected persistent id %r" % (pid,))
        _, stype, key, _location, numel, view_metadata = pid
        if key not in self.storages:
            self.storages[key] = StorageRef(stype, key, numel)
        base = self.storages[key]
        if view_metadata is not None:
            view_key, offset, view_size = view_metadata
            return StorageView(base, offset, view_size)
        return base


def load_legacy(path):
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise ValueError("%s is a zip-format checkpoint, not the legacy format" % path)
        f.seek(0)
        magic = pickle.load(f)
        if magic != LEGACY_MAGIC:
            raise ValueError("bad magic number %r" % (magic,))
        protocol = pickle.load(f)
        if protocol != LEGACY_PROTOCOL:
            raise ValueError("unsupported protocol version %r" % (protocol,))
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", False):
            raise ValueError("big-endian checkpoints are not supported")
        storages = {}
        obj = LegacyUnpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            (count,) = struct.unpack("<q", f.read(8))
            ref = storages.get(key)
            if ref is None:
                raise ValueError("storage %s in key list but not referenced" % key)
            nbytes = count * ref.stype.elem_size
            data = f.read(nbytes)
            if len(data) != nbytes:
                raise ValueError("truncated storage %s" % key)
            if count != ref.numel:
                raise ValueError("storage %s: count %d != pickled numel %d" % (key, count, ref.numel))
            ref.data = data
        rest = f.read()
        if rest:
            raise ValueError("%d trailing bytes after the last storage" % len(rest))
    return obj


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype, shape, bytes) in data order."""
    header = collections.OrderedDict()
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for _, _, _, data in tensors:
            f.write(data)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: convert.py pretrained.pt out.safetensors\n")
        return 2
    ckpt = load_legacy(argv[1])
    state = ckpt["model_state"]
    out = []
    for name, t in state.items():
        if name in DROP:
            continue
        if not isinstance(t, TensorRef):
            raise ValueError("%s is not a tensor" % name)
        dtype = t.storage.stype.dtype
        if dtype != "F32":
            raise ValueError("%s has dtype %s, expected F32" % (name, dtype))
        data = t.to_bytes()
        out.append((name, dtype, t.size, data))
        print("%-20s %-12s %s" % (name, "x".join(map(str, t.size)), dtype))
    write_safetensors(argv[2], out, metadata={"format": "pt"})
    print("wrote %d tensors to %s" % (len(out), argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
