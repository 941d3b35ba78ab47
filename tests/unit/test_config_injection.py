"""Crafted pipeline.toml values that would reach a shell, make, sudoers, a unit
or a control file: each is refused when the config loads, with one line naming
the file, the key and the value, before anything is built."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from venvdeb import cli
from venvdeb.core import config, render
from venvdeb.debian import source_package

BUNDLED = (ROOT / "pipeline.toml").read_text().replace(
    'requirements_dir = "requirements-repo', f'requirements_dir = "{ROOT}/requirements-repo')

# (what the bundled config says, what an attacker makes of it, the key the error names)
ATTACKS = [
    ('{ path = "/var/lib/keystone", owner = "keystone"',
     '{ path = "/var/lib/*", owner = "keystone"', "directories[1].path"),
    ('{ path = "/etc/keystone", owner = "root", group = "keystone"',
     '{ path = "/etc/keystone", owner = "root", group = "keystone$(id>/tmp/x)"',
     "directories[0].group"),
    ('arguments = ["--config-file=/etc/cloudkitty/cloudkitty.conf"]',
     'arguments = ["--config-file=/etc/cloudkitty/cloudkitty.conf\\nExecStartPre=/bin/id"]',
     "units[0].arguments"),
    ('source = "etc/logging.conf.sample"', 'source = "$(shell id>/tmp/x)"',
     "config_files[1].source"),
    ('source = "etc/logging.conf.sample"', 'source = "/etc/shadow"', "config_files[1].source"),
    ('source = "etc/logging.conf.sample"', 'source = "../../../etc/shadow"',
     "config_files[1].source"),
    ('generate = "config-generator/keystone.conf"', 'generate = "x;id"',
     "config_files[0].generate"),
    ('user = "keystone"', 'user = "keystone\\n"', "projects.keystone.user"),
    ('[[projects.keystone.packages]]\nname = "keystone"\n',
     '[[projects.keystone.packages]]\nname = "keystone\\nEssential: yes"\n', "packages[0].name"),
    ('description = "OpenStack identity service"',
     'description = "identity\\nPre-Depends: evil"', "packages[0].description"),
    ('depends = ["cloudkitty-common"]\nwsgi', 'depends = ["cloudkitty-common, evil"]\nwsgi',
     "packages[2].depends"),
    ('depends = ["cloudkitty-common"]\nwsgi', 'depends = ["keystone"]\nwsgi',
     "projects.cloudkitty.packages"),
    ('{ command = "nova-rootwrap", arguments = ["/etc/nova/rootwrap.conf", "*"] }',
     '{ command = "nova-rootwrap", arguments = ["*"] }', "sudoers[0].arguments"),
    ('{ command = "nova-rootwrap", arguments = ["/etc/nova/rootwrap.conf", "*"] }',
     '{ command = "nova-rootwrap", arguments = ["/tmp/evil.conf", "*"] }',
     "projects.nova.packages"),
    ('{ command = "nova-rootwrap", arguments = ["/etc/nova/rootwrap.conf", "*"] }',
     '{ command = "nova-rootwrap", arguments = ["/etc/nova/rootwrap.conf, ALL"] }',
     "sudoers[0].arguments"),
    ('{ path = "/etc/nova", owner = "root"', '{ path = "/etc/nova", owner = "nova"',
     "directories[0].owner"),
    ('{ path = "/etc/nova/nova.conf", generate = "etc/nova/nova-config-generator.conf", '
     'owner = "root"', '{ path = "/etc/nova/nova.conf", generate = '
     '"etc/nova/nova-config-generator.conf", owner = "nova"', "config_files[0].owner"),
    ('group = "cloudkitty", mode = "0640" },\n    { path = "/etc/cloudkitty/api_paste.ini"',
     'group = "cloudkitty", mode = "0660" },\n    { path = "/etc/cloudkitty/api_paste.ini"',
     "config_files[0].mode"),
    ('pypi_name = "keystone"', 'pypi_name = "keystone --index-url=http://evil"',
     "projects.keystone.pypi_name"),
    ('extras = ["ldap"]', 'extras = ["ldap] @ file:///etc/shadow"]', "projects.keystone.extras"),
    ('requirements = ["libvirt-python", "PyMySQL"]',
     'requirements = ["libvirt-python @ file:///etc/x", "PyMySQL"]',
     "projects.nova.requirements"),
    ('user = "keystone"\n', 'user = "keystone"\nhome = "/var/lib/keystone;id"\n',
     "projects.keystone.home"),
    ('{ name = "nova-conductor", command', '{ name = "nova-conductor", user = "nova;id", command',
     "units[0].user"),
    ('series = "gazpacho"', 'series = "gazpacho\\nSuite: x"', 'releases."2026.1".series'),
    ('origin = "venvdeb"', 'origin = "venvdeb\\nSigned-By: x"', "repository.origin"),
    ('index_url = "https://pypi.org/simple"', 'index_url = "https://pypi.org/simple --trusted-host x"',
     "repository.index_url"),
    ('maintainer = "venvdeb packagers <packagers@venvdeb.invalid>"',
     'maintainer = "x <a@b.c>\\nUploaders: y <c@d.e>"', "repository.maintainer"),
    ('mirror = "http://deb.debian.org/debian"', 'mirror = "http://deb.debian.org/debian main\\n"',
     "distributions.bookworm.mirror"),
    ('versions = { "2026.1" = "29.0.2"', 'versions = { "2026.1" = "29.0.2\\n"',
     'versions."2026.1"'),
    ('pypi_name = "keystone"', 'pypi_name = "keystone"\nupstream = { git = "--upload-pack=id", '
     'refs = {} }', "upstream.git"),
    ('pypi_name = "keystone"', 'pypi_name = "keystone"\nupstream = { git = '
     '"https://opendev.org/openstack/keystone", refs = { "2026.1" = "-x" } }',
     'refs."2026.1"'),
    ('smoke = { "keystone-status" = "" }', 'smoke = { "keystone-status" = "--x=$(id)" }',
     "packages[0].smoke"),
    ('wsgi_scripts = [{ path = "/usr/lib/cgi-bin/keystone"',
     'wsgi_scripts = [{ path = "/usr/lib/cgi-bin/../../../etc/cron.d/x"', "wsgi_scripts[0].path"),
]


@pytest.mark.parametrize(("good", "bad", "key"), ATTACKS, ids=[a[2] + ":" + a[1][-24:]
                                                                   for a in ATTACKS])
def test_crafted_value_is_refused_naming_file_key_and_value(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], good: str, bad: str, key: str) -> None:
    assert good in BUNDLED, f"the bundled config changed: {good!r}"
    path = tmp_path / "pipeline.toml"
    path.write_text(BUNDLED.replace(good, bad, 1))
    work = tmp_path / "work"
    code = cli.main(["--config", str(path), "--workdir", str(work), "lock", "--release", "2026.1"])
    err = capsys.readouterr().err
    assert code == 2
    first = err.splitlines()[0]
    assert first.startswith(f"venvdeb: error: {path}: ") and key in first, err
    assert "Traceback" not in err
    assert not work.exists(), "nothing may be written before the config is valid"


def test_the_bundled_config_passes() -> None:
    path = ROOT / "pipeline.toml"
    cfg = config.load(path)
    nova = cfg.projects["nova"]
    common = next(p for p in nova.packages if p.name == "nova-common")
    assert [(r.command, r.arguments) for r in common.sudoers] == [
        ("nova-rootwrap", ("/etc/nova/rootwrap.conf", "*")),
        ("nova-rootwrap-daemon", ("/etc/nova/rootwrap.conf",))]
    assert all(d.owner == "root" for p in cfg.projects.values() for b in p.packages
               for d in b.directories if d.path.startswith("/etc/"))


def test_quoting_filters() -> None:
    assert render.shell_word("/var/lib/nova") == "/var/lib/nova"
    assert render.shell_word("a$(id)") == "'a$(id)'"
    assert render.systemd_word("--config-file=/etc/nova/nova.conf") == \
        "--config-file=/etc/nova/nova.conf"
    assert render.systemd_word("x\nExecStartPre=/bin/id") == '"x\\nExecStartPre=/bin/id"'
    assert render.systemd_word("50%$HOME") == '"50%%$$HOME"'
    assert render.systemd_text("a\nb%") == "a b%%"


def test_rendered_maintainer_scripts_parse_and_sudoers_pass_visudo(tmp_path: Path) -> None:
    """Every maintainer script of every bundled project parses with sh -n, every
    sudoers file passes visudo -cf, every unit systemd-analyze verify's syntax."""
    from tests.unit.test_venv_packaging import _plan  # the bundled config, planned
    cfg = config.load(ROOT / "pipeline.toml")
    seen = {"script": 0, "sudoers": 0}
    for name in ("keystone", "cloudkitty", "nova"):
        (tmp_path / name).mkdir()
        files = dict(_plan(cfg, tmp_path / name, name).files)
        for rel, text in files.items():
            path = tmp_path / "files" / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if rel.rsplit(".", 1)[-1] in ("postinst", "postrm", "preinst", "prerm"):
                checked = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
                assert checked.returncode == 0, (rel, checked.stderr)
                seen["script"] += 1
            if rel.startswith("debian/venvdeb/sudoers/"):
                path.chmod(0o440)
                checked = subprocess.run(["visudo", "-cf", str(path)], capture_output=True,
                                         text=True)
                assert checked.returncode == 0, (rel, checked.stdout, checked.stderr)
                seen["sudoers"] += 1
    assert seen["script"] >= 6 and seen["sudoers"] == 1, seen


def test_source_outside_the_upstream_tree_is_refused(tmp_path: Path) -> None:
    """A config file's source that is a link out of the upstream tree (a hostile
    sdist) is refused when the source package is made."""
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "ok.conf").write_text("[DEFAULT]\n")
    (tree / "etc" / "evil.conf").symlink_to("/etc/shadow")
    (tree / "etc" / "up").symlink_to("..")
    source_package.check_tree_paths(tree, (("keystone", "/etc/keystone/ok.conf",
                                            "etc/ok.conf"),))
    for rel in ("etc/evil.conf", "etc/up/etc/ok.conf", "etc/missing.conf"):
        with pytest.raises(source_package.ConfigError, match=rel.replace(".", r"\.")):
            source_package.check_tree_paths(tree, (("keystone", "/etc/keystone/x.conf", rel),))
