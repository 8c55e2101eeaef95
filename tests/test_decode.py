"""Content decoding: every supported encoding, one byte at a time, stacked, corrupt, truncated."""

import gzip
import zlib

import brotli
import pytest

from runtap.addon.decode import decode_body, make_decoder, zstd

BODY = b'{"id":"run_1","object":"thread.run","status":"queued"}' * 20

ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,  # zlib-wrapped, as the RFC says
    "br": brotli.compress,
    "zstd": zstd.compress,
}


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def _byte_by_byte(encoded: bytes, encoding: str):
    decoder = make_decoder(encoding)
    out = b"".join(decoder.feed(encoded[i : i + 1]) for i in range(len(encoded)))
    return out + decoder.flush(), decoder.error


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_one_byte_chunks_decode_like_the_whole_body(encoding):
    encoded = ENCODERS[encoding](BODY)
    assert _byte_by_byte(encoded, encoding) == (BODY, None)
    assert decode_body(encoded, encoding) == (BODY, None)


def test_raw_deflate_is_accepted_as_deflate():
    assert _byte_by_byte(_raw_deflate(BODY), "deflate") == (BODY, None)


def test_stacked_encodings_are_undone_last_first():
    encoded = brotli.compress(gzip.compress(BODY))
    assert decode_body(encoded, "gzip, br") == (BODY, None)
    assert _byte_by_byte(encoded, "GZIP,BR") == (BODY, None)


def test_multi_member_gzip_and_multi_frame_zstd():
    assert decode_body(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip") == (b"abcd", None)
    frame = zstd.compress
    assert _byte_by_byte(frame(b"ab") + frame(b"cd"), "zstd") == (b"abcd", None)


@pytest.mark.parametrize("encoding", ["", None, "identity", " identity "])
def test_identity(encoding):
    assert decode_body(b"plain", encoding) == (b"plain", None)
    assert _byte_by_byte(b"plain", encoding) == (b"plain", None)


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_truncated_body_is_an_error_not_an_exception(encoding):
    encoded = ENCODERS[encoding](BODY)[:-6]
    body, error = decode_body(encoded, encoding)
    assert body == encoded  # the raw body is kept when it cannot be decoded
    assert error.startswith(f"{encoding}: ") and "truncated" in error


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_corrupt_input_sets_error_and_later_input_is_ignored(encoding):
    decoder = make_decoder(encoding)
    assert decoder.feed(b"\x00not compressed at all, sorry\xff" * 3) == b""
    assert decoder.error and decoder.error.startswith(encoding)
    assert decoder.feed(ENCODERS[encoding](BODY)) == b""
    assert decoder.flush() == b""


def test_unsupported_encoding_is_reported_and_passed_through():
    assert decode_body(b"x", "compress") == (b"x", "unsupported content-encoding 'compress'")
    decoder = make_decoder("gzip, compress")
    assert decoder.error == "unsupported content-encoding 'compress'"
    assert decoder.feed(b"ab") + decoder.feed(b"c") + decoder.flush() == b"abc"


def test_empty_body_with_an_encoding_is_fine():
    assert decode_body(b"", "gzip") == (b"", None)
    decoder = make_decoder("br")
    assert decoder.flush() == b"" and decoder.error is None
