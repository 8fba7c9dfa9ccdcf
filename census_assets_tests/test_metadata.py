"""The metadata builders: images embedded so the UI shows them."""

import base64
import re

import pandas as pd

from census_assets.core.model_card import card_charts, render_markdown
from census_assets.metadata import markdown_table, markdown_with_pngs, png_data_uri, png_markdown
from census_assets_tests.tiny_models import a_card

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def embedded_pngs(markdown: str) -> dict[str, bytes]:
    """alt text -> the decoded bytes of every data-URI image in `markdown`."""
    found = re.findall(r"!\[([^\]]*)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    return {alt: base64.b64decode(data) for alt, data in found}


def test_png_markdown_embeds_the_png():
    png = PNG_SIGNATURE + b"rest"
    assert embedded_pngs(png_markdown(png, "a chart").value) == {"a chart": png}


def test_a_model_cards_diagrams_are_embedded_where_it_names_them():
    card = a_card("0123456789abcdef")
    markdown, charts = render_markdown(card), card_charts(card)
    assert charts and all(f"]({name})" in markdown for name in charts)  # the stored card names files

    shown = markdown_with_pngs(markdown, charts).value
    assert not any(f"]({name})" in shown for name in charts)
    assert sorted(embedded_pngs(shown).values()) == sorted(charts.values())
    assert all(png.startswith(PNG_SIGNATURE) for png in charts.values())
    for name, png in charts.items():  # nothing else changed
        shown = shown.replace(f"]({png_data_uri(png)})", f"]({name})")
    assert shown == markdown


def test_images_naming_other_files_and_plain_links_are_left_as_they_are():
    markdown = "[the card](model_card.md) ![other](other.png)"
    assert markdown_with_pngs(markdown, {"reliability_sex.png": PNG_SIGNATURE}).value == markdown


def test_markdown_table_keeps_every_cell_and_escapes_what_would_break_a_row():
    frame = pd.DataFrame(
        {"group": ["a|b", "line\nbreak", None], "rows": [3, 10, 7], "rate": [0.25, float("nan"), 1e-05]}
    )
    lines = markdown_table(frame).value.splitlines()
    assert lines[:2] == ["| group | rows | rate |", "|:---|---:|---:|"]  # text left, numbers right
    assert lines[2:] == ["| a\\|b | 3 | 0.25 |", "| line break | 10 |  |", "|  | 7 | 1e-05 |"]
    # Each row splits into its cells at the unescaped pipes: the UI shows three columns.
    assert all(len(re.split(r"(?<!\\)\|", line)) == 5 for line in lines)
