"""Write the first version of the Word template of the quarterly supervision report (督导通报).

The template (``layers/reports/templates/quarterly.docx``) is the file the supervision office
edits in Word: wording, fonts, order of sections, headers. It is a docxtpl (Jinja) template;
the fields it may use are listed in ``layers/reports/README.md``. This script only made the
starting point and is kept so the layout can be rebuilt from scratch; once the office has
edited the template, do not run it again (it would overwrite their changes).

    .venv/bin/python scripts/build_report_template.py [--force] [--kind quarterly|district]
"""

from __future__ import annotations

import sys
from pathlib import Path

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "layers" / "reports" / "templates"
BODY_FONT = "Noto Serif CJK SC"
HEAD_FONT = "Noto Sans CJK SC"


def _font(style, name: str, size: float, bold: bool = False) -> None:  # type: ignore[no-untyped-def]
    style.font.name = name
    style.font.size = Pt(size)
    style.font.bold = bold
    rpr = style.element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(fonts)
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), name)


def _document() -> Document:  # type: ignore[no-any-unimported]
    doc = Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    for side in ("left_margin", "right_margin"):
        setattr(section, side, Cm(1.8))
    section.top_margin = section.bottom_margin = Cm(2.0)
    _font(doc.styles["Normal"], BODY_FONT, 10.5)
    _font(doc.styles["Title"], HEAD_FONT, 22, bold=True)
    for level, size in ((1, 15), (2, 12.5)):
        st = doc.styles[f"Heading {level}"]
        _font(st, HEAD_FONT, size, bold=True)
        st.font.color.rgb = RGBColor(0, 0, 0)
    return doc


def _table(doc, headers: list[str], cells: list[str], loop: str, widths: list[float] | None = None) -> None:  # type: ignore[no-untyped-def]
    """A header row, then a docxtpl row loop (``{%tr for ... %}`` / cells / ``{%tr endfor %}``)."""
    table = doc.add_table(rows=4, cols=len(headers))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for i, h in enumerate(headers):
        cell = table.rows[0].cells[i]
        cell.text = h
        for run in cell.paragraphs[0].runs:
            run.font.bold = True
            run.font.size = Pt(9)
    table.rows[1].cells[0].text = "{%tr " + loop + " %}"
    for i, c in enumerate(cells):
        table.rows[2].cells[i].text = c
        for run in table.rows[2].cells[i].paragraphs[0].runs:
            run.font.size = Pt(9)
    table.rows[3].cells[0].text = "{%tr endfor %}"
    if widths:
        table.autofit = False
        for col, w in zip(table.columns, widths, strict=True):
            col.width = Cm(w)
        for row in table.rows:
            for cell, w in zip(row.cells, widths, strict=True):
                cell.width = Cm(w)


def quarterly() -> Document:  # type: ignore[no-any-unimported]
    """The quarterly report: cover, summary, ranking, programmes, indicators, maps, money, overdue, photos."""
    doc = _document()
    for _ in range(5):
        doc.add_paragraph()
    p = doc.add_paragraph("{{ issuer }}", style="Normal")
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    t = doc.add_paragraph("{{ title }}", style="Title")
    t.alignment = WD_ALIGN_PARAGRAPH.CENTER
    p = doc.add_paragraph("{{ period_label }}")
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    p.runs[0].font.size = Pt(16)
    p = doc.add_paragraph("（数据截至 {{ as_of_label }}）")
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for _ in range(8):
        doc.add_paragraph()
    p = doc.add_paragraph("{{ supervision }}")
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    p = doc.add_paragraph("编制日期：{{ generated_on }}")
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    p = doc.add_paragraph("{{ demo_note }}")
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    p.runs[0].font.size = Pt(9)
    p.runs[0].add_break(WD_BREAK.PAGE)

    doc.add_heading("一、总体情况", level=1)
    doc.add_paragraph("{{ overview }}")
    doc.add_paragraph("进度评价口径：{{ rules_text }}")
    doc.add_heading("（一）空间目标完成情况", level=2)
    _table(doc, ["任务", "目标", "类别", "目标值", "完成值", "单位", "完成率%", "应完成%", "进度评价", "截止日期"],
           ["{{ r.task }}", "{{ r.title }}", "{{ r.kind }}", "{{ r.target_value }}",
            "{{ r.actual }}", "{{ r.unit }}", "{{ r.percent }}", "{{ r.expected_percent }}", "{{ r.status_label }}",
            "{{ r.deadline }}"], "for r in summary", [1.0, 4.6, 1.4, 1.6, 1.6, 1.3, 1.4, 1.4, 1.6, 2.1])
    doc.add_paragraph("责任单位：{{ responsible_note }}")
    doc.add_heading("（二）填报指标完成情况", level=2)
    _table(doc, ["任务", "指标", "目标值", "最新值", "单位", "填报日期", "完成率%", "进度评价"],
           ["{{ i.task }}", "{{ i.title }}", "{{ i.target_value }}", "{{ i.value }}",
            "{{ i.unit }}", "{{ i.reported_on }}", "{{ i.percent }}", "{{ i.status_label }}"],
           "for i in indicators", [1.0, 5.6, 1.8, 1.8, 1.6, 2.2, 1.5, 1.7])
    doc.add_heading("（三）合规性目标", level=2)
    doc.add_paragraph("{%p for c in compliance %}")
    doc.add_paragraph("{{ c.title }}（任务{{ c.task }}，“{{ c.source }}”）：适用{{ c.population }}宗，"
                      "合规{{ c.compliant }}宗，不合规{{ c.violations }}宗，合规率{{ c.share }}。")
    doc.add_paragraph("{%p endfor %}")

    doc.add_heading("二、区县督导排位（{{ ranking_quarter }}）", level=1)
    doc.add_paragraph("{{ ranking_note }}")
    _table(doc, ["排名", "区县", "得分", "计分项数", "上季排名", "名次变化"],
           ["{{ d.rank }}", "{{ d.district_name }}", "{{ d.score }}", "{{ d.targets }}", "{{ d.previous_rank }}",
            "{{ d.change_label }}"], "for d in ranking")
    doc.add_paragraph("{{ map_ranking }}")

    doc.add_heading("三、分工程推进情况", level=1)
    doc.add_paragraph("{%p for g in programmes %}")
    doc.add_heading("{{ g.label }}", level=2)
    _table(doc, ["任务", "目标", "目标值", "完成值", "完成率%", "进度评价", "责任单位"],
           ["{{ r.task }}", "{{ r.title }}", "{{ r.target_value }}{{ r.unit }}", "{{ r.actual }}", "{{ r.percent }}",
            "{{ r.status_label }}", "{{ r.responsible }}"], "for r in g.rows", [1.0, 4.8, 2.2, 1.8, 1.5, 1.7, 4.2])
    doc.add_paragraph("{%p endfor %}")

    doc.add_heading("四、专题地图", level=1)
    doc.add_paragraph("{%p for m in maps %}")
    doc.add_heading("{{ m.title }}", level=2)
    doc.add_paragraph("{{ m.image }}")
    doc.add_paragraph("{{ m.caption }}")
    doc.add_paragraph("{%p endfor %}")

    doc.add_heading("五、投资完成与资金来源", level=1)
    doc.add_paragraph("{{ investment_note }}")
    doc.add_heading("（一）分区县", level=2)
    _table(doc, ["区县", "项目数", "计划投资（万元）", "完成投资（万元）", "完成率%", "其中专项债计划（万元）"],
           ["{{ v.name }}", "{{ v.projects }}", "{{ v.planned }}", "{{ v.completed }}", "{{ v.percent }}",
            "{{ v.special_bond }}"], "for v in investment_by_district")
    doc.add_heading("（二）分资金来源", level=2)
    _table(doc, ["资金来源", "项目数", "计划投资（万元）", "完成投资（万元）", "完成率%"],
           ["{{ v.name }}", "{{ v.projects }}", "{{ v.planned }}", "{{ v.completed }}", "{{ v.percent }}"],
           "for v in investment_by_source")

    doc.add_heading("六、逾期未完成清单（分区县）", level=1)
    doc.add_paragraph("{{ overdue_note }}")
    doc.add_paragraph("{%p for d in overdue %}")
    doc.add_heading("{{ d.name }}（{{ d.count }}项）", level=2)
    _table(doc, ["目标", "截止日期", "清单内未完成", "示例（编码 名称 当前状态）"],
           ["{{ o.title }}", "{{ o.deadline }}", "{{ o.missing }}", "{{ o.examples }}"], "for o in d.rows")
    doc.add_paragraph("{%p endfor %}")

    doc.add_heading("七、现场照片", level=1)
    doc.add_paragraph("{{ photos_note }}")
    doc.add_paragraph("{%p for ph in photos %}")
    doc.add_paragraph("{{ ph.image }}")
    doc.add_paragraph("{{ ph.caption }}")
    doc.add_paragraph("{%p endfor %}")
    return doc


def district() -> Document:  # type: ignore[no-any-unimported]
    """One district's one-page summary."""
    doc = _document()
    t = doc.add_paragraph("{{ district_name }}城市更新重点任务推进情况", style="Title")
    t.alignment = WD_ALIGN_PARAGRAPH.CENTER
    doc.add_paragraph("数据截至 {{ as_of_label }} · 全市排位 {{ rank_text }} · {{ demo_note }}")
    _table(doc, ["任务", "目标", "区县任务量", "完成值", "完成率%", "进度评价"],
           ["{{ r.task }}", "{{ r.title }}", "{{ r.target_value }}{{ r.unit }}", "{{ r.actual }}", "{{ r.percent }}",
            "{{ r.status_label }}"], "for r in rows")
    doc.add_paragraph("计划投资 {{ investment.planned }} 万元，完成 {{ investment.completed }} 万元"
                      "（其中专项债计划 {{ investment.special_bond }} 万元）。")
    doc.add_paragraph("{{ overdue_text }}")
    return doc


def ledger() -> Document:  # type: ignore[no-any-unimported]
    """A target ledger (台账): the target, each district's share, the features of its list."""
    doc = _document()
    doc.add_heading("{{ title }}", level=1)
    doc.add_paragraph("数据截至 {{ as_of_label }} · {{ demo_note }}")
    doc.add_paragraph("{%p for k in info %}")
    doc.add_paragraph("{{ k.key }}：{{ k.value }}")
    doc.add_paragraph("{%p endfor %}")
    _table(doc, ["区县", "任务量", "完成值", "完成率%", "进度评价", "计入数量"],
           ["{{ r.name }}", "{{ r.goal }}", "{{ r.actual }}", "{{ r.percent }}", "{{ r.status_label }}",
            "{{ r.features }}"], "for r in districts")
    doc.add_paragraph("{%p for d in features %}")
    doc.add_heading("{{ d.name }}", level=2)
    _table(doc, ["编码", "名称", "状态", "状态日期", "实施主体", "计划投资（万元）", "资金来源", "计入目标"],
           ["{{ f.code }}", "{{ f.name }}", "{{ f.status }}", "{{ f.since }}", "{{ f.unit }}", "{{ f.planned }}",
            "{{ f.funding }}", "{{ f.counts }}"], "for f in d.rows")
    doc.add_paragraph("{%p endfor %}")
    return doc


def main() -> None:
    """Write the templates (refuses to overwrite without --force)."""
    force = "--force" in sys.argv
    OUT.mkdir(parents=True, exist_ok=True)
    for name, build in (("quarterly", quarterly), ("district", district), ("ledger", ledger)):
        path = OUT / f"{name}.docx"
        if path.exists() and not force:
            print(f"{path} exists (edited by the office?); use --force to overwrite")
            continue
        build().save(str(path))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
