"""Signals during training: recorded while steps run, raised at once otherwise; data workers ignore them."""

from __future__ import annotations

import os
import signal

import pytest
from torch.utils.data import DataLoader, Dataset

from animevid.train.interruption import StopSignals, ignore_stop_signals


def _send(signum: signal.Signals) -> None:
    os.kill(os.getpid(), signum)  # the handler runs in this (the main) thread before kill returns to the test


def test_while_steps_run_the_first_signal_is_recorded_and_a_second_raises():
    with StopSignals(announce=False) as signals, signals.deferred():
        _send(signal.SIGTERM)
        assert signals.received == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            _send(signal.SIGINT)
    assert signals.received == "SIGTERM"


def test_outside_the_steps_a_signal_raises_at_once():
    with StopSignals(announce=False) as signals:
        with pytest.raises(KeyboardInterrupt):
            _send(signal.SIGTERM)
        assert signals.received is None


def test_the_previous_handlers_are_restored():
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    with StopSignals(announce=False):
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_the_first_signal_is_announced(caplog):
    with StopSignals(announce=True) as signals, signals.deferred():
        _send(signal.SIGINT)
    assert "SIGINT: stopping after this step to write a checkpoint" in caplog.text


class _WorkerPids(Dataset):
    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int) -> int:
        return os.getpid()


def test_data_workers_survive_the_signals_the_main_process_handles():
    loader = DataLoader(_WorkerPids(), batch_size=1, num_workers=1, prefetch_factor=1, worker_init_fn=ignore_stop_signals)
    batches = iter(loader)
    worker = int(next(batches))
    assert worker != os.getpid()
    os.kill(worker, signal.SIGINT)  # Ctrl-C reaches the whole process group
    os.kill(worker, signal.SIGTERM)  # torchrun signals each rank's group
    assert [int(batch) for batch in batches] == [worker] * 11
