"""``python -m llmsim``: run the LLM simulator in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click
from pydantic import ValidationError

from llmsim.config import SimConfig
from llmsim.defects import DEFECT_KINDS, DefectRates
from llmsim.faults import FaultSpec
from llmsim.limits import Limits
from llmsim.simulator import Simulator

log = logging.getLogger("llmsim")


def _fault_rates(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[FaultSpec, ...]:
    specs = []
    for value in values:
        kind, sep, rate = value.partition("=")
        try:
            if not sep:
                raise ValueError("expected KIND=P")
            specs.append(FaultSpec.model_validate({"kind": kind.strip(), "rate": float(rate)}))
        except ValidationError as exc:
            raise click.BadParameter(f"{value!r}: {_one_line(exc)}") from None
        except ValueError as exc:
            raise click.BadParameter(f"{value!r}: {exc}") from None
    return tuple(specs)


def _defect_rates(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> DefectRates:
    rates: dict[str, float] = {}
    for value in values:
        for item in value.replace(",", " ").split():
            kind, sep, rate = item.partition("=")
            try:
                if not sep:
                    raise ValueError("expected KIND=P")
                rates[kind.strip()] = float(rate)
            except ValueError as exc:
                raise click.BadParameter(f"{item!r}: {exc}") from None
    try:
        return DefectRates.model_validate(rates)
    except ValidationError as exc:
        raise click.BadParameter(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    """A pydantic error as one line: each field and what is wrong with it."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}"
        for e in exc.errors(include_url=False)
    )


@click.command("llmsim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=8089,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0 picks a free port.",
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Same seed + same request = same answer."
)
@click.option(
    "--ttft-ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Time to first token.",
)
@click.option(
    "--ms-per-token",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Time per output token.",
)
@click.option(
    "--rpm", type=click.IntRange(min=1), help="Requests per minute, per model (default unlimited)."
)
@click.option("--itpm", type=click.IntRange(min=1), help="Input tokens per minute, per model.")
@click.option("--otpm", type=click.IntRange(min=1), help="Output tokens per minute, per model.")
@click.option(
    "--fault-rate",
    "fault_rates",
    multiple=True,
    metavar="KIND=P",
    callback=_fault_rates,
    help="Give a fraction P of calls the fault KIND (repeatable), e.g. server_error=0.05.",
)
@click.option(
    "--defect-rate",
    "defect_rates",
    multiple=True,
    metavar="KIND=P",
    envvar="LLMSIM_DEFECT_RATES",
    callback=_defect_rates,
    help="Plant the dialogue defect KIND in a fraction P of answers (repeatable; "
    f"{', '.join(DEFECT_KINDS)}), e.g. refusal=0.05; env LLMSIM_DEFECT_RATES "
    "takes 'refusal=0.05 leakage=0.02'.",
)
@click.option(
    "--timeout-fault-delay-s",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="How long a 'timeout' fault stalls.",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def sim(
    *,
    host: str,
    port: int,
    seed: int,
    ttft_ms: float,
    ms_per_token: float,
    rpm: int | None,
    itpm: int | None,
    otpm: int | None,
    fault_rates: tuple[FaultSpec, ...],
    defect_rates: DefectRates,
    timeout_fault_delay_s: float,
    log_level: str,
) -> None:
    """Run the LLM simulator (Anthropic, Gemini and OpenAI wire formats) until interrupted."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("llmsim").setLevel(log_level.upper())
    try:
        config = SimConfig(
            host=host,
            port=port,
            seed=seed,
            ttft_ms=ttft_ms,
            ms_per_token=ms_per_token,
            limits=Limits(rpm=rpm, itpm=itpm, otpm=otpm),
            faults=fault_rates,
            defects=defect_rates,
            timeout_fault_delay_s=timeout_fault_delay_s,
        )
    except ValidationError as exc:
        raise click.UsageError(_one_line(exc)) from None
    simulator = Simulator(config)
    try:
        simulator.start()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        log.info(
            "Anthropic/Gemini base URL %s, OpenAI base URL %s/v1, admin %s/_sim/health",
            simulator.base_url,
            simulator.base_url,
            simulator.base_url,
        )
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        served = simulator.calls(0).total
        simulator.stop()
        log.info("simulator served %d calls", served)
