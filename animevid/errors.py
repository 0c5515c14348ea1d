"""Exceptions that the CLI turns into a one-line message and an exit code.

Library code raises these for anything a user can cause (bad paths, bad files, missing weights);
everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AnimevidError(Exception):
    """Base class: a problem with the user's input or environment, reported in one line."""

    exit_code = 1


class UsageError(AnimevidError):
    """Arguments that contradict each other or the input (exit code 2, like click's own)."""

    exit_code = 2


class InputError(AnimevidError):
    """An input file or folder is missing, unreadable or not what it claims to be."""


class OutputError(AnimevidError):
    """The destination cannot be written, or exists and overwriting was not asked for."""


class WeightsError(AnimevidError):
    """A weights file is missing, malformed, or does not fit the architecture."""


class CheckpointError(WeightsError):
    """A TensorFlow checkpoint cannot be read or mapped onto the generator."""


class StyleNotFoundError(WeightsError):
    """A style name is neither installed nor fetchable."""


class DownloadError(AnimevidError):
    """Fetching weights failed (network, HTTP status, checksum)."""


class Interrupted(AnimevidError):
    """The user stopped the job (Ctrl-C, SIGTERM)."""

    exit_code = 130


class Cancelled(Interrupted):
    """The job was cancelled through :class:`animevid.progress.JobHooks` (e.g. the web app's Cancel button)."""


class TrainingDiverged(AnimevidError):
    """Training losses became NaN or infinite; the last good checkpoint is kept."""


class DeviceError(AnimevidError):
    """The compute device cannot run the job as configured (e.g. out of memory at this batch size)."""


class ClusterError(AnimevidError):
    """A Ray cluster cannot finish the job: it stopped answering, or none of its nodes can run a task."""
