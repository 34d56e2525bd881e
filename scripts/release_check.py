"""`make release-check`: the release's four distributions as a package index and a user get them.

1. build: the sdist and the wheel of airflow-provider-neo and of neo-simulator into
   `.release/dist/`, with the pinned uv and the project venv's locked hatchling (no network);
2. twine: `twine check --strict` on all four;
3. contents: each sdist holds its package, README.md, LICENSE and pyproject.toml (the provider's
   also CHANGELOG.md) and nothing else; each wheel carries the LICENSE;
4. package page: the provider's long description (the README, read from the wheel's METADATA)
   has no link or image that works only inside the repository;
5. install: the install commands of docs/getting-started.md (the fenced block between
   `<!-- [START install] -->` and `<!-- [END install] -->`), run as written in a temporary copy
   of the repository's tracked files, into a fresh venv beside the newest supported Airflow
   (tests/compat/releases.py); then every module of the installed provider imports there.

Step 5 runs the page's commands as written but for two substitutions, and says which command
failed if one does:
- `pip` is the fresh venv's. `pip install` runs as `uv pip install --no-config --python <venv>`
  with the page's arguments and the release's `--exclude-newer` options (as `make compat`
  installs each release): the install resolves the same whenever it runs, and neither the
  project's uv settings nor the machine's Python take part. `pip wheel`, which uv has no
  counterpart of, runs as the venv's own pip with the page's arguments (its build isolation
  fetching hatchling from PyPI, as a user's does) in a temporary copy of the repository's
  tracked files, the user's clone. `airflow` is the venv's too, run outside the copy with an
  empty AIRFLOW_HOME and no PYTHONPATH.
- The constraints URL becomes a constraints file compiled here for the same Airflow release and
  Python (`uv pip compile` of apache-airflow==<release> with the release's `--exclude-newer`
  options): CI reaches PyPI but not GitHub, where Airflow publishes its constraints files.
The page must install the newest supported release, on the Python of tests/compat/releases.py.

Each step prints one line with its time; any failure exits 1 naming the step and the command.

    python -m scripts.release_check
"""

from __future__ import annotations

import email.parser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import Message
from functools import partial
from pathlib import Path, PurePosixPath
from typing import TypeVar

from tests.compat.releases import PYTHON, RELEASES, UV, Release, uv_venv

REPOSITORY = Path(__file__).resolve().parents[1]
DIST = REPOSITORY / ".release" / "dist"
GETTING_STARTED = REPOSITORY / "docs" / "getting-started.md"
PROBE = REPOSITORY / "tests" / "compat" / "probe.py"
LICENSE = REPOSITORY / "LICENSE"
T = TypeVar("T")


@dataclass(frozen=True)
class Distribution:
    name: str  # as the package index spells it
    package: str  # its import package
    source: Path  # the folder of its pyproject.toml
    sdist_files: tuple[str, ...]  # what its sdist holds besides the package and PKG-INFO

    @property
    def stem(self) -> str:
        return self.name.replace("-", "_")


PROVIDER = Distribution(
    "airflow-provider-neo", "airflow_provider_neo", REPOSITORY,
    ("README.md", "CHANGELOG.md", "LICENSE", "pyproject.toml"),
)  # fmt: skip
SIMULATOR = Distribution(
    "neo-simulator", "neo_simulator", REPOSITORY / "neo-simulator",
    ("README.md", "LICENSE", "pyproject.toml"),
)  # fmt: skip
DISTRIBUTIONS = (PROVIDER, SIMULATOR)

INSTALL_START = "<!-- [START install] -->"
INSTALL_END = "<!-- [END install] -->"
CONSTRAINTS_URL = re.compile(
    r"https://raw\.githubusercontent\.com/apache/airflow/"
    r"constraints-(?P<airflow>[^/]+)/constraints-(?P<python>[\d.]+)\.txt"
)


class StepFailed(Exception):
    """A check that did not hold; the message says what and, for a command, which."""


def run(command: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Runs `command`; its stdout, or StepFailed naming it with the end of its output."""
    result = subprocess.run(
        list(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=1800
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-3000:]
        raise StepFailed(
            f"`{shlex.join(command)}` exited with {result.returncode}:\n{output}".rstrip()
        )
    return result.stdout


# 1. build


def artifacts(distribution: Distribution) -> tuple[Path, Path]:
    """The sdist and the wheel of `distribution` in DIST."""
    sdists = sorted(DIST.glob(f"{distribution.stem}-*.tar.gz"))
    wheels = sorted(DIST.glob(f"{distribution.stem}-*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        raise StepFailed(f"expected one sdist and one wheel of {distribution.name} in {DIST}")
    return sdists[0], wheels[0]


def build() -> str:
    shutil.rmtree(DIST, ignore_errors=True)
    for distribution in DISTRIBUTIONS:
        run(
            [UV, "build", "--sdist", "--wheel", "--package", distribution.name,
             "--no-build-isolation", "--python", sys.executable, "--offline", "--quiet",
             "--out-dir", str(DIST)],
            cwd=REPOSITORY,
        )  # fmt: skip
    built = [path.name for d in DISTRIBUTIONS for path in artifacts(d)]
    return f"{len(built)} files in {DIST.relative_to(REPOSITORY)}/: {', '.join(built)}"


# 2. twine


def twine() -> str:
    files = [str(path) for d in DISTRIBUTIONS for path in artifacts(d)]
    output = run([sys.executable, "-m", "twine", "check", "--strict", *files], cwd=REPOSITORY)
    passed = output.count("PASSED")
    if passed != len(files):
        raise StepFailed(f"twine check passed {passed} of {len(files)}:\n{output}")
    return f"twine check --strict: {passed} of {len(files)} passed"


# 3. contents


def wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def sdist_members(sdist: Path) -> dict[str, bytes]:
    """The sdist's files by their path below its top folder."""
    members = {}
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            if member.isfile():
                extracted = archive.extractfile(member)
                assert extracted is not None
                path = PurePosixPath(member.name)
                members[str(path.relative_to(path.parts[0]))] = extracted.read()
    return members


def contents_problems(distribution: Distribution) -> list[str]:
    sdist, wheel = artifacts(distribution)
    members = sdist_members(sdist)
    # Hatchling adds the .gitignore to every sdist, so that a build from it leaves out the same.
    allowed = {"PKG-INFO", ".gitignore", *distribution.sdist_files}
    expected = allowed - {".gitignore"}
    package_files = {
        str(path.relative_to(distribution.source))
        for path in (distribution.source / distribution.package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    problems = [f"{sdist.name} lacks {name}" for name in sorted(expected - set(members))]
    problems += [
        f"{sdist.name} holds {name}, which is neither its package nor {sorted(expected)}"
        for name in sorted(members)
        if name not in allowed and name.partition("/")[0] != distribution.package
    ]
    tracked = set(
        run(["git", "ls-files", distribution.package], cwd=distribution.source).splitlines()
    )
    problems += [
        f"{sdist.name} lacks {name}" for name in sorted((tracked & package_files) - set(members))
    ]
    if members.get("LICENSE", LICENSE.read_bytes()) != LICENSE.read_bytes():
        problems.append(f"the LICENSE in {sdist.name} is not the repository's")
    with zipfile.ZipFile(wheel) as archive:
        licenses = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        if [archive.read(n) for n in licenses] != [LICENSE.read_bytes()]:
            problems.append(f"{wheel.name} does not carry the repository's LICENSE")
    if wheel_metadata(wheel)["License-Expression"] != "Apache-2.0":
        problems.append(f"{wheel.name} does not declare License-Expression: Apache-2.0")
    return problems


def contents() -> str:
    problems = [problem for d in DISTRIBUTIONS for problem in contents_problems(d)]
    if problems:
        raise StepFailed("\n".join(problems))
    sizes = ", ".join(f"{len(sdist_members(artifacts(d)[0]))} in {d.name}'s" for d in DISTRIBUTIONS)
    return f"each sdist holds its package, README, LICENSE and pyproject only (files: {sizes})"


# 4. package page


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: its text, lowercased, without punctuation
    other than hyphens and underscores, spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The #fragments a Markdown page answers: its headings' slugs (a repeated one gets -1, -2,
    ...) and explicit HTML ids and names."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in _without_fences(markdown).splitlines():
        heading = re.match(r" {0,3}#{1,6}\s+(.*?)(\s+#+)?\s*$", line)
        if heading:
            slug = github_slug(heading.group(1))
            found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    found.update(re.findall(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""", markdown))
    return found


def _without_fences(markdown: str) -> str:
    """`markdown` without its fenced code blocks, where no line is a heading or a link."""
    return re.sub(r"(?ms)^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[`~]*\s*$", "", markdown)


def _outside_code(markdown: str) -> str:
    """`markdown` without its fenced code blocks and code spans, where nothing is a link."""
    return re.sub(r"(`+).+?\1", "", _without_fences(markdown), flags=re.S)


def links(markdown: str) -> list[str]:
    """Every link and image target of `markdown`: inline, reference definitions, and HTML."""
    text = _outside_code(markdown)
    return [
        *re.findall(r"\]\(\s*<?([^)\s>]*)", text),
        *re.findall(r"(?m)^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)", text),
        *re.findall(r"""\b(?:href|src)\s*=\s*["']([^"']*)["']""", text),
    ]


def links_that_only_work_in_the_repository(markdown: str) -> list[str]:
    """The targets that break on a package index: relative paths, and #fragments that name no
    heading of the page itself."""
    own = anchors(markdown)
    broken = []
    for target in links(markdown):
        if re.match(r"(?i)(https?://|mailto:)", target):
            continue
        if target.startswith("#") and target[1:] in own:
            continue
        broken.append(target)
    return broken


def package_page() -> str:
    metadata = wheel_metadata(artifacts(PROVIDER)[1])
    description = metadata.get_payload()
    assert isinstance(description, str)
    if metadata["Description-Content-Type"] != "text/markdown" or "Capillary" not in description:
        raise StepFailed("the provider's wheel does not carry the README as its Markdown page")
    broken = links_that_only_work_in_the_repository(description)
    if broken:
        raise StepFailed(
            "the package page (README.md) links to what exists only in the repository: "
            + ", ".join(broken)
        )
    return f"the README's {len(links(description))} links work on the package index"


# 5. install


def install_commands(page: Path) -> list[str]:
    """The commands of the page's install block, one per logical line (continuations joined)."""
    text = page.read_text() if page.exists() else ""
    block = re.search(
        re.escape(INSTALL_START)
        + r"\s*```(?:bash|sh|console)?\n(.*?)\n```\s*"
        + re.escape(INSTALL_END),
        text,
        re.S,
    )
    if block is None:
        raise StepFailed(
            f"{page.relative_to(REPOSITORY)} has no fenced block between {INSTALL_START} and "
            f"{INSTALL_END}"
        )
    commands = block.group(1).replace("\\\n", " ").splitlines()
    return [command.strip() for command in commands if shlex.split(command, comments=True)]


@dataclass
class Sandbox:
    """Where the page's commands run: a copy of the repository (the user's clone), a fresh venv
    beside the release, an empty AIRFLOW_HOME, and the locally compiled constraints."""

    release: Release
    clone: Path
    venv: Path
    workdir: Path
    constraints: Path

    def env(self) -> dict[str, str]:
        # Nothing of the caller's Python path or Airflow settings: a fresh installation.
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith("AIRFLOW")
        }
        return {
            **env,
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "VIRTUAL_ENV": str(self.venv),
            "AIRFLOW_HOME": str(self.workdir / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }

    def translate(self, argv: list[str]) -> tuple[list[str], Path]:
        """The command to run for one command of the page, and where to run it."""
        if argv[:2] == ["pip", "wheel"]:
            return [str(self.venv / "bin" / "pip"), *argv[1:]], self.clone
        if argv[:2] == ["pip", "install"]:
            return self.release.uv_pip_install(self.venv, *self.local(argv[2:])), self.clone
        if argv[0] == "airflow":
            return [str(self.venv / "bin" / "airflow"), *argv[1:]], self.workdir
        if argv[0] == "grep":
            return argv, self.workdir
        raise StepFailed(f"the release check does not know how to run `{shlex.join(argv)}`")

    def local(self, arguments: list[str]) -> list[str]:
        """`pip install` arguments with the constraints URL replaced by the local file, after
        checking that the page installs the newest supported release on the matrix's Python."""
        airflow = f"apache-airflow=={self.release.airflow}"
        if airflow not in arguments:
            raise StepFailed(f"the page's install does not pin {airflow}, the newest supported")
        replaced = []
        for argument in arguments:
            url = CONSTRAINTS_URL.fullmatch(argument.removeprefix("--constraint="))
            if url:
                if (url["airflow"], url["python"]) != (self.release.airflow, PYTHON):
                    raise StepFailed(
                        f"the page's constraints are Airflow {url['airflow']} on Python "
                        f"{url['python']}; expected {self.release.airflow} on {PYTHON}"
                    )
                argument = argument.replace(url.group(0), str(self.constraints))
            elif argument.startswith(("http://", "https://")):
                raise StepFailed(f"the page's install fetches {argument}, which CI cannot reach")
            replaced.append(argument)
        if str(self.constraints) not in " ".join(replaced):
            raise StepFailed("the page's install has no Airflow constraints URL")
        return replaced

    def run_line(self, line: str) -> str:
        """Runs one command line of the page (a pipeline of commands joined by `|`)."""
        words = shlex.split(line, comments=True)
        pipeline: list[list[str]] = [[]]
        for word in words:
            if word == "|":
                pipeline.append([])
            else:
                pipeline[-1].append(word)
        output: str | None = None
        for argv in pipeline:
            command, cwd = self.translate(argv)
            result = subprocess.run(
                command, cwd=cwd, env=self.env(), input=output, capture_output=True, text=True,
                timeout=1800,
            )  # fmt: skip
            if result.returncode != 0:
                raise StepFailed(
                    f"the page's command `{line}` failed: `{shlex.join(command)}` exited with "
                    f"{result.returncode}:\n{(result.stdout + result.stderr).strip()[-3000:]}"
                )
            output = result.stdout
        return output or ""


def copy_tracked_files(destination: Path) -> None:
    """The repository's tracked files as they are in the work tree, as a clone would have them."""
    listed = run(["git", "ls-files", "-z"], cwd=REPOSITORY).split("\0")
    for name in filter(None, listed):
        source = REPOSITORY / name
        if source.is_file() or source.is_symlink():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name, follow_symlinks=False)


def same_wheels(built: Path, checked: Path) -> list[str]:
    """Where the wheel the page's commands built differs from the one checked above, dist-info
    aside (the page builds with the newest hatchling, this check with the locked one)."""
    with zipfile.ZipFile(built) as one, zipfile.ZipFile(checked) as other:
        ours = {n: one.read(n) for n in one.namelist() if ".dist-info/" not in n}
        theirs = {n: other.read(n) for n in other.namelist() if ".dist-info/" not in n}
    return sorted(n for n in ours.keys() | theirs.keys() if ours.get(n) != theirs.get(n))


def install() -> str:
    release = RELEASES[-1]
    version = wheel_metadata(artifacts(PROVIDER)[1])["Version"]
    lines = install_commands(GETTING_STARTED)
    times: dict[str, float] = {}

    def timed(label: str, action: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return action()
        finally:
            times[label] = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="release-check-") as temporary:
        root = Path(temporary)
        sandbox = Sandbox(
            release, root / "clone", root / "venv", root / "run", root / "constraints.txt"
        )
        sandbox.workdir.mkdir()
        copy_tracked_files(sandbox.clone)
        requirement = root / "airflow.in"
        requirement.write_text(f"apache-airflow=={release.airflow}\n")
        compile_constraints = release.uv_pip_compile(requirement, sandbox.constraints)
        timed("constraints", lambda: run(compile_constraints, cwd=root))
        timed("venv", lambda: run(uv_venv(sandbox.venv, seed=True), cwd=root))
        output = ""
        for line in lines:
            output = timed(" ".join(shlex.split(line)[:2]), partial(sandbox.run_line, line))
        listed = [
            " ".join(row.split()) for row in output.splitlines()
            if PROVIDER.name in row and re.search(rf"(?<![\w.]){re.escape(version)}(?![\w.])", row)
        ]  # fmt: skip
        if not listed:
            raise StepFailed(
                f"the page's last command `{lines[-1]}` shows no line naming {PROVIDER.name} "
                f"{version}; it printed:\n{output.strip()[-2000:]}"
            )
        built = sorted((sandbox.clone / "dist").glob(f"{PROVIDER.stem}-*.whl"))
        differences = same_wheels(built[0], artifacts(PROVIDER)[1]) if built else ["no wheel"]
        if differences:
            raise StepFailed(f"the page's wheel differs from {DIST.name}'s in {differences}")
        seen = timed("imports", lambda: probe(sandbox))
    failures = seen["import_failures"]
    assert isinstance(failures, dict)
    if failures:
        raise StepFailed(f"modules of the installed provider fail to import: {failures}")
    if seen["provider_version"] != version:
        raise StepFailed(f"Airflow registers {PROVIDER.name} {seen['provider_version']}")
    if not str(seen["provider_file"]).startswith(str(sandbox.venv)):
        raise StepFailed(f"the provider was imported from {seen['provider_file']}, not the venv")
    return (
        f"{GETTING_STARTED.relative_to(REPOSITORY)}'s {len(lines)} commands on Airflow "
        f"{release.airflow} (dependencies as of {release.as_of}) show `{listed[0]}`; every "
        f"module of the installed provider imports ("
        + ", ".join(f"{label} {seconds:.1f} s" for label, seconds in times.items())
        + ")"
    )


def probe(sandbox: Sandbox) -> dict[str, object]:
    """tests/compat/probe.py's `installation` run by the venv's Python in isolated mode (no
    script folder, no PYTHONPATH on its path): what Airflow registered, and the import of every
    module of the installed provider."""
    out = sandbox.workdir / "installation.json"
    run(
        [str(sandbox.venv / "bin" / "python"), "-I", str(PROBE), "installation", str(out)],
        cwd=sandbox.workdir, env=sandbox.env(),
    )  # fmt: skip
    seen = json.loads(out.read_text())
    assert isinstance(seen, dict)
    return seen


STEPS: tuple[tuple[str, Callable[[], str]], ...] = (
    ("build", build),
    ("twine", twine),
    ("contents", contents),
    ("package page", package_page),
    ("install", install),
)


def main() -> int:
    started = time.perf_counter()
    failed: list[str] = []
    for name, step in STEPS:
        step_started = time.perf_counter()
        try:
            summary, ok = step(), True
        except StepFailed as failure:
            summary, ok = str(failure), False
            failed.append(name)
        seconds = time.perf_counter() - step_started
        print(f"{'ok' if ok else 'FAILED':6} {name:13} {seconds:5.1f} s  {summary}", flush=True)
        if name == "build" and not ok:
            break  # the other steps check what it builds
    total = time.perf_counter() - started
    if failed:
        print(f"release check FAILED ({', '.join(failed)}) in {total:.0f} s", file=sys.stderr)
        return 1
    print(f"release check passed in {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
