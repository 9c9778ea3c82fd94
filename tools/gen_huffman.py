#!/usr/bin/env python3
"""Generates src/h2/hpack/huffman_table.rs from the HPACK Huffman code (RFC 7541 Appendix B).

Usage: python3 tools/gen_huffman.py > src/h2/hpack/huffman_table.rs

The HPACK code is canonical: sorting the symbols by (code length, symbol) and counting up
reproduces every code of Appendix B. So only the 257 code lengths are written down here; the
codes are derived, and a handful are checked against the values printed in the RFC.

Two tables come out:

* ENCODE[sym] = (code, length), for sym in 0..=256 (256 is EOS);
* DECODE[state * 16 + nibble]: a 4-bits-at-a-time walk of the code tree, one u32 per
  (state, nibble). States are the 256 internal nodes of the tree (state 0 is the root).
  Because the shortest code is 5 bits, one nibble emits at most one symbol. An entry packs:
    bits 0-11  next state * 16 (the row of the next lookup: OR the next nibble into it);
    bit 12     EMIT: `symbol` was completed by this nibble;
    bit 13     FAIL: this nibble completes EOS, which must not appear in a string
               (RFC 7541 §5.2); the next state is then the root and nothing is emitted;
    bit 14     ACCEPT: the string may end here: the bits read since the last symbol are all
               ones and there are at most 7 of them (valid padding, RFC 7541 §5.2);
    bits 16-23 symbol (0 unless EMIT).
  The decoder can thus write `symbol` unconditionally, advance its output by the EMIT bit,
  OR the entries together to test FAIL once at the end, and look at the last entry's
  ACCEPT bit.
"""

import sys

# Code length in bits of symbols 0..=256 (RFC 7541 Appendix B, column "len in bits").
LENGTHS = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,  # 0-15
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,  # 16-31
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,  # 32-47   ' ' .. '/'
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,  # 48-63   '0' .. '?'
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,  # 64-79   '@' .. 'O'
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,  # 80-95   'P' .. '_'
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,  # 96-111  '`' .. 'o'
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,  # 112-127 'p' .. DEL
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,  # 128-143
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,  # 144-159
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,  # 160-175
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,  # 176-191
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,  # 192-207
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,  # 208-223
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,  # 224-239
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,  # 240-255
    30,  # 256 EOS
]

# A few codes exactly as printed in RFC 7541 Appendix B, to check the derivation.
SPOT_CHECKS = {
    0: (0x1FF8, 13),
    10: (0x3FFFFFFC, 30),
    32: (0x14, 6),  # ' '
    48: (0x0, 5),  # '0'
    97: (0x3, 5),  # 'a'
    122: (0x7B, 7),  # 'z'
    127: (0xFFFFFFC, 28),
    200: (0x3FFFFE2, 26),
    255: (0x3FFFFEE, 26),
    256: (0x3FFFFFFF, 30),  # EOS
}

EMIT, FAIL, ACCEPT = 1 << 12, 1 << 13, 1 << 14


def canonical_codes(lengths):
    order = sorted(range(len(lengths)), key=lambda s: (lengths[s], s))
    codes = [0] * len(lengths)
    code, prev = 0, lengths[order[0]]
    for i, sym in enumerate(order):
        n = lengths[sym]
        if i:
            code = (code + 1) << (n - prev)
        prev = n
        codes[sym] = code
    return codes


def build_tree(codes, lengths):
    # Internal nodes: children[node] = [left, right]; a child is ("node", id) or ("sym", s).
    children = [[None, None]]
    for sym, (code, n) in enumerate(zip(codes, lengths)):
        node = 0
        for i in range(n - 1, -1, -1):
            bit = (code >> i) & 1
            if i == 0:
                assert children[node][bit] is None, "code is not prefix-free"
                children[node][bit] = ("sym", sym)
            else:
                nxt = children[node][bit]
                if nxt is None:
                    children.append([None, None])
                    nxt = ("node", len(children) - 1)
                    children[node][bit] = nxt
                assert nxt[0] == "node", "code is not prefix-free"
                node = nxt[1]
    for c in children:
        assert c[0] is not None and c[1] is not None, "code is not complete"
    return children


def main():
    assert len(LENGTHS) == 257
    # Kraft equality: a complete prefix code.
    assert sum(1 << (30 - n) for n in LENGTHS) == 1 << 30
    codes = canonical_codes(LENGTHS)
    for sym, (code, n) in SPOT_CHECKS.items():
        assert (codes[sym], LENGTHS[sym]) == (code, n), sym
    children = build_tree(codes, LENGTHS)
    assert len(children) == 256

    # Depth of each node if the path from the root to it is all ones, else None.
    ones_depth = {0: 0}
    node, depth = 0, 0
    while children[node][1][0] == "node":
        node, depth = children[node][1][1], depth + 1
        ones_depth[node] = depth

    decode = []
    for state in range(256):
        row = []
        for nibble in range(16):
            node, flags, sym = state, 0, 0
            for i in (3, 2, 1, 0):
                kind, val = children[node][(nibble >> i) & 1]
                if kind == "sym":
                    if val == 256:
                        flags |= FAIL
                        node = 0
                        break
                    flags |= EMIT
                    sym = val
                    node = 0
                else:
                    node = val
            if flags & FAIL:
                row.append((0, FAIL, 0))
                continue
            if ones_depth.get(node, 99) <= 7:
                flags |= ACCEPT
            row.append((node, flags, sym))
        decode.append(row)

    out = sys.stdout
    out.write("// Generated by tools/gen_huffman.py from RFC 7541 Appendix B. Do not edit.\n")
    out.write("// Regenerate: python3 tools/gen_huffman.py > src/h2/hpack/huffman_table.rs\n\n")
    out.write("//! The HPACK Huffman code as tables (RFC 7541 Appendix B).\n\n")
    out.write("/// Bits 0-11 of a [`DECODE`] entry: the next state times 16.\n")
    out.write("pub(super) const STATE_MASK: u32 = 0xff0;\n")
    out.write("/// The decoder emitted the entry's symbol (bits 16-23) on this nibble.\n")
    out.write("pub(super) const EMIT: u32 = 0x%x;\n" % EMIT)
    out.write("/// The nibble completes EOS: a decoding error (RFC 7541 §5.2).\n")
    out.write("pub(super) const FAIL: u32 = 0x%x;\n" % FAIL)
    out.write("/// The string may end after this nibble (padding of at most 7 one bits).\n")
    out.write("pub(super) const ACCEPT: u32 = 0x%x;\n" % ACCEPT)
    out.write("/// Shift that brings the symbol of a [`DECODE`] entry to bits 0-7.\n")
    out.write("pub(super) const SYMBOL_SHIFT: u32 = 16;\n\n")
    out.write("/// `(code, length in bits)` for each symbol; index 256 is EOS.\n")
    out.write("#[rustfmt::skip]\n")
    out.write("pub(super) static ENCODE: [(u32, u8); 257] = [\n")
    for base in range(0, 257, 4):
        items = ", ".join("(0x%x, %d)" % (codes[s], LENGTHS[s]) for s in range(base, min(base + 4, 257)))
        out.write("    %s,\n" % items)
    out.write("];\n\n")
    out.write("/// `DECODE[state * 16 + nibble]` = next state * 16 | flags | symbol << 16; state 0 is\n")
    out.write("/// the root. See [`STATE_MASK`], [`EMIT`], [`FAIL`], [`ACCEPT`], [`SYMBOL_SHIFT`].\n")
    out.write("#[rustfmt::skip]\n")
    out.write("pub(super) static DECODE: [u32; 4096] = [\n")
    for state, row in enumerate(decode):
        out.write("    // state %d\n" % state)
        packed = [(nxt << 4) | flags | (sym << 16) for (nxt, flags, sym) in row]
        out.write("    %s,\n" % ", ".join("0x%x" % e for e in packed[:8]))
        out.write("    %s,\n" % ", ".join("0x%x" % e for e in packed[8:]))
    out.write("];\n")


if __name__ == "__main__":
    main()
