"""govbase's custom Great Expectations (pandas engine).

Importing this module registers them with GE:
- expect_column_values_to_be_valid_resident_id   (GB 11643-1999 checksum and structure)
- expect_column_values_to_be_valid_credit_code   (GB 32100-2015 checksum and alphabet)
- expect_resident_id_to_agree_with_birth_date    (column_list: [resident_id, birth_date])
- expect_resident_id_to_agree_with_gender        (column_list: [resident_id, gender])

The checks reuse the vectorized identifier code of etl.normalize, so validation
and normalization cannot disagree about what a valid identifier is.
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

from etl.validate import predicates


class ColumnValuesValidResidentId(ColumnMapMetricProvider):
    condition_metric_name = "column_values.govbase_valid_resident_id"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> Any:
        return predicates.valid_resident_id(column)


class ExpectColumnValuesToBeValidResidentId(ColumnMapExpectation):
    """Values are 18-character resident ID numbers whose check character matches."""

    map_metric = "column_values.govbase_valid_resident_id"
    success_keys = ("mostly",)


class ColumnValuesValidCreditCode(ColumnMapMetricProvider):
    condition_metric_name = "column_values.govbase_valid_credit_code"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs: Any) -> Any:
        return predicates.valid_credit_code(column)


class ExpectColumnValuesToBeValidCreditCode(ColumnMapExpectation):
    """Values are unified social credit codes whose check character matches."""

    map_metric = "column_values.govbase_valid_credit_code"
    success_keys = ("mostly",)


class ResidentIdAgreesWithBirthDate(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.govbase_id_agrees_birth_date"
    condition_domain_keys = ("column_list", "row_condition", "condition_parser", "ignore_row_if")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: Any) -> Any:
        # GE aligns the answer on the frame's index (it may have dropped rows): a Series.
        return predicates.id_agrees_with_birth_date(column_list.iloc[:, 0], column_list.iloc[:, 1])


class ExpectResidentIdToAgreeWithBirthDate(MulticolumnMapExpectation):
    """The birth date column equals the birth date encoded in the resident ID."""

    map_metric = "multicolumn_values.govbase_id_agrees_birth_date"
    success_keys = ("mostly",)
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = "any_value_is_missing"


class ResidentIdAgreesWithGender(MulticolumnMapMetricProvider):
    condition_metric_name = "multicolumn_values.govbase_id_agrees_gender"
    condition_domain_keys = ("column_list", "row_condition", "condition_parser", "ignore_row_if")

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs: Any) -> Any:
        return predicates.id_agrees_with_gender(column_list.iloc[:, 0], column_list.iloc[:, 1])


class ExpectResidentIdToAgreeWithGender(MulticolumnMapExpectation):
    """A male/female gender column agrees with the sex encoded in the resident ID (odd = male)."""

    map_metric = "multicolumn_values.govbase_id_agrees_gender"
    success_keys = ("mostly",)
    ignore_row_if: Literal["all_values_are_missing", "any_value_is_missing", "never"] = "any_value_is_missing"
