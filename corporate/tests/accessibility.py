"""axe-core in the browser tests: the accessibility rules a page breaks.

axe-core is vendored under `vendor/axe-core/` (its VERSION file says which
release and where it came from); it is read from disk, never fetched, and
only the tests use it.
"""

from functools import cache
from pathlib import Path

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"

# The impacts a page may not have.
BLOCKING = ("serious", "critical")

# Runs axe on the whole document and keeps the blocking violations, each with a few of its elements.
RUN = """async ([blocking, rules]) => {
  const options = {resultTypes: ['violations']};
  if (rules) options.runOnly = {type: 'rule', values: rules};
  const results = await window.axe.run(document, options);
  return results.violations
    .filter(v => blocking.includes(v.impact))
    .map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map(n => ({target: n.target.join(' '), summary: n.failureSummary})),
      count: v.nodes.length,
    }));
}"""


@cache
def _source():
    return AXE.read_text(encoding="utf-8")


def axe_violations(page, blocking=BLOCKING, rules=None):
    """The serious and critical axe-core violations of the page as it is now (of `rules` only, if given).

    The script is evaluated through the browser's debugging protocol, so the
    site's Content-Security-Policy (no inline or foreign scripts) does not
    stop it; it is loaded once per document.
    """
    if not page.evaluate("() => Boolean(window.axe)"):
        page.evaluate(_source())
    return page.evaluate(RUN, [list(blocking), list(rules) if rules else None])


def describe(violations):
    """One readable line per violation and element, for an assertion message."""
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}, {violation['count']}x): {violation['help']}")
        for node in violation["nodes"]:
            summary = " ".join(node["summary"].split())
            lines.append(f"    {node['target']}: {summary}")
    return "\n".join(lines)
