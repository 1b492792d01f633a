"""The analyst's Dagster UI in a real headless Chromium, over a lakehouse with a few days materialized.

A run of the first days writes checks and partitions into a DAGSTER_HOME (the project's dagster.yaml);
a real dagster-webserver serves that instance, and Debian's Chromium, driven over the DevTools
protocol on a pipe (`--remote-debugging-pipe`: no port, no extra package), opens the pages an analyst
uses: the global lineage, an asset's upstream lineage, its partitions and its checks. The test asserts on
the rendered text and layout, against what the run itself reported, and keeps a screenshot of every
page in `data/test-artifacts/browser/` (gitignored, replaced on each run).
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import polars as pl

from retail_lakehouse_tests.conftest import START, TEST_TOKEN_KEY, make_lake
from retail_lakehouse_tests.webserver import PROJECT_ROOT, Webserver

DAYS = 4
FACT_SALES = dg.AssetKey(["gold", "fact_sales"])
ARTIFACTS = PROJECT_ROOT / "data" / "test-artifacts" / "browser"
# A fresh profile gets this modal over every page until "Skip" is pressed (PLATFORM.md).
COMMUNITY_MODAL = "Join the Dagster community"
CHECK_STATUS = {True: "Succeeded", False: "Failed", None: "Not Evaluated"}


class Chromium:
    """Headless Chromium with one page, driven over the DevTools protocol on fds 3/4.

    Only 127.0.0.1 is reachable: every other host name resolves to nothing and every other address
    goes to a proxy that is not there (loopback bypasses proxies). Every request the page makes is
    recorded in `requests` so a test can assert that.
    """

    def __init__(self, folder: Path, width: int = 1600, height: int = 1000, command_timeout: float = 30.0):
        executable = shutil.which("chromium") or shutil.which("chromium-browser")
        if executable is None:
            raise RuntimeError("Chromium is not installed: `make test` installs Debian's chromium package (apt-get install chromium)")
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "chromium.log"
        self.width, self.height = width, height
        self.command_timeout = command_timeout
        self.requests: list[str] = []
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def as_fds_3_and_4():  # in the child, before exec: the protocol's fixed descriptors
            reads, writes = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(reads, 3)
            os.dup2(writes, 4)

        args = [
            executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", "--disable-default-apps", "--no-default-browser-check", "--metrics-recording-only",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9",
            f"--user-data-dir={folder / 'profile'}", f"--window-size={width},{height}",
            "--remote-debugging-pipe", "about:blank",
        ]
        with self.log.open("wb") as out:
            # close_fds=False: only 0-2 and the two dup2'ed descriptors are inheritable anyway.
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=as_fds_3_and_4, close_fds=False, start_new_session=True)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Network"):
                self.call(f"{domain}.enable")
            self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise

    # ---- the protocol -------------------------------------------------------------------------

    def call(self, method: str, timeout: float | None = None, **params) -> dict:
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params}
        if self._session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self._session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.command_timeout)
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self._next_id:
                    if "error" in answer:
                        raise RuntimeError(f"{method}: {answer['error']}")
                    return answer["result"]
                if answer.get("method") == "Network.requestWillBeSent":
                    self.requests.append(answer["params"]["request"]["url"])
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"Chromium did not answer {method} within {timeout or self.command_timeout:.0f} s")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the pipe (exit code {self.proc.poll()}):\n{self.log.read_text(errors='replace')[-2000:]}")
                self._buffer += chunk

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}…: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        """Browser.close, then SIGKILL to Chromium's own process group if it is still there."""
        if self.proc.poll() is None:
            try:
                self.call("Browser.close", timeout=5)
            except (OSError, RuntimeError, TimeoutError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # renderers and helpers share the group
        except ProcessLookupError:
            pass
        self.proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- what a test needs --------------------------------------------------------------------

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def wait_for_text(self, needles: list[str], name: str, timeout: float = 60.0) -> str:
        """The page's text once every needle is in it and the community modal is gone."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if COMMUNITY_MODAL in text:
                self.evaluate("[...document.querySelectorAll('button')].filter(b => b.innerText.trim() === 'Skip').forEach(b => b.click())")
            elif all(n in text for n in needles):
                return text
            if time.monotonic() > deadline:
                shot = self.screenshot(ARTIFACTS / f"{name}-timeout.png")
                missing = [n for n in needles if n not in text]
                raise AssertionError(f"{name}: {missing} not on the page after {timeout:.0f} s (screenshot {shot}):\n{text[:3000]}")
            time.sleep(0.5)

    def graph_nodes(self, labels: list[str], name: str, timeout: float = 30.0) -> dict[str, tuple[float, float]]:
        """Centre (x, y) of each label drawn inside the asset graph (its nodes are SVG foreignObjects)."""
        script = """(labels => { const found = {};
            for (const el of document.querySelectorAll('svg foreignObject *')) {
              const t = el.textContent.trim();
              if (el.children.length === 0 && labels.includes(t) && !(t in found)) {
                const r = el.getBoundingClientRect(); found[t] = [r.x + r.width / 2, r.y + r.height / 2]; } }
            return found; })(%s)""" % json.dumps(labels)
        deadline = time.monotonic() + timeout
        while True:
            found = self.evaluate(script) or {}
            if set(found) == set(labels) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if set(found) != set(labels):
            shot = self.screenshot(ARTIFACTS / f"{name}-timeout.png")
            raise AssertionError(f"{name}: graph nodes {sorted(set(labels) - set(found))} not drawn (screenshot {shot})")
        return {label: tuple(xy) for label, xy in found.items()}


def _skip_community_modal(browser: Chromium, url: str, timeout: float = 30.0) -> None:
    """Opens the UI once and presses "Skip" on the modal a fresh profile gets; the profile keeps it."""
    browser.open(url)
    deadline = time.monotonic() + timeout
    while COMMUNITY_MODAL not in browser.text():
        if time.monotonic() > deadline:
            return  # not shown (a later Dagster may drop it): nothing to dismiss
        time.sleep(0.5)
    browser.wait_for_text(["Overview"], "00-community-modal")  # clicks Skip until the modal is gone


def _page(browser: Chromium, url: str, name: str, needles: list[str]) -> str:
    browser.open(url)
    for _ in range(3):
        browser.wait_for_text(needles, name)  # presses Skip if the modal is up
        time.sleep(1)  # let the graph's zoom-to-fit and the status bars settle before the picture
        text = browser.text()
        if COMMUNITY_MODAL not in text:
            break
    assert COMMUNITY_MODAL not in text, f"{name}: the community modal keeps coming back"
    (ARTIFACTS / f"{name}.txt").write_text(text)
    browser.screenshot(ARTIFACTS / f"{name}.png")
    return text


def _check_status(text: str, name: str) -> str:
    # Each row reads "<name>\n<name>\n<status>" (the label is drawn twice: text and tooltip target).
    found = re.search(rf"(?m)^{re.escape(name)}\n(?:{re.escape(name)}\n)?(.+)$", text)
    assert found, f"check {name} is not listed:\n{text[:3000]}"
    return found.group(1).strip()


def test_analyst_sees_lineage_partitions_and_check_results_in_chromium(generated_landing, tmp_path, monkeypatch):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    print(f"screenshots and page texts: {ARTIFACTS}")

    # The instance the webserver will read, written by a range run in this process.
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    # The project's event log storage exports DAGSTER_EVENT_BATCH_SIZE for its process; registered
    # here so that monkeypatch puts the variable back as it was after the test.
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", os.environ.get("DAGSTER_EVENT_BATCH_SIZE", ""))
    if not os.environ["DAGSTER_EVENT_BATCH_SIZE"]:
        monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE")
    lake = make_lake(tmp_path, generated_landing)
    first, last = START, START + dt.timedelta(days=DAYS - 1)
    with dg.DagsterInstance.get() as instance:
        result = lake.run(first, last, instance=instance)
    assert result.success

    # What the UI must show, from the run and the tables themselves.
    verdicts = {e.check_name: e.passed for e in result.get_asset_check_evaluations() if e.asset_key == FACT_SALES}
    check_names = sorted(k.name for k in lake.defs.resolve_asset_graph().asset_check_keys if k.asset_key == FACT_SALES)
    assert verdicts and set(verdicts) <= set(check_names)
    partitions = len(lake.defs.resolve_assets_def(FACT_SALES).partitions_def.get_partition_keys())
    last_day_rows = lake.read("gold/fact_sales").filter(pl.col("order_date") == last).height
    assert last_day_rows > 0

    env = {**os.environ, "DAGSTER_HOME": str(home), "RETAIL_LAKEHOUSE_LAKE_ROOT": str(lake.settings.lake_root),
           "RETAIL_LAKEHOUSE_LANDING_ROOT": str(generated_landing), "RETAIL_LAKEHOUSE_TOKEN_KEY": TEST_TOKEN_KEY,
           "RETAIL_LAKEHOUSE_START_DATE": START.isoformat()}
    with Webserver(env, log=tmp_path / "webserver.log") as web, Chromium(tmp_path / "chromium") as browser:
        _skip_community_modal(browser, f"{web.url}/overview")
        # 1. The global lineage: one box per group, laid out in dependency order left to right.
        _page(browser, f"{web.url}/asset-groups", "01-global-lineage", ["Global asset lineage"])
        groups = browser.graph_nodes(["bronze", "silver", "gold"], "01-global-lineage")
        assert groups["bronze"][0] < groups["silver"][0] < groups["gold"][0], groups

        # 2. fact_sales' upstream, two levels: bronze → silver → gold, and nothing downstream of it.
        text = _page(browser, f"{web.url}/assets/gold/fact_sales?view=lineage&lineageScope=upstream&lineageDepth=2",
                     "02-fact_sales-upstream", ["sales_returns", "dim_customer"])
        nodes = browser.graph_nodes(["sales_returns", "sales", "fact_sales"], "02-fact_sales-upstream")
        assert nodes["sales_returns"][0] < nodes["sales"][0] < nodes["fact_sales"][0], nodes
        assert "agg_daily_sales" not in text

        # 3. The partition status: DAYS materialized out of every daily partition so far, none failed.
        text = _page(browser, f"{web.url}/assets/gold/fact_sales?view=partitions", "03-fact_sales-partitions",
                     [f"Materialized ({DAYS})", first.isoformat()])
        assert f"{partitions} Partitions Selected" in text, text[:2000]
        assert "Failed (0)" in text and f"Missing ({partitions - DAYS})" in text, text[:2000]

        # 4. Every check of fact_sales with the verdict the run recorded (or "Not Evaluated").
        text = _page(browser, f"{web.url}/assets/gold/fact_sales?view=checks", "04-fact_sales-checks",
                     [f"Checks ({len(check_names)})", *check_names])
        shown = {name: _check_status(text, name) for name in check_names}
        assert shown == {name: CHECK_STATUS[verdicts.get(name)] for name in check_names}

        # 5. The overview: the newest partition and its row count, as in the Delta table.
        text = _page(browser, f"{web.url}/assets/gold/fact_sales", "05-fact_sales-overview",
                     ["Latest materialization", "Row count", last.isoformat()])
        assert re.search(rf"(?m)^Row count\n{last_day_rows}$", text), text[:2000]

        # The browser talked to the webserver only (the modal's links were never followed).
        assert browser.requests
        strays = [u for u in browser.requests if not u.startswith((web.url + "/", "data:", "blob:", "about:"))]
        assert not strays, strays
    assert browser.proc.returncode is not None
