"""``venvdeb upload``: a project's last build, checked, as one upload for the
publisher (venvdeb.archive.upload): its .changes and .dsc with every file they
list, the release's requirements package with it (staging holds what the
project's build used), and the .debs' lintian and install-test results. A
worker runs it; the publisher's ``venvdeb accept`` verifies and publishes it."""
from __future__ import annotations

from pathlib import Path

from venvdeb.archive import upload
from venvdeb.core.build_record import project_record, reqdeb_record
from venvdeb.core.config import Config
from venvdeb.core.outcome import Outcome
from venvdeb.core.target import Target
from venvdeb.core.workdir import Workdir


def run_upload(config: Config, work: Workdir, t: Target, name: str,
               dest: Path | None = None) -> Outcome:
    dest = dest or work.upload(t.release.name, t.distribution.name, name)
    made = upload.make(dest, (project_record(work, t, name), reqdeb_record(work, t)),
                       work.checks)
    sources = ", ".join(f"{s} {v}" for s, v in made.sources)
    return Outcome("upload", name, f"upload: {sources}: {len(made.files)} files, checked, "
                                   f"in {dest}")
