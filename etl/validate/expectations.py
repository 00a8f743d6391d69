"""govbase's custom Great Expectations (pandas engine).

Importing this module registers them with GE:
- expect_column_values_to_be_valid_resident_id   (GB 11643-1999 checksum and structure)
- expect_column_values_to_be_valid_credit_code   (GB 32100-2015 checksum and alphabet)
- expect_resident_id_to_agree_with_birth_date    (column_list: [resident_id, birth_date])
- expect_resident_id_to_agree_with_gender        (column_list: [resident_id, gender])
- expect_column_values_to_be_accepted_by_normalize (the rows normalize rejected for a
  column, reported beside that column's checks: see normalize_results)

The checks reuse the vectorized identifier code of etl.normalize, so validation
and normalization cannot disagree about what a valid identifier is.

Each renders as a sentence in Data Docs and in GE's atomic renderers (`_Sentence`), not as
GE's fallback `expect_...(**{...})`.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation, MulticolumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider
from great_expectations.expectations.metrics.map_metric_provider import (
    MulticolumnMapMetricProvider,
    multicolumn_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.column_condition_partial import (
    column_condition_partial,
)
from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
from great_expectations.render.renderer.renderer import renderer
from great_expectations.render.renderer_configuration import RendererConfiguration, RendererValueType
from great_expectations.render.util import num_to_str

from etl.validate import predicates


class _Sentence:
    """Renderers saying what an expectation asks in words: `sentence(kwargs, meta)` gives a
    template ($name: a parameter) and its parameters; `mostly` below 1 adds the share."""

    @classmethod
    def sentence(cls, kwargs: dict[str, Any], meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    @classmethod
    def _words(cls, kwargs: dict[str, Any], meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        template, params = cls.sentence(kwargs, meta)
        mostly = kwargs.get("mostly")
        if mostly is not None and mostly < 1:
            template += ", at least $mostly_pct % of the time"
            params["mostly_pct"] = num_to_str(mostly * 100, no_scientific=True)
        return template + ".", params

    @classmethod
    def _prescriptive_template(cls, renderer_configuration: RendererConfiguration) -> RendererConfiguration:
        config = renderer_configuration.configuration
        meta = dict(config.meta or {}) if config is not None else {}
        template, params = cls._words(renderer_configuration.kwargs, meta)
        for name, value in params.items():
            renderer_configuration.add_param(name=name, param_type=RendererValueType.STRING, value=str(value))
        renderer_configuration.template_str = template
        return renderer_configuration

    @classmethod
    @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
    def _prescriptive_renderer(
        cls,
        configuration: Any = None,
        result: Any = None,
        runtime_configuration: dict[str, Any] | None = None,
    ) -> list[RenderedStringTemplateContent]:
        configuration = configuration or (result.expectation_config if result is not None else None)
        if configuration is None:
            return []
        template, params = cls._words(dict(configuration.kwargs), dict(configuration.meta or {}))
        styling = (runtime_configuration or {}).get("styling")
        return [
            RenderedStringTemplateContent(
                content_block_type="string_template",
                string_template={"template": template, "params": params, "styling": styling},
            )
        ]


class ColumnValuesValidResidentId(ColumnMapMetricProvider):
    condition_metric_name = "column_values.govbase_valid_resident_id"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> Any:
        return predicates.valid_resident_id(column)


class ExpectColumnValuesToBeValidResidentId(_Sentence, ColumnMapExpectation):
    """Values are 18-character resident ID numbers whose check character matches."""

    map_metric = "column_values.govbase_valid_resident_id"
    success_keys = ("mostly",)

    @classmethod
    def sentence(cls, kwargs: dict[str, Any], meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return (
            "$column values must be resident ID numbers of 18 characters (GB 11643-1999) whose "
            "check character matches their first 17 digits",
            {"column": kwargs.get("column")},
        )


class ColumnValuesValidCreditCode(ColumnMapMetricProvider):
    condition_metric_name = "column_values.govbase_valid_credit_code"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> Any:
        return predicates.valid_credit_code(column)


class ExpectColumnValuesToBeValidCreditCode(_Sentence, ColumnMapExpectation):
    """Values are unified social credit codes whose check character matches."""

    map_metric = "column_values.govbase_valid_credit_code"
    success_keys = ("mostly",)

    @classmethod
    def sentence(cls, kwargs: dict[str, Any], meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return (
            "$column values must be unified social credit codes of 18 characters (GB 32100-2015) "
            "from the allowed alphabet, whose check character matches",
            {"column": kwargs.get("column")},
        )


class ResidentIdAgreesWithBirthDate(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.govbase_id_agrees_birth_date"
    condition_domain_keys = ("column_list", "row_condition", "condition_parser", "ignore_row_if")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: Any) -> Any:
        # GE aligns the answer on the frame's index (it may have dropped rows): a Series.
        return predicates.id_agrees_with_birth_date(column_list.iloc[:, 0], column_list.iloc[:, 1])


def _pair(kwargs: dict[str, Any]) -> dict[str, Any]:
    columns = [*(kwargs.get("column_list") or []), None, None]
    return {"id_column": columns[0], "other_column": columns[1]}


class ExpectResidentIdToAgreeWithBirthDate(_Sentence, MulticolumnMapExpectation):
    """The birth date column equals the birth date encoded in the resident ID."""

    map_metric = "multicolumn_values.govbase_id_agrees_birth_date"
    success_keys = ("mostly",)
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = "any_value_is_missing"

    @classmethod
    def sentence(cls, kwargs: dict[str, Any], meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return (
            "$other_column must equal the birth date encoded in the resident ID $id_column "
            "(digits 7 to 14; rows missing either are not judged)",
            _pair(kwargs),
        )


class ResidentIdAgreesWithGender(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.govbase_id_agrees_gender"
    condition_domain_keys = ("column_list", "row_condition", "condition_parser", "ignore_row_if")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: Any) -> Any:
        return predicates.id_agrees_with_gender(column_list.iloc[:, 0], column_list.iloc[:, 1])


class ExpectResidentIdToAgreeWithGender(_Sentence, MulticolumnMapExpectation):
    """A male/female gender column agrees with the sex encoded in the resident ID (odd = male)."""

    map_metric = "multicolumn_values.govbase_id_agrees_gender"
    success_keys = ("mostly",)
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = "any_value_is_missing"

    @classmethod
    def sentence(cls, kwargs: dict[str, Any], meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return (
            "$other_column must agree with the sex encoded in the resident ID $id_column "
            "(17th digit odd: male, even: female; rows missing either are not judged)",
            _pair(kwargs),
        )


class ColumnValuesAcceptedByNormalize(ColumnMapMetricProvider):
    condition_metric_name = "column_values.govbase_accepted_by_normalize"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> Any:
        # the column holds normalize's verdict per delivered row: true accepted, false rejected
        return column.astype("boolean").fillna(False).astype(bool)


class ExpectColumnValuesToBeAcceptedByNormalize(_Sentence, ColumnMapExpectation):
    """Normalize accepted the column's delivered values. It is judged where normalize runs:
    the validate stage reports, per column, the delivered rows normalize rejected (their
    value is gone from the staged batch, so the other checks of the column cannot see them);
    GE evaluates it on a column of normalize's verdicts (true: accepted)."""

    map_metric = "column_values.govbase_accepted_by_normalize"
    success_keys = ("mostly",)

    @classmethod
    def sentence(cls, kwargs: dict[str, Any], meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        reasons = meta.get("reason") or ""
        template = (
            "$column values must be accepted by normalize (the value rules of the source's contract): "
            "a row it rejects is quarantined before the other checks run"
        )
        params: dict[str, Any] = {"column": kwargs.get("column")}
        if reasons:
            template += ", here for $reasons"
            params["reasons"] = reasons.replace(",", ", ")
        return template, params
