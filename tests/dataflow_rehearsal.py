"""A rehearsal of the Dataflow worker contract on this machine, without Docker or a GCP project.

On Dataflow every DoFn runs in a worker of the image the `Dockerfile` builds: the files its
COPY lines take from the build context (less `.dockerignore`), installed by its `RUN pip
install` line, and nothing of the launcher's disk or environment. This builds that
environment (a fresh virtual environment from exactly those files, in a folder of its own),
starts Beam's worker pool from it, and runs `code-corpus` with Beam's portable runner
sending every bundle to the pool:

    --runner PortableRunner --job_endpoint=embed --environment_type=EXTERNAL --environment_config=localhost:PORT

So a package the image lacks, a path on the launcher's disk, module state that does not
pickle, or a token read from the launcher's environment fails here as it would on Dataflow.

    python -m tests.dataflow_rehearsal run --config examples/sample.yaml --out gs://BUCKET/rehearsal --stages corpus

The workers get only WORKER_ENV from this process's environment: what a Dataflow worker
has from the cloud itself (credentials, project, or an emulator standing in for the store).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from uv import find_uv_bin

log = logging.getLogger(__name__)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER_ENV = ("STORAGE_EMULATOR_HOST", "NO_GCE_CHECK", "GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"  # the image's own tools (git); no other Python than the venv's
# The Dockerfile's `pip install` line is run by uv's `uv pip install`: the same requirements from
# the same index, resolved to the same releases, with about a quarter of pip's CPU time. pip spent most
# of its 37 CPU s (a fresh venv with pip in it, then the install) reading every file link of every
# release of every dependency from the index pages, in Python (bench/README.md, "Test suite").


def ignore_rules(root: str) -> list[tuple[bool, re.Pattern]]:
    """`.dockerignore` as (excludes, pattern) rules, in order; the last rule that matches a path decides."""
    path = os.path.join(root, ".dockerignore")
    lines = open(path).read().splitlines() if os.path.exists(path) else []
    rules = []
    for line in (raw.strip() for raw in lines):
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((excludes, re.compile(_glob_to_regex(pattern))))
    return rules


def _glob_to_regex(pattern: str) -> str:
    """Docker's pattern syntax (Go's filepath.Match, plus `**` for any number of folders)."""
    out = ""
    for token in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
        out += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
    return out


def is_ignored(rel: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    """Whether `.dockerignore` keeps `rel` out of the context: a rule matching a folder covers what it holds."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for excludes, pattern in rules:
        if any(pattern.fullmatch(p) for p in prefixes):
            ignored = excludes
    return ignored


def build_context(root: str) -> list[str]:
    """The files `docker build` sends to COPY: every file under `root` that `.dockerignore` does not exclude."""
    rules = ignore_rules(root)
    files = []
    for folder, dirs, names in os.walk(root):
        rel_folder = os.path.relpath(folder, root)
        for name in names:
            rel = name if rel_folder == "." else f"{rel_folder}/{name}"
            if not is_ignored(rel, rules):
                files.append(rel)
        # An ignored folder holds nothing the context keeps unless an exception (`!`) could bring
        # a file back, so without exceptions it is not walked (.venv and .git are most of a tree).
        prune = not any(not excludes for excludes, _ in rules)
        dirs[:] = [
            d
            for d in dirs
            if not os.path.islink(os.path.join(folder, d))
            and not (prune and is_ignored(d if rel_folder == "." else f"{rel_folder}/{d}", rules))
        ]
    return sorted(files)


def dockerfile_steps(root: str) -> tuple[list[tuple[list[str], str]], list[str]]:
    """(the COPY lines as (sources, destination), the arguments of the `RUN pip install` line)."""
    copies, pip_args = [], None
    text = open(os.path.join(root, "Dockerfile")).read().replace("\\\n", " ")
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        op = words[0].upper()
        if op == "ADD" or (op == "COPY" and any(w.startswith("--from") for w in words)):
            raise ValueError(f"Dockerfile: {line.strip()!r} is not rehearsed; copy from the build context with COPY")
        if op == "COPY":
            args = [w for w in words[1:] if not w.startswith("--")]
            if os.path.isabs(args[-1]):
                raise ValueError(f"Dockerfile: {line.strip()!r}: rehearsed COPY lines copy into WORKDIR (./)")
            copies.append((args[:-1], args[-1]))
        if op == "RUN" and words[1:3] == ["pip", "install"]:
            pip_args = words[3:]
    if pip_args is None:
        raise ValueError("Dockerfile: no `RUN pip install ...` line to rehearse")
    return copies, pip_args


def image_env(root: str) -> dict[str, str]:
    """The variables the Dockerfile's `ENV KEY=VALUE` lines set in the image."""
    text = open(os.path.join(root, "Dockerfile")).read().replace("\\\n", " ")
    lines = (shlex.split(line, comments=True) for line in text.splitlines())
    return dict(w.split("=", 1) for words in lines if words and words[0].upper() == "ENV" for w in words[1:])


def image_files(root: str) -> dict[str, str]:
    """{path in the image's working directory: path in the build context} for every file the COPY lines copy."""
    context = build_context(root)
    copies, _ = dockerfile_steps(root)
    placed = {}
    for sources, dest in copies:
        for source in (os.path.normpath(s) for s in sources):
            if source in context:  # a file: into the folder `dest/`, or named `dest`
                target = os.path.join(dest, os.path.basename(source)) if dest.endswith("/") else dest
                placed[os.path.normpath(target)] = source
                continue
            inside = [f for f in context if source == "." or f.startswith(source + "/")]
            if not inside:
                raise ValueError(f"Dockerfile: COPY {source}: nothing of that name in the build context")
            for f in inside:
                placed[os.path.normpath(os.path.join(dest, os.path.relpath(f, source)))] = f
    return placed


def build_worker_environment(root: str, dest: str) -> str:
    """Copy what the image holds into `dest/image`, install it as the Dockerfile does into a fresh
    `dest/venv`, and return the venv."""
    image, venv = os.path.join(dest, "image"), os.path.join(dest, "venv")
    for target, source in image_files(root).items():
        os.makedirs(os.path.dirname(os.path.join(image, target)), exist_ok=True)
        shutil.copy2(os.path.join(root, source), os.path.join(image, target))
    _, pip_args = dockerfile_steps(root)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    # uv resolves and installs as pip does: a PEP 517 build of setup.py in an isolated environment,
    # and the newest releases the pins allow. Two things differ from the image's line, neither
    # changing what is installed: modules are compiled when first imported rather than all at once,
    # and the download cache is used (--no-cache-dir only keeps the image small).
    args = [a for a in pip_args if a != "--no-cache-dir"]
    python = os.path.join(venv, "bin", "python")
    install = [find_uv_bin(), "pip", "install", "--quiet", "--no-config", "--python", python, *args]
    proc = subprocess.run(install, cwd=image, env=_pip_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the worker image's `pip install` failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    log.info("worker environment built in %.1f s: %s", time.monotonic() - started, venv)
    return venv


def _pip_env() -> dict:
    """This environment less the variables that would let the install see the launcher's code."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def worker_env(venv: str, home: str) -> dict:
    """What a worker process sees: the venv's bin first on PATH, a home of its own, the image's ENV and WORKER_ENV."""
    env = {"PATH": f"{os.path.join(venv, 'bin')}:{SYSTEM_PATH}", "HOME": home, "LANG": "C.UTF-8", **image_env(ROOT)}
    env.update({k: os.environ[k] for k in WORKER_ENV if k in os.environ})
    return env


@contextlib.contextmanager
def worker_pool(venv: str, workdir: str, log_path: str | None = None):
    """Beam's worker pool, started from `venv` in `workdir` (its log, and its workers', to `log_path`);
    yields the portable runner's flags that send bundles to it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.makedirs(workdir, exist_ok=True)
    command = [os.path.join(venv, "bin", "python"), "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={port}"]
    with contextlib.ExitStack() as stack:
        log_file = stack.enter_context(open(log_path, "ab")) if log_path else None
        pool = subprocess.Popen(command, cwd=workdir, env=worker_env(venv, workdir), stderr=log_file, start_new_session=True)
        stack.callback(_stop, pool)
        _wait_for_port(port, pool)
        yield [
            "--runner=PortableRunner",
            "--job_endpoint=embed",
            "--environment_type=EXTERNAL",
            f"--environment_config=localhost:{port}",
        ]


def _stop(pool: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pool.pid, 15)  # the pool and the workers it started, all in its session
    pool.wait()


def _wait_for_port(port: int, pool: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if pool.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"Beam's worker pool did not start on port {port} (exit code {pool.poll()})")
        time.sleep(0.2)


@contextlib.contextmanager
def rehearsal(root: str = ROOT, dest: str | None = None):
    """The worker environment of `root`'s image, built in `dest` (a temporary folder by default),
    and its worker pool running; yields the flags that send a run's bundles there."""
    with contextlib.ExitStack() as stack:
        dest = dest or stack.enter_context(tempfile.TemporaryDirectory(prefix="rehearsal-"))
        venv = build_worker_environment(root, dest)
        yield stack.enter_context(worker_pool(venv, os.path.join(dest, "workdir")))


def main(argv: list[str]) -> int:
    """`python -m tests.dataflow_rehearsal run ARGS`: `code-corpus run ARGS` with its workers in the image's environment."""
    from pipeline import cli

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with rehearsal() as flags:
        return cli.main([*argv, *flags])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
