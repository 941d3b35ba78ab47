"""Quality gates: ``lintian``, clean ``chroot``s with ``candidates`` as a local apt
repository, the ``install_test`` and the ``gate`` that runs both and records them."""
