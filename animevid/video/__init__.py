"""Frames through the video pipeline: decode, stylize, encode, as one stream or in parts.

* :mod:`.reader` — opening a video, its film stream, probing, timed and upright frames;
* :mod:`.pipeline` — the streaming pipeline (decoder thread, generator, encoder thread), audio kept;
* :mod:`.colour` — YUV 4:2:0 ↔ RGB as swscale does it, on the host's or the generator's device;
* :mod:`.segments` — cutting a video at key frames, rendering a segment into a part, joining parts;
* :mod:`.chunked` — several encoders in one process, joined like segments.

Above the engine (it runs a :class:`~animevid.engine.stylizer.Stylizer`), below :mod:`animevid.jobs`.
"""
