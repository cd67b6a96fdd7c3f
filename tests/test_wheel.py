"""The wheel: what it contains, and that it installs and runs in a fresh virtualenv.

How it is kept fast and (after `./install.sh --dev`) offline:

- The wheel is built from a copy of the source tree (so that the build's `build/` and
  `*.egg-info` never land in the checkout, where another run may be building too) with
  `pip wheel --no-deps --no-build-isolation`: the backend (setuptools, a dev dependency)
  comes from the project's venv instead of a download.
- The fresh venv is made without pip, and the project venv's pip installs the wheel into it
  (`pip --python`), with `--no-deps`. The dependencies are made importable by a `.pth` file
  naming the project venv's site-packages. Paths named in a `.pth` file go *after* the venv's
  own site-packages, and `.pth` files inside them are not run, so the project's editable
  install (a finder hooked in by a `.pth`) stays out: `lucky_cli`, `lucky_server` and
  `lucky_console` can only come from the wheel, which the test checks.
- That the dependencies the wheel declares are the ones installed is checked with `pip check`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
TOP_LEVEL = {"lucky_cli", "lucky_server", "lucky_console"}
# Folders of the checkout, and the import names they are installed as.
PACKAGE_ROOTS = {"lucky_cli": "lucky_cli", "server": "lucky_server", "console": "lucky_console"}
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
    ".mypy_cache", "node_modules", "data",
)


def _run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUCKY_", "PYTHON", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = set()
    for folder, name in PACKAGE_ROOTS.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            relative = init.parent.relative_to(ROOT / folder)
            if "__pycache__" in relative.parts:
                continue
            found.add(".".join((name, *relative.parts)))
    missing = found - listed
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"
    # And nothing is listed that has no folder (templates/ is data, mapped explicitly).
    package_dir = PYPROJECT["tool"]["setuptools"]["package-dir"]
    for name in listed - found:
        assert name in package_dir, f"{name} is listed in pyproject.toml but has no package folder"
        assert (ROOT / package_dir[name]).is_dir(), name


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    out = work / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", out, source, env=_clean_env())
    wheels = sorted(out.glob("lucky-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_holds_only_lucky_packages(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    dist_info = {t for t in top if t.endswith(".dist-info")}
    assert len(dist_info) == 1 and dist_info.pop().startswith("lucky-")
    assert top - {t for t in top if t.endswith(".dist-info")} == TOP_LEVEL

    # Every migration ships, or `lucky init` from the wheel would build half a schema.
    migrations = sorted(p.name for p in (ROOT / "server/storage/schema").glob("v*.py"))
    assert migrations
    for name in migrations:
        assert f"lucky_server/storage/schema/{name}" in names
    assert "lucky_server/storage/schema/__init__.py" in names
    for folder, package in PACKAGE_ROOTS.items():
        for module in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in module.parts:
                assert f"{package}/{module.relative_to(ROOT / folder).as_posix()}" in names, module
    assert not any(n.startswith("tests/") or "/tests/" in n for n in names)
    # The web chat page and its script and styles (package data, not Python).
    for shipped in ("chat/index.html", "static/chat/chat.js", "static/chat/chat.css"):
        assert f"lucky_console/templates/{shipped}" in names, shipped
    # The systemd unit `lucky service install` writes (systemd/ at the top of the checkout).
    assert "lucky_cli/systemd/lucky@.service" in names

    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert re.search(r"^lucky = lucky_cli\.main:run$", text, re.M), text


def test_the_wheel_installs_and_runs_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel,
         env=_clean_env())
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    (Path(site) / "lucky_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = _clean_env()
    # cwd is outside the checkout: `python -c` puts the cwd first on sys.path.
    where = _run(python, "-c", "import lucky_cli, lucky_server, lucky_console; "
                 "print(lucky_cli.__file__, lucky_server.__file__, lucky_console.__file__)",
                 env=env, cwd=tmp_path)
    for path in where.stdout.split():
        assert Path(path).is_relative_to(venv), f"{path} does not come from the wheel"
    # The server finds the chat page's files in the installed package, not in a checkout.
    served = _run(python, "-c", "from lucky_server.web.static import PackagedFiles; files = PackagedFiles(); "
                  "print(*(len(files.get(p).body) for p in ('chat/index.html', 'static/chat/chat.js')))",
                  env=env, cwd=tmp_path)
    assert all(int(size) > 0 for size in served.stdout.split()), served.stdout

    checked = subprocess.run([sys.executable, "-m", "pip", "--python", python, "check"], env=env,
                             capture_output=True, text=True, timeout=120)
    problems = [line for line in checked.stdout.splitlines() if line.startswith("lucky ")]
    assert not problems, checked.stdout

    lucky = venv / "bin" / "lucky"
    version = _run(lucky, "--version", env=env, cwd=tmp_path)
    assert version.stdout.strip() == "lucky " + PYPROJECT["project"]["version"]

    data_dir = tmp_path / "data"
    init = _run(lucky, "init", "--data-dir", data_dir, "--non-interactive", env=env, cwd=tmp_path, timeout=120)
    assert "created admin 'admin'" in init.stdout
    assert (data_dir / "lucky.toml").is_file()
    migrated = _run(lucky, "migrate", "--data-dir", data_dir, env=env, cwd=tmp_path)
    assert "nothing to apply" in migrated.stdout
    # The unit template is read from the installed package, and names the installed `lucky`.
    unit = _run(lucky, "service", "install", "--data-dir", data_dir, "--print", env=env, cwd=tmp_path)
    assert f"ExecStart={lucky} serve --data-dir {data_dir}" in unit.stdout
