#!/usr/bin/env python3
"""The queries in a dnstap capture (Frame Streams of protobuf Dnstap messages, as Knot's
mod-dnstap writes them), one `name TYPE` line each, in arrival order.

Used by bench/run.sh to count what a checker really asked the server (total and distinct
names) and to build dnsperf's query file from exactly those names. Only the fields needed
are decoded: Dnstap.message (14) → Message.query_message (10) → the DNS question.
"""

import struct
import sys

TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
         33: "SRV", 43: "DS", 46: "RRSIG", 48: "DNSKEY", 52: "TLSA", 64: "SVCB", 65: "HTTPS",
         99: "SPF", 257: "CAA"}


def varint(buf, pos):
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def fields(buf):
    """(field number, value) of a protobuf message; length-delimited values as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, value


def question(wire):
    """`name TYPE` of a DNS message's first question (no compression in questions)."""
    if len(wire) < 12 or struct.unpack(">H", wire[4:6])[0] == 0:
        return None
    pos, labels = 12, []
    while wire[pos]:
        n = wire[pos]
        labels.append(wire[pos + 1:pos + 1 + n].decode("ascii", "replace").lower())
        pos += 1 + n
    qtype = struct.unpack(">H", wire[pos + 1:pos + 3])[0]
    return f"{'.'.join(labels) or '.'} {TYPES.get(qtype, f'TYPE{qtype}')}"


def queries(path):
    data = open(path, "rb").read()
    pos = 0
    while pos + 4 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        pos += 4
        if length == 0:  # control frame: skip it
            (clen,) = struct.unpack(">I", data[pos:pos + 4])
            pos += 4 + clen
            continue
        frame, pos = data[pos:pos + length], pos + length
        for number, value in fields(frame):
            if number == 14:
                for n2, v2 in fields(value):
                    if n2 == 10:
                        q = question(v2)
                        if q:
                            yield q


if __name__ == "__main__":
    out = sys.stdout
    for q in queries(sys.argv[1]):
        out.write(q + "\n")
