"""How an operator or sensor exposes the fields of an argument object (`ExpiryWindow`,
`CustomerSource`) as its own attributes, so that its public argument names, its template
fields and Airflow's rendering stay as they are while the rules live in the object."""

from __future__ import annotations

from typing import Any


class Delegated:
    """An attribute stored on the argument object held in `holder`: reading it reads the
    object's field of the same name, and Airflow's rendering writes the object's field."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return getattr(getattr(instance, self.holder), self.name)

    def __set__(self, instance: object, value: Any) -> None:
        setattr(getattr(instance, self.holder), self.name, value)
