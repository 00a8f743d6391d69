"""Department-facing words in Simplified Chinese and English.

Reports speak the language of `Settings.report_language` (GOVBASE_REPORT_LANGUAGE):
`zh-en` (default) gives the Chinese text with the English alongside, `zh` or `en` one of
them. Every phrase is a key of `WORDS` holding (Chinese, English), each a `str.format`
template with the same fields; reason codes read their texts from etl.quality
(REASONS_ZH, REASONS).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from etl.quality import REASONS, REASONS_ZH

WORDS: dict[str, tuple[str, str]] = {
    # department rejection reports
    "rejections_title": ("拒收记录", "Rejected rows"),
    "rejections_intro": (
        "以下记录未能入库，已隔离。敏感信息已脱敏。请在本部门系统中更正后重新报送；每条记录均注明文件名和行号。",
        "These rows were not loaded and are quarantined. Sensitive values are masked. Please "
        "correct them at the source and deliver again; each row names its file and row number.",
    ),
    "deliveries": ("报送情况", "Deliveries"),
    "deliveries_intro": (
        "每次报送（来源、业务日期）的入库行数、拒收行数和接收率。",
        "Rows loaded and rejected, and the acceptance rate, of each delivery (source, logical date).",
    ),
    "no_deliveries": ("尚无报送记录。", "No delivery has been loaded yet."),
    "by_reason": ("拒收原因", "Reasons for rejection"),
    "rows_rejected": ("共 {n} 行被拒收。", "{n} row(s) were rejected."),
    "nothing_rejected": (
        "本部门报送的数据全部通过校验，没有被拒收的记录，无需处理。",
        "Every row your department delivered passed validation: nothing was rejected, nothing to fix.",
    ),
    "rejected_rows": ("拒收明细", "Rejected rows in detail"),
    "source": ("来源", "Source"),
    "file": ("文件", "File"),
    "files": ("文件", "Files"),
    "row": ("行号", "Row"),
    "logical_date": ("业务日期", "Logical date"),
    "reason_codes": ("原因代码", "Reason codes"),
    "reasons": ("原因", "Reasons"),
    "reason": ("原因", "Reason"),
    "rows": ("行数", "Rows"),
    "suppressed": ("隐匿单元格", "Suppressed cells"),
    "delivered": ("报送行数", "Delivered"),
    "loaded": ("入库", "Loaded"),
    "rejected": ("拒收", "Rejected"),
    "acceptance_rate": ("接收率", "Acceptance rate"),
    "total": ("合计", "Total"),
    "generated": ("生成时间：{at}", "Generated {at}"),
    "none_yet": ("暂无。", "None yet."),
    # the run report
    "run_title": ("运行报告", "Run report"),
    "run_intro": (
        "运行 {run}：业务日期 {dates}，开始 {started}，结束 {finished}，状态 {status}。",
        "Run {run}: logical date(s) {dates}, started {started}, finished {finished}, status {status}.",
    ),
    "no_run": ("仓库中尚无运行记录。", "The warehouse has no run yet."),
    "by_department": ("各部门、各阶段行数", "Rows by department and stage"),
    "department": ("部门", "Department"),
    "stage_extract": ("抽取", "Extracted"),
    "stage_normalize": ("标准化", "Normalized"),
    "stage_validate": ("校验通过", "Validated"),
    "stage_load": ("入库", "Loaded"),
    "quarantined": ("隔离", "Quarantined"),
    "status": ("状态", "Status"),
    "message": ("说明", "Message"),
    "rows_axis": ("行数", "rows"),
    "quarantine_reasons": ("隔离原因", "Quarantine reasons"),
    "no_quarantine": ("本次运行没有被隔离的记录。", "This run quarantined no row."),
    "quality": ("近期运行的质量", "Quality over the last runs"),
    "run": ("运行", "Run"),
    "started": ("开始", "Started"),
    "sources": ("来源数", "Sources"),
    "not_ok": ("未通过", "Not ok"),
    "validation_failed": ("校验未通过批次", "Batches failing validation"),
    "linkage": ("实体关联", "Linkage"),
    "entity": ("实体", "Entity"),
    "records": ("记录", "Records"),
    "with_valid_id": ("有效标识", "With a valid ID"),
    "pairs_linked": ("关联对", "Pairs linked"),
    "masters": ("主记录", "Masters"),
    "merged": ("合并", "Merged"),
    "split": ("拆分", "Split"),
    "findings": ("发现", "Findings"),
    "review_pairs": ("待复核对", "Pairs for review"),
    "review_open": ("复核队列", "Review queue"),
    "decisions": ("已复核", "Decided"),
    "linkage_as_of": ("最近一次整合：{run}，{at}。", "Latest consolidation: {run}, {at}."),
    "classification": ("安全分级检查", "Classification findings"),
    "classification_as_of": (
        "最近一次检查：{run}，{at}，发现 {n} 项。",
        "Latest scan: {run}, {at}, {n} finding(s).",
    ),
    "no_findings": (
        "最近一次检查未发现内容超出声明级别的列。",
        "The latest scan found no column whose content warrants a higher level than it declares.",
    ),
    "column": ("列", "Column"),
    "declared": ("声明级别", "Declared"),
    "kind": ("检出类型", "Detected"),
    "warranted": ("应为", "Warrants"),
    "share": ("占比", "Share"),
    "sampled": ("抽样数", "Sampled"),
    "examples": ("示例（已脱敏）", "Examples (masked)"),
    "open_data": ("开放数据集", "Datasets opened"),
    "dataset": ("数据集", "Dataset"),
    "title": ("名称", "Title"),
    "bytes": ("字节", "Bytes"),
    "modified": ("更新时间", "Modified"),
    "catalog": ("目录：{path}", "Catalog: {path}"),
    "shares": ("部门共享库", "Department shares"),
    "refreshed_at": ("刷新时间", "Refreshed"),
    "key_version": ("密钥版本", "Key version"),
    "tables": ("表", "Tables"),
    # conformance reports (etl.publish.conformance)
    "conformance_title": ("数据标准符合情况", "Conformance to the data standard"),
    "conformance_intro": (
        "本页说明本部门（{department}）报送的数据符合统一数据标准的情况（标准见数据字典 "
        "reports/standard/dictionary.html）：每个报送字段的有效值和发现的问题，以及每个来源最近 {last} "
        "次报送的趋势。需要更正的具体记录见同一目录下的拒收记录（rejections.html）。本页只有计数，不含任何数据值。",
        "How the deliveries of {department} meet the unified data standard (see the data dictionary, "
        "reports/standard/dictionary.html): per delivered field, how many values were valid and which "
        "defects were found, and the trend over the last {last} deliveries of each source. The rows "
        "to fix are in the rejection report (rejections.html beside this page). Counts only; no values.",
    ),
    "rates_by_kind": (
        "各类问题比率（各来源最近一次报送）",
        "Defect rate by kind (latest delivery of each source)",
    ),
    "rate": ("比率", "Rate"),
    "meaning": ("说明", "What it means"),
    "any_quarantined": ("任一问题（被隔离的记录）", "Any defect (quarantined rows)"),
    "no_defects": ("最近一次报送没有发现问题。", "No defects in the latest deliveries."),
    "no_validated": ("尚无经过校验的报送。", "No delivery validated yet."),
    "trend": ("最近各次报送的趋势", "Trend over the last deliveries"),
    "defect_rate": ("问题率", "Defect rate"),
    "change": ("变化", "Change"),
    "change_worse": ("变差", "worse"),
    "change_better": ("改善", "better"),
    "change_same": ("持平", "same"),
    "latest_fields": (
        "最近一次报送的字段（{date}，运行 {run}）",
        "Fields of the latest delivery ({date}, run {run})",
    ),
    "delivered_field": ("报送字段", "Delivered field"),
    "shared_column": ("标准字段", "Shared column"),
    "filled": ("非空值", "Filled"),
    "valid": ("有效值", "Valid"),
    "valid_share": ("有效比例", "Valid share"),
    "meets_standard": ("符合标准", "Meets the standard"),
    "defects_by_kind": ("各类问题数", "Defects by kind"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
}


@dataclass(frozen=True)
class Words:
    """The phrases of one report language (REPORT_LANGUAGES of etl.config)."""

    language: str = "zh-en"

    def _pair(self, zh: str, en: str) -> tuple[str | None, str | None]:
        if self.language == "zh":
            return zh, None
        if self.language == "en":
            return None, en
        return zh, en

    def text(self, key: str, **fields: object) -> str:
        """Plain text (CSV cells, titles): Chinese and English joined by ' / ' in `zh-en`."""
        zh, en = WORDS[key]
        return " / ".join(t.format(**fields) for t in self._pair(zh, en) if t is not None)

    def html(self, key: str, **fields: object) -> str:
        """Escaped HTML: the English in a `span.en` (lang="en") after the Chinese in `zh-en`."""
        zh, en = WORDS[key]
        return self._html(zh.format(**fields), en.format(**fields))

    def _html(self, zh_text: str, en_text: str) -> str:
        zh, en = self._pair(zh_text, en_text)
        if zh is not None and en is not None:
            return f'{html.escape(zh)} <span class="en" lang="en">{html.escape(en)}</span>'
        return html.escape(zh if zh is not None else str(en))

    def reason(self, code: str) -> str:
        """A reason code's plain words; an unknown code is shown as it is."""
        zh, en = REASONS_ZH.get(code, code), REASONS.get(code, code)
        return " / ".join(t for t in self._pair(zh, en) if t is not None)

    def reason_html(self, code: str) -> str:
        return self._html(REASONS_ZH.get(code, code), REASONS.get(code, code))

    def reasons(self, codes: str) -> str:
        """The plain words of a comma-separated list of reason codes, one after the other."""
        return " ".join(self.reason(c) for c in codes.split(",") if c)

    @property
    def html_lang(self) -> str:
        return "en" if self.language == "en" else "zh-Hans"
