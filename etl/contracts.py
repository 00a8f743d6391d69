"""Load and validate the YAML contracts.

Two kinds of contract, both data, read by the code instead of repeated in it:
- schemas/shared/<table>.yml: one shared table (grain, keys, columns with type,
  security level, sharing and open category, and the column-level checks its
  Great Expectations suite is built from: etl.validate.suites);
- schemas/sources/<source>.yml: one department source (kind, location or
  connection id, encoding, field map into a shared table, transforms,
  incremental key, schedule, trust rank per attribute).

A field map never drops a delivered value: every field says where it goes (`to:
null` declares it kept in raw only), several fields into one column need a
`combine` rule for that column (join, first_non_empty, date_parts), and a
delivered field the contract does not declare is schema drift (policy fail: the
file fails; warn: kept in raw and recorded in meta.source_error).

A malformed contract raises ContractError naming the file, the key and the problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from etl import reference
from etl.config import Settings, get_settings
from etl.errors import ContractError
from etl.quality import REASONS

ColumnType = Literal["string", "integer", "decimal", "date", "boolean", "timestamp"]
#: The DuckDB type of each contract column type (the warehouse's views and the core tables).
DUCKDB_TYPES: dict[str, str] = {
    "string": "varchar",
    "integer": "bigint",
    "decimal": "double",
    "date": "date",
    "boolean": "boolean",
    "timestamp": "timestamp",
}
SecurityLevel = Literal["L1", "L2", "L3", "L4"]
SharingCategory = Literal["unconditional", "conditional", "not_shared"]
OpenCategory = Literal["unconditional", "conditional", "not_open"]
DataGrade = Literal["general", "important", "core"]
#: golden-record survivorship rules, applied in the declared order (then a deterministic tie-break)
SurvivorshipRule = Literal["trust", "recent", "complete", "frequent"]
MaskKind = Literal["none", "resident_id", "name", "phone", "address", "date", "credit_code", "redact"]
SourceKind = Literal["csv", "excel", "json", "xml", "sql", "fixed_width"]
Encoding = Literal["auto", "utf-8", "utf-8-sig", "gbk", "gb18030"]

#: Transforms a field map may name; etl.normalize implements each one.
KNOWN_TRANSFORMS = frozenset(
    {
        "resident_id",  # full/half width, spaces, zero-width, x->X, 15->18, checksum
        "credit_code",  # unified social credit code cleanup + checksum
        "date",  # 1985年3月2日, 1985-03-02, 1985/3/2, 19850302, 1985.03.02, Excel serials (1900 system)
        "date_1904",  # Excel serials in the 1904 date system
        "gender",  # 1/2, 男/女, M/F, male/female -> GB/T 2261.1
        "marital_status",  # names or codes -> GB/T 2261.2
        "ethnicity",  # names or codes -> GB/T 3304 two-digit code
        "name",  # person or organisation name cleanup
        "address",  # address cleanup
        "phone",  # mobile / landline normalization
        "amount_cny",  # 100万元, 1.5亿 -> CNY
        "region",  # administrative division code (GB/T 2260)
        "integer",
        "decimal",
        "text",  # trim, full-width to half-width, zero-width removed
        "boolean",  # 是/否, Y/N, 1/0, true/false
        "entity_status",  # registration status names -> code list
        "entity_type",  # enterprise type names -> code list
    }
)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _snake_case(what: str) -> Callable[[str], str]:
    """A check that a name is snake_case ascii; `what` names it in the error."""

    def check(v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"{what} {v!r} must be snake_case ascii")
        return v

    return check


ColumnName = Annotated[str, AfterValidator(_snake_case("column name"))]
SourceName = Annotated[str, AfterValidator(_snake_case("source name"))]
#: Characters a CSV delimiter cannot be: they end a line, quote a field, or are data.
_BAD_DELIMITERS = frozenset({"\n", "\r", '"', "\x00"})


def _known_transforms(v: list[str]) -> list[str]:
    unknown = [t for t in v if t not in KNOWN_TRANSFORMS]
    if unknown:
        raise ValueError(
            f"unknown transform(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_TRANSFORMS))}"
        )
    return v


#: A list of transform names, each one of etl.normalize.TRANSFORMS.
TransformNames = Annotated[list[str], AfterValidator(_known_transforms)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- shared tables
CheckKind = Literal["not_null", "unique", "accepted_values", "pattern", "range", "resident_id", "credit_code"]

#: The quarantine reason (etl.quality.REASONS) of a failing check when it names none.
DEFAULT_REASONS: dict[str, str] = {
    "not_null": "missing_required",
    "unique": "duplicate_key",
    "accepted_values": "invalid_code",
    "pattern": "invalid_code",
    "range": "out_of_range",
    "resident_id": "resident_id_checksum",
    "credit_code": "credit_code_checksum",
}
#: The column types each check applies to.
CHECK_TYPES: dict[str, frozenset[str]] = {
    "not_null": frozenset(ColumnType.__args__),  # type: ignore[attr-defined]
    "unique": frozenset(ColumnType.__args__),  # type: ignore[attr-defined]
    "accepted_values": frozenset({"string"}),
    "pattern": frozenset({"string"}),
    "range": frozenset({"integer", "decimal"}),
    "resident_id": frozenset({"string"}),
    "credit_code": frozenset({"string"}),
}
#: The argument a check written as `{kind: value}` gives (the others take a mapping or nothing).
_SHORT_ARG = {"accepted_values": "code_list", "pattern": "regex"}


class Check(_Strict):
    """One column-level check, written beside the column as dbt writes tests:

        checks: [not_null, unique, resident_id, {accepted_values: gender},
                 {pattern: "^[0-9]{4}$"}, {range: {min: 0, max: 1000000, reason: invalid_amount}}]

    accepted_values names a code list of schemas/reference (never a copy of it);
    every check may name its quarantine `reason` (default: DEFAULT_REASONS)."""

    kind: CheckKind
    code_list: str | None = None
    regex: str | None = None
    min: float | None = None
    max: float | None = None
    reason: str = ""

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = {v: None}
        if not isinstance(v, dict) or "kind" in v:
            return v
        if len(v) != 1:
            raise ValueError(f"a check is one name or a mapping of one name, not {sorted(v)}")
        ((kind, arg),) = v.items()
        if kind not in CHECK_TYPES:
            raise ValueError(f"unknown check {kind!r}; known: {', '.join(CHECK_TYPES)}")
        if arg is None:
            return {"kind": kind}
        if isinstance(arg, dict):
            return {"kind": kind, **arg}
        if kind in _SHORT_ARG:
            return {"kind": kind, _SHORT_ARG[kind]: arg}
        raise ValueError(f"check {kind} takes a mapping (e.g. {{reason: ...}}), not {arg!r}")

    @model_validator(mode="after")
    def _args(self) -> Check:
        args = {"code_list": self.code_list, "regex": self.regex, "min": self.min, "max": self.max}
        wanted = {"accepted_values": {"code_list"}, "pattern": {"regex"}, "range": {"min", "max"}}.get(
            self.kind, set()
        )
        extra = sorted(k for k, v in args.items() if v is not None and k not in wanted)
        if extra:
            raise ValueError(f"check {self.kind} takes no {', '.join(extra)}")
        if self.kind == "accepted_values" and not self.code_list:
            raise ValueError("check accepted_values needs code_list: the name of a list in schemas/reference")
        if self.kind == "pattern":
            if not self.regex:
                raise ValueError("check pattern needs regex")
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"pattern {self.regex!r} is not a regular expression: {exc}") from None
        if self.kind == "range":
            if self.min is None and self.max is None:
                raise ValueError("check range needs min, max or both")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(f"check range has min {self.min:g} > max {self.max:g}")
        if self.reason and self.reason not in REASONS:
            raise ValueError(f"unknown reason {self.reason!r}; known: {', '.join(sorted(REASONS))}")
        if not self.reason:
            object.__setattr__(self, "reason", DEFAULT_REASONS[self.kind])
        return self


class Column(_Strict):
    name: ColumnName
    type: ColumnType
    description: str = Field(min_length=1)
    nullable: bool = Field(True, description="False adds a not_null check")
    security_level: SecurityLevel
    sharing: SharingCategory
    open: OpenCategory
    mask: MaskKind = "none"
    survivorship: list[SurvivorshipRule] | None = Field(
        None, min_length=1, description="how core picks this attribute among a master's records"
    )
    checks: list[Check] = Field(default_factory=list)

    @field_validator("checks")
    @classmethod
    def _applies(cls, v: list[Check], info: ValidationInfo) -> list[Check]:
        ctype = info.data.get("type")
        for i, c in enumerate(v):
            if ctype is not None and ctype not in CHECK_TYPES[c.kind]:
                allowed = " or ".join(sorted(CHECK_TYPES[c.kind]))
                raise ValueError(f"checks[{i}]: {c.kind} applies to {allowed} columns, not {ctype}")
        return v


class SharedTable(_Strict):
    name: str
    description: str = Field(min_length=1)
    grain: str = Field(min_length=1, description="one row per ...")
    keys: list[str] = Field(min_length=1)
    data_grade: DataGrade = "general"
    columns: list[Column] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> SharedTable:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate columns: {', '.join(dupes)}")
        missing = [k for k in self.keys if k not in names]
        if missing:
            raise ValueError(f"keys not among the columns: {', '.join(missing)}")
        return self

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


# ---------------------------------------------------------------- sources
class FieldMap(_Strict):
    """One delivered field: its name as delivered, where it goes, how it is cleaned.

    `to` must be written out: a shared column, or `null` for a field declared and
    kept in raw only (the raw layer and the quarantine keep every delivered field;
    no staged column gets it). Several fields with the same `to` need a rule in the
    source's `combine` (see Combine); without one the contract does not load.
    """

    name: str = Field(min_length=1, description="field name as delivered (dotted path in JSON)")
    to: str | None = Field(description="shared column; null: declared and kept in raw only")
    transforms: TransformNames = Field(default_factory=list)
    trust: int = Field(5, ge=0, le=10, description="survivorship rank of this attribute")
    required: bool = Field(True, description="must be present in every delivery")
    # fixed-width only: 0-based start offset and width in characters
    start: int | None = Field(None, ge=0)
    width: int | None = Field(None, gt=0)


#: Rules that combine several delivered fields into one column (Combine.rule); the
#: named ones are implemented in etl.normalize.combine.
COMBINE_RULES = frozenset({"join", "first_non_empty", "date_parts"})


class Combine(_Strict):
    """How several delivered fields mapped to one column make its value (Source.combine).

    The fields take part in the order they are declared in `fields`; each first goes
    through its own transforms. Then, by `rule`:
    - join: the non-empty parts (as text) joined with `separator` (required: "" for
      surname + given name, " " or "" for province + city + street); a part whose own
      transform failed leaves the column null (the row is quarantined for that part);
    - first_non_empty: the first field with a value wins, typed as the column; every
      later field holding a different value is a finding `field_disagreement`
      (recorded with source, file, row and both values masked; the row is kept);
    - date_parts: three fields year, month, day (in that order) make one date.
    `transforms` run on the combined value (join, date_parts), before it takes the
    column's type.
    """

    rule: str = Field(description="join | first_non_empty | date_parts")
    separator: str | None = Field(None, description="join only: put between the non-empty parts")
    transforms: TransformNames = Field(default_factory=list, description="run on the combined value")

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, v: str) -> str:
        if v not in COMBINE_RULES:
            raise ValueError(f"unknown combine rule {v!r}; known: {', '.join(sorted(COMBINE_RULES))}")
        return v

    @model_validator(mode="after")
    def _check(self) -> Combine:
        if self.rule == "join" and self.separator is None:
            raise ValueError('rule join needs a separator (write separator: "" to join without one)')
        if self.rule != "join" and self.separator is not None:
            raise ValueError(f"separator is for rule join, not {self.rule}")
        if self.rule == "first_non_empty" and self.transforms:
            raise ValueError("rule first_non_empty takes no transforms: each field's own transforms apply")
        return self


class Unpivot(_Strict):
    """Wide statistical tables: columns matching `pattern` become rows."""

    pattern: str = Field(description="regex over delivered field names; group 1 is the variable value")
    variable_to: str
    value_to: str
    value_transforms: TransformNames = Field(default_factory=lambda: ["decimal"])

    @field_validator("pattern")
    @classmethod
    def _regex_with_group(cls, v: str) -> str:
        try:
            groups = re.compile(v).groups
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if groups < 1:
            raise ValueError("needs a group: group 1 of the matching field name is the variable value")
        return v

    @model_validator(mode="after")
    def _two_columns(self) -> Unpivot:
        if self.variable_to == self.value_to:
            raise ValueError(
                f"variable_to and value_to are both {self.value_to}: one would overwrite the other"
            )
        return self


class VolumeBand(_Strict):
    """Batch rows relative to the previous batch of the same source."""

    min_ratio: float = Field(0.5, ge=0)
    max_ratio: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> VolumeBand:
        if self.min_ratio > self.max_ratio:
            raise ValueError(
                f"min_ratio {self.min_ratio} above max_ratio {self.max_ratio}: no batch could pass"
            )
        return self


class Source(_Strict):
    name: SourceName
    department: str = Field(min_length=1, description="department code, e.g. public_security")
    department_name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    table: str
    kind: SourceKind
    location: str | None = Field(None, description="glob under landing/<name>/ (file kinds)")
    connection_id: str | None = Field(None, description="Airflow connection id (sql kind)")
    default_url: str | None = Field(
        None, description="credential-free fallback URL for the embedded demo (sql kind)"
    )
    sql_table: str | None = None
    encoding: Encoding = "auto"
    delimiter: str = Field(",", description="csv: one character between fields (see _one_char)")
    header_rows: int = Field(1, ge=0, le=5)
    skip_rows: int = Field(0, ge=0)
    sheet: str | int = 0
    record_tag: str | None = Field(None, description="xml: element holding one record")
    file_date_pattern: str | None = Field(
        None,
        description="regex whose group 1 is the delivery date YYYYMMDD in a file name: a run for "
        "logical date D takes only files delivered on or before D (backfills process each drop once)",
    )
    incremental_key: str | None = None
    record_key: list[str] = Field(
        default_factory=list,
        description="delivered field(s) identifying one record of this source across deliveries "
        "(its own record number where it has one); normalize fills the table's record_key column",
    )
    schedule: str | None = "@daily"
    schema_drift: Literal["fail", "warn"] = "fail"
    chunk_rows: int = Field(100_000, gt=0)
    max_field_chars: int = Field(
        10_000,
        gt=0,
        description="longest delivered value taken as it is; a longer one flags its row (it is "
        "mostly a quote left open that swallowed the rows after it)",
    )
    max_field_lines: int = Field(
        1,
        ge=1,
        description="csv: physical lines one record may span (line breaks inside its quoted fields, "
        "plus one); 1 = no line break inside a field. A quote still open after that many lines "
        "is reported at the line where it opened",
    )
    volume_band: VolumeBand = Field(default_factory=VolumeBand)
    max_null_rate: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)
    unpivot: Unpivot | None = None
    owner: str = "govbase"
    tags: list[str] = Field(default_factory=list)
    fields: list[FieldMap] = Field(min_length=1)
    # after `fields`: its validator reads them
    combine: dict[str, Combine] = Field(
        default_factory=dict,
        validate_default=True,
        description="column -> how the several fields mapped to it make its value",
    )

    @field_validator("combine")
    @classmethod
    def _rule_per_shared_column(cls, v: dict[str, Combine], info: ValidationInfo) -> dict[str, Combine]:
        """Two fields into one column without a rule would drop one of them: refused."""
        fields: list[FieldMap] = info.data.get("fields") or []
        by_column: dict[str, list[str]] = {}
        for f in fields:
            if f.to is not None:
                by_column.setdefault(f.to, []).append(f.name)
        for column, names in by_column.items():
            if len(names) > 1 and column not in v:
                raise ValueError(
                    f"fields {', '.join(names)} all map to column {column} without a rule: declare "
                    f"combine: {{{column}: {{rule: join, separator: ...}}}} (or rule first_non_empty, "
                    "date_parts), or map all but one to null (kept in raw only)"
                )
        for column, rule in v.items():
            names = by_column.get(column, [])
            if len(names) < 2:
                raise ValueError(
                    f"combine.{column}: needs two or more fields mapped to {column}, "
                    f"got {', '.join(names) or 'none'}"
                )
            if rule.rule == "date_parts" and len(names) != 3:
                raise ValueError(
                    f"combine.{column}: rule date_parts takes three fields (year, month, day), "
                    f"got {', '.join(names)}"
                )
        return v

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str) -> str:
        # Both CSV readers (pyarrow's and Python's csv module) and the quoting rules are
        # defined for one character. A "delimiter" such as ", " is a comma followed by
        # padding: declare "," and let the field's transforms (text, name, ...) trim it.
        if len(v) != 1:
            hint = (
                f" (declare {v.strip()[0]!r} and trim the padding with a transform such as text)"
                if len(v) > 1 and v.strip()
                else ""
            )
            raise ValueError(f"delimiter must be exactly one character, got {v!r}{hint}")
        if v in _BAD_DELIMITERS or v.isalnum():
            raise ValueError(
                f"delimiter {v!r} cannot separate fields: not a line break, quote, NUL, letter or digit"
            )
        return v

    @model_validator(mode="after")
    def _check_kind(self) -> Source:
        self._check_where()
        self._check_fields()
        self._check_record_key()
        return self

    def _check_where(self) -> None:
        """Where the deliveries come from: a connection and table, or a landing glob."""
        if self.kind == "sql":
            if not self.connection_id:
                raise ValueError("a sql source needs connection_id")
            if not self.sql_table:
                raise ValueError("a sql source needs sql_table")
        elif not self.location:
            raise ValueError(f"a {self.kind} source needs location (a glob under its landing folder)")
        if self.location and (self.location.startswith("/") or ".." in Path(self.location).parts):
            raise ValueError("location must stay inside the landing folder (no absolute path, no '..')")
        if self.file_date_pattern is not None:
            try:
                groups = re.compile(self.file_date_pattern).groups
            except re.error as exc:
                raise ValueError(f"file_date_pattern is not a regular expression: {exc}") from None
            if groups < 1:
                raise ValueError("file_date_pattern needs a group capturing YYYYMMDD")
        if self.kind == "xml" and not self.record_tag:
            raise ValueError("an xml source needs record_tag")

    def _check_fields(self) -> None:
        """The declared fields: spans for fixed width, no name twice, the watermark among them."""
        if self.kind == "fixed_width":
            bad = [f.name for f in self.fields if f.start is None or f.width is None]
            if bad:
                raise ValueError(f"fixed_width fields need start and width: {', '.join(bad)}")
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate fields: {', '.join(dupes)}")
        if self.incremental_key and self.incremental_key not in names:
            raise ValueError(f"incremental_key {self.incremental_key!r} is not a declared field")

    def _check_record_key(self) -> None:
        """record_key names declared fields, each once, and one record gives one row."""
        names = [f.name for f in self.fields]
        unknown = [k for k in self.record_key if k not in names]
        if unknown:
            raise ValueError(f"record_key field(s) not declared in fields: {', '.join(unknown)}")
        if len(set(self.record_key)) != len(self.record_key):
            raise ValueError("record_key names a field twice")
        if self.record_key and self.unpivot is not None:
            raise ValueError("record_key is not supported with unpivot (one record gives several rows)")

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def column_of(self, field: str) -> str | None:
        """The shared column a delivered field feeds: its `to`, else the unpivot's value column
        for a field name its pattern takes (the field's values become rows), else None."""
        declared = next((f for f in self.fields if f.name == field), None)
        if declared is not None and declared.to is not None:
            return declared.to
        if self.unpivot is not None and re.search(self.unpivot.pattern, field):
            return self.unpivot.value_to
        return None

    def trust_by_column(self) -> dict[str, int]:
        """Trust of each mapped column; a combined column takes its most trusted field's."""
        out: dict[str, int] = {}
        for f in self.fields:
            if f.to:
                out[f.to] = max(out.get(f.to, f.trust), f.trust)
        return out


# ---------------------------------------------------------------- loading
def _loc(err: dict[str, Any]) -> str:
    parts: list[str] = []
    for p in err["loc"]:
        if isinstance(p, int):
            parts[-1:] = [f"{parts[-1]}[{p}]"] if parts else [f"[{p}]"]
        else:
            parts.append(str(p))
    return ".".join(parts) or "(top level)"


#: libyaml's safe loader where PyYAML was built with it (several times faster: every run
#: parses the contracts), else the pure-Python one; both load the same documents
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(parse)"
        raise ContractError(str(path), where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    except UnicodeDecodeError as exc:
        raise ContractError(str(path), "(file)", f"not UTF-8: {exc}") from exc
    if not isinstance(data, dict):
        raise ContractError(str(path), "(top level)", "expected a mapping")
    return data


def parse_contract(model: type[BaseModel], path: Path) -> Any:
    """A YAML contract file as `model`, whose `name` must be the file's stem; any problem
    is a ContractError naming the file and where in it."""
    data = _read_yaml(path)
    try:
        obj = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ContractError(str(path), _loc(dict(first)), first["msg"] + more) from exc
    if obj.name != path.stem:  # type: ignore[attr-defined]
        raise ContractError(str(path), "name", f"must equal the file stem {path.stem!r}")
    return obj


def load_shared_table(path: Path) -> SharedTable:
    return parse_contract(SharedTable, path)  # type: ignore[no-any-return,unused-ignore]


def load_source(path: Path) -> Source:
    return parse_contract(Source, path)  # type: ignore[no-any-return,unused-ignore]


class Contracts(BaseModel):
    """All contracts of a project, cross-checked."""

    model_config = ConfigDict(frozen=True)
    tables: dict[str, SharedTable]
    sources: dict[str, Source]

    def source(self, name: str) -> Source:
        try:
            return self.sources[name]
        except KeyError:
            raise ContractError(
                "schemas/sources", name, f"no such source; known: {', '.join(sorted(self.sources))}"
            ) from None

    def table_of(self, source: str) -> SharedTable:
        return self.tables[self.source(source).table]


def _check_code_lists(schemas_dir: Path, table: SharedTable) -> None:
    """Every accepted_values check names a code list of schemas/reference that can be read."""
    known = reference.code_list_names(schemas_dir / "reference")
    for i, col in enumerate(table.columns):
        for j, check in enumerate(col.checks):
            if check.code_list is None:
                continue
            where = f"columns[{i}].checks[{j}].code_list"
            if check.code_list not in known:
                raise ContractError(
                    str(schemas_dir / "shared" / f"{table.name}.yml"),
                    where,
                    f"no code list {check.code_list!r} in schemas/reference; known: {', '.join(known) or 'none'}",
                )
            reference.code_list(schemas_dir / "reference", check.code_list)  # readable, or ContractError


def load_contracts(schemas_dir: Path) -> Contracts:
    """Load every contract under schemas_dir and check sources against tables."""
    tables = {p.stem: load_shared_table(p) for p in sorted((schemas_dir / "shared").glob("*.yml"))}
    for shared in tables.values():
        _check_code_lists(schemas_dir, shared)
    sources: dict[str, Source] = {}
    for p in sorted((schemas_dir / "sources").glob("*.yml")):
        src = load_source(p)
        table = tables.get(src.table)
        if table is None:
            raise ContractError(
                str(p), "table", f"unknown shared table {src.table!r}; known: {', '.join(sorted(tables))}"
            )
        cols = set(table.column_names)
        for i, f in enumerate(src.fields):
            if f.to is not None and f.to not in cols:
                raise ContractError(str(p), f"fields[{i}].to", f"{f.to!r} is not a column of {table.name}")
        if src.unpivot:
            _check_unpivot(p, src, table)
        _check_record_key(p, src, table)
        for col in src.max_null_rate:
            if col not in cols:
                raise ContractError(str(p), f"max_null_rate.{col}", f"not a column of {table.name}")
        sources[src.name] = src
    if (schemas_dir / "resolve").is_dir():  # linkage settings are contracts too: checked here
        from etl.resolve.config import load_resolve_configs

        load_resolve_configs(schemas_dir, tables)
    from etl.publish.grants import load_sharing  # grants are contracts too: checked here

    load_sharing(schemas_dir, tables)
    from etl.descriptions import load_descriptions  # the warehouse's descriptions: checked here

    load_descriptions(schemas_dir)
    from etl.publish.openspec import load_open  # so are the open datasets (schemas/open/)

    load_open(schemas_dir, tables)
    return Contracts(tables=tables, sources=sources)


def _check_unpivot(path: Path, src: Source, table: SharedTable) -> None:
    """Unpivot's columns exist, take no field besides (one would overwrite the other),
    and the variable (text captured from a field name) goes to a string column."""
    up = src.unpivot
    assert up is not None
    mapped = {f.to for f in src.fields}
    for key in ("variable_to", "value_to"):
        column = getattr(up, key)
        if column not in table.column_names:
            raise ContractError(str(path), f"unpivot.{key}", f"not a column of {table.name}")
        if column in mapped:
            raise ContractError(
                str(path),
                f"unpivot.{key}",
                f"{column} is also the `to` of a field: one would overwrite the other",
            )
    if table.column(up.variable_to).type != "string":
        raise ContractError(
            str(path),
            "unpivot.variable_to",
            f"{up.variable_to} is {table.column(up.variable_to).type}; the variable is text from a field name",
        )


#: The shared column normalize fills from a source's declared `record_key` fields.
RECORD_KEY = "record_key"


def _check_record_key(path: Path, src: Source, table: SharedTable) -> None:
    """A table with a record_key column needs every source to declare its record key
    (else every row would have a null key); a source declaring one needs the column."""
    for i, f in enumerate(src.fields):
        if f.to == RECORD_KEY:
            raise ContractError(
                str(path), f"fields[{i}].to", f"{RECORD_KEY!r} is filled from record_key, not mapped"
            )
    has_column = RECORD_KEY in table.column_names
    if src.record_key and not has_column:
        raise ContractError(str(path), "record_key", f"{table.name} has no {RECORD_KEY!r} column to fill")
    if has_column and not src.record_key:
        raise ContractError(
            str(path),
            "record_key",
            f"missing: {table.name} has a {RECORD_KEY!r} column; declare the delivered field(s) "
            "identifying one record of this source",
        )


@lru_cache(maxsize=8)
def _cached(schemas_dir: str, version: tuple[tuple[str, int, int], ...]) -> Contracts:
    return load_contracts(Path(schemas_dir))


def _version(schemas_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """The contract and code list files with their mtime and size: an edit loads anew."""
    files = sorted(p for p in schemas_dir.rglob("*") if p.suffix in (".yml", ".csv") and p.is_file())
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def get_contracts(settings: Settings | None = None) -> Contracts:
    """The project's contracts, loaded once per version of the files (a long-lived process,
    such as a replay after a contract fix, sees the edit)."""
    settings = settings or get_settings()
    return _cached(str(settings.schemas_dir), _version(settings.schemas_dir))


__all__ = [
    "CHECK_TYPES",
    "COMBINE_RULES",
    "DEFAULT_REASONS",
    "KNOWN_TRANSFORMS",
    "RECORD_KEY",
    "Check",
    "Column",
    "Combine",
    "Contracts",
    "FieldMap",
    "SharedTable",
    "Source",
    "Unpivot",
    "VolumeBand",
    "get_contracts",
    "load_contracts",
    "load_shared_table",
    "load_source",
]
