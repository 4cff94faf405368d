"""RFC 6962 / RFC 9162 Merkle hashing against the Certificate Transparency reference vectors,
and the attacks an inclusion path must withstand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.core.merkle import leaf_hash, node_hash, root_from_path, tree
from tests.fuzz.strategies import fuzz_settings

# the leaves and roots of certificate-transparency's merkle_tree_test (also in RFC 9162
# implementations such as transparency-dev/merkle): tree sizes 1..8
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_PATHS = [  # (index, size, path)
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


def hashed(count: int) -> list[bytes]:
    return [leaf_hash(f"leaf {n}".encode()) for n in range(count)]


def test_roots_are_the_certificate_transparency_reference_roots():
    for size in range(1, 9):
        root, _ = tree([leaf_hash(data) for data in CT_LEAVES[:size]])
        assert root.hex() == CT_ROOTS[size - 1], size


@pytest.mark.parametrize(("index", "size", "path"), CT_PATHS)
def test_paths_are_the_reference_paths_and_lead_to_the_reference_root(index, size, path):
    leaves = [leaf_hash(data) for data in CT_LEAVES[:size]]
    _, paths = tree(leaves)
    assert [h.hex() for h in paths[index]] == path
    assert root_from_path(index, size, leaves[index], paths[index]).hex() == CT_ROOTS[size - 1]


@pytest.mark.parametrize("size", [*range(1, 34), 100, 511, 512, 513])
def test_every_leaf_of_every_size_leads_to_the_root(size):
    leaves = hashed(size)
    root, paths = tree(leaves)
    assert all(root_from_path(i, size, leaves[i], paths[i]) == root for i in range(size))
    assert max(len(p) for p in paths) == (size - 1).bit_length()


def test_a_leaf_at_another_index_fails():
    for size in (2, 3, 5, 7, 8, 13, 100):
        leaves = hashed(size)
        root, paths = tree(leaves)
        for index in range(size):
            for other in (index - 1, index + 1):
                assert root_from_path(other, size, leaves[index], paths[index]) != root


def test_the_path_alone_does_not_bind_the_size_so_the_signature_must():
    # leaf 0 of 5 and of 6 leaves have paths of the same shape: claiming size 6 for a path of
    # a 5-leaf tree computes the same root. The root signature therefore signs the size too
    # (services.core.batch_signing.statement; tested in test_batch_signing)
    leaves = hashed(5)
    root, paths = tree(leaves)
    assert root_from_path(0, 6, leaves[0], paths[0]) == root


def test_a_truncated_or_extended_path_fails():
    leaves = hashed(7)
    _, paths = tree(leaves)
    path = paths[2]
    assert root_from_path(2, 7, leaves[2], path[1:]) is None
    assert root_from_path(2, 7, leaves[2], path[:-1]) is None
    assert root_from_path(2, 7, leaves[2], [*path, path[0]]) is None
    assert root_from_path(2, 7, leaves[2], []) is None
    assert root_from_path(7, 7, leaves[2], path) is None  # index outside the tree
    assert root_from_path(-1, 7, leaves[2], path) is None


def test_an_inner_node_cannot_pass_for_a_leaf():
    # without the 0x00/0x01 prefixes, the leaf "L0 || L1" would hash to the inner node over
    # leaves 0 and 1, and a tree of two leaves ("L0 || L1", N23) would share the root
    leaves = hashed(4)
    root, _ = tree(leaves)
    inner_left, inner_right = node_hash(leaves[0], leaves[1]), node_hash(leaves[2], leaves[3])
    assert node_hash(inner_left, inner_right) == root
    forged_leaf = leaf_hash(leaves[0] + leaves[1])
    assert forged_leaf != inner_left
    assert root_from_path(0, 2, forged_leaf, [inner_right]) != root
    assert root_from_path(0, 2, inner_left, [inner_right]) == root  # the node itself is no leaf


def test_an_empty_tree_is_refused():
    with pytest.raises(ValueError, match="at least one leaf"):
        tree([])


@fuzz_settings(200)
@given(st.integers(1, 300), st.data())
def test_a_changed_byte_anywhere_breaks_the_path(size: int, data: st.DataObject) -> None:
    leaves = hashed(size)
    root, paths = tree(leaves)
    index = data.draw(st.integers(0, size - 1))
    path = list(paths[index])
    assert root_from_path(index, size, leaves[index], path) == root
    spot = data.draw(st.integers(0, 32 * (len(path) + 1) - 1))
    flip = data.draw(st.integers(1, 255))
    which, offset = divmod(spot, 32)
    if which == len(path):
        leaf = bytearray(leaves[index])
        leaf[offset] ^= flip
        assert root_from_path(index, size, bytes(leaf), path) != root
    else:
        changed = bytearray(path[which])
        changed[offset] ^= flip
        path[which] = bytes(changed)
        assert root_from_path(index, size, leaves[index], path) != root
