H = 1440
def counter(per_min_phases):
    """per_min_phases: [(minutes, per_min)] after H minutes at hist rate given as first phase"""
    out=[]; v=0; first=True
    for mins, r in per_min_phases:
        if first:
            out.append(f"{v}+{r}x{mins}"); v += r*mins; first=False
        else:
            out.append(f"{v+r}+{r}x{mins-1}" if r else f"{v}x{mins-1}"); v += r*mins
    return " ".join(out)
slos = {
 "availability": dict(alert="Service1Availability", slo="service1-availability", category="availability",
     summary="service1 is answering 5xx fast enough to spend its 30-day error budget early", runbook="docs/walkthroughs.md#walkthrough-4-chaos"),
 "latency": dict(alert="Service1Latency", slo="service1-latency", category="latency",
     summary="service1 is answering slower than 250 ms often enough to spend its 30-day budget early", runbook="docs/walkthroughs.md#walkthrough-4-chaos"),
 "freshness": dict(alert="WelcomeFreshness", slo="welcome-freshness", category="freshness",
     summary="welcome tasks are taking longer than 30 s often enough to spend the 30-day budget early", runbook="docs/walkthroughs.md#walkthrough-6-the-worker-and-its-queue"),
}
def series(kind, phases):
    """phases: [(minutes, bad per minute)] after H healthy minutes; 600 events a minute in all"""
    good = counter([(H, 600)] + [(m, 600-b) for m, b in phases])
    bad = counter([(H, 0)] + [(m, b) for m, b in phases])
    total = counter([(H, 600)] + [(m, 600) for m, _ in phases])
    n = H + sum(m for m, _ in phases)
    if kind == "availability":
        return [('http_server_request_duration_seconds_count{service="service1",route="/users/{id}",method="GET",status="200"}', good),
                ('http_server_request_duration_seconds_count{service="service1",route="/users/{id}",method="GET",status="503"}', bad),
                ('http_server_request_duration_seconds_count{service="service1",route="/honeypot",method="GET",status="500"}', f"0+60x{n}")]
    if kind == "latency":
        return [('http_server_request_duration_seconds_count{service="service1",route="/users/{id}",method="GET",status="200"}', total),
                ('http_server_request_duration_seconds_bucket{service="service1",route="/users/{id}",method="GET",status="200",le="0.25"}', good),
                ('http_server_request_duration_seconds_count{service="service1",route="/honeypot",method="GET",status="500"}', f"0+60x{n}"),
                ('http_server_request_duration_seconds_bucket{service="service1",route="/honeypot",method="GET",status="500",le="0.25"}', "0x%d" % n)]
    return [('worker_task_end_to_end_seconds_count{service="worker",task="tasks.welcome"}', total),
            ('worker_task_end_to_end_seconds_bucket{service="worker",task="tasks.welcome",le="30"}', good)]
def alert(kind, sev):
    s = slos[kind]
    return f"""          - exp_labels: {{owner: workshop, sloth_id: failready-{s['slo']}, sloth_service: failready, sloth_slo: {s['slo']}, category: {s['category']}, severity: {sev}, sloth_severity: {sev}}}
            exp_annotations:
              summary: "{s['summary']}"
              runbook: {s['runbook']}
              title: "({sev}) failready {s['slo']} SLO error budget burn rate is too fast.\""""
def test(name, kinds, comment, phases, evals):
    """kinds: one SLO, or several fed the same phases in one test (fewer steps to run)"""
    kinds = kinds.split("+")
    out = ["", *[("  # " + l) for l in comment], f"  - name: {name}", "    interval: 1m", "    input_series:"]
    for kind in kinds:
        for sname, vals in series(kind, phases):
            out.append(f"      - series: '{sname}'")
            out.append(f"        values: '{vals}'")
    out.append("    alert_rule_test:")
    for kind in kinds:
      for t, sevs in evals:
        out.append(f"      - eval_time: {H + t}m")
        out.append(f"        alertname: {slos[kind]['alert']}")
        if not sevs:
            out.append("        exp_alerts: []")
        else:
            out.append("        exp_alerts:")
            for sev in sevs:
                out.append(alert(kind, sev))
    return "\n".join(out)
import textwrap
W=lambda s: textwrap.wrap(s, 74)
head = """# promtool test rules for the SLO alerts Sloth generates
# (deploy/prometheus/rules/slo.yaml, from deploy/slo/failready.yaml): the
# SRE workbook's multiwindow, multi-burn-rate alerts. Each test starts with
# a healthy day at 600 events a minute (a day, not a month: promtool
# evaluates every rule every minute, and a longer history costs minutes of
# CI); its minutes count from that day's end (1440m). A page: the error share over 1 h and 5 m above 14.4 times
# the budget, or over 6 h and 30 m above 6 times; a ticket: over 1 d and 2 h
# above 3 times, or over 3 d and 6 h above once. The budget is 0.5 % for
# availability, 1 % for latency and freshness. Each expectation below was
# worked out from those windows before it was run. make e2e runs them
# (deploy/prometheus/tests/gen_slo_tests.py wrote this file).
rule_files:
  - ../rules/slo.yaml
evaluation_interval: 1m
tests:"""
parts=[head]
parts.append(test("availability-outage", "availability", W("availability, a full outage of 15 minutes (service2 down: every answer a 503). The page fires once the 1 h window passes 7.2 %: after 4.3 minutes, so by 6 and not at 3; it stays after the outage while the 30 m window is above 3 % and the 6 h one is at 4.2 % (15/360), and resolves when the 30 m window has left the outage (45 m). A ticket too, from about 8 minutes: the 3 d window has seen only the one day, and 15 minutes is 1 % of it (twice the budget; 0.5 % from 7.2 minutes), which the 6 h window confirms; it lasts while the outage is in the 6 h window. Over a month of history the same outage would page only. The honeypot's deliberate 500s, all along, count nowhere."),
    [(15, 600), (60, 0)], [(3, []), (6, ["page"]), (10, ["page", "ticket"]), (42, ["page", "ticket"]), (47, ["ticket"]), (60, ["ticket"])]))
parts.append(test("availability-blip", "availability", W("availability, a blip: 2 minutes of full outage. Silent: the 1 h window reaches 3.3 % (a page needs 7.2 %), the 6 h one 0.56 % (a page needs 3 % with the 30 m one), the 1 d and 3 d ones 0.14 % (a ticket needs 1.5 % with the 2 h one, or 0.5 % with the 6 h one)."),
    [(2, 600), (60, 0)], [(1, []), (2, []), (3, []), (10, []), (30, []), (60, [])]))
parts.append(test("availability-slow-burn", "availability", W("availability, a slow burn: 2 % of answers fail (4 times the budget) for 10 hours. Never a page (6 times is 3 %). A ticket once the 6 h window passes 0.5 % (after 1.5 hours) and the 3 d one too: 0.02 m / (1440 + m) > 0.005 once m > 480, so after 8 hours; not at 7 h, by 9 h. (The 1 d window would pass 1.5 % only after 18 hours.)"),
    [(600, 12)], [(60, []), (420, []), (540, ["ticket"])]))
parts.append(test("latency-outage", "latency", W("latency, every answer slower than 250 ms for 12 minutes. The page fires once the 1 h window passes 14.4 %: after 8.6 minutes, so by 10 and not at 7; the 30 m / 6 h pair stays under (6 h: 3.3 %, under 6 %), so it resolves when the 5 m window has left the slowness (17 m). No ticket: the 3 d window reaches 0.83 % (12/1452, under 1 %), the 1 d one 0.83 % (under 3 %)."),
    [(12, 600), (60, 0)], [(7, []), (10, ["page"]), (15, ["page"]), (20, []), (60, [])]))
parts.append(test("freshness-outage", "freshness", W("freshness, every welcome task later than 30 s for 12 minutes (NATS away: the tasks wait in the outbox). As latency: a page by 10 minutes and not at 7, resolved by 20, no ticket."),
    [(12, 600), (60, 0)], [(7, []), (10, ["page"]), (15, ["page"]), (20, []), (60, [])]))
parts.append(test("latency-freshness-slow-burn", "latency+freshness", W("latency and freshness, a slow burn each: 4 % of answers slower than 250 ms, and 4 % of tasks later than 30 s (4 times the budget), for 10 hours. Never a page (6 times is 6 %). A ticket once the 6 h window passes 1 % (after 1.5 hours) and the 3 d one too: 0.04 m / (1440 + m) > 0.01 once m > 480, so after 8 hours; not at 7 h, by 9 h."),
    [(600, 24)], [(60, []), (420, []), (540, ["ticket"])]))
print("\n".join(parts))
