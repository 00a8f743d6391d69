"""The catalogue of data-quality codes shared by the generator, normalization,
validation and the rejection reports.

- DEFECTS: what the demo generator injects (recorded in landing/_truth/), each
  either repairable (normalization must restore the true value) or not
  (the row must be quarantined with the given reason code).
- REASONS: quarantine reason codes, with the plain words a department reads in
  its rejection report; REASONS_ZH: the same in Simplified Chinese (same keys).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Defect:
    code: str
    repairable: bool
    reason: str | None  # quarantine reason code when not repairable
    description: str


REASONS: dict[str, str] = {
    "resident_id_format": "The resident ID number is not 15 or 18 characters of digits (and a final X).",
    "resident_id_checksum": "The resident ID number's check character does not match its first 17 digits.",
    "resident_id_destroyed": "The resident ID number was stored as a number (e.g. in Excel) and lost its last digits; it cannot be recovered, please re-enter it as text.",
    "resident_id_birth_mismatch": "The birth date does not agree with the birth date encoded in the resident ID number.",
    "resident_id_gender_mismatch": "The gender does not agree with the gender encoded in the resident ID number.",
    "credit_code_format": "The unified social credit code is not 18 characters from the allowed alphabet.",
    "credit_code_checksum": "The unified social credit code's check character does not match.",
    "invalid_date": "A date cannot be read or does not exist (e.g. 30 February).",
    "date_out_of_range": "A date is in the future or implausibly old.",
    "invalid_code": "A coded value (gender, ethnicity, marital status, status, type) is not in the code list.",
    "invalid_region": "The administrative division code is not a valid GB/T 2260 code.",
    "invalid_amount": "An amount cannot be read as a number (with optional 万/亿 units).",
    "invalid_number": "A numeric value cannot be read as a number.",
    "invalid_phone": "The phone number is not a valid mobile or landline number.",
    "malformed_row": "The row has more or fewer fields than the header (a ragged row); its fields may be shifted.",
    "unbalanced_quote": "A quote opened in this line is not closed on it (or only many lines later); the line was read without quoting, its fields may be cut.",
    "control_character": "A value holds an invisible control character (NUL, or a bidirectional override that makes text display differently from what it is).",
    "field_too_long": "A value is longer than the source allows (mostly a quote left open that swallowed the following rows).",
    "invalid_cell": "A spreadsheet cell holds an error (#DIV/0!, #N/A ...) or a formula whose value was never calculated.",
    "wrong_json_type": "A JSON value has another type than the field expects (a number, list, object or true/false where text is expected).",
    "duplicate_json_key": "A JSON record names the same key twice; which value is meant is unclear.",
    "unreadable_record": "The record cannot be read (e.g. JSON nested deeper than allowed); it is kept as delivered.",
    "missing_required": "A required value is empty.",
    "duplicate_key": "The same key appears more than once in the batch.",
    "out_of_range": "A value is outside the range its column allows.",
}

#: the same reasons in Simplified Chinese, for department-facing reports (etl.publish.i18n)
REASONS_ZH: dict[str, str] = {
    "resident_id_format": "公民身份号码不是15位或18位（数字，末位可为X）。",
    "resident_id_checksum": "公民身份号码的校验码与前17位不符。",
    "resident_id_destroyed": "公民身份号码被存成了数值（例如在Excel中），丢失了末几位，无法恢复，请以文本格式重新录入。",
    "resident_id_birth_mismatch": "出生日期与公民身份号码中的出生日期不一致。",
    "resident_id_gender_mismatch": "性别与公民身份号码中的性别不一致。",
    "credit_code_format": "统一社会信用代码不是18位允许的字符。",
    "credit_code_checksum": "统一社会信用代码的校验码不符。",
    "invalid_date": "日期无法识别或不存在（例如2月30日）。",
    "date_out_of_range": "日期晚于今天或早得不合常理。",
    "invalid_code": "代码值（性别、民族、婚姻状况、状态、类型）不在代码表中。",
    "invalid_region": "行政区划代码不是有效的GB/T 2260代码。",
    "invalid_amount": "金额无法识别为数字（可带万、亿单位）。",
    "invalid_number": "数值无法识别为数字。",
    "invalid_phone": "电话号码不是有效的手机或固定电话号码。",
    "malformed_row": "该行字段数与表头不一致（行不齐），字段可能错位。",
    "unbalanced_quote": "该行开始的引号未在本行闭合（或很多行后才闭合），已按无引号读取，字段可能被截断。",
    "control_character": "值中含有不可见的控制字符（NUL，或使文字显示与实际不同的双向控制符）。",
    "field_too_long": "值超过来源允许的长度（多为未闭合的引号吞并了后续行）。",
    "invalid_cell": "电子表格单元格含错误值（#DIV/0!、#N/A等）或从未计算的公式。",
    "wrong_json_type": "JSON值的类型与字段要求不符（需要文本处给了数字、列表、对象或真假值）。",
    "duplicate_json_key": "JSON记录中同一键出现两次，无法判断以哪个值为准。",
    "unreadable_record": "记录无法读取（例如JSON嵌套过深），已按原样保留。",
    "missing_required": "必填值为空。",
    "duplicate_key": "同一批次中同一主键出现多次。",
    "out_of_range": "值超出该列允许的范围。",
}

#: reason codes a reader can give a whole row: its `_row_error` starts with "<code>: ";
#: any other `_row_error` (ragged rows, short fixed-width lines ...) is malformed_row
ROW_ERRORS = frozenset(
    {
        "unbalanced_quote",
        "control_character",
        "field_too_long",
        "invalid_cell",
        "wrong_json_type",
        "duplicate_json_key",
        "unreadable_record",
    }
)

_DEFECTS = [
    # repairable: normalization restores the true value
    Defect("id_fullwidth", True, None, "full-width digits or Ｘ in the resident ID"),
    Defect("id_lowercase_x", True, None, "lowercase x as the resident ID check character"),
    Defect("id_whitespace", True, None, "spaces or zero-width characters inside the resident ID"),
    Defect("id_15digit", True, None, "old 15-digit resident ID (converted to 18)"),
    Defect("code_fullwidth", True, None, "full-width characters in the credit code"),
    Defect("code_lowercase", True, None, "lowercase letters in the credit code"),
    Defect("name_whitespace", True, None, "spaces or zero-width characters inside a name"),
    Defect("phone_format", True, None, "phone written with +86, dashes or spaces"),
    Defect("name_separator_dot", True, None, "a minority name's middle dot typed as '.' or '•'"),
    Defect("org_name_bracket", True, None, "half-width brackets in an organisation name"),
    # not repairable: quarantine with the reason
    Defect("id_bad_checksum", False, "resident_id_checksum", "a resident ID digit mistyped (check fails)"),
    Defect(
        "id_excel_destroyed",
        False,
        "resident_id_destroyed",
        "resident ID stored as a number, 15 significant digits kept",
    ),
    Defect(
        "id_birth_mismatch", False, "resident_id_birth_mismatch", "birth date field disagrees with the ID"
    ),
    Defect("id_gender_mismatch", False, "resident_id_gender_mismatch", "gender field disagrees with the ID"),
    Defect(
        "code_bad_checksum", False, "credit_code_checksum", "a credit code character mistyped (check fails)"
    ),
    Defect("date_impossible", False, "invalid_date", "an impossible date such as 30 February"),
    Defect("ragged_row", False, "malformed_row", "a CSV row with an extra field"),
    # neither: variation that normalization leaves alone (entity resolution's job)
    Defect("id_missing", True, None, "no resident ID given (linked probabilistically later)"),
    Defect("name_variant", True, None, "name spelled differently from the household register"),
    Defect("moved", True, None, "an older address (and region, after a move of county) than the register"),
    Defect("phone_changed", True, None, "an older or newer phone number"),
    Defect("name_variant_traditional", True, None, "the name written in traditional characters"),
    Defect("name_variant_surname", True, None, "the surname replaced by a homophone or look-alike"),
    Defect("name_variant_separator", True, None, "a minority name written without its middle dot"),
    Defect("birth_swapped", True, None, "birth day and month swapped (a record without an ID)"),
    Defect("birth_off_by_one", True, None, "birth date one day off (a record without an ID)"),
    Defect("duplicate_record", True, None, "a second record of the same person in one department"),
    Defect("code_missing", True, None, "no credit code given (linked on name and region later)"),
    Defect("org_name_variant_form", True, None, "有限公司 written 有限责任公司 or the reverse"),
    Defect("org_name_variant_branch", True, None, "the organisation name with a branch suffix (分公司)"),
    Defect("org_name_variant_region", True, None, "the organisation name without its region prefix"),
]
DEFECTS: dict[str, Defect] = {d.code: d for d in _DEFECTS}
