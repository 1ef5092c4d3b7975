"""The package as users install it: ``uv build``, then the wheel (not editable) in a clean venv.

Run by ``make test-package`` (and .ci/run), not by ``make test``: it builds and installs a venv
with Airflow, about a minute even with uv's cache. The new venv resolves against this venv's
versions (``uv pip freeze`` as constraints), so it needs nothing that is not already cached.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from airflow_provider_msads import __version__

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 600


def _uv() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("`uv` is needed to build the package: `pip install uv` (make venv installs it).", pytrace=False)
    return found


def _run(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=cwd, check=False)
    assert result.returncode == 0, (
        f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


def _json_tail(text: str) -> list[dict[str, object]]:
    """The JSON list an ``airflow ... -o json`` command prints (after any warning lines)."""
    return list(json.loads(text[text.index("[") :]))


def test_wheel_installs_into_a_clean_venv_and_airflow_finds_the_provider(tmp_path: Path) -> None:
    uv = _uv()
    dist = tmp_path / "dist"
    _run([uv, "build", "--out-dir", str(dist), str(ROOT)])
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    assert [w.name for w in wheels] == [f"airflow_provider_msads-{__version__}-py3-none-any.whl"]
    assert [s.name for s in sdists] == [f"airflow_provider_msads-{__version__}.tar.gz"]

    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        entry_points = wheel.read(f"airflow_provider_msads-{__version__}.dist-info/entry_points.txt").decode()
    assert {"airflow_provider_msads/py.typed", "airflow_provider_msads/get_provider_info.py"} <= names
    assert not any(name.startswith(("tests/", "scripts/")) for name in names)
    assert "apache_airflow_provider" in entry_points and "msads-authorize" in entry_points
    with tarfile.open(sdists[0]) as sdist:
        members = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "airflow_provider_msads/__init__.py"} <= members

    # A clean venv with Airflow and the wheel; versions pinned to this venv's (all in uv's cache).
    frozen = _run([uv, "pip", "freeze", "--python", sys.executable])
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(
        "\n".join(
            line for line in frozen.splitlines() if "==" in line and not line.startswith("airflow-provider-msads")
        )
    )
    venv = tmp_path / "venv"
    _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
    python = venv / "bin" / "python"
    from airflow import __version__ as airflow_version

    _run(
        [uv, "pip", "install", "--quiet", "--python", str(python), "-c", str(constraints), str(wheels[0]),
         f"apache-airflow=={airflow_version}"]
    )  # fmt: skip

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MSADS_", "_AIRFLOW", "VIRTUAL_ENV"))}
    env.update({"AIRFLOW_HOME": str(tmp_path / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    # Imported from the venv, not from the checkout (cwd is elsewhere, no editable install).
    where = _run([str(python), "-c", "import airflow_provider_msads as m; print(m.__file__)"], env=env, cwd=tmp_path)
    assert where.strip().startswith(str(venv)), where

    providers = _json_tail(
        _run([str(venv / "bin" / "airflow"), "providers", "list", "-o", "json"], env=env, cwd=tmp_path)
    )
    ours = [p for p in providers if p.get("package_name") == "airflow-provider-msads"]
    assert ours and ours[0]["version"] == __version__, providers

    hooks = _json_tail(_run([str(venv / "bin" / "airflow"), "providers", "hooks", "-o", "json"], env=env, cwd=tmp_path))
    msads = [h for h in hooks if h.get("connection_type") == "msads"]
    assert msads and msads[0]["package_name"] == "airflow-provider-msads", hooks
    assert msads[0]["class"] == "airflow_provider_msads.hooks.msads.MicrosoftAdsHook"

    usage = _run([str(venv / "bin" / "msads-authorize"), "--help"], env=env, cwd=tmp_path)
    assert "usage: msads-authorize" in usage and "--save" in usage
