"""Turn the runner's raw results into ``results.md`` (tables, targets) and a PNG plot."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

Results = dict[str, Any]


def median(values: list[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def _num(value: float, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def spread(values: list[float], digits: int = 1) -> str:
    """``median [min-max] (n)``, or the value alone for one run."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "-"
    if len(values) == 1:
        return _num(values[0], digits)
    return (
        f"{_num(median(values), digits)} [{_num(min(values), digits)}-{_num(max(values), digits)}]"
    )


# -- targets --------------------------------------------------------------------------


def derived_ratios(r: Results) -> dict[str, list[float]]:
    """Ratios from per-repetition numbers stored in the results (same repetition index).

    Proxy CPU per request is much less sensitive to what else runs on the machine than
    requests/s: at c=16 every proxy here is CPU-bound, so its req/s ceiling is
    1000 / (CPU ms per request).
    """
    http = r.get("http", {})
    out: dict[str, list[float]] = {}

    def paired(a: str, b: str, conc: str, field: str) -> list[tuple[float, float]]:
        runs_a, runs_b = http.get(a, {}).get(conc, []), http.get(b, {}).get(conc, [])
        return [
            (x[field], y[field])
            for x, y in zip(runs_a, runs_b, strict=False)
            if x.get(field) and y.get(field)
        ]

    for name, a, b in (
        ("cpu_mitmdump_vs_gw_c16", "mitmdump", "gateway"),
        ("cpu_lean_vs_gw_c16", "lean", "gateway"),
        ("cpu_noauth_vs_gw_c16", "gateway-noauth", "gateway"),
    ):
        pairs = paired(a, b, "c16", "cpu_ms_per_req")
        if pairs:
            out[name] = [x / y for x, y in pairs]
    for name, a, b in (
        ("cpu_gw_minus_lean_ms", "gateway", "lean"),
        ("cpu_noop10_minus_lean_ms", "lean-noop10", "lean"),
        ("cpu_stream_minus_lean_ms", "lean-stream", "lean"),
        ("cpu_gw_minus_noauth_ms", "gateway", "gateway-noauth"),
        ("cpu_unchained_minus_gw_ms", "gateway-unchained", "gateway"),
    ):
        pairs = paired(a, b, "c16", "cpu_ms_per_req")
        if pairs:
            out[name] = [x - y for x, y in pairs]
    return out


def evaluate_targets(r: Results) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []

    def add(
        name: str,
        value: float | None,
        limit: float,
        at_least: bool,
        unit: str,
        detail: str = "",
        digits: int = 2,
        strict: bool = False,
    ) -> None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            status = "NOT RUN"
        elif strict and value == limit:
            status = "MISS"
        elif (value >= limit) if at_least else (value <= limit):
            status = "PASS"
        else:
            status = "MISS"
        shown = "-" if status == "NOT RUN" else f"{_num(value, digits)}{unit}"
        relation = (">" if at_least else "<") + ("" if strict else "=")
        targets.append(
            {
                "name": name,
                "value": shown,
                "limit": f"{relation} {limit:g}{unit}",
                "status": status,
                "detail": detail,
            }
        )

    ratios = r.get("ratios", {})
    add(
        "gateway req/s vs bare mitmdump, c=16",
        median(ratios.get("gw_vs_mitmdump_c16", [])),
        1.5,
        True,
        "x",
        "median of per-repetition ratios",
    )
    add(
        "added p50 latency vs direct, c=1",
        median(ratios.get("gw_added_p50_c1_ms", [])),
        1.2,
        False,
        " ms",
        "gateway p50 - direct p50, per repetition",
        digits=3,
    )
    add(
        "auth on vs auth off req/s, c=16 (issue 4)",
        median(ratios.get("auth_on_off_c16", [])),
        0.9,
        True,
        "x",
        "session cookie vs trusted network",
    )
    browser = r.get("browser", {})
    value = None
    if browser.get("gateway") and browser.get("direct"):
        value = median(browser["gateway"]) / median(browser["direct"])
    add(
        "first live reading, gateway vs direct",
        value,
        1.15,
        False,
        "x",
        "ratio of medians, interleaved navigations",
    )
    fan100 = r.get("fanout", {}).get("100", {}).get("gateway", [])
    add(
        "100 sockets: gateway delivery p99",
        median([x["p99_ms"] for x in fan100]) if fan100 else None,
        100,
        False,
        " ms",
        "",
        digits=1,
    )
    fan1000 = r.get("fanout", {}).get("1000", {}).get("gateway", [])
    if fan1000:
        bad = sum(
            x["lost"] + x["reordered"] + x["closed_early"] + x["failed_open"] for x in fan1000
        )
        add(
            "1,000 sockets: lost + reordered + dropped (all runs)",
            float(bad),
            0,
            False,
            "",
            "summed over repetitions",
            digits=0,
        )
        add(
            "1,000 sockets: gateway peak RSS",
            max(x["rss_peak_mb"] for x in fan1000),
            300,
            False,
            " MB",
            "highest over repetitions",
            digits=0,
        )
    else:
        add("1,000 sockets: lost + reordered + dropped (all runs)", None, 0, False, "")
        add("1,000 sockets: gateway peak RSS", None, 300, False, " MB")
    add(
        "1,000 sockets: delivery p99 vs bare mitmproxy",
        median(ratios.get("fan1000_p99", [])),
        1.2,
        False,
        "x",
        "median of per-repetition ratios",
    )
    soak = r.get("soak", {}).get("slope_mb_per_min", {})
    add(
        "soak: gateway RSS growth after warm-up",
        soak.get("gateway"),
        1.0,
        False,
        " MB/min",
        f"{r.get('soak', {}).get('duration_s', 0):.0f} s soak",
        digits=3,
    )
    startup = r.get("startup", {})
    add("start-up to serving (restart)", median(startup.get("gateway", [])), 3.0, False, " s")
    add(
        "start-up to answering (first start, new data dir)",
        median(startup.get("gateway-first", [])),
        3.0,
        False,
        " s",
    )
    always_on_targets(r, add)
    return targets


IDLE_NOTHING = "gateway-idle"
IDLE_FULL = "gateway-idle-full"


def always_on_targets(r: Results, add: Any) -> None:
    """What an always-on box costs (``bench/alwayson.py``)."""
    idle = r.get("idle", {}).get("systems", {})
    window = r.get("idle", {}).get("window_s", 0)
    for key, what in ((IDLE_NOTHING, "nothing configured"), (IDLE_FULL, "everything configured")):
        found = idle.get(key, {})
        add(
            f"idle CPU, {what}",
            found.get("cpu_percent"),
            0.2 if key == IDLE_NOTHING else 0.5,
            False,
            " %",
            f"% of one core over {window:.0f} s, children included",
        )
        add(
            f"idle RSS, {what}",
            found.get("rss_mb"),
            115 if key == IDLE_NOTHING else 150,
            False,
            " MB",
            "at the end of the idle window, children included",
            digits=0,
        )
    add(
        "start-up to serving, everything configured (restart)",
        median(r.get("startup", {}).get("gateway-full", [])),
        3.0,
        False,
        " s",
        "spawn to the first proxied 200 with a session",
    )
    add(
        "dead notification receiver: req/s vs notifications off, c=16",
        median(r.get("deadrx", {}).get("ratios", [])),
        0.95,
        True,
        "x",
        "median of per-repetition ratios; the receiver accepts and never answers",
        digits=3,
    )
    storm = r.get("storm", {})
    add(
        "login storm: gateway RSS above idle",
        storm.get("rss_growth_mb"),
        64,
        False,
        " MB",
        f"peak during the storm - median before it; {storm.get('logins', 200)} wrong logins",
        digits=1,
    )
    add(
        "login storm: a logged-in person's p99",
        storm.get("person_p99_ms"),
        50,
        False,
        " ms",
        "requests at 20/s sent while the storm lasted",
        digits=1,
        strict=True,
    )


# -- markdown ---------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def markdown(r: Results, targets: list[dict[str, Any]], plot_name: str | None) -> str:
    meta = r["meta"]
    labels = r.get("labels", {})
    out = [
        "# Benchmark results",
        "",
        f"Produced by `{meta['command']}` on {meta['date']} ({meta['mode']} mode), in "
        f"{meta['where']}. Machine: {meta['machine']}. Versions: {meta['versions']}. "
        f"Took {meta.get('seconds', 0) / 60:.0f} min; CPU used meanwhile by processes "
        f"outside the benchmark: {_foreign(meta)}.",
        "",
        "Each cell: median [min-max] over repetitions. Ratios are computed within one "
        "repetition (systems measured back to back), then their median is shown. "
        "Latencies in ms, memory in MB (RSS of the proxy's processes; nginx: master + "
        "workers).",
        "",
        "## Targets",
        "",
    ]
    out += _table(
        ["target", "value", "limit", "result", "how"],
        [[t["name"], t["value"], t["limit"], f"**{t['status']}**", t["detail"]] for t in targets],
    )

    ratios = {**r.get("ratios", {}), **derived_ratios(r)}
    out += ["## Ratios (within the same run)", ""]
    ratio_rows = [
        ("gateway / bare mitmdump, req/s c=16", "gw_vs_mitmdump_c16", "x", 2),
        ("gateway / bare mitmdump, req/s c=1", "gw_vs_mitmdump_c1", "x", 2),
        ("gateway / lean Master + cookie check, req/s c=16", "gw_vs_lean_c16", "x", 2),
        ("lean Master / bare mitmdump, req/s c=16", "lean_vs_mitmdump_c16", "x", 2),
        ("lean + 10 no-op addons / lean, req/s c=16", "noop10_vs_lean_c16", "x", 2),
        ("lean + streaming / lean, req/s c=16", "stream_vs_lean_c16", "x", 2),
        ("gateway / unchained addons (diagnostic), req/s c=16", "gw_vs_unchained_c16", "x", 2),
        ("gateway p50 - direct p50, c=1 (ms)", "gw_added_p50_c1_ms", "", 3),
        ("bare mitmdump p50 - direct p50, c=1 (ms)", "mitm_added_p50_c1_ms", "", 3),
        ("gateway auth on / auth off, req/s c=16", "auth_on_off_c16", "x", 3),
        ("gateway auth on / auth off, req/s c=1", "auth_on_off_c1", "x", 3),
        ("gateway TLS / plain, req/s c=16", "tls_vs_plain_c16", "x", 2),
        ("gateway / nginx, req/s c=16", "gw_vs_nginx_c16", "x", 2),
        ("gateway / direct, WebSocket round trip p50", "ws_rtt_gw_vs_direct", "x", 2),
        ("gateway / bare mitmdump, 100 sockets delivery p99", "fan100_p99", "x", 2),
        ("gateway / bare mitmdump, 1,000 sockets delivery p99", "fan1000_p99", "x", 2),
        ("gateway / direct, first live reading (ratio of medians)", "browser", "x", 3),
        (
            "CPU per request c=16: bare mitmdump / gateway (the req/s ratio on a quiet machine)",
            "cpu_mitmdump_vs_gw_c16",
            "x",
            2,
        ),
        ("CPU per request c=16: lean / gateway", "cpu_lean_vs_gw_c16", "x", 2),
        ("CPU per request c=16: auth off / auth on", "cpu_noauth_vs_gw_c16", "x", 3),
        ("CPU ms per request c=16: gateway - lean (our share)", "cpu_gw_minus_lean_ms", "", 3),
        (
            "CPU ms per request c=16: the session check (auth on - off)",
            "cpu_gw_minus_noauth_ms",
            "",
            3,
        ),
        (
            "CPU ms per request c=16: 10 no-op addons (lean+10 - lean)",
            "cpu_noop10_minus_lean_ms",
            "",
            3,
        ),
        (
            "CPU ms per request c=16: streaming every flow (lean+stream - lean)",
            "cpu_stream_minus_lean_ms",
            "",
            3,
        ),
        (
            "CPU ms per request c=16: addons registered one by one (unchained - gateway)",
            "cpu_unchained_minus_gw_ms",
            "",
            3,
        ),
    ]
    rows = []
    for label, key, unit, digits in ratio_rows:
        values = ratios.get(key, [])
        if values:
            rows.append([label, spread(values, digits) + unit])
    out += _table(["ratio", "value"], rows)

    http = r.get("http", {})
    if http:
        out += ["## HTTP (wrk, GET /api/v1/public/cemm, keep-alive)", ""]
        rows = []
        for key, runs in http.items():
            c1, c16 = runs.get("c1", []), runs.get("c16", [])
            rows.append(
                [
                    labels.get(key, key),
                    spread([x["rps"] for x in c1], 0),
                    spread([x["p50_ms"] for x in c1], 3),
                    spread([x["p99_ms"] for x in c1], 3),
                    spread([x["rps"] for x in c16], 0),
                    spread([x["p50_ms"] for x in c16], 2),
                    spread([x["p99_ms"] for x in c16], 2),
                    spread([x.get("cpu_ms_per_req", math.nan) for x in c16], 3),
                ]
            )
        out += _table(
            [
                "system",
                "req/s c=1",
                "p50 c=1",
                "p99 c=1",
                "req/s c=16",
                "p50 c=16",
                "p99 c=16",
                "proxy CPU ms/req c=16",
            ],
            rows,
        )

    rtt = r.get("ws_rtt", {})
    if rtt:
        out += ["## WebSocket round trip (one socket, echo, readings paused)", ""]
        rows = [
            [
                labels.get(k, k),
                spread([x["p50_ms"] for x in v], 3),
                spread([x["p99_ms"] for x in v], 3),
            ]
            for k, v in rtt.items()
        ]
        out += _table(["system", "p50", "p99"], rows)

    for n, by_system in r.get("fanout", {}).items():
        if not by_system:
            continue
        runs = next(iter(by_system.values()))
        duration = runs[0].get("duration", 0) if runs else 0
        out += [f"## {int(n):,} sockets, one reading per second each, {duration:.0f} s", ""]
        rows = []
        for key, v in by_system.items():
            rows.append(
                [
                    labels.get(key, key),
                    spread([x["p50_ms"] for x in v], 1),
                    spread([x["p99_ms"] for x in v], 1),
                    spread([x["max_ms"] for x in v], 0),
                    str(sum(x["lost"] for x in v)),
                    str(sum(x["reordered"] for x in v)),
                    str(sum(x["closed_early"] + x["failed_open"] for x in v)),
                    spread([x["messages"] for x in v], 0),
                    spread([x["rss_peak_mb"] for x in v], 0),
                    spread([x["open_seconds"] for x in v], 1),
                ]
            )
        out += _table(
            [
                "system",
                "delay p50",
                "delay p99",
                "delay max",
                "lost",
                "reordered",
                "dropped/failed",
                "messages",
                "peak RSS MB",
                "open all (s)",
            ],
            rows,
        )
        out += ["Delay: beyond each socket's fastest delivery (see `bench/wsload.py`).", ""]

    browser = r.get("browser", {})
    if browser:
        out += ["## First live reading in Chromium (navigation -> `#status` live)", ""]
        rows = [[labels.get(k, k), spread(v, 1), str(len(v))] for k, v in browser.items()]
        out += _table(["system", "ms", "navigations"], rows)
        marks = r.get("browser_marks", {})
        if marks:
            names = [
                "html_first_byte",
                "html_done",
                "assets_done",
                "asset_connections",
                "dom_ready",
                "ws_created",
                "ws_open",
                "ws_first_message",
                "live",
            ]
            rows = [
                [labels.get(k, k), *[_num(median(m.get(n, [])), 1) for n in names]]
                for k, m in marks.items()
            ]
            out += [
                "Milestones (median ms from the navigation's start): the page's HTML "
                "(first byte, complete), its script and style sheet received (and how many "
                "new connections they needed), DOMContentLoaded, its WebSocket created / "
                "open / first message, the reading shown.",
                "",
            ]
            out += _table(["system", *names], rows)

    startup = r.get("startup", {})
    if startup:
        out += ["## Start-up and memory", ""]
        memory = r.get("memory", {})
        rows = []
        keys = list(dict.fromkeys([*startup.keys(), *memory.keys()]))
        for key in keys:
            m = memory.get(key, {})
            rows.append(
                [
                    labels.get(key, key),
                    spread(startup.get(key, []), 2),
                    _num(m.get("after_start_mb", math.nan), 0),
                    _num(m.get("after_load_mb", math.nan), 0),
                ]
            )
        out += _table(
            ["system", "start-up to serving (s)", "RSS idle after start", "RSS idle after load"],
            rows,
        )
        out += [
            "`gateway-first`: a new data directory (database created, admin account "
            "hashed) until the web port answers; the others until a proxied request "
            "answers 200 (the gateway with an existing session).",
            "",
        ]

    out += always_on_markdown(r)

    soak = r.get("soak", {})
    if soak.get("slope_mb_per_min"):
        out += [
            f"## Soak ({soak['duration_s']:.0f} s mixed load, warm-up "
            f"{soak['warmup_s']:.0f} s excluded)",
            "",
        ]
        rows = []
        for key, slope in soak["slope_mb_per_min"].items():
            samples = soak["samples"][key]
            rows.append(
                [
                    labels.get(key, key),
                    _num(slope, 3),
                    _num(samples[0][1], 0),
                    _num(samples[-1][1], 0),
                    _fmt_load(soak.get("load", {}).get(key, {})),
                ]
            )
        out += _table(["system", "RSS slope MB/min", "RSS start", "RSS end", "load served"], rows)

    profile = r.get("profile", {})
    if profile:
        out += ["## CPU profile under load (py-spy; see `bench/profile.py`)", ""]
        for key, p in profile.items():
            share = p["share"]
            out.append(
                f"**{labels.get(key, key)}** during {p['scenario']}: {p['samples']} samples; "
                f"ours {share.get('ours', 0):.0%}, mitmproxy {share.get('mitmproxy', 0):.0%}, "
                f"event loop/I/O/other {share.get('other', 0):.0%}."
            )
            out.append("")
            if p["our_hooks"]:
                out += _table(
                    ["our code (outermost frame)", "share"],
                    [[f"`{n}`", f"{s:.1%}"] for n, s in p["our_hooks"]],
                )
            if p["mitmproxy_self"]:
                out += _table(
                    ["mitmproxy (innermost frame)", "share"],
                    [[f"`{n}`", f"{s:.1%}"] for n, s in p["mitmproxy_self"][:8]],
                )

    notes = r.get("notes", [])
    if notes:
        out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if plot_name:
        out += [f"![latency and memory]({plot_name})", ""]
    return "\n".join(out)


def always_on_markdown(r: Results) -> list[str]:
    """The idle, dead receiver and login storm tables."""
    labels = r.get("labels", {})
    out: list[str] = []
    idle = r.get("idle", {})
    if idle.get("systems"):
        base = idle["systems"].get(IDLE_NOTHING, {})
        out += [
            f"## Idle: {idle['window_s']:.0f} s left alone, after {idle['settle_s']:.0f} s "
            "to settle (all configurations side by side, each in a network namespace of "
            "its own)",
            "",
        ]
        rows = []
        for key, v in idle["systems"].items():
            added = v["rss_mb"] - base["rss_mb"] if base and key != IDLE_NOTHING else math.nan
            cpu_added = (
                v["cpu_percent"] - base["cpu_percent"] if base and key != IDLE_NOTHING else math.nan
            )
            cpu_added, added = round(cpu_added, 2) + 0.0, round(added, 0) + 0.0  # no "-0"
            rows.append(
                [
                    labels.get(key, key),
                    _num(v["cpu_percent"], 2),
                    _num(cpu_added, 2),
                    _num(v["wakeups_per_s"], 1),
                    _num(v["rss_mb"], 0),
                    _num(added, 0),
                    str(v["processes"]),
                ]
            )
        out += _table(
            [
                "configuration",
                "CPU % of a core",
                "CPU % added",
                "wakeups/s",
                "RSS MB",
                "RSS added MB",
                "processes",
            ],
            rows,
        )
        out += [
            "CPU: user + system of the gateway and its descendants, including children they "
            "ran and reaped meanwhile (`ip`, `wg`, `nft`). Wakeups: voluntary context "
            "switches of every thread of the living processes. Added: vs nothing "
            "configured. Automatic backups: the directory holds a backup from a minute "
            "before the start, as on a box that has been running (the first backup a new "
            "box takes a minute after start is not idling).",
            "",
        ]
        for key, v in idle["systems"].items():
            busiest = list(v.get("wakeups_by_thread", {}).items())[:8]
            if busiest:
                threads = ", ".join(f"`{name}` {rate:.1f}" for name, rate in busiest)
                out.append(f"- wakeups/s by thread, {labels.get(key, key)}: {threads}")
        out.append("")
    deadrx = r.get("deadrx", {})
    if deadrx.get("ratios"):
        runs = deadrx["runs"]
        out += ["## A dead notification receiver (wrk c=16 while wrong logins notify)", ""]
        rows = [
            [
                labels.get(key, key),
                spread([x["rps"] for x in v], 0),
                spread([x["p99_ms"] for x in v], 2),
                str(sum(x["wrong_logins"] for x in v)),
                str(sum(x.get("deliveries_attempted", 0) for x in v))
                if key.endswith("dead")
                else "-",
                f"{sum(1 for x in v if x.get('delivery_hanging'))}/{len(v)}"
                if key.endswith("dead")
                else "-",
            ]
            for key, v in runs.items()
        ]
        out += _table(
            [
                "gateway",
                "req/s",
                "p99 ms",
                "wrong logins",
                "deliveries attempted",
                "loads with a delivery hanging",
            ],
            rows,
        )
        out += [
            f"Ratio (median of per-repetition ratios): {spread(deadrx['ratios'], 3)}x. The "
            "receiver accepts each connection and never answers (worse than one that is "
            "down: that fails at once). Wrong logins (a new account name every 10: a "
            "failed-login burst, then a ban) ran on both gateways until a first delivery "
            "had reached the receiver; then each load ran with the same wrong logins of its "
            "own, from its first second. Deliveries attempted: connections it accepted "
            "during each load "
            f"({deadrx.get('deliveries_attempted', 0)} over the scenario); the gateway "
            f"logged {deadrx.get('log_not_delivered', 0)} "
            "failed deliveries in all.",
            "",
        ]
    storm = r.get("storm", {})
    if storm.get("statuses"):
        answered = ", ".join(f"{v} x {k}" for k, v in sorted(storm["statuses"].items()))
        out += [f"## Login storm ({storm['logins']} concurrent wrong logins, one account)", ""]
        out += _table(
            ["quantity", "value"],
            [
                ["storm lasted (first sent to last answered)", f"{storm['storm_s']:.2f} s"],
                ["answers", answered],
                ["RSS before / peak / growth (MB)",
                 f"{storm['idle_rss_mb']:.0f} / {storm['peak_rss_mb']:.0f} / "
                 f"{storm['rss_growth_mb']:.1f}"],
                ["person's requests during the storm (of all)",
                 f"{storm['person_during']} (of {storm['person_requests']}; "
                 f"{storm['person_errors']} not 200)"],
                ["person's p50 / p99 / max during the storm (ms)",
                 f"{storm['person_p50_ms']:.1f} / {storm['person_p99_ms']:.1f} / "
                 f"{storm['person_max_ms']:.1f}"],
                ["person's p99 before the storm / over the whole run (ms)",
                 f"{_num(storm.get('person_p99_before_ms', math.nan), 1)} / "
                 f"{storm['person_p99_all_ms']:.1f}"],
            ],
        )  # fmt: skip
    return out


def _foreign(meta: dict[str, Any]) -> str:
    f = meta.get("foreign_cpu_cores")
    if not f:
        return "not measured"
    return f"median {f['median']:.2f}, p90 {f['p90']:.2f}, max {f['max']:.2f} cores"


def _fmt_load(load: dict[str, int]) -> str:
    if not load:
        return "-"
    errors = sum(v for k, v in load.items() if "error" in k)
    return (
        f"{load.get('http_ok', 0):,} HTTP ok, {load.get('ws_messages', 0):,} WS msgs, "
        f"{load.get('ws_churn_ok', 0):,} churned sockets, {errors} errors"
    )


# -- plot -----------------------------------------------------------------------------


def plot(r: Results, path: Path) -> str | None:
    """A 2x2 PNG: HTTP latency, socket delivery delay, memory, soak RSS over time."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed"
    labels = r.get("labels", {})
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    ax = axes[0][0]
    http = r.get("http", {})
    keys = list(http)
    width = 0.2
    for i, (conc, q) in enumerate(
        [("c1", "p50_ms"), ("c1", "p99_ms"), ("c16", "p50_ms"), ("c16", "p99_ms")]
    ):
        values = [median([x[q] for x in http[k].get(conc, [])]) for k in keys]
        ax.bar(
            [j + (i - 1.5) * width for j in range(len(keys))],
            values,
            width,
            label=f"{q[:3]} {conc.replace('c', 'c=')}",
        )
    ax.set_yscale("log")
    ax.set_xticks(range(len(keys)), keys, rotation=30, ha="right")
    ax.set_ylabel("ms (log)")
    ax.set_title("HTTP latency (wrk)")
    ax.legend(fontsize=8)

    ax = axes[0][1]
    fan = r.get("fanout", {})
    systems = list(dict.fromkeys(k for n in fan.values() for k in n))
    for i, n in enumerate(fan):
        values = [
            median([x["p99_ms"] for x in fan[n].get(k, [])]) if fan[n].get(k) else math.nan
            for k in systems
        ]
        ax.bar(
            [j + (i - 0.5) * 0.35 for j in range(len(systems))],
            values,
            0.35,
            label=f"{int(n):,} sockets",
        )
    ax.set_xticks(range(len(systems)), systems, rotation=30, ha="right")
    ax.set_ylabel("delivery delay p99, ms")
    ax.set_title("WebSocket fan-out: delivery p99")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    memory = r.get("memory", {})
    mkeys = [k for k in memory if not k.endswith("-first")]
    idle = [memory[k].get("after_start_mb", math.nan) for k in mkeys]
    peak = [
        median([x["rss_peak_mb"] for x in fan.get("1000", {}).get(k, [])])
        if fan.get("1000", {}).get(k)
        else math.nan
        for k in mkeys
    ]
    ax.bar([j - 0.2 for j in range(len(mkeys))], idle, 0.4, label="idle after start")
    ax.bar([j + 0.2 for j in range(len(mkeys))], peak, 0.4, label="1,000 sockets (peak)")
    ax.axhline(300, color="red", linestyle="--", linewidth=1, label="300 MB target")
    ax.set_xticks(range(len(mkeys)), mkeys, rotation=30, ha="right")
    ax.set_ylabel("RSS, MB")
    ax.set_title("Memory")
    ax.legend(fontsize=8)

    ax = axes[1][1]
    soak = r.get("soak", {})
    for key, samples in soak.get("samples", {}).items():
        ax.plot(
            [t / 60 for t, _ in samples],
            [m for _, m in samples],
            label=f"{labels.get(key, key)} ({soak['slope_mb_per_min'][key]:+.2f} MB/min)",
        )
    if soak.get("warmup_s"):
        ax.axvline(soak["warmup_s"] / 60, color="grey", linestyle=":", label="end of warm-up")
    ax.set_xlabel("minutes")
    ax.set_ylabel("RSS, MB")
    ax.set_title("Soak: RSS over time")
    ax.legend(fontsize=8)
    fig.suptitle(f"cemm-gateway benchmark ({r['meta']['mode']}, {r['meta']['date']})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None
