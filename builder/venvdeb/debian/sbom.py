"""The SBOM a venv package ships: CycloneDX 1.6 JSON, made by the CycloneDX Python
library from the items of the venv (venvdeb.python.inventory), pure.

Installed as ``/usr/share/doc/<venv package>/sbom.cdx.json`` (not compressed),
where scanners that read the dpkg database and /usr/share/doc look. Reproducible:
the serial number is derived from the inputs' digest, the version and
SOURCE_DATE_EPOCH, the timestamp is SOURCE_DATE_EPOCH, and every list is sorted.
"""
from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from venvdeb.python.inventory import Item

#: the file in the source package (debian/...) that the rules install
SOURCE_FILE = "venvdeb/sbom.cdx.json"

#: a namespace for the serial numbers (uuid5 of it and the inputs)
_SERIALS = uuid.UUID("8f1c6f3e-6a43-5d0e-9a52-7a9d1f0b5c21")
#: what this document's form is: in the source package's digest, so a change of
#: form rebuilds (like a change of template)
FORM = "cyclonedx-1.6 venvdeb-sbom 1"


def path(venv_package: str) -> str:
    """Where the package ships it."""
    return f"/usr/share/doc/{venv_package}/sbom.cdx.json"


@dataclass(frozen=True)
class Origin:
    """Where the venv package and its wheels come from (Debian packages)."""

    namespace: str            # the repository's origin, lower-case (pkg:deb/<namespace>/...)
    distro: str               # e.g. debian-12
    architecture: str
    venv_package: str
    version: str              # the source package's full version
    source: str               # the Debian source package
    reqdeb_package: str
    reqdeb_version: str
    wheels_root: str          # /usr/share/venvdeb/wheels/<release>
    site_packages: str        # /opt/venvs/<x>/lib/python3.X/site-packages
    orig_name: str            # <source>_<upstream>.orig.tar.gz


def _deb(o: Origin, name: str, version: str, arch: str) -> PackageURL:
    return PackageURL("deb", o.namespace, name, version,
                      qualifiers={"arch": arch, "distro": o.distro})


def _licenses(item: Item) -> list[LicenseExpression | DisjunctiveLicense]:
    if not item.license:
        return []
    if item.license_source == "classifier":
        return [DisjunctiveLicense(name=item.license)]
    made = LicenseFactory().make_from_string(item.license)
    return [made]


def _component(item: Item, o: Origin, *, project: bool) -> Component:
    purl = PackageURL("pypi", None, item.name, item.version)
    digest = HashType(alg=HashAlgorithm.SHA_256, content=item.sha256)
    if project:
        came_from = _deb(o, o.source, o.version, "source")
        where = f"file:///usr/src/{o.orig_name}"  # named as in the source package
        props = [Property(name="venvdeb:debian-source", value=came_from.to_string()),
                 Property(name="venvdeb:file", value=o.orig_name)]
        refs = [ExternalReference(type=ExternalReferenceType.SOURCE_DISTRIBUTION,
                                  url=XsUri(where), hashes=[digest])]
    else:
        came_from = _deb(o, o.reqdeb_package, o.reqdeb_version, "all")
        props = [Property(name="venvdeb:requirements-package", value=came_from.to_string()),
                 Property(name="venvdeb:file", value=item.file)]
        refs = [ExternalReference(type=ExternalReferenceType.DISTRIBUTION,
                                  url=XsUri(f"file://{o.wheels_root}/files/{item.file}"),
                                  hashes=[digest])]
    props.append(Property(name="venvdeb:license-source", value=item.license_source or "none"))
    refs += [ExternalReference(
        type=ExternalReferenceType.BOM,
        url=XsUri(f"file://{o.site_packages}/{item.dist_info}/{sbom}"),
        comment="an SBOM the distribution carries itself (PEP 770)") for sbom in item.sboms]
    return Component(name=item.name, version=item.version, type=ComponentType.LIBRARY,
                     bom_ref=purl.to_string(), purl=purl, hashes=[digest],
                     licenses=_licenses(item), external_references=refs, properties=props)


def document(project: Item, wheels: Iterable[Item], o: Origin, *, digest: str,
             epoch: int) -> str:
    """The SBOM's JSON text (pure: the same arguments give the same bytes)."""
    root_purl = _deb(o, o.venv_package, o.version, o.architecture)
    root = Component(name=o.venv_package, version=o.version, type=ComponentType.APPLICATION,
                     bom_ref=root_purl.to_string(), purl=root_purl,
                     description=f"the virtualenv {o.site_packages.split('/lib/', 1)[0]}")
    components = [_component(project, o, project=True),
                  *(_component(w, o, project=False) for w in wheels)]
    metadata = BomMetaData(
        component=root, tools=ToolRepository(),
        timestamp=datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC),
        properties=[Property(name="venvdeb:inputs-digest", value=digest)])
    serial = uuid.uuid5(_SERIALS, f"{digest}\0{o.version}\0{epoch}")
    bom = Bom(components=components, metadata=metadata, serial_number=serial)
    bom.register_dependency(root, components)
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"
