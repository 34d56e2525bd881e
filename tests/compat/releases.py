"""The Airflow releases the provider supports, each installed as a user of that release would
have installed it: Airflow and its dependencies as of the day after the release (uv's
``--exclude-newer``), then the provider's wheel.

The provider needs apache-airflow-providers-common-compat >= COMMON_COMPAT_FLOOR. Releases older
than that floor get the floor itself (the newest common-compat of the floor's day), which is
what their users must upgrade to; this also proves that the floor is enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

UV = str(Path(__file__).resolve().parents[2] / "scripts" / "uv")
PYTHON = "3.11"  # the only interpreter on the machines the matrix runs on
COMMON_COMPAT_FLOOR = "1.12.0"
COMMON_COMPAT_FLOOR_DAY = "2026-01-18"  # the day after 1.12.0 was published


@dataclass(frozen=True)
class Release:
    airflow: str
    as_of: str  # dependencies published before this day
    # common-compat published before this day (None: as_of), for releases older than the floor
    common_compat_as_of: str | None = None
    # The connection form's widgets of Airflow 3.0 and 3.1 need wtforms, which only the FAB
    # provider brings (docs/connection.md says so); 2.11 has FAB, 3.2+ reads conn-fields instead.
    wtforms: bool = False

    @property
    def name(self) -> str:
        return f"airflow-{self.airflow}"

    def requirements(self) -> list[str]:
        wtforms = ["wtforms"] if self.wtforms else []
        return [f"apache-airflow=={self.airflow}", *wtforms]

    def uv_pip_options(self) -> list[str]:
        compat = self.common_compat_as_of or self.as_of
        return [
            "--exclude-newer", self.as_of,
            "--exclude-newer-package", f"apache-airflow-providers-common-compat={compat}",
        ]  # fmt: skip

    def uv_pip_install(self, venv: Path, *arguments: str) -> list[str]:
        """The command installing `arguments` into `venv` (made by `uv_venv`) with this release's
        dependencies as of its date."""
        # --no-config: the project's own uv settings (its pin of the newest Airflow) stay out.
        return [
            UV, "pip", "install", "--quiet", "--no-config",
            "--python", str(venv / "bin" / "python"), *self.uv_pip_options(), *arguments,
        ]  # fmt: skip

    def uv_pip_compile(self, requirements: Path, output: Path) -> list[str]:
        """The command pinning `requirements` (with this release's options) into `output`."""
        return [
            UV, "pip", "compile", "--quiet", "--no-config", "--no-header", "--python-version",
            PYTHON, *self.uv_pip_options(), str(requirements), "--output-file", str(output),
        ]  # fmt: skip


def uv_venv(venv: Path, *, seed: bool = False) -> list[str]:
    """The command creating a fresh venv of the matrix's Python (`seed`: with pip in it)."""
    return [UV, "venv", "--quiet", *(["--seed"] if seed else []), "--python", PYTHON, str(venv)]


RELEASES = (
    Release("2.11.2", as_of="2026-03-15"),
    Release("3.0.6", as_of="2025-08-30", common_compat_as_of=COMMON_COMPAT_FLOOR_DAY, wtforms=True),
    Release("3.1.0", as_of="2025-09-26", common_compat_as_of=COMMON_COMPAT_FLOOR_DAY, wtforms=True),
    Release("3.1.8", as_of="2026-03-12", wtforms=True),
    Release("3.2.2", as_of="2026-05-30"),
    Release("3.3.2", as_of="2026-09-18"),
)
