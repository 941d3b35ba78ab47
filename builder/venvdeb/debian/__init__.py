"""The Debian side: the wheel repository as a package (``requirements_package``), a
project's ``source_package``, the ``builders`` that make binary packages (local or
sbuild) and venvdeb's own package (``tool_package``, stdeb)."""
