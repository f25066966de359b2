"""Accessibility: axe-core (npm package, node_modules/axe-core) runs on every page of the web client in
Vietnamese (tests/web_walk.py's walk) and finds no serious or critical violation; every one found is
printed with its rule, impact, page and elements. Also: the controls are buttons and links a keyboard
reaches (no click handler on a bare div or span, no control on screen that the Tab key skips)."""

from __future__ import annotations

from pathlib import Path

from tests.browser import needs_chromium
from tests.web_walk import walk

pytestmark = needs_chromium

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"

RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({ target: n.target.join(" "), summary: n.failureSummary })) }));
}"""

# Controls on screen that the Tab key skips (tabindex -1): a keyboard cannot reach them. A tab list's
# inactive tabs (reached with the arrow keys) excepted.
UNREACHABLE = """() => [
  ...document.querySelectorAll('a[href], button, input, select, textarea, summary, [role=button]')]
  .filter((el) => el.checkVisibility() && !el.disabled && el.tabIndex < 0 && !el.closest('[role=tablist]'))
  .map((el) => el.outerHTML.slice(0, 120))"""


async def axe_violations(page) -> list[dict]:
    # The pages' Content-Security-Policy (default-src 'self') refuses an added <script> (add_script_tag):
    # axe's source is evaluated through DevTools instead, which the policy does not govern; it sets window.axe.
    if not await page.evaluate("() => typeof axe !== 'undefined'"):
        await page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    return await page.evaluate(RUN_AXE)


async def listeners_on_non_controls(page) -> list[str]:
    """Bare elements (not a button, link, input, … nor focusable) with a click listener, found through
    DevTools' listener list. A row that also holds a link or button to the same place is reachable: left out."""
    client = await page.context.new_cdp_session(page)
    found = []
    candidates = await client.send(
        "Runtime.evaluate",
        {
            "expression": """
      [...document.querySelectorAll('div, span, li, td, tr, th, p, section, article, img, figure, label, h1, h2, h3')]
        .filter((el) => !el.matches(
          '[role=button], [role=link], [role=tab], [role=menuitem], [role=option], [tabindex]'))
        .filter((el) => !el.querySelector('a[href], button'))
    """,
            "objectGroup": "a11y",
        },
    )
    properties = await client.send(
        "Runtime.getProperties", {"objectId": candidates["result"]["objectId"], "ownProperties": True}
    )
    for prop in properties["result"]:
        if not prop["name"].isdigit():
            continue
        object_id = prop["value"]["objectId"]
        listeners = await client.send("DOMDebugger.getEventListeners", {"objectId": object_id})
        if any(listener["type"] in ("click", "mousedown", "pointerdown") for listener in listeners["listeners"]):
            html = await client.send(
                "Runtime.callFunctionOn",
                {
                    "objectId": object_id,
                    "functionDeclaration": "function () { return this.outerHTML.slice(0, 160); }",
                    "returnByValue": True,
                },
            )
            found.append(html["result"]["value"])
    await client.send("Runtime.releaseObjectGroup", {"objectGroup": "a11y"})
    await client.detach()
    return found


async def test_axe_finds_no_serious_or_critical_violation_on_any_page(server, school, lesson, browser):
    assert AXE.exists(), "npm install brings axe-core (package.json devDependencies)"
    serious: list[str] = []
    minor: list[str] = []
    clickable: list[str] = []

    async def visit(name, page):
        for v in await axe_violations(page):
            lines = [f"[{v['impact']}] {name}: {v['id']} ({v['help']})"]
            lines += [
                f"    {n['target']}: {n['summary'].splitlines()[-1].strip() if n['summary'] else ''}"
                for n in v["nodes"][:8]
            ]
            (serious if v["impact"] in ("serious", "critical") else minor).extend(lines)
        clickable.extend(f"{name}: {html}" for html in await listeners_on_non_controls(page))
        clickable.extend(f"{name}: skipped by Tab: {html}" for html in await page.evaluate(UNREACHABLE))

    seen = await walk(server, school, lesson, browser, visit)
    print(f"Pages checked ({len(seen)}): {', '.join(seen)}")
    print("Serious or critical:\n" + ("\n".join(serious) or "none"))
    print("Moderate or minor (reported, not failing):\n" + ("\n".join(minor) or "none"))
    print("Click handlers a keyboard cannot reach:\n" + ("\n".join(clickable) or "none"))
    assert not serious, "axe-core: serious or critical violations:\n" + "\n".join(serious)
    assert not clickable, "click handlers on elements that are not controls:\n" + "\n".join(clickable)


async def test_the_axe_check_finds_what_it_should(server, browser):
    """The check itself: on the login page, a button with no name and low-contrast text are reported."""
    from tests.web_walk import new_page

    page = await new_page(browser, server)
    await page.get_by_role("button", name="Đăng nhập").wait_for()
    assert [v for v in await axe_violations(page) if v["impact"] in ("serious", "critical")] == []
    await page.evaluate("""() => {
      const main = document.getElementById('main');
      main.append(Object.assign(document.createElement('button'), { className: 'nameless' }));
      const pale = Object.assign(document.createElement('p'), { textContent: 'Chữ quá nhạt' });
      pale.style.color = '#ddd';
      main.append(pale);
    }""")
    found = {v["id"]: v["impact"] for v in await axe_violations(page)}
    assert found.get("button-name") == "critical" and found.get("color-contrast") == "serious", found
