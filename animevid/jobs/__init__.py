"""Jobs: many files, or one video spread over processes or a cluster.

* :mod:`.folder` — the plan of a job before any work, photos and folders in this process;
* :mod:`.parallel` — one video in segments across worker processes and devices, resumable;
* :mod:`.ray` — photos, videos and segments as Ray tasks on a cluster.

The top layer under the API: nothing in :mod:`animevid.engine` or :mod:`animevid.video` imports it.
"""
