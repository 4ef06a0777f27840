"""Helpers for the species-identification tests: mutated fragments and a minimal ABIF writer."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def reverse_complement(sequence: str) -> str:
    return sequence.translate(COMPLEMENT)[::-1]


def substitute(sequence: str, positions, rng: np.random.Generator) -> str:
    """``sequence`` with the base at each of ``positions`` changed to a different base."""
    bases = list(sequence)
    for position in positions:
        bases[position] = rng.choice([b for b in "ACGT" if b != bases[position]])
    return "".join(bases)


def mutated_fragment(sequence: str, start: int, length: int, rate: float,
                     rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """``sequence[start:start+length]`` with ``round(rate*length)`` random substitutions.

    Returns the fragment and the substituted positions (relative to ``start``).
    """
    positions = rng.choice(length, size=round(rate * length), replace=False)
    return substitute(sequence[start : start + length], positions, rng), positions


# ABIF (Applied Biosystems trace) layout, as Applied Biosystems documents it in its ABIF file
# format specification: a 128-byte header holding "ABIF", the version and a directory entry
# pointing at the tag directory; each 28-byte entry has a tag name, number, element type,
# element size, element count, data size, data offset and a handle. Data of 4 bytes or fewer
# sits in the offset field itself.
_DIRECTORY_ENTRY = ">4sIHHIIII"
_CHAR, _PSTRING = 2, 18


def write_abif(path: Path, bases: str, qualities: list[int], sample_name: str) -> Path:
    """Write a minimal, valid ABIF trace: called bases (PBAS2), qualities (PCON2), SMPL1."""
    name = sample_name.encode("ascii")
    tags = [
        (b"PBAS", 2, _CHAR, bases.encode("ascii")),
        (b"PCON", 2, _CHAR, bytes(qualities)),
        (b"SMPL", 1, _PSTRING, bytes([len(name)]) + name),
    ]
    header_size = 128
    data = bytearray()
    entries = []
    for tag, number, element_type, payload in tags:
        if len(payload) <= 4:
            offset_field = struct.unpack(">I", payload.ljust(4, b"\0"))[0]
        else:
            offset_field = header_size + len(data)
            data += payload
        entries.append(struct.pack(_DIRECTORY_ENTRY, tag, number, element_type, 1,
                                   len(payload), len(payload), offset_field, 0))
    directory_offset = header_size + len(data)
    root = struct.pack(_DIRECTORY_ENTRY, b"tdir", 1, 1023, 28, len(entries),
                       28 * len(entries), directory_offset, 0)
    header = (b"ABIF" + struct.pack(">H", 101) + root).ljust(header_size, b"\0")
    path.write_bytes(header + bytes(data) + b"".join(entries))
    return path
