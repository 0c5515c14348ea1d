"""Benchmarks for animevid: the AnimeGAN paper's Table 1, the CPU engines, pipeline throughput and its
stages, chunked encoding, worker processes, the generator's CUDA settings, training and datasets, and the temporal (deflicker) stage.

Run ``python -m benchmarks --help``. Each part prints markdown tables; the run writes one JSON file
(with the machine it ran on) to ``benchmarks/results/`` or ``--out``.
"""

PARTS = ("table1", "engines", "v2graph", "pipeline", "encoders", "workers", "stages", "cuda", "train", "datasets", "temporal")
