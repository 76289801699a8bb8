"""The built wheel works on its own: installed (not editable) in a fresh virtual environment, its
`kevolve check` judges an example op on CPU, its prompt templates render and `kevolve demo` finds
the demo repo it ships, with the checkout out of reach of its imports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("pyproject.toml", "README.md", "bot", "harness", "runners", "templates", "examples")
DEMO = ROOT / "examples" / "demo"
GOOD_SOFTMAX = ROOT / "tests" / "corpus" / "softmax" / "good_online.py"

RENDER = """
import json, sys
from pathlib import Path
import kevolve.harness
from kevolve.harness.search.campaign import TEMPLATES
from kevolve.harness.search.prompt import PromptBuilder
from kevolve.harness.search.proposal import ProposalContext
from kevolve.harness.spec.load import load_problems

problem = next(p for p in load_problems(Path(sys.argv[1])) if p.name == "softmax")
context = ProposalContext(problem, problem.kernel_path.read_text(), (), None)
messages = PromptBuilder(TEMPLATES).messages(context)
print(json.dumps({"package": kevolve.harness.__file__, "templates": str(TEMPLATES),
                  "roles": [m["role"] for m in messages], "user": messages[1]["content"]}))
"""


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _wheel(tmp: Path) -> Path:
    """The wheel, built from a copy of what the distribution ships (the checkout stays clean)."""
    source = tmp / "source"
    source.mkdir()
    for name in SHIPPED:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    done = _run([*pip, "-w", str(tmp / "dist"), str(source)], tmp, dict(os.environ))
    assert done.returncode == 0, done.stderr
    return next((tmp / "dist").glob("kevolve-*.whl"))


def _venv(tmp: Path, wheel: Path) -> Path:
    """A fresh venv holding the wheel; its dependencies are this environment's, by a .pth line."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = _run([str(python), "-c", "import site; print(site.getsitepackages()[0])"], tmp, {})
    (Path(site.stdout.strip()) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"])
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q"]
    done = _run([*pip, str(wheel)], tmp, dict(os.environ))
    assert done.returncode == 0, done.stderr
    return venv


def test_the_installed_wheel_checks_an_op_and_renders_a_prompt(tmp_path: Path) -> None:
    venv = _venv(tmp_path, _wheel(tmp_path))
    work = tmp_path / "work"
    shutil.copytree(DEMO, work / "demo")
    shutil.copy(GOOD_SOFTMAX, work / "candidate.py")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    env["KEVOLVE_CACHE_DIR"] = str(tmp_path / "cache")

    check = [str(venv / "bin" / "kevolve"), "check", "demo", "--op", "softmax"]
    done = _run([*check, "--candidate", "candidate.py", "--device", "cpu", "--json"], work, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["verdict"] == "correct"

    done = _run([str(venv / "bin" / "python"), "-c", RENDER, "demo"], work, env)
    assert done.returncode == 0, done.stderr
    rendered = json.loads(done.stdout)
    inside = venv.resolve()
    assert Path(rendered["package"]).resolve().is_relative_to(inside)
    assert Path(rendered["templates"]).resolve().is_relative_to(inside)
    assert rendered["roles"] == ["system", "user"] and "softmax" in rendered["user"]


def test_the_installed_wheel_ships_the_demo_repo(tmp_path: Path) -> None:
    venv = _venv(tmp_path, _wheel(tmp_path))
    work = tmp_path / "work"
    work.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    where = "from kevolve.harness.assets import example_dir; print(example_dir('demo'))"
    done = _run([str(venv / "bin" / "python"), "-c", where], work, env)
    assert done.returncode == 0, done.stderr
    shipped = Path(done.stdout.strip())
    assert shipped.resolve().is_relative_to(venv.resolve())
    kernels = {p.name for p in (shipped / "demo_kernels").glob("*.py")}
    assert kernels == {p.name for p in (DEMO / "demo_kernels").glob("*.py")}
    # An op the demo lacks is refused with the demo's own ops, read from the shipped repo.
    done = _run([str(venv / "bin" / "kevolve"), "demo", "--op", "conv"], work, env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "use one of softmax, rmsnorm, bias_gelu, matmul_bias_relu" in done.stderr
    assert "Traceback" not in done.stderr
