"""Headings in organisers' markdown fit the page's outline (axe's heading-order rule)."""

from surveys.definition.markup import render_markdown


def test_the_texts_highest_heading_becomes_the_level_below_the_page() -> None:
    html = render_markdown("Intro.\n\n### Key arguments\n\n- One.\n\n#### In detail\n\nMore.")
    assert "<h2>Key arguments</h2>" in html and "<h3>In detail</h3>" in html
    assert "<h4>" not in html


def test_arguments_under_an_h3_start_at_h4_and_levels_stop_at_h6() -> None:
    html = render_markdown("# For\n\n###### Deep", top_heading=4)
    assert "<h4>For</h4>" in html and "<h6>Deep</h6>" in html


def test_text_without_headings_is_unchanged_and_still_sanitised() -> None:
    html = render_markdown('Plain <script>alert(1)</script> and <h1 onclick="x()">t</h1>')
    assert "<script>" not in html and "onclick" not in html
    assert "<h2>t</h2>" in html
