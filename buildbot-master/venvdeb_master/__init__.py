"""Small modules that turn venvdeb's build plan into buildbot objects."""
