"""Every operator, sensor and trigger the provider registers, and the reminder task group, has a
how-to page in docs/, and that page shows code CI runs: a `literalinclude` of an example DAG
between `[START name]` and `[END name]` markers, as Airflow's own provider docs do, in which the
class is at work (for a trigger: a sensor deferring to it)."""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import BaseOperator, BaseSensorOperator
from airflow.triggers.base import BaseTrigger

from airflow_provider_neo.get_provider_info import get_provider_info
from airflow_provider_neo.task_groups.reminders import ExpiryReminderTaskGroup

REPOSITORY = Path(__file__).resolve().parents[2]
DOCS = REPOSITORY / "docs"
DAGS = REPOSITORY / "dags"
REGISTERED_KINDS = ("operators", "sensors", "triggers")
TASK_TYPES = (BaseOperator, BaseSensorOperator, BaseTrigger)
# A fence opening a directive: ```{literalinclude} path or :::{literalinclude} path.
_DIRECTIVE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{literalinclude\}\s+(?P<path>\S+)\s*$")
_OPTION = re.compile(r"^:(?P<name>[\w-]+):\s*(?P<value>.*)$")
_CODE_FENCE = re.compile(r"^(`{3,}|~{3,}|:{3,})")


@dataclass(frozen=True)
class Include:
    """One `literalinclude` of a page: the file it names, relative to the page, and its options."""

    path: str
    options: dict[str, str]


def registered_classes() -> list[type]:
    """The public operators, sensors and triggers defined in the modules the provider registers;
    base classes (abstract, or named Base...) are for subclassing, not how-to pages."""
    info = get_provider_info()
    modules = [
        module
        for kind in REGISTERED_KINDS
        for entry in info[kind]
        for module in entry["python-modules"]
    ]
    classes: list[type] = []
    for name in modules:
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if (
                inspect.isclass(value)
                and value.__module__ == module.__name__
                and issubclass(value, TASK_TYPES)
                and not attribute.startswith(("_", "Base"))
                and not inspect.isabstract(value)
            ):
                classes.append(value)
    return classes


def first_heading(markdown: str) -> str | None:
    """The text of the page's first `# ` heading, outside code fences."""
    fence: str | None = None
    for line in markdown.splitlines():
        opening = _CODE_FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None and line.startswith("# "):
            return line[2:].strip()
    return None


def literal_includes(markdown: str) -> list[Include]:
    """The page's MyST `literalinclude` directives, with their `:option: value` lines; a value's
    surrounding quotes are dropped."""
    includes: list[Include] = []
    lines = iter(markdown.splitlines())
    for line in lines:
        directive = _DIRECTIVE.match(line.strip())
        if directive is None:
            continue
        options: dict[str, str] = {}
        for option_line in lines:
            option = _OPTION.match(option_line.strip())
            if option is None:
                break
            value = option.group("value").strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            options[option.group("name")] = value
        includes.append(Include(directive.group("path"), options))
    return includes


def include_target(page: Path, include: Include) -> Path:
    """The file `include` on `page` names, as Sphinx reads it: relative to the page, or to docs/
    when it starts with a slash."""
    if include.path.startswith("/"):
        return (DOCS / include.path.lstrip("/")).resolve()
    return (page.parent / include.path).resolve()


def include_problem(page: Path, include: Include) -> str | None:
    """Why `include` on `page` does not show code from an example DAG; None when it does."""
    target = include_target(page, include)
    if not target.is_relative_to(DAGS):
        return f"{include.path} is not a file under dags/"
    if not target.is_file():
        return f"{include.path} does not exist"
    start, end = include.options.get("start-after"), include.options.get("end-before")
    if not start or not end:
        return f"{include.path} needs both :start-after: and :end-before:"
    return snippet_problem(target.read_text(), start, end)


def marked_code(source: str, start: str, end: str) -> str | None:
    """The lines strictly between markers `start` and `end` in `source`; None when `start` is
    missing or `end` does not follow it."""
    begin = source.find(start)
    if begin < 0:
        return None
    finish = source.find(end, begin + len(start))
    if finish < 0:
        return None
    between = source[begin + len(start) : finish]
    # The rest of the start marker's line and the end marker's own line are not code.
    code = between.split("\n", 1)[1] if "\n" in between else ""
    return code.rsplit("\n", 1)[0] if "\n" in code else ""


def snippet_problem(source: str, start: str, end: str) -> str | None:
    """Why the code between markers `start` and `end` in `source` is no snippet; None if it is."""
    for marker, kind in ((start, "START"), (end, "END")):
        if f"[{kind} " not in marker:
            return f"{marker!r} is not a [{kind} name] marker"
    if start not in source:
        return f"{start!r} is not in the file"
    code = marked_code(source, start, end)
    if code is None:
        return f"{end!r} does not follow {start!r} in the file"
    if not code.strip():
        return f"nothing between {start!r} and {end!r}"
    return None


def shows(documented: type, code: str) -> bool:
    """Whether `code` shows `documented` at work: the class itself built or used, or for a
    trigger, a sensor that defers to it."""
    if issubclass(documented, BaseTrigger):
        return "deferrable=True" in code
    name = documented.__name__
    return f"{name}(" in code or f"{name}." in code


def doc_pages() -> list[Path]:
    return sorted(
        path for path in DOCS.rglob("*.md") if "_build" not in path.relative_to(DOCS).parts
    )


def how_to_pages(name: str, pages: list[Path]) -> list[Path]:
    """The pages whose first `# ` heading names `name` (as a whole word)."""
    word = re.compile(rf"\b{re.escape(name)}\b")
    return [page for page in pages if word.search(first_heading(page.read_text()) or "")]


DOCUMENTED = sorted([*registered_classes(), ExpiryReminderTaskGroup], key=lambda c: c.__name__)


@pytest.mark.parametrize("documented", DOCUMENTED, ids=[c.__name__ for c in DOCUMENTED])
def test_each_operator_sensor_trigger_and_task_group_has_a_how_to_page_with_dag_code(
    documented: type,
) -> None:
    name = documented.__name__
    pages = how_to_pages(name, doc_pages())
    assert pages, f"{name} has no how-to page: no docs/**/*.md whose first '# ' heading names it"
    for page in pages:
        shown = page.relative_to(REPOSITORY)
        includes = literal_includes(page.read_text())
        assert includes, f"{shown} (the how-to page of {name}) includes no code from dags/"
        problems = [problem for include in includes if (problem := include_problem(page, include))]
        assert not problems, f"{shown}: " + "; ".join(problems)
        code = [
            marked_code(
                include_target(page, include).read_text(),
                include.options["start-after"],
                include.options["end-before"],
            )
            or ""
            for include in includes
        ]
        assert any(shows(documented, snippet) for snippet in code), (
            f"{shown} includes no code that shows {name}"
        )


def test_registered_classes_are_the_public_operators_sensors_and_triggers() -> None:
    names = {c.__name__ for c in registered_classes()}
    assert {"ExpiringPointsOperator", "ExpiringPointsSensor", "ExpiringPointsTrigger"} <= names
    assert not {"BaseNeoOperator", "TrustBoundaryOperator", "_NeoSensor"} & names


def test_first_heading_skips_code_fences() -> None:
    page = "```python\n# not a heading\n```\n\n## Sub\n# ExpiringPointsOperator\n# Later\n"
    assert first_heading(page) == "ExpiringPointsOperator"
    assert first_heading("no heading\n#hashtag\n") is None


def test_how_to_pages_match_the_class_name_as_a_word(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# The ExpiringPointsOperator\n")
    (tmp_path / "b.md").write_text("# ExpiringPointsOperators, plural\n")
    assert how_to_pages("ExpiringPointsOperator", sorted(tmp_path.glob("*.md"))) == [
        tmp_path / "a.md"
    ]


def test_literal_includes_read_options_with_or_without_quotes() -> None:
    page = (
        "# Page\n\n"
        "```{literalinclude} ../../dags/neo_points_expiry_reminder.py\n"
        ":language: python\n"
        ':start-after: "[START howto_operator_expiring_points]"\n'
        ":end-before: [END howto_operator_expiring_points]\n"
        ":dedent:\n"
        "```\n\n"
        "```python\nprint()\n```\n"
        ":::{literalinclude} /x.py\n:::\n"
    )
    assert literal_includes(page) == [
        Include(
            "../../dags/neo_points_expiry_reminder.py",
            {
                "language": "python",
                "start-after": "[START howto_operator_expiring_points]",
                "end-before": "[END howto_operator_expiring_points]",
                "dedent": "",
            },
        ),
        Include("/x.py", {}),
    ]


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("# [START a]\nx = 1\n# [END a]\n", None),
        ("# [START a]\n    x = 1\n    # [END a]\n", None),
        ("# [START a]\n# [END a]\n", "nothing between"),
        ("# [START a]\n\n   \n# [END a]\n", "nothing between"),
        ("# [END a]\nx = 1\n# [START a]\n", "does not follow"),
        ("x = 1\n# [END a]\n", "is not in the file"),
        ("# [START a]\nx = 1\n", "does not follow"),
    ],
)
def test_snippet_problem_needs_both_markers_in_order_around_code(
    source: str, problem: str | None
) -> None:
    found = snippet_problem(source, "[START a]", "[END a]")
    assert found == problem if problem is None else problem in (found or "")


def test_include_problem_accepts_only_marked_code_under_dags(tmp_path: Path) -> None:
    page = DOCS / "operators" / "page.md"  # never written: only its folder matters
    dag = "../../dags/neo_points_expiry_reminder.py"
    marked = {
        "start-after": "[START howto_operator_expiring_points]",
        "end-before": "[END howto_operator_expiring_points]",
    }
    assert include_problem(page, Include(dag, marked)) is None
    assert "not a file under dags/" in (include_problem(page, Include("../conf.py", marked)) or "")
    assert "needs both" in (include_problem(page, Include(dag, {})) or "")
    unknown = {**marked, "start-after": "[START no_such_marker]"}
    assert "not in the file" in (include_problem(page, Include(dag, unknown)) or "")
