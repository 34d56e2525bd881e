"""Where a trigger's conf stops, as Airflow's security model draws the line: the DAG file, the
deployment, connections and Variables are trusted; the conf of a triggered run is user input.

By default Airflow lets a run's conf override the DAG's params (``[core]
dag_run_conf_overrides_params``), so ``customers_path="{{ params.customers_path }}"`` would let
whoever triggers the DAG choose which file is read and where customers' data goes. An operator
built on `TrustBoundaryOperator` lists such arguments in `location_fields` (files, URLs,
databases, connections, addresses); the channels and the message it carries list theirs the same
way. Before the task renders its templates, a location whose template reads a param (or a
``dag_run.conf`` key) that the run's conf sets fails the task, naming the param and the
argument, unless the DAG author opened that param with ``conf_may_set=[...]``. Other arguments
(``holdout_share``, ``lead_times``, a channel's name among the DAG's own) stay open to conf.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import jinja2
from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator
from jinja2 import nodes

# A dict method called on params (``params.items()``): no param is named.
_DICT_METHODS = frozenset({"items", "keys", "values", "copy", "dump", "get_param", "validate"})


class TemplateReads:
    """What a template reads from what a trigger's conf can set."""

    def __init__(self) -> None:
        self.params: set[str] = set()  # params.<name>, params['<name>'], params.get('<name>')
        self.conf: set[str] = set()  # dag_run.conf.<key>, ...
        self.any_param = False  # params read in a way that names no param
        self.any_conf = False


def template_reads(template: str, environment: jinja2.Environment | None = None) -> TemplateReads:
    """The params and ``dag_run.conf`` keys that `template` reads."""
    reads = TemplateReads()
    try:
        tree = (environment or jinja2.Environment()).parse(template)
    except jinja2.TemplateSyntaxError:
        return reads  # Airflow's rendering reports it, with the field
    _visit(tree, [], reads)
    return reads


def _visit(node: nodes.Node, ancestors: list[nodes.Node], reads: TemplateReads) -> None:
    if isinstance(node, nodes.Name) and node.name == "params" and node.ctx == "load":
        key = _key(node, ancestors)
        if key is None:
            reads.any_param = True
        else:
            reads.params.add(key)
        return
    if (
        isinstance(node, nodes.Getattr)
        and node.attr == "conf"
        and isinstance(node.node, nodes.Name)
        and node.node.name == "dag_run"
    ):
        key = _key(node, ancestors)
        if key is None:
            reads.any_conf = True
        else:
            reads.conf.add(key)
        return
    for child in node.iter_child_nodes():
        _visit(child, [*ancestors, node], reads)


def _key(node: nodes.Node, ancestors: list[nodes.Node]) -> str | None:
    """The key `node` (a mapping) is read at: ``.key``, ``['key']`` or ``.get('key')``."""
    if not ancestors:
        return None
    parent = ancestors[-1]
    if isinstance(parent, nodes.Getitem) and parent.node is node:
        constant = parent.arg
        if isinstance(constant, nodes.Const) and isinstance(constant.value, str):
            return constant.value
        return None
    if isinstance(parent, nodes.Getattr) and parent.node is node:
        called = len(ancestors) > 1 and _calls(ancestors[-2], parent)
        if parent.attr == "get" and called:
            call = ancestors[-2]
            assert isinstance(call, nodes.Call)
            first = call.args[0] if call.args else None
            if isinstance(first, nodes.Const) and isinstance(first.value, str):
                return first.value
            return None
        if parent.attr in _DICT_METHODS and called:
            return None
        return parent.attr
    return None


def _calls(node: nodes.Node, callee: nodes.Node) -> bool:
    return isinstance(node, nodes.Call) and node.node is callee


def location_templates(owner: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(argument, text) of every location of `owner` (an operator, a channel, a message) that is
    text, and of the objects with template fields it holds (channels, the message), each with
    its own `location_fields`; an object that declares none counts every template field as a
    location."""
    fields: Sequence[str] = getattr(owner, "template_fields", ())
    declared: Sequence[str] | None = getattr(owner, "location_fields", None)
    locations = set(fields if declared is None else declared)
    for field in fields:
        yield from _walk(getattr(owner, field, None), f"{prefix}{field}", field in locations)


def _walk(value: Any, path: str, is_location: bool, depth: int = 0) -> Iterator[tuple[str, str]]:
    if depth > 8:
        return
    if isinstance(value, str):
        if is_location:
            yield path, value
    elif hasattr(value, "resolve"):
        return  # an XCom or a mapped argument: a task's output, not the conf
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, f"{path}[{key!r}]", is_location, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]", is_location, depth + 1)
    elif hasattr(value, "template_fields"):
        yield from location_templates(value, f"{path}.")


def conf_redirects(
    owner: Any,
    conf: Mapping[str, Any],
    *,
    conf_may_set: Iterable[str] = (),
    conf_overrides_params: bool = True,
    environment: jinja2.Environment | None = None,
) -> list[str]:
    """Why `conf` (a run's conf) may not run `owner`: one line per location whose template
    reads a param or conf key that `conf` sets and `conf_may_set` does not list."""
    closed = set(conf) - set(conf_may_set)
    if not closed:
        return []
    problems = []
    for path, template in location_templates(owner):
        reads = template_reads(template, environment)
        named = reads.conf | (reads.params if conf_overrides_params else set())
        for name in sorted(named & closed):
            problems.append(
                f"{path}: the run's conf sets the param {name!r}, which this location reads"
                f" ({template})"
            )
        if reads.any_conf or (reads.any_param and conf_overrides_params):
            problems.append(
                f"{path}: reads params or dag_run.conf without naming a param ({template}), and"
                f" the run's conf sets {sorted(closed)}"
            )
    return problems


class TrustBoundaryOperator(BaseOperator):
    """A `BaseOperator` whose locations (`location_fields`: files, URLs, databases, connections,
    addresses) a trigger's conf cannot redirect.

    :param conf_may_set: the params a run's conf may set although a location reads them: the
        DAG author's explicit choice, e.g. ``conf_may_set=["text_template"]`` to let a run
        pick another template (still only from the allowed template folders). Read as the DAG
        file writes it, never rendered.
    """

    location_fields: Sequence[str] = ()

    def __init__(self, *, conf_may_set: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(conf_may_set, str):
            raise TypeError(f"conf_may_set: expected a list of param names, got {conf_may_set!r}")
        self.conf_may_set = tuple(conf_may_set)

    def render_template_fields(
        self, context: Any, jinja_env: jinja2.Environment | None = None
    ) -> None:
        self.refuse_conf_redirects(context, jinja_env)
        super().render_template_fields(context, jinja_env)

    def refuse_conf_redirects(
        self, context: Any, jinja_env: jinja2.Environment | None = None
    ) -> None:
        """Fail the task, without a retry (the conf stays the same), if the run's conf sets a
        param that one of its locations reads."""
        from airflow.providers.common.compat.sdk import conf as airflow_conf

        dag_run = context.get("dag_run")
        run_conf = getattr(dag_run, "conf", None) or {}
        if not run_conf:
            return
        problems = conf_redirects(
            self,
            run_conf,
            conf_may_set=self.conf_may_set,
            conf_overrides_params=airflow_conf.getboolean(
                "core", "dag_run_conf_overrides_params", fallback=True
            ),
            environment=jinja_env,
        )
        if problems:
            raise AirflowFailException(
                "; ".join(problems) + ". A trigger's conf may not choose the files, URLs,"
                " databases, connections or addresses a task uses: take them from the DAG file or"
                " the deployment (an environment variable, a Variable, a connection), or let conf"
                " set such a param on purpose with conf_may_set=[...] on the operator or the task"
                " group"
            )
