"""Audio to and from bytes: WAV, FLAC and MP3 encoders, one strict decoder.

Arrays are float32 ``(channels, samples)`` as everywhere in ``models``.
WAV and FLAC go through libsndfile (``soundfile``): its FLAC encoder is about
three times faster than pedalboard's here. MP3 goes through pedalboard's LAME
writer, which is about three times faster than libsndfile's or PyAV's.

The decoder never lets a library's own exception type escape: truncated,
corrupt or empty bytes raise ``AudioDecodeError``, so a batch can catch one
type and carry on.
"""

from __future__ import annotations

import hashlib
import io
import re
from typing import Literal

import numpy as np
import soundfile as sf

from models.errors import AudioDecodeError

#: More channels than this means the array is almost certainly
#: ``(samples, channels)`` by mistake.
MAX_CHANNELS = 8
MP3_BITRATES_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
MP3_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)

_WAV_SUBTYPES = {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}
_FLAC_SUBTYPES = {16: "PCM_16", 24: "PCM_24"}
# libsndfile notes a WAV whose data chunk claims more bytes than the file holds
# as "data : 882000 (should be 440978)" and quietly returns the shorter audio.
_WAV_SHORT_DATA = re.compile(r"data\s*:\s*(\d+)\s*\(should be (\d+)\)")
_WAV_UNKNOWN_LENGTHS = {0, 0xFFFFFFFF}  # streaming writers that never patch the header


def as_float32_audio(audio: np.ndarray) -> np.ndarray:
    """``audio`` as a C-contiguous float32 ``(channels, samples)`` array.

    1-D input is mono. Raises ``ValueError`` for any other shape, including
    the common ``(samples, channels)`` mistake.
    """
    arr = np.asarray(audio)
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    if arr.ndim != 2 or not 1 <= arr.shape[0] <= MAX_CHANNELS:
        raise ValueError(
            f"audio of shape {arr.shape} is not (channels, samples) with 1 to "
            f"{MAX_CHANNELS} channels; transpose (samples, channels) arrays"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"audio dtype {arr.dtype} is not floating point; expected float32")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _check_rate(sample_rate: int) -> int:
    if not 1000 <= int(sample_rate) <= 384_000:
        raise ValueError(f"value {sample_rate} for 'sample_rate' is out of range [1000, 384000]")
    return int(sample_rate)


def _for_pcm(audio: np.ndarray) -> np.ndarray:
    """Validated audio clipped to [-1, 1]: libsndfile wraps out-of-range
    floats when it converts to integers, which would turn an over into a
    full-scale click."""
    arr = as_float32_audio(audio)
    if not np.isfinite(arr).all():
        raise ValueError("audio contains NaN or inf samples; these cannot be encoded")
    return np.clip(arr, -1.0, 1.0)


def _encode_sndfile(audio: np.ndarray, sample_rate: int, *, fmt: str, subtype: str) -> bytes:
    buf = io.BytesIO()
    # soundfile wants (samples, channels); the transpose is a view, no copy.
    sf.write(buf, audio.T, _check_rate(sample_rate), format=fmt, subtype=subtype)
    return buf.getvalue()


def encode_wav(
    audio: np.ndarray, sample_rate: int, *, bit_depth: Literal[16, 24, 32] = 16
) -> bytes:
    """Encode as WAV: 16- or 24-bit PCM, or 32-bit float (which keeps overs)."""
    if bit_depth not in _WAV_SUBTYPES:
        raise ValueError(f"value {bit_depth} for 'bit_depth' is not one of 16, 24, 32")
    if bit_depth == 32:
        arr = as_float32_audio(audio)
        if not np.isfinite(arr).all():
            raise ValueError("audio contains NaN or inf samples; these cannot be encoded")
    else:
        arr = _for_pcm(audio)
    return _encode_sndfile(arr, sample_rate, fmt="WAV", subtype=_WAV_SUBTYPES[bit_depth])


def encode_flac(audio: np.ndarray, sample_rate: int, *, bit_depth: Literal[16, 24] = 24) -> bytes:
    """Encode as lossless FLAC (24-bit by default, 16-bit on request)."""
    if bit_depth not in _FLAC_SUBTYPES:
        raise ValueError(f"value {bit_depth} for 'bit_depth' is not one of 16, 24")
    return _encode_sndfile(
        _for_pcm(audio), sample_rate, fmt="FLAC", subtype=_FLAC_SUBTYPES[bit_depth]
    )


def encode_mp3(audio: np.ndarray, sample_rate: int, *, bitrate_kbps: int = 192) -> bytes:
    """Encode as constant-bitrate MP3 (LAME, through pedalboard)."""
    if bitrate_kbps not in MP3_BITRATES_KBPS:
        raise ValueError(
            f"value {bitrate_kbps} for 'bitrate_kbps' is not one of {MP3_BITRATES_KBPS}"
        )
    if int(sample_rate) not in MP3_SAMPLE_RATES:
        raise ValueError(
            f"value {sample_rate} for 'sample_rate' is not one of {MP3_SAMPLE_RATES} (MP3)"
        )
    arr = _for_pcm(audio)
    from pedalboard.io import AudioFile  # imported here: pedalboard is slow to import

    buf = io.BytesIO()
    with AudioFile(
        buf, "w", int(sample_rate), arr.shape[0], format="mp3", quality=bitrate_kbps
    ) as f:
        f.write(arr)
    return buf.getvalue()


def _declared_wav_shortfall(extra_info: str) -> tuple[int, int] | None:
    match = _WAV_SHORT_DATA.search(extra_info)
    if match is None:
        return None
    declared, present = int(match.group(1)), int(match.group(2))
    if declared in _WAV_UNKNOWN_LENGTHS or declared <= present:
        return None
    return declared, present


def decode_audio(data: bytes, *, format_hint: str | None = None) -> tuple[np.ndarray, int]:
    """Decode WAV, FLAC, MP3 or OGG bytes to float32 ``(channels, samples)``
    and the sample rate.

    The format is read from the bytes; ``format_hint`` (e.g. ``"flac"``) only
    names what was expected in error messages. Raises ``AudioDecodeError``
    for empty, truncated, corrupt or unsupported data, and for a file with no
    audio frames; never another exception type.
    """
    what = f"{len(data)} bytes of {format_hint.upper() if format_hint else 'audio'}"
    if len(data) == 0:
        raise AudioDecodeError("empty audio (0 bytes); expected WAV, FLAC, MP3 or OGG data")
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            declared = int(f.frames)
            fmt = str(f.format)
            extra = f.extra_info
            samples = f.read(dtype="float32", always_2d=True)
            sample_rate = int(f.samplerate)
    except Exception as exc:  # libsndfile raises several types; the contract is one
        raise AudioDecodeError(f"corrupt or unsupported {what}: {exc}") from exc
    read = samples.shape[0]
    if fmt == "WAV" and (short := _declared_wav_shortfall(extra)) is not None:
        raise AudioDecodeError(
            f"truncated {what}: the WAV header declares {short[0]} data bytes, "
            f"only {short[1]} are present"
        )
    if read < declared:
        raise AudioDecodeError(
            f"truncated {what} ({fmt}): decoded {read} of {declared} frames "
            f"({read / max(sample_rate, 1):.2f} of {declared / max(sample_rate, 1):.2f} s)"
        )
    if read == 0:
        raise AudioDecodeError(f"{what} ({fmt}) holds no audio frames")
    return np.ascontiguousarray(samples.T), sample_rate


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()
