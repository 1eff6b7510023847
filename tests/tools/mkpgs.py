#!/usr/bin/env python3
"""mkpgs.py OUT.sup - a tiny PGS (Blu-ray bitmap subtitle) stream: two
16x16 captions at 1 s and 3 s, each a display set of PCS, WDS, PDS, ODS and
END segments. ffmpeg has no PGS encoder; tests use this to make a bitmap
subtitle source (t0380 re-encodes it as DVB)."""
import struct
import sys


def seg(kind, data, pts):
    return b'PG' + struct.pack('>IIBH', pts, 0, kind, len(data)) + data


def main():
    out = b''
    for n, pts in enumerate([90000, 270000]):
        pcs = struct.pack('>HHBHBBBB', 320, 180, 0x10, n, 0x80, 0, 0, 1) + \
            struct.pack('>HBBHH', 0, 0, 0, 10, 10)
        wds = struct.pack('>BBHHHH', 1, 0, 10, 10, 16, 16)
        pds = struct.pack('>BB', 0, 0) + struct.pack('>BBBBB', 1, 235, 128, 128, 255)
        # each line: 16 pixels of colour 1, then the end-of-line code 00 00
        rle = b''.join(b'\x01' * 16 + b'\x00\x00' for _ in range(16))
        ods = struct.pack('>HBB', 0, 0, 0xC0) + (len(rle) + 4).to_bytes(3, 'big') + \
            struct.pack('>HH', 16, 16) + rle
        for kind, data in ((0x16, pcs), (0x17, wds), (0x14, pds), (0x15, ods), (0x80, b'')):
            out += seg(kind, data, pts)
    with open(sys.argv[1], 'wb') as f:
        f.write(out)


if __name__ == '__main__':
    main()
