#!/usr/bin/python3
"""Generate the decode fixtures and PIL's expected RGB output for each.

Run from this directory with Debian's python3 + python3-pil 9.4 (the version
the SSLight reference was pinned to); libturbojpeg0 is used through ctypes
for the JPEG variants PIL cannot write (4:4:0, 4:1:1, YCCK):

    /usr/bin/python3 gen_expected.py

Writes
  fixtures/<name>.<ext>     small images of every supported kind, made from a
                            45x31 crop of photos/63_1_wallpapers.jpg
  expected/<name>.rgb       Image.open(f).convert("RGB").tobytes()
  expected.json             per fixture: PIL's format, mode, size, sha256 of
                            the RGB bytes; per bad input: PIL's exception;
                            per real photo: size and sha256
  cmyk2rgb.json             PIL's CMYK->RGB conversion on sampled values
  fuzz/FuzzDecode/*         the fuzz seed corpus (valid, truncated, random)

Everything is deterministic: running it again rewrites identical files.
"""

import ctypes
import ctypes.util
import hashlib
import io
import json
import os
import random
import re
import struct
import zlib

import PIL
from PIL import Image

assert PIL.__version__.startswith("9.4"), PIL.__version__

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")
EXP = os.path.join(HERE, "expected")
FUZZ = os.path.join(HERE, "fuzz", "FuzzDecode")
PHOTOS = ["44_1_wallpapers.jpg", "63_1_wallpapers.jpg", "44_0_wallpapers.jpg", "29_1_Storm.jpg"]

rng = random.Random(20230501)


def base_image():
    im = Image.open(os.path.join(HERE, "photos", "63_1_wallpapers.jpg")).convert("RGB")
    return im.crop((384, 256, 384 + 45, 256 + 31))


def save(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


# ---------------------------------------------------------------- PNG writer
def chunk(typ, data):
    return struct.pack(">I", len(data)) + typ + data + struct.pack(">I", zlib.crc32(typ + data) & 0xFFFFFFFF)


def png(width, height, depth, ctype, rows, plte=None, trns=None, interlace=False, iend=True):
    """rows: list of raw scanline bytes (no filter byte), for the full image."""
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 1 if interlace else 0))
    if plte is not None:
        out += chunk(b"PLTE", plte)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    if not interlace:
        raw = b"".join(b"\x00" + r for r in rows)
    else:
        # Adam7, only for 8-bit-per-sample types with bpp bytes per pixel.
        bpp = len(rows[0]) // width
        raw = b""
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
            xs = list(range(x0, width, dx))
            if not xs:
                continue
            for y in range(y0, height, dy):
                raw += b"\x00" + b"".join(rows[y][x * bpp:(x + 1) * bpp] for x in xs)
    z = zlib.compress(raw, 9)
    # Split the data over several IDAT chunks, as real encoders do.
    for i in range(0, len(z), 700):
        out += chunk(b"IDAT", z[i:i + 700])
    if iend:
        out += chunk(b"IEND", b"")
    return out


def pack_bits(values, depth):
    out, acc, n = bytearray(), 0, 0
    for v in values:
        acc = (acc << depth) | v
        n += depth
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


# ---------------------------------------------------------------- GIF writer
def lzw_literal_stream(indices, min_code):
    """An LZW stream that emits a clear code before every pixel: valid, with a
    constant code width, and simple enough to write by hand."""
    clear, eoi, size = 1 << min_code, (1 << min_code) + 1, min_code + 1
    codes = []
    for i in indices:
        codes += [clear, i]
    codes.append(eoi)
    acc, n, out = 0, 0, bytearray()
    for c in codes:
        acc |= c << n
        n += size
        while n >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            n -= 8
    if n:
        out.append(acc & 0xFF)
    blocks = b"".join(bytes([len(out[i:i + 255])]) + bytes(out[i:i + 255]) for i in range(0, len(out), 255))
    return bytes([min_code]) + blocks + b"\x00"


def gif(screen, gct, frame, lct=None, transparent=None, min_code=None, indices=None):
    sw, sh = screen
    left, top, fw, fh = frame
    out = b"GIF89a"
    flags = 0
    if gct is not None:
        flags = 0x80 | (len(gct).bit_length() - 3)  # len = 3 * 2**(n+1)
    out += struct.pack("<HHBBB", sw, sh, flags, 0, 0) + (gct or b"")
    if transparent is not None:
        out += b"\x21\xf9\x04" + bytes([0x01, 0, 0, transparent]) + b"\x00"
    out += b"\x21\xfe\x05hello\x00"  # a comment extension to skip
    dflags = 0
    if lct is not None:
        dflags = 0x80 | (len(lct).bit_length() - 3)
    out += b"," + struct.pack("<HHHHB", left, top, fw, fh, dflags) + (lct or b"")
    out += lzw_literal_stream(indices, min_code)
    return out + b";"


# ---------------------------------------------------------------- TurboJPEG
def tj_compress(pixels, width, height, pixel_format, subsamp, quality=90):
    lib = ctypes.CDLL(ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0")
    lib.tjInitCompress.restype = ctypes.c_void_p
    h = lib.tjInitCompress()
    buf = ctypes.POINTER(ctypes.c_ubyte)()
    size = ctypes.c_ulong(0)
    src = (ctypes.c_ubyte * len(pixels)).from_buffer_copy(pixels)
    rc = lib.tjCompress2(ctypes.c_void_p(h), src, width, 0, height, pixel_format, ctypes.byref(buf), ctypes.byref(size), subsamp, quality, 0)
    assert rc == 0, "tjCompress2 failed"
    data = ctypes.string_at(buf, size.value)
    lib.tjFree(buf)
    lib.tjDestroy(ctypes.c_void_p(h))
    return data


TJPF_RGB, TJPF_CMYK = 0, 11
TJSAMP_420, TJSAMP_440, TJSAMP_411 = 2, 4, 5


def strip_segment(jpeg, marker):
    """Remove every marker segment with the given code before the first scan."""
    out, pos = bytearray(jpeg[:2]), 2
    while True:
        assert jpeg[pos] == 0xFF
        m = jpeg[pos + 1]
        if m == 0xDA:
            return bytes(out + jpeg[pos:])
        n = struct.unpack(">H", jpeg[pos + 2:pos + 4])[0]
        if m != marker:
            out += jpeg[pos:pos + 2 + n]
        pos += 2 + n


def insert_after_soi(jpeg, segment):
    return jpeg[:2] + segment + jpeg[2:]


# ---------------------------------------------------------------- fixtures
def fixtures(base):
    w, h = base.size
    gray = base.convert("L")
    fx = {}

    # JPEG
    fx["jpeg_420.jpg"] = save(base, "JPEG", quality=90, subsampling=2)
    fx["jpeg_422.jpg"] = save(base, "JPEG", quality=90, subsampling=1)
    fx["jpeg_444.jpg"] = save(base, "JPEG", quality=90, subsampling=0)
    fx["jpeg_progressive.jpg"] = save(base, "JPEG", quality=85, subsampling=2, progressive=True)
    fx["jpeg_gray.jpg"] = save(gray, "JPEG", quality=90)
    fx["jpeg_cmyk_adobe.jpg"] = save(base.convert("CMYK"), "JPEG", quality=90)
    fx["jpeg_cmyk_noadobe.jpg"] = strip_segment(fx["jpeg_cmyk_adobe.jpg"], 0xEE)
    adobe_ycc = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x01"
    fx["jpeg_adobe_ycc.jpg"] = insert_after_soi(strip_segment(fx["jpeg_420.jpg"], 0xE0), adobe_ycc)
    fx["jpeg_440.jpg"] = tj_compress(base.tobytes(), w, h, TJPF_RGB, TJSAMP_440)
    fx["jpeg_411.jpg"] = tj_compress(base.tobytes(), w, h, TJPF_RGB, TJSAMP_411)
    fx["jpeg_ycck.jpg"] = tj_compress(base.convert("CMYK").tobytes(), w, h, TJPF_CMYK, TJSAMP_420)
    fx["jpeg_1x1.jpg"] = save(base.crop((0, 0, 1, 1)), "JPEG", quality=90)
    fx["jpeg_3x3_420.jpg"] = save(base.crop((10, 10, 13, 13)), "JPEG", quality=90, subsampling=2)
    fx["jpeg_5x7_420.jpg"] = save(base.crop((10, 10, 15, 17)), "JPEG", quality=90, subsampling=2)
    fx["jpeg_5x7_422.jpg"] = save(base.crop((10, 10, 15, 17)), "JPEG", quality=90, subsampling=1)
    # Flat MCUs at quality 100: every tile of the size of one MCU has one
    # colour, so the IDCT is exact in any decoder and the Go path must match
    # PIL exactly, which pins its chroma upsampling (fancy across tile edges,
    # replication for 4:1:1 and for images at most 4 pixels wide) and its
    # colour conversion bit for bit.
    def flat(size, tile):
        im = Image.new("RGB", size)
        for by in range(0, size[1], tile[1]):
            for bx in range(0, size[0], tile[0]):
                im.paste((rng.randrange(256), rng.randrange(256), rng.randrange(256)), (bx, by, bx + tile[0], by + tile[1]))
        return im
    fx["jpeg_flat_420.jpg"] = save(flat((64, 32), (16, 16)), "JPEG", quality=100, subsampling=2)
    fx["jpeg_flat_420_narrow.jpg"] = save(flat((4, 48), (16, 16)), "JPEG", quality=100, subsampling=2)
    fx["jpeg_flat_422.jpg"] = save(flat((64, 32), (16, 8)), "JPEG", quality=100, subsampling=1)
    fx["jpeg_flat_440.jpg"] = tj_compress(flat((64, 32), (8, 16)).tobytes(), 64, 32, TJPF_RGB, TJSAMP_440, quality=100)
    fx["jpeg_flat_411.jpg"] = tj_compress(flat((64, 32), (32, 8)).tobytes(), 64, 32, TJPF_RGB, TJSAMP_411, quality=100)

    # PNG
    fx["png_rgb8.png"] = save(base, "PNG")
    rgba = base.copy()
    rgba.putalpha(Image.linear_gradient("L").resize((w, h)))
    fx["png_rgba8.png"] = save(rgba, "PNG")
    la = gray.copy()
    la.putalpha(Image.linear_gradient("L").resize((w, h)).transpose(Image.Transpose.ROTATE_90).resize((w, h)))
    fx["png_la8.png"] = save(la, "PNG")
    fx["png_gray8.png"] = save(gray, "PNG")
    fx["png_gray1.png"] = save(base.convert("1"), "PNG")
    gvals = list(gray.getdata())
    for depth in (2, 4):
        rows = [pack_bits([v >> (8 - depth) for v in gvals[y * w:(y + 1) * w]], depth) for y in range(h)]
        fx["png_gray%d.png" % depth] = png(w, h, depth, 0, rows)
    # 16-bit samples: spread over the full range, with values below 256 so
    # PIL's mode-"I" clipping is visible.
    g16 = [(v * 257 if (i % 3) else v) for i, v in enumerate(gvals)]
    rows16 = [b"".join(struct.pack(">H", g16[y * w + x]) for x in range(w)) for y in range(h)]
    fx["png_gray16.png"] = png(w, h, 16, 0, rows16)
    fx["png_gray16_trns.png"] = png(w, h, 16, 0, rows16, trns=struct.pack(">H", g16[5]))
    rgb = base.tobytes()
    rgb16 = [b"".join(struct.pack(">HHH", *(rgb[3 * (y * w + x) + c] * 256 + (x * 7 + c) % 256 for c in range(3))) for x in range(w)) for y in range(h)]
    fx["png_rgb16.png"] = png(w, h, 16, 2, rgb16)
    rgba16 = [b"".join(r[6 * x:6 * x + 6] + struct.pack(">H", (x * 3000 + y * 11) % 65536) for x in range(w)) for y, r in enumerate(rgb16)]
    fx["png_rgba16.png"] = png(w, h, 16, 6, rgba16)
    la16 = [b"".join(r[2 * x:2 * x + 2] + struct.pack(">H", (x * 1000 + y) % 65536) for x in range(w)) for y, r in enumerate(rows16)]
    fx["png_la16.png"] = png(w, h, 16, 4, la16)
    pal = base.quantize(64)
    fx["png_palette8.png"] = save(pal, "PNG")
    fx["png_palette4.png"] = save(base.quantize(16), "PNG", bits=4)
    pal_t = pal.copy()
    pal_t.info["transparency"] = bytes(range(0, 256, 4))
    fx["png_palette_trns.png"] = save(pal_t, "PNG", transparency=bytes(range(0, 256, 4)))
    oob_rows = [bytes((x * 37 + y * 11) % 256 for x in range(w)) for y in range(h)]
    fx["png_palette_oob.png"] = png(w, h, 8, 3, oob_rows, plte=bytes([200, 10, 10, 10, 200, 10, 10, 10, 200, 90, 90, 90]))
    fx["png_rgb_trns.png"] = save(base, "PNG", transparency=base.getpixel((3, 3)))
    fx["png_interlaced.png"] = png(w, h, 8, 2, [rgb[3 * w * y:3 * w * (y + 1)] for y in range(h)], interlace=True)
    fx["png_no_iend.png"] = fx["png_rgb8.png"][:-12]
    fx["png_1x1.png"] = save(base.crop((5, 5, 6, 6)), "PNG")
    # ImageNet has PNGs named .JPEG: the content decides.
    fx["png_disguised.JPEG"] = fx["png_rgb8.png"]

    # GIF
    fx["gif_basic.gif"] = save(base.quantize(64), "GIF")
    gct = bytes(rng.randrange(256) for _ in range(3 * 16))
    idx = [rng.randrange(16) for _ in range(20 * 9)]
    fx["gif_transparent_offset.gif"] = gif((45, 31), gct, (7, 5, 20, 9), transparent=3, min_code=4, indices=idx)
    fx["gif_offset_no_transparency.gif"] = gif((45, 31), gct, (7, 5, 20, 9), min_code=4, indices=idx)
    fx["gif_no_color_table.gif"] = gif((12, 10), None, (0, 0, 12, 10), min_code=8, indices=[rng.randrange(256) for _ in range(120)])
    lct = bytes([250, 0, 0, 0, 250, 0, 0, 0, 250, 250, 250, 0])
    fx["gif_local_table_oob.gif"] = gif((12, 10), gct, (0, 0, 12, 10), lct=lct, min_code=8, indices=[rng.randrange(256) for _ in range(120)])
    fx["gif_frame_outside_screen.gif"] = gif((10, 6), gct, (4, 2, 9, 7), min_code=4, indices=[rng.randrange(16) for _ in range(63)])

    # BMP
    fx["bmp_rgb24.bmp"] = save(base, "BMP")
    fx["bmp_palette8.bmp"] = save(base.quantize(64), "BMP")
    fx["bmp_gray8.bmp"] = save(gray, "BMP")
    fx["bmp_1bit.bmp"] = save(base.convert("1"), "BMP")
    fx["bmp_rgba32.bmp"] = save(rgba, "BMP")
    rowsize = (3 * w + 3) & ~3
    pixels = b"".join(bytes(c for x in range(w) for c in reversed(rgb[3 * (y * w + x):3 * (y * w + x) + 3])).ljust(rowsize, b"\0") for y in range(h))
    dib = struct.pack("<IiiHHIIiiII", 40, w, -h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    fx["bmp_topdown.bmp"] = b"BM" + struct.pack("<IHHI", 14 + 40 + len(pixels), 0, 0, 14 + 40) + dib + pixels

    # WebP
    fx["webp_lossy.webp"] = save(base, "WEBP", quality=80)
    fx["webp_lossy_even.webp"] = save(base.crop((0, 0, 44, 30)), "WEBP", quality=80)
    fx["webp_lossless.webp"] = save(base, "WEBP", lossless=True)
    fx["webp_lossy_alpha.webp"] = save(rgba, "WEBP", quality=80)
    fx["webp_lossless_alpha.webp"] = save(rgba, "WEBP", lossless=True)
    return fx


def bad_inputs(fx):
    """Inputs that must be refused, with the exception PIL raises for each."""
    bad = {}
    bad["empty.JPEG"] = b""
    bad["random.bin"] = bytes(rng.randrange(256) for _ in range(512))
    bad["text.JPEG"] = b"<html><body>404 Not Found</body></html>\n"
    j = fx["jpeg_420.jpg"]
    sos_at = j.index(b"\xff\xda")
    bad["truncated.jpg"] = j[:sos_at + (len(j) - sos_at) // 2]  # cut inside the scan
    bad["truncated_header.jpg"] = j[:40]
    bad["no_eoi.jpg"] = j[:-2]
    bad["no_eoi_progressive.jpg"] = fx["jpeg_progressive.jpg"][:-2]
    p = fx["png_rgb8.png"]
    bad["truncated.png"] = p[:len(p) // 2]
    # Headers that announce 30000x30000 pixels (900 MP) in a few bytes.
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 30000, 30000, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    sos = b"\xff\xda" + struct.pack(">HB", 12, 3) + b"\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    bad["bomb.jpg"] = b"\xff\xd8" + sof + sos + b"\x00" * 64 + b"\xff\xd9"
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
    bad["bomb.png"] = b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + chunk(b"IEND", b"")
    bad["bomb.gif"] = gif((30000, 30000), bytes(12), (0, 0, 2, 2), min_code=2, indices=[0, 1, 2, 3])
    bad["zero_width.png"] = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 5, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")
    bad["bad_crc.png"] = p[:40] + bytes([p[40] ^ 0xFF]) + p[41:]
    bad["tiff.tif"] = b"II*\x00" + bytes(60)
    return bad


def pil_outcome(data):
    """PIL's mode and RGB image for data, or the exception it raises."""
    try:
        im = Image.open(io.BytesIO(data))
        mode = im.mode
        rgb = im.convert("RGB")
        return None, mode, rgb
    except Image.DecompressionBombError as e:
        return ("DecompressionBombError", str(e)), None, None
    except Exception as e:  # noqa: BLE001 - we record whatever PIL raises
        return (type(e).__name__, str(e)), None, None


def go_bytes_literal(data):
    return "".join("\\x%02x" % b for b in data)


def write_fuzz_seed(name, data):
    with open(os.path.join(FUZZ, name), "w") as f:
        f.write('go test fuzz v1\n[]byte("%s")\n' % go_bytes_literal(data))


def main():
    for d in (FIX, EXP, FUZZ):
        os.makedirs(d, exist_ok=True)
    fx = fixtures(base_image())
    manifest = {"pil_version": PIL.__version__, "fixtures": [], "bad": [], "photos": []}
    for name in sorted(fx):
        data = fx[name]
        with open(os.path.join(FIX, name), "wb") as f:
            f.write(data)
        err, mode, rgb = pil_outcome(data)
        assert err is None, (name, err)
        raw = rgb.tobytes()
        stem = name.rsplit(".", 1)[0]
        with open(os.path.join(EXP, stem + ".rgb"), "wb") as f:
            f.write(raw)
        fmt = Image.open(io.BytesIO(data)).format.lower()
        manifest["fixtures"].append({
            "file": "fixtures/" + name, "rgb": "expected/" + stem + ".rgb", "format": fmt,
            "mode": mode, "width": rgb.size[0], "height": rgb.size[1],
            "sha256": hashlib.sha256(raw).hexdigest(),
        })
    bad = bad_inputs(fx)
    for name in sorted(bad):
        data = bad[name]
        with open(os.path.join(FIX, name), "wb") as f:
            f.write(data)
        err, _, _ = pil_outcome(data)
        assert err is not None, name
        message = re.sub(r" at 0x[0-9a-f]+", "", err[1])[:200]  # object addresses vary
        manifest["bad"].append({"file": "fixtures/" + name, "pil_exception": err[0], "pil_message": message})
    for name in PHOTOS:
        with open(os.path.join(HERE, "photos", name), "rb") as f:
            data = f.read()
        rgb = Image.open(io.BytesIO(data)).convert("RGB")
        manifest["photos"].append({"file": "photos/" + name, "width": rgb.size[0], "height": rgb.size[1],
                                   "sha256": hashlib.sha256(rgb.tobytes()).hexdigest()})
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")

    # PIL's cmyk2rgb on the corners of the cube and random samples.
    quads = [(c, m, y, k) for c in (0, 255) for m in (0, 255) for y in (0, 128, 255) for k in (0, 1, 127, 254, 255)]
    quads += [tuple(rng.randrange(256) for _ in range(4)) for _ in range(2000)]
    cmyk = Image.frombytes("CMYK", (len(quads), 1), bytes(v for q in quads for v in q))
    out = list(cmyk.convert("RGB").getdata())
    with open(os.path.join(HERE, "cmyk2rgb.json"), "w") as f:
        json.dump({"pil_version": PIL.__version__, "cmyk": quads, "rgb": out}, f, separators=(",", ":"))
        f.write("\n")

    # Fuzz seeds: every kind of fixture again at 9x7 pixels, truncated
    # copies of them, and the bad inputs.
    for name in os.listdir(FUZZ):
        os.remove(os.path.join(FUZZ, name))
    small = fixtures(base_image().crop((0, 0, 9, 7)))
    for name in sorted(small):
        data = small[name]
        stem = name.replace(".", "_")
        write_fuzz_seed(stem, data)
        write_fuzz_seed(stem + "_cut", data[:len(data) * 2 // 3])
    for name in sorted(bad):
        write_fuzz_seed("bad_" + name.replace(".", "_"), bad[name])


if __name__ == "__main__":
    main()
