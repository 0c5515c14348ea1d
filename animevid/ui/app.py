"""The page: Photo, Video and Styles tabs wired to the library (``animevid.stylize``, ``preview``, ``weights.styles``).

Nothing here stylizes, reads or checks a file itself: each handler calls one library function
and shows what it returns, or its one-line error (:class:`gr.Error`). Every job that runs a
generator waits in one queue (``concurrency_id="device"``, one at a time), photos and videos alike.
A video job runs in a worker thread so that the handler can stream its progress (from the
library's :class:`JobHooks`) to the page; Cancel sets the flag the library asks between batches.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import threading
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from ..api import stylize
from ..engine.stylizer import DTYPES
from ..errors import AnimevidError, InputError
from ..imageio import IMAGE_SUFFIXES, is_image_path, write_image
from ..options import DEFAULT_CRF, ENGINES, InferenceOptions, UiOptions, VideoOptions
from ..preview import PreviewOptions, contact_sheet
from ..progress import JobHooks, format_seconds
from ..weights import styles as style_store
from .files import keep, remove_older_than, result_path

DEVICE_QUEUE = "device"  # the concurrency id of every event that runs a generator: one job at a time
# Video options shown as checkboxes: every plain on/off field of VideoOptions (new ones appear by
# themselves), but keep_partial: a cancelled job in the app leaves nothing, as the page promises.
HIDDEN_VIDEO_FLAGS = {"keep_partial"}
POLL_SECONDS = 0.5  # how often a running video job's progress is sent to the page


def video_flags() -> list[str]:
    return [f.name for f in dataclasses.fields(VideoOptions) if f.type in ("bool", bool) and f.name not in HIDDEN_VIDEO_FLAGS]


def library_errors(handler: Callable) -> Callable:
    """The library's one-line message in the page for anything a user can cause; the app keeps serving."""

    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def stream(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except AnimevidError as exc:
                raise gr.Error(str(exc), print_exception=False) from None

        return stream

    @functools.wraps(handler)
    def run(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except AnimevidError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    return run


def style_choices() -> list[str]:
    """Installed styles, then official ones that are fetched on first use."""
    infos = style_store.list_styles()
    installed = [info.name for info in infos if info.installed]
    return installed + [info.name for info in infos if not info.installed and style_store.is_fetchable(info.name)]


def styles_table() -> list[list[str]]:
    rows = []
    for info in style_store.list_styles():
        installed = f"yes ({info.semantics})" if info.installed and info.semantics else "yes" if info.installed else "no"
        rows.append([info.name, info.network, info.artist, info.film, info.source, installed])
    return rows


def device_choices() -> list[str]:
    import torch

    return ["auto", "cpu", *(f"cuda:{index}" for index in range(torch.cuda.device_count()))]


def describe_setup(device: str, dtype: str, engine: str) -> str:
    """Where, at which precision and by what the generator will run, as the library resolves the choices."""
    from ..engine.stylizer import resolve_device, resolve_dtype, resolve_engine

    try:
        resolved = resolve_device(device)
        precision = resolve_dtype(dtype, resolved)
        engine = resolve_engine(engine, resolved, None, precision)
    except AnimevidError as exc:
        return f"Runs on: — ({exc})"
    return f"Runs on: **{resolved}**, {str(precision).removeprefix('torch.')}, {engine} engine"


def upload_path(upload: str | None, what: str) -> Path:
    if not upload:
        raise InputError(f"no {what} was given: upload one first")
    keep(upload)  # in use: the cleaning of old uploads leaves it
    return Path(upload)


class App:
    """The handlers and the running jobs' cancel flags (one per browser session)."""

    def __init__(self, options: UiOptions) -> None:
        self.options = options
        self._cancel: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    # -- photo -------------------------------------------------------------------------------------

    def inference(self, device: str, dtype: str, engine: str, max_side: float | None = None) -> InferenceOptions:
        return InferenceOptions(device=device, dtype=dtype, engine=engine, max_side=int(max_side) if max_side else None)

    def stylize_photo(self, photo: str | None, style: str, device: str, dtype: str, engine: str, max_side: float | None):
        source = upload_path(photo, "photo")
        if not is_image_path(source):
            raise InputError(f"{source.name} is not a photo ({', '.join(sorted(IMAGE_SUFFIXES))})")
        remove_older_than(self.options.keep_hours)
        destination = result_path(source, style, ".png")  # lossless, at the photo's full size
        result = stylize(source, destination, style=style, options=self.inference(device, dtype, engine, max_side), progress=False)
        return (str(source), str(destination)), str(destination), f"{result.summary()}; saved to {destination}"

    def all_styles(self, photo: str | None, device: str, dtype: str, engine: str):
        source = upload_path(photo, "photo")
        remove_older_than(self.options.keep_hours)
        sheet = contact_sheet(source, PreviewOptions(inference=self.inference(device, dtype, engine)))
        destination = result_path(source, "all-styles", ".png")
        write_image(destination, sheet)
        return str(destination)

    # -- video -------------------------------------------------------------------------------------

    def video_options(self, start: float | None, end: float | None, crf: float | None, flags: tuple[bool, ...]) -> VideoOptions:
        return VideoOptions(
            start=start if start else None, end=end if end else None, crf=int(crf) if crf is not None else None,
            **dict(zip(video_flags(), flags)),
        )  # fmt: skip

    def preview_video(
        self, video: str | None, style: str, start: float | None, end: float | None, device: str, dtype: str, engine: str
    ):  # fmt: skip
        source = upload_path(video, "video")
        remove_older_than(self.options.keep_hours)
        options = PreviewOptions(
            styles=(style,), frames=3, start=start or None, end=end or None, inference=self.inference(device, dtype, engine)
        )
        sheet = contact_sheet(source, options)
        destination = result_path(source, f"preview-{style}", ".png")
        write_image(destination, sheet)
        return str(destination)

    def stylize_video(
        self, request: gr.Request, video: str | None, style: str, start: float | None, end: float | None, device: str,
        dtype: str, engine: str, max_side: float | None, crf: float | None, *flags: bool,
    ):  # fmt: skip
        """A generator: the progress line every POLL_SECONDS while the job runs, then the result.

        ``request`` comes first: Gradio passes it only to parameters before ``*flags``."""
        source = upload_path(video, "video")
        video_options = self.video_options(start, end, crf, flags)
        inference = self.inference(device, dtype, engine, max_side)
        remove_older_than(self.options.keep_hours)
        destination = result_path(source, style, ".mp4")  # H.264 in MP4: plays in every browser
        cancel = self._new_cancel_flag(request)
        latest: list[tuple | None] = [None]  # the last progress update: the page needs no other
        outcome: dict[str, object] = {}
        hooks = JobHooks(on_progress=lambda *update: latest.__setitem__(0, update), should_cancel=cancel.is_set)

        def work() -> None:
            try:
                outcome["result"] = stylize(
                    source, destination, style=style, options=inference, video_options=video_options, progress=False, hooks=hooks
                )
            except BaseException as exc:  # raised again in the handler
                outcome["error"] = exc

        worker = threading.Thread(target=work, name="animevid-ui-job", daemon=True)
        worker.start()
        try:
            yield "starting…", None, None, ""
            while worker.is_alive():
                worker.join(POLL_SECONDS)
                if latest[0] is not None:
                    yield progress_line(*latest[0]), None, None, ""
        finally:
            if worker.is_alive():  # the page went away (or Gradio cancelled the event): stop the job
                cancel.set()
                worker.join()
            self._drop_cancel_flag(request, cancel)
        if "error" in outcome:
            raise outcome["error"]
        result = outcome["result"]
        yield f"done: {result.summary()}", str(destination), str(destination), str(destination)

    def cancel_video(self, request: gr.Request) -> str:
        with self._lock:
            flag = self._cancel.get(request.session_hash or "")
        if flag is None:
            return "no job of yours is running"
        flag.set()
        return "cancelling…"

    def _new_cancel_flag(self, request: gr.Request) -> threading.Event:
        flag = threading.Event()
        with self._lock:
            self._cancel[request.session_hash or ""] = flag
        return flag

    def _drop_cancel_flag(self, request: gr.Request, flag: threading.Event) -> None:
        with self._lock:
            if self._cancel.get(request.session_hash or "") is flag:
                del self._cancel[request.session_hash or ""]

    # -- styles ------------------------------------------------------------------------------------

    def fetch_style(self, name: str, progress: gr.Progress = gr.Progress()):
        known = style_store.KNOWN_STYLES.get(name)
        files = known.official.files if known is not None and known.official is not None else ()
        total = sum(remote.size or 0 for remote in files) or None
        received = [0]

        def on_bytes(count: int) -> None:
            received[0] += count
            progress((received[0], total) if total else None, desc=f"fetching {name}", unit="bytes")

        path = style_store.fetch_style(name, on_bytes=on_bytes)
        return f"installed {name!r} at {path}", *self.refreshed_styles()

    def add_style(self, name: str, upload: str | None, semantics: str):
        source = upload_path(upload, "weights file")
        path = style_store.add_style(name.strip(), source, semantics=None if semantics == "from the file" else semantics)
        return f"installed {name.strip()!r} at {path}", *self.refreshed_styles()

    def refreshed_styles(self):
        pick = gr.update(choices=style_choices())  # the styles picked stay as they are
        return styles_table(), pick, pick, gr.update(choices=fetchable_styles())


def fetchable_styles() -> list[str]:
    return [info.name for info in style_store.list_styles() if not info.installed and style_store.is_fetchable(info.name)]


def progress_line(done: int, total: int | None, rate: float, eta: float | None) -> str:
    """``frames 12/40 (30%) · 3.10 fps · ETA 0:00:09``: what the library's reporter says, in one line."""
    counted = f"frames {done}/{total} ({100 * done / total:.0f}%)" if total else f"frames {done}"
    parts = [counted, f"{rate:.2f} fps"]
    if eta is not None:
        parts.append(f"ETA {format_seconds(eta)}")
    return " · ".join(parts)


def photo_box(**settings) -> gr.Image:
    """A gr.Image whose upload reaches the library unopened, so that a damaged or wrong file gets the
    library's message (gr.Image opens it with PIL first). Set on the instance: a subclass of a Gradio
    component makes Gradio write a type stub beside this module."""
    box = gr.Image(**settings)
    opened = box.preprocess

    def preprocess(payload):
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return opened(payload)  # pasted as data: Gradio decodes it into a file

    box.preprocess = preprocess
    return box


def build(options: UiOptions | None = None) -> gr.Blocks:
    """The app's page (not started: :func:`animevid.ui.serve` launches it)."""
    app = App(options or UiOptions())
    choices = style_choices()
    first = choices[0] if choices else None
    queued = {"concurrency_limit": 1, "concurrency_id": DEVICE_QUEUE}
    with gr.Blocks(title="animevid", analytics_enabled=False) as page:
        gr.Markdown("# animevid\nPhotos and videos in anime style (AnimeGAN), on this machine: any size, any length, audio kept.")
        with gr.Row():
            device = gr.Dropdown(device_choices(), value="auto", label="Device", elem_id="device")
            dtype = gr.Dropdown(["auto", *DTYPES], value="auto", label="Precision", elem_id="precision")
            engine = gr.Dropdown(list(ENGINES), value="auto", label="Engine", elem_id="engine")
            setup = gr.Markdown(describe_setup("auto", "auto", "auto"))
        for control in (device, dtype, engine):
            control.change(describe_setup, [device, dtype, engine], setup, queue=False)

        with gr.Tab("Photo"):
            with gr.Row():
                photo = photo_box(sources=["upload", "clipboard", "webcam"], type="filepath", label="Photo", elem_id="photo")
                with gr.Column():
                    photo_style = gr.Dropdown(choices, value=first, label="Style", elem_id="photo-style")
                    photo_max_side = gr.Number(0, label="Run at most this many pixels on a side (0: full size)", precision=0, minimum=0)
                    photo_button = gr.Button("Stylize", variant="primary", elem_id="stylize-photo")
                    sheet_button = gr.Button("All styles", elem_id="all-styles")
            before_after = gr.ImageSlider(type="filepath", label="Before / after", elem_id="before-after")
            photo_file = gr.File(label="Download (full resolution PNG)", elem_id="photo-download")
            photo_info = gr.Textbox(label="Result", interactive=False)
            sheet = gr.Image(type="filepath", label="Every installed style")
            photo_button.click(
                library_errors(app.stylize_photo), [photo, photo_style, device, dtype, engine, photo_max_side],
                [before_after, photo_file, photo_info], api_name="stylize_photo", **queued,
            )  # fmt: skip
            sheet_button.click(library_errors(app.all_styles), [photo, device, dtype, engine], sheet, api_name="all_styles", **queued)

        with gr.Tab("Video"):
            with gr.Row():
                video = gr.Video(sources=["upload"], label="Video", elem_id="video")
                with gr.Column():
                    video_style = gr.Dropdown(choices, value=first, label="Style", elem_id="video-style")
                    with gr.Row():
                        start = gr.Number(0, label="Start (s)", minimum=0)
                        end = gr.Number(0, label="End (s; 0: to the end)", minimum=0)
                    video_max_side = gr.Number(0, label="Run at most this many pixels on a side (0: full size)", precision=0, minimum=0)
                    crf = gr.Slider(0, 51, value=DEFAULT_CRF, step=1, label="Quality (CRF: lower is better and larger)", elem_id="crf")
                    flags = [gr.Checkbox(False, label=name.replace("_", " ")) for name in video_flags()]
                    with gr.Row():
                        preview_button = gr.Button("Preview 3 frames", elem_id="preview-video")
                        video_button = gr.Button("Stylize video", variant="primary", elem_id="stylize-video")
                        cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel-video")
            status = gr.Textbox(label="Progress", interactive=False, elem_id="video-progress")
            preview = gr.Image(type="filepath", label="Preview")
            result_video = gr.Video(label="Result", elem_id="video-result")
            result_file = gr.File(label="Download", elem_id="video-download")
            saved = gr.Textbox(label="Saved to", interactive=False, elem_id="video-saved")
            preview_button.click(
                library_errors(app.preview_video), [video, video_style, start, end, device, dtype, engine], preview,
                api_name="preview_video", **queued,
            )  # fmt: skip
            video_button.click(
                library_errors(app.stylize_video), [video, video_style, start, end, device, dtype, engine, video_max_side, crf, *flags],
                [status, result_video, result_file, saved], api_name="stylize_video", show_progress="minimal", **queued,
            )  # fmt: skip
            cancel_button.click(app.cancel_video, None, status, api_name="cancel_video", concurrency_limit=None)

        with gr.Tab("Styles"):
            table = gr.Dataframe(
                styles_table(), headers=["name", "network", "artist", "film", "source", "installed"], interactive=False,
                label="Styles",
            )  # fmt: skip
            with gr.Row():
                fetch_name = gr.Dropdown(fetchable_styles(), label="Official style")
                fetch_button = gr.Button("Fetch")
            with gr.Row():
                add_name = gr.Textbox(label="Name")
                add_file = gr.File(label="Weights file (.safetensors, .pt/.pth, TF checkpoint .index/.data)", type="filepath")
                add_semantics = gr.Dropdown(["from the file", "tf1", "pytorch"], value="from the file", label="v2 semantics")
                add_button = gr.Button("Add")
            styles_message = gr.Textbox(label="Result", interactive=False)
            refreshed = [styles_message, table, photo_style, video_style, fetch_name]
            fetch_button.click(library_errors(app.fetch_style), fetch_name, refreshed, api_name="fetch_style")
            add_button.click(library_errors(app.add_style), [add_name, add_file, add_semantics], refreshed, api_name="add_style")
    return page
