"""A light base for returned objects: named attributes, extra fields kept, ``to_dict()``; no validation cost."""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Mapping, Tuple, Type, TypeVar

__all__ = ["Model", "ModelT"]

#: A ``Model`` subclass: ``from_dict`` returns an instance of the class it is called on.
ModelT = TypeVar("ModelT", bound="Model")


def _plain(value: Any) -> Any:
    if isinstance(value, Model):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Model:
    """Attributes named by ``FIELDS`` (missing ones are None); unknown server fields are kept.

    Attribute-compatible with the official 4.2.0 client's pydantic models for reading, without
    their per-object validation cost.
    """

    __slots__ = ("_extra",)
    FIELDS: ClassVar[Tuple[str, ...]] = ()
    #: ``field -> Model subclass`` for nested objects.
    NESTED: ClassVar[Dict[str, Any]] = {}

    def __init__(self, **values: Any) -> None:
        extra: Dict[str, Any] = {}
        for name in self.FIELDS:
            object.__setattr__(self, name, values.pop(name, None))
        extra.update(values)
        object.__setattr__(self, "_extra", extra)

    @classmethod
    def from_dict(cls: Type[ModelT], data: Mapping[str, Any]) -> ModelT:
        values = dict(data)
        for name, kind in cls.NESTED.items():
            value = values.get(name)
            if isinstance(value, Mapping):
                values[name] = kind.from_dict(value)
            elif isinstance(value, list):
                values[name] = [kind.from_dict(v) if isinstance(v, Mapping) else v for v in value]
        return cls(**values)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not slots: the server's extra fields.
        try:
            return object.__getattribute__(self, "_extra")[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}") from None

    def to_dict(self) -> Dict[str, Any]:
        """The fields that are set (None ones left out) plus the extra ones, as plain data."""
        out = {name: _plain(getattr(self, name)) for name in self.FIELDS if getattr(self, name) is not None}
        out.update({k: _plain(v) for k, v in self._extra.items()})
        return out

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"{type(self).__name__}({inner})"
