"""The small core every other part stands on: the config (``config``, ``table``,
``binary_package``), typed ``errors``, the one ``runner`` for external commands, the
``workdir``'s paths, JSON ``ledger``s (``versions``, ``check_records``), build records,
``render`` of debian/ templates, ``target`` (a release on a distribution), ``images``
(mmdebstrap tarballs), ``files``, ``progress`` and ``layout``. It imports nothing above it.
"""
