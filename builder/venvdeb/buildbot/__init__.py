"""The buildbot master as data (``plan``) and the service around it (``service``)."""
