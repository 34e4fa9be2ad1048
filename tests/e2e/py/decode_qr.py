#!/usr/bin/env python3
"""Decodes the QR codes of a page image with zxing-cpp (an independent decoder).

Usage: decode_qr.py PAGE.pgm

Reads a binary PGM (P5, what `pdftoppm -gray` writes) without any imaging library and prints
the text of each QR code found, one per line. Exits with status 1 when there is none.
"""

import sys

import zxingcpp


def read_pgm(path):
    data = open(path, "rb").read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P5" or int(fields[3]) > 255:
        sys.exit("not an 8-bit binary PGM")
    width, height = int(fields[1]), int(fields[2])
    pos += 1  # the single whitespace after maxval
    return width, height, data[pos:pos + width * height]


class Gray:
    """A grayscale image through the array interface zxing-cpp accepts."""

    def __init__(self, width, height, pixels):
        self.__array_interface__ = {
            "shape": (height, width),
            "typestr": "|u1",
            "data": pixels,
            "version": 3,
        }


def main():
    width, height, pixels = read_pgm(sys.argv[1])
    found = [
        b.text
        for b in zxingcpp.read_barcodes(Gray(width, height, pixels))
        if b.format == zxingcpp.BarcodeFormat.QRCode
    ]
    for text in found:
        print(text)
    sys.exit(0 if found else 1)


if __name__ == "__main__":
    main()
