"""Merkle tree hashing of RFC 6962 / RFC 9162 (Certificate Transparency), for signed batches.

A partner signs one root over a batch of signals instead of each signal
(:mod:`services.core.batch_signing`); each signal then carries the audit path that leads from
its own leaf to that root. Hashing follows RFC 9162 section 2.1 exactly, so any CT library
(e.g. transparency-dev/merkle in Go) computes the same roots and verifies the same paths:

* a leaf is ``SHA-256(0x00 || data)`` and an inner node ``SHA-256(0x01 || left || right)``:
  the one-byte prefixes keep a node from passing for a leaf (no second preimage from an inner
  node presented as a signal);
* a tree of ``n > 1`` leaves splits at ``k``, the largest power of two below ``n``: the left
  subtree holds the first ``k`` leaves and is always complete, the right one the rest (no
  leaf is duplicated to fill a level);
* a path lists the sibling hashes from the leaf upwards; :func:`root_from_path` is the
  verification algorithm of RFC 9162 section 2.1.3.2, which also refuses a path that is too
  short or too long for the leaf's index and the tree's size.

Checked against the CT reference vectors in ``tests/core/test_merkle.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256

HASH_BYTES = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf: ``SHA-256(0x00 || data)``."""
    return sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node: ``SHA-256(0x01 || left || right)``."""
    return sha256(NODE_PREFIX + left + right).digest()


def tree(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root over the leaf hashes ``leaves`` (at least one) and the path of every leaf.

    O(n log n): each subtree's paths get its sibling's root appended as the recursion unwinds.
    """
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    return _tree(leaves, 0, len(leaves))


def _tree(leaves: Sequence[bytes], start: int, end: int) -> tuple[bytes, list[list[bytes]]]:
    size = end - start
    if size == 1:
        return leaves[start], [[]]
    split = start + _largest_power_of_two_below(size)
    left, left_paths = _tree(leaves, start, split)
    right, right_paths = _tree(leaves, split, end)
    for path in left_paths:
        path.append(right)
    for path in right_paths:
        path.append(left)
    left_paths.extend(right_paths)
    return node_hash(left, right), left_paths


def root_from_path(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root that ``path`` leads to from ``leaf`` at ``index`` in a tree of ``size`` leaves,
    or None when the path cannot belong there (index outside the tree, a path too short or too
    long for the position): RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    result = leaf
    for sibling in path:
        if sn == 0:
            return None  # longer than the path of this leaf
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    return result if sn == 0 else None  # sn > 0: shorter than the path of this leaf


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly below ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)
