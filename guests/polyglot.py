#!/usr/bin/env python3
"""Builds the Python and JavaScript example guests into components.

    python3 guests/polyglot.py --tools DIR --out DIR [NAME ...]
    python3 guests/polyglot.py --list

Each NAME (all of them when none is given) becomes OUT/NAME.wasm:

    python-echo, python-kv    componentize-py, world bulkhead:plugin (wit/)
    js-echo, js-kv            jco componentize (componentize-js), same world
    js-http-hello             jco componentize, a wasi:http/proxy app

The toolchains are pinned and installed on first use under TOOLS, never into
the user's environment (pip's and npm's caches live there too): a venv with
componentize-py from PyPI, and a local npm tree from guests/js/package.json
and package-lock.json (`npm ci`). A component is rebuilt only when its
inputs (its sources, the WIT, the pins, this script) change; it is built
from a copy of its sources, so nothing is written into the checkout.
Concurrent runs with the same TOOLS or the same OUT wait for each other.
Every install and build step has a deadline.

Exit status: 0 when every component is built; 3 when a toolchain cannot be
had (the message names it); 1 when a build fails.
"""

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = Path(__file__).resolve()
GUESTS = SCRIPT.parent
WIT = GUESTS.parent / "wit"
COMPONENTIZE_PY = "componentize-py==0.25.1"
JS = GUESTS / "js"
# The WASI packages of the wasi:http app's world, as the pinned jco ships them.
JCO_WASI_WIT = Path("@bytecodealliance/jco/lib/wit/builtin/0.2.12")
# Deadlines: an install fetches hundreds of MB; a build takes about 30 s.
INSTALL_TIMEOUT = 900
BUILD_TIMEOUT = 600


class Unavailable(Exception):
    """A toolchain that cannot be installed or run here."""


class BuildFailed(Exception):
    """A toolchain ran and refused a guest."""


def run(command, what, cwd=None, unavailable=False, env=None):
    """Runs `command` within its deadline; raises with its output when it
    fails (`Unavailable` for an install step, `BuildFailed` for a build)."""
    timeout = INSTALL_TIMEOUT if unavailable else BUILD_TIMEOUT
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
            env=None if env is None else {**os.environ, **env},
        )
    except OSError as e:
        raise Unavailable(f"{what}: cannot run {command[0]}: {e}") from e
    except subprocess.TimeoutExpired as e:
        error = Unavailable if unavailable else BuildFailed
        raise error(f"{what}: `{command[0]}` did not finish within {timeout} s") from e
    if done.returncode != 0:
        error = Unavailable if unavailable else BuildFailed
        raise error(
            f"{what}: `{' '.join(map(str, command))}` exited with {done.returncode}\n"
            f"{done.stdout}{done.stderr}"
        )


def componentize_py(tools):
    """The componentize-py of a venv under `tools`, installed on first use."""
    venv = tools / ("venv-" + COMPONENTIZE_PY.replace("==", "-"))
    exe = venv / "bin" / "componentize-py"
    # The venv links to the interpreter that made it: made by another one
    # (an upgraded Python), it is made again.
    marker = f"{COMPONENTIZE_PY}\n{sys.executable} {sys.version}\n"
    installed = venv / "installed"
    if installed.exists() and installed.read_text() == marker and exe.exists():
        return exe
    what = f"{COMPONENTIZE_PY} from PyPI (into {venv})"
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", str(venv)], what, unavailable=True)
    run(
        [venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--only-binary=:all:", "--cache-dir", tools / "pip-cache", COMPONENTIZE_PY],
        what,
        unavailable=True,
    )
    installed.write_text(marker)
    return exe


def node_modules(tools):
    """A node_modules tree of guests/js's package files under `tools`."""
    key = digest([JS / "package.json", JS / "package-lock.json"])
    tree = tools / ("npm-" + key[:16])
    if (tree / "installed").exists():
        return tree / "node_modules"
    pins = json.loads((JS / "package.json").read_text())["devDependencies"]
    what = "{} from npm (with Node.js and npm, into {})".format(
        " and ".join(f"{name.split('/')[-1]} {version}" for name, version in sorted(pins.items())), tree
    )
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable(f"{what}: npm is not on PATH")
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(JS / name, tree / name)
    # --ignore-scripts: nothing the packages ship runs at install; their
    # native binaries come as platform packages.
    run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--cache", tools / "npm-cache"],
        what, cwd=tree, unavailable=True,
    )
    (tree / "installed").write_text("")
    # Trees of earlier pins are never used again.
    for old in tools.glob("npm-*"):
        if old.is_dir() and old not in (tree, tools / "npm-cache"):
            shutil.rmtree(old, ignore_errors=True)
    return tree / "node_modules"


def digest(paths, *pins):
    """A hash of the files under `paths` (names and contents; not Python's
    byte-code caches) and `pins`."""
    h = hashlib.sha256()
    for pin in pins:
        h.update(pin.encode() + b"\0")
    for root in paths:
        files = [root] if root.is_file() else sorted(
            p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
        )
        for f in files:
            h.update(str(f.relative_to(GUESTS.parent)).encode() + b"\0")
            h.update(f.read_bytes() + b"\0")
    return h.hexdigest()


def build_python(name, tools, out):
    source = GUESTS / "python" / name.removeprefix("python-")
    key = digest([source, WIT, SCRIPT], COMPONENTIZE_PY)

    def build(dest, scratch):
        # componentize-py runs the module (and caches its byte code) in the
        # directory it builds from: a copy.
        app = scratch / "app"
        shutil.copytree(source, app, ignore=shutil.ignore_patterns("__pycache__"))
        run(
            [componentize_py(tools), "-d", WIT, "-w", "plugin", "componentize", "app", "-o", dest],
            f"building {name} with {COMPONENTIZE_PY}",
            cwd=app,
            env={"PYTHONDONTWRITEBYTECODE": "1"},
        )

    return cached(out, name, key, build)


def build_js(name, tools, out):
    source = {
        "js-echo": JS / "echo" / "echo.js",
        "js-kv": JS / "kv" / "kv.js",
        "js-http-hello": JS / "http-hello" / "app.js",
    }[name]
    key = digest([source, WIT, JS / "http-hello" / "wit", JS / "package.json", JS / "package-lock.json", SCRIPT])

    def build(dest, scratch):
        modules = node_modules(tools)
        jco = modules / ".bin" / "jco"
        if name == "js-http-hello":
            # The app's world plus the WASI packages it names, as one WIT
            # directory.
            wit = scratch / "wit"
            wit.mkdir()
            shutil.copy(source.parent / "wit" / "world.wit", wit / "world.wit")
            shutil.copytree(modules / JCO_WASI_WIT, wit / "deps")
            componentize(jco, source, wit, "app", dest, name)
        else:
            componentize(jco, source, WIT, "plugin", dest, name)

    return cached(out, name, key, build)


def componentize(jco, source, wit, world, dest, name):
    run([jco, "componentize", source, "--wit", wit, "-n", world, "-o", dest],
        f"building {name} with jco componentize")


def cached(out, name, key, build):
    """OUT/NAME.wasm, built by `build(path, scratch_dir)` unless its key is
    unchanged; a failed build leaves no partial output."""
    dest = out / f"{name}.wasm"
    stamp = out / f"{name}.wasm.key"
    if dest.exists() and stamp.exists() and stamp.read_text() == key:
        return dest
    stamp.unlink(missing_ok=True)
    partial = out / f"{name}.wasm.partial"
    scratch = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=out))
    try:
        partial.unlink(missing_ok=True)
        build(partial, scratch)
        if not partial.exists():
            raise BuildFailed(f"building {name}: the toolchain wrote no {partial}")
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
        shutil.rmtree(scratch, ignore_errors=True)
    stamp.write_text(key)
    return dest


BUILDERS = {
    "python-echo": build_python,
    "python-kv": build_python,
    "js-echo": build_js,
    "js-kv": build_js,
    "js-http-hello": build_js,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tools", type=Path, help="where the pinned toolchains are installed")
    parser.add_argument("--out", type=Path, help="where the components are written")
    parser.add_argument("--list", action="store_true", help="print the guests' names and stop")
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BUILDERS))
    args = parser.parse_args()
    if args.list:
        print("\n".join(BUILDERS))
        return 0
    if args.tools is None or args.out is None:
        parser.error("--tools and --out are required")
    names = args.names or list(BUILDERS)
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        parser.error(f"unknown guest {', '.join(unknown)}: expected {', '.join(BUILDERS)}")
    tools, out = args.tools.resolve(), args.out.resolve()
    tools.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    with open(tools / "polyglot.lock", "w") as tools_lock, open(out / "polyglot.lock", "w") as out_lock:
        # Another run's install or build has its own deadlines.
        fcntl.flock(tools_lock, fcntl.LOCK_EX)
        fcntl.flock(out_lock, fcntl.LOCK_EX)
        try:
            for name in names:
                print(BUILDERS[name](name, tools, out))
        except Unavailable as e:
            print(f"polyglot: toolchain unavailable: {e}", file=sys.stderr)
            return 3
        except BuildFailed as e:
            print(f"polyglot: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
