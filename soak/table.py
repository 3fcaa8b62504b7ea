"""The report as a table, one line per figure (the JSON has every detail)."""

from __future__ import annotations

from typing import Any


def table(report: dict[str, Any]) -> list[str]:
    ev, oc, dl, dup = (
        report["events"],
        report["outcome"],
        report["dead_letters"],
        report["duplicates"],
    )
    llm, mem = report["llm"], report["memory"]
    sim = llm["simulator"]
    lines = [
        "== soak report ==",
        f"  duration            {report['timing']['publish_s']:.0f}s publishing,"
        f" {report['timing']['drain_s']:.0f}s to quiesce"
        f" ({'quiet' if report['timing']['quiesced'] else 'NOT quiet: timed out'})",
        f"  records published   {ev['records_published']} of {ev['planned']}"
        f" ({ev['exact_duplicates_published']} exact duplicates,"
        f" {ev['poison_published']} poison, {ev['publish_failed']} failed to publish)",
        f"  events in           {ev['events_in']}"
        f" ({ev['conversation_events']} conversations, {ev['analysis_events']} analyses)",
        f"  done                {oc['done']}",
        f"  dead-lettered       {oc['dead_lettered']} valid events"
        f" ({_kv(report['results']['dead_lettered_events_by_error'])});"
        f" poison {dl['poison']['dead_lettered']}/{dl['poison']['published']}"
        f" (missing {dl['poison']['missing_count']}, wrong reason"
        f" {len(dl['poison']['wrong_reason'])}, repeated {dl['poison']['repeated']},"
        f" original headers lost {dl['poison']['original_headers_lost']})",
        f"  lost                {oc['lost']}"
        f" (not in inbox {oc['missing_from_inbox']['count']}, stuck {_kv(oc['stuck'])},"
        f" done without result {oc['done_without_result']['count']})",
        f"  duplicates          {dup['total']}"
        f" (conversations {dup['conversations_per_event_gt1']},"
        f" runs {dup['analysis_runs_per_event_gt1']},"
        f" turns per index {dup['turns_per_index_gt1']},"
        f" repeated turns {dup['conversations_with_repeated_turns']['count']},"
        f" turn gaps {dup['completed_with_turn_gaps']['count']})",
        f"  results             conversations {_kv(report['results']['conversations'])};"
        f" analysis runs {_kv(report['results']['analysis_runs'])}",
        f"  DLQ consistency     done but dead-lettered {dl['done_but_in_dlq']['count']},"
        f" dead-lettered without a DLQ record {dl['dead_lettered_not_in_dlq']['count']},"
        f" repeated DLQ records {dl['valid_events_repeated_in_dlq']}",
        "  completion messages "
        + "; ".join(
            f"{t}: {v['messages']} for {v['events']} events"
            f" ({v['events_with_more_than_one']} more than once)"
            for t, v in report["output_messages"].items()
        ),
        f"  LLM calls per step  {llm['rows']} rows over {llm['steps']} steps;"
        f" per step {_kv(llm['calls_per_step'])}; max {llm['max_per_step']},"
        f" {llm['steps_gt1']} steps > 1",
        f"  extra LLM calls     {llm['extra_calls']}: {llm['extra_explained_by_llm_faults']}"
        f" failed attempts ({_kv(llm['errors_by_class'])}),"
        f" {llm['steps_paid_twice']} steps paid twice"
        f" ({llm['steps_paid_twice_near_process_fault']} at a process fault,"
        f" {llm['extra_unexplained']} unexplained)",
    ]
    if sim.get("available", True):
        lines.append(
            f"  simulator calls     {sim['calls']} ({_kv(sim['by_status'])});"
            f" not in llm_calls: {sim['not_in_llm_calls']}"
        )
    lines.append(f"  faults injected     {len(report['faults'])}")
    start = report["timing"]["started_at"]
    for f in report["faults"]:
        extra = {
            k: v
            for k, v in f["detail"].items()
            if k
            in ("restart_s", "died", "worker_consuming_after_s", "stopped_s", "count", "storm_s")
        }
        lines.append(
            f"    +{f['at'] - start:6.0f}s {f['kind']:<20} {f['duration_s']:5.1f}s"
            f" {'ok' if f['ok'] else 'NEEDED HELP'} {_kv(extra)}"
            + (f" error: {f['detail']['error']}" if "error" in f["detail"] else "")
        )
    for e in report["unexpected_exits"]:
        lines.append(
            f"  unexpected exit     {e['component']} pid {e['pid']}"
            f" at +{e['at'] - start:.0f}s (restarted: {e['restarted']})"
        )
    lines.append("  memory slope        MB per 1,000 events (per process lifetime, weighted)")
    for name in sorted(mem):
        entry = mem[name]
        slope = entry["slope_mb_per_1000_events"]
        lives = ", ".join(
            f"pid {lf['pid']}: {lf['first_mb']:.0f}->{lf['last_mb']:.0f} MB"
            + (
                f" ({lf['slope_mb_per_1000_events']:+.2f}/1k over {lf['events']})"
                if lf["slope_mb_per_1000_events"] is not None
                else ""
            )
            for lf in entry["lifetimes"]
        )
        shown = "n/a" if slope is None else f"{slope:+.2f}"
        lines.append(f"    {name:<8} {shown:>7}  {lives}")
    lines.append(f"  Redis residue       {_kv(report['residue'])}")
    verdict = report["verdict"]
    lines.append(
        f"  verdict             {'OK' if verdict['ok'] else 'FAILED'}"
        f" (lost {verdict['lost']}, duplicates {verdict['duplicates']})"
    )
    return lines


def _kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "none"
