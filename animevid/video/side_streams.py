"""Audio and subtitle streams beside the film: copied where the output container takes them, else re-encoded.

* :func:`plan_side_streams` decides what becomes of every stream but the film, before any frame is
  stylized, by trying rather than by a table of codecs: the stream's header and first packets are
  written into an in-memory container of the output format, exactly as the job will write them
  (:class:`SideWriter`). A stream the container takes is copied packet for packet. Audio it does
  not take is re-encoded to the container's usual codec (:data:`AUDIO_ENCODERS`), tried the same
  way; where that cannot be done either (this FFmpeg build has no such encoder, a channel count
  the codec cannot carry) the job is refused before any work: the user's sound is never lost
  silently. Text subtitles the container does not take are re-encoded to its text format
  (:data:`SUBTITLE_ENCODERS`); subtitles that are pictures, or a container without subtitles,
  drop the stream. Each re-encoded or dropped stream is one warning line.
* :class:`SideWriter` writes the planned streams into an output container: a copied packet goes to
  the muxer as it is; a re-encoded one is decoded and encoded again with its timing (audio: the
  same start, the same length within one codec frame; subtitles: the same cue times), and
  :meth:`SideWriter.flush` drains the codecs at the end. The single pipeline
  (:mod:`animevid.video.pipeline`) and the join of parts (:mod:`animevid.video.segments`: several
  workers, Ray segments, several encoders) both write through it, so every path writes the same
  side streams.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import av

from ..errors import UsageError
from .reader import reason

# The codec audio is re-encoded to when the container cannot hold it as it is, per output format
# (several: the first this FFmpeg build has and that takes the stream wins):
AUDIO_ENCODERS: dict[str, tuple[str, ...]] = {
    # What players expect in MP4 and QuickTime files, and FFmpeg's default for them.
    "mp4": ("aac",),
    "mov": ("aac",),
    # WebM allows Opus and Vorbis only; Opus is FFmpeg's default (its native Vorbis encoder is experimental).
    "webm": ("libopus",),
    # Matroska refuses only rare codecs, and nothing about it calls for a lossy codec: FLAC keeps
    # the decoded sound and its timing exactly (no encoder delay). Opus where FLAC cannot (over 8 channels).
    "matroska": ("flac", "libopus"),
    # AVI cannot signal an encoder's delay (no edit list, no pre-skip), so a lossy codec (FFmpeg's
    # default MP3) would start the sound ~25 ms late; PCM keeps the timing exact and plays in every AVI player.
    "avi": ("pcm_s16le",),
}
# The text subtitle format of each output format (AVI has none): those of FFmpeg's muxers.
SUBTITLE_ENCODERS: dict[str, str] = {"mp4": "mov_text", "mov": "mov_text", "webm": "webvtt", "matroska": "ass"}
TRIAL_PACKETS = 8  # first packets of each stream written by a trial
TRIAL_SCAN = 200  # packets read at most to find them: a subtitle's first cue may come late (then its header alone is tried)
_SUFFIX_FOR_COPY = (".mkv", "matroska")  # the container suggested when audio can be neither copied nor re-encoded


@dataclass(frozen=True)
class AudioSettings:
    """The sample rate, sample format and channel layout re-encoded audio is written with."""

    rate: int
    format: str
    layout: str


@dataclass(frozen=True)
class SideStream:
    """What becomes of one audio or subtitle stream of the source."""

    index: int  # the stream's index in the source
    kind: str  # "audio" or "subtitle"
    codec: str  # the source's codec
    encoder: str | None = None  # None: copied packet for packet; else re-encoded with this FFmpeg encoder
    audio: AudioSettings | None = None  # for re-encoded audio

    @property
    def copied(self) -> bool:
        return self.encoder is None


@dataclass(frozen=True)
class SidePlan:
    streams: tuple[SideStream, ...]  # in source order: the output's streams after the film's
    warnings: tuple[str, ...]  # one line per stream re-encoded or dropped


def plan_side_streams(container: av.container.InputContainer, film: int, output_format: str, suffix: str) -> SidePlan:
    """What becomes of every stream of ``container`` but the film's (index ``film``) in a ``suffix`` file.

    Reads the first packets of the audio and subtitle streams (the container is left wherever
    that stops). :class:`UsageError` when an audio stream can be neither copied nor re-encoded.
    """
    wanted = [stream for stream in container.streams if stream.index != film and stream.type in ("audio", "subtitle")]
    first = _first_packets(container, wanted)
    streams: list[SideStream] = []
    warnings: list[str] = []
    for stream in container.streams:
        if stream.index == film:
            continue
        described = _describe(stream)
        if stream.type == "video":
            warnings.append(f"{described} dropped: only the film's stream (#{film}) is stylized")
            continue
        if stream.type not in ("audio", "subtitle"):
            warnings.append(f"{described} dropped: only video, audio and subtitles are written")
            continue
        copied = SideStream(stream.index, stream.type, _codec_name(stream))
        if _trial(stream, copied, output_format, first[stream.index]) is None:
            streams.append(copied)
        elif stream.type == "audio":
            streams.append(_reencoded_audio(stream, copied, output_format, suffix, first[stream.index]))
            warnings.append(f"{described} re-encoded to {_format_name(streams[-1].encoder)}: {suffix} files cannot hold it")
        else:
            planned, why = _reencoded_subtitles(stream, copied, output_format, suffix, first[stream.index])
            if planned is not None:
                streams.append(planned)
                warnings.append(f"{described} re-encoded to {_format_name(planned.encoder)}: {suffix} files cannot hold it")
            else:
                warnings.append(f"{described} dropped: {why}")
    return SidePlan(tuple(streams), tuple(warnings))


def _describe(stream: av.stream.Stream) -> str:
    return f"{stream.type} stream #{stream.index} ({_codec_name(stream) or 'unknown codec'})"


def _codec_name(stream: av.stream.Stream) -> str:
    """The stream's format as FFmpeg names it (``subrip``, not its decoder's name ``srt``)."""
    if stream.codec_context is None:
        return ""
    with contextlib.suppress(AttributeError, ValueError):
        return stream.codec_context.codec.canonical_name
    return stream.codec_context.name or ""


def _format_name(encoder: str) -> str:
    """What an encoder writes (``opus`` for ``libopus``)."""
    return av.Codec(encoder, "w").canonical_name


def _first_packets(container: av.container.InputContainer, streams: list[av.stream.Stream]) -> dict[int, list[av.Packet]]:
    first: dict[int, list[av.Packet]] = {stream.index: [] for stream in streams}
    if not streams:
        return first
    with contextlib.suppress(av.FFmpegError, OSError):  # a damaged file: tried with what was read; the job reports the damage
        for scanned, packet in enumerate(container.demux(streams)):
            timed = packet.pts is not None or packet.dts is not None  # the job skips the others too
            if packet.size and timed and len(first[packet.stream.index]) < TRIAL_PACKETS:
                first[packet.stream.index].append(packet)
            if scanned >= TRIAL_SCAN or all(len(packets) == TRIAL_PACKETS for packets in first.values()):
                break
    return first


def _trial(stream: av.stream.Stream, planned: SideStream, output_format: str, packets: list[av.Packet]) -> str | None:
    """None when ``stream`` can be written as ``planned`` into a container of ``output_format``, else why not.

    Writes the header, ``packets`` (the stream's first) and the trailer into memory, through the
    :class:`SideWriter` the job uses.
    """
    failure = None
    output = av.open(io.BytesIO(), "w", format=output_format)
    try:
        writer = SideWriter(output, (planned,), {stream.index: stream})
        output.start_encoding()  # the header: where most containers refuse a codec
        for packet in packets:
            packet.stream = stream  # the source's again: an earlier trial gave it to its own output
            output.mux(writer.packets(packet))
        output.mux(writer.flush())
        output.close()  # the trailer
    except (av.FFmpegError, ValueError, OSError) as exc:
        failure = reason(exc)
        with contextlib.suppress(Exception):  # the failure found says more
            output.close()
    finally:
        if not planned.copied and stream.codec_context.is_open:
            stream.codec_context.flush_buffers()  # decode again in a later trial, after this one drained it
    return failure


def _reencoded_audio(
    stream: av.audio.stream.AudioStream, copied: SideStream, output_format: str, suffix: str, packets: list[av.Packet]
) -> SideStream:  # fmt: skip
    """The first of the container's audio codecs that takes ``stream``; :class:`UsageError` if none does."""
    failures = []
    for encoder in AUDIO_ENCODERS.get(output_format, ()):
        try:
            codec = av.Codec(encoder, "w")
        except av.codec.codec.UnknownCodecError:
            failures.append(f"this FFmpeg build has no {encoder} encoder to re-encode it")
            continue
        failure = "no sample format fits"
        for settings in _audio_settings(stream.codec_context, codec):
            planned = dataclasses.replace(copied, encoder=encoder, audio=settings)
            failure = _trial(stream, planned, output_format, packets)
            if failure is None:
                return planned
        failures.append(f"it cannot be re-encoded to {encoder} ({failure})")
    container, name = _SUFFIX_FOR_COPY
    instead = ""
    if output_format != name and _trial(stream, copied, name, packets) is None:
        instead = f": write a {container} file instead"
    why = "; ".join(failures) or "no audio codec is known for it"
    raise UsageError(f"{_describe(stream)} cannot be stored in a {suffix} file, and {why}{instead}")


def _audio_settings(decoder: av.audio.codeccontext.AudioCodecContext, codec: av.Codec) -> list[AudioSettings]:
    """What to try, in order: the source's rate, sample format and layout, or the nearest the codec takes.

    Rate: the source's, else the codec's next higher (nothing is lost), else its highest. Format:
    the source's, else the codec's widest. Layout: the source's, then the usual order of its
    channel count (Matroska and PCM often leave the order unsaid, which AAC and Opus refuse).
    """
    rate = decoder.sample_rate
    rates = codec.audio_rates
    if rates and rate not in rates:
        rate = min((r for r in rates if r > rate), default=max(rates))
    formats = codec.audio_formats or ([decoder.format] if decoder.format is not None else [])
    names = [f.name for f in formats]
    if not names:
        return []
    sample_format = decoder.format.name if decoder.format is not None and decoder.format.name in names else max(formats, key=lambda f: f.bytes).name
    layouts = [decoder.layout.name]
    with contextlib.suppress(ValueError):  # no usual order for this many channels
        usual = av.AudioLayout(f"{decoder.layout.nb_channels}c").name  # FFmpeg's default layout for the count
        if usual not in layouts:
            layouts.append(usual)
    return [AudioSettings(rate, sample_format, layout) for layout in layouts]


def _reencoded_subtitles(
    stream: av.stream.Stream, copied: SideStream, output_format: str, suffix: str, packets: list[av.Packet]
) -> tuple[SideStream | None, str]:  # fmt: skip
    """The stream re-encoded to the container's text format, or None and why it is dropped."""
    encoder = SUBTITLE_ENCODERS.get(output_format)
    if encoder is None:
        return None, f"{suffix} files hold no subtitles (.mkv does)"
    decoder = None
    with contextlib.suppress(AttributeError, ValueError):
        decoder = stream.codec_context.codec if stream.codec_context.codec.is_decoder else None
    if decoder is None:
        return None, f"{suffix} files cannot hold it, and this FFmpeg build cannot decode it to re-encode it"
    if not decoder.text_sub:
        return None, f"{suffix} files cannot hold it, and its cues are pictures, which {encoder} cannot carry (.mkv can hold it)"
    planned = dataclasses.replace(copied, encoder=encoder)
    failure = _trial(stream, planned, output_format, packets)
    if failure is not None:
        return None, f"{suffix} files cannot hold it, and it cannot be re-encoded to {encoder} ({failure})"
    return planned, ""


# -- writing ----------------------------------------------------------------------------------------


class SideWriter:
    """Writes the planned side streams into ``output``: each packet copied as it is, or decoded and re-encoded.

    Creates the output streams (in plan order) when made; ``streams``: the source's streams by
    index (``container.streams``, or a dict), needed when ``planned`` is not empty. Give it every
    packet of the planned streams (already cut and shifted) with :meth:`packets`, mux what comes
    back, then mux what :meth:`flush` returns before the trailer.
    """

    def __init__(
        self, output: av.container.OutputContainer, planned: Sequence[SideStream],
        streams: av.container.streams.StreamContainer | dict[int, av.stream.Stream] | None = None,
    ) -> None:  # fmt: skip
        self._tracks = {side.index: _track(output, streams[side.index], side) for side in planned}

    def packets(self, packet: av.Packet) -> list[av.Packet]:
        """What to mux for one packet of a source stream: the packet itself, or what re-encoding it gives."""
        return self._tracks[packet.stream.index].packets(packet)

    def flush(self) -> list[av.Packet]:
        """The packets the codecs still hold (re-encoded streams): mux them before the trailer."""
        return [packet for track in self._tracks.values() for packet in track.flush()]


def _track(output: av.container.OutputContainer, stream: av.stream.Stream, side: SideStream):
    if side.copied:
        return _Copied(output, stream)
    if side.kind == "audio":
        return _AudioReencoded(output, stream, side)
    return _SubtitlesReencoded(output, stream, side)


class _Copied:
    def __init__(self, output: av.container.OutputContainer, stream: av.stream.Stream) -> None:
        self.out = output.add_stream_from_template(stream)

    def packets(self, packet: av.Packet) -> list[av.Packet]:
        packet.stream = self.out
        return [packet]

    def flush(self) -> list[av.Packet]:
        return []


class _AudioReencoded:
    """Decodes and encodes again, every sample at its time: frames are timed in samples (exact), from their source timestamps."""

    def __init__(self, output: av.container.OutputContainer, stream: av.audio.stream.AudioStream, side: SideStream) -> None:
        settings = side.audio
        self.decoder = stream.codec_context
        self.out = output.add_stream(side.encoder, rate=settings.rate, layout=settings.layout)
        self.out.codec_context.format = settings.format
        self.out.codec_context.time_base = Fraction(1, settings.rate)
        self._next: int | None = None  # where the next frame starts, in samples, if it has no timestamp

    def packets(self, packet: av.Packet) -> list[av.Packet]:
        return self._encode(self.decoder.decode(packet))

    def flush(self) -> list[av.Packet]:
        return self._encode(self.decoder.decode(None)) + self.out.encode(None)

    def _encode(self, frames: list[av.AudioFrame]) -> list[av.Packet]:
        encoded = []
        for frame in frames:
            rate = frame.sample_rate
            if frame.pts is not None and frame.time_base is not None:
                start = round(frame.pts * frame.time_base * rate)
            else:
                start = self._next or 0
            # In 1/rate units, the resampler and the encoder's frame-size split count samples exactly.
            frame.pts, frame.time_base = start, Fraction(1, rate)
            self._next = start + frame.samples
            encoded += self.out.encode(frame)
        return encoded


class _SubtitlesReencoded:
    """Decodes each cue and encodes it in the container's text format, with the source packet's times."""

    def __init__(self, output: av.container.OutputContainer, stream: av.stream.Stream, side: SideStream) -> None:
        self.decoder = stream.codec_context
        if not self.decoder.is_open:
            self.decoder.open(strict=False)  # the ASS header (styles) every text decoder makes exists once open
        self.out = output.add_stream(side.encoder)
        self.out.codec_context.subtitle_header = self.decoder.subtitle_header  # text encoders start from it
        self.out.codec_context.time_base = stream.time_base

    def packets(self, packet: av.Packet) -> list[av.Packet]:
        cues = self.decoder.decode2(packet)
        if cues is None or not len(cues):
            return []
        encoded = self.out.codec_context.encode_subtitle(cues)
        encoded.time_base = packet.time_base
        encoded.pts = packet.pts if packet.pts is not None else packet.dts
        encoded.dts = encoded.pts
        shown = Fraction(cues.end_display_time - cues.start_display_time, 1000)  # milliseconds
        encoded.duration = packet.duration or round(shown / packet.time_base)
        encoded.stream = self.out
        return [encoded]

    def flush(self) -> list[av.Packet]:
        return []
