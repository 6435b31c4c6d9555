"""The axe-core helper of the browser tests finds what it must, and only that."""

import pytest

from corporate.tests.accessibility import AXE, axe_violations, describe

pytestmark = pytest.mark.browser

PAGE = """<!doctype html><html lang="en"><head><title>Check</title></head>
<body><main><h1>Check</h1>{}</main></body></html>"""


def test_axe_is_vendored_with_its_licence_and_version():
    folder = AXE.parent
    assert AXE.read_text(encoding="utf-8").startswith("/*! axe v4.")
    assert (folder / "LICENSE").exists()
    assert "axe-core 4." in (folder / "VERSION").read_text(encoding="utf-8")


def test_serious_and_critical_violations_are_reported(page):
    page.set_content(
        PAGE.format(
            '<button type="button"></button>'  # no name: critical
            '<p style="color:#aaa;background:#fff">faint text</p>'  # contrast 2.3: serious
        )
    )
    found = {v["id"]: v["impact"] for v in axe_violations(page)}
    assert found == {"button-name": "critical", "color-contrast": "serious"}
    assert "button-name (critical, 1x)" in describe(axe_violations(page))


def test_lesser_violations_and_a_clean_page_pass(page):
    # A skipped heading level is "moderate": not counted.
    page.set_content(PAGE.format("<h3>Skipped a level</h3><p>Plain text.</p>"))
    assert axe_violations(page) == []
    assert [v["id"] for v in axe_violations(page, blocking=("moderate",))] == ["heading-order"]


def test_a_run_limited_to_some_rules(page):
    page.set_content(PAGE.format('<button type="button"></button><p style="color:#aaa">faint text</p>'))
    assert [v["id"] for v in axe_violations(page, rules=["color-contrast"])] == ["color-contrast"]
