"""tests/tools/mp4boxes.py - just enough ISO BMFF parsing for the tests:
walk boxes, read a fragment's tfdt and summed sample durations, and an init
segment's media timescale (the DASH SegmentTimeline must match them)."""
import struct


def boxes(d, off=0, end=None):
    end = len(d) if end is None else end
    while off + 8 <= end:
        size, typ = struct.unpack('>I4s', d[off:off + 8])
        hdr = 8
        if size == 1:
            size, hdr = struct.unpack('>Q', d[off + 8:off + 16])[0], 16
        elif size == 0:
            size = end - off
        yield typ.decode('latin1'), off + hdr, off + size
        off += size

def find(d, path, off=0, end=None):
    for t, b, e in boxes(d, off, end):
        if t == path[0]:
            return (b, e) if len(path) == 1 else find(d, path[1:], b, e)
    return None

def u32(d, p):
    return struct.unpack('>I', d[p:p + 4])[0]

def frag(path):
    """(tfdt of the first fragment, sum of the sample durations of every
    fragment) of a media segment; a segment may hold several fragments."""
    d = open(path, 'rb').read()
    tfdt, tot = None, 0
    for typ, mb, me in boxes(d):
        if typ != 'moof':
            continue
        b, _ = find(d, ['traf', 'tfdt'], mb, me)
        t = struct.unpack('>Q', d[b + 4:b + 12])[0] if d[b] == 1 else u32(d, b + 4)
        if tfdt is None:
            tfdt = t
        b, _ = find(d, ['traf', 'tfhd'], mb, me)
        fl = u32(d, b) & 0xffffff
        p = b + 8 + (8 if fl & 1 else 0) + (4 if fl & 2 else 0)
        dflt = u32(d, p) if fl & 8 else None
        b, _ = find(d, ['traf', 'trun'], mb, me)
        fl = u32(d, b) & 0xffffff
        n = u32(d, b + 4)
        p = b + 8 + (4 if fl & 1 else 0) + (4 if fl & 4 else 0)
        per = sum(4 for bit in (0x100, 0x200, 0x400, 0x800) if fl & bit)
        for _ in range(n):
            tot += u32(d, p) if fl & 0x100 else dflt
            p += per
    return tfdt, tot

def timescale(init):
    d = open(init, 'rb').read()
    b, _ = find(d, ['moov', 'trak', 'mdia', 'mdhd'])
    return u32(d, b + 12) if d[b] == 0 else u32(d, b + 20)
