"""Weights in: animevid's own file format and the foreign ones, official styles, downloads.

* :mod:`.formats` — :class:`~.formats.GeneratorWeights`, reading any supported file, writing ``.safetensors``;
* :mod:`.tf_checkpoint` — the authors' TensorFlow checkpoints, read without TensorFlow;
* :mod:`.convert` — the foreign tensor names (TF scopes, bryandlee's port) onto ours;
* :mod:`.download` — resumable, verified HTTP downloads;
* :mod:`.styles` — named styles: the official ones, installing, fetching, listing.

Below the engine: nothing here runs a generator.
"""
