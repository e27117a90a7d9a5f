"""The declarative source mapping (mapping.yaml): which tables ingest accepts, how a row is
keyed and tied to a person, each column's type, and which columns are personal.

Everything ingest does with a row — checking it, finding its resident, splitting what may
leave ingest from what stays in the vault — reads this one file, for native events and
for Debezium changes alike.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from shared.events import Scalar

DEFAULT_MAPPING_PATH = Path(__file__).resolve().parent.parent / "mapping.yaml"
VAULT_FIELDS = frozenset(
    {
        "given_name",
        "family_name",
        "date_of_birth",
        "address_line_1",
        "address_line_2",
        "address_line_3",
        "town",
        "postcode",
        "uprn",
        "ward",
        "preferred_language",
    }
)
PYTHON_TYPES: dict[str, Any] = {
    "text": str,
    "int": int,
    "numeric": float,
    "bool": bool,
    "date": date,
    "timestamp": datetime,
}


class InvalidRow(ValueError):
    """A row that does not match its table's mapping; the message names the columns."""


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "int", "numeric", "bool", "date", "timestamp"] | list[str]
    required: bool = False
    pii: bool = False
    vault: bool = False
    min: float | None = None
    max: float | None = None
    age_as: str | None = None
    flag_as: str | None = None

    def python_type(self) -> Any:
        if isinstance(self.type, list):
            return Literal[tuple(self.type)]
        return PYTHON_TYPES[self.type]


class TableMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: list[str] = Field(min_length=1)
    person: str | None = None
    link: str | None = None
    columns: dict[str, Column] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> TableMapping:
        missing = [c for c in [*self.key, self.person] if c and c not in self.columns]
        if missing:
            raise ValueError(f"key or person column not among the columns: {missing}")
        if (self.person is None) == (self.link is None):
            raise ValueError("give exactly one of `person` (a column) or `link` (a table)")
        return self

    @cached_property
    def row_model(self) -> type[BaseModel]:
        fields: dict[str, Any] = {}
        for name, column in self.columns.items():
            annotation = column.python_type()
            constraints: dict[str, Any] = {
                k: v for k, v in (("ge", column.min), ("le", column.max)) if v is not None
            }
            if column.required:
                fields[name] = (annotation, Field(..., **constraints))
            else:
                fields[name] = (annotation | None, Field(None, **constraints))
        return create_model("Row", __config__=ConfigDict(extra="forbid"), **fields)

    def record_key(self, record: dict[str, Any]) -> str:
        return "|".join(str(record[column]) for column in self.key)


class SourceMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    tables: dict[str, TableMapping] = Field(min_length=1)

    @model_validator(mode="after")
    def _links_resolve(self) -> SourceMapping:
        for name, table in self.tables.items():
            if table.link is not None:
                target = self.tables.get(table.link)
                if target is None or target.person is None:
                    raise ValueError(f"{name}: link `{table.link}` is not a table with a person")
                if target.key != table.key:
                    raise ValueError(f"{name}: link `{table.link}` must share its key {table.key}")
            unknown = [c for c, col in table.columns.items() if col.vault and c not in VAULT_FIELDS]
            if unknown:
                raise ValueError(f"{name}: the vault has no place for {unknown}")
        return self

    def table(self, name: str) -> TableMapping:
        try:
            return self.tables[name]
        except KeyError:
            raise InvalidRow(f"unknown table `{name}`: ingest is not mapped to accept it") from None

    def validate_row(self, table_name: str, record: dict[str, Any]) -> dict[str, Any]:
        """The row, type-checked and converted; InvalidRow names every column at fault."""
        table = self.table(table_name)
        try:
            row = table.row_model.model_validate(record)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}"
                for e in error.errors()
            )
            raise InvalidRow(f"{table_name} row is not valid: {problems}") from error
        return row.model_dump()

    def validate_key(self, table_name: str, record: dict[str, Any]) -> str:
        """A delete may carry only the row's key; return it or name what is missing."""
        table = self.table(table_name)
        missing = [column for column in table.key if record.get(column) in (None, "")]
        if missing:
            raise InvalidRow(f"{table_name} delete needs its key column(s) {missing}")
        return table.record_key(record)

    def public_attributes(
        self, table_name: str, row: dict[str, Any], on: date
    ) -> dict[str, Scalar]:
        """What may leave ingest: no personal column and no person reference; an age in
        whole years and a presence flag where the mapping asks for them."""
        table = self.tables[table_name]
        attributes: dict[str, Scalar] = {}
        for name, column in table.columns.items():
            value = row.get(name)
            if column.age_as and isinstance(value, date):
                attributes[column.age_as] = years_between(value, on)
            if column.flag_as:
                attributes[column.flag_as] = value is not None
            if column.pii or name == table.person:
                continue
            attributes[name] = value.isoformat() if isinstance(value, date | datetime) else value
        return attributes

    def vault_fields(self, table_name: str, row: dict[str, Any]) -> dict[str, Any]:
        table = self.tables[table_name]
        return {name: row.get(name) for name, column in table.columns.items() if column.vault}

    def column_types(self, table_name: str) -> dict[str, Column]:
        return self.tables[table_name].columns


def years_between(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def load_mapping(path: Path = DEFAULT_MAPPING_PATH) -> SourceMapping:
    """Read and check the mapping; a mistake stops start-up naming the file and the fault."""
    try:
        return SourceMapping.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise ValueError(f"The source mapping {path} is not valid: {error}") from error
